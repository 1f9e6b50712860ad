"""The load bench's clients (``bench/load_clients.py``) against a real HTTP server on loopback:
a paced group sends at its rate, spread over its period, never two requests of one client
closer than the period, and a slow answer is waited for, not overlapped."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.load_clients import Clients, Tally, run_clients


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn
    disable_nagle_algorithm = True  # headers and body are two writes
    sends: list[tuple[float, str]] = []
    lock = threading.Lock()
    slow_once = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        with self.lock:
            self.sends.append((time.perf_counter(), self.path))
        if self.path == "/slow" and not self.slow_once.is_set():
            self.slow_once.set()
            time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    _Recorder.sends = []
    _Recorder.slow_once.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_a_paced_group_sends_at_its_rate_spread_over_its_period(server) -> None:
    tally = Tally()
    # 2 clients, one request each every 0.4 s: 5 a second, one every 0.2 s
    group = Clients("GET", ["/a", "/b"], 2, tally, period=0.4)
    elapsed = run_clients(server, [group], {}, 2.0)
    times = sorted(t for t, _ in _Recorder.sends)
    assert tally.errors == 0 and len(tally.latencies) == len(times)
    assert 8 <= len(times) <= 11, (len(times), elapsed)  # 10 slots in 2 s
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # spread, not in pairs: with both clients on one timetable half the gaps would be ~0
    assert min(gaps) > 0.1, gaps


def test_a_slow_answer_is_waited_for_and_the_timetable_restarts(server) -> None:
    tally = Tally()
    group = Clients("GET", ["/slow"], 1, tally, period=0.3)
    run_clients(server, [group], {}, 2.2)
    times = [t for t, _ in _Recorder.sends]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps[0] >= 1.0  # the next request only after the slow answer
    assert min(gaps) >= 0.3 - 0.02, gaps  # never two closer than the period
    assert tally.errors == 0 and len(tally.latencies) == len(times)


def test_an_unpaced_client_sends_as_soon_as_it_is_answered(server) -> None:
    tally = Tally()
    run_clients(server, [Clients("GET", ["/a"], 1, tally)], {}, 0.5)
    assert len(tally.latencies) > 20  # far more than any period would allow
    assert tally.errors == 0
