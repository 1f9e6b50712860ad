"""Read sources ahead of the build's own thread, so a small machine's second core works too.

- A column-wise reader's relation batches (``phenotype.hpoa``) are computed on a thread from the
  start of the build: Arrow releases the GIL, so they cost the build's thread almost nothing.
- The largest single-file source of at most :data:`FORK_MAX_BYTES` (``hp.obo`` in the default
  KG) is parsed in a forked child process while the build's thread reads the others: Python
  parsing holds the GIL, so a thread would not run in parallel. The child sends back its
  concepts and relation rows as plain tuples, and its load statistics.

Forking needs ``os.fork`` (Linux); elsewhere, or with one core, every source is read in-process.
A child that fails hands its exception back (an ``InputError`` names the file and line as
usual); a child that dies is reported as a ``StoreError``.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from graph.errors import StoreError
from graph.log import logger
from graph.records import Concept
from kg_loaders.base import SourceReader
from kg_loaders.concept_cache import CachedConcept

if TYPE_CHECKING:
    import pyarrow as pa

# A bigger source is read in-process: its records would cost more to send than to parse.
FORK_MAX_BYTES = 64 << 20


class ReadAhead:
    """Concepts and relation batches of ``readers``, some computed ahead (see module doc)."""

    def __init__(self, readers: Sequence[SourceReader], *, fork: bool = True) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgdx-prefetch")
        self._forked: dict[int, _ForkedRead] = {}
        chosen = _fork_candidate(readers) if fork else None
        if chosen is not None:  # before any thread of ours starts
            try:
                self._forked[id(chosen)] = _ForkedRead(chosen)
            except OSError as exc:  # no process to spare (ulimit, memory): read in-process
                logger.warning("reading %s in-process: cannot fork (%s)", chosen.name, exc)
        self._futures = {
            id(r): self._pool.submit(lambda r=r: list(r.relation_batches()))
            for r in readers
            if r.columnar
        }

    def forked(self, reader: SourceReader) -> bool:
        """Whether ``reader`` is being read in a child process (read its concepts last)."""
        return id(reader) in self._forked

    def concepts(self, reader: SourceReader) -> Iterator[Concept | CachedConcept]:
        forked = self._forked.get(id(reader))
        if forked is None:
            return reader.concepts()
        return iter(forked.result()["concepts"])  # validated as records in the child

    def relation_batches(self, reader: SourceReader) -> Iterator[tuple[pa.Table, tuple[str, ...]]]:
        forked = self._forked.get(id(reader))
        if forked is not None:
            from kg_loaders.columns import row_tables

            streams = forked.result()["relations"]
            return ((t, sources) for rows, sources in streams for t in row_tables(rows))
        future = self._futures.pop(id(reader), None)
        return iter(future.result()) if future is not None else reader.relation_batches()

    def close(self) -> None:
        for future in self._futures.values():
            future.cancel()
        self._pool.shutdown(wait=True)
        for forked in self._forked.values():
            forked.close()


def _fork_candidate(readers: Sequence[SourceReader]) -> SourceReader | None:
    if len(readers) < 2 or not hasattr(os, "fork") or sys.platform != "linux":
        return None
    if (os.cpu_count() or 1) < 2:
        return None
    sized = [
        (r.path.stat().st_size, i)
        for i, r in enumerate(readers)
        if not r.columnar and r.path.is_file() and r.path.stat().st_size <= FORK_MAX_BYTES
    ]
    return readers[max(sized)[1]] if sized else None


class _ForkedRead:
    """One reader's records, computed by a forked child and sent back through a pipe."""

    def __init__(self, reader: SourceReader) -> None:
        self.reader = reader
        self._result: dict[str, Any] | None = None
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():  # 3.12+ warns on fork with threads (LadybugDB's idle)
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                self.pid = os.fork()
            except OSError:
                os.close(read_end)
                os.close(write_end)
                raise
        if self.pid == 0:  # the child: read, send, and leave without running any cleanup
            os.close(read_end)
            try:
                try:
                    data = _dumps(("ok", _records(reader)))
                except BaseException as exc:  # handed to the parent, which raises it
                    data = _dumps(("error", exc))
                with os.fdopen(write_end, "wb") as out:
                    out.write(data)
            finally:
                os._exit(0)
        os.close(write_end)
        self._read_end: int | None = read_end

    def result(self) -> dict[str, Any]:
        """The child's records (waits for it); its statistics are merged into the reader's.

        Raises:
            Whatever the child raised; StoreError: the child died without an answer.
        """
        if self._result is None:
            assert self._read_end is not None
            with os.fdopen(self._read_end, "rb") as handle:
                self._read_end = None
                data = handle.read()
            _, status = os.waitpid(self.pid, 0)
            if not data:
                raise StoreError(
                    f"reading {self.reader.name} ({self.reader.path}) in a worker process "
                    f"failed (exit status {status}); rerun the build"
                )
            try:
                kind, payload = pickle.loads(data)
            except (pickle.UnpicklingError, EOFError, ValueError) as exc:
                raise StoreError(
                    f"reading {self.reader.name} in a worker process: a garbled answer ({exc})"
                ) from None
            if kind == "error":
                raise payload
            vars(self.reader.stats).update(vars(payload.pop("stats")))
            self._result = payload
        return self._result

    def close(self) -> None:
        """Stop a child whose answer was never read (the build failed first)."""
        if self._read_end is None:
            return
        os.close(self._read_end)
        self._read_end = None
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _dumps(payload: tuple[str, Any]) -> bytes:
    """The child's answer; an error that cannot be pickled is sent as its text."""
    try:
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        if payload[0] == "ok":
            raise
        return pickle.dumps(("error", StoreError(f"{payload[1]!r} (in a worker process: {exc})")))


def _records(reader: SourceReader) -> dict[str, Any]:
    """What a child sends: concepts as tuples, relation rows per stream, statistics."""
    concepts = [
        CachedConcept(c.id, c.name, c.kind, c.synonyms, c.xrefs, c.sources)
        for c in reader.concepts()
    ]
    relations = [(list(rows), sources) for rows, sources in reader.relation_streams()]
    return {"concepts": concepts, "relations": relations, "stats": reader.stats}
