"""Patient, report and image ids at the REST edge (issue 11, finding 8): an id outside the id rule
(``graph.field_checks.ID_RULE``) answers a small 422 problem and stores nothing, in the body or
in the URL; ``<patient>/<report>`` keys cannot collide; every id of the data kgdx ingests fits.

The app runs on a real embedded store holding the seed KG and the guide's patients.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from graph.records import Patient, Report, check_id
from graph.settings import PROJECT_ROOT
from graph.store import GraphStore
from graph.stores.patient_rows import patient_rows
from tests.security.rest_input_helpers import app_client, assert_problem, guide_store, unchanged


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[GraphStore]:
    yield from guide_store(tmp_path_factory, "rest-ids")


@pytest.fixture(scope="module")
def client(store) -> Iterator[TestClient]:
    yield from app_client(store)


# --- ids in bodies and URLs -----------------------------------------------------------------------

BAD_IDS = [
    "P 1",
    "P\u00e9",
    "P\r\nX-Evil: 1",
    "P\x00",
    "../../x",
    "col/x",
    ".",
    "..",
    "-x",
    "x" * 129,
]


@pytest.mark.parametrize("patient_id", BAD_IDS)
def test_a_bad_patient_id_answers_422_and_stores_nothing(client, store, patient_id) -> None:
    with unchanged(store):
        response = client.post("/v1/patients", json={"id": patient_id, "reports": ["No effusion."]})
    assert "not a valid id" in assert_problem(response, 422, sent=None)["detail"]
    assert "location" not in response.headers


@pytest.mark.parametrize("patient_id", ["..x", ".hidden", "a%20b", "x" * 129])
def test_a_bad_id_in_the_url_answers_422(client, store, patient_id) -> None:
    with unchanged(store):
        for method in ("GET", "DELETE"):
            response = client.request(method, f"/v1/patients/{patient_id}")
            assert_problem(response, 422, sent=None)
        for suffix in ("diagnoses", "graph", "images/i1/thumbnail"):
            url = f"/v1/patients/{patient_id}/{suffix}"
            assert_problem(client.get(url), 422, sent=None)
        assert_problem(client.post(f"/v1/patients/{patient_id}/diagnoses"), 422, sent=None)


def test_a_good_id_gets_its_location(client, store) -> None:
    response = client.post("/v1/patients", json={"id": "P-L1.a:b_c", "reports": ["No effusion."]})
    try:
        assert response.status_code == 201, response.text
        assert response.headers["location"] == "/v1/patients/P-L1.a:b_c"
    finally:
        store.delete_patient("P-L1.a:b_c")


def test_the_report_key_clash_is_refused_before_any_write(client, store) -> None:
    """Finding 8: patient ``col`` + report ``x/R1`` and patient ``col/x`` + report ``R1`` were
    both stored as ``col/x/R1`` (the second answered 503, duplicate key)."""
    with unchanged(store):
        first = {"id": "col", "reports": [{"id": "x/R1", "text": "No effusion."}]}
        second = {"id": "col/x", "reports": [{"id": "R1", "text": "No effusion."}]}
        assert_problem(client.post("/v1/patients", json=first), 422, sent=None)
        assert_problem(client.post("/v1/patients", json=second), 422, sent=None)
        with pytest.raises(ValidationError):
            Patient(id="col", reports=(Report(id="x/R1", text="t"),))
        with pytest.raises(ValidationError):
            Patient(id="col/x")
        with pytest.raises(ValidationError):
            Patient(id="../../x")


def test_ids_that_share_separators_get_distinct_keys(store) -> None:
    """With ``/`` in no id, ``<patient>/<report>`` keys cannot collide: the nearest pairs the
    id rule allows are stored side by side and read back intact."""
    pairs = [("col", "x-R1"), ("col-x", "R1"), ("col.x", "R1"), ("col", "x.R1")]
    patients = [Patient(id=p, reports=(Report(id=r, text=f"{p} {r}"),)) for p, r in pairs[:2]]
    keys = {
        patient_rows(Patient(id=p, reports=(Report(id=r, text="t"),)))["reports"][0]["id"]
        for p, r in pairs
    }
    assert len(keys) == len(pairs)
    try:
        for patient in patients:
            store.upsert_patient(patient)
        for patient in patients:
            assert store.get_patient(patient.id).reports == patient.reports
    finally:
        for patient in patients:
            store.delete_patient(patient.id)


def test_every_id_in_the_data_kgdx_ingests_is_valid(shared_data) -> None:
    """The id rule was chosen after reading these; a new data set with other ids fails here."""
    ids: dict[str, list[str]] = {}
    cohort = PROJECT_ROOT / "data" / "cohort" / "chest_demo_cohort.jsonl"
    rows = [json.loads(line) for line in cohort.read_text().splitlines() if line.strip()]
    ids["demo patients"] = [r["id"] for r in rows] + [f"{r['id']}-R100" for r in rows]
    ids["demo reports"] = [r["report"]["id"] for r in rows]
    packets = (shared_data / "phenopackets" / "phenopackets.jsonl").read_text().splitlines()
    ids["phenopackets"] = [json.loads(line)["id"] for line in packets if line.strip()]
    csv.field_size_limit(1 << 30)
    with (shared_data / "cohorts" / "covid_cxr" / "metadata.csv").open() as handle:
        covid = list(csv.DictReader(handle))
    ids["covid_cxr"] = [r["patientid"] for r in covid] + [r["filename"] for r in covid]
    iu = shared_data / "reports" / "iu_xray"
    with (iu / "indiana_projections.csv").open() as handle:
        ids["iu_xray"] = [f"{r['uid']}" for r in csv.DictReader(handle)]
    ids["derived"] = ["2.25." + str(2**128 - 1), "sha256:" + "f" * 24, "P-" + "a" * 12]
    for source, values in ids.items():
        bad = [v for v in values if not _valid(v)]
        assert values and not bad, f"{source}: {bad[:5]}"


def _valid(value: str) -> bool:
    try:
        check_id(value)
    except ValueError:
        return False
    return True
