"""Semantic similarity of a patient's HPO terms to every candidate disease, vectorised.

Our own implementation (numpy / scipy.sparse), not pyhpo's; ``tests/gnn/reasoning`` checks
its information content and Resnik values against pyhpo's on the same release.

- information content ``IC(t) = -log(n_t / C)``, ``n_t`` the candidate diseases annotated to
  ``t`` or one of its descendants (annotation frequency over IS_A ancestors, as Phenomizer,
  Köhler et al., AJHG 2009);
- the most informative common ancestor of a patient term ``q`` and any annotation of disease
  ``D`` is the most informative term of ``anc(q) ∩ anc(annotations(D))``, so one column slice of
  the ``[C, T]`` disease–ancestor matrix scores a term against all diseases at once;
- :meth:`Similarity.features` gives the KG evidence the model combines (see ``FEATURES``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gnn.reasoning.knowledge import PhenotypeKG

FEATURES = (
    "resnik_patient_to_disease",  # Phenomizer: mean over patient terms of max IC(MICA)
    "resnik_disease_to_patient",  # mean over annotations (frequency-weighted) of max IC(MICA)
    "exact_overlap_ic",  # IC share of patient terms annotated exactly to the disease
    "implied_overlap_ic",  # IC share of patient terms that are ancestors of an annotation
    "excluded_frequency",  # sum over excluded terms of the annotated frequency at or below them
    "excluded_considered",  # excluded terms at or above a rare annotation: sum of (1 - frequency)
    "not_contradicted",  # observed terms at or below a NOT annotation of the disease
    "log_annotations",  # log(1 + number of annotations)
    "frequency_likelihood",  # sum over patient terms of log(eps + frequency at or below them)
)
LIKELIHOOD_FLOOR = 0.02  # a term no annotation implies: a small chance (noise, incompleteness)


def ancestor_closure(parents: sp.csr_matrix) -> sp.csr_matrix:
    """``[T, T]`` 0/1 CSR with ``anc[i, j] = 1`` when ``j`` is ``i`` or an ancestor of ``i``."""
    n = parents.shape[0]
    closure = sp.identity(n, dtype=np.float32, format="csr")
    frontier = closure
    for _ in range(64):  # the HPO DAG is < 20 deep
        frontier = frontier @ parents
        frontier.data[:] = 1.0
        frontier = frontier - frontier.multiply(closure)
        frontier.eliminate_zeros()
        if frontier.nnz == 0:
            break
        closure = closure + frontier
    closure.data[:] = 1.0
    return sp.csr_matrix(closure)


class Similarity:
    """Precomputed ancestor sets, IC and disease–ancestor matrices of one :class:`PhenotypeKG`."""

    def __init__(self, kg: PhenotypeKG) -> None:
        self.kg = kg
        self.ancestors = ancestor_closure(kg.parents)
        n_diseases = kg.num_diseases
        annotated = sp.csr_matrix(kg.annotations > 0, dtype=np.float32)
        implied = annotated @ self.ancestors  # [C, T] counts
        implied.data[:] = 1.0
        counts = np.asarray(implied.sum(axis=0)).ravel()
        self.ic = (-np.log(np.maximum(counts, 1.0) / n_diseases)).astype(np.float32)
        self.ic[counts == 0] = np.log(n_diseases)
        self.annotated = annotated.tocsc()
        self.implied_ic = sp.csc_matrix(implied.multiply(self.ic[None, :]), dtype=np.float32)
        self.implied = sp.csc_matrix(implied)
        self.max_frequency_below = _max_frequency_below(kg.annotations, self.ancestors).tocsc()
        self.negated_below = sp.csc_matrix(kg.negated.astype(np.float32) @ self.ancestors.T)
        ancestors_coo = self.ancestors.tocoo()
        self._anc_rows, self._anc_cols = ancestors_coo.row, ancestors_coo.col
        self._anc_indptr = self.ancestors.indptr
        self.frequency = sp.csr_matrix(kg.annotations, dtype=np.float32)
        self.frequency_sum = np.asarray(self.frequency.sum(axis=1)).ravel() + 1e-9
        self.log_annotations = np.log1p(np.diff(self.frequency.indptr)).astype(np.float32)
        # noise for simulated patients: terms drawn as often as they annotate diseases
        self.noise_terms = self.frequency.indices.copy()
        self._best_cache: dict[int, np.ndarray] = {}

    def ancestors_of(self, term: int) -> np.ndarray:
        return self.ancestors.indices[self._anc_indptr[term] : self._anc_indptr[term + 1]]

    def best_match(self, term: int) -> np.ndarray:
        """``[C]``: IC of the most informative common ancestor of ``term`` and each disease."""
        cached = self._best_cache.get(term)
        if cached is None:
            block = self.implied_ic[:, self.ancestors_of(term)]
            cached = np.asarray(block.max(axis=1).todense()).ravel().astype(np.float32)
            if len(self._best_cache) < 40_000:
                self._best_cache[term] = cached
        return cached

    def resnik(self, observed: list[int]) -> np.ndarray:
        """One-way Resnik best-match average, patient -> each disease (Phenomizer's score)."""
        if not observed:
            return np.zeros(self.kg.num_diseases, np.float32)
        return np.mean([self.best_match(q) for q in observed], axis=0)

    def resnik_reverse(self, observed: list[int]) -> np.ndarray:
        """Frequency-weighted mean over each disease's annotations of their best IC(MICA)
        with the patient's terms."""
        if not observed:
            return np.zeros(self.kg.num_diseases, np.float32)
        patient_ancestors = np.zeros(self.kg.num_terms, bool)
        for q in observed:
            patient_ancestors[self.ancestors_of(q)] = True
        keep = patient_ancestors[self._anc_cols]
        best = np.zeros(self.kg.num_terms, np.float32)
        np.maximum.at(best, self._anc_rows[keep], self.ic[self._anc_cols[keep]])
        return (self.frequency @ best) / self.frequency_sum

    def features(self, observed: list[int], excluded: list[int]) -> np.ndarray:
        """``[C, len(FEATURES)]`` KG evidence of one patient against every candidate."""
        n = self.kg.num_diseases
        out = np.zeros((n, len(FEATURES)), np.float32)
        ic_obs = self.ic[observed] if observed else np.zeros(0, np.float32)
        total_ic = float(ic_obs.sum()) + 1e-6
        if observed:
            out[:, 0] = self.resnik(observed)
            out[:, 1] = self.resnik_reverse(observed)
            out[:, 2] = (self.annotated[:, observed] @ ic_obs) / total_ic
            out[:, 3] = (self.implied[:, observed] @ ic_obs) / total_ic
            out[:, 6] = np.asarray(self.negated_below[:, observed].sum(axis=1)).ravel()
            implied = self.max_frequency_below[:, observed].toarray()
            out[:, 8] = np.log(LIKELIHOOD_FLOOR + implied).sum(axis=1) / len(observed)
        if excluded:
            below = self.max_frequency_below[:, excluded]
            out[:, 4] = np.asarray(below.sum(axis=1)).ravel()
            considered = below.copy()
            considered.data = 1.0 - considered.data
            out[:, 5] = np.asarray(considered.sum(axis=1)).ravel()
        out[:, 7] = self.log_annotations
        return out


def _max_frequency_below(annotations: sp.csr_matrix, ancestors: sp.csr_matrix) -> sp.csr_matrix:
    """``[C, T]``: for disease ``D`` and term ``a``, the highest frequency of ``D``'s
    annotations that are ``a`` or below ``a`` (0 when none is)."""
    coo = annotations.tocoo()
    counts = np.diff(ancestors.indptr)[coo.col]
    rows = np.repeat(coo.row, counts)
    values = np.repeat(coo.data, counts)
    starts = ancestors.indptr[coo.col]
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = ancestors.indices[np.repeat(starts, counts) + offsets]
    shape = annotations.shape
    key = rows.astype(np.int64) * shape[1] + cols
    order = np.lexsort((-values, key))
    key, values = key[order], values[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    key, values = key[first], values[first]
    return sp.csr_matrix((values, (key // shape[1], key % shape[1])), shape=shape)
