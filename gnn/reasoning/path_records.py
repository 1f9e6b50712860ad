"""Explanation-path records of one diagnosis: each path the model ranks for a disease, as an
:class:`~graph.records.ExplanationPath` whose nodes are the patient's own concepts and the KG's
terms, and whose evidence names where each step came from (:mod:`gnn.reasoning.diagnoses` puts
them into :class:`~graph.records.Diagnosis` records):

- the finding: the report sentence (with its section) or image probability behind the patient's
  edge, and whether it was observed or excluded;
- each KG step: the relation and its sources as stored (read once per pair of path nodes for a
  loaded run's life, :class:`RelationCache`), the annotation frequency, and the model's
  attribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from graph.errors import InputError
from graph.records import ExplanationPath, Finding, ImageEvidence
from graph.schema import inverse_name

if TYPE_CHECKING:
    from gnn.reasoning.diagnoses import PathLabels
    from gnn.reasoning.pipeline import Patient, Reasoner
    from graph.records import Relation
    from graph.store import GraphStore
    from graph.subgraph import PatientSubgraph, TermIndex

ANNOTATION_TYPES = ("HAS_PHENOTYPE", "HAS_FINDING", "HAS_SYMPTOM")


def path_records(
    reasoner: Reasoner,
    subgraph: PatientSubgraph,
    patient: Patient,
    d: int,
    found: Sequence[dict],
    *,
    labels: PathLabels,
    index: TermIndex,
    store: GraphStore | None,
) -> list[ExplanationPath]:
    """The ``found`` paths (``kgdx diagnose``'s, ranked) of disease ``d`` as records, in order.
    The KG relations between their nodes are read from ``store`` once (none is read when
    ``store`` is None or every step was seen before: the evidence then says the step's
    source is not recorded)."""
    concept_of = _concepts_of_terms(subgraph, patient, index)
    steps = [_steps(reasoner, subgraph, labels, concept_of, path, d) for path in found]
    pairs = {(nodes[i], nodes[i + 1]) for nodes, *_ in steps for i in range(1, len(nodes) - 1)}
    relations = labels.relations.lookup(store, pairs)
    return [
        _path(labels, subgraph, path, nodes, kinds, relations, source)
        for path, (nodes, kinds, source) in zip(found, steps, strict=True)
    ]


def _concepts_of_terms(
    subgraph: PatientSubgraph, patient: Patient, index: TermIndex
) -> dict[int, str]:
    """Term index -> the patient's concept id whose edge maps to it (first in report order)."""
    out: dict[int, str] = {}
    for concept_id in subgraph.observed + subgraph.excluded:
        t = index.of_concept(concept_id, subgraph.concepts.get(concept_id))
        if t is not None:
            out.setdefault(t, concept_id)
    return out


def _steps(
    reasoner, subgraph, labels, concept_of, path: dict, d: int
) -> tuple[list[str], list[str], str]:
    """Path nodes (patient, finding, ..., disease), the kind of each step, and the patient's
    concept id behind the finding (its evidence). The finding node is the patient's concept when
    the store holds it as a node, else the KG term it names (an HP id given as a term)."""
    kg, sim = reasoner.kg, reasoner.sim
    q = labels.term_of[path["finding"]]
    source = concept_of.get(q, kg.term_ids[q])
    finding = source if source in subgraph.concepts else kg.term_ids[q]
    nodes, kinds = ["", finding], []
    if path["polarity"] == "absent":
        kinds.append("absent")
        annotation = _annotation_below(sim, d, q, path["frequency"])
        if annotation is not None and annotation != q:
            nodes.append(kg.term_ids[annotation])
            kinds.append("down")
    else:
        kinds.append("present")
        via = labels.term_of[path["via"]]
        annotation = labels.term_of[path["annotation"]]
        if via != q:
            nodes.append(kg.term_ids[via])
            kinds.append("up")
        if annotation != via:
            nodes.append(kg.term_ids[annotation])
            kinds.append("down")
    nodes.append(kg.disease_ids[d])
    kinds.append("annotation")
    return nodes, kinds, source


def _annotation_below(sim, d: int, e: int, frequency: float) -> int | None:
    """The disease's annotation at or below excluded term ``e`` with the given frequency."""
    row = sim.frequency.getrow(d)
    best = None
    for t, f in zip(row.indices.tolist(), row.data.tolist(), strict=True):
        if e in set(sim.ancestors_of(t).tolist()) and abs(f - frequency) < 1e-6:
            if best is None or t == e:
                best = t
    return best


class RelationCache:
    """KG relations between path nodes as stored, read once per pair of nodes: a loaded run's KG
    is pinned (its content hash), so an answer stays right for the run's life. A diagnosis whose
    path steps were all seen before reads nothing from the store."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], list[Relation]] = {}

    def lookup(self, store, steps: set[tuple[str, str]]) -> dict[tuple[str, str], list[Relation]]:
        """``{(src, dst): relations}`` for the path steps, either direction."""
        wanted = {p for a, b in steps for p in ((a, b), (b, a))}
        missing = {p for p in wanted if p not in self._known}
        if missing and store is not None:
            nodes = sorted({n for pair in missing for n in pair})
            try:
                relations = store.subgraph(nodes, hops=0).relations
            except InputError:
                relations = []
            found: dict[tuple[str, str], list[Relation]] = {}
            for relation in relations:
                if not relation.negated:
                    found.setdefault((relation.src, relation.dst), []).append(relation)
            for a in nodes:  # every pair among the nodes read is now known (most: none)
                for b in nodes:
                    self._known[(a, b)] = found.get((a, b), [])
        return {p: self._known.get(p, []) for p in wanted}


def _sources(relations: Sequence[Relation]) -> str:
    sources = dict.fromkeys(s for r in relations for s in r.sources)
    return "; ".join(sources) if sources else "source not recorded"


def _path(labels, subgraph, path, nodes, kinds, relations, source) -> ExplanationPath:
    nodes = [subgraph.patient_id, *nodes[1:]]
    names = {**labels.names, **{cid: c.name for cid, c in subgraph.concepts.items()}}
    from gnn.reasoning.explain_paths import model_role

    attribution = path.get("attribution")
    verb = model_role(attribution)
    role = "" if verb is None else f"; model: {verb} the diagnosis (occlusion {attribution:+.2f})"
    absent = path["polarity"] == "absent"
    evidence = [
        ("excluded: " if absent else "observed: ")
        + _finding_evidence(subgraph.findings.get(source, ()))
        + (" (absent: counts against this diagnosis)" if absent else "")
        + role
    ]
    rel_names = []
    for step, kind in enumerate(kinds):
        src, dst = nodes[step], nodes[step + 1]
        if kind in ("present", "absent"):
            rel_names.append("HAS_FINDING" if kind == "present" else "HAS_FINDING_ABSENT")
            continue
        if kind == "up":  # finding IS_A* ancestor
            direct = [r for r in relations.get((src, dst), []) if r.type == "IS_A"]
            rel_names.append("IS_A" if direct else "IS_A*")
            evidence.append(
                f"KG: IS_A ({_sources(direct)})" if direct else "KG: IS_A* (ancestor in the DAG)"
            )
        elif kind == "down":  # annotation IS_A* this node, walked backwards
            direct = [r for r in relations.get((dst, src), []) if r.type == "IS_A"]
            rel_names.append(inverse_name("IS_A") + ("" if direct else "*"))
            evidence.append(
                f"KG: IS_A ({_sources(direct)})" if direct else "KG: IS_A* (descendant in the DAG)"
            )
        else:  # the disease's annotation, walked backwards
            annotated = [r for r in relations.get((dst, src), []) if r.type in ANNOTATION_TYPES]
            relation = annotated[0].type if annotated else "HAS_PHENOTYPE"
            rel_names.append(inverse_name(relation))
            evidence.append(
                f"KG: {relation} ({_sources(annotated)}), annotation frequency "
                f"{path['frequency']:.2f}"
            )
    score = attribution if attribution is not None else path["contribution"]
    return ExplanationPath(
        nodes=tuple(nodes),
        relations=tuple(rel_names),
        score=float(score),
        evidence=tuple(evidence),
        node_names=(f"patient {subgraph.patient_id}", *(names.get(n, n) for n in nodes[1:])),
    )


def _finding_evidence(findings: Sequence[Finding]) -> str:
    parts = []
    for finding in findings:
        source = finding.provenance
        if isinstance(source, ImageEvidence):
            parts.append(f"image {source.image_id} P={source.probability:.2f} ({source.model_id})")
        elif source.sentence:
            section = f" ({source.section})" if source.section else ""
            parts.append(f'"{source.sentence}"{section}')
        else:
            parts.append(f"term {source.text}")
    return "; ".join(dict.fromkeys(parts)) or "finding"
