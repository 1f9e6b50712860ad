"""api/checkpoints.py: the embedded store's checkpoints in the REST service's own thread, with the
store lock held, never in the commit (on the event loop) that made one due."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

import graph.stores.ladybug_transactions as transactions
from api.checkpoints import BackgroundCheckpoints
from api.fair_lock import FairLock
from api.rest import create_app
from graph.records import Patient
from graph.settings import Settings
from graph.stores.embedded import EmbeddedStore


def _until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(transactions, "CHECKPOINT_EVERY_COMMITS", 3)
    with EmbeddedStore(Settings(home=tmp_path, db_path=tmp_path / "kg.lbug")) as opened:
        yield opened


def test_the_thread_checkpoints_once_it_has_the_store_lock(store):
    wal = store.path.with_name(store.path.name + ".wal")
    lock = FairLock()
    checkpoints = BackgroundCheckpoints(store, lock).start()
    try:
        with lock:  # as a request holds it: the checkpoint waits its turn
            for i in range(3):
                store.upsert_patient(Patient(id=f"P{i}"))
            time.sleep(0.3)
            assert checkpoints.runs == 0 and wal.stat().st_size > 0
        _until(lambda: checkpoints.runs == 1)
        assert not wal.exists() and checkpoints.longest_s > 0
        for i in range(3, 6):  # the next one is asked for again
            with lock:
                store.upsert_patient(Patient(id=f"P{i}"))
        _until(lambda: checkpoints.runs == 2)
        assert not wal.exists()
    finally:
        assert checkpoints.close()  # the thread ended
    assert store._checkpoint_later is None
    for i in range(6, 9):  # handed back: the commit that makes one due checkpoints itself
        store.upsert_patient(Patient(id=f"P{i}"))
    assert not wal.exists() and checkpoints.runs == 2
    assert len(store.patient_ids()) == 9


def test_a_failed_checkpoint_is_asked_for_again_when_the_next_comes_due(store, monkeypatch):
    """LadybugDB refusing a checkpoint fails no write (each commit is in the log): the thread
    counts only those that succeeded and serves the next request."""
    wal = store.path.with_name(store.path.name + ".wal")
    lock = FairLock()
    real = store.connection.execute
    refused = []

    def refuse_once(statement, *args, **kwargs):
        if statement == "CHECKPOINT" and not refused:
            refused.append(threading.current_thread().name)
            raise RuntimeError("IO exception: disk full")  # as LadybugDB raises its errors
        return real(statement, *args, **kwargs)

    monkeypatch.setattr(store.connection, "execute", refuse_once)
    checkpoints = BackgroundCheckpoints(store, lock).start()
    try:
        for i in range(3):
            with lock:  # as the service writes: the store held
                store.upsert_patient(Patient(id=f"P{i}"))
        _until(lambda: refused)
        assert refused == ["kgdx-checkpoints"] and checkpoints.runs == 0 and wal.exists()
        for i in range(3, 6):  # the next comes due after as many commits again
            with lock:
                store.upsert_patient(Patient(id=f"P{i}"))
        _until(lambda: checkpoints.runs == 1)
        assert not wal.exists() and checkpoints.close()
    finally:
        checkpoints.close()
    assert len(store.patient_ids()) == 6


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_service_checkpoints_off_the_event_loop(trained, monkeypatch):
    """Diagnoses whose rows change make checkpoints due in the commits of their batches on
    the loop; every checkpoint runs in the checkpoint thread."""
    settings, _, cases = trained
    settings = settings.model_copy(update={"server_model_worker": False})  # one process
    monkeypatch.setattr(transactions, "CHECKPOINT_EVERY_COMMITS", 4)
    ran_in: list[str] = []
    real = transactions.Transactions._checkpoint_now

    def spied(self):
        ran_in.append(threading.current_thread().name)
        return real(self)

    monkeypatch.setattr(transactions.Transactions, "_checkpoint_now", spied)
    patient = next(iter(cases))
    with TestClient(create_app(settings)) as client:
        store = client.app.state.store
        assert store._checkpoint_later == client.app.state.checkpoints.request
        for turn in range(10):  # the paths change every turn: every row is rewritten
            response = client.post(
                f"/v1/patients/{patient}/diagnoses",
                params={"refresh": True, "paths_per_diagnosis": 1 + turn % 2},
            )
            assert response.status_code == 200, response.text
        _until(lambda: client.app.state.checkpoints.runs >= 2)
        assert set(ran_in) == {"kgdx-checkpoints"}
    assert store._checkpoint_later is None  # handed back before the store closed
