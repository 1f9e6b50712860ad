"""``/patients/{id}/diagnoses``: a patient's stored predictions with their explanation paths."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.routers.deps import StoreDep
from api.routers.patients import existing_patient
from api.routers.schemas import DiagnosisList

router = APIRouter(prefix="/patients/{patient_id}/diagnoses", tags=["diagnoses"])


@router.get("", response_model=DiagnosisList)
def stored_diagnoses(patient_id: str, store: StoreDep) -> DiagnosisList:
    """Stored predictions, by model then rank, each with its KG explanation paths."""
    from graph.neo4j_export import stored_predictions

    existing_patient(store, patient_id)
    return DiagnosisList(diagnoses=stored_predictions(store, patient_id))


@router.put("", status_code=204)
def save_diagnoses(patient_id: str, body: DiagnosisList, store: StoreDep) -> Response:
    """Store predictions, replacing earlier ones of the same model(s)."""
    existing_patient(store, patient_id)
    store.save_predictions(patient_id, body.diagnoses)
    return Response(status_code=204)
