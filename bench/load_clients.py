"""The load benches' HTTP clients (``bench/api_load.py``): keep-alive connections on loopback,
each sending its requests one after another, and the tally of their latencies and failures.

A request is a path (sent without a body) or a ``(path, body)`` pair whose body is sent as JSON.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

Request = str | tuple[str, bytes]
# a paced client that waits longer than this between requests closes its keep-alive connection
IDLE_CLOSE_S = 2.0


@dataclass
class Tally:
    """Latencies (s) of the answered requests and the failures of one kind of client: an answer
    whose status is not in ``ok``, or a failed connection (status -1)."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    ok: frozenset[int] = frozenset({200})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, status: int | None) -> None:
        with self.lock:
            if status in self.ok:
                self.latencies.append(seconds)
            else:
                self.errors += 1
            key = status if status is not None else -1
            self.statuses[key] = self.statuses.get(key, 0) + 1


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Clients:
    """``count`` clients sending ``requests`` with ``method`` (a client starts at its own
    offset in them and goes round), their answers tallied in ``tally``. ``headers``: this
    group's own (another key) instead of the run's.

    ``period`` (0: each request as soon as the one before is answered): each client sends one
    request every ``period`` seconds on a fixed timetable, the group's clients spread evenly
    over it (client ``n`` of ``count`` starts ``n * period / count`` seconds in), so the group
    sends ``count / period`` requests a second, one every ``period / count`` seconds. A request
    is never sent before the one before it is answered: after an answer later than the next
    slot the client sends at once and its timetable restarts from there (missed slots are not
    made up; the achieved rate is the tally's requests over the seconds)."""

    method: str
    requests: Sequence[Request]
    count: int
    tally: Tally
    headers: dict[str, str] | None = None
    period: float = 0.0


def client_loop(
    port: int,
    clients: Clients,
    headers: dict[str, str],
    stop: threading.Event,
    offset: int,
    delay: float = 0.0,
) -> None:
    """One client: a keep-alive connection, requests one after another until ``stop``, the
    first after ``delay`` seconds (a paced group's clients start spread over its period)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    with_body = {**headers, "Content-Type": "application/json"}
    index, next_at = offset, time.perf_counter() + delay
    try:
        stop.wait(delay)
        while not stop.is_set():
            item = clients.requests[index % len(clients.requests)]
            index += 1
            path, body = (item, None) if isinstance(item, str) else item
            began = time.perf_counter()
            status = None
            try:
                sent = headers if body is None else with_body
                connection.request(clients.method, path, body, headers=sent)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            answered = time.perf_counter()
            clients.tally.add(answered - began, status)
            if clients.period:
                next_at = max(next_at + clients.period, answered)
                pause = next_at - answered
                if pause > IDLE_CLOSE_S:  # the server would close it first (uvicorn: after 5 s)
                    connection.close()  # the next request connects again
                stop.wait(pause)
    finally:
        connection.close()


def run_clients(port: int, groups: list[Clients], headers: dict[str, str], seconds: float) -> float:
    """Every group's clients for ``seconds``; the seconds they took, to the last one's end."""
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=client_loop,
            args=(
                port,
                group,
                group.headers or headers,
                stop,
                n * 7,
                n * group.period / group.count,
            ),
        )
        for group in groups
        for n in range(group.count)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return time.perf_counter() - began


def report(label: str, tally: Tally, elapsed: float, target: float | None) -> bool:
    """Print a tally's line (p50/p95/p99/max, throughput, errors); whether it met ``target``
    (p99 in seconds, and no errors)."""
    ordered = sorted(tally.latencies)
    p50, p95, p99 = (percentile(ordered, q) for q in (0.5, 0.95, 0.99))
    worst = ordered[-1] if ordered else float("nan")
    met = target is None or (tally.errors == 0 and p99 <= target)
    verdict = "" if target is None else f"  target p99 <= {target * 1e3:.0f} ms, 0 errors: "
    verdict += "" if target is None else ("met" if met else "MISSED")
    print(
        f"{label:<38} {len(ordered):>6} ok {tally.errors:>4} err  "
        f"p50 {p50 * 1e3:7.1f}  p95 {p95 * 1e3:7.1f}  p99 {p99 * 1e3:7.1f}  "
        f"max {worst * 1e3:7.1f} ms  {len(ordered) / elapsed:7.1f} req/s{verdict}"
    )
    if tally.errors:
        print(f"{'':<38} statuses: {dict(sorted(tally.statuses.items()))}")
    return met


__all__ = ["Clients", "Request", "Tally", "client_loop", "percentile", "report", "run_clients"]
