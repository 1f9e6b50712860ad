"""The chest domain of the phenotype KG: the curated chest seed KG as :class:`PhenotypeKG` arrays.

The same arrays as the rare domain (HPO + OMIM, :mod:`gnn.reasoning.knowledge`), so the same
similarity, simulation, models and explanations run on it; read through the backend-neutral
store interface (embedded or Neo4j).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from gnn.reasoning.knowledge import (
    MIN_FREQUENCY,
    UNKNOWN_FREQUENCY,
    PhenotypeKG,
    _max_matrix,
    _store_sources,
)
from graph.errors import StoreError

if TYPE_CHECKING:
    from graph.store import GraphStore

CHEST_SOURCE = "kgdx-chest-seed"  # prefix of kg_loaders.seed.SEED_SOURCE (release suffixed)
CHEST_ANNOTATIONS = ("HAS_FINDING", "HAS_SYMPTOM", "HAS_PHENOTYPE")
CHEST_TERM_KINDS = ("finding", "symptom")


def chest_from_store(store: GraphStore) -> PhenotypeKG:
    """The chest domain: the curated chest seed KG (``kgdx kg seed`` / ``kgdx demo``) as arrays.

    - candidates: the seed's concepts of kind ``disease`` (a source starting with
      :data:`CHEST_SOURCE`) that have at least one annotation;
    - annotations: their :data:`CHEST_ANNOTATIONS` relations (disease -> finding / symptom),
      frequency from a ``frequency`` attribute, else :data:`UNKNOWN_FREQUENCY` (the seed gives
      none: "as likely as not"); negated relations are evidence against, as in HPO;
    - terms: the annotation targets and every seed concept of kind finding or symptom; the DAG is
      the ``IS_A`` edges among terms (any source: the seed states HPO's and DO's);
    - lookup (``hpo_index``, ``omim_index``): each node id and every xref, so a finding linked to
      ``UMLS:C0018800`` and a query naming ``HP:0001640`` find the same term.

    Read through the backend-neutral store interface (embedded or Neo4j); the seed is small.

    Raises:
        StoreError: the store holds no chest seed disease with annotations (load the seed with
            ``kgdx kg seed`` or ``Engine.build_seed_kg()``).
    """
    from graph.kg_hash import kg_content_hash

    started = time.perf_counter()
    concepts = {c.id: c for c in store.iter_concepts()}
    seed = {
        cid: c
        for cid, c in concepts.items()
        if any(str(s).startswith(CHEST_SOURCE) for s in c.sources)
    }
    seed_diseases = {cid for cid, c in seed.items() if str(c.kind) == "disease"}
    annotations = [
        r for r in store.iter_relations(types=list(CHEST_ANNOTATIONS)) if r.src in seed_diseases
    ]
    if not annotations:
        raise StoreError(
            "the KG holds no chest seed disease with findings; load the seed KG with "
            "`kgdx kg seed` (or Engine.build_seed_kg())"
        )
    term_set = {r.dst for r in annotations if r.dst in concepts}
    term_set |= {cid for cid, c in seed.items() if str(c.kind) in CHEST_TERM_KINDS}
    term_set -= seed_diseases
    term_ids = sorted(term_set)
    term_of = {t: i for i, t in enumerate(term_ids)}
    is_a = [
        r
        for r in store.iter_relations(types=["IS_A"])
        if r.src in term_of and r.dst in term_of and r.src != r.dst and not r.negated
    ]
    n = len(term_ids)
    parents = sp.csr_matrix(
        (
            np.ones(len(is_a), np.float32),
            ([term_of[r.src] for r in is_a], [term_of[r.dst] for r in is_a]),
        ),
        shape=(n, n),
    )
    parents.data[:] = 1.0
    annotations = [r for r in annotations if r.dst in term_of]
    disease_ids = sorted({r.src for r in annotations})
    disease_of = {d: i for i, d in enumerate(disease_ids)}
    d_idx = np.array([disease_of[r.src] for r in annotations], dtype=np.int64)
    t_idx = np.array([term_of[r.dst] for r in annotations], dtype=np.int64)
    weight = np.array(
        [
            float(r.weight) if "frequency" in (r.attributes or {}) else UNKNOWN_FREQUENCY
            for r in annotations
        ],
        np.float64,
    )
    negated = np.array([bool(r.negated) for r in annotations]) | (weight <= 0.0)
    weight = np.clip(weight, MIN_FREQUENCY, 1.0)
    shape = (len(disease_ids), n)
    positive = ~negated
    annotated = _max_matrix(d_idx[positive], t_idx[positive], weight[positive], shape)
    negated_matrix = _max_matrix(d_idx[negated], t_idx[negated], np.ones(int(negated.sum())), shape)
    negated_matrix = negated_matrix - negated_matrix.multiply(annotated > 0)
    negated_matrix.eliminate_zeros()
    hpo_index: dict[str, int] = {}
    for t, i in term_of.items():
        hpo_index.setdefault(t, i)
    for t, i in term_of.items():
        for code in concepts[t].xrefs if t in concepts else ():
            hpo_index.setdefault(code, i)
    omim_index: dict[str, int] = {d: i for d, i in disease_of.items()}
    for d, i in disease_of.items():
        for code in concepts[d].xrefs:
            omim_index.setdefault(code, i)
    view = PhenotypeKG(
        term_ids=term_ids,
        term_names=[concepts[t].name if t in concepts else t for t in term_ids],
        parents=parents,
        disease_ids=disease_ids,
        disease_names=[concepts[d].name for d in disease_ids],
        disease_omim=[(d,) for d in disease_ids],
        annotations=annotated,
        negated=sp.csr_matrix(negated_matrix),
        hpo_index=hpo_index,
        omim_index=omim_index,
        domain="chest",
    )
    view.content_hash = kg_content_hash(store)
    view.sources = _store_sources(store)
    view.read_seconds = time.perf_counter() - started
    return view
