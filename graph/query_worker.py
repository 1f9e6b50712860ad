"""The query worker process: ``python -m graph.query_worker`` runs one researcher query.

Started by :mod:`graph.query_runner` (as a warm spare that has already imported LadybugDB, or on
demand). It reads one job (a JSON line) from stdin, confines itself (:mod:`graph.sandbox`), opens
the database read-only with a small buffer pool, runs the query and writes its answer as JSON
lines (:mod:`graph.query_wire`) on the file descriptor that was its stdout, then exits. Its own
stdout is pointed at stderr first, so nothing the engine prints can corrupt the answer.

Answer lines, in order: ``{"hello": pid}`` once the imports are done (before the job is read),
``{"ready": <sandbox report>}`` once the database is open; then
``{"columns": [...]}``, one JSON array per row, and ``{"end": {"truncated": bool}}``; or, at any
point, ``{"error": {"kind": ..., "message": ...}}``. ``kind`` is ``timeout``, ``memory``,
``bytes`` (the byte cap) or ``query``. The worker enforces the row limit and the byte cap while it
fetches rows; the parent checks both again, and the deadline, whatever the worker does.
"""

from __future__ import annotations

import dataclasses
import datetime  # noqa: F401  (imported before the sandbox: LadybugDB converts values with it)
import decimal  # noqa: F401
import json
import os
import sys
import traceback  # noqa: F401  (a late import would be refused by the sandbox)
import uuid  # noqa: F401
from pathlib import Path
from typing import Any, BinaryIO

import ladybug

from graph import query_wire as wire
from graph.sandbox import apply_sandbox

MIN_MAP_BYTES = 256 << 20
# Queries yield the CPU to the service: /health and other requests stay fast while a query
# keeps every core of the worker busy.
NICENESS = 10


def map_size(db_file: Path) -> int:
    """``max_db_size`` for a read-only open: a power of two (LadybugDB requires it) at least twice
    the database and its WAL; this much address space is reserved, not used."""
    used = sum(p.stat().st_size for p in (db_file, wal_file(db_file)) if p.exists())
    size = MIN_MAP_BYTES
    while size < 2 * used:
        size *= 2
    return size


def wal_file(db_file: Path) -> Path:
    return db_file.with_name(db_file.name + ".wal")


class _Answer:
    """The answer pipe, counting the bytes it has written against the byte cap."""

    def __init__(self, out: BinaryIO, max_bytes: int) -> None:
        self.out = out
        self.max_bytes = max_bytes
        self.written = 0

    def send(self, message: Any, *, counted: bool = False) -> bool:
        line = wire.dumps(message)
        if counted:
            self.written += len(line)
            if self.written > self.max_bytes:
                return False
        self.out.write(line)
        return True

    def error(self, kind: str, message: str) -> None:
        self.out.write(wire.dumps({"error": {"kind": kind, "message": message}}))


def _classify(message: str) -> str:
    lowered = message.lower()
    if "interrupt" in lowered or "timeout" in lowered:
        return "timeout"
    if "bad_alloc" in lowered or "out of memory" in lowered or "buffer pool" in lowered:
        return "memory"
    return "query"


def run(job: dict[str, Any], answer: _Answer) -> None:
    """Sandbox, open, run ``job`` and write its answer (see the module docstring)."""
    db_file = Path(job["db"])
    size = map_size(db_file)
    pool = job["buffer_pool_mb"] << 20
    report = apply_sandbox(
        [p for p in (db_file, wal_file(db_file)) if p.exists()],
        address_space_bytes=(job["memory_mb"] << 20) + size,
    )
    try:
        db = ladybug.Database(
            str(db_file),
            read_only=True,
            buffer_pool_size=pool,
            max_db_size=size,
            max_num_threads=job["threads"],
        )
        connection = ladybug.Connection(db)
        connection.set_query_timeout(job["timeout_ms"])
    except (RuntimeError, MemoryError) as exc:
        answer.error("open", f"cannot open the database read-only: {exc}")
        return
    answer.send({"ready": dataclasses.asdict(report)})
    answer.out.flush()
    row_limit = job["row_limit"]
    try:
        params = wire.decode_value(job["params"])
        result = connection.execute(job["cypher"], params)
        if isinstance(result, list):
            answer.error("query", "one statement per query")
            return
        answer.send({"columns": list(result.get_column_names())})
        fetched = 0
        while fetched <= row_limit and result.has_next():
            row = [wire.encode_value(value) for value in result.get_next()]
            fetched += 1
            if fetched > row_limit:
                break  # one row past the limit only says the answer was truncated
            if not answer.send(row, counted=True):
                answer.error("bytes", f"the answer passed the {answer.max_bytes} byte cap")
                return
        answer.send({"end": {"truncated": fetched > row_limit}})
    except RuntimeError as exc:
        answer.error(_classify(str(exc)), str(exc))
    except MemoryError:
        answer.error("memory", "the query ran out of the worker's memory cap")
    except wire.WireError as exc:
        answer.error("query", str(exc))


def warm_up() -> None:
    """Load what LadybugDB imports lazily (its backend, the value converters) on a throwaway
    in-memory database, closed again so that its threads end: the sandbox then confines the
    only thread, and the engine threads the real database starts inherit it."""
    db = ladybug.Database(":memory:", buffer_pool_size=16 << 20, max_num_threads=1)
    connection = ladybug.Connection(db)
    connection.execute(_WARM_UP).get_all()
    connection.close()
    db.close()


_WARM_UP = (
    "RETURN date('2020-01-01'), timestamp('2020-01-01 00:00:00'), interval('1 day'), "
    "CAST(1.5 AS DECIMAL(4, 2)), gen_random_uuid(), BLOB('a'), {a: [1]}, map([1], ['a'])"
)


def main() -> int:
    os.nice(NICENESS)
    warm_up()
    answer_fd = os.dup(1)
    os.dup2(2, 1)  # whatever the engine prints goes to stderr, never into the answer
    sys.stdout = sys.stderr
    with os.fdopen(answer_fd, "wb", buffering=1 << 16) as out:
        out.write(wire.dumps({"hello": os.getpid()}))  # imports done: ready for a job
        out.flush()
        line = sys.stdin.buffer.readline()
        if not line:
            return 0  # a spare the parent never used
        job = json.loads(line)
        run(job, _Answer(out, job["max_bytes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
