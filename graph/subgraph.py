"""One patient's graph, read from the store: its findings as typed edges to the KG concepts.

A :class:`PatientSubgraph` is built from **one** stored patient record (``store.get_patient``,
embedded or Neo4j) and the KG concepts its findings link to (``store.get_concepts``); no other
patient is read, so diagnosing a patient never rebuilds anything over the stored cohort
(inductive). A finding becomes an edge typed by :func:`graph.schema.finding_edge_relation`:
``has_finding_present``, ``has_finding_possible``, ``has_finding_absent`` and
``has_finding_historical`` are different edge types; family findings do not link the patient.
Known diagnoses (``Patient.labels``) are kept as targets, never as edges. Only the findings of the
chosen report sections are read (:mod:`graph.sections`; by default every section but the
impression, which states the diagnosis the model is asked for).

The KG side (terms, IS_A, disease annotations) is encoded once by the trained reasoner
(:mod:`gnn.reasoning`); :func:`batch` maps many patients' edges onto its term indices
(:class:`TermIndex`) as padded index tensors and an ``edge_index_dict``, which is what the
reasoner consumes. What is scored (see :data:`SCORED`): present findings are *observed*, absent
ones *excluded*; possible (hedged) and historical findings stay in the graph as their own edge
types but are not scored (a hedged "cannot exclude consolidation" is neither evidence for nor
against, and a past finding says little about the current diagnosis).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from graph.errors import InputError
from graph.records import (
    Concept,
    Finding,
    Patient,
    SectionSelection,
    TextSpan,
)
from graph.schema import (
    FINDING_EDGE_TYPES,
    PATIENT_NODE_TYPE,
    EdgeType,
    finding_edge_relation,
)
from graph.sections import FEATURE_SECTIONS, select_patient
from graph.store import GraphStore

PRESENT, POSSIBLE, ABSENT, HISTORICAL = FINDING_EDGE_TYPES[:4]
# which finding edge types feed the reasoner's two inputs; possible and historical are kept in the
# graph (and shown as evidence) but not scored
SCORED: dict[str, tuple[str, ...]] = {"observed": (PRESENT,), "excluded": (ABSENT,)}
TERM_NODE_TYPE = "term"


@dataclass(frozen=True)
class PatientSubgraph:
    """One patient's findings as typed edges to the KG concepts they link to.

    Attributes:
        patient_id: the patient.
        edges: finding edge type (``has_finding_present`` ...) -> linked concept ids, each once,
            in report order.
        findings: concept id -> the findings behind its edges (the sentences, image
            probabilities: explanation evidence).
        concepts: the KG concepts the edges point to, as stored.
        unlinked: finding concept ids the store does not hold (left out of ``edges``).
        labels: the patient's known diagnoses (targets, never edges).
        sections: which report sections' findings were read.
    """

    patient_id: str
    edges: dict[str, tuple[str, ...]]
    findings: dict[str, tuple[Finding, ...]]
    concepts: dict[str, Concept]
    unlinked: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    sections: SectionSelection = FEATURE_SECTIONS

    @classmethod
    def from_patient(
        cls,
        patient: Patient,
        *,
        concepts: Mapping[str, Concept] | None = None,
        sections: SectionSelection = FEATURE_SECTIONS,
        known: Callable[[str], bool] | None = None,
    ) -> PatientSubgraph:
        """The subgraph of one patient record.

        Args:
            patient: a patient with findings (stored or not).
            concepts: the KG concepts its findings may link to (``store.get_concepts``); a
                finding whose concept is not there is ``unlinked``. ``None``: every finding
                links (no KG check).
            sections: which report sections' findings to read.
            known: ids that link although no node carries them as its id (an ``HP:`` id that
                is an xref of a crosswalked UMLS node: ``TermIndex.index(id) is not None``).
        """
        selected = select_patient(patient, sections)
        edges: dict[str, dict[str, None]] = {relation: {} for relation in FINDING_EDGE_TYPES}
        behind: dict[str, list[Finding]] = {}
        unlinked: dict[str, None] = {}
        for finding in selected.findings:
            relation = finding_edge_relation(finding.assertion)
            if relation is None:
                continue  # family history: not the patient's
            if (
                concepts is not None
                and finding.concept_id not in concepts
                and not (known is not None and known(finding.concept_id))
            ):
                unlinked[finding.concept_id] = None
                continue
            edges[relation][finding.concept_id] = None
            behind.setdefault(finding.concept_id, []).append(finding)
        linked = {cid: concepts[cid] for cid in behind if concepts and cid in concepts}
        return cls(
            patient_id=patient.id,
            edges={relation: tuple(ids) for relation, ids in edges.items()},
            findings={cid: tuple(f) for cid, f in behind.items()},
            concepts=linked,
            unlinked=tuple(unlinked),
            labels=tuple(patient.labels),
            sections=sections,
        )

    def concept_ids(self, relations: Iterable[str]) -> tuple[str, ...]:
        """The linked concepts of the given edge types, each once, in order."""
        return tuple(dict.fromkeys(cid for r in relations for cid in self.edges.get(r, ())))

    @property
    def observed(self) -> tuple[str, ...]:
        """Concepts scored as observed (:data:`SCORED`)."""
        return self.concept_ids(SCORED["observed"])

    @property
    def excluded(self) -> tuple[str, ...]:
        """Concepts scored as excluded; a concept also observed is observed only."""
        observed = set(self.observed)
        return tuple(c for c in self.concept_ids(SCORED["excluded"]) if c not in observed)

    @property
    def num_edges(self) -> int:
        return sum(len(ids) for ids in self.edges.values())


def patient_subgraph(
    store: GraphStore,
    patient_id: str,
    *,
    sections: SectionSelection = FEATURE_SECTIONS,
    known: Callable[[str], bool] | None = None,
) -> PatientSubgraph:
    """Read one stored patient and the KG concepts its findings link to.

    Raises:
        InputError: the patient is not stored.
    """
    patient = store.get_patient(patient_id)
    return subgraph_of(store, patient, sections=sections, known=known)


def subgraph_of(
    store: GraphStore,
    patient: Patient,
    *,
    sections: SectionSelection = FEATURE_SECTIONS,
    known: Callable[[str], bool] | None = None,
) -> PatientSubgraph:
    """The subgraph of a patient record (stored or not) against the store's KG (see
    :meth:`PatientSubgraph.from_patient` for ``known``)."""
    ids = sorted({f.concept_id for f in patient.findings})
    concepts = store.get_concepts(ids) if ids else {}
    return PatientSubgraph.from_patient(patient, concepts=concepts, sections=sections, known=known)


def patient_from_terms(
    observed: Sequence[str], excluded: Sequence[str] = (), *, patient_id: str = "query"
) -> Patient:
    """A patient record given as concept ids (HPO ids, UMLS CUIs) present and absent, for
    diagnosing a patient described by terms rather than reports (``kgdx diagnose --observed``).

    Raises:
        InputError: no term given, or a term that is not a CURIE.
    """
    from pydantic import ValidationError

    from graph.field_checks import CURIE_RE

    if not observed and not excluded:
        raise InputError("give at least one observed or excluded term (e.g. HP:0001250)")
    findings = []
    for polarity, terms in (("present", observed), ("absent", excluded)):
        for term in terms:
            if not isinstance(term, str) or not CURIE_RE.match(term):
                raise InputError(f"{term!r} is not a concept id; write a CURIE such as HP:0001250")
            try:
                findings.append(
                    Finding(
                        concept_id=term,
                        assertion={"polarity": polarity},
                        provenance=TextSpan(
                            doc_id="terms", start=0, end=len(term), text=term, sentence=""
                        ),
                    )
                )
            except ValidationError:
                raise InputError(
                    f"{term!r} is not a concept id; write a CURIE such as HP:0001250"
                ) from None
    return Patient(id=patient_id, findings=tuple(findings))


class TermIndex:
    """Concept id -> term index of a reasoner's KG view.

    A finding links to a store node id (``UMLS:C0036572`` after the crosswalk) or names a term by
    an id the node carries (``HP:0001250``, an alternative or obsolete id): the node id is looked
    up first, then the view's code index (``PhenotypeKG.hpo_index``: xrefs and alternative ids),
    then its obsolete ids' replacements.

    Args:
        term_ids: store node id of each term (index order).
        codes: other ids -> term index.
        obsolete: obsolete id -> replacement id.
    """

    def __init__(
        self,
        term_ids: Sequence[str],
        codes: Mapping[str, int],
        obsolete: Mapping[str, str] | None = None,
    ) -> None:
        self.term_ids = list(term_ids)
        self._node = {t: i for i, t in enumerate(self.term_ids)}
        self._codes = codes
        self._obsolete = obsolete or {}
        self._code_of: dict[int, str] = {}
        for code, i in codes.items():  # the smallest code of a term resolves back to it
            if i not in self._code_of or code < self._code_of[i]:
                self._code_of[i] = code

    @classmethod
    def from_kg(cls, kg) -> TermIndex:
        """From a :class:`gnn.reasoning.knowledge.PhenotypeKG` (``term_ids``, ``hpo_index``,
        ``obsolete``)."""
        return cls(kg.term_ids, kg.hpo_index, getattr(kg, "obsolete", {}))

    def index(self, concept_id: str) -> int | None:
        """The term index, or ``None`` when the id is not a term of the view."""
        found = self._node.get(concept_id)
        if found is None:
            found = self._codes.get(concept_id)
        if found is None and concept_id in self._obsolete:
            found = self._codes.get(self._obsolete[concept_id])
        return found

    def of_concept(self, concept_id: str, concept: Concept | None = None) -> int | None:
        """:meth:`index` of a linked concept, else of the first of its xrefs that is a term (a
        DOID disease node "microcephaly" with an HP xref stands for that HPO term)."""
        found = self.index(concept_id)
        if found is None and concept is not None:
            found = next((t for t in map(self.index, concept.xrefs) if t is not None), None)
        return found

    def code(self, index: int) -> str:
        """An id of term ``index`` that the view's own lookup accepts (for task cases)."""
        return self._code_of.get(index, self.term_ids[index])


@dataclass
class SubgraphBatch:
    """Many patients' finding edges on a reasoner's term indices.

    Attributes:
        patient_ids: the patients, in batch order.
        terms: finding edge type -> per patient, its term indices (each once, in order).
        unknown: per patient, the linked concept ids that are not terms of the view.
    """

    patient_ids: list[str]
    terms: dict[str, list[list[int]]]
    unknown: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.patient_ids)

    def scored(self, role: str) -> list[list[int]]:
        """Per patient, the term indices scored as ``observed`` or ``excluded`` (:data:`SCORED`);
        an excluded term also observed is observed only."""
        rows = [
            list(dict.fromkeys(t for r in SCORED[role] for t in self.terms[r][i]))
            for i in range(len(self))
        ]
        if role == "excluded":
            observed = self.scored("observed")
            rows = [
                [t for t in row if t not in set(obs)]
                for row, obs in zip(rows, observed, strict=True)
            ]
        return rows

    def padded(self, role: str) -> torch.Tensor:
        """``[B, L]`` long tensor of :meth:`scored` term indices, padded with ``-1``."""
        rows = self.scored(role)
        width = max([len(r) for r in rows] + [1])
        out = torch.full((len(rows), width), -1, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        return out

    @property
    def edge_index_dict(self) -> dict[EdgeType, torch.Tensor]:
        """``(patient, finding edge type, term) -> [2, E]`` (patient row, term index) for every
        finding edge type, PyG style."""
        out = {}
        for relation, rows in self.terms.items():
            pairs = [(p, t) for p, row in enumerate(rows) for t in row]
            out[(PATIENT_NODE_TYPE, relation, TERM_NODE_TYPE)] = (
                torch.tensor(pairs, dtype=torch.long).t().contiguous()
                if pairs
                else torch.empty((2, 0), dtype=torch.long)
            )
        return out


def batch(subgraphs: Sequence[PatientSubgraph], index: TermIndex) -> SubgraphBatch:
    """Collate patient subgraphs onto a reasoner's term indices.

    A linked concept maps through :meth:`TermIndex.index`, else through the first of its xrefs
    that is a term; one that maps to no term is listed in ``unknown``.

    Each patient's rows depend on that patient alone, so a patient's scores are the same in any
    batch (the reasoner scores rows independently).

    Raises:
        InputError: duplicate patient ids in the batch.
    """
    ids = [s.patient_id for s in subgraphs]
    if len(set(ids)) != len(ids):
        raise InputError("duplicate patient ids in the batch")
    terms: dict[str, list[list[int]]] = {r: [] for r in FINDING_EDGE_TYPES}
    unknown: list[list[str]] = []
    for subgraph in subgraphs:
        missing: dict[str, None] = {}
        for relation in FINDING_EDGE_TYPES:
            row: dict[int, None] = {}
            for concept_id in subgraph.edges.get(relation, ()):
                found = index.of_concept(concept_id, subgraph.concepts.get(concept_id))
                if found is None:
                    missing[concept_id] = None
                else:
                    row[found] = None
            terms[relation].append(list(row))
        unknown.append(list(missing))
    return SubgraphBatch(patient_ids=ids, terms=terms, unknown=unknown)


__all__ = [
    "FINDING_EDGE_TYPES",
    "SCORED",
    "PatientSubgraph",
    "SubgraphBatch",
    "TermIndex",
    "batch",
    "patient_from_terms",
    "patient_subgraph",
    "subgraph_of",
]
