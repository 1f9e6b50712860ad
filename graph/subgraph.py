"""Patients plus their KG neighbourhood as a PyG ``HeteroData`` (the GNN's input).

Node types come from :func:`graph.schema.node_types` (the patient plus one per concept kind),
edge types from :func:`graph.schema.metagraph` restricted to those present. A patient's finding
becomes an edge typed by :func:`graph.schema.finding_edge_relation` (present, possible, absent and
historical findings are different edge types); family findings do not link the patient. Known
diagnoses (``Patient.labels``) are the targets and never become edges. Every edge type has its
reverse (``rev_<relation>``) so messages flow both ways. Only the findings of the chosen report
sections become edges (:mod:`graph.sections`; by default every section but the impression, which
states the diagnosis the model is asked for).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch_geometric.data import HeteroData

from graph.errors import InputError
from graph.records import Concept, Finding, Patient, Relation, SectionSelection
from graph.schema import (
    FINDING_EDGE_TYPES,
    PATIENT_NODE_TYPE,
    EdgeType,
    concept_node_type,
    finding_edge_relation,
    metagraph,
)
from graph.sections import FEATURE_SECTIONS, select_patient
from graph.store import GraphStore


@dataclass
class GraphVocabulary:
    """Which node stands at which index: fixed at training so a model can be applied later.

    Args:
        concept_ids: node type -> concept ids, in index order.
        edge_types: every edge type of the graph (forward and reverse), in a stable order.
    """

    concept_ids: dict[str, list[str]]
    edge_types: list[EdgeType]

    def index(self) -> dict[str, tuple[str, int]]:
        """Concept id -> (node type, index)."""
        return {cid: (nt, i) for nt, ids in self.concept_ids.items() for i, cid in enumerate(ids)}

    def to_json(self) -> dict:
        return {"concept_ids": self.concept_ids, "edge_types": [list(e) for e in self.edge_types]}

    @classmethod
    def from_json(cls, data: dict) -> GraphVocabulary:
        return cls(
            concept_ids={k: list(v) for k, v in data["concept_ids"].items()},
            edge_types=[tuple(e) for e in data["edge_types"]],
        )


@dataclass
class PatientGraph:
    """A built graph with the maps back to patient and concept ids.

    ``findings[patient_id]`` keeps, per linked concept, the findings behind the patient's edge
    (for explanation evidence); ``relations`` the KG relations used (for path search);
    ``sections`` which report sections' findings the graph holds.
    """

    data: HeteroData
    vocabulary: GraphVocabulary
    patient_ids: list[str]
    concepts: dict[str, Concept]
    relations: list[Relation]
    findings: dict[str, dict[str, list[Finding]]] = field(default_factory=dict)
    sections: SectionSelection = FEATURE_SECTIONS

    def concept_node(self, concept_id: str) -> tuple[str, int]:
        """(node type, index) of a concept.

        Raises:
            InputError: the concept is not in the graph.
        """
        try:
            return self.vocabulary.index()[concept_id]
        except KeyError:
            raise InputError(f"concept {concept_id!r} is not in the patient graph") from None

    def patient_index(self, patient_id: str) -> int:
        try:
            return self.patient_ids.index(patient_id)
        except ValueError:
            raise InputError(f"patient {patient_id!r} is not in the patient graph") from None


def build_vocabulary(
    concepts: Iterable[Concept],
    relations: Iterable[Relation],
    patients: Sequence[Patient] | None = None,
) -> GraphVocabulary:
    """Node order and edge types for a KG: concepts sorted by id within each kind.

    Patient edge types are those the ``patients``' findings use (all of the metagraph's when
    ``None``); KG edge types are those the relations use.
    """
    by_type: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for concept in sorted(concepts, key=lambda c: c.id):
        node_type = concept_node_type(concept.kind)
        by_type.setdefault(node_type, []).append(concept.id)
        kinds[concept.id] = node_type
    kg_kinds = {
        (kinds[r.src], r.type, kinds[r.dst])
        for r in relations
        if not r.negated and r.src in kinds and r.dst in kinds
    }
    used: set[EdgeType] | None = None
    if patients is not None:
        used = set()
        for finding in (f for p in patients for f in p.findings):
            relation = finding_edge_relation(finding.assertion)
            if relation is not None and finding.concept_id in kinds:
                used.add((PATIENT_NODE_TYPE, relation, kinds[finding.concept_id]))
    forward = [
        et
        for et in metagraph(kg_kinds)
        if not et[1].startswith("rev_")
        and (et[0] != PATIENT_NODE_TYPE or (et[2] in by_type and (used is None or et in used)))
    ]
    edge_types = forward + [(dst, f"rev_{rel}", src) for src, rel, dst in forward]
    return GraphVocabulary(concept_ids=by_type, edge_types=edge_types)


def build_patient_graph(
    patients: Sequence[Patient],
    concepts: Iterable[Concept],
    relations: Iterable[Relation],
    *,
    vocabulary: GraphVocabulary | None = None,
    sections: SectionSelection = FEATURE_SECTIONS,
) -> PatientGraph:
    """Build the heterogeneous graph of ``patients`` over a KG.

    Args:
        patients: patients with findings; their ``labels`` are not used as edges.
        concepts: the KG concepts (e.g. ``store.subgraph(...).concepts``).
        relations: the KG relations among them; negated relations are left out.
        vocabulary: a trained model's node order; built from ``concepts`` when ``None``.
        sections: which report sections' findings become edges (image findings always do);
            :data:`graph.sections.FEATURE_SECTIONS`, every section but the impression, by
            default. A model must be applied with the selection it was trained with.

    Returns:
        A :class:`PatientGraph`. ``data[node_type].n_id`` indexes each type's nodes,
        ``data[node_type].x`` holds degree features (``log1p`` of the degree per edge type) and,
        for patients, the multi-hot bag of their finding edges;
        labels are not in ``data``: :mod:`gnn.dataset` reads them from the patients.

    Raises:
        InputError: duplicate patient ids, or no patients.
    """
    patients = [select_patient(p, sections) for p in patients]
    concepts = {c.id: c for c in concepts}
    relations = [r for r in relations if not r.negated and r.src in concepts and r.dst in concepts]
    vocabulary = vocabulary or build_vocabulary(concepts.values(), relations, patients)
    index = vocabulary.index()
    patient_ids = [p.id for p in patients]
    if not patient_ids:
        raise InputError("no patients to build a graph from")
    if len(set(patient_ids)) != len(patient_ids):
        raise InputError("duplicate patient ids in the graph input")

    edges: dict[EdgeType, set[tuple[int, int]]] = {et: set() for et in vocabulary.edge_types}
    findings: dict[str, dict[str, list[Finding]]] = {}
    for p_index, patient in enumerate(patients):
        per_concept: dict[str, list[Finding]] = {}
        for finding in patient.findings:
            relation = finding_edge_relation(finding.assertion)
            if relation is None or finding.concept_id not in index:
                continue  # family history, or a concept outside this KG
            node_type, c_index = index[finding.concept_id]
            edge_type = (PATIENT_NODE_TYPE, relation, node_type)
            if edge_type in edges:
                edges[edge_type].add((p_index, c_index))
                per_concept.setdefault(finding.concept_id, []).append(finding)
        findings[patient.id] = per_concept
    for relation in relations:
        if relation.src not in index or relation.dst not in index:
            continue
        (src_type, src_index), (dst_type, dst_index) = index[relation.src], index[relation.dst]
        edge_type = (src_type, relation.type, dst_type)
        if edge_type in edges:
            edges[edge_type].add((src_index, dst_index))
    for src, rel, dst in list(edges):
        if not rel.startswith("rev_"):
            edges[(dst, f"rev_{rel}", src)] = {(b, a) for a, b in edges[(src, rel, dst)]}

    data = HeteroData()
    sizes = {PATIENT_NODE_TYPE: len(patients)}
    sizes.update({nt: len(ids) for nt, ids in vocabulary.concept_ids.items()})
    for node_type, size in sizes.items():
        data[node_type].n_id = torch.arange(size)
        data[node_type].num_nodes = size
    for edge_type in vocabulary.edge_types:
        pairs = sorted(edges[edge_type])
        data[edge_type].edge_index = (
            torch.tensor(pairs, dtype=torch.long).t().contiguous()
            if pairs
            else torch.empty((2, 0), dtype=torch.long)
        )
    _node_features(data, vocabulary.edge_types, sizes)
    return PatientGraph(
        data=data,
        vocabulary=vocabulary,
        patient_ids=patient_ids,
        concepts=concepts,
        relations=relations,
        findings=findings,
        sections=sections,
    )


def _node_features(data: HeteroData, edge_types: list[EdgeType], sizes: dict[str, int]) -> None:
    """``x`` per node type: log1p of the in-degree per incoming edge type; patients also get
    the multi-hot bag of their finding edges (one column per finding relation and concept), so
    the model starts from what the patient has before messages add what the KG knows."""
    for node_type, size in sizes.items():
        incoming = [et for et in edge_types if et[2] == node_type]
        columns = []
        for edge_type in incoming:
            dst = data[edge_type].edge_index[1]
            columns.append(torch.bincount(dst, minlength=size).float().log1p())
        x = torch.stack(columns, dim=1) if columns else torch.zeros((size, 1))
        if node_type == PATIENT_NODE_TYPE:
            bags = []
            for edge_type in (et for et in edge_types if et[0] == PATIENT_NODE_TYPE):
                bag = torch.zeros((size, sizes[edge_type[2]]))
                edge_index = data[edge_type].edge_index
                bag[edge_index[0], edge_index[1]] = 1.0
                bags.append(bag)
            x = torch.cat([x, *bags], dim=1)
        data[node_type].x = x


def patient_graph_from_store(
    store: GraphStore,
    patient_ids: Sequence[str] | None = None,
    *,
    hops: int = 2,
    vocabulary: GraphVocabulary | None = None,
    extra_seeds: Iterable[str] = (),
    sections: SectionSelection = FEATURE_SECTIONS,
) -> PatientGraph:
    """Read patients and their ``hops``-hop KG neighbourhood from a store and build the graph.

    Args:
        store: an open graph store.
        patient_ids: which patients; every stored patient when ``None``.
        hops: KG hops around the patients' finding concepts and ``extra_seeds``.
        vocabulary: a trained model's vocabulary; its concepts are read from the store instead
            of a neighbourhood, so the graph matches what the model was trained on.
        extra_seeds: more concepts to include (e.g. the candidate diagnoses).
        sections: which report sections' findings feed the graph (see
            :func:`build_patient_graph`); pass a trained model's ``sections`` to apply it.
    """
    ids = list(patient_ids) if patient_ids is not None else store.patient_ids()
    patients = [select_patient(store.get_patient(pid), sections) for pid in ids]
    if vocabulary is not None:
        # hops=0: exactly the vocabulary's concepts and the relations among them
        wanted = [cid for cids in vocabulary.concept_ids.values() for cid in cids]
        sub = store.subgraph(wanted, hops=0)
        return build_patient_graph(
            patients, sub.concepts, sub.relations, vocabulary=vocabulary, sections=sections
        )
    seeds = {f.concept_id for p in patients for f in p.findings} | set(extra_seeds)
    sub = store.subgraph(seeds, hops=hops)
    return build_patient_graph(patients, sub.concepts, sub.relations, sections=sections)


__all__ = [
    "FINDING_EDGE_TYPES",
    "GraphVocabulary",
    "PatientGraph",
    "build_patient_graph",
    "build_vocabulary",
    "patient_graph_from_store",
]
