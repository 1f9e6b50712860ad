"""A first-come, first-served lock for the embedded store (``app.state.store_lock``).

``threading.Lock`` hands itself to whichever waiting thread the scheduler wakes and gets the
GIL first, usually the thread that just released it. Under the load bench's 20 readers a
diagnosis, which takes the store lock four times for short calls, lost almost every race: 4
diagnoses a second beside 250 reads. :class:`FairLock` serves waiters in arrival order, so a
waiter is passed by at most the threads that were already queued when it came.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType

import anyio


class FairLock:
    """A non-reentrant mutual-exclusion lock granted in FIFO order, with ``threading.Lock``'s
    ``acquire(blocking, timeout)`` / ``release`` / ``with`` interface."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            if not blocking:
                return False
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        # release() hands the lock over by releasing our ``turn`` (``_held`` stays True)
        if turn.acquire(timeout=timeout if timeout is not None and timeout >= 0 else -1):
            return True
        with self._mutex:
            if turn in self._waiters:  # timed out while still queued: leave the queue
                self._waiters.remove(turn)
                return False
        # handed over just as the wait timed out: we hold it; pass it on
        self.release()
        return False

    async def acquire_async(self, poll: float = 0.0005) -> None:
        """Wait for the lock on the event loop, in the same arrival order as the threads:
        the loop keeps serving other requests meanwhile (it polls the hand-over every ``poll``
        seconds). Cancelled while waiting, it leaves the queue, or passes the lock on when it
        was handed over just then."""
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        try:
            while not turn.acquire(blocking=False):
                await anyio.sleep(poll)
        except BaseException:
            with self._mutex:
                if turn in self._waiters:
                    self._waiters.remove(turn)
                    raise
            self.release()  # handed over while being cancelled: the next waiter's turn
            raise

    def release(self) -> None:
        with self._mutex:
            if not self._held:
                raise RuntimeError("release of an unheld FairLock")
            if self._waiters:
                self._waiters.popleft().release()  # ownership passes; _held stays True
            else:
                self._held = False

    def locked(self) -> bool:
        with self._mutex:
            return self._held

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
