"""A hostile query does not stall the service (issue 11, finding 3; issue 14: reads do not
queue behind a slow Cypher query): a real uvicorn server.

Before, ``POST /query`` held the app's store lock for the whole query, so ``/health`` waited
behind it (76 s measured). Now the query runs in a worker process and the lock is taken only
while the worker opens the database. The 100 ms latency target is measured by
``bench/rest_under_attack.py``; this test asserts the behaviour (``/healthz`` and a store read,
``GET /v1/patients``, keep answering all through the query, never waiting anything like the
query's 5 s), with a margin for a loaded machine.
"""

from __future__ import annotations

import json

import pytest

from bench.local_server import request, serve
from bench.rest_under_attack import health_during
from graph.query_runner import DEADLINE_GRACE_S

pytestmark = pytest.mark.timeout(120)
HOSTILE = "UNWIND range(1, 150000000) AS x RETURN count(*)"


@pytest.fixture()
def server(tmp_path):
    env = {
        "KGDX_HOME": str(tmp_path / "home"),
        "KGDX_DB_PATH": str(tmp_path / "served.lbug"),
        # room for the list, so the query runs until the deadline kills its worker (the worst
        # case for /health) instead of failing early at the memory cap
        "KGDX_QUERY_MEMORY_MB": "8192",
    }
    with serve(env) as running:
        yield running


@pytest.mark.parametrize("probe", ["/healthz", "/v1/patients"])
def test_health_and_reads_keep_answering_while_a_hostile_query_runs(server, probe):
    port, process = server
    run = health_during(port, HOSTILE, timeout_s=5, probe=probe)
    latencies, [(status, seconds)] = run["latencies"], run["answers"]
    print(f"under attack {len(latencies)} calls, max {max(latencies) * 1000:.1f} ms; "
          f"the query answered {status} in {seconds:.2f} s")  # fmt: skip
    assert status == 400  # a QueryError: the timeout, held by killing the worker
    # killed at its deadline (5.5-5.7 s measured idle); the margin is for a loaded CI machine,
    # and still far from the 17 s such a query ran before the deadline
    assert seconds < 5 + DEADLINE_GRACE_S + 2.0
    # calls every ~20 ms all through the 5 s query; none waits for it (the 100 ms target: bench;
    # up to 224 ms seen on an idle machine, so the bound leaves a loaded one room)
    assert len(latencies) >= 20 and max(latencies) < 2.0
    assert process.poll() is None
    assert request(port, "GET", "/healthz")[0] == 200
    status, body = request(port, "POST", "/v1/query", {"cypher": "RETURN 1 AS one"})
    assert status == 200 and json.loads(body)["rows"] == [[1]]
