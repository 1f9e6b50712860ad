"""Every REST error as ``application/problem+json`` (RFC 9457), never echoing the request.

A problem has ``type`` (``about:blank``: the status says it all), ``title`` (the status phrase),
``status``, ``detail`` (what went wrong and what to do) and, for continuity with the earlier
``{"error", "detail"}`` body, ``error``: the exception's name (``InputError``, ``NotFound``).
A request that does not validate adds ``errors``: where (``loc``) and what (``msg``, ``type``),
but never the submitted value: pydantic's ``input`` and ``ctx`` are dropped, the number of errors
and the length of each text are capped, so a 10 MB bad body answers a few hundred bytes, and text
that cannot be encoded (a lone surrogate in a dict key) cannot turn a 422 into a 500.

An unexpected exception answers a 500 problem with an incident id and no exception text; the
traceback goes to the server log under the same id.
"""

from __future__ import annotations

import logging
import re
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from graph.errors import KgdxError

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
MAX_ERRORS = 10  # validation errors listed; the count of all is in ``detail``
MAX_DETAIL_CHARS = 1_000
MAX_MSG_CHARS = 200
MAX_LOC_PARTS = 8
MAX_LOC_CHARS = 40
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class Problem(BaseModel):
    """The body of every error answer (RFC 9457 problem details)."""

    type: str = Field(default="about:blank", description="about:blank: see the status")
    title: str = Field(description="The HTTP status phrase, e.g. Not Found")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong and what to do")
    error: str = Field(description="The error's name, e.g. ModelError, NotFound, ValidationError")


class FieldProblem(BaseModel):
    """One reason a request did not validate; the submitted value is never repeated."""

    loc: list[str | int] = Field(description='Where: e.g. ["body", "reports", 0]')
    msg: str
    type: str


class ValidationProblem(Problem):
    """A request that does not validate (422): the first few field problems."""

    errors: list[FieldProblem] = Field(
        default_factory=list,
        max_length=MAX_ERRORS,
        description="Present when the request did not validate; an InputError 422 has none",
    )


def clean_text(text: str, limit: int) -> str:
    """``text`` safe to put in an answer: unencodable characters escaped, control characters
    dropped, at most ``limit`` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub("", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem(
    status: int,
    detail: str,
    error: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem answer; ``error`` defaults to the status phrase without spaces."""
    title = HTTPStatus(status).phrase
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": clean_text(detail, MAX_DETAIL_CHARS),
        "error": error or title.replace(" ", "").replace("-", ""),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _loc_part(part: Any) -> str | int:
    if isinstance(part, int) and not isinstance(part, bool):
        return part
    return clean_text(str(part), MAX_LOC_CHARS)


def _field_problem(error: dict[str, Any]) -> dict[str, Any]:
    msg = str(error.get("msg", "")).removeprefix("Value error, ")
    if error.get("type") == "json_invalid":  # json's own message: where, not what was sent
        said = str((error.get("ctx") or {}).get("error", ""))
        msg = msg if not said or said in msg else f"{msg}: {said}"
        if "hex escape" in msg or "surrogate" in msg:
            msg += " (a lone surrogate \\uD800-\\uDFFF, or a \\u without 4 hex digits)"
    loc = [_loc_part(part) for part in tuple(error.get("loc", ()))[:MAX_LOC_PARTS]]
    return {
        "loc": loc,
        "msg": clean_text(msg, MAX_MSG_CHARS),
        "type": clean_text(str(error.get("type", "")), MAX_LOC_CHARS),
    }


def validation_problem(errors: list[dict[str, Any]]) -> JSONResponse:
    """The 422 answer for pydantic/FastAPI validation errors (values left out)."""
    listed = [_field_problem(error) for error in errors[:MAX_ERRORS]]
    where = ".".join(str(part) for part in listed[0]["loc"]) if listed else "request"
    first = f"{where}: {listed[0]['msg']}" if listed else "invalid request"
    count = f"{len(errors)} problems, the first" if len(errors) > 1 else "1 problem"
    detail = f"the request does not validate ({count}: {first}); see errors"
    return problem(422, detail, "ValidationError", errors=listed)


def install(app: FastAPI, error_status: Any) -> None:
    """Register the problem handlers on ``app`` and make its OpenAPI say so.

    Args:
        error_status: maps a :class:`~graph.errors.KgdxError` to its HTTP status.
    """

    @app.exception_handler(KgdxError)
    async def kgdx_error(request: Request, exc: KgdxError) -> JSONResponse:
        return problem(error_status(exc), str(exc), type(exc).__name__)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(list(exc.errors()))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        logger.error(
            "unexpected error %s on %s %s",
            incident,
            request.method,
            request.url.path,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return problem(
            500,
            f"internal error {incident}; the server log has the details under this id",
            "InternalServerError",
        )

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_ERROR_BODIES = {"Problem", "ValidationProblem", "HTTPValidationError"}


def _own_body(response: dict[str, Any]) -> bool:
    """Whether a route declares its own (non-problem) body for an error status, as
    ``GET /readyz`` does for its 503."""
    for media in response.get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        if ref and ref.rsplit("/", 1)[-1] not in _ERROR_BODIES:
            return True
    return False


def problem_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every 4xx/5xx answer as a problem (unless the route declares its own
    body), and 413 on routes that take a body."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, FieldProblem, ValidationProblem):
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(generated.pop("$defs", {}))
        components[model.__name__] = generated
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("413", {"description": "The request body is too large"})
            for status, response in responses.items():
                if status[:1] not in {"4", "5"} or _own_body(response):
                    continue
                name = "ValidationProblem" if status == "422" else "Problem"
                ref = {"$ref": f"#/components/schemas/{name}"}
                response["content"] = {PROBLEM_JSON: {"schema": ref}}
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's own 422 body
        components.pop(unused, None)
    return schema
