"""The event loop shared between diagnoses that run on it and every other request.

A diagnosis runs on the event loop when it can (``api/routers/diagnoses.py``): in a worker
thread it competed with the loop for the GIL, and beside 20 clients reading remembered patients
it got a tenth of it (4 diagnoses a second). On the loop it has the GIL for ~10-15 ms at a time;
back to back, queued diagnoses would then keep the loop from everything else. :class:`LoopShare`
alternates: after a diagnosis that held the loop for ``d`` seconds while other requests were
coming in, the next diagnosis starts no sooner than ``d`` later, so the others get at least
half of the loop; with no other requests diagnoses run back to back.

:class:`CountRequests` (pure ASGI middleware) counts the requests that reach the app; the
diagnose route counts its own, and the difference says whether others came in meanwhile. All
of it runs on the event loop thread, so plain integers suffice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send


class LoopShare:
    def __init__(self) -> None:
        self.requests = 0  # requests that reached the app (CountRequests)
        self.diagnoses = 0  # of which POST .../diagnoses (the route)
        self._others_seen = 0
        self._resume_at = 0.0
        self._turn_taken = False
        self._waiting: deque[asyncio.Future] = deque()

    async def wait_turn(self) -> None:
        """Before a diagnosis on the loop: wait out the others' share of the last one."""
        delay = self._resume_at - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)

    @contextlib.asynccontextmanager
    async def turn(self, *, share: bool = True) -> AsyncIterator[None]:
        """A stage of a diagnosis in flight through the model worker, in its turn: stages run
        one at a time in arrival order, each after the others' share of the last one (several
        wait at once, unlike whole diagnoses, which the model gate lets in one by one)."""
        if self._turn_taken or self._waiting:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._pass_turn()  # it was handed the turn as it was cancelled
                raise
        self._turn_taken = True
        try:
            if share:
                await self.wait_turn()
            yield
        finally:
            self._pass_turn()

    def _pass_turn(self) -> None:
        self._turn_taken = False
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._turn_taken = True
                waiter.set_result(None)
                return

    def ran_on_loop(self, seconds: float) -> None:
        """After a diagnosis held the loop ``seconds``: if other requests came in since the
        last one, give them as long before the next."""
        others = self.requests - self.diagnoses
        if others != self._others_seen:
            self._resume_at = time.monotonic() + seconds
        self._others_seen = others


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


__all__ = ["CountRequests", "LoopShare"]
