"""Keys and roles on every REST route (issue 11, finding 12: no authentication anywhere).

The expected access of each route is written out here from the issue's role definitions, not
read from ``api/auth.py``, so a policy that drifts from them fails.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.auth import KEY_SHAPE, ROLES, app_routes, key_entry, new_key, route_policies
from api.commands.serve import check_bind
from api.rest import create_app
from graph.errors import ConfigError
from graph.settings import PROJECT_ROOT, Settings, get_settings

ALL = frozenset(ROLES)
CLINICAL = frozenset({"clinician", "researcher", "admin"})
WRITE = frozenset({"ingest", "admin"})
# (method, path) -> roles allowed; "public" also answers without a key
EXPECTED: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/v1/concepts"): CLINICAL,
    ("GET", "/v1/concepts/{concept_id}"): CLINICAL,
    ("GET", "/v1/concepts/{concept_id}/neighbours"): CLINICAL,
    ("GET", "/v1/concepts/{concept_id}/paths/{target_id}"): CLINICAL,
    ("GET", "/v1/patients"): ALL,
    ("POST", "/v1/patients"): WRITE,
    ("GET", "/v1/patients/{patient_id}"): ALL,
    ("DELETE", "/v1/patients/{patient_id}"): WRITE,
    ("GET", "/v1/patients/{patient_id}/graph"): ALL,
    ("GET", "/v1/patients/{patient_id}/images/{image_id}/thumbnail"): ALL,
    ("POST", "/v1/patients/{patient_id}/diagnoses"): CLINICAL,
    ("GET", "/v1/patients/{patient_id}/diagnoses"): CLINICAL,
    ("GET", "/v1/model"): CLINICAL,
    ("POST", "/v1/query"): frozenset({"researcher", "admin"}),
    ("GET", "/openapi.json"): ALL,
    ("GET", "/docs"): ALL,
    ("GET", "/docs/oauth2-redirect"): ALL,
    ("GET", "/redoc"): ALL,
    # the clinician viewer: a page shell and its files, no patient data (api/routers/viewer.py)
    ("GET", "/"): "public",
    ("GET", "/patients/{patient_id}"): "public",
    ("GET", "/viewer/static/{name:path}"): "public",
}
# answers a route may give to an allowed caller on this store (no model is saved: not ready)
NOT_READY = {("GET", "/readyz"): 503}
PATH_VALUES = {
    "patient_id": "P1",
    "concept_id": "UMLS:C0032227",
    "target_id": "UMLS:C0018802",
    "image_id": "img1",
    "name:path": "viewer.js",
}
ROLE_KEYS = {role: new_key() for role in ROLES}
WRONG_KEY = new_key()


def keyed(settings: Settings) -> Settings:
    entries = [key_entry(f"{role}-key", role, key) for role, key in ROLE_KEYS.items()]
    return Settings(home=settings.home, db_path=settings.db_path, api_keys=entries)


def routes_without_one_policy(app) -> list[str]:
    """``METHOD path`` of every route that has no policy, or more than one."""
    return [
        f"{sorted(route.methods or ['?'])} {route.path}"
        for route in app_routes(app)
        if len(route_policies(route)) != 1
    ]


def _served(app) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app_routes(app)
        for method in (route.methods or set()) - {"HEAD"}
    }


def test_every_route_has_exactly_one_policy_and_an_expected_access() -> None:
    app = create_app(Settings())
    assert routes_without_one_policy(app) == []
    assert _served(app) == set(EXPECTED), "a route was added or removed: give it a policy here"


def test_a_route_added_without_a_policy_is_found() -> None:
    app = create_app(Settings())
    app.add_api_route("/extra", lambda: {"ok": True}, methods=["GET"])
    app.add_route("/plain", lambda request: None)
    assert sorted(routes_without_one_policy(app)) == ["['GET', 'HEAD'] /plain", "['GET'] /extra"]


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]):
    url = path
    for name, value in PATH_VALUES.items():
        url = url.replace("{" + name + "}", value)
    params = {"q": "effusion"} if path == "/v1/concepts" else None
    body = {} if method in {"POST", "PUT"} else None  # invalid bodies: 422 once authorised
    return client.request(method, url, params=params, json=body, headers=headers)


@pytest.mark.parametrize(
    ("method", "path"), sorted(EXPECTED), ids=[f"{m} {p}" for m, p in sorted(EXPECTED)]
)
def test_status_matrix_for_no_key_wrong_key_and_each_role(settings, store, method, path) -> None:
    allowed = EXPECTED[(method, path)]
    with TestClient(create_app(keyed(settings), store=store)) as client:
        anonymous = _call(client, method, path, {})
        if allowed == "public":
            assert anonymous.status_code == NOT_READY.get((method, path), 200)
        else:
            assert anonymous.status_code == 401
            assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = _call(client, method, path, {"Authorization": f"Bearer {WRONG_KEY}"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
        for role, key in ROLE_KEYS.items():
            answer = _call(client, method, path, {"Authorization": f"Bearer {key}"})
            if allowed == "public" or role in allowed:
                assert answer.status_code not in (401, 403), role
                assert answer.status_code < 500 or answer.status_code == NOT_READY.get(
                    (method, path)
                ), role
            else:
                assert answer.status_code == 403, role
                assert role in answer.text  # says which role was refused


def test_x_api_key_header_malformed_schemes_and_keys_in_urls(settings, store) -> None:
    clinician = ROLE_KEYS["clinician"]
    with TestClient(create_app(keyed(settings), store=store)) as client:
        assert client.get("/v1/patients", headers={"X-API-Key": clinician}).status_code == 200
        assert client.get("/v1/patients", headers={"Authorization": clinician}).status_code == 401
        basic = client.get("/v1/patients", headers={"Authorization": f"Basic {clinician}"})
        assert basic.status_code == 401
        auth = {"Authorization": f"Bearer {clinician}"}
        for query in ({"api_key": clinician}, {"access_token": "x"}, {"q": clinician}):
            answer = client.get("/v1/concepts", params=query, headers=auth)
            assert answer.status_code == 400 and clinician not in answer.text, query
        # a query string without a key is untouched
        assert client.get("/v1/concepts", params={"q": "effusion"}, headers=auth).is_success


def test_health_and_readiness_tell_an_anonymous_caller_only_up_and_ready(settings, store) -> None:
    with TestClient(create_app(keyed(settings), store=store)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz").json()
        assert set(ready) == {"status", "store", "model", "detail"}
        assert str(settings.home) not in json.dumps(ready)  # no folder names, no counts
        bad = client.get("/healthz", headers={"X-API-Key": WRONG_KEY})  # a key sent must be valid
        assert bad.status_code == 401


def test_open_mode_warns_once_and_serves_loopback_clients_only(settings, store, caplog) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(settings, store=store)
    with TestClient(app) as client:
        assert client.get("/v1/patients").status_code == 200
        assert client.post("/v1/query", json={}).status_code == 422  # past authentication
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "api.auth"]
    assert len(warnings) == 1 and "authentication is off" in warnings[0].getMessage()
    for host, expected in (("127.0.0.1", 200), ("::1", 200), ("203.0.113.7", 403)):
        with TestClient(app, client=(host, 40000)) as client:
            assert client.get("/v1/patients").status_code == expected, host


def test_keyed_mode_logs_no_warning_and_no_key_or_hash(settings, store, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(keyed(settings), store=store)) as client:
        for key in ROLE_KEYS.values():
            client.get("/v1/patients", headers={"Authorization": f"Bearer {key}"})
    assert "API keys: 4 configured" in caplog.text
    assert not [r for r in caplog.records if r.name == "api.auth" and r.levelno >= logging.WARNING]
    for key in ROLE_KEYS.values():
        assert (
            key not in caplog.text and hashlib.sha256(key.encode()).hexdigest() not in caplog.text
        )


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_uvicorn_access_log_never_holds_a_key(settings, store) -> None:
    """A real uvicorn server on loopback: keys in headers never reach a log, and a key a client
    wrongly put in the URL is refused and blanked in the access log."""
    import uvicorn

    records = _Records()
    watched = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.access", "uvicorn.error")]
    for target in watched:
        target.addHandler(records)
    access = logging.getLogger("uvicorn.access")
    old_level = access.level
    access.setLevel(logging.INFO)
    port = _free_port()
    app = create_app(keyed(settings), store=store)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=True)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        key = ROLE_KEYS["admin"]
        statuses = []
        for url, headers in (
            ("/v1/patients", {"Authorization": f"Bearer {key}"}),
            ("/v1/patients", {"X-API-Key": key}),
            (f"/v1/patients?api_key={key}", {}),
            (f"/v1/concepts?q={key}", {"X-API-Key": key}),
        ):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", url, headers=headers)
            statuses.append(connection.getresponse().status)
            connection.close()
        time.sleep(0.2)  # the access line is written after the response
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        for target in watched:
            target.removeHandler(records)
        access.setLevel(old_level)
    assert statuses == [200, 200, 400, 400]
    access_lines = [line for line in records.lines if line.startswith("uvicorn.access")]
    assert len(access_lines) >= 4 and any("api_key=kgdx_[redacted]" in x for x in access_lines)
    assert not any(key in line for line in records.lines)


def _kgdx(*args: str, stdin: str = "", cwd: Path, env: dict[str, str] | None = None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KGDX_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=60,
    )


def test_keys_create_and_hash_give_an_entry_that_authenticates(tmp_path, store, monkeypatch):
    created = _kgdx("keys", "create", "--name", "ward-7", "--role", "clinician", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert KEY_SHAPE.fullmatch(key) and key not in created.stderr
    sha = re.search(r'sha256 = "([0-9a-f]{64})"', created.stderr)[1]
    assert sha == hashlib.sha256(key.encode()).hexdigest()
    hashed = _kgdx("keys", "hash", "--name", "ward-7", "--role", "clinician", stdin=key + "\n",
                   cwd=tmp_path)  # fmt: skip
    assert hashed.returncode == 0 and sha in hashed.stdout and key not in hashed.stdout
    bad = _kgdx("keys", "hash", "--name", "x", "--role", "clinician", stdin="guess", cwd=tmp_path)
    assert bad.returncode == 2 and "kgdx keys create" in bad.stderr

    toml = tmp_path / "kgdx.toml"
    toml.write_text(hashed.stdout.split("\n\n")[0] + "\n")
    monkeypatch.delenv("KGDX_API_KEYS", raising=False)
    monkeypatch.setenv("KGDX_CONFIG", str(toml))
    (entry,) = get_settings(home=tmp_path / "home", db_path=tmp_path / "db.lbug").api_keys
    assert (entry.name, entry.role, entry.sha256) == ("ward-7", "clinician", sha)
    served = get_settings(home=tmp_path / "home", db_path=tmp_path / "db.lbug")
    with TestClient(create_app(served, store=store)) as client:
        assert client.get("/v1/patients", headers={"X-API-Key": key}).status_code == 200
        assert client.post("/v1/query", json={}, headers={"X-API-Key": key}).status_code == 403


def test_api_keys_from_the_environment_and_bad_values(monkeypatch) -> None:
    entry = key_entry("lab", "researcher", new_key())
    monkeypatch.setenv("KGDX_API_KEYS", json.dumps([entry.model_dump()]))
    assert get_settings().api_keys == (entry,)
    monkeypatch.setenv("KGDX_API_KEYS", "")  # what compose passes when it is unset
    assert get_settings().api_keys == ()
    secret = new_key()
    for value in (secret, json.dumps([{"name": "x", "role": "admin", "sha256": secret}])):
        monkeypatch.setenv("KGDX_API_KEYS", value)
        with pytest.raises(ConfigError) as raised:
            get_settings()
        assert secret not in str(raised.value) and "KGDX_API_KEYS" in str(raised.value)
    twice = [entry.model_dump(), entry.model_dump() | {"name": "other"}]
    monkeypatch.setenv("KGDX_API_KEYS", json.dumps(twice))
    with pytest.raises(ConfigError, match="share a sha256"):
        get_settings()


def test_serve_binds_beyond_loopback_only_with_keys(settings, tmp_path) -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        check_bind(host, settings)
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org", ""):
        with pytest.raises(ConfigError, match="kgdx keys create"):
            check_bind(host, settings)
        check_bind(host, keyed(settings))
    # what the container runs when KGDX_API_KEYS is not set: compose passes it empty
    refused = _kgdx("serve", "--host", "0.0.0.0", cwd=tmp_path, env={"KGDX_API_KEYS": ""})
    assert refused.returncode == 2 and "kgdx keys create" in refused.stderr
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert 'CMD ["kgdx", "serve", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    compose = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "KGDX_API_KEYS: ${KGDX_API_KEYS:-}" in compose
    assert '"7687:7687"' not in compose  # Neo4j is published on the host's loopback only


def test_the_guide_lists_each_policy_with_its_roles() -> None:
    text = (PROJECT_ROOT / "docs" / "rest.md").read_text()
    section = text.split("## Authentication", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.M))
    policies = {
        p.name: p for route in app_routes(create_app(Settings())) for p in route_policies(route)
    }
    assert set(rows) == set(policies)
    for name, policy in policies.items():
        documented = set(re.findall(r"\b(clinician|researcher|ingest|admin)\b", rows[name]))
        if "every role" in rows[name] or "anyone" in rows[name]:
            documented = set(ALL)
        assert documented == set(policy.roles), name
        assert ("anyone" in rows[name]) == policy.public, name
