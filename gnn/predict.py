"""Ranked diagnoses for a patient, each with its explanation paths."""

from __future__ import annotations

from gnn.explain import explain
from gnn.train import TrainResult, cpu_threads
from graph.records import Diagnosis
from graph.subgraph import PatientGraph


def diagnose_patient(
    result: TrainResult,
    graph: PatientGraph,
    patient_id: str,
    *,
    top_k: int = 3,
    paths_per_diagnosis: int = 2,
    max_hops: int = 2,
) -> list[Diagnosis]:
    """The ``top_k`` most probable candidate diseases of a patient in ``graph``.

    Raises:
        InputError: the patient is not in the graph.
    """
    p = graph.patient_index(patient_id)
    with cpu_threads(1):
        return _diagnose(result, graph, p, patient_id, top_k, paths_per_diagnosis, max_hops)


def _diagnose(
    result: TrainResult,
    graph: PatientGraph,
    p: int,
    patient_id: str,
    top_k: int,
    paths_per_diagnosis: int,
    max_hops: int,
) -> list[Diagnosis]:
    probabilities = result.predict_proba(graph)[p]
    order = probabilities.argsort(descending=True)[:top_k].tolist()
    diagnoses = []
    for j in order:
        disease_id = result.candidate_ids[j]
        paths = explain(
            result, graph, patient_id, disease_id, max_hops=max_hops, top_k=paths_per_diagnosis
        )
        diagnoses.append(
            Diagnosis(
                concept_id=disease_id,
                name=graph.concepts[disease_id].name,
                probability=float(probabilities[j]),
                paths=tuple(paths),
                model_id=result.model_id,
                input_sections=result.sections,
            )
        )
    return diagnoses
