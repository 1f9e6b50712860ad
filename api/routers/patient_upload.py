"""Reading ``POST /v1/patients``: either ``application/json`` (a :class:`PatientCreate`) or
``multipart/form-data`` with a ``patient`` part (the same JSON as text) and up to
``MAX_IMAGES`` ``images`` file parts (DICOM, PNG or JPEG). The hand-written OpenAPI request body
(:data:`CREATE_BODY`) describes both; what happens next is in :mod:`api.routers.patient_ingest`.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.routers.patient_create import PatientCreate
from graph.errors import InputError

MAX_IMAGES = 32  # files per request
IMAGE_PART = "images"
PATIENT_PART = "patient"

CREATE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/PatientCreate"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [PATIENT_PART],
                "properties": {
                    PATIENT_PART: {
                        "type": "string",
                        "description": "The PatientCreate body as JSON text",
                    },
                    IMAGE_PART: {
                        "type": "array",
                        "maxItems": MAX_IMAGES,
                        "items": {"type": "string", "format": "binary"},
                        "description": "DICOM, PNG or JPEG files of this patient",
                    },
                },
            }
        },
    },
}


def openapi_components() -> dict[str, Any]:
    """Schemas the hand-written request body refers to (added to the app's OpenAPI)."""
    schema = PatientCreate.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.pop("$defs", {})
    components["PatientCreate"] = schema
    return components


def _invalid(exc: ValidationError, where: str) -> RequestValidationError:
    errors = []
    for error in exc.errors(include_input=False, include_url=False):
        errors.append({**error, "loc": (where, *error.get("loc", ()))})
    return RequestValidationError(errors)


def _parse_patient(raw: bytes | str, where: str) -> PatientCreate:
    try:
        return PatientCreate.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc, where) from None


async def read_request(request: Request) -> tuple[PatientCreate, list[UploadFile]]:
    """The body as a :class:`PatientCreate` and the uploaded files (none for JSON)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return _parse_patient(await request.body(), "body"), []
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=MAX_IMAGES, max_fields=8)
        except HTTPException:
            raise
        except Exception:  # a malformed multipart body (the parser's own errors)
            raise InputError("the multipart body cannot be read") from None
        unknown = set(form.keys()) - {PATIENT_PART, IMAGE_PART}
        if unknown:
            raise InputError(f"unknown form parts {sorted(unknown)[:3]}; send patient and images")
        parts = form.getlist(PATIENT_PART)
        if len(parts) != 1 or not isinstance(parts[0], str):
            raise InputError("send exactly one 'patient' part: the patient as JSON text")
        files = form.getlist(IMAGE_PART)
        if any(not isinstance(f, UploadFile) for f in files):
            raise InputError("each 'images' part must be a file")
        return _parse_patient(parts[0], PATIENT_PART), files  # type: ignore[arg-type]
    raise HTTPException(
        status_code=415,
        detail="send the patient as application/json, or as multipart/form-data with a "
        "'patient' part (JSON) and 'images' files",
    )


__all__ = ["CREATE_BODY", "MAX_IMAGES", "openapi_components", "read_request"]
