"""api/loop_share.py: diagnoses on the event loop leave it to other requests in turn."""

from __future__ import annotations

import contextlib
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


def test_other_requests_get_their_share_of_the_time_the_batch_held_the_loop() -> None:
    share = LoopShare(share=1.0)
    share.requests, share.diagnoses = 6, 2  # four others came in
    share.ran_on_loop(0.15)
    assert _waited(share) >= 0.12
    assert _waited(share) < 0.05  # that share is given once
    share.ran_on_loop(0.15)  # no other request since: no pause
    assert _waited(share) < 0.05
    half = LoopShare()  # the default: half as long
    half.requests = 3
    half.ran_on_loop(0.3)
    assert 0.12 <= _waited(half) < 0.25


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


def test_stages_run_in_arrival_order_in_batches_and_a_cancelled_one_is_skipped() -> None:
    """Stages queued before a batch starts run in it, first come first served; one cancelled
    while queued never runs; an error reaches its own caller only; a later stage is a new
    batch."""
    import asyncio

    share = LoopShare(batch_s=1.0)
    order: list[str] = []
    batches: list[list[str]] = []

    def stage(name: str):
        def work() -> str:
            if name == "boom":
                raise ValueError("bad patient")
            order.append(name)
            return name.upper()

        return work

    @contextlib.asynccontextmanager
    async def guard():
        batches.append([])
        start = len(order)
        yield True
        batches[-1] = order[start:]

    share.guard = guard

    async def main() -> list:
        first = asyncio.create_task(share.run(stage("a")))
        await asyncio.sleep(0)  # "a" starts the runner, which waits a round of the loop
        queued = [asyncio.create_task(share.run(stage(n))) for n in ("b", "c", "boom", "d")]
        await asyncio.sleep(0)
        queued[1].cancel()  # c, still queued
        answers = await asyncio.gather(first, *queued, return_exceptions=True)
        return [*answers, await share.run(stage("e"))]

    a, b, c, boom, d, e = asyncio.run(main())
    assert (a, b, d, e) == ("A", "B", "D", "E")
    assert isinstance(c, asyncio.CancelledError)
    assert isinstance(boom, ValueError) and str(boom) == "bad patient"
    assert order == ["a", "b", "d", "e"]
    assert batches == [["a", "b", "d"], ["e"]]


def test_a_batch_stops_at_its_time_and_the_others_get_their_share_before_the_next() -> None:
    import asyncio

    share = LoopShare(batch_s=0.02, share=1.0)
    share.requests, share.diagnoses = 5, 0  # other requests are coming in
    ran: list[tuple[str, float]] = []

    def stage(name: str):
        def work() -> None:
            ran.append((name, time.perf_counter()))
            time.sleep(0.015)

        return work

    async def main() -> None:
        jobs = [share.run(stage(n)) for n in ("a", "b", "c")]
        share.requests += 1  # another request meanwhile
        await asyncio.gather(*jobs)

    asyncio.run(main())
    names = [n for n, _ in ran]
    assert names == ["a", "b", "c"]
    gap = ran[2][1] - ran[1][1]  # a and b filled the batch (30 ms > 20 ms); c waited
    assert gap >= 0.015 + 0.025  # b's own 15 ms, then the others' share of the 30 ms batch


def test_a_refused_batch_answers_none_and_runs_nothing() -> None:
    """While a model reload holds the model lock the guard refuses: the stages answer
    ``None`` (their callers run them in a thread) and none of them ran."""
    import asyncio

    @contextlib.asynccontextmanager
    async def refused():
        yield False

    share = LoopShare(guard=refused)
    ran: list[int] = []

    async def main() -> list:
        return await asyncio.gather(*(share.run(lambda i=i: ran.append(i)) for i in range(3)))

    assert asyncio.run(main()) == [None, None, None]
    assert ran == []
