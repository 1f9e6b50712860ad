"""The REST diagnosis endpoints (``/v1``) against the real embedded store and a trained reasoner.

The reasoner is trained on the demo cohort for the module with small settings (seconds); the app
reads the run from ``<home>/models/default`` as it would in production. Diagnosis goes through
``Engine.diagnose`` on the inductive path: one patient's record, never the cohort.
"""

from __future__ import annotations

import re
import shutil

import pytest
from fastapi.testclient import TestClient

from api.rest import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(trained):
    settings, _, _ = trained
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _diagnose(client, patient_id: str, **params) -> list[dict]:
    response = client.post(f"/v1/patients/{patient_id}/diagnoses", params=params)
    assert response.status_code == 200, response.text
    return response.json()["diagnoses"]


def test_model_info_is_the_saved_run(client, trained) -> None:
    _, result, _ = trained
    body = client.get("/v1/model").json()
    assert body["model_id"] == "kgdx-chest-sage-0" and body["encoder"] == "sage"
    assert body["candidate_ids"] == result.candidate_ids
    assert body["metrics"]["test"]["top1"] == pytest.approx(result.metrics["test"]["top1"])
    assert body["input_sections"] == {"include": None, "exclude": ["impression"], "unknown": True}


def test_diagnose_ranks_explains_and_stores(client, trained) -> None:
    _, result, cases = trained
    explained = 0
    for patient_id in result.splits["test"][:4]:
        diagnoses = _diagnose(client, patient_id, top_k=3)
        assert len(diagnoses) == 3
        probabilities = [d["probability"] for d in diagnoses]
        assert probabilities == sorted(probabilities, reverse=True)
        assert {d["concept_id"] for d in diagnoses} <= set(result.candidate_ids)
        assert {d["model_id"] for d in diagnoses} == {"kgdx-chest-sage-0"}
        text = " ".join(r.text for r in cases[patient_id].patient.reports)
        for diagnosis in diagnoses:
            for path in diagnosis["paths"]:
                explained += 1
                assert path["nodes"][0] == patient_id
                assert path["nodes"][-1] == diagnosis["concept_id"]
                assert len(path["relations"]) == len(path["nodes"]) - 1
                assert path["relations"][0] in ("HAS_FINDING", "HAS_FINDING_ABSENT")
                # the first step's evidence quotes the report sentence(s) that gave the finding
                sentences = re.findall(r'"([^"]+)"', path["evidence"][0])
                assert sentences and all(s in text for s in sentences)
        stored = client.get(f"/v1/patients/{patient_id}/diagnoses").json()["diagnoses"]
        assert [(d["concept_id"], d["model_id"]) for d in stored] == [
            (d["concept_id"], d["model_id"]) for d in diagnoses
        ]
        assert [d["probability"] for d in stored] == pytest.approx(probabilities)
    assert explained > 0, "no held-out diagnosis came with an explanation path"


def test_diagnose_errors(client) -> None:
    missing = client.post("/v1/patients/NOBODY/diagnoses")
    assert missing.status_code == 404
    assert client.post("/v1/patients/P001/diagnoses", params={"top_k": 0}).status_code == 422
    assert len(_diagnose(client, "P001", top_k=5, paths_per_diagnosis=0)) == 5


def test_a_new_patient_is_diagnosed_and_others_do_not_change(client, trained) -> None:
    """Inductive through REST: a patient stored after training is diagnosed from its own
    record; storing and deleting it leaves every other patient's diagnosis as it was."""
    _, result, cases = trained
    patient_id = result.splits["test"][0]
    before = _diagnose(client, patient_id, top_k=3)
    case = cases["P001"]
    body = {"id": "NEW-1", "reports": [case.patient.reports[0].text]}
    created = client.post("/v1/patients", json=body)
    assert created.status_code == 201, created.text
    assert len(_diagnose(client, "NEW-1", top_k=2)) == 2
    assert [d["probability"] for d in _diagnose(client, patient_id, top_k=3)] == [
        d["probability"] for d in before
    ]
    assert client.delete("/v1/patients/NEW-1").status_code == 204
    assert [d["probability"] for d in _diagnose(client, patient_id, top_k=3)] == [
        d["probability"] for d in before
    ]


def test_model_is_read_when_it_appears(client, trained, tmp_path) -> None:
    settings, _, _ = trained
    store = client.app.state.store  # the same open store, served by a second app
    empty = tmp_path / "model"
    other_settings = settings.model_copy(update={"model_dir": empty})
    with TestClient(create_app(other_settings, store=store)) as other:
        response = other.post("/v1/patients/P001/diagnoses")
        assert response.status_code == 409
        assert other.get("/v1/model").status_code == 409
        shutil.copytree(settings.resolved_model_dir, empty)
        assert other.get("/v1/model").json()["model_id"] == "kgdx-chest-sage-0"
        assert len(other.post("/v1/patients/P001/diagnoses").json()["diagnoses"]) == 3


def test_the_watched_file_is_the_one_the_engine_writes_last() -> None:
    from api.routers.deps import MODEL_CONFIG_FILE
    from gnn.reasoning.patients import ENGINE_FILE

    assert MODEL_CONFIG_FILE == ENGINE_FILE


def test_a_diagnosis_waits_off_the_event_loop_while_the_store_is_busy(client, trained) -> None:
    """A diagnosis runs on the event loop only when the store and model locks are free; with
    the store held elsewhere (a write, a query worker opening the database) it waits in a
    thread, the loop keeps answering, and the answer is the same."""
    import threading
    import time

    _, result, _ = trained
    patient_id = result.splits["test"][1]
    on_loop = _diagnose(client, patient_id, refresh=True)
    lock = client.app.state.store_lock
    assert lock is not None and lock.acquire(timeout=5)
    answer: dict = {}
    try:
        waiting = threading.Thread(
            target=lambda: answer.update(diagnoses=_diagnose(client, patient_id, refresh=True))
        )
        waiting.start()
        time.sleep(0.3)
        began = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        assert time.perf_counter() - began < 1.0  # the loop is not stuck on the store lock
        assert waiting.is_alive() and not answer  # the diagnosis waits for the store
    finally:
        lock.release()
    waiting.join(timeout=30)
    assert [d["probability"] for d in answer["diagnoses"]] == [d["probability"] for d in on_loop]
    assert [d["concept_id"] for d in answer["diagnoses"]] == [d["concept_id"] for d in on_loop]
