"""The store lock of the REST service serves waiting threads in arrival order."""

from __future__ import annotations

import threading
import time

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
