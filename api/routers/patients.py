"""``/v1/patients``: create a patient (report texts, coded findings, labs, image files), list,
read, draw (``/graph``), read an image thumbnail, delete.

``POST /v1/patients`` takes either ``application/json`` (a :class:`PatientCreate`) or
``multipart/form-data`` with a ``patient`` part (the same JSON as text) and any number of
``images`` file parts (DICOM, PNG or JPEG). Everything is read, extracted and predicted before
the store is touched, and the patient is then written once (``upsert_patient`` is one
transaction): a bad report, an unknown code, one unreadable or out-of-scope image among many,
or too many findings stores nothing of the request.

The store lock is held only around store calls: report extraction and image inference run
without it, so reads of other patients do not wait for them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.auth import AUTH_RESPONSES, READ_PATIENTS, WRITE_PATIENTS
from api.routers.deps import ModelSlotDep, SettingsDep, StoreDep, store_held
from api.routers.input_rules import check_reports
from api.routers.patient_create import PatientCreate
from api.routers.patient_graph import patient_graph
from api.routers.schemas import PatientIdPath, error_responses
from api.routers.v1_schemas import PatientGraph, PatientList, PatientPublic
from api.routers.v1_schemas import patient_public as public_view
from graph.errors import InputError
from graph.records import Id, Patient
from graph.settings import Settings
from graph.store import GraphStore

router = APIRouter(prefix="/patients", tags=["patients"], responses=AUTH_RESPONSES)
READ = [Depends(READ_PATIENTS)]
WRITE = [Depends(WRITE_PATIENTS)]
MAX_IMAGES = 32  # files per request
IMAGE_PART = "images"
PATIENT_PART = "patient"

_CREATE_BODY: dict[str, Any] = {
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


def existing_patient(store: GraphStore, patient_id: str) -> Patient:
    """The stored patient, or a 404."""
    try:
        return store.get_patient(patient_id)
    except InputError as exc:  # the only InputError get_patient raises is "unknown patient"
        raise HTTPException(status_code=404, detail=str(exc)) from None


def require_stored(store: GraphStore, patient_id: str) -> None:
    """A 404 unless the patient is stored (one lookup; the record is not read)."""
    if not store.has_patient(patient_id):
        raise HTTPException(status_code=404, detail=f"unknown patient {patient_id!r}")


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


async def _read_request(request: Request) -> tuple[PatientCreate, list[UploadFile]]:
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


def _forget_diagnoses(request: Request, patient_id: str) -> None:
    from api.routers.diagnosis_memo import memo_of

    memo = memo_of(request.app.state)
    if memo is not None:
        memo.patient_changed(patient_id)


def _image_extractor(request: Request, settings: Settings) -> Any:
    """The app's image model, loaded on the first upload."""
    extractor = getattr(request.app.state, "image_extractor", None)
    if extractor is None:
        from extractors.image.predict import ImageExtractor

        extractor = ImageExtractor(policy=settings.image_out_of_scope)
        request.app.state.image_extractor = extractor
    return extractor


def _thumbnails(settings: Settings, patient: Patient) -> dict[str, str]:
    from api.image_ingest import thumbnail_dir

    folder = thumbnail_dir(settings, patient.id)
    return {
        image.id: f"/v1/patients/{patient.id}/images/{image.id}/thumbnail"
        for image in patient.images
        if (folder / f"{image.id}.png").is_file()
    }


def _public(
    request: Request, store: GraphStore, settings: Settings, patient: Patient
) -> PatientPublic:
    """The API's view of ``patient`` (call with the store held: the first call reads the KG's
    names into the app's concept index, later ones read none)."""
    from api.routers.concept_search import concept_index

    names = concept_index(request.app.state, store).names
    return public_view(patient, names, _thumbnails(settings, patient))


@router.get("", response_model=PatientList, dependencies=READ)
def list_patients(
    store: StoreDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PatientList:
    """The ids of the stored patients, sorted, ``limit`` from ``offset``."""
    ids = store.patient_ids()
    return PatientList(
        items=ids[offset : offset + limit], total=len(ids), offset=offset, limit=limit
    )


@router.post(
    "",
    response_model=PatientPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=WRITE,
    openapi_extra={"requestBody": _CREATE_BODY},
    responses={
        200: {"model": PatientPublic, "description": "An existing patient was replaced"},
        415: {"description": "Neither application/json nor multipart/form-data"},
        **error_responses(404, 422),
    },
)
async def create_patient(request: Request, slot: ModelSlotDep, settings: SettingsDep) -> Response:
    """Store a patient from report texts (findings extracted), coded findings, labs and images.

    The same request twice stores the same patient (report ids default to ``<id>-R<n>``): 201
    when the patient is new, 200 when it replaced the stored one (its predictions are kept; a
    request without images keeps the images stored for it). Nothing is stored when any part
    fails.
    """
    from starlette.concurrency import run_in_threadpool

    body, files = await _read_request(request)
    with tempfile.TemporaryDirectory(prefix="kgdx-upload-") as folder:
        paths = []
        for number, upload in enumerate(files, start=1):
            path = FilePath(folder) / f"image-{number}"
            path.write_bytes(await upload.read())
            paths.append(path)
        stored, created = await run_in_threadpool(_create, request, slot, settings, body, paths)
    answer = JSONResponse(
        stored.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )
    answer.headers["Location"] = f"/v1/patients/{stored.id}"  # a validated id: URL-safe
    return answer


def _cross_referenced(
    request: Request, store: GraphStore, ids: set[str], names: dict[str, str]
) -> dict[str, str]:
    """The KG node each of ``ids`` (not node ids) names as a cross-reference: an HPO id the
    crosswalk merged into a UMLS concept links to that concept, an obsolete HPO id to the node
    its replacement names. Adds their names to ``names``; call with the store held."""
    from api.routers.concept_search import concept_index

    if not ids:
        return {}
    index = concept_index(request.app.state, store)
    nodes = {code: node for code in ids if (node := index.resolve(code)) is not None}
    names.update({code: index.names[node] for code, node in nodes.items()})
    return nodes


def _create(
    request: Request,
    slot: Any,
    settings: Settings,
    body: PatientCreate,
    paths: list[FilePath],
) -> tuple[PatientPublic, bool]:
    from api.image_ingest import (
        merge_images,
        predict_image_files,
        save_thumbnails,
        stored_dicom_ids,
    )

    empty = not (body.reports or body.findings or body.labs or paths)
    text_patient = body.text_patient()
    check_reports((r.text for r in text_patient.reports), settings.max_report_chars)
    engine = slot.engine
    coded_ids = (
        {f.concept_id for f in body.findings}
        | {lab.concept_id for lab in body.labs if lab.concept_id}
        | set(body.labels)
    )
    with store_held(request) as store:
        if empty and not store.has_patient(body.id):  # a stored one keeps its images
            raise InputError(
                "a new patient needs at least one report, coded finding, lab or image: with none "
                "there is nothing to extract or diagnose"
            )
        _ = engine.extractor  # built (or read from its cache) under the lock: it reads the KG
        names = {cid: c.name for cid, c in store.get_concepts(coded_ids).items()}
        nodes = _cross_referenced(request, store, coded_ids - set(names), names)
        known = stored_dicom_ids(store) if paths else {}
    unknown = sorted(coded_ids - set(names))
    if unknown:
        raise InputError(
            f"unknown concept id(s) in findings, labs or labels: {unknown[:5]}: neither a KG "
            "concept nor a cross-reference of one; find the id with GET /v1/concepts?q=<name>"
        )
    if nodes and body.labels:
        labels = tuple(dict.fromkeys(nodes.get(label, label) for label in body.labels))
        text_patient = text_patient.model_copy(update={"labels": labels})
    record = engine.extract(text_patient) if text_patient.reports else text_patient
    coded = body.coded_report(names, nodes)
    if coded is not None:
        report, findings = coded
        record = record.model_copy(
            update={"reports": (*record.reports, report), "findings": record.findings + findings}
        )
    batch = None
    if paths:
        batch = predict_image_files(
            paths,
            settings=settings,
            known=known,
            patient_id=body.id,
            extractor=_image_extractor(request, settings),
            thumbnails=True,
        )
        record = merge_images(record, batch.predictions, batch.new_sources)
    with store_held(request) as store:
        created = not store.has_patient(body.id)
        (stored,) = engine.ingest([record], extract=False, keep_images=batch is None)
        _forget_diagnoses(request, stored.id)
        if batch is not None:
            save_thumbnails(settings, stored.id, batch.thumbnails)
        return _public(request, store, settings, stored), created


@router.get(
    "/{patient_id}",
    response_model=PatientPublic,
    dependencies=READ,
    responses=error_responses(404),
)
async def get_patient(
    patient_id: PatientIdPath, request: Request, settings: SettingsDep
) -> Response:
    """A patient with reports, images, findings (named, with a one-word assertion and where
    each was read), labels, labs and attributes."""
    from api.routers.diagnosis_memo import memo_of

    memo = memo_of(request.app.state)
    if memo is None:
        body = await run_in_threadpool(_public_body, request, settings, patient_id)
        return Response(body, media_type="application/json")
    body = memo.view(patient_id)  # unchanged since last read: no store call, no thread
    if body is None:
        version = memo.version(patient_id)
        body = await _read_on_loop(request, settings, patient_id)
        if body is None:
            body = await run_in_threadpool(_public_body, request, settings, patient_id)
        memo.put_view(patient_id, version, body)
    return Response(body, media_type="application/json")


async def _read_on_loop(request: Request, settings: Settings, patient_id: str) -> bytes | None:
    """A patient's first read (a few store calls, ~1.5 ms) on the event loop, in the batches of
    the diagnoses' store stages (:meth:`api.loop_share.LoopShare.run`); ``None`` when it cannot
    run there (the app's concept names not read yet: seconds on a large KG): the caller reads
    in a thread. It needs the store lock only, not the model's. A large patient (8 MiB of
    reports) is read and serialised on the loop too: tens of ms, once per change.

    In a thread under load it held the store lock for tens of ms (each store call waited for
    the GIL from the busy loop), and the diagnoses queued behind 20 such reads: at the start of
    the load bench's mixed phase the slowest ones took a second."""
    state = request.app.state
    if getattr(state, "concept_index", None) is None:
        return None

    def read() -> bytes:
        return _stored_public(request, state.store, settings, patient_id).model_dump_json().encode()

    return await state.loop_share.run(read, needs_model=False)


def _public_body(request: Request, settings: Settings, patient_id: str) -> bytes:
    with store_held(request) as store:
        public = _stored_public(request, store, settings, patient_id)
    return public.model_dump_json().encode()


def _stored_public(
    request: Request, store: GraphStore, settings: Settings, patient_id: str
) -> PatientPublic:
    """The API's view of a stored patient (404 if it is not stored); the store held."""
    return _public(request, store, settings, existing_patient(store, patient_id))


@router.get(
    "/{patient_id}/graph",
    response_model=PatientGraph,
    response_model_exclude_none=True,
    dependencies=READ,
    responses=error_responses(404),
)
def get_patient_graph(patient_id: PatientIdPath, store: StoreDep) -> PatientGraph:
    """The patient's subgraph, ready to draw: the patient, its findings with their assertion,
    the KG concepts on its stored diagnoses' explanation paths, and those diagnoses."""
    patient = existing_patient(store, patient_id)
    return patient_graph(store, patient, store.get_predictions(patient_id))


@router.get(
    "/{patient_id}/images/{image_id}/thumbnail",
    response_class=Response,
    dependencies=READ,
    responses={
        200: {"content": {"image/png": {}}, "description": "A PNG, at most 256 px a side"},
        **error_responses(404),
    },
)
def get_thumbnail(
    patient_id: PatientIdPath,
    image_id: Annotated[Id, Path(description="An image id of the patient")],
    store: StoreDep,
    settings: SettingsDep,
) -> Response:
    """A small PNG of one of the patient's images (404 when none was stored for it)."""
    from api.image_ingest import thumbnail_dir

    patient = existing_patient(store, patient_id)
    path = thumbnail_dir(settings, patient_id) / f"{image_id}.png"
    if image_id not in {i.id for i in patient.images} or not path.is_file():
        raise HTTPException(status_code=404, detail="no thumbnail stored for this image")
    headers = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
    return Response(path.read_bytes(), media_type="image/png", headers=headers)


@router.delete("/{patient_id}", status_code=204, dependencies=WRITE, responses=error_responses(404))
def delete_patient(
    patient_id: PatientIdPath, request: Request, slot: ModelSlotDep, settings: SettingsDep
) -> Response:
    """Remove a patient with its reports, images, thumbnails and predictions."""
    from api.image_ingest import delete_thumbnails

    with store_held(request) as store:
        require_stored(store, patient_id)
        store.delete_patient(patient_id)
        _forget_diagnoses(request, patient_id)
        delete_thumbnails(settings, patient_id)
        slot.patients_changed()
    return Response(status_code=204)


__all__ = ["existing_patient", "openapi_components", "require_stored", "router"]
