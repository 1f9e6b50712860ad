"""api/loop_share.py: diagnoses on the event loop leave it to other requests in turn."""

from __future__ import annotations

import contextlib
import time

import anyio
from fastapi.testclient import TestClient

from api.loop_share import LoopShare, StageRefused
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
    """Batches and their spacing as measured by the guard: each batch ends within one stage
    of ``batch_s``, every stage ran once in order, and the next batch started no sooner than
    ``share`` times the last one's length after it (other requests are coming in)."""
    import asyncio

    share = LoopShare(batch_s=0.02, share=1.0)
    share.requests = 5  # other requests are coming in, and keep coming
    ran: list[str] = []
    spans: list[tuple[float, float, int]] = []  # (start, end, stages) of each batch

    @contextlib.asynccontextmanager
    async def guard():
        began, before = time.monotonic(), len(ran)
        yield True
        spans.append((began, time.monotonic(), len(ran) - before))
        share.requests += 1

    share.guard = guard

    def stage(name: str):
        def work() -> None:
            ran.append(name)
            time.sleep(0.015)

        return work

    async def main() -> None:
        await asyncio.gather(*(share.run(stage(n)) for n in "abcd"))

    asyncio.run(main())
    assert ran == list("abcd")
    assert len(spans) >= 2 and sum(n for *_, n in spans) == 4
    for (start, end, _), (after, _, _) in zip(spans, spans[1:], strict=False):
        assert after - end >= (end - start) - 0.002  # the others' share (1.0 x), timer slack


def test_a_stage_waits_for_the_model_lock_while_reads_go_on() -> None:
    """While something holds the model lock briefly (a readiness probe), a stage that needs
    the model waits for a batch that has it, in order; a read runs at once."""
    import asyncio

    share = LoopShare()
    free = {"model": False}
    ran: list[str] = []

    @contextlib.asynccontextmanager
    async def guard():
        yield free["model"]

    share.guard = guard

    async def main() -> list:
        diagnosis = asyncio.create_task(share.run(lambda: ran.append("save") or "saved"))
        read = asyncio.create_task(
            share.run(lambda: ran.append("read") or "body", needs_model=False)
        )
        assert await read == "body"
        await asyncio.sleep(0.05)
        assert ran == ["read"] and not diagnosis.done()
        free["model"] = True  # the probe let go
        return [await diagnosis]

    assert asyncio.run(main()) == ["saved"]
    assert ran == ["read", "save"]


def test_errors_reach_their_own_requests_and_a_failing_guard_fails_the_queue() -> None:
    """A stage raising StopIteration (which a future cannot hold) gets a RuntimeError, the
    next stage still runs; a guard whose lock wait fails hands that error to every queued
    stage (not a cancellation), and the next stage starts a new runner."""
    import asyncio

    share = LoopShare()

    def stops():
        raise StopIteration("done early")

    async def first() -> list:
        return await asyncio.gather(
            share.run(stops), share.run(lambda: "after"), return_exceptions=True
        )

    stopped, after = asyncio.run(first())
    assert isinstance(stopped, RuntimeError) and "StopIteration" in str(stopped)
    assert after == "after"

    broken = {"yes": True}

    @contextlib.asynccontextmanager
    async def guard():
        if broken["yes"]:
            raise OSError("the store lock's wait failed")
        yield True

    share.guard = guard

    async def second() -> list:
        failed = await asyncio.gather(
            share.run(lambda: 1), share.run(lambda: 2), return_exceptions=True
        )
        broken["yes"] = False
        return [*failed, await share.run(lambda: 3)]

    one, two, three = asyncio.run(second())
    assert isinstance(one, OSError) and isinstance(two, OSError)
    assert three == 3


def test_stages_the_model_lock_holds_up_too_long_are_refused_and_never_run() -> None:
    """While a model reload holds the model lock past the stages' patience, they are refused
    (their callers run them in a thread) and none of them ran."""
    import asyncio

    @contextlib.asynccontextmanager
    async def refused():
        yield False

    share = LoopShare(guard=refused)
    ran: list[int] = []

    async def main() -> list:
        stages = (share.run(lambda i=i: ran.append(i)) for i in range(3))
        return await asyncio.gather(*stages, return_exceptions=True)

    assert [type(a) for a in asyncio.run(main())] == [StageRefused] * 3
    assert ran == []


def test_a_batch_commits_its_stages_writes_together_and_reruns_them_when_one_fails(
    store, transactions
):
    """With the embedded store's commit group: one commit for a batch's writes, and when a
    write fails the stages that ran in the group run again alone, so each request gets the
    result of its own work; an error that wrote nothing does not break the group."""
    import asyncio

    from graph.errors import StoreError
    from graph.records import Patient

    store.upsert_patient(Patient(id="P0"))
    runs: list[str] = []

    def write(pid: str):
        def work() -> str:
            runs.append(pid)
            store.upsert_patient(Patient(id=pid))
            return pid

        return work

    def refuse() -> None:
        runs.append("refused")
        raise ValueError("not this one")  # before any write

    def duplicate() -> None:
        runs.append("duplicate")
        store._write([("CREATE (:Patient {id: 'P0'})", {})])

    async def main(stages):  # one batch, whatever the machine's speed
        share = LoopShare(group=store.commit_group, batch_s=60)
        return await asyncio.gather(*(share.run(s) for s in stages), return_exceptions=True)

    transactions.clear()
    answers = asyncio.run(main([write("P1"), refuse, write("P2")]))
    commits = list(transactions)
    assert answers[0] == "P1" and isinstance(answers[1], ValueError) and answers[2] == "P2"
    assert runs == ["P1", "refused", "P2"] and store.patient_ids() == ["P0", "P1", "P2"]
    assert commits == ["BEGIN TRANSACTION", "COMMIT"]  # both writes in one transaction
    runs.clear()
    answers = asyncio.run(main([write("P3"), refuse, duplicate, write("P4")]))
    assert answers[0] == "P3" and answers[3] == "P4"
    assert isinstance(answers[1], ValueError) and isinstance(answers[2], StoreError)
    # P3 ran in the group the duplicate broke, then alone; P4 in the next batch
    assert runs == ["P3", "refused", "duplicate", "P3", "duplicate", "P4"]
    assert store.patient_ids() == ["P0", "P1", "P2", "P3", "P4"]
