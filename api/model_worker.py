"""The served model's scoring in a process of its own, so a diagnosis uses the second core.

A diagnosis on the event loop holds it for ~10-15 ms on the chest model: about half of that
is the store (the patient's subgraph, the KG sources of its paths, the save), the other half
the model (calibrated probabilities and the occlusion that ranks the paths). In one process the
two halves share one GIL, and 20 clients saturate one core while the other idles. This worker
runs the model's half (:func:`gnn.reasoning.diagnoses.score_patient`) in a child process: the
loop reads the patient, sends its term indices (a few hundred bytes), serves other requests
while the child scores, and then builds and saves the diagnoses; several diagnoses are in
flight at once, their stages batched on the loop (:mod:`api.loop_share`; at most ``max_pending``
jobs and ``max_bytes`` on the socket: a send never blocks the loop; the others wait on the loop).

The child gets the model as a pickle of the reasoner and its term labels (~0.4 MB for the chest
model) when the server first diagnoses with it, and again whenever the served model changes;
until the child has it, diagnoses run in the server process as before. It never opens the
database. A child that dies, or a job it refuses, fails only those jobs: the caller runs them
in process (:meth:`ModelWorker.score` raises :class:`WorkerUnavailable`), and the next
diagnosis starts a new child.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gnn.reasoning.diagnoses import Scored
    from gnn.reasoning.patients import ReasoningRun
    from gnn.reasoning.pipeline import Patient

logger = logging.getLogger(__name__)
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RETRY_AFTER_S = 30.0  # after a child failed to start or died, diagnoses run in process this long


class WorkerUnavailable(Exception):
    """The worker cannot score this job (not started, another model, dead): score in process."""


def _serve(conn: Connection, threads: int) -> None:
    """The child's loop: ``("model", token, blob)`` replaces its model; ``("score", job, token,
    patient, top_k, paths)`` answers ``(job, "ok", Scored)``, ``(job, "stale", None)`` for a
    model it does not hold, or ``(job, "error", message)``; ``None`` ends it. ``threads``: the
    server's torch threads, so both compute the same numbers the same way."""
    import torch

    from gnn.reasoning.diagnoses import score_patient
    from gnn.reasoning.pipeline import Patient

    torch.set_num_threads(threads)
    token, reasoner, labels = None, None, None
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        if message[0] == "model":
            token = message[1]
            reasoner, labels = pickle.loads(message[2])
            # the first scoring encodes the KG and warms torch up (~2 s): before any job
            score_patient(reasoner, Patient("warm-up", [0], [], -1), labels, 1, 1)
            conn.send((None, "ready", token))
            continue
        _, job, wanted, patient, top_k, paths = message
        if wanted != token:
            conn.send((job, "stale", None))
            continue
        try:
            conn.send((job, "ok", score_patient(reasoner, patient, labels, top_k, paths)))
        except Exception as exc:  # the caller scores in process and raises its own error
            conn.send((job, "error", f"{type(exc).__name__}: {exc}"))


class ModelWorker:
    """The server's model worker; every method is called on the event loop's thread."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._run: ReasoningRun | None = None  # the model the child holds (or is being sent)
        self._sending: threading.Thread | None = None  # the model's bytes on their way
        self._retry_at = 0.0
        self._token = 0
        self._ready = -1  # the token of the model the child has warmed up
        self._jobs = itertools.count()
        self._pending: dict[int, asyncio.Future] = {}
        self.scored = 0  # jobs the child answered
        # Jobs on the socket at a time, and their bytes; more wait on the loop. Bytes the child
        # has not read yet count against this end's send buffer (SO_SNDBUF, 208 KB here,
        # kernel overhead included: ~17 jobs of 10 KB fit), and a send into a full one would
        # block the loop while the child may be blocked sending it answers. A job is a few
        # hundred bytes (~10 KB at 2,000 findings, Settings.max_patient_findings); at most
        # max_bytes are in flight, a larger job only alone (the child, idle, reads it). 4 jobs
        # kept the child idle between answers: beside 20 readers a job waited ~140 ms for a
        # slot and its answer, and diagnoses ran at 99 instead of 114 a second
        # (bench/api_load.py, 15 s, without a read share).
        self.max_pending = 16
        self.max_bytes = 64 * 1024
        self._bytes: dict[int, int] = {}  # job -> its bytes, until answered
        self._room = asyncio.Event()  # set when an answer frees bytes
        self.peak_pending = 0  # the most jobs that were on the socket at once
        self._slots = asyncio.Semaphore(self.max_pending)  # bound to a loop on first use

    def model_changed(self) -> None:
        """Another model was loaded (:attr:`api.routers.deps.ModelSlot.on_load`, from any
        thread): drop this end's reference to the old run, so it can be freed before the next
        diagnosis sends the new one (the child keeps its copy until then)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._run = None
        else:  # every other use of the worker is on the loop's thread
            loop.call_soon_threadsafe(setattr, self, "_run", None)

    def serves(self, run: ReasoningRun) -> bool:
        """Whether the child is up and holds ``run``'s model; if not, start it and send the
        model (the caller scores this one in process)."""
        if self._process is not None and self._process.poll() is not None:
            self._stopped(f"the model worker exited ({self._process.returncode})")
        if self._run is run and self._conn is not None:
            return self._ready == self._token  # False while the model is sent and warmed up
        if self._sending is not None and self._sending.is_alive():
            return False  # one model on the socket at a time
        if time.monotonic() < self._retry_at:
            return False
        try:
            self._send_model(run)
        except (OSError, pickle.PicklingError, AttributeError, TypeError) as exc:
            logger.warning("model worker not used: %s", exc)
            self._stopped(str(exc))
        return False

    def _send_model(self, run: ReasoningRun) -> None:
        if self._process is None:
            self._spawn()
        self._token += 1
        blob = pickle.dumps((run.reasoner, run.labels.labels), protocol=pickle.HIGHEST_PROTOCOL)
        # a thread writes it: the child reads it only once its imports are done (seconds)
        self._sending = threading.Thread(
            target=self._conn.send, args=(("model", self._token, blob),), daemon=True
        )
        self._sending.start()
        self._run = run

    def _spawn(self) -> None:
        import torch

        parent, child = socket.socketpair()
        command = [sys.executable, "-m", "api.model_worker", str(child.fileno())]
        command.append(str(torch.get_num_threads()))  # 1 under the server (api/rest.py)
        path = os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            command,
            pass_fds=(child.fileno(),),
            close_fds=True,
            env={**os.environ, "PYTHONPATH": path},
            start_new_session=True,  # Ctrl-C goes to the server, which stops the child
        )
        child.close()
        self._conn = Connection(parent.detach())
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._conn.fileno(), self._answers)

    async def score(self, run: ReasoningRun, patient: Patient, top_k: int, paths: int) -> Scored:
        """``score_patient`` of ``patient`` in the child, awaited on the loop.

        Raises:
            WorkerUnavailable: the child does not hold ``run``'s model, refused the job or died.
        """
        async with self._slots:  # a few jobs on the socket at a time: a send never blocks
            if self._run is not run or self._conn is None or self._ready != self._token:
                raise WorkerUnavailable("the model worker does not hold this model (now)")
            return await self._sent(patient, top_k, paths)

    async def _sent(self, patient: Patient, top_k: int, paths: int) -> Scored:
        job = next(self._jobs)
        message = ("score", job, self._token, patient, top_k, paths)
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        while self._bytes and sum(self._bytes.values()) + len(payload) > self.max_bytes:
            self._room.clear()
            await self._room.wait()
            if self._conn is None:
                raise WorkerUnavailable("the model worker stopped")
        future = asyncio.get_running_loop().create_future()
        self._pending[job] = future
        self._bytes[job] = len(payload)
        self.peak_pending = max(self.peak_pending, len(self._pending))
        try:
            self._conn.send_bytes(payload)  # the child's Connection.recv unpickles it
        except OSError as exc:
            self._pending.pop(job, None)
            self._bytes.pop(job, None)
            self._stopped(str(exc))
            raise WorkerUnavailable(str(exc)) from None
        return await future

    def _answers(self) -> None:
        """Read every answer the child has written (called by the loop when the pipe reads)."""
        conn = self._conn
        try:
            while conn is not None and conn.poll():
                job, status, value = conn.recv()
                if status == "ready":
                    self._ready = value
                    continue
                future = self._pending.pop(job, None)
                if self._bytes.pop(job, None) is not None:
                    self._room.set()
                if future is None or future.done():
                    continue
                if status == "ok":
                    self.scored += 1
                    future.set_result(value)
                else:
                    future.set_exception(WorkerUnavailable(f"model worker: {status} {value}"))
        except (EOFError, OSError):
            self._stopped("the model worker's pipe closed")

    def _stopped(self, why: str, *, log: bool = True) -> None:
        """Forget the child; its pending jobs fail (their callers score in process)."""
        if self._process is not None and log:
            logger.warning("model worker stopped (%s): diagnoses run in process for %.0f s",
                           why, RETRY_AFTER_S)  # fmt: skip
        if self._loop is not None and self._conn is not None:
            self._loop.remove_reader(self._conn.fileno())
        if self._conn is not None:
            self._conn.close()
        process = self._process
        self._process, self._conn, self._run, self._sending = None, None, None, None
        self._retry_at = time.monotonic() + RETRY_AFTER_S
        for future in self._pending.values():
            if not future.done():
                future.set_exception(WorkerUnavailable(why))
        self._pending.clear()
        self._bytes.clear()
        self._room.set()  # jobs waiting for room find the worker gone
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def close(self) -> None:
        """Stop the child (at shutdown)."""
        process = self._process
        thread = self._sending
        sending = thread is not None and thread.is_alive()
        if self._conn is not None and process is not None and not sending:
            try:
                self._conn.send(None)  # a few bytes: the buffer has room (max_pending)
                process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._stopped("the server stopped", log=False)  # kills it if it is still there
        if thread is not None:
            thread.join(timeout=5)  # its write fails once the socket is closed

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None


if __name__ == "__main__":  # python -m api.model_worker FD THREADS: the child, on its socket
    _serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
