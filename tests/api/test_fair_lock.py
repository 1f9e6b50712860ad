"""The store lock of the REST service serves waiting threads in arrival order."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from api.fair_lock import FairLock


def test_waiters_get_the_lock_in_arrival_order() -> None:
    lock, order = FairLock(), []
    lock.acquire()
    threads = []
    for n in range(6):
        thread = threading.Thread(
            target=lambda n=n: (lock.acquire(), order.append(n), lock.release())
        )
        thread.start()
        threads.append(thread)
        while len(lock._waiters) < n + 1:  # queued before the next one starts
            time.sleep(0.001)
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == list(range(6))
    assert not lock.locked()


def test_a_timed_out_waiter_leaves_the_queue_and_the_lock_still_works() -> None:
    lock = FairLock()
    with lock:
        assert lock.acquire(timeout=0.05) is False
        assert lock.acquire(blocking=False) is False
        assert not lock._waiters
    assert lock.acquire(timeout=0.05) is True
    lock.release()
    with pytest.raises(RuntimeError, match="unheld"):
        lock.release()


def test_an_event_loop_waiter_keeps_its_place_among_the_threads() -> None:
    """``acquire_async`` queues in arrival order like a thread, and the loop runs on meanwhile."""
    lock, order = FairLock(), []
    lock.acquire()
    first = threading.Thread(
        target=lambda: (lock.acquire(), order.append("thread"), lock.release())
    )
    first.start()
    while not lock._waiters:
        time.sleep(0.001)

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await anyio.sleep(0.001)

        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            threading.Timer(0.05, lock.release).start()
            await lock.acquire_async()
            order.append("loop")
            assert ticks > 5  # the loop was not blocked while it waited
            lock.release()
            group.cancel_scope.cancel()

    anyio.run(main)
    first.join(5)
    assert order == ["thread", "loop"]
    assert not lock.locked()


def test_a_release_wakes_the_loop_waiter_at_once() -> None:
    """The hand-over wakes a waiting task (it does not look again by itself for 10 s here):
    released by another thread, and by another task on the same loop."""
    lock = FairLock()

    async def main() -> None:
        lock.acquire()

        def release_once_queued() -> None:  # so the hand-over, not a free lock, lets it in
            while not lock._waiters:
                time.sleep(0.001)
            lock.release()

        threading.Thread(target=release_once_queued, daemon=True).start()
        started = time.monotonic()
        await lock.acquire_async(recheck=10)
        assert time.monotonic() - started < 2
        assert lock._owner == threading.get_ident()

        got = anyio.Event()

        async def waiter() -> None:
            await lock.acquire_async(recheck=10)
            got.set()

        async with anyio.create_task_group() as group:
            group.start_soon(waiter)
            while not lock._waiters:
                await anyio.sleep(0.001)
            lock.release()  # this loop's task hands it to the other
            with anyio.fail_after(2):
                await got.wait()
        lock.release()

    anyio.run(main)
    assert not lock.locked()


def test_a_cancelled_loop_waiter_leaves_the_queue() -> None:
    lock = FairLock()
    lock.acquire()

    async def main() -> None:
        with anyio.move_on_after(0.05):
            await lock.acquire_async()
        assert not lock._waiters

    anyio.run(main)
    lock.release()
    assert not lock.locked()
    assert lock.acquire(blocking=False) is True  # nothing stuck
    lock.release()


def test_a_loop_waiter_cancelled_as_the_lock_reaches_it_passes_it_on() -> None:
    lock = FairLock()
    lock.acquire()

    async def main() -> None:
        async with anyio.create_task_group() as group:

            async def waiter() -> None:
                await lock.acquire_async(recheck=10)  # looks again only after 10 s

            group.start_soon(waiter)
            while not lock._waiters:
                await anyio.sleep(0.001)
            lock.release()  # handed over: the waiter holds it but has not looked yet
            assert lock.locked() and not lock._waiters
            group.cancel_scope.cancel()

    anyio.run(main)
    assert not lock.locked()


def test_the_holder_taking_it_again_is_an_error_not_a_hang() -> None:
    """Not re-entrant: a blocking acquire without a timeout by the holding thread raises (on
    the event loop's thread it would freeze the server); a try-acquire answers False; other threads still
    wait their turn, and after a hand-over the new holder is the one refused."""
    import threading

    lock = FairLock()
    lock.acquire()
    with pytest.raises(RuntimeError, match="not re-entrant"):
        lock.acquire()
    assert lock.acquire(blocking=False) is False
    got = threading.Event()

    def other() -> None:
        lock.acquire()
        got.set()
        with pytest.raises(RuntimeError):
            lock.acquire()
        assert lock.acquire(timeout=0.01) is False  # with a timeout it just times out
        lock.release()

    thread = threading.Thread(target=other)
    thread.start()
    lock.release()  # handed to the other thread
    thread.join(5)
    assert got.is_set() and not lock.locked()
    assert lock.acquire(timeout=0.1) is True  # this thread again, nothing stuck
    lock.release()

    async def on_the_loop() -> None:
        await lock.acquire_async()
        try:
            with pytest.raises(RuntimeError, match="not re-entrant"):
                lock.acquire()  # a stage on the loop taking the store lock again
        finally:
            lock.release()

    anyio.run(on_the_loop)
    assert not lock.locked()
