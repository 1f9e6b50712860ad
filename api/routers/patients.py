"""``/patients``: list, read, write (idempotent replace) and delete patient graphs."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from api.routers.deps import StoreDep
from api.routers.schemas import PatientIds
from graph.errors import InputError
from graph.records import Patient
from graph.store import GraphStore

router = APIRouter(prefix="/patients", tags=["patients"])


def existing_patient(store: GraphStore, patient_id: str) -> Patient:
    """The stored patient, or a 404."""
    try:
        return store.get_patient(patient_id)
    except InputError as exc:  # the only InputError get_patient raises is "unknown patient"
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get("", response_model=PatientIds)
def list_patients(store: StoreDep) -> PatientIds:
    return PatientIds(patient_ids=store.patient_ids())


@router.get("/{patient_id}", response_model=Patient)
def get_patient(patient_id: str, store: StoreDep) -> Patient:
    """A patient with reports, images, findings, labels and attributes."""
    return existing_patient(store, patient_id)


@router.put("/{patient_id}", status_code=204)
def put_patient(patient_id: str, patient: Patient, store: StoreDep) -> Response:
    """Store a patient, replacing what was stored for it (its predictions are kept)."""
    if patient.id != patient_id:
        raise InputError(f"body id {patient.id!r} does not match the URL's {patient_id!r}")
    store.upsert_patient(patient)
    return Response(status_code=204)


@router.delete("/{patient_id}", status_code=204)
def delete_patient(patient_id: str, store: StoreDep) -> Response:
    """Remove a patient with its reports, images and predictions."""
    existing_patient(store, patient_id)
    store.delete_patient(patient_id)
    return Response(status_code=204)
