"""Diagnosis records of one patient subgraph: the reasoner's ranking with its KG paths.

The ranking and the paths are those of ``kgdx diagnose`` (:mod:`gnn.reasoning.explain_paths`:
calibrated probabilities, paths ranked by occlusion on the trained model); this module turns them
into :class:`graph.records.Diagnosis` records, whose :class:`~graph.records.ExplanationPath`
records (:mod:`gnn.reasoning.path_records`) name where each step came from: the report sentence
or image probability behind the finding, each KG relation's sources, the annotation frequency and
the model's attribution. An excluded finding that lowers the disease's score is shown as counting
against it (negative path score, ``HAS_FINDING_ABSENT`` step), and :func:`shown_paths` keeps a
place for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gnn.reasoning.path_records import RelationCache, path_records
from graph.errors import InputError
from graph.records import Diagnosis, SectionSelection
from graph.subgraph import PatientSubgraph, TermIndex, batch

if TYPE_CHECKING:
    from gnn.reasoning.logits import PatientLogits
    from gnn.reasoning.pipeline import Patient, Reasoner
    from graph.store import GraphStore


class PathLabels:
    """A reasoner's term labels (as ``explain_paths`` names them) and their way back to terms."""

    def __init__(self, reasoner: Reasoner) -> None:
        from gnn.reasoning.explain_paths import _hpo_names

        kg = reasoner.kg
        self.labels = _hpo_names(reasoner)
        self.term_of = {label: i for i, label in enumerate(self.labels)}
        self.names = dict(zip(kg.term_ids, kg.term_names, strict=True))  # node id -> name
        self.names.update(zip(kg.disease_ids, kg.disease_names, strict=True))
        self.relations = RelationCache()


def resolve_subgraph(
    reasoner: Reasoner, index: TermIndex, subgraph: PatientSubgraph
) -> tuple[Patient, list[str]]:
    """The reasoner's patient (term indices) of one subgraph, and its unknown concept ids.

    Raises:
        InputError: no observed or excluded finding is a term of the model's KG.
    """
    from gnn.reasoning.pipeline import Patient

    rows = batch([subgraph], index)
    observed, excluded = rows.scored("observed")[0], rows.scored("excluded")[0]
    if not observed and not excluded:
        detail = ", ".join((list(subgraph.unlinked) + rows.unknown[0])[:10])
        raise InputError(
            f"patient {subgraph.patient_id!r} has no present or absent finding that is a term of "
            f"the model's KG ({reasoner.kg.domain} domain, {reasoner.kg.num_terms} terms)"
            + (f"; not terms: {detail}" if detail else "")
            + " (possible and historical findings are not scored); add findings or reports"
        )
    return Patient(subgraph.patient_id, observed, excluded, -1), rows.unknown[0]


def diagnose_subgraph(
    reasoner: Reasoner,
    subgraph: PatientSubgraph,
    *,
    index: TermIndex,
    labels: PathLabels,
    store: GraphStore | None,
    model_id: str,
    sections: SectionSelection | None,
    top_k: int = 3,
    paths_per_diagnosis: int = 2,
) -> list[Diagnosis]:
    """The ``top_k`` most probable candidates of the patient, each with its paths.

    Raises:
        InputError: no finding is a term of the model's KG; ``top_k`` < 1.
    """
    patient, _ = resolve_subgraph(reasoner, index, subgraph)
    scored = score_patient(reasoner, patient, labels.labels, top_k, paths_per_diagnosis)
    return diagnoses_of(
        reasoner,
        subgraph,
        patient,
        scored,
        labels=labels,
        index=index,
        store=store,
        model_id=model_id,
        sections=sections,
    )


@dataclass(frozen=True)
class Scored:
    """What the model makes of one patient: its ``top_k`` candidates (disease indices, most
    probable first), their calibrated probabilities and the paths shown for each. Small
    and plain, so a model worker process can send it (:mod:`api.model_worker`)."""

    order: list[int]
    probabilities: dict[int, float]
    paths: dict[int, list[dict]]


def score_patient(
    reasoner: Reasoner,
    patient: Patient,
    term_labels: Sequence[str],
    top_k: int,
    paths_per_diagnosis: int,
) -> Scored:
    """The model's part of a diagnosis (no store): probabilities, the top candidates, the
    paths shown for each (:func:`shown_paths` of those ranked by occlusion; ``term_labels``:
    :attr:`PathLabels.labels`).

    Raises:
        InputError: ``top_k`` < 1.
    """
    if top_k < 1:
        raise InputError("top_k must be at least 1")
    from gnn.reasoning.logits import patient_logits

    logits = patient_logits(reasoner, patient)  # the probabilities and the occlusion at once
    probabilities = logits.probabilities()
    order = np.argsort(-probabilities, kind="stable")[:top_k].tolist()
    ranked = (
        _ranked_paths(reasoner, patient, order, term_labels, logits)
        if paths_per_diagnosis > 0
        else {}
    )
    paths = {d: shown_paths(found, paths_per_diagnosis) for d, found in ranked.items()}
    return Scored(order, {d: float(probabilities[d]) for d in order}, paths)


def diagnoses_of(
    reasoner: Reasoner,
    subgraph: PatientSubgraph,
    patient: Patient,
    scored: Scored,
    *,
    labels: PathLabels,
    index: TermIndex,
    store: GraphStore | None,
    model_id: str,
    sections: SectionSelection | None,
) -> list[Diagnosis]:
    """The diagnosis records of a scored patient: each step's evidence, the KG sources of the
    paths (one store read per diagnosis)."""
    return [
        _diagnosis(
            reasoner,
            subgraph,
            patient,
            d,
            scored.probabilities[d],
            found=scored.paths.get(d, []),
            labels=labels,
            index=index,
            store=store,
            model_id=model_id,
            sections=sections,
        )
        for d in scored.order
    ]


def ranked_paths(
    reasoner: Reasoner, patient: Patient, diseases: Sequence[int], labels: PathLabels
) -> dict[int, list[dict]]:
    """``kgdx diagnose``'s paths of several diseases, ranked by occlusion computed once for all
    of them (as :func:`gnn.reasoning.explain_paths.diagnose` does), by disease index."""
    return _ranked_paths(reasoner, patient, diseases, labels.labels)


def _ranked_paths(
    reasoner: Reasoner,
    patient: Patient,
    diseases: Sequence[int],
    term_labels: Sequence[str],
    logits: PatientLogits | None = None,
) -> dict[int, list[dict]]:
    from gnn.reasoning.explain_paths import _candidate_paths, _occluded, _ranked
    from gnn.reasoning.logits import occlusion

    candidates = [_candidate_paths(reasoner, patient, d, term_labels) for d in diseases]
    terms = _occluded(candidates)
    attribution = occlusion(reasoner, patient, list(diseases), terms, logits)
    return {
        d: _ranked(found, {t: float(attribution[i, j]) for i, t in enumerate(terms)})
        for j, (d, found) in enumerate(zip(diseases, candidates, strict=True))
    }


def shown_paths(ranked: Sequence[dict], k: int) -> list[dict]:
    """The ``k`` best of ``ranked`` paths, keeping room for counter-evidence: when none of them
    counts against the diagnosis (negative attribution) but a later one does (typically an
    excluded finding the disease is annotated with), the strongest of those takes the last of
    ``k >= 2`` places, so what speaks against a diagnosis is always shown with it."""
    top = list(ranked[:k])
    if k < 2 or any(_against(p) for p in top):
        return top
    against = [p for p in ranked[k:] if _against(p)]
    if not against:
        return top
    return [*top[:-1], min(against, key=lambda p: p["attribution"])]


def _against(path: dict) -> bool:
    from gnn.reasoning.explain_paths import model_role

    return model_role(path.get("attribution")) == "counts against"


def explain_subgraph(
    reasoner: Reasoner,
    subgraph: PatientSubgraph,
    disease_id: str,
    *,
    index: TermIndex,
    labels: PathLabels,
    store: GraphStore | None,
    model_id: str,
    sections: SectionSelection | None,
    k: int = 3,
) -> Diagnosis:
    """One named candidate of the patient with its probability and ``k`` paths.

    Raises:
        InputError: ``disease_id`` is not a candidate of the model's KG (the message says how to
            find one), or no finding is a term of it.
    """
    kg = reasoner.kg
    try:
        d = kg.resolve_disease(disease_id)
    except InputError:
        examples = ", ".join(kg.disease_label(i) for i in range(min(3, kg.num_diseases)))
        raise InputError(
            f"{disease_id} is not a candidate disease of the model's KG ({kg.domain} domain, "
            f"{kg.num_diseases} candidates such as {examples}); check the id, or list the "
            "patient's top diagnoses first"
        ) from None
    patient, _ = resolve_subgraph(reasoner, index, subgraph)
    from gnn.reasoning.logits import patient_logits

    logits = patient_logits(reasoner, patient)
    probability = float(logits.probabilities()[d])
    found = (
        shown_paths(_ranked_paths(reasoner, patient, [d], labels.labels, logits)[d], k)
        if k > 0
        else []
    )
    return _diagnosis(
        reasoner,
        subgraph,
        patient,
        d,
        probability,
        found=found,
        labels=labels,
        index=index,
        store=store,
        model_id=model_id,
        sections=sections,
    )


def _diagnosis(
    reasoner, subgraph, patient, d, probability, *, found, labels, index, store, model_id, sections
) -> Diagnosis:
    kg = reasoner.kg
    paths = path_records(
        reasoner, subgraph, patient, d, found, labels=labels, index=index, store=store
    )
    return Diagnosis(
        concept_id=kg.disease_ids[d],
        name=kg.disease_names[d],
        probability=min(max(probability, 0.0), 1.0),
        paths=tuple(paths),
        model_id=model_id,
        input_sections=sections,
    )
