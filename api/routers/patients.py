"""``/v1/patients``: create a patient (report texts, coded findings, labs, image files), list,
read, draw (``/graph``), read an image thumbnail, delete.

``POST /v1/patients`` takes either ``application/json`` (a :class:`PatientCreate`) or
``multipart/form-data`` with a ``patient`` part (the same JSON as text) and ``images`` file
parts (DICOM, PNG or JPEG; read in :mod:`api.routers.patient_upload`). Everything is read,
extracted and predicted before the store is touched, and the patient is then written once
(``upsert_patient`` is one transaction): a bad report, an unknown code, one unreadable or
out-of-scope image among many, or too many findings stores nothing of the request
(:mod:`api.routers.patient_ingest`).

The store lock is held only around store calls: report extraction and image inference run
without it, so reads of other patients do not wait for them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import AUTH_RESPONSES, READ_PATIENTS, WRITE_PATIENTS
from api.routers.deps import ModelSlotDep, SettingsDep, StoreDep, store_held
from api.routers.patient_graph import patient_graph
from api.routers.patient_ingest import create_record, forget_diagnoses, public_patient
from api.routers.patient_upload import CREATE_BODY, read_request
from api.routers.schemas import PatientIdPath, error_responses
from api.routers.v1_schemas import PatientGraph, PatientList, PatientPublic
from graph.errors import InputError
from graph.records import Id, Patient
from graph.settings import Settings
from graph.store import GraphStore

router = APIRouter(prefix="/patients", tags=["patients"], responses=AUTH_RESPONSES)
READ = [Depends(READ_PATIENTS)]
WRITE = [Depends(WRITE_PATIENTS)]


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
    openapi_extra={"requestBody": CREATE_BODY},
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

    body, files = await read_request(request)
    with tempfile.TemporaryDirectory(prefix="kgdx-upload-") as folder:
        paths = []
        for number, upload in enumerate(files, start=1):
            path = FilePath(folder) / f"image-{number}"
            path.write_bytes(await upload.read())
            paths.append(path)
        stored, created = await run_in_threadpool(
            create_record, request, slot, settings, body, paths
        )
    answer = JSONResponse(
        stored.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )
    answer.headers["Location"] = f"/v1/patients/{stored.id}"  # a validated id: URL-safe
    return answer


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
    return public_patient(request, store, settings, existing_patient(store, patient_id))


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
        forget_diagnoses(request, patient_id)
        delete_thumbnails(settings, patient_id)
        slot.patients_changed()
    return Response(status_code=204)


__all__ = ["existing_patient", "require_stored", "router"]
