"""A real ``uvicorn`` serving kgdx on a free loopback port, for benches and tests.

with serve({"KGDX_DB_PATH": str(db)}) as (port, process):
    status, body = request(port, "GET", "/healthz")
    tree_cpu_by_process(process.pid)  # the CPU time of the server and its worker so far
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` alone; ``nan`` when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, ValueError, IndexError):
        return float("nan")


def tree_cpu_by_process(pid: int) -> dict[int, float]:
    """``{pid: CPU seconds}`` (user + system) used so far by process ``pid`` and each of its
    live descendants (the server, its model worker, and any researcher's query worker), from
    ``/proc``; empty when ``pid`` is gone (or not Linux). A descendant that exited meanwhile
    drops out: read it over a phase it lives through."""
    out, todo = {}, [pid]
    while todo:
        current = todo.pop()
        if current in out:
            continue
        used = _cpu_seconds(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            tasks = []
        if used != used:  # gone meanwhile
            continue
        out[current] = used
        for task in tasks:  # a thread may exit meanwhile (the threadpool's idle ones do)
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(
    port: int,
    method: str,
    path: str,
    body: dict | None = None,
    timeout: float = 30,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One HTTP request to the local server; its status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        sent = {"Content-Type": "application/json"} if body is not None else {}
        sent.update(headers or {})
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def serve(
    env: dict[str, str],
    start_timeout: float = 60,
    *,
    keep_keys: bool = False,
    log: Path | None = None,
) -> Iterator[tuple[int, subprocess.Popen]]:
    """Run ``api.rest:create_app`` under uvicorn with ``env`` over this process' environment
    until the block ends; yields (port, process). Without ``keep_keys`` any KGDX_API_KEYS of
    this environment is dropped (open mode, loopback only); ``env`` may set its own. With
    ``log``, the server's output goes to that file (read it after a failure)."""
    port = free_port()
    environment = {**os.environ}
    if not keep_keys:
        environment.pop("KGDX_API_KEYS", None)
    environment.update(env)
    command = [sys.executable, "-m", "uvicorn", "api.rest:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with contextlib.ExitStack() as files:
        sink = files.enter_context(log.open("wb")) if log is not None else None
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=sink or subprocess.DEVNULL,
            stderr=sink or subprocess.PIPE,
        )
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if request(port, "GET", "/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                said = log.read_text()[-4000:] if log else process.stderr.read().decode()
                raise RuntimeError(f"server did not start:\n{said}")
            time.sleep(0.2)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
