"""api/loop_share.py: diagnoses on the event loop leave it to other requests in turn."""

from __future__ import annotations

import time

import anyio
from fastapi.testclient import TestClient

from api.loop_share import LoopShare
from api.rest import create_app
from graph.settings import Settings


def _waited(share: LoopShare) -> float:
    began = time.perf_counter()
    anyio.run(share.wait_turn)
    return time.perf_counter() - began


def test_diagnoses_alone_run_back_to_back() -> None:
    share = LoopShare()
    share.requests = share.diagnoses = 4  # every request so far was a diagnosis
    share.ran_on_loop(0.2)
    assert _waited(share) < 0.1


def test_other_requests_get_as_long_as_the_diagnosis_held_the_loop() -> None:
    share = LoopShare()
    share.requests, share.diagnoses = 6, 2  # four others came in
    share.ran_on_loop(0.15)
    assert _waited(share) >= 0.12
    assert _waited(share) < 0.05  # that share is given once
    share.ran_on_loop(0.15)  # no other request since: no pause
    assert _waited(share) < 0.05


def test_the_app_counts_every_request(tmp_path) -> None:
    settings = Settings(home=tmp_path, db_path=tmp_path / "kg.lbug")
    with TestClient(create_app(settings)) as client:
        share = client.app.state.loop_share
        before = share.requests
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
        assert client.get("/v1/nowhere").status_code == 404
        assert share.requests == before + 4
        assert share.diagnoses == 0
