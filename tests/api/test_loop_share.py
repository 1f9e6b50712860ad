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


def test_stages_take_turns_in_arrival_order_and_a_cancelled_one_leaves_the_queue() -> None:
    """Stages of diagnoses in flight through the model worker (several wait at once) run one
    at a time, first come first served; one cancelled while queued is skipped, and one
    cancelled while it holds the turn passes it on."""
    import asyncio

    share = LoopShare()
    order: list[str] = []

    async def stage(name: str, hold: float) -> None:
        async with share.turn():
            order.append(name)
            await asyncio.sleep(hold)

    async def main() -> None:
        first = asyncio.create_task(stage("a", 0.05))
        await asyncio.sleep(0)
        queued = [asyncio.create_task(stage(n, 0.01)) for n in ("b", "c", "d")]
        await asyncio.sleep(0)
        queued[1].cancel()  # c, waiting its turn
        await asyncio.gather(first, queued[0], queued[2], return_exceptions=True)
        holder = asyncio.create_task(stage("e", 10))
        await asyncio.sleep(0.01)
        holder.cancel()  # e, holding the turn
        await asyncio.wait_for(stage("f", 0), timeout=1)

    asyncio.run(main())
    assert order == ["a", "b", "d", "e", "f"]
