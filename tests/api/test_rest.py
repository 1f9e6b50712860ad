"""The REST v1 app against a real embedded store holding the seed KG and the guide's patients."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from api.rest import create_app
from graph.records import Patient
from graph.settings import Settings
from graph.stores import open_store
from tests.docs.conftest import GUIDE_PATIENTS, load_guide_graph


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    folder = tmp_path_factory.mktemp("rest")
    settings = Settings(
        home=folder, db_path=folder / "rest.lbug", query_row_limit=50, extract_warmup=False
    )
    with open_store("embedded", settings=settings) as store:
        load_guide_graph(store)
    return settings


@pytest.fixture(scope="module")
def client(settings):
    # Entering the client runs the lifespan: the app opens (and later closes) the store itself.
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _count(client, cypher: str, **params) -> int:
    answer = client.post("/v1/query", json={"cypher": cypher, "params": params})
    return answer.json()["rows"][0][0]


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
    absent = _count(
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
    linked = _count(
        client,
        "MATCH (:Patient {id: 'P102'})-[f:HAS_FINDING]->(c:Concept {id: $c}) "
        "WHERE f.polarity = 'absent' RETURN count(*)",
        c="UMLS:C0032227",
    )
    assert linked == 1
    assert client.delete("/v1/patients/P102").status_code == 204


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


def test_a_multipart_body_without_a_patient_part_or_of_another_type(client) -> None:
    files = [("images", ("a.png", _png(3), "image/png"))]
    assert client.post("/v1/patients", files=files).status_code == 422
    bad_json = client.post("/v1/patients", data={"patient": "{"}, files=files)
    assert bad_json.status_code == 422 and bad_json.json()["errors"][0]["loc"][0] == "patient"
    text = client.post("/v1/patients", content=b"id=1", headers={"content-type": "text/plain"})
    assert text.status_code == 415


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
    found = _count(
        client,
        "MATCH (x:Prediction {model_id: 'm2'}) WHERE x.kg_release = $r RETURN count(*)",
        r=release,
    )
    assert found == 1
