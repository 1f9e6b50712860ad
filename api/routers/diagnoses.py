"""``/v1/patients/{id}/diagnoses``: ``POST`` runs the model on a stored patient (ranked
diagnoses, calibrated probabilities, explanation paths with evidence, stored so Cypher finds
them); ``GET`` returns the stored ones with the model and KG release they came from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.auth import AUTH_RESPONSES, CLINICAL
from api.routers.deps import StoreDep, model_held, store_held
from api.routers.patients import existing_patient
from api.routers.schemas import PatientIdPath, error_responses
from api.routers.v1_schemas import DiagnosisList, DiagnosisPublic, PathPublic
from graph.store import StoredPrediction

router = APIRouter(
    prefix="/patients/{patient_id}/diagnoses",
    tags=["diagnoses"],
    dependencies=[Depends(CLINICAL)],
    responses=AUTH_RESPONSES,
)


def public_diagnoses(patient_id: str, stored: list[StoredPrediction]) -> DiagnosisList:
    return DiagnosisList(
        patient_id=patient_id,
        diagnoses=[
            DiagnosisPublic(
                concept_id=s.diagnosis.concept_id,
                name=s.diagnosis.name,
                probability=s.diagnosis.probability,
                rank=s.rank,
                paths=[PathPublic.model_validate(p.model_dump()) for p in s.diagnosis.paths],
                model_id=s.diagnosis.model_id,
                kg_release=s.diagnosis.kg_release,
                created=s.created,
                input_sections=s.diagnosis.input_sections,
            )
            for s in stored
        ],
    )


@router.post("", response_model=DiagnosisList, responses=error_responses(404, 409))
def diagnose(
    patient_id: PatientIdPath,
    request: Request,
    top_k: Annotated[int, Query(ge=1, le=50)] = 3,
    paths_per_diagnosis: Annotated[int, Query(ge=0, le=10)] = 2,
) -> DiagnosisList:
    """Run the served model on a stored patient: the ``top_k`` diagnoses, most probable first,
    with calibrated probabilities and up to ``paths_per_diagnosis`` explanation paths each (with
    the evidence of every step). They are stored, replacing this model's earlier ones. No body.
    """
    with store_held(request) as store:
        existing_patient(store, patient_id)
    with model_held(request) as engine:  # the engine takes the store lock for its store calls
        diagnoses = engine.diagnose(
            patient_id, top_k=top_k, paths_per_diagnosis=paths_per_diagnosis
        )
    with store_held(request) as store:
        stored = store.get_predictions(patient_id)
    models = {d.model_id for d in diagnoses}
    ranked = [s for s in stored if s.diagnosis.model_id in models]
    return public_diagnoses(patient_id, ranked)


@router.get("", response_model=DiagnosisList, responses=error_responses(404))
def stored_diagnoses(patient_id: PatientIdPath, store: StoreDep) -> DiagnosisList:
    """The stored diagnoses of every model that diagnosed the patient, by model then rank,
    each with its model id, KG release and paths (an empty list when none)."""
    existing_patient(store, patient_id)
    return public_diagnoses(patient_id, store.get_predictions(patient_id))
