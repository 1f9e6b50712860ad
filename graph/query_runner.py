"""Run researcher queries of the embedded store in worker processes, with hard limits.

LadybugDB's own timeout is checked only between operators (a query that builds a huge list
ran 17 s past a 1 s timeout, a bigger one killed the process with ``std::bad_alloc``), so the
query runs in a child process (:mod:`graph.query_worker`), confined by :mod:`graph.sandbox`,
and the parent holds the limits whatever the engine does:

- a memory cap (``RLIMIT_AS``: ``query_memory_mb`` plus the address space reserved to map the
  database file), a buffer pool of a quarter of it;
- a deadline: the worker is killed ``DEADLINE_GRACE_S`` after the query's timeout;
- a byte cap (``query_max_bytes``) on the answer, counted by the worker while it fetches rows and
  again by the parent while it reads the pipe (it kills a worker that sends more), beside the
  row limit;
- the answer is JSON with tagged types (:mod:`graph.query_wire`), never pickle.

Every failure of the worker (an engine error, a signal, ``bad_alloc``, the deadline, a garbled or
oversized answer) is a :class:`~graph.errors.QueryError`; the worker is always reaped and its
pipes closed. At most ``query_workers`` queries run at once; a query that finds them all busy
waits for one, and that wait counts against its timeout. ``query_warm_workers`` spares that have
already imported LadybugDB are kept started, which saves most of a cold start (each worker runs
one query, since its sandbox cannot be lifted).
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph import query_wire as wire
from graph.errors import QueryError, StoreError
from graph.log import logger
from graph.store import QueryResult

DEADLINE_GRACE_S = 0.5
FRAMING_BYTES = 64 << 10  # the parent's allowance for the header and end lines
_STDERR_TAIL = 4096
_warned: set[str] = set()  # sandbox warnings already logged by this process
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class QueryJob:
    """One query for a worker, with its limits."""

    db: Path
    cypher: str
    params: dict[str, Any]
    timeout_s: float
    row_limit: int
    max_bytes: int
    memory_mb: int
    threads: int = 2

    def message(self) -> bytes:
        try:
            params = wire.encode_value(self.params)
        except wire.WireError as exc:
            raise QueryError(f"bad parameter: {exc}") from None
        return wire.dumps(
            {
                "db": str(self.db),
                "cypher": self.cypher,
                "params": params,
                # LadybugDB reads 0 ms as "no timeout": never round a tiny timeout down to it.
                "timeout_ms": max(1, int(self.timeout_s * 1000 + 0.999)),
                "row_limit": self.row_limit,
                "max_bytes": self.max_bytes,
                "memory_mb": self.memory_mb,
                "buffer_pool_mb": max(16, self.memory_mb // 4),
                "threads": self.threads,
            }
        )


class QueryWorker:
    """One worker process; runs at most one :class:`QueryJob`.


    Args:
        command: the program to run (default: ``python -m graph.query_worker``; tests pass
            misbehaving ones).
    """

    def __init__(self, command: list[str] | None = None) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p
            ),
        }
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "graph.query_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self._answer = bytearray()
        self._stderr = bytearray()
        self._open = {self.process.stdout.fileno(), self.process.stderr.fileno()}

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, job: QueryJob) -> None:
        message = job.message()
        try:
            self.process.stdin.write(message)
            self.process.stdin.close()
        except OSError:
            pass  # a dead worker: read() reports how it ended

    def read(self, deadline: float, max_bytes: int, *, until_lines: int = 0) -> None:
        """Read until the worker has sent ``until_lines`` lines or (0) its last answer line
        (``end`` or ``error``), or closed its pipes.

        Raises:
            QueryError: the deadline passed or the answer passed ``max_bytes`` (worker killed).
        """
        out_fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            for fd in self._open:
                selector.register(fd, selectors.EVENT_READ)
            while self._open and not self._enough(until_lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    raise QueryError("timeout")
                for key, _ in selector.select(remaining):
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        selector.unregister(key.fd)
                        self._open.discard(key.fd)
                    elif key.fd == out_fd:
                        self._answer += chunk
                        if len(self._answer) > max_bytes + FRAMING_BYTES:
                            self.kill()
                            raise QueryError(
                                f"the answer passed the {max_bytes} byte cap "
                                "(KGDX_QUERY_MAX_BYTES); return fewer or smaller values"
                            )
                    else:
                        self._stderr = (self._stderr + chunk)[-_STDERR_TAIL:]

    def _enough(self, until_lines: int) -> bool:
        if until_lines:
            return self._answer.count(b"\n") >= until_lines
        if not self._answer.endswith(b"\n"):
            return False
        last = self._answer[self._answer.rfind(b"\n", 0, len(self._answer) - 1) + 1 :]
        return last.startswith((b'{"end":', b'{"error":'))

    def lines(self) -> list[Any]:
        return [wire.loads(line) for line in bytes(self._answer).splitlines()]

    def sandbox_report(self) -> dict[str, Any] | None:
        """What the worker's sandbox applied (its ``ready`` line), if it got that far."""
        for line in bytes(self._answer).splitlines()[:2]:
            message = wire.loads(line)
            if isinstance(message, dict) and isinstance(message.get("ready"), dict):
                return message["ready"]
        return None

    def result(self, job: QueryJob) -> QueryResult:
        """The rows of a worker that has ended (read and reaped).

        Raises:
            QueryError: the worker reported an error, died, or sent anything but an answer.
        """
        return _result(self, job)

    def how_it_ended(self) -> str:
        code = self.process.returncode  # reaped before the answer is read
        tail = bytes(self._stderr).decode("utf-8", "replace")
        if "bad_alloc" in tail or "MemoryError" in tail:
            return "the query worker ran out of its memory cap (KGDX_QUERY_MEMORY_MB)"
        if code < 0:
            return f"the query worker was killed by {signal.Signals(-code).name}"
        return f"the query worker exited with status {code} before it answered"

    def kill(self) -> None:
        if self.alive():
            self.process.kill()

    def reap(self) -> None:
        """Kill (if still running), wait for, and close the pipes of the process."""
        try:
            self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


def _result(worker: QueryWorker, job: QueryJob) -> QueryResult:
    """The worker's answer, checked line by line (raises QueryError on anything else)."""
    try:
        lines = worker.lines()
    except wire.WireError as exc:
        raise QueryError(f"the query worker sent a garbled answer ({exc})") from None
    control = [line for line in lines if isinstance(line, dict)]
    _log_sandbox_warnings(control)
    for line in control:
        if "error" in line:
            error = line["error"]
            kind = error.get("kind") if isinstance(error, dict) else None
            if kind == "timeout":
                raise QueryError(f"query stopped after the {job.timeout_s:g} s timeout")
            if kind == "memory":
                raise QueryError(
                    f"query ran out of its {job.memory_mb} MiB memory cap "
                    "(KGDX_QUERY_MEMORY_MB); narrow it"
                )
            if kind == "bytes":
                raise QueryError(
                    f"the answer passed the {job.max_bytes} byte cap "
                    "(KGDX_QUERY_MAX_BYTES); return fewer or smaller values"
                )
            detail = error.get("message") if isinstance(error, dict) else error
            raise QueryError(f"query failed: {detail}")
    if len(control) != 4 or "end" not in control[-1]:  # hello, ready, columns, end
        raise QueryError(worker.how_it_ended())
    try:
        columns = tuple(str(name) for name in control[2]["columns"])
        truncated = bool(control[-1]["end"]["truncated"])
        rows = tuple(tuple(wire.decode_value(row)) for row in lines if isinstance(row, list))
    except (KeyError, TypeError, wire.WireError) as exc:
        raise QueryError(f"the query worker sent a garbled answer ({exc})") from None
    if len(rows) > job.row_limit or any(len(row) != len(columns) for row in rows):
        raise QueryError("the query worker sent a garbled answer (rows do not fit the header)")
    return QueryResult(columns=columns, rows=rows, truncated=truncated)


def _log_sandbox_warnings(control: list[dict[str, Any]]) -> None:
    """Log each sandbox warning of the workers once per service (the worker's own log goes to
    its stderr, which the parent keeps only to explain a crash)."""
    report = control[1].get("ready") if len(control) > 1 else None
    warnings = report.get("warnings") if isinstance(report, dict) else None
    for warning in warnings if isinstance(warnings, list) else ():
        if isinstance(warning, str) and warning not in _warned:
            _warned.add(warning)
            logger.warning("query worker sandbox: %s", warning[:300])


class QueryPool:
    """Bounded concurrency and warm spares for one store's query workers.

    Args:
        workers: at most this many queries run at once.
        warm: spare workers kept started (0: every query starts a cold worker).
    """

    def __init__(self, *, workers: int, warm: int) -> None:
        self._slots = threading.BoundedSemaphore(workers)
        self._warm = warm
        self._spares: list[QueryWorker] = []
        self._lock = threading.Lock()
        self.running = 0

    def _take(self) -> QueryWorker:
        with self._lock:
            worker = None
            while self._spares and worker is None:
                spare = self._spares.pop()
                if spare.alive():
                    worker = spare
                else:
                    spare.reap()
        return worker if worker is not None else QueryWorker()

    def _refill(self) -> None:
        """Start spares up to ``warm`` (after a query, so their imports do not slow it)."""
        with self._lock:
            while len(self._spares) < self._warm:
                self._spares.append(QueryWorker())

    def run(
        self,
        job: QueryJob,
        start: Callable[[], Any],
        *,
        on_worker: Callable[[QueryWorker], None] | None = None,
    ) -> QueryResult:
        """Run ``job`` in a worker and return its rows.

        Args:
            job: the query and its limits.
            start: a context manager factory held while the worker opens the database (the
                store takes its lock there and checkpoints), released while the query runs.
            on_worker: called with the worker once the job was sent (tests kill it there).

        Raises:
            QueryError: anything the query or its worker did wrong (see the module docstring).
            StoreError: every worker stayed busy for the whole timeout.
        """
        began = time.monotonic()
        deadline = began + job.timeout_s + DEADLINE_GRACE_S
        if not self._slots.acquire(timeout=job.timeout_s):
            raise StoreError("every query worker stayed busy for the whole timeout; retry later")
        worker, counted = None, False
        try:
            worker = self._take()
            self._read(worker, job, deadline, until_lines=1)  # imports done, outside the lock
            with start():
                with self._lock:
                    self.running += 1
                counted = True
                worker.send(job)
                if on_worker is not None:
                    on_worker(worker)
                self._read(worker, job, deadline, until_lines=2)  # sandboxed, database open
            self._read(worker, job, deadline)
            worker.kill()  # its answer is complete: no need to wait for its shutdown
            worker.reap()
            return worker.result(job)
        finally:
            if worker is not None:
                worker.kill()
                worker.reap()
            if counted:
                with self._lock:
                    self.running -= 1
            self._refill()
            self._slots.release()

    @staticmethod
    def _read(worker: QueryWorker, job: QueryJob, deadline: float, **kwargs: Any) -> None:
        try:
            worker.read(deadline, job.max_bytes, **kwargs)
        except QueryError as exc:
            if str(exc) == "timeout":
                raise QueryError(
                    f"query stopped after the {job.timeout_s:g} s timeout (its worker was killed)"
                ) from None
            raise

    def close(self) -> None:
        """Stop the spares (a running query's worker is reaped by its own call)."""
        with self._lock:
            spares, self._spares = self._spares, []
        for spare in spares:
            spare.kill()
            spare.reap()
