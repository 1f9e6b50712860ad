"""The REST v1 patient routes against a real embedded store holding the seed KG and the guide's
patients: reads, creation from reports, coded findings, labs and images, all or nothing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graph.records import Patient
from graph.settings import Settings
from tests.api.rest_fixtures import app_client, count, guide_store_settings
from tests.docs.conftest import GUIDE_PATIENTS

MINI_HP = Path(__file__).parents[1] / "fixtures" / "obo" / "mini-hp.obo"


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    settings = guide_store_settings(tmp_path_factory, "rest-patients")
    # the build record `kgdx kg build` writes beside the store, naming the hp.obo it read (its
    # obsolete HP:0001639 is replaced_by HP:0001640, the seed KG's cardiomegaly xref)
    record = {"sources": [f"hpo={MINI_HP}"]}
    (settings.db_path.parent / "kg_build.json").write_text(json.dumps(record))
    return settings


@pytest.fixture(scope="module")
def client(settings) -> Iterator[TestClient]:
    yield from app_client(settings)


def test_patient_read_shows_the_stored_record(client) -> None:
    listed = client.get("/v1/patients").json()
    assert listed == {
        "items": ["P001", "P002", "P003", "P004", "P005"],
        "total": 5,
        "offset": 0,
        "limit": 100,
    }
    assert client.get("/v1/patients", params={"offset": 3, "limit": 1}).json()["items"] == ["P004"]
    body = client.get("/v1/patients/P002").json()
    original = Patient.model_validate(json.loads(GUIDE_PATIENTS.read_text())[1]["patient"])
    assert [r["id"] for r in body["reports"]] == [r.id for r in original.reports]
    assert [(f["concept_id"], f["assertion"]) for f in body["findings"]] == [
        (f.concept_id, f.assertion.status) for f in original.findings
    ]
    assert all(f["name"] and f["source"] == "text" for f in body["findings"])
    assert client.get("/v1/patients/P999").status_code == 404


def test_a_first_read_runs_on_the_loop_in_a_batch_once_the_names_are_read(
    tmp_path_factory,
) -> None:
    """The app's first patient read loads the KG's names in a thread; later first reads of a
    patient run on the event loop in a batch of store stages (api/loop_share.py) and answer
    what the thread answers, 404 included."""
    import contextlib

    settings = guide_store_settings(tmp_path_factory, "rest-first-read")
    batches: list[bool] = []
    for client in app_client(settings):
        share = client.app.state.loop_share
        guard = share.guard

        @contextlib.asynccontextmanager
        async def counted(guard=guard):
            async with guard() as usable:
                batches.append(usable)
                yield usable

        share.guard = counted
        in_thread = client.get("/v1/patients/P001").json()  # the names are read here
        assert batches == []
        on_loop = client.get("/v1/patients/P003").json()
        assert batches == [True]
        assert client.get("/v1/patients/P003").json() == on_loop  # remembered: no batch
        assert client.get("/v1/patients/P998").status_code == 404
        assert batches == [True, True]
        lock = client.app.state.model_slot.lock  # held as a probe or a reload holds it
        with lock:
            held = client.get("/v1/patients/P004")
        assert held.status_code == 200 and held.json()["id"] == "P004"
        assert batches == [True, True, False]  # a read needs the store lock only
        assert on_loop["id"] == "P003" and in_thread["id"] == "P001"
        assert [f["name"] for f in on_loop["findings"]] and all(
            f["name"] for f in on_loop["findings"]
        )


def test_a_remembered_read_follows_a_rewrite_and_a_delete(client) -> None:
    """GET /v1/patients/{id} is answered from memory while the patient is unchanged; a write or
    a delete through the API makes the next read see the store again."""
    first = {"id": "P150", "reports": ["Right lower lobe consolidation."]}
    assert client.post("/v1/patients", json=first).status_code == 201
    seen = client.get("/v1/patients/P150").json()
    assert client.get("/v1/patients/P150").json() == seen  # the remembered answer
    assert [r["text"] for r in seen["reports"]] == ["Right lower lobe consolidation."]
    second = {"id": "P150", "reports": ["No pneumothorax. Small left pleural effusion."]}
    assert client.post("/v1/patients", json=second).status_code == 200
    again = client.get("/v1/patients/P150").json()
    assert [r["text"] for r in again["reports"]] == second["reports"]
    assert ("UMLS:C0032326", "absent") in {
        (f["concept_id"], f["assertion"]) for f in again["findings"]
    }
    assert client.delete("/v1/patients/P150").status_code == 204
    assert client.get("/v1/patients/P150").status_code == 404


def test_create_with_reports_coded_findings_and_labs(client) -> None:
    patient = {
        "id": "P100",
        "reports": ["Small left pleural effusion. No pneumothorax."],
        "findings": [
            {"concept_id": "UMLS:C0018800", "assertion": "absent"},
            {"concept_id": "UMLS:C0013404", "assertion": "historical", "label": "SOB"},
        ],
        "labs": [
            {"code": "LOINC:2160-0", "name": "Creatinine", "value": 2.1, "unit": "mg/dL"},
            {"code": "LOINC:x", "concept_id": "UMLS:C0242073", "interpretation": "normal"},
        ],
        "labels": ["UMLS:C0032285"],
    }
    created = client.post("/v1/patients", json=patient)
    assert created.status_code == 201 and created.headers["Location"] == "/v1/patients/P100"
    body = created.json()
    words = {(f["concept_id"], f["assertion"], f["source"]) for f in body["findings"]}
    assert {
        ("UMLS:C0032227", "present", "text"),
        ("UMLS:C0032326", "absent", "text"),
        ("UMLS:C0018800", "absent", "coded"),
        ("UMLS:C0013404", "historical", "coded"),
        ("UMLS:C0242073", "absent", "lab"),
    } <= words
    coded = next(r for r in body["reports"] if r["id"] == "P100-coded")
    for finding in body["findings"]:
        span = finding["provenance"]
        text = next(r["text"] for r in body["reports"] if r["id"] == span["doc_id"])
        assert text[span["start"] : span["end"]] == span["text"]  # highlightable like text
    assert "Creatinine = 2.1 mg/dL" in coded["text"]
    assert body["labs"][0]["code"] == "LOINC:2160-0" and "labs" not in body["attributes"]
    assert client.get("/v1/patients/P100").json() == body  # stored as answered
    # stored so Cypher finds them
    absent = count(
        client,
        "MATCH (:Patient {id: 'P100'})-[f:HAS_FINDING]->(c:Concept {id: $c}) "
        "WHERE f.polarity = 'absent' RETURN count(*)",
        c="UMLS:C0018800",
    )
    assert absent == 1
    again = client.post("/v1/patients", json=patient)
    assert again.status_code == 200 and again.json() == body
    assert client.delete("/v1/patients/P100").status_code == 204
    assert client.get("/v1/patients/P100").status_code == 404
    assert client.delete("/v1/patients/P100").status_code == 404


def test_coded_ids_may_be_cross_references_of_kg_nodes(client) -> None:
    """The seed KG stores cardiomegaly as UMLS:C0018800 with the xref HP:0001640: an HPO-coded
    finding (or lab, or label) links to that node, and its report line keeps the code sent."""
    concept = client.get("/v1/concepts/HP:0001640")
    assert concept.status_code == 200 and concept.json()["id"] == "UMLS:C0018800"
    assert client.get("/v1/concepts/HP:9999999").status_code == 404
    patient = {
        "id": "P102",
        "findings": [
            {"concept_id": "HP:0001640", "assertion": "present"},
            {"concept_id": "HP:0002202", "assertion": "absent"},  # pleural effusion
        ],
        "labels": ["HP:0002090"],  # pneumonia: UMLS:C0032285
    }
    created = client.post("/v1/patients", json=patient)
    assert created.status_code == 201, created.text
    body = created.json()
    words = {(f["concept_id"], f["assertion"]) for f in body["findings"]}
    assert words == {("UMLS:C0018800", "present"), ("UMLS:C0032227", "absent")}
    assert body["labels"] == ["UMLS:C0032285"]
    coded = next(r for r in body["reports"] if r["id"] == "P102-coded")["text"]
    assert coded.splitlines()[0].startswith("HP:0001640 cardiomegaly: present")
    for finding in body["findings"]:
        span = finding["provenance"]
        assert coded[span["start"] : span["end"]] == span["text"]  # the code as sent
    linked = count(
        client,
        "MATCH (:Patient {id: 'P102'})-[f:HAS_FINDING]->(c:Concept {id: $c}) "
        "WHERE f.polarity = 'absent' RETURN count(*)",
        c="UMLS:C0032227",
    )
    assert linked == 1
    assert client.delete("/v1/patients/P102").status_code == 204


def test_an_obsolete_hpo_id_links_to_its_replacement(client) -> None:
    """HP:0001639 is obsolete in the KG's hp.obo, replaced_by HP:0001640, the xref of the seed
    KG's cardiomegaly: a record coded with the old id (as older phenopackets are) links there,
    as ``kgdx diagnose`` reads it, instead of being refused as unknown."""
    concept = client.get("/v1/concepts/HP:0001639")
    assert concept.status_code == 200 and concept.json()["id"] == "UMLS:C0018800"
    patient = {"id": "P103", "findings": [{"concept_id": "HP:0001639", "assertion": "absent"}]}
    created = client.post("/v1/patients", json=patient)
    assert created.status_code == 201, created.text
    body = created.json()
    assert [(f["concept_id"], f["assertion"]) for f in body["findings"]] == [
        ("UMLS:C0018800", "absent")
    ]
    coded = next(r for r in body["reports"] if r["id"] == "P103-coded")["text"]
    assert coded.startswith("HP:0001639 cardiomegaly: absent")
    assert client.delete("/v1/patients/P103").status_code == 204


@pytest.mark.parametrize(
    "bad",
    [
        {"findings": [{"concept_id": "UMLS:C0000009"}]},  # an unknown code
        {"findings": [{"concept_id": "HP:9999999"}]},  # neither a node nor an xref
        {"labels": ["OMIM:000000"]},
        {"labs": [{"code": "L:1", "concept_id": "UMLS:C0000009"}]},
        {"reports": ["ok report", "   "]},  # the second report is empty
        {"findings": [{"concept_id": "UMLS:C0018800", "assertion": "maybe"}]},
        {"attributes": {"labs": []}},
    ],
)
def test_a_bad_part_stores_nothing(client, bad) -> None:
    before = client.get("/v1/patients").json()["total"]
    answer = client.post("/v1/patients", json={"id": "P101", "reports": ["Cardiomegaly."]} | bad)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/patients/P101").status_code == 404
    assert client.get("/v1/patients").json()["total"] == before


def _png(seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:320, 0:320]
    pixels = 120 + 60 * np.sin(x / 25.0) * np.cos(y / 31.0) + rng.normal(0, 8, (320, 320))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_multipart_images_all_or_nothing_with_thumbnails(client, settings) -> None:
    patient = json.dumps({"id": "P300", "reports": ["Right lower lobe consolidation."]})
    bad = [("images", ("a.png", _png(1), "image/png")), ("images", ("b.png", b"nope", "image/png"))]
    refused = client.post("/v1/patients", data={"patient": patient}, files=bad)
    assert refused.status_code == 422 and refused.json()["error"] == "InputError"
    assert client.get("/v1/patients/P300").status_code == 404  # nothing of the request stored
    good = [
        ("images", ("a.png", _png(1), "image/png")),
        ("images", ("b.png", _png(2), "image/png")),
    ]
    created = client.post("/v1/patients", data={"patient": patient}, files=good)
    assert created.status_code == 201, created.text
    body = created.json()
    assert len(body["images"]) == 2
    assert {f["source"] for f in body["findings"]} >= {"text"}
    for image in body["images"]:
        assert image["thumbnail"] == f"/v1/patients/P300/images/{image['id']}/thumbnail"
        png = client.get(image["thumbnail"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")
    assert client.get("/v1/patients/P300/images/nosuch/thumbnail").status_code == 404
    # a JSON re-post without images keeps them
    again = client.post("/v1/patients", json=json.loads(patient))
    assert again.status_code == 200 and len(again.json()["images"]) == 2
    assert client.delete("/v1/patients/P300").status_code == 204
    assert not (settings.home / "thumbnails" / "P300").exists()
    # an image alone is enough for a new patient
    alone = client.post("/v1/patients", data={"patient": '{"id": "P301"}'}, files=good[:1])
    assert alone.status_code == 201 and len(alone.json()["images"]) == 1, alone.text
    assert client.delete("/v1/patients/P301").status_code == 204


def test_a_multipart_body_without_a_patient_part_or_of_another_type(client) -> None:
    files = [("images", ("a.png", _png(3), "image/png"))]
    assert client.post("/v1/patients", files=files).status_code == 422
    bad_json = client.post("/v1/patients", data={"patient": "{"}, files=files)
    assert bad_json.status_code == 422 and bad_json.json()["errors"][0]["loc"][0] == "patient"
    text = client.post("/v1/patients", content=b"id=1", headers={"content-type": "text/plain"})
    assert text.status_code == 415


@pytest.mark.parametrize("empty", [{}, {"reports": []}, {"labels": ["UMLS:C0032285"]}])
def test_a_patient_with_nothing_to_diagnose_is_refused(client, empty) -> None:
    before = client.get("/v1/patients").json()["total"]
    answer = client.post("/v1/patients", json={"id": "P104"} | empty)
    assert answer.status_code == 422, answer.text
    assert "needs at least one report, coded finding, lab or image" in answer.json()["detail"]
    assert client.get("/v1/patients/P104").status_code == 404
    assert client.get("/v1/patients").json()["total"] == before


def test_a_stored_patient_may_be_posted_again_with_labels_only(client) -> None:
    """Posting a stored patient again replaces its reports and findings but keeps its images,
    so an id with new labels is a valid update of a patient whose content is its images."""
    first = client.post("/v1/patients", json={"id": "P106", "reports": ["Cardiomegaly."]})
    assert first.status_code == 201, first.text
    again = client.post("/v1/patients", json={"id": "P106", "labels": ["UMLS:C0032285"]})
    assert again.status_code == 200, again.text
    assert again.json()["labels"] == ["UMLS:C0032285"]
    assert client.delete("/v1/patients/P106").status_code == 204


def test_replacements_are_followed_through_chains_and_stop_at_a_cycle() -> None:
    from api.routers.concept_search import ConceptIndex
    from graph.records import Concept

    index = ConceptIndex(
        [Concept(id="UMLS:C1", name="new", kind="finding", xrefs=("HP:0000003",))],
        {"HP:0000001": "HP:0000002", "HP:0000002": "HP:0000003", "HP:0000008": "HP:0000009",
         "HP:0000009": "HP:0000008"},
    )  # fmt: skip
    assert index.resolve("HP:0000001") == "UMLS:C1"  # two replacements, then the xref
    assert index.resolve("HP:0000008") is None  # a loop of replacements names nothing
    assert index.resolve("HP:0000007") is None


def test_an_unreadable_hp_obo_leaves_obsolete_ids_unresolved_not_the_routes_broken(
    tmp_path_factory,
) -> None:
    """A build record naming an hp.obo that is corrupt: concept reads and ingest still answer
    (the obsolete id is then unknown, 422), and no server path reaches the client."""
    settings = guide_store_settings(tmp_path_factory, "rest-bad-obo")
    broken = settings.db_path.parent / "hp.obo.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00 truncated")
    record = {"sources": [f"hpo={broken}"]}
    (settings.db_path.parent / "kg_build.json").write_text(json.dumps(record))
    for client in app_client(settings):
        assert client.get("/v1/concepts/HP:0001640").json()["id"] == "UMLS:C0018800"
        refused = client.post(
            "/v1/patients", json={"id": "P105", "findings": [{"concept_id": "HP:0001639"}]}
        )
        assert refused.status_code == 422 and "unknown concept id" in refused.json()["detail"]
        assert str(broken) not in refused.text
        assert client.get("/v1/concepts", params={"q": "cardio"}).status_code == 200
