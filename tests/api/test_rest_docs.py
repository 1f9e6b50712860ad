"""``docs/rest.md`` matches the app: generated tables, and every example's route, URL and bodies."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator

from api.rest import create_app
from api.rest_docs import (
    GUIDE_PATH,
    endpoints_markdown,
    generated_section,
    rest_examples,
)
from graph.errors import InputError
from graph.settings import Settings


@pytest.fixture(scope="module")
def openapi() -> dict:
    return create_app(Settings()).openapi()


def _route_pattern(path: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/?]+", path) + r"(\?.*)?$")


def _validator(openapi: dict, schema: dict) -> Draft202012Validator:
    # the schema's $refs point at #/components/schemas/...: resolve them in the same document
    return Draft202012Validator({**schema, "components": openapi["components"]})


def test_generated_section_is_current(openapi) -> None:
    assert generated_section(GUIDE_PATH.read_text()) == endpoints_markdown(openapi), (
        "docs/rest.md is stale: run `python -m api.rest_docs`"
    )


def test_every_route_is_documented_and_every_documented_path_exists(openapi) -> None:
    text = GUIDE_PATH.read_text()
    for path, operations in openapi["paths"].items():
        for method in operations:
            assert f"| `{method.upper()}` | `{path}` |" in text
    urls = re.findall(r"https?://localhost:8000(/[^\s'\"]*)", text)
    assert len(urls) >= 10
    for url in urls:
        assert any(_route_pattern(p).match(url) for p in openapi["paths"]), url


def test_examples_match_routes_statuses_and_schemas(openapi) -> None:
    examples = rest_examples()
    assert len(examples) >= 10
    assert {("POST", "/v1/patients"), ("POST", "/v1/patients/{patient_id}/diagnoses")} <= {
        (e.method, e.path) for e in examples
    }
    for example in examples:
        label = f"{example.method} {example.path} ({example.status})"
        operation = openapi["paths"][example.path][example.method.lower()]
        assert _route_pattern(example.path).match(example.url), label
        assert str(example.status) in operation["responses"], label
        if example.request is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            errors = list(_validator(openapi, schema).iter_errors(example.request))
            assert not errors, f"{label} request: {errors[0].message}"
        if example.response is not None:
            response = operation["responses"][str(example.status)]
            # errors are application/problem+json, answers application/json
            media = "application/problem+json" if example.status >= 400 else "application/json"
            if media not in response["content"]:  # a route's own error body (GET /readyz)
                media = "application/json"
            schema = response["content"][media]["schema"]
            errors = list(_validator(openapi, schema).iter_errors(example.response))
            assert not errors, f"{label} response: {errors[0].message}"


def test_error_examples_use_the_mapped_status(openapi) -> None:
    from api.rest import ERROR_STATUS

    status_of = {cls.__name__: status for cls, status in ERROR_STATUS} | {"NotFound": 404}
    errors = [
        e
        for e in rest_examples()
        if e.status >= 400 and e.response is not None and "error" in e.response  # not /readyz
    ]
    assert {e.response["error"] for e in errors} >= {"ModelError", "QueryError", "NotFound"}
    for example in errors:
        assert status_of[example.response["error"]] == example.status


def test_a_schema_mismatch_is_caught(openapi) -> None:
    operation = openapi["paths"]["/v1/patients"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    validator = _validator(openapi, schema)
    assert not list(validator.iter_errors({"id": "P1", "reports": ["No effusion."]}))
    assert list(validator.iter_errors({"id": "P1", "reports": ["x"], "extra": []}))
    assert list(
        validator.iter_errors({"id": "P1", "findings": [{"concept_id": "X:1", "assertion": "?"}]})
    )
    assert set(operation["requestBody"]["content"]) == {"application/json", "multipart/form-data"}


# examples whose answer depends on a trained model, or on the server's folders
MODEL_DEPENDENT = {
    ("POST", "/v1/patients/{patient_id}/diagnoses", 200),
    ("POST", "/v1/patients/{patient_id}/diagnoses", 409),
    ("GET", "/v1/patients/{patient_id}/diagnoses", 200),
    ("GET", "/v1/patients/{patient_id}/graph", 200),
    ("GET", "/v1/model", 200),
}


@pytest.fixture(scope="module")
def seed_client(tmp_path_factory):
    """The app on a store holding the chest seed KG only, as the examples were made."""
    from fastapi.testclient import TestClient

    from api.engine import Engine

    folder = tmp_path_factory.mktemp("rest-docs")
    settings = Settings(home=folder, db_path=folder / "kg.lbug", extract_warmup=False)
    with Engine(store="embedded", settings=settings) as engine:
        engine.build_seed_kg()
    with TestClient(create_app(settings)) as client:
        yield client


def test_model_independent_examples_replay_exactly(seed_client) -> None:
    """The guide's examples that do not depend on a trained model are real answers, in order
    (the patient the first example stores is what the later ones read)."""
    replayed = 0
    for example in rest_examples():
        if (example.method, example.path, example.status) in MODEL_DEPENDENT:
            continue
        response = seed_client.request(example.method, example.url, json=example.request)
        label = f"{example.method} {example.url}"
        assert response.status_code == example.status, label
        assert response.json() == example.response, label
        replayed += 1
    assert replayed >= 9


def test_example_without_a_url_is_an_input_error(tmp_path) -> None:
    guide = tmp_path / "rest.md"
    guide.write_text("<!-- example: GET /healthz; status: 200 -->\n```json response\n{}\n```\n")
    with pytest.raises(InputError, match="no curl URL"):
        rest_examples(guide)
