"""The REST v1 app against a real embedded store holding the seed KG and the guide's patients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.rest import create_app
from graph.settings import Settings
from tests.api.rest_fixtures import app_client, count, guide_store_settings


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return guide_store_settings(tmp_path_factory, "rest")


@pytest.fixture(scope="module")
def client(settings) -> Iterator[TestClient]:
    yield from app_client(settings)


def test_healthz_and_readyz(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")  # the store answers, but no model is saved
    assert ready.status_code == 503
    assert ready.json() | {"detail": ""} == {
        "status": "not_ready",
        "store": True,
        "model": False,
        "detail": "",
    }
    assert "/tmp" not in ready.text  # no model folder for anonymous callers


def test_the_unversioned_routes_are_gone(client) -> None:
    for path in ("/health", "/patients", "/concepts/UMLS:C0032227", "/model"):
        assert client.get(path).status_code == 404, path
    assert client.post("/query", json={"cypher": "RETURN 1"}).status_code == 404


def test_concept_search_ranks_name_synonym_and_pages(client) -> None:
    body = client.get("/v1/concepts", params={"q": "Pleural Effusion"}).json()
    assert body["items"][0]["id"] == "UMLS:C0032227"
    assert body["items"][0]["score"] == 1.0 and body["items"][0]["matched"] == "name"
    synonym = client.get("/v1/concepts", params={"q": "chf"}).json()["items"][0]
    assert synonym["id"] == "UMLS:C0018802" and synonym["matched"] == "synonym"
    by_id = client.get("/v1/concepts", params={"q": "umls:c0018800"}).json()["items"][0]
    assert by_id["name"] == "cardiomegaly" and by_id["matched"] == "id"
    every = client.get("/v1/concepts", params={"q": "pulmonary", "limit": 100}).json()
    assert every["total"] == len(every["items"]) >= 4
    scores = [hit["score"] for hit in every["items"]]
    assert scores == sorted(scores, reverse=True)
    page = client.get("/v1/concepts", params={"q": "pulmonary", "offset": 2, "limit": 2}).json()
    assert [h["id"] for h in page["items"]] == [h["id"] for h in every["items"][2:4]]
    assert client.get("/v1/concepts", params={"q": "zzqx"}).json()["total"] == 0
    assert client.get("/v1/concepts").status_code == 422  # q is required
    assert client.get("/v1/concepts", params={"q": "a", "limit": 101}).status_code == 422


def test_concept_lookup_neighbours_paths(client) -> None:
    body = client.get("/v1/concepts/UMLS:C0032227").json()
    assert body["name"] == "pleural effusion" and body["kind"] == "finding"
    missing = client.get("/v1/concepts/UMLS:C0000000")
    assert missing.status_code == 404 and missing.json()["error"] == "UnknownConceptError"
    near = client.get(
        "/v1/concepts/UMLS:C0032227/neighbours",
        params={"direction": "in", "types": ["HAS_FINDING"]},
    ).json()
    assert "UMLS:C0018802" in {n["concept"]["id"] for n in near["neighbours"]}
    paths = client.get("/v1/concepts/UMLS:C0032227/paths/UMLS:C0018802").json()["paths"]
    assert paths[0][-1]["concept"]["id"] == "UMLS:C0018802"


def test_graph_is_ready_to_draw(client) -> None:
    graph = client.get("/v1/patients/P001/graph").json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["P001"]["kind"] == "patient"
    assert nodes["UMLS:C0018800"] | {} == {
        "id": "UMLS:C0018800",
        "kind": "finding",
        "label": "cardiomegaly",
        "assertion": "present",
        "assertions": ["present"],
    }
    assert nodes["UMLS:C0032227"]["assertion"] == "absent"  # "No pleural effusion."
    assert nodes["UMLS:C0018802"]["kind"] == "diagnosis" and nodes["UMLS:C0018802"]["rank"] == 1
    edges = {e["id"]: e for e in graph["edges"]}
    assert all(e["source"] in nodes and e["target"] in nodes for e in edges.values())
    chf = next(d for d in graph["diagnoses"] if d["concept_id"] == "UMLS:C0018802")
    first = [edges[e] for e in chf["paths"][0]["edges"]]
    assert [e["type"] for e in first] == ["HAS_FINDING", "FINDING_OF"]
    assert first[0]["source"] == "P001" and first[-1]["target"] == "UMLS:C0018802"
    assert all(chf["paths"][0]["id"] in e["paths"] for e in first)
    assert first[0]["evidence"] == ['"Heart size is enlarged."']
    assert client.get("/v1/patients/P999/graph").status_code == 404


def test_stored_diagnoses_carry_rank_model_and_time(client) -> None:
    body = client.get("/v1/patients/P001/diagnoses").json()
    assert body["patient_id"] == "P001"
    assert [(d["concept_id"], d["probability"], d["rank"]) for d in body["diagnoses"]] == [
        ("UMLS:C0018802", 0.86, 1),
        ("UMLS:C0032285", 0.08, 2),
    ]
    first = body["diagnoses"][0]
    assert first["model_id"] == "hgt-demo" and first["created"]
    assert first["paths"][0]["node_names"][1] == "cardiomegaly"
    assert client.get("/v1/patients/P999/diagnoses").status_code == 404


def test_diagnose_without_a_trained_model_answers_409(client, settings) -> None:
    response = client.post("/v1/patients/P001/diagnoses")
    assert response.status_code == 409 and response.json()["error"] == "ModelError"
    assert str(settings.resolved_model_dir) in response.json()["detail"]
    assert client.post("/v1/patients/P999/diagnoses").status_code == 404  # the patient first
    assert client.get("/v1/model").status_code == 409


def test_query_runs_read_only_with_parameters_and_caps(client) -> None:
    body = client.post(
        "/v1/query",
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
    capped = client.post(
        "/v1/query", json={"cypher": "MATCH (c:Concept) RETURN c.id", "limit": 500}
    )
    assert len(capped.json()["rows"]) == 50 and capped.json()["truncated"]  # server cap is 50
    # a misspelt parameter name is an error, not an empty answer
    unbound = client.post(
        "/v1/query",
        json={"cypher": "MATCH (p:Patient {id: $id}) RETURN p.id", "params": {"pid": "P001"}},
    )
    assert unbound.status_code == 400 and unbound.json()["error"] == "QueryError"
    assert "$id" in unbound.json()["detail"]


@pytest.mark.parametrize(
    "cypher", ["MATCH (n) DETACH DELETE n", "CREATE (:Patient {id: 'x'})", "MATCH (n RETURN n"]
)
def test_query_rejects_writes_and_bad_syntax(client, cypher) -> None:
    response = client.post("/v1/query", json={"cypher": cypher})
    assert response.status_code == 400 and response.json()["error"] == "QueryError"
    assert client.get("/v1/patients").json()["total"] == 5


def test_app_factory_builds_nothing_at_import() -> None:
    import api.rest

    assert not hasattr(api.rest, "app")
    app = create_app(Settings())
    assert {"/healthz", "/v1/query", "/v1/patients/{patient_id}"} <= set(app.openapi()["paths"])


@pytest.mark.timeout(60)
def test_query_timeout_answers_400(client) -> None:
    heavy = (
        "MATCH (a:Concept), (b:Concept), (c:Concept), (e:Concept), (f:Concept) "
        "WHERE a.name < b.name AND b.name < c.name AND c.name + e.name + f.name <> 'x' "
        "RETURN count(*)"
    )
    response = client.post("/v1/query", json={"cypher": heavy, "timeout_s": 0.3})
    assert response.status_code == 400 and "timeout" in response.json()["detail"]


def test_every_error_has_the_same_body(client) -> None:
    missing = client.get("/v1/patients/P999")
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "unknown patient 'P999'",
        "error": "NotFound",
    }
    assert client.get("/no/such/route").json()["error"] == "NotFound"
    not_allowed = client.delete("/healthz")
    assert not_allowed.json()["error"] == "MethodNotAllowed"
    assert not_allowed.headers["content-type"] == "application/problem+json"


def test_kg_release_is_stored_with_the_prediction_and_shown(client) -> None:
    from graph.records import Diagnosis

    store = client.app.state.store
    release = "kgdx-chest-seed:2026-11 sha256:0123456789ab"
    made = Diagnosis(
        concept_id="UMLS:C0032285", name="pneumonia", probability=0.3, model_id="m2",
        kg_release=release,
    )  # fmt: skip
    with client.app.state.store_lock:
        store.save_predictions("P003", [made])
    body = client.get("/v1/patients/P003/diagnoses").json()["diagnoses"]
    assert {(d["model_id"], d["kg_release"]) for d in body} >= {("m2", release)}
    graph = client.get("/v1/patients/P003/graph").json()
    assert any(d["kg_release"] == release for d in graph["diagnoses"])
    found = count(
        client,
        "MATCH (x:Prediction {model_id: 'm2'}) WHERE x.kg_release = $r RETURN count(*)",
        r=release,
    )
    assert found == 1
