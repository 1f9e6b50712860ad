"""Many queries at once do not stall the service (red-team finding on issue 11's fixes).

At most ``query_workers`` queries run; the others wait for a worker. ``POST /query`` was a plain
``def`` route, so each waiting request held one of the server's 40 threadpool threads for up to
its whole timeout; 60 concurrent queries took them all and ``/health`` (also a ``def`` route, like
every other route) waited 8.2 s on a real server. Waiting for a worker must not hold a thread.
"""

from __future__ import annotations

import pytest

from bench.local_server import request, serve
from bench.rest_under_attack import health_during

pytestmark = pytest.mark.timeout(120)
# CPU-bound in the engine until the worker is killed at its deadline
SLOW = "RETURN levenshtein(repeat('a', 100000), repeat('b', 100000)) AS d"
COPIES = 50  # more than anyio's 40 threadpool tokens


@pytest.fixture()
def server(tmp_path):
    env = {
        "KGDX_HOME": str(tmp_path / "home"),
        "KGDX_DB_PATH": str(tmp_path / "served.lbug"),
        "KGDX_QUERY_WORKERS": "1",
        "KGDX_QUERY_WARM_WORKERS": "0",
    }
    with serve(env) as running:
        yield running


def test_health_keeps_answering_while_many_queries_wait_for_a_worker(server):
    port, process = server
    run = health_during(port, SLOW, timeout_s=3, copies=COPIES)
    latencies, answers = run["latencies"], run["answers"]
    statuses = sorted({status for status, _ in answers})
    print(
        f"{len(latencies)} /healthz calls, max {max(latencies) * 1000:.0f} ms; answers {statuses}"
    )
    assert len(answers) == COPIES
    # 400: the query that ran hit its timeout; 503: the others found the worker busy throughout
    assert set(statuses) <= {400, 503} and 503 in statuses
    assert max(seconds for _, seconds in answers) < 3 + 2.5
    assert len(latencies) >= 10 and max(latencies) < 1.0
    assert process.poll() is None
    assert request(port, "POST", "/v1/query", {"cypher": "RETURN 1 AS one"})[0] == 200
