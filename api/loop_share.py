"""The event loop shared between the diagnoses' store stages that run on it and every other
request.

A diagnosis's store work runs on the event loop (``api/routers/diagnoses.py``): in a worker
thread it competed with the loop for the GIL, and beside 20 clients reading it got a tenth of
it. :meth:`LoopShare.run` queues such a stage (a diagnosis's subgraph read or its save, a whole
in-process diagnosis, a patient's first read); one runner takes the queued stages in arrival
order and runs them back to back as a batch, up to ``batch_s`` of loop time, inside the guard's
locks. After a batch that held the loop for ``d`` seconds while other requests were coming in,
the next starts no sooner than ``share * d`` later, and always after a round of the loop; with
no other requests batches follow each other at once.

Each stage that waited for a turn of its own paid a round of the busy loop (every ready
request's step, ~10 ms beside 20 readers) before it started, and the turn stood idle meanwhile.

:class:`CountRequests` (pure ASGI middleware) counts the requests that reach the app; the
diagnose route counts its own, and the difference says whether others came in meanwhile. All
of it runs on the event loop thread, so plain integers suffice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

T = TypeVar("T")
# The loop time one batch of diagnosis stages may take before the others' turn (a stage is
# ~2-4 ms on the demo model), and the others' share of it after (Settings.server_stage_batch_s
# and server_read_share). bench/api_load.py, 20 diagnosing beside 20 reading clients, 15 s
# each, 16 worker slots: share 0.5 and 20 ms batches 93 diagnoses/s, p99 286 ms, reads p99
# 36 ms; share 0.25 and 30 ms 119/s, reads p99 49 ms; share 0 and 10 ms 113/s, reads p99 98 ms.
BATCH_S = 0.020
SHARE = 0.5
# A stage that needs the model waits this long for the model lock (a readiness probe holds it
# for a few ms) before it is refused (StageRefused) and run in a thread (a reload holds it for
# seconds); meanwhile its batch retries every MODEL_RETRY_S.
MODEL_PATIENCE_S = 0.25
MODEL_RETRY_S = 0.002


class LoopShare:
    """The diagnoses' stages on the loop, run in batches (:meth:`run`), and the others' share of
    the loop between batches.

    ``guard`` makes the context each batch runs in (the diagnose route's: the model lock if it
    is free, and the store lock, waited for on the loop); it yields whether it holds the model
    lock. Without one, batches run bare. ``group`` (the embedded store's
    :meth:`~graph.stores.ladybug_transactions.Transactions.commit_group`) makes the context the
    stages of a batch run in, inside the guard: their writes share one transaction and one
    sync of the log, and their results are handed out once it has committed. When the group
    breaks (a write in it failed and everything in it was rolled back), every stage that had
    run in it, the failed one included, runs again on its own, so each request gets the result
    of its own work; a stage whose error did not break the group keeps its error.
    """

    def __init__(
        self,
        guard: Callable[[], AbstractAsyncContextManager[bool]] | None = None,
        *,
        batch_s: float = BATCH_S,
        share: float = SHARE,
        group: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        self.requests = 0  # requests that reached the app (CountRequests)
        self.diagnoses = 0  # of which POST .../diagnoses (the route)
        self.guard = guard
        self.group = group
        self.batch_s = batch_s
        self.share = share
        self._others_seen = 0
        self._resume_at = 0.0
        self._jobs: deque[_Job] = deque()
        self._runner: asyncio.Future | None = None

    async def wait_turn(self) -> None:
        """Before a batch: wait out the others' share of the last one."""
        delay = self._resume_at - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)
        else:  # at least a round of the loop: every ready request takes a step first
            await asyncio.sleep(0)

    async def run(self, work: Callable[[], T], *, needs_model: bool = True) -> T:
        """``work()`` on the loop, in arrival order, in a batch with the stages queued beside
        it; its result. A stage that does not need the model (a patient read) runs whenever
        the store lock is had. Its exception is raised here. One cancelled while queued is
        skipped; a stage that ran stays done (a save stays saved).

        Raises:
            StageRefused: it needs the model and the guard could not have the model lock
                within ``MODEL_PATIENCE_S`` (a reload holds it): the caller runs it in a
                thread. It did not run.
        """
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(work, future, needs_model, time.monotonic()))
        if self._runner is None:
            self._runner = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        failure: BaseException | None = None
        try:
            while self._jobs:
                await self.wait_turn()
                guard = self.guard() if self.guard is not None else _bare()
                async with guard as model_held:
                    began = time.perf_counter()
                    waiting = self._batch(model_held, began)
                    held = time.perf_counter() - began
                self.ran_on_loop(held)
                if waiting and len(waiting) == len(self._jobs):  # only stages the model holds up
                    await anyio.sleep(MODEL_RETRY_S)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._runner = None
            while self._jobs:  # the guard failed, or the runner was cancelled (shutdown)
                job = self._jobs.popleft()
                if job.future.done():
                    continue
                if isinstance(failure, Exception):  # e.g. the store lock's wait failed
                    job.future.set_exception(_as_settable(failure))
                else:
                    job.future.cancel()

    def _batch(self, model_held: bool, began: float) -> list[_Job]:
        """Run the queued stages until ``batch_s`` has passed, in one commit group if there is
        one; those that need the model while the guard has not got it go back to the queue's
        front (or are refused once they have waited ``MODEL_PATIENCE_S``). The stages put
        back."""
        waiting: list[_Job] = []
        ran: list[tuple[_Job, BaseException | None, Any]] = []
        breaker: _Job | None = None  # the stage whose failed write broke the group
        group = self.group() if self.group is not None else contextlib.nullcontext(_UNGROUPED)
        state: Any = _UNGROUPED
        try:
            with group as state:
                while self._jobs and time.perf_counter() - began < self.batch_s:
                    job = self._jobs.popleft()
                    if job.future.done():  # its request was cancelled while queued
                        continue
                    if job.needs_model and not model_held:
                        if time.monotonic() - job.queued < MODEL_PATIENCE_S:
                            waiting.append(job)
                        else:
                            job.future.set_exception(StageRefused("the model lock stayed held"))
                        continue
                    try:
                        ran.append((job, None, job.work()))
                    except BaseException as exc:  # raised in its own request, not the runner
                        ran.append((job, exc, None))
                        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit
                            raise
                        if state.broken:
                            breaker = job
                            break
        except BaseException:  # an interrupt: the group, if any, was rolled back
            self._jobs.extendleft(reversed(waiting))
            for job, exc, value in ran:
                if exc is not None:
                    job.future.set_exception(_as_settable(exc))
                elif state is _UNGROUPED:  # its writes are committed
                    job.future.set_result(value)
                else:
                    job.future.cancel()  # its writes were rolled back with the group
            raise
        self._jobs.extendleft(reversed(waiting))
        rerun = not state.committed
        try:
            for job, exc, value in ran:
                if rerun and (exc is None or job is breaker):
                    exc, value = _run_alone(job)
                if exc is not None:
                    job.future.set_exception(_as_settable(exc))
                else:
                    job.future.set_result(value)
        finally:  # an interrupt in a re-run: the stages not answered yet are cancelled
            for job, _, _ in ran:
                if not job.future.done():
                    job.future.cancel()
        return waiting

    def ran_on_loop(self, seconds: float) -> None:
        """After a batch held the loop ``seconds``: if other requests came in since the last
        one, give them ``share`` times as long before the next (a sleep on a busy loop wakes
        a round late, and that round is theirs too)."""
        others = self.requests - self.diagnoses
        if others != self._others_seen:
            self._resume_at = time.monotonic() + seconds * self.share
        self._others_seen = others


class StageRefused(Exception):
    """A stage that needs the model did not run: a model reload held the model lock."""


@dataclass
class _Job:
    work: Callable[[], Any]
    future: asyncio.Future
    needs_model: bool
    queued: float  # time.monotonic() when queued


class _Ungrouped:
    """The commit group of a batch without one: every write committed on its own."""

    broken = False
    committed = True


_UNGROUPED = _Ungrouped()


def _run_alone(job: _Job) -> tuple[BaseException | None, Any]:
    """A stage run again outside the group (its first run was rolled back with the group)."""
    try:
        return None, job.work()
    except Exception as exc:
        return exc, None


def _as_settable(exc: BaseException) -> BaseException:
    """An exception a future can hold (``StopIteration`` cannot be set on one)."""
    if isinstance(exc, StopIteration):
        return RuntimeError(f"a stage raised StopIteration: {exc!r}")
    return exc


@contextlib.asynccontextmanager
async def _bare() -> AsyncIterator[bool]:
    yield True


class CountRequests:
    """Count every HTTP request that reaches the app in ``app.state.loop_share``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            share = getattr(getattr(scope.get("app"), "state", None), "loop_share", None)
            if share is not None:
                share.requests += 1
        await self.app(scope, receive, send)


__all__ = ["CountRequests", "LoopShare", "StageRefused"]
