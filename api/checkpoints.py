"""The embedded store's own checkpoints in a thread of the REST service, off the event loop.

The store folds its write-ahead log into the database every
:data:`~graph.stores.ladybug_transactions.CHECKPOINT_EVERY_COMMITS` write transactions, in the
commit that makes one due. In the service that commit is most often a batch of diagnoses'
saves on the event loop (:mod:`api.loop_share`), and a checkpoint after patient writes takes
100-300 ms (LadybugDB rewrites every relationship table the writes touched, ~40 ms a table;
measured in process on the demo store: a checkpoint after one patient's ingest 130-175 ms,
after nothing 8 ms). On the loop it stalled every request that long, reads answered from
memory included: beside a feed of 5 patients a second, reads p99 rose to 56-60 ms with
400-600 ms stalls (``bench/api_load.py`` phase 5).

:class:`BackgroundCheckpoints` takes them over (:meth:`EmbeddedStore.defer_checkpoints
<graph.stores.ladybug_transactions.Transactions.defer_checkpoints>`): the commit only sets an
event, and a thread waits for the store lock in its turn (the lock is first come, first served:
:mod:`api.fair_lock`), runs the checkpoint if it is still due, and lets go. Meanwhile the loop
serves every request that does not need the store (reads answered from the memo, diagnoses'
model runs) and the store's stages wait for the lock without holding the loop. LadybugDB
releases the GIL while it checkpoints.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

logger = logging.getLogger(__name__)
SLOW_S = 1.0  # a checkpoint that took longer is logged (a warning: every store call waited)


class BackgroundCheckpoints:
    """The store's checkpoints, run in a daemon thread with ``lock`` held.

    ``store`` is an :class:`~graph.stores.embedded.EmbeddedStore`; ``lock`` the app's store lock
    (every other use of the store holds it). :meth:`start` hands the checkpoints over,
    :meth:`close` takes them back (commits after it checkpoint inline again) and ends the thread.
    """

    def __init__(
        self, store: Any, lock: AbstractContextManager[Any], *, name: str = "kgdx-checkpoints"
    ) -> None:
        self._store, self._lock = store, lock
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.runs = 0  # checkpoints this thread ran
        self.longest_s = 0.0  # the longest of them, the store held

    def start(self) -> BackgroundCheckpoints:
        self._thread.start()
        self._store.defer_checkpoints(self.request)
        return self

    def request(self) -> None:
        """A commit found a checkpoint due (any thread; returns at once)."""
        self._wanted.set()

    def _serve(self) -> None:
        try:
            while self._serve_one():
                pass
        except Exception:  # died: the store's commits checkpoint themselves again
            logger.exception("the store's checkpoint thread failed; commits checkpoint inline")
            self._store.take_back_checkpoints(self.request)

    def _serve_one(self) -> bool:
        """Wait for a request and run the checkpoint; whether to go on."""
        self._wanted.wait()
        if self._stopping:
            return False
        self._wanted.clear()  # commits from now on ask again (each holds the store lock)
        with self._lock:
            if self._stopping:  # the store may be closing
                return False
            began = time.perf_counter()
            ran = self._store.checkpoint_if_due()
            took = time.perf_counter() - began
        if ran is None:  # done meanwhile (a researcher's query took one) or not due yet
            return True
        if not ran:  # LadybugDB's error is not raised: the commit stands, in the log
            logger.warning("store checkpoint failed after %.0f ms; the next comes due as usual",
                           took * 1000)  # fmt: skip
            return True
        self.runs += 1
        self.longest_s = max(self.longest_s, took)
        log = logger.warning if took > SLOW_S else logger.debug
        log("store checkpoint: %.0f ms (the store was held meanwhile)", took * 1000)
        return True

    def close(self, timeout: float = 60.0) -> bool:
        """Hand the checkpoints back to the store's commits (if they are still this thread's)
        and end the thread, waiting for a checkpoint that is running; whether it ended. Call
        it from a thread that does not hold the store lock (not the event loop: the lock's
        waiters there may be queued ahead of this thread)."""
        self._store.take_back_checkpoints(self.request)
        self._stopping = True
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        return not self._thread.is_alive()


__all__ = ["BackgroundCheckpoints"]
