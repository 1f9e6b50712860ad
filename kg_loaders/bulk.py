"""Bulk writes of a fresh build, run on a background thread so the store copies while the
readers parse.

LadybugDB's ``COPY`` releases the GIL, so while it writes one table (on its own threads) the
build's Python thread goes on reading and rewriting the next source: the two cores of a small
machine both work. Writes run in submission order on one worker: concepts first, then each
relation table. The first error stops the worker and is raised by :meth:`BulkWriter.finish`.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from graph.log import logger

if TYPE_CHECKING:
    import pyarrow as pa

    from graph.store import GraphStore

_STOP = ("", None)


class BulkWriter:
    """Copy tables into ``store`` on a worker thread (``"Concept"`` or a relation type)."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        # Bounded: a build that produces tables faster than the store copies them waits here
        # rather than holding them all in memory.
        self._queue: queue.Queue[tuple[str, pa.Table | Path | None]] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kgdx-bulk-writer", daemon=True)
        self._thread.start()

    def submit(self, key: str, data: pa.Table | Path) -> None:
        """Queue one bulk write; raises at once if an earlier write failed."""
        self._raise()
        self._queue.put((key, data))

    def finish(self) -> None:
        """Wait for every queued write; raise the first error."""
        self._stop()
        self._raise()

    def close(self) -> None:
        """Stop after the write in progress (on an error path); queued writes are dropped."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            key, data = self._queue.get()
            if data is None:
                return
            if self._error is not None:
                continue
            try:
                if key == "Concept":
                    rows = self.store.copy_concepts(data)
                else:
                    rows = self.store.copy_relations(key, data)
                logger.debug("bulk-loaded %d rows into %s", rows, key)
            except BaseException as exc:  # handed to the build's thread by finish()
                self._error = exc
