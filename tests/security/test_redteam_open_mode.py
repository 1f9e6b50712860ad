"""Open mode (no API keys) serves loopback clients only, whatever a forwarding header says.

uvicorn takes the client address from ``X-Forwarded-For`` when the connection comes from a trusted
proxy (127.0.0.1 by default), and the auth check let the name ``testclient`` (Starlette's
in-process test transport) through as local. A request through a loopback proxy that passed on
``X-Forwarded-For: 10.0.0.1, testclient`` was therefore served as a local one (red-team finding).
"""

from __future__ import annotations

import http.client
import json

import pytest

from bench.local_server import serve

pytestmark = pytest.mark.timeout(120)


def _get(port: int, path: str, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    home = tmp_path_factory.mktemp("open")
    with serve({"KGDX_HOME": str(home), "KGDX_DB_PATH": str(home / "db.lbug")}) as (port, _):
        yield port


@pytest.mark.parametrize(
    "forwarded", ["10.0.0.1", "testclient", "10.0.0.1, testclient", "10.0.0.1,testclient"]
)
def test_a_forwarded_remote_client_is_refused_in_open_mode(port, forwarded) -> None:
    assert _get(port, "/v1/patients", {"X-Forwarded-For": forwarded}) == 403


def test_a_loopback_client_is_served_in_open_mode(port) -> None:
    assert _get(port, "/v1/patients", {}) == 200
    assert _get(port, "/v1/patients", {"X-Forwarded-For": "127.0.0.1"}) == 200


def test_the_problem_body_names_the_fix(port) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/v1/patients", headers={"X-Forwarded-For": "testclient"})
    response = connection.getresponse()
    assert "kgdx keys create" in json.loads(response.read())["detail"]
