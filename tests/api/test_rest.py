"""The REST app against a real embedded store holding the seed KG and the guide's patients."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.rest import create_app
from graph.records import Patient
from graph.settings import Settings
from graph.stores import open_store
from kg_loaders.seed import read_seed_concepts
from tests.docs.conftest import GUIDE_PATIENTS, load_guide_graph


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    folder = tmp_path_factory.mktemp("rest")
    settings = Settings(home=folder, db_path=folder / "rest.lbug", query_row_limit=50)
    with open_store("embedded", settings=settings) as store:
        load_guide_graph(store)
    return settings


@pytest.fixture(scope="module")
def client(settings):
    # Entering the client runs the lifespan: the app opens (and later closes) the store itself.
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_health_reports_counts(client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["store"] == "embedded"
    assert body["nodes"]["Concept"] == len(read_seed_concepts()) and body["nodes"]["Patient"] == 5


def test_concept_lookup_and_404(client) -> None:
    body = client.get("/concepts/UMLS:C0032227").json()
    assert body["name"] == "pleural effusion" and body["kind"] == "finding"
    missing = client.get("/concepts/UMLS:C0000000")
    assert missing.status_code == 404 and missing.json()["error"] == "UnknownConceptError"
    assert client.get("/concepts/not-a-curie").status_code == 422
    many = client.get("/concepts", params={"ids": ["UMLS:C0032227", "UMLS:C0018800", "X:1"]})
    assert [c["id"] for c in many.json()["concepts"]] == ["UMLS:C0018800", "UMLS:C0032227"]


def test_neighbours_and_paths(client) -> None:
    body = client.get(
        "/concepts/UMLS:C0032227/neighbours", params={"direction": "in", "types": ["HAS_FINDING"]}
    ).json()
    diseases = {n["concept"]["id"] for n in body["neighbours"]}
    assert "UMLS:C0018802" in diseases and all(n["direction"] == "in" for n in body["neighbours"])
    bad = client.get("/concepts/UMLS:C0032227/neighbours", params={"types": ["HAS_REPORT"]})
    assert bad.status_code == 422
    paths = client.get("/concepts/UMLS:C0032227/paths/UMLS:C0018802").json()["paths"]
    assert paths[0][-1]["concept"]["id"] == "UMLS:C0018802"


def test_patient_read_matches_the_stored_record(client) -> None:
    assert client.get("/patients").json()["patient_ids"] == ["P001", "P002", "P003", "P004", "P005"]
    stored = Patient.model_validate(client.get("/patients/P002").json())
    original = json.loads(GUIDE_PATIENTS.read_text())[1]["patient"]
    assert stored == Patient.model_validate(original)
    assert client.get("/patients/P999").status_code == 404


def test_patient_write_replace_and_delete(client) -> None:
    patient = {"id": "P100", "labels": ["UMLS:C0032285"], "attributes": {"age": 40}}
    assert client.put("/patients/P100", json=patient).status_code == 204
    assert client.get("/patients/P100").json()["labels"] == ["UMLS:C0032285"]
    mismatch = client.put("/patients/P101", json=patient)
    assert mismatch.status_code == 422
    unknown = client.put("/patients/P100", json=patient | {"labels": ["UMLS:C0000009"]})
    assert unknown.status_code == 404  # unknown concept; nothing written
    assert client.get("/patients/P100").json()["labels"] == ["UMLS:C0032285"]
    assert client.delete("/patients/P100").status_code == 204
    assert client.get("/patients/P100").status_code == 404


def test_diagnoses_round_trip(client) -> None:
    body = client.get("/patients/P001/diagnoses").json()["diagnoses"]
    assert [(d["concept_id"], d["probability"]) for d in body] == [
        ("UMLS:C0018802", 0.86),
        ("UMLS:C0032285", 0.08),
    ]
    assert body[0]["paths"][0]["node_names"][1] == "cardiomegaly"
    new = [
        {"concept_id": "UMLS:C0032285", "name": "pneumonia", "probability": 0.4, "model_id": "rgcn"}
    ]
    assert client.put("/patients/P004/diagnoses", json={"diagnoses": new}).status_code == 204
    models = {d["model_id"] for d in client.get("/patients/P004/diagnoses").json()["diagnoses"]}
    assert models == {"hgt-demo", "rgcn"}


def test_query_runs_read_only_with_parameters_and_caps(client) -> None:
    body = client.post(
        "/query",
        json={
            "cypher": "MATCH (p:Patient)-[f:HAS_FINDING]->(c:Concept {id: $id}) "
            "WHERE f.polarity = 'absent' RETURN p.id AS patient ORDER BY patient",
            "params": {"id": "UMLS:C0032227"},
        },
    ).json()
    assert body == {
        "columns": ["patient"],
        "rows": [["P001"], ["P004"], ["P005"]],
        "truncated": False,
    }
    capped = client.post("/query", json={"cypher": "MATCH (c:Concept) RETURN c.id", "limit": 500})
    assert len(capped.json()["rows"]) == 50 and capped.json()["truncated"]  # server cap is 50


@pytest.mark.parametrize(
    "cypher", ["MATCH (n) DETACH DELETE n", "CREATE (:Patient {id: 'x'})", "MATCH (n RETURN n"]
)
def test_query_rejects_writes_and_bad_syntax(client, cypher) -> None:
    response = client.post("/query", json={"cypher": cypher})
    assert response.status_code == 400 and response.json()["error"] == "QueryError"
    assert client.get("/health").json()["nodes"]["Concept"] == len(read_seed_concepts())


def test_app_factory_builds_nothing_at_import() -> None:
    import api.rest

    assert not hasattr(api.rest, "app")
    app = create_app(Settings())
    assert {"/health", "/query", "/patients/{patient_id}"} <= set(app.openapi()["paths"])


@pytest.mark.timeout(60)
def test_query_timeout_answers_400(client) -> None:
    heavy = (
        "MATCH (a:Concept), (b:Concept), (c:Concept), (e:Concept), (f:Concept) "
        "WHERE a.name < b.name AND b.name < c.name AND c.name + e.name + f.name <> 'x' "
        "RETURN count(*)"
    )
    response = client.post("/query", json={"cypher": heavy, "timeout_s": 0.3})
    assert response.status_code == 400 and "timeout" in response.json()["detail"]


def test_diagnose_without_a_trained_model_answers_409(client, settings) -> None:
    response = client.post("/patients/P001/diagnose")
    assert response.status_code == 409 and response.json()["error"] == "ModelError"
    assert str(settings.resolved_model_dir) in response.json()["detail"]
    assert "train one first" in response.json()["detail"]
    assert client.post("/patients/P999/diagnose").status_code == 404  # the patient comes first
    assert client.get("/model").status_code == 409


def test_every_error_has_the_same_body(client) -> None:
    missing = client.get("/patients/P999")
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "unknown patient 'P999'",
        "error": "NotFound",
    }
    assert client.get("/no/such/route").json()["error"] == "NotFound"
    not_allowed = client.delete("/health")
    assert not_allowed.json()["error"] == "MethodNotAllowed"
    assert not_allowed.headers["content-type"] == "application/problem+json"


def test_put_stores_the_patient_as_given_images_included(client) -> None:
    imaged = {
        "id": "P200",
        "images": [{"id": "i1", "modality": "CR"}],
        "findings": [
            {
                "concept_id": "UMLS:C0032227",
                "confidence": 0.9,
                "provenance": {
                    "kind": "image",
                    "image_id": "i1",
                    "model_id": "m",
                    "probability": 0.9,
                },
            }
        ],
    }
    assert client.put("/patients/P200", json=imaged).status_code == 204
    assert len(client.get("/patients/P200").json()["images"]) == 1
    # A PUT without images replaces them: the stored images are not carried over.
    assert client.put("/patients/P200", json={"id": "P200"}).status_code == 204
    body = client.get("/patients/P200").json()
    assert body["images"] == [] and body["findings"] == []
    assert client.delete("/patients/P200").status_code == 204
