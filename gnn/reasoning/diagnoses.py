"""Diagnosis records of one patient subgraph: the reasoner's ranking with its KG paths.

The ranking and the paths are those of ``kgdx diagnose`` (:mod:`gnn.reasoning.explain_paths`:
calibrated probabilities, paths ranked by occlusion on the trained model); this module turns them
into :class:`graph.records.Diagnosis` / :class:`~graph.records.ExplanationPath` records whose
evidence names where each step came from:

- the finding: the report sentence (with its section) or image probability behind the patient's
  edge, and whether it was observed or excluded;
- each KG step: the relation and its sources as stored (one ``store.subgraph(..., hops=0)`` read
  per diagnosis), the annotation frequency, and the model's attribution;
- an excluded finding that lowers the disease's score is shown as counting against it (negative
  path score, ``HAS_FINDING_ABSENT`` step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from graph.errors import InputError
from graph.records import Diagnosis, ExplanationPath, Finding, ImageEvidence, SectionSelection
from graph.schema import inverse_name
from graph.subgraph import PatientSubgraph, TermIndex, batch

if TYPE_CHECKING:
    from gnn.reasoning.logits import PatientLogits
    from gnn.reasoning.pipeline import Patient, Reasoner
    from graph.records import Relation
    from graph.store import GraphStore

ANNOTATION_TYPES = ("HAS_PHENOTYPE", "HAS_FINDING", "HAS_SYMPTOM")


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
    concept_of = _concepts_of_terms(subgraph, patient, index)
    steps = [_steps(reasoner, subgraph, labels, concept_of, path, d) for path in found]
    pairs = {(nodes[i], nodes[i + 1]) for nodes, *_ in steps for i in range(1, len(nodes) - 1)}
    relations = labels.relations.lookup(store, pairs)
    paths = [
        _path(labels, subgraph, path, nodes, kinds, relations, source)
        for path, (nodes, kinds, source) in zip(found, steps, strict=True)
    ]
    return Diagnosis(
        concept_id=kg.disease_ids[d],
        name=kg.disease_names[d],
        probability=min(max(probability, 0.0), 1.0),
        paths=tuple(paths),
        model_id=model_id,
        input_sections=sections,
    )


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
