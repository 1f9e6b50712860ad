"""The REST diagnosis and ingest endpoints against the real embedded store and a trained GNN.

One small GraphSAGE model is trained on the demo cohort for the module (about 20 s on a loaded
CPU); the app reads it from ``<home>/model`` as it would in production.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
from fastapi.testclient import TestClient

from api.engine import Engine
from api.rest import create_app
from data.cohort import load_cohort
from graph.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Settings whose home holds the seed KG, the 80 demo patients and a saved model."""
    from gnn.train import cpu_threads

    folder = tmp_path_factory.mktemp("rest-engine")
    settings = Settings(home=folder, db_path=folder / "kg.lbug")
    cases = load_cohort()
    with cpu_threads(1), Engine(store="embedded", settings=settings) as engine:
        engine.build_seed_kg()
        # the generator's gold findings: the extractor has its own tests, and this keeps it fast
        engine.ingest(
            [c.patient.model_copy(update={"findings": c.gold_findings}) for c in cases],
            extract=False,
        )
        result = engine.train(
            model="sage",
            epochs=40,
            hidden=16,
            seed=0,
            baseline=False,
            save_to=settings.resolved_model_dir,
        )
    return settings, result, {c.patient.id: c for c in cases}


@pytest.fixture(scope="module")
def client(trained):
    settings, _, _ = trained
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _diagnose(client, patient_id: str, **params) -> list[dict]:
    response = client.post(f"/patients/{patient_id}/diagnose", params=params)
    assert response.status_code == 200, response.text
    return response.json()["diagnoses"]


def test_model_info_is_the_saved_model(client, trained) -> None:
    _, result, _ = trained
    body = client.get("/model").json()
    assert body["model_id"] == "kgdx-sage-0" and body["encoder"] == "sage"
    assert body["candidate_ids"] == result.candidate_ids
    assert body["metrics"]["test"]["auroc"] == pytest.approx(result.metrics["test"]["auroc"])


def test_the_model_and_its_diagnoses_name_the_report_sections_they_read(client, trained) -> None:
    _, result, _ = trained
    expected = {"include": None, "exclude": ["impression"], "unknown": True}
    body = client.get("/model").json()
    assert body["input_sections"] == expected
    assert body["input_sections_text"] == result.sections.describe()
    patient_id = result.splits["test"][0]
    assert {json.dumps(d["input_sections"]) for d in _diagnose(client, patient_id)} == {
        json.dumps(expected)
    }
    stored = client.get(f"/patients/{patient_id}/diagnoses").json()["diagnoses"]
    assert stored and all(d["input_sections"] == expected for d in stored)
    # the patient record keeps the section of every report finding
    patient = client.get(f"/patients/{patient_id}").json()
    sections = {f["provenance"].get("section") for f in patient["findings"]}
    assert "impression" in sections and "findings" in sections


def test_diagnose_ranks_explains_and_stores(client, trained) -> None:
    _, result, cases = trained
    explained = 0
    for patient_id in result.splits["test"][:6]:
        diagnoses = _diagnose(client, patient_id, top_k=3)
        assert len(diagnoses) == 3
        probabilities = [d["probability"] for d in diagnoses]
        assert probabilities == sorted(probabilities, reverse=True)
        assert {d["concept_id"] for d in diagnoses} <= set(result.candidate_ids)
        assert {d["model_id"] for d in diagnoses} == {"kgdx-sage-0"}
        text = " ".join(r.text for r in cases[patient_id].patient.reports)
        for diagnosis in diagnoses:
            for path in diagnosis["paths"]:
                explained += 1
                assert path["nodes"][0] == patient_id
                assert path["nodes"][-1] == diagnosis["concept_id"]
                assert len(path["relations"]) == len(path["nodes"]) - 1
                assert path["relations"][0] == "HAS_FINDING"
                concepts = client.get("/concepts", params={"ids": path["nodes"][1:]}).json()
                assert {c["id"] for c in concepts["concepts"]} == set(path["nodes"][1:])
                # the first step's evidence quotes the report sentence(s) that gave the finding
                sentences = re.findall(r'"([^"]+)"', path["evidence"][0])
                assert sentences and all(s in text for s in sentences)
        stored = client.get(f"/patients/{patient_id}/diagnoses").json()["diagnoses"]
        assert [(d["concept_id"], d["model_id"]) for d in stored] == [
            (d["concept_id"], d["model_id"]) for d in diagnoses
        ]
        assert [d["probability"] for d in stored] == pytest.approx(probabilities)
        assert [d["paths"] for d in stored] == [d["paths"] for d in diagnoses]
    assert explained > 0, "no held-out diagnosis came with an explanation path"


def test_diagnose_errors(client) -> None:
    missing = client.post("/patients/NOBODY/diagnose")
    assert missing.status_code == 404 and "unknown patient" in missing.json()["detail"]
    assert client.post("/patients/P001/diagnose", params={"top_k": 0}).status_code == 422
    assert len(_diagnose(client, "P001", top_k=5, paths_per_diagnosis=0)) == 5


def test_ingest_report_text_is_idempotent(client, trained) -> None:
    _, _, cases = trained
    case = cases["P001"]
    body = {
        "id": "NEW-1",
        "reports": [case.patient.reports[0].text, {"text": "No pneumothorax.", "id": "NEW-1-X"}],
        "labels": list(case.patient.labels),
        "attributes": {"age": 41},
    }
    before = len(client.get("/patients").json()["patient_ids"])
    first = client.post("/patients", json=body)
    assert first.status_code == 201 and first.headers["location"] == "/patients/NEW-1"
    patient = first.json()
    assert [r["id"] for r in patient["reports"]] == ["NEW-1-R1", "NEW-1-X"]
    found = {(f["concept_id"], f["assertion"]["polarity"]) for f in patient["findings"]}
    gold = {(f.concept_id, f.assertion.polarity.value) for f in case.gold_findings}
    assert len(found & gold) >= len(gold) // 2  # the real extractor ran on the text
    assert ("UMLS:C0032326", "absent") in found  # pneumothorax, negated, from the second report
    assert client.get("/patients/NEW-1").json() == patient

    again = client.post("/patients", json=body)
    assert again.status_code == 200 and again.json() == patient
    assert len(client.get("/patients").json()["patient_ids"]) == before + 1
    # a patient stored after the model was trained is diagnosed over the current store
    assert len(_diagnose(client, "NEW-1", top_k=2)) == 2
    assert client.delete("/patients/NEW-1").status_code == 204
    assert client.get("/patients/NEW-1/diagnoses").status_code == 404


def test_ingest_rejects_bad_input_and_writes_nothing(client) -> None:
    assert client.post("/patients", json={"id": "NEW-2", "reports": []}).status_code == 422
    extra = client.post("/patients", json={"id": "NEW-2", "reports": ["x"], "findings": []})
    assert extra.status_code == 422
    unknown = client.post(
        "/patients", json={"id": "NEW-2", "reports": ["No effusion."], "labels": ["UMLS:C0000009"]}
    )
    assert unknown.status_code == 404 and unknown.json()["error"] == "UnknownConceptError"
    assert client.get("/patients/NEW-2").status_code == 404


def test_rewritten_and_deleted_patients_reach_the_model(client, trained) -> None:
    _, result, _ = trained
    patient_id = result.splits["test"][-1]
    original = client.get(f"/patients/{patient_id}").json()
    with_findings = _diagnose(client, patient_id, top_k=1)[0]
    no_findings = original | {"findings": []}
    assert client.put(f"/patients/{patient_id}", json=no_findings).status_code == 204
    without = _diagnose(client, patient_id, top_k=len(result.candidate_ids))
    same = next(d for d in without if d["concept_id"] == with_findings["concept_id"])
    assert same["probability"] != pytest.approx(with_findings["probability"], abs=1e-6)
    assert all(d["paths"] == [] for d in without)  # no findings, nothing to explain with
    assert client.put(f"/patients/{patient_id}", json=original).status_code == 204
    assert _diagnose(client, patient_id, top_k=1)[0]["probability"] == pytest.approx(
        with_findings["probability"], abs=1e-5
    )
    assert client.delete(f"/patients/{patient_id}").status_code == 204
    assert client.post(f"/patients/{patient_id}/diagnose").status_code == 404
    assert client.put(f"/patients/{patient_id}", json=original).status_code == 204


def test_model_is_read_when_it_appears(client, trained, tmp_path) -> None:
    settings, _, _ = trained
    store = client.app.state.store  # the same open store, served by a second app
    empty = tmp_path / "model"
    other_settings = settings.model_copy(update={"model_dir": empty})
    with TestClient(create_app(other_settings, store=store)) as other:
        response = other.post("/patients/P001/diagnose")
        assert response.status_code == 409 and response.json()["error"] == "ModelError"
        assert "train one first" in response.json()["detail"]
        assert other.get("/model").status_code == 409
        shutil.copytree(settings.resolved_model_dir, empty)
        assert other.get("/model").json()["model_id"] == "kgdx-sage-0"
        assert len(other.post("/patients/P001/diagnose").json()["diagnoses"]) == 3


def test_model_config_file_name_matches_the_trainer() -> None:
    from api.routers.deps import MODEL_CONFIG_FILE
    from gnn.train import CONFIG_FILE

    assert MODEL_CONFIG_FILE == CONFIG_FILE


def test_model_independent_doc_examples_replay_exactly(client) -> None:
    """The guide's examples that do not depend on the trained model are real answers."""
    from api.rest_docs import rest_examples

    replayed = 0
    for example in rest_examples():
        request, expected = example.request, example.response
        if (example.method, example.path) == ("POST", "/patients"):
            # under another id: P001 is one of this store's cohort patients
            request = json.loads(json.dumps(request).replace("P001", "DOC-1"))
            expected = json.loads(json.dumps(expected).replace("P001", "DOC-1"))
        elif example.path not in {"/query", "/concepts/{concept_id}"} and example.status != 404:
            continue
        response = client.request(example.method, example.url, json=request)
        assert response.status_code == example.status, example.url
        assert response.json() == expected, example.url
        replayed += 1
    assert replayed >= 5
    assert client.delete("/patients/DOC-1").status_code == 204
