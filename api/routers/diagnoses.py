"""``/patients/{id}/diagnose`` runs the model; ``/patients/{id}/diagnoses`` are stored predictions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.auth import AUTH_RESPONSES, CLINICAL, WRITE_PATIENTS
from api.routers.deps import ModelSlotDep, StoreDep
from api.routers.patients import existing_patient
from api.routers.schemas import DiagnosisList, PatientIdPath, error_responses

router = APIRouter(prefix="/patients/{patient_id}", tags=["diagnoses"], responses=AUTH_RESPONSES)


@router.post(
    "/diagnose",
    response_model=DiagnosisList,
    dependencies=[Depends(CLINICAL)],
    responses=error_responses(404, 409),
)
def diagnose(
    patient_id: PatientIdPath,
    slot: ModelSlotDep,
    top_k: Annotated[int, Query(ge=1, le=50)] = 3,
    paths_per_diagnosis: Annotated[int, Query(ge=0, le=10)] = 2,
) -> DiagnosisList:
    """Run the trained GNN on a stored patient: the ``top_k`` diagnoses, most probable first,
    each with KG explanation paths and their evidence. The predictions are also stored."""
    existing_patient(slot.engine.store, patient_id)
    engine = slot.require_model()
    diagnoses = engine.diagnose(patient_id, top_k=top_k, paths_per_diagnosis=paths_per_diagnosis)
    return DiagnosisList(diagnoses=diagnoses)


@router.get(
    "/diagnoses",
    response_model=DiagnosisList,
    dependencies=[Depends(CLINICAL)],
    responses=error_responses(404),
)
def stored_diagnoses(patient_id: PatientIdPath, store: StoreDep) -> DiagnosisList:
    """Stored predictions, by model then rank, each with its KG explanation paths."""
    from graph.neo4j_export import stored_predictions

    existing_patient(store, patient_id)
    return DiagnosisList(diagnoses=stored_predictions(store, patient_id))


@router.put(
    "/diagnoses",
    status_code=204,
    dependencies=[Depends(WRITE_PATIENTS)],
    responses=error_responses(404),
)
def save_diagnoses(patient_id: PatientIdPath, body: DiagnosisList, store: StoreDep) -> Response:
    """Store predictions, replacing earlier ones of the same model(s)."""
    existing_patient(store, patient_id)
    store.save_predictions(patient_id, body.diagnoses)
    return Response(status_code=204)
