"""Path explanations of a diagnosis and their faithfulness.

For a patient and a predicted disease, every KG walk ``patient -HAS_FINDING-> finding -...->
disease`` (up to ``max_hops`` KG relations, each walked forwards or backwards, a backwards edge
named by :func:`graph.schema.inverse_name`) is a candidate explanation. Its score is the model's
gradient x input attribution (Simonyan et al. 2014; Shrikumar et al. 2017) of the disease logit to
the input embedding of the walk's finding node, discounted by half per extra KG hop. Each step
carries its evidence: the report sentence of the finding, an image probability, or the KG
relation's sources.

Faithfulness (comprehensiveness, DeYoung et al., ACL 2020): how much the disease probability drops
when the patient's edges to the explained findings are removed, against removing as many other
positive findings of the same patient chosen at random.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gnn.train import TrainResult
from graph.errors import InputError
from graph.records import Diagnosis, ExplanationPath, Finding, ImageEvidence, Polarity
from graph.schema import PATIENT_NODE_TYPE, inverse_name
from graph.subgraph import PatientGraph

POSITIVE_EDGES = ("has_finding_present", "has_finding_possible")


@dataclass(frozen=True)
class _Step:
    concept_id: str
    relation: str
    evidence: str


def _finding_evidence(findings: list[Finding]) -> str:
    parts = []
    for finding in findings:
        source = finding.provenance
        if isinstance(source, ImageEvidence):
            parts.append(f"image {source.image_id} P={source.probability:.2f} ({source.model_id})")
        elif finding.assertion.polarity is Polarity.PRESENT:
            note = "" if finding.assertion.certainty.value == "definite" else " (possible)"
            parts.append(f'"{source.sentence or source.text}"{note}')
    return "; ".join(dict.fromkeys(parts))


def _adjacency(graph: PatientGraph) -> dict[str, list[_Step]]:
    adjacency: dict[str, list[_Step]] = {}
    for relation in graph.relations:
        evidence = "KG: " + "; ".join(relation.sources) if relation.sources else "KG"
        adjacency.setdefault(relation.src, []).append(_Step(relation.dst, relation.type, evidence))
        adjacency.setdefault(relation.dst, []).append(
            _Step(relation.src, inverse_name(relation.type), evidence)
        )
    return adjacency


def _walks(
    adjacency: dict[str, list[_Step]], start: str, goal: str, max_hops: int
) -> list[list[_Step]]:
    """Simple KG walks from ``start`` to ``goal`` with at most ``max_hops`` relations."""
    if start == goal:
        return [[]]
    found: list[list[_Step]] = []

    def extend(node: str, walk: list[_Step], seen: set[str]) -> None:
        if len(walk) == max_hops:
            return
        for step in adjacency.get(node, []):
            if step.concept_id in seen:
                continue
            if step.concept_id == goal:
                found.append([*walk, step])
            else:
                extend(step.concept_id, [*walk, step], seen | {step.concept_id})

    extend(start, [], {start})
    return sorted(found, key=len)


def attributions(
    result: TrainResult, graph: PatientGraph, patient_id: str, disease_id: str
) -> dict[str, float]:
    """Gradient x input of the disease logit to each positively linked finding's input embedding.

    Raises:
        InputError: the patient or disease is not in the graph / not a candidate.
    """
    p = graph.patient_index(patient_id)
    if disease_id not in result.candidate_ids:
        raise InputError(f"{disease_id} is not a candidate diagnosis of this model")
    j = result.candidate_ids.index(disease_id)
    model = result.model
    model.eval()
    h0 = {nt: h.detach().requires_grad_(True) for nt, h in model.embed(graph.data.x_dict).items()}
    logit = model.score(model.propagate(h0, graph.data.edge_index_dict))[p, j]
    logit.backward()
    scores: dict[str, float] = {}
    for concept_id in _positive_concepts(graph, patient_id):
        node_type, index = graph.concept_node(concept_id)
        scores[concept_id] = (h0[node_type].grad[index] * h0[node_type][index]).sum().item()
    return scores


def _positive_concepts(graph: PatientGraph, patient_id: str) -> list[str]:
    p = graph.patient_index(patient_id)
    linked = []
    for concept_id in graph.findings.get(patient_id, {}):
        node_type, index = graph.concept_node(concept_id)
        for relation in POSITIVE_EDGES:
            edge_index = graph.data.edge_index_dict.get((PATIENT_NODE_TYPE, relation, node_type))
            if edge_index is not None and bool(
                ((edge_index[0] == p) & (edge_index[1] == index)).any()
            ):
                linked.append(concept_id)
                break
    return linked


def explain(
    result: TrainResult,
    graph: PatientGraph,
    patient_id: str,
    disease_id: str,
    *,
    max_hops: int = 2,
    top_k: int = 3,
) -> list[ExplanationPath]:
    """The ``top_k`` best-scored KG walks from the patient's findings to ``disease_id``.

    Only walks from findings whose attribution supports the diagnosis (score > 0) are returned;
    a diagnosis the model ranks high with no supporting KG walk gets none.
    """
    scores = attributions(result, graph, patient_id, disease_id)
    adjacency = _adjacency(graph)
    name = {cid: c.name for cid, c in graph.concepts.items()}
    paths: list[ExplanationPath] = []
    for concept_id, attribution in scores.items():
        if attribution <= 0:
            continue
        first = _finding_evidence(graph.findings[patient_id][concept_id])
        for walk in _walks(adjacency, concept_id, disease_id, max_hops):
            nodes = (patient_id, concept_id, *(s.concept_id for s in walk))
            paths.append(
                ExplanationPath(
                    nodes=nodes,
                    relations=("HAS_FINDING", *(s.relation for s in walk)),
                    score=attribution * 0.5 ** max(len(walk) - 1, 0),
                    evidence=(first, *(s.evidence for s in walk)),
                    node_names=(f"patient {patient_id}", *(name[n] for n in nodes[1:])),
                )
            )
    paths.sort(key=lambda path: path.score, reverse=True)
    return paths[:top_k]


@torch.no_grad()
def _probability_without(
    result: TrainResult, graph: PatientGraph, patient_id: str, disease_id: str, removed: set[str]
) -> float:
    p = graph.patient_index(patient_id)
    removed_nodes = {graph.concept_node(cid) for cid in removed}
    edge_index_dict = {}
    for edge_type, edge_index in graph.data.edge_index_dict.items():
        src, relation, dst = edge_type
        patient_side, concept_side, concept_type = None, None, None
        if src == PATIENT_NODE_TYPE:
            patient_side, concept_side, concept_type = edge_index[0], edge_index[1], dst
        elif dst == PATIENT_NODE_TYPE:
            patient_side, concept_side, concept_type = edge_index[1], edge_index[0], src
        if patient_side is not None and relation.removeprefix("rev_") in POSITIVE_EDGES:
            drop = torch.zeros(edge_index.size(1), dtype=torch.bool)
            for node_type, index in removed_nodes:
                if node_type == concept_type:
                    drop |= (patient_side == p) & (concept_side == index)
            edge_index = edge_index[:, ~drop]
        edge_index_dict[edge_type] = edge_index
    result.model.eval()
    logits = result.model(graph.data.x_dict, edge_index_dict)
    j = result.candidate_ids.index(disease_id)
    return float(torch.sigmoid(logits[p, j] / result.temperature))


def faithfulness(
    result: TrainResult,
    graph: PatientGraph,
    diagnoses: dict[str, Sequence[Diagnosis]],
    *,
    seed: int = 0,
) -> dict[str, float]:
    """Mean probability drop when the explained findings are removed vs. as many random ones.

    Args:
        diagnoses: per patient id, diagnoses with their paths (from :func:`explain`).

    Returns:
        ``explained_drop``, ``random_drop`` (means over explained diagnoses) and ``n``.
    """
    rng = random.Random(seed)
    explained, random_drops = [], []
    for patient_id, patient_diagnoses in diagnoses.items():
        positives = _positive_concepts(graph, patient_id)
        for diagnosis in patient_diagnoses:
            cited = {path.nodes[1] for path in diagnosis.paths}
            if not cited:
                continue
            base = _probability_without(result, graph, patient_id, diagnosis.concept_id, set())
            without = _probability_without(result, graph, patient_id, diagnosis.concept_id, cited)
            explained.append(base - without)
            others = [c for c in positives if c not in cited]
            if len(others) >= len(cited):
                picked = set(rng.sample(others, len(cited)))
                rand = _probability_without(result, graph, patient_id, diagnosis.concept_id, picked)
                random_drops.append(base - rand)
    mean = lambda values: float(sum(values) / len(values)) if values else float("nan")  # noqa: E731
    return {
        "explained_drop": mean(explained),
        "random_drop": mean(random_drops),
        "n": len(explained),
    }
