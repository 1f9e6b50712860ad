"""api/model_worker.py: diagnoses scored in a model worker process, against the real embedded
store and a trained reasoner; the same answers as in process, and a dead worker costs nothing
but its own jobs."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from fastapi.testclient import TestClient

from api.rest import create_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _diagnoses(client: TestClient, patient_id: str) -> list[dict]:
    response = client.post(f"/v1/patients/{patient_id}/diagnoses", params={"refresh": True})
    assert response.status_code == 200, response.text
    return [{k: v for k, v in d.items() if k != "created"} for d in response.json()["diagnoses"]]


def _until_scored_in_the_worker(client: TestClient, patient_id: str, more_than: int = 0):
    """Diagnose until the worker has answered (its imports and warm-up take seconds; until
    then diagnoses run in the server process); the last answer."""
    worker = client.app.state.model_worker
    deadline = time.monotonic() + 120
    while True:
        answer = _diagnoses(client, patient_id)
        if worker.scored > more_than:
            return answer
        assert time.monotonic() < deadline, "the model worker never answered"
        time.sleep(0.2)


@contextlib.contextmanager
def _worker_serving(trained, count: int):
    """An app whose model worker has answered; yields the client, the worker, ``count`` test
    patients and each one's diagnoses alone."""
    settings, result, _ = trained
    patients = result.splits["test"][:count]
    with TestClient(create_app(settings)) as client:
        worker = client.app.state.model_worker
        _until_scored_in_the_worker(client, patients[0])
        yield client, worker, patients, {p: _diagnoses(client, p) for p in patients}


def _all_at_once(client: TestClient, patients: list[str]) -> list[list[dict]]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(patients)) as pool:
        return list(pool.map(lambda p: _diagnoses(client, p), patients))


def test_the_worker_answers_what_the_server_process_answers(trained) -> None:
    settings, result, _ = trained
    patients = result.splits["test"][:4]
    in_process = settings.model_copy(update={"server_model_worker": False})
    with TestClient(create_app(in_process)) as client:
        assert client.app.state.model_worker is None
        expected = {p: _diagnoses(client, p) for p in patients}
    with TestClient(create_app(settings)) as client:
        worker = client.app.state.model_worker
        assert _until_scored_in_the_worker(client, patients[0]) == expected[patients[0]]
        before = worker.scored
        for patient_id in patients:
            assert _diagnoses(client, patient_id) == expected[patient_id]
        assert worker.scored == before + len(patients)  # every one of them scored there
        # stored as in process: GET reads back what POST answered
        stored = client.get(f"/v1/patients/{patients[-1]}/diagnoses").json()["diagnoses"]
        assert [d["probability"] for d in stored] == [
            d["probability"] for d in expected[patients[-1]]
        ]
        pid = worker.pid
        os.kill(pid, 0)  # alive while the server is
    with pytest.raises(ProcessLookupError):  # stopped with the server
        os.kill(pid, 0)


def test_a_dead_worker_fails_only_its_jobs_and_a_new_one_takes_over(trained) -> None:
    settings, result, _ = trained
    patient_id = result.splits["test"][0]
    with TestClient(create_app(settings)) as client:
        worker = client.app.state.model_worker
        expected = _until_scored_in_the_worker(client, patient_id)
        first = worker.pid
        os.kill(first, signal.SIGKILL)
        time.sleep(0.2)
        scored = worker.scored
        assert _diagnoses(client, patient_id) == expected  # in process meanwhile
        assert worker.pid is None and worker.scored == scored
        worker._retry_at = 0.0  # a new child without the 30 s pause
        assert _until_scored_in_the_worker(client, patient_id, scored) == expected
        assert worker.pid not in (None, first)


def test_a_worker_dying_with_jobs_in_flight_costs_them_nothing(trained) -> None:
    """The child is stopped (SIGSTOP) so that jobs are surely on its socket, then killed: the
    diagnoses waiting on it are run in process and answer as they would have."""
    from concurrent.futures import ThreadPoolExecutor

    with _worker_serving(trained, 3) as (client, worker, patients, expected):
        child = worker.pid
        os.kill(child, signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(len(patients)) as pool:
                answers = pool.map(lambda p: _diagnoses(client, p), patients)
                deadline = time.monotonic() + 30
                while len(worker._pending) < len(patients):  # all three wait on the child
                    assert time.monotonic() < deadline, "the jobs never reached the child"
                    time.sleep(0.02)
                os.kill(child, signal.SIGKILL)
                assert list(answers) == [expected[p] for p in patients]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        assert worker.pid is None  # forgotten; the next diagnosis after the pause starts one


def test_concurrent_diagnoses_wait_for_a_slot_on_the_loop_not_on_the_socket(trained) -> None:
    """More diagnoses at once than ``max_pending``: at most that many jobs are on the socket
    (a send to a full socket would block the event loop), the rest wait their turn, and all
    answer what each answers alone."""
    with _worker_serving(trained, 6) as (client, worker, patients, alone):
        scored = worker.scored
        many = [patients[i % len(patients)] for i in range(worker.max_pending + 8)]
        assert _all_at_once(client, many) == [alone[p] for p in many]
        assert worker.scored > scored
        assert 1 <= worker.peak_pending <= worker.max_pending == 16
        # a job larger than the bytes allowed in flight is sent only alone
        worker.max_bytes, worker.peak_pending = 1, 0
        assert _all_at_once(client, patients) == [alone[p] for p in patients]
        assert worker.peak_pending == 1


def test_an_unchanged_patient_is_not_read_again_and_a_rewritten_one_is(trained) -> None:
    """A refresh of an unchanged patient sends its remembered diagnosis input to the worker
    (no store read, the same answer); after the patient is rewritten it is read again."""
    with _worker_serving(trained, 1) as (client, worker, patients, alone):
        engine = client.app.state.model_slot.engine
        reads: list[str] = []
        read = engine.diagnosis_input

        def counted(patient_id):
            reads.append(patient_id)
            return read(patient_id)

        engine.diagnosis_input = counted
        try:
            scored = worker.scored
            assert _diagnoses(client, patients[0]) == alone[patients[0]]
            assert reads == [] and worker.scored == scored + 1
            record = {"id": "P777", "reports": ["FINDINGS: Cardiomegaly."]}
            assert client.post("/v1/patients", json=record).status_code == 201
            first = _diagnoses(client, "P777")
            assert _diagnoses(client, "P777") == first and reads == ["P777"]
            record["reports"] = ["FINDINGS: Cardiomegaly. Large left pleural effusion."]
            assert client.post("/v1/patients", json=record).status_code == 200
            second = _diagnoses(client, "P777")
            assert reads == ["P777", "P777"] and second != first
        finally:
            engine.diagnosis_input = read


def test_a_model_reload_keeps_no_input_of_the_old_model(trained) -> None:
    """The memo's diagnosis inputs each hold the model run that read them, and the worker's end
    the run it sent; after a reload (the saved model's stamp changed) neither keeps the old
    one, so it can be freed, and the answers stay those of the (same) saved model."""
    from api.routers.deps import MODEL_CONFIG_FILE

    with _worker_serving(trained, 2) as (client, worker, patients, alone):
        memo, slot = client.app.state.diagnosis_memo, client.app.state.model_slot
        old = slot.engine.result
        assert memo.diagnosis_input(patients[0], memo.version(patients[0]), old) is not None
        config = slot.directory / MODEL_CONFIG_FILE
        stamp = config.stat().st_mtime_ns
        os.utime(config, ns=(stamp + 10**9, stamp + 10**9))
        assert _diagnoses(client, patients[1]) == alone[patients[1]]
        assert slot.engine.result is not old
        assert memo._input_run is not old and worker._run is not old  # nothing holds it here
        assert all(kept[2].run is not old for kept in memo._inputs._items.values())
        assert _diagnoses(client, patients[0]) == alone[patients[0]]
