"""The phenotype part of the KG as arrays: HPO terms, their IS_A DAG, and disease annotations.

Read from the graph store (the same KG that ``kgdx kg build`` wrote), never from a parallel
copy of the ontology files. After the crosswalk a store node may carry a UMLS id (``UMLS:C0036572``
for HPO's *Seizure*) with the HPO ids it stands for in its ``xrefs`` (alternative ids included),
so terms and diseases are looked up through those: a patient's ``HP:0001250`` and a candidate's
``OMIM:143100`` are resolved to nodes here.

- terms: every node that is the source or target of an HPO ``IS_A`` or the target of a
  ``HAS_PHENOTYPE``; only HPO's own ``IS_A`` edges form the DAG (another ontology's IS_A merged
  onto the same nodes could close a cycle).
- diseases (the candidates): every node with phenotype annotations that carries an OMIM id.
- annotation frequencies: the relation weight when the release gives a frequency, else
  :data:`UNKNOWN_FREQUENCY`; ``NOT`` annotations are kept apart as evidence against.

That is the ``rare`` domain (the default). ``domain="chest"`` reads the same arrays from the
curated chest seed KG instead (:mod:`gnn.reasoning.chest_kg`): candidates are the seed's
diseases, annotations their ``HAS_FINDING`` / ``HAS_SYMPTOM`` (and ``HAS_PHENOTYPE``) relations,
terms the seed's findings and symptoms with the ``IS_A`` edges among them.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from gnn.reasoning.hpo_ids import (
    follow_replacements,
    hp_obo_of_build,
    read_alt_ids,
    read_replaced_by,
)
from graph.errors import InputError, StoreError

if TYPE_CHECKING:
    from graph.store import GraphStore

UNKNOWN_FREQUENCY = 0.5  # an annotation without frequency: as likely as not
MIN_FREQUENCY = 0.01  # a "very rare" or 0/n annotation still annotates (0 would erase it)
HPO_SOURCE = "HPO:"
DOMAINS = ("rare", "chest")

_EDGES = (
    "MATCH (a:Concept)-[r:{type}]->(b:Concept) RETURN a.id AS src, b.id AS dst, "
    "r.weight AS weight, r.negated AS negated, r.sources AS sources, r.attributes AS attributes"
)
_CONCEPTS = "MATCH (c:Concept) RETURN c.id AS id, c.name AS name, c.xrefs AS xrefs"


@dataclass
class PhenotypeKG:
    """Terms, IS_A DAG and disease annotations of one KG, indexed ``0..T-1`` / ``0..C-1``.

    Attributes:
        term_ids: store node id of each term.
        term_names: name of each term.
        parents: ``[T, T]`` CSR, ``parents[i, j] = 1`` when ``i IS_A j``.
        disease_ids: store node id of each candidate disease.
        disease_names: name of each candidate.
        disease_omim: the OMIM ids each candidate node carries (first: the one it is shown as).
        annotations: ``[C, T]`` CSR of annotation frequencies in (0, 1].
        negated: ``[C, T]`` CSR, 1 where the disease is annotated NOT to show the term.
        hpo_index: HPO id (alternative ids included) -> term index.
        omim_index: OMIM id -> candidate index.
        sources: KG sources (releases) the arrays came from.
        content_hash: the store's KG content hash (:func:`graph.kg_hash.kg_content_hash`).
    """

    term_ids: list[str]
    term_names: list[str]
    parents: sp.csr_matrix
    disease_ids: list[str]
    disease_names: list[str]
    disease_omim: list[tuple[str, ...]]
    annotations: sp.csr_matrix
    negated: sp.csr_matrix
    hpo_index: dict[str, int]
    omim_index: dict[str, int]
    sources: list[str] = field(default_factory=list)
    content_hash: str = ""
    obsolete: dict[str, str] = field(default_factory=dict)  # obsolete HP id -> replacement
    alt_ids: set[str] = field(default_factory=set)  # secondary HP ids (shown by their primary)
    read_seconds: float = 0.0
    domain: str = "rare"  # which part of the KG: rare (HPO + OMIM) or chest (the chest seed)

    @property
    def num_terms(self) -> int:
        return len(self.term_ids)

    @property
    def num_diseases(self) -> int:
        return len(self.disease_ids)

    def disease_label(self, index: int) -> str:
        """The id a candidate is shown as: its first OMIM id."""
        return self.disease_omim[index][0]

    def resolve_terms(self, hpo_ids: list[str]) -> tuple[list[int], list[str], dict[str, str]]:
        """Term indices of ``hpo_ids``; obsolete ids go through ``replaced_by`` (chains too).

        Returns:
            ``(indices, unknown ids, {obsolete id: replacement used})``, indices deduplicated
            in input order.
        """
        indices, unknown, replaced = [], [], {}
        seen: set[int] = set()
        for hpo_id in hpo_ids:
            index = self.hpo_index.get(hpo_id)
            if index is None and hpo_id in self.obsolete:
                replacement = follow_replacements(
                    hpo_id, self.obsolete, self.hpo_index.__contains__
                )
                if replacement is not None:
                    index = self.hpo_index[replacement]
                    replaced[hpo_id] = replacement
            if index is None:
                unknown.append(hpo_id)
            elif index not in seen:
                seen.add(index)
                indices.append(index)
        return indices, unknown, replaced

    def resolve_disease(self, disease_id: str) -> int:
        """Candidate index of an OMIM id (or of a store node id).

        Raises:
            UnknownConceptError: not a candidate disease of this KG.
        """
        from graph.errors import UnknownConceptError

        if disease_id in self.omim_index:
            return self.omim_index[disease_id]
        try:
            return self.disease_ids.index(disease_id)
        except ValueError:
            raise UnknownConceptError(
                f"{disease_id} is not a candidate disease of this KG (an OMIM disease with HPO "
                "annotations); check the id, or rebuild the KG with `kgdx kg build --sources "
                "default`"
            ) from None

    @classmethod
    def from_store(
        cls, store: GraphStore, *, obsolete: dict[str, str] | None = None, domain: str = "rare"
    ) -> PhenotypeKG:
        """Read the phenotype KG from ``store``.

        Args:
            obsolete: obsolete HPO id -> replacement (``replaced_by``); by default read from the
                ``hp.obo`` the store was built from (its ``kg_build.json``), when it is there.
            domain: ``rare`` (HPO terms, OMIM candidates; the default) or ``chest`` (the chest
                seed's findings, symptoms and diseases: :mod:`gnn.reasoning.chest_kg`).

        Raises:
            StoreError: the store holds no HPO annotations (build it with the default sources),
                or, for ``chest``, no chest seed disease with findings.
            ConfigError: an unknown ``domain``.
        """
        from graph.kg_hash import kg_content_hash

        if domain == "chest":
            from gnn.reasoning.chest_kg import chest_from_store

            return chest_from_store(store)
        if domain != "rare":
            from graph.errors import ConfigError

            raise ConfigError(f"unknown KG domain {domain!r}; expected one of {DOMAINS}")
        started = time.perf_counter()
        concepts = _read_table(store, _CONCEPTS, "concepts")
        is_a = _read_table(store, _EDGES.format(type="IS_A"), "IS_A")
        annotated = _read_table(store, _EDGES.format(type="HAS_PHENOTYPE"), "HAS_PHENOTYPE")
        is_a = is_a.filter(pc.match_substring(is_a["sources"], HPO_SOURCE))
        if annotated.num_rows == 0:
            raise StoreError(
                "the KG holds no HPO disease annotations; build it with "
                "`kgdx kg build --sources default` (HPO + phenotype.hpoa)"
            )
        view = _assemble(concepts, is_a, annotated)
        view.content_hash = kg_content_hash(store)
        view.sources = _store_sources(store)
        hp_obo = hp_obo_of_build(store)
        view.obsolete = (
            obsolete if obsolete is not None else (read_replaced_by(hp_obo) if hp_obo else {})
        )
        view.alt_ids = read_alt_ids(hp_obo) if hp_obo else set()
        view.read_seconds = time.perf_counter() - started
        return view

    def fingerprint(self) -> str:
        """A hash of the arrays themselves (what the models were trained on)."""
        digest = hashlib.sha256()
        for matrix in (self.parents, self.annotations, self.negated):
            for part in (matrix.indptr, matrix.indices, matrix.data):
                digest.update(np.ascontiguousarray(part).tobytes())
        digest.update("\n".join(self.term_ids + self.disease_ids).encode())
        return digest.hexdigest()


def _read_table(store: GraphStore, cypher: str, what: str) -> pa.Table:
    if store.name == "embedded":
        try:
            return store.connection.execute(cypher).get_as_arrow()  # type: ignore[attr-defined]
        except RuntimeError as exc:
            raise StoreError(f"cannot read the KG's {what}: {exc}") from None
    return _generic_table(store, what)


def _generic_table(store: GraphStore, what: str) -> pa.Table:
    """The same columns through the backend-neutral interface (Neo4j)."""
    import json

    if what == "concepts":
        rows = [(c.id, c.name, list(c.xrefs)) for c in store.iter_concepts()]
        return pa.table(
            {k: [r[i] for r in rows] for i, k in enumerate(("id", "name", "xrefs"))},
        )
    relations = list(store.iter_relations(types=[what]))
    return pa.table(
        {
            "src": [r.src for r in relations],
            "dst": [r.dst for r in relations],
            "weight": [float(r.weight) for r in relations],
            "negated": [bool(getattr(r, "negated", False)) for r in relations],
            "sources": [json.dumps(list(r.sources)) for r in relations],
            "attributes": [json.dumps(dict(getattr(r, "attributes", {}) or {})) for r in relations],
        }
    )


def _assemble(concepts: pa.Table, is_a: pa.Table, annotated: pa.Table) -> PhenotypeKG:
    ids = concepts["id"].to_pylist()
    names = dict(zip(ids, concepts["name"].to_pylist(), strict=True))
    xrefs = dict(zip(ids, concepts["xrefs"].to_pylist(), strict=True))
    term_set = set(is_a["src"].to_pylist()) | set(is_a["dst"].to_pylist())
    term_set |= set(annotated["dst"].to_pylist())
    term_ids = sorted(term_set)
    term_of = {t: i for i, t in enumerate(term_ids)}
    hpo_index: dict[str, int] = {}
    for t, i in term_of.items():
        for code in [t, *(xrefs.get(t) or [])]:
            if code.startswith("HP:"):
                hpo_index.setdefault(code, i)
    n = len(term_ids)
    src = np.array([term_of[s] for s in is_a["src"].to_pylist()], dtype=np.int64)
    dst = np.array([term_of[d] for d in is_a["dst"].to_pylist()], dtype=np.int64)
    keep = src != dst
    parents = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (src[keep], dst[keep])), shape=(n, n)
    )
    parents.data[:] = 1.0  # duplicates summed
    # candidates: annotated nodes that carry an OMIM id
    disease_ids, disease_omim = [], []
    for d in sorted(set(annotated["src"].to_pylist())):
        omim = [d] if d.startswith("OMIM:") else []
        omim += sorted(x for x in (xrefs.get(d) or []) if x.startswith("OMIM:") and x != d)
        if omim:
            disease_ids.append(d)
            disease_omim.append(tuple(omim))
    disease_of = {d: i for i, d in enumerate(disease_ids)}
    # an OMIM id names its own node when it is one; otherwise the first node that xrefs it (an
    # umbrella concept such as UMLS:C0796004 "Kabuki syndrome" xrefs OMIM:147920 and OMIM:300867,
    # which must still label cases of Kabuki syndrome 1 and 2, not the umbrella)
    omim_index = {d: i for i, d in enumerate(disease_ids) if d.startswith("OMIM:")}
    for i, codes in enumerate(disease_omim):
        for o in codes:
            omim_index.setdefault(o, i)
    rows = annotated.filter(pc.is_in(annotated["src"], pa.array(disease_ids)))
    d_idx = np.array([disease_of[s] for s in rows["src"].to_pylist()], dtype=np.int64)
    t_idx = np.array([term_of[t] for t in rows["dst"].to_pylist()], dtype=np.int64)
    has_frequency = pc.fill_null(pc.match_substring(rows["attributes"], '"frequency"'), False)
    weight = np.asarray(rows["weight"].to_numpy(zero_copy_only=False), np.float64)
    weight = np.where(has_frequency.to_numpy(zero_copy_only=False), weight, UNKNOWN_FREQUENCY)
    negated = np.asarray(pc.fill_null(rows["negated"], False).to_numpy(zero_copy_only=False))
    # an explicit frequency of 0 ("excluded", 0/n) says the disease does not show the term
    negated = negated | (weight <= 0.0)
    positive = ~negated
    weight = np.clip(weight, MIN_FREQUENCY, 1.0)
    shape = (len(disease_ids), n)
    annotations = _max_matrix(d_idx[positive], t_idx[positive], weight[positive], shape)
    negated_matrix = _max_matrix(d_idx[negated], t_idx[negated], np.ones(int(negated.sum())), shape)
    # a term both annotated and NOT-annotated (different sources) stays annotated
    negated_matrix = negated_matrix - negated_matrix.multiply(annotations > 0)
    negated_matrix.eliminate_zeros()
    return PhenotypeKG(
        term_ids=term_ids,
        term_names=[names.get(t) or t for t in term_ids],
        parents=parents,
        disease_ids=disease_ids,
        disease_names=[names.get(d) or d for d in disease_ids],
        disease_omim=disease_omim,
        annotations=annotations,
        negated=sp.csr_matrix(negated_matrix),
        hpo_index=hpo_index,
        omim_index=omim_index,
    )


def _max_matrix(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape) -> sp.csr_matrix:
    """A CSR matrix keeping the largest of duplicate entries."""
    if len(rows) == 0:
        return sp.csr_matrix(shape, dtype=np.float32)
    key = rows * shape[1] + cols
    order = np.lexsort((-values, key))
    key, values = key[order], values[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    key, values = key[first], values[first]
    return sp.csr_matrix(
        (values.astype(np.float32), (key // shape[1], key % shape[1])), shape=shape
    )


def _store_sources(store: GraphStore) -> list[str]:
    """The source releases of the store's HPO/KG relations (``HPO:2025-01-16``, ...)."""
    try:
        if store.name == "embedded":
            table = store.connection.execute(  # type: ignore[attr-defined]
                "MATCH (c:Concept) UNWIND c.sources AS s RETURN DISTINCT s"
            ).get_as_arrow()
            return sorted(str(s) for s in table.column(0).to_pylist())
        return sorted({s for c in store.iter_concepts() for s in c.sources})
    except RuntimeError:
        return []


def require_terms(kg: PhenotypeKG, observed: list[str], excluded: list[str]):
    """Resolve a patient's findings for diagnosis.

    Raises:
        InputError: no finding resolves to a term of the KG (the unknown ones are named).
    """
    obs, unknown_obs, _ = kg.resolve_terms(observed)
    exc, unknown_exc, _ = kg.resolve_terms(excluded)
    if not obs and not exc:
        unknown = unknown_obs + unknown_exc
        detail = f" (unknown: {', '.join(unknown[:10])})" if unknown else ""
        raise InputError(
            "the patient has no finding that is an HPO term of the KG" + detail + "; give "
            "HPO ids such as HP:0001250"
        )
    return obs, exc, unknown_obs + unknown_exc
