"""A first-come, first-served lock for the embedded store (``app.state.store_lock``).

``threading.Lock`` hands itself to whichever waiting thread the scheduler wakes and gets the
GIL first, usually the thread that just released it. Under the load bench's 20 readers a
diagnosis, which takes the store lock four times for short calls, lost almost every race: 4
diagnoses a second beside 250 reads. :class:`FairLock` serves waiters in arrival order, so a
waiter is passed by at most the threads that were already queued when it came.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType

import anyio


class _Turn:
    """A waiter's place in the queue: ``lock`` is released to hand it the store lock, and
    ``wake`` (an event-loop waiter's) is called after that to wake its task."""

    __slots__ = ("lock", "wake")

    def __init__(self, wake: Callable[[], None] | None = None) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.wake = wake


class FairLock:
    """A non-reentrant mutual-exclusion lock granted in FIFO order, with ``threading.Lock``'s
    ``acquire(blocking, timeout)`` / ``release`` / ``with`` interface."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._owner: int | None = None  # the holding thread's ident, once it has the lock
        self._waiters: deque[_Turn] = deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, waiting in arrival order when ``blocking``.

        Raises:
            RuntimeError: a blocking acquire without a timeout by the thread that holds it
                (it is not re-entrant: that would wait forever; on the event loop's thread, a store stage
                that took the store lock again would freeze the whole server).
        """
        me = threading.get_ident()
        with self._mutex:
            if not self._held and not self._waiters:
                self._held, self._owner = True, me
                return True
            if not blocking:
                return False
            if self._owner == me and (timeout is None or timeout < 0):
                raise RuntimeError("FairLock is not re-entrant: this thread already holds it")
            turn = _Turn()
            self._waiters.append(turn)
        # release() hands the lock over by releasing our turn (``_held`` stays True)
        if turn.lock.acquire(timeout=timeout if timeout is not None and timeout >= 0 else -1):
            self._owner = me
            return True
        with self._mutex:
            if turn in self._waiters:  # timed out while still queued: leave the queue
                self._waiters.remove(turn)
                return False
        # handed over just as the wait timed out: we hold it; pass it on
        self.release()
        return False

    async def acquire_async(self, *, recheck: float = 0.1) -> None:
        """Wait for the lock on the event loop, in the same arrival order as the threads: the
        loop keeps serving other requests meanwhile. :meth:`release` wakes the waiting task
        when it hands the lock over (``call_soon_threadsafe``, from whichever thread
        released); it also looks every ``recheck`` seconds, which only matters if a wake-up
        were ever lost (polling instead took CPU from the loop behind a store checkpoint of
        several hundred ms: docs/rest.md, Load). Cancelled while waiting, it leaves the queue,
        or passes the lock on when it was handed over just then.

        Raises:
            RuntimeError: called outside a running asyncio event loop.
        """
        with self._mutex:
            if not self._held and not self._waiters:
                self._held, self._owner = True, threading.get_ident()
                return
            loop, ready = asyncio.get_running_loop(), anyio.Event()
            turn = _Turn(lambda: loop.call_soon_threadsafe(ready.set))
            self._waiters.append(turn)
        try:
            while not turn.lock.acquire(blocking=False):
                with anyio.move_on_after(recheck):
                    await ready.wait()
            self._owner = threading.get_ident()
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
            self._owner = None
            if not self._waiters:
                self._held = False
                return
            turn = self._waiters.popleft()
            turn.lock.release()  # ownership passes; _held stays True
        if turn.wake is not None:
            try:
                turn.wake()
            except RuntimeError:  # its loop has closed: no task is left to wake
                pass

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
