"""``/patients``: ingest report text, list, read, write (idempotent replace) and delete patients."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Response, status

from api.auth import AUTH_RESPONSES, READ_PATIENTS, WRITE_PATIENTS
from api.routers.deps import ModelSlotDep, SettingsDep, StoreDep
from api.routers.input_rules import check_reports
from api.routers.schemas import PatientIdPath, PatientIds, PatientIngest, error_responses
from graph.errors import InputError
from graph.records import Patient
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


def _is_stored(store: GraphStore, patient_id: str) -> bool:
    try:
        store.get_patient(patient_id)
    except InputError:
        return False
    return True


@router.get("", response_model=PatientIds, dependencies=READ)
def list_patients(store: StoreDep) -> PatientIds:
    """The ids of the stored patients, sorted."""
    return PatientIds(patient_ids=store.patient_ids())


@router.post(
    "",
    response_model=Patient,
    status_code=status.HTTP_201_CREATED,
    dependencies=WRITE,
    responses={
        200: {"model": Patient, "description": "An existing patient was replaced"},
        **error_responses(404),
    },
)
def ingest_patient(
    body: PatientIngest, slot: ModelSlotDep, settings: SettingsDep, response: Response
) -> Patient:
    """Extract findings from a patient's report text(s) and store the patient.

    The same request twice stores the same patient (report ids default to ``<id>-R<n>``):
    201 when the patient is new, 200 when it replaced the stored one (its predictions are kept).
    """
    patient = body.to_patient()
    check_reports((r.text for r in patient.reports), settings.max_report_chars)
    engine = slot.engine
    created = not _is_stored(engine.store, body.id)
    (stored,) = engine.ingest([patient])
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["Location"] = f"/patients/{stored.id}"  # a validated id: URL-safe
    return stored


@router.get(
    "/{patient_id}", response_model=Patient, dependencies=READ, responses=error_responses(404)
)
def get_patient(patient_id: PatientIdPath, store: StoreDep) -> Patient:
    """A patient with reports, images, findings, labels and attributes."""
    return existing_patient(store, patient_id)


@router.put("/{patient_id}", status_code=204, dependencies=WRITE, responses=error_responses(404))
def put_patient(
    patient_id: PatientIdPath, patient: Patient, slot: ModelSlotDep, settings: SettingsDep
) -> Response:
    """Store a patient as given, replacing what was stored for it (its predictions are kept)."""
    check_reports((r.text for r in patient.reports), settings.max_report_chars)
    if patient.id != patient_id:
        raise InputError(f"body id {patient.id!r} does not match the URL's {patient_id!r}")
    # stores it as given and drops the engine's cached graph
    slot.engine.ingest([patient], extract=False, keep_images=False)
    return Response(status_code=204)


@router.delete("/{patient_id}", status_code=204, dependencies=WRITE, responses=error_responses(404))
def delete_patient(patient_id: PatientIdPath, slot: ModelSlotDep) -> Response:
    """Remove a patient with its reports, images and predictions."""
    existing_patient(slot.engine.store, patient_id)
    slot.engine.store.delete_patient(patient_id)
    slot.patients_changed()
    return Response(status_code=204)
