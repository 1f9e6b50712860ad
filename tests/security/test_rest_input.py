"""Bad input at the REST edge (issue 11, finding 7; the ids of finding 8 are in
``test_rest_ids.py``): every reproduction answers a small ``application/problem+json`` 4xx that
never repeats the request, and leaves the store unchanged.

The app runs on a real embedded store holding the seed KG and the guide's patients; the store is
snapshotted (patient ids, node and relation counts) before each bad request and compared after.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.rest import create_app
from graph.settings import Settings
from graph.store import GraphStore
from tests.security.rest_input_helpers import (
    MARKER,
    PROBLEM,
    SMALL,
    app_client,
    assert_problem,
    guide_store,
    post_raw,
    unchanged,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[GraphStore]:
    yield from guide_store(tmp_path_factory, "rest-input")


@pytest.fixture(scope="module")
def settings(store) -> Settings:
    return store.settings


@pytest.fixture(scope="module")
def client(store) -> Iterator[TestClient]:
    yield from app_client(store)


# --- /query parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([1, MARKER], "one type"),  # the reproduction: a list of mixed types
        ([True, 1], "one type"),
        ([], "empty list"),
        ([None, None], "empty list"),
        ([[1], [2]], "only nulls, booleans, numbers or strings"),
        (2**70, "64 bits"),
        ({"m": {"n": 1}}, "map inside a map"),
    ],
)
def test_unsupported_query_params_answer_422(client, store, value, says) -> None:
    with unchanged(store):
        response = client.post(
            "/v1/query", json={"cypher": "RETURN $x AS x", "params": {"x": value}}
        )
    body = assert_problem(response, 422)
    assert "parameter 'x'" in body["detail"] and says in body["detail"]


def test_a_bad_parameter_name_answers_422(client) -> None:
    response = client.post("/v1/query", json={"cypher": "RETURN 1 AS x", "params": {"a b": 1}})
    assert "parameter name" in assert_problem(response, 422)["detail"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [([1, 2.5], [1.0, 2.5]), ([1, None], [1, None]), (["a", "b"], ["a", "b"]), (True, True)],
)
def test_supported_query_params_still_run(client, value, expected) -> None:
    response = client.post("/v1/query", json={"cypher": "RETURN $x AS x", "params": {"x": value}})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[expected]]


def test_a_map_parameter_still_runs(client) -> None:
    params = {"m": {"a": 1, "b": "x", "c": [1, 2]}}
    response = client.post("/v1/query", json={"cypher": "RETURN $m.b AS b", "params": params})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [["x"]]


# --- text that is not text --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "raw"),
    [
        ("/v1/patients", '{"id": "P-S1", "reports": ["\\ud800 ' + MARKER + '"]}'),
        ("/v1/patients", '{"id": "P-S1", "reports": ["a\\u0000' + MARKER + '"]}'),
        ("/v1/patients", '{"id": "P-S1", "reports": ["ok"], "attributes": {"\\ud800": 1}}'),
        ("/v1/patients", '{"id": "P-S1", "reports": ["ok"], "attributes": {"a": ["\\udfff"]}}'),
        ("/v1/patients", '{"id": "P-S1", "reports": ["ok"], "labels": ["UMLS:\\ud800x"]}'),
        ("/v1/patients", '{"id": "P-S1", "reports": ["ok"], "attributes": {"a": NaN}}'),
        ("/v1/patients", '{"id": "P\\u0000", "reports": ["ok"]}'),
        ("/v1/query", '{"cypher": "RETURN \'\\ud800\' AS x"}'),
        ("/v1/query", '{"cypher": "RETURN $x AS x", "params": {"x": "\\ud800"}}'),
        ("/v1/query", '{"cypher": "RETURN $x AS x", "params": {"x": Infinity}}'),
    ],
)
def test_unencodable_text_answers_422_not_500(client, store, url, raw) -> None:
    with unchanged(store):
        response = post_raw(client, url, raw)
    assert_problem(response, 422)


def test_unencodable_text_in_a_coded_finding_answers_422(client, store) -> None:
    raw = (
        '{"id": "P-S2", "findings": [{"concept_id": "UMLS:C0018800", "label": "\\ud800'
        + MARKER
        + '"}]}'
    )
    with unchanged(store):
        body = assert_problem(post_raw(client, "/v1/patients", raw), 422)
    assert "lone surrogate" in body["detail"]  # what is wrong, not only where the parser stopped


def test_a_key_that_cannot_be_encoded_does_not_break_the_422(client, store) -> None:
    # an unknown field named by a lone surrogate: the error's location holds it, escaped
    raw = '{"id": "P-S3", "reports": ["ok"], "\\ud800' + MARKER + '": 1}'
    with unchanged(store):
        body = assert_problem(post_raw(client, "/v1/patients", raw), 422, sent=None)
    assert body["errors"][0]["loc"][:1] == ["body"]


def test_invalid_json_answers_422_without_the_body(client, store) -> None:
    with unchanged(store):
        response = post_raw(client, "/v1/patients", '{"id": "P1", "reports": [' + MARKER)
    body = assert_problem(response, 422)
    assert body["errors"][0]["type"] == "json_invalid"
    said = body["errors"][0]["msg"]
    assert said == "Invalid JSON: expected value at line 1 column 26"  # where, said once


# --- reports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("report", ["", "   \n\t ", {"text": ""}, {"text": " \n"}])
def test_an_empty_report_answers_422(client, store, report) -> None:
    with unchanged(store):
        response = client.post("/v1/patients", json={"id": "P-E1", "reports": [report]})
    assert "empty" in assert_problem(response, 422)["detail"]


def test_an_empty_report_object_with_an_id_answers_422(client, store) -> None:
    patient = {"id": "P-E2", "reports": [{"id": "R1", "text": "  "}]}
    with unchanged(store):
        response = client.post("/v1/patients", json=patient)
    assert "empty" in assert_problem(response, 422)["detail"]


def test_a_10_mb_report_answers_413(client, store) -> None:
    with unchanged(store):
        response = client.post("/v1/patients", json={"id": "P-B1", "reports": [MARKER * 1_500_000]})
    body = assert_problem(response, 413)
    assert "KGDX_MAX_REQUEST_BYTES" in body["detail"]


def test_a_report_over_max_report_chars_answers_422(client, store) -> None:
    with unchanged(store):
        response = client.post("/v1/patients", json={"id": "P-B2", "reports": ["x" * 200_001]})
    body = assert_problem(response, 422)
    assert "KGDX_MAX_REPORT_CHARS" in body["detail"] and "200,001" in body["detail"]


def test_the_limits_come_from_the_settings(store, settings) -> None:
    tight = settings.model_copy(update={"max_report_chars": 50, "max_request_bytes": 2_000})
    with TestClient(create_app(tight, store=store)) as client, unchanged(store):
        long_report = {"id": "P-B3", "reports": ["x" * 51]}
        assert (
            "limit of 50"
            in assert_problem(client.post("/v1/patients", json=long_report), 422)["detail"]
        )
        named = {"id": "P-B3", "reports": [{"id": "R1", "text": "x" * 51}]}
        assert (
            "limit of 50" in assert_problem(client.post("/v1/patients", json=named), 422)["detail"]
        )
        big = {"id": "P-B3", "reports": ["x" * 40, MARKER * 300]}
        assert "2,000 bytes" in assert_problem(client.post("/v1/patients", json=big), 413)["detail"]


# --- the body-size limit, driven as ASGI (the test client always sends a Content-Length) -----


def _asgi_post(app, chunks, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, int]:
    """POST /v1/patients through ``app``; returns (status, body, bytes the app pulled)."""
    pulled = 0
    source = iter(chunks)
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        chunk = next(source, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/patients",
        "raw_path": b"/v1/patients",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, pulled


def _hundred_mb() -> Iterator[bytes]:
    yield b'{"id": "P-B4", "reports": ["'
    chunk = (MARKER * 10_000)[: 64 * 1024].encode()
    for _ in range(100 * 1024 * 1024 // len(chunk)):
        yield chunk


def test_a_100_mb_content_length_is_refused_unread(store, settings) -> None:
    app = create_app(settings, store=store)
    with TestClient(app), unchanged(store):  # runs the lifespan: the app has its settings
        status, body, pulled = _asgi_post(
            app, _hundred_mb(), [(b"content-length", str(100 * 1024 * 1024).encode())]
        )
    assert status == 413 and pulled == 0
    assert len(body) < SMALL and MARKER.encode() not in body


def test_a_chunked_100_mb_body_is_refused_at_the_limit(store, settings) -> None:
    app = create_app(settings, store=store)
    with TestClient(app), unchanged(store):
        status, body, pulled = _asgi_post(app, _hundred_mb(), [])
    assert status == 413 and json.loads(body)["status"] == 413
    # read up to the limit and one chunk more, never the rest
    assert settings.max_request_bytes < pulled <= settings.max_request_bytes + 64 * 1024


def test_a_bad_content_length_answers_400(store, settings) -> None:
    app = create_app(settings, store=store)
    with TestClient(app), unchanged(store):
        status, body, pulled = _asgi_post(app, [b"{}"], [(b"content-length", b"-5")])
    assert status == 400 and pulled == 0 and json.loads(body)["error"] == "BadRequest"


# --- echoes -----------------------------------------------------------------------------------


def test_a_10_mb_invalid_body_is_not_echoed(client, store) -> None:
    with unchanged(store):
        response = client.post("/v1/patients", json={"id": MARKER * 1_500_000, "reports": ["x"]})
    assert_problem(response, 413)


def test_a_5_mb_invalid_body_is_not_echoed(client, store) -> None:
    # under the body limit, so it is parsed and fails validation: 422, a few hundred bytes
    with unchanged(store):
        response = client.post("/v1/patients", json={"id": MARKER * 700_000, "reports": ["x"]})
    assert "not a valid id" in assert_problem(response, 422)["detail"]


def test_many_errors_are_capped_and_long_names_cut(client, store) -> None:
    body = {"id": "P-M1", "reports": [{"text": "ok", "x" * 100_000: 1}] * 5, "labels": [1] * 50}
    with unchanged(store):
        problem = assert_problem(client.post("/v1/patients", json=body), 422, sent="x" * 100)
    assert len(problem["errors"]) == 10 and "problems, the first" in problem["detail"]


# --- other errors -----------------------------------------------------------------------------


def test_an_unexpected_exception_is_a_500_problem_without_its_text(store, settings, caplog):
    app = create_app(settings, store=store)

    @app.get("/boom-for-test")
    def boom() -> None:
        raise RuntimeError(f"secret {MARKER} in /etc/kgdx")

    with TestClient(app, raise_server_exceptions=False) as client:
        with caplog.at_level(logging.ERROR, logger="api.problems"):
            response = client.get("/boom-for-test")
    body = assert_problem(response, 500)
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    incident = body["detail"].split()[2].rstrip(";")
    logged = [r for r in caplog.records if incident in r.getMessage()]
    assert logged and logged[0].exc_info[0] is RuntimeError


def test_401_is_a_problem_that_keeps_its_challenge(store, settings) -> None:
    from api.auth import key_entry, new_key

    keyed = settings.model_copy(update={"api_keys": (key_entry("t", "admin", new_key()),)})
    with TestClient(create_app(keyed, store=store)) as client:
        response = client.get("/v1/patients")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_openapi_describes_every_error_as_a_problem(store, settings) -> None:
    openapi = create_app(settings, store=store).openapi()
    checked = 0
    for path, operations in openapi["paths"].items():
        for operation in operations.values():
            if "requestBody" in operation:
                assert "413" in operation["responses"]
            for status, response in operation["responses"].items():
                if (path, status) == ("/readyz", "503"):  # its own body: which part is not ready
                    assert "Readiness" in response["content"]["application/json"]["schema"]["$ref"]
                    continue
                if int(status) >= 400:
                    schema = response["content"][PROBLEM]["schema"]["$ref"]
                    assert schema.endswith("ValidationProblem" if status == "422" else "Problem")
                    checked += 1
    assert checked > 20 and "HTTPValidationError" not in openapi["components"]["schemas"]


def test_a_trailing_slash_is_not_redirected_to_the_host_header(client) -> None:
    # Starlette's slash redirect answered 307 with Location: http://<Host header>/query
    response = client.post("/v1/query/", json={"cypher": "RETURN 1 AS one"},
                           headers={"Host": "evil.example"}, follow_redirects=False)  # fmt: skip
    assert response.status_code == 404
    assert "location" not in response.headers
    assert client.post("/v1/query", json={"cypher": "RETURN 1 AS one"}).status_code == 200
