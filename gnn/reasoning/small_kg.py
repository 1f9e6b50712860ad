"""The batched evidence of a small KG as dense products (the chest KG: 80 terms, 21 candidates).

:meth:`Similarity.features_batch <gnn.reasoning.similarity.Similarity.features_batch>` and
:meth:`CaseMemory.similarity_batch <gnn.reasoning.memory.CaseMemory.similarity_batch>` are
sparse products, sized for the HPO KG (~19,000 terms, 8,469 candidates). On a KG this small
each scipy operation costs more than its arithmetic (~100-300 us apiece on a 2-core machine,
a dozen of them per batch), so there :class:`DenseTerms` computes the same sums as dense
matrix products of the same per-term rows (:attr:`Similarity._term_rows`, the ancestor
closure, the best matches of every term), in float64 and then rounded to float32 as the
sparse path's results are. The values equal the sparse path's to float32 rounding (tested on
the chest KG), and a row does not depend on the rows batched with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gnn.reasoning.similarity import Similarity

# dense when the KG has at most this many terms and each dense matrix (the ancestor closure,
# a term's rows: terms x 5 x candidates, the memory's cases x terms) at most this many
# entries (8 MB in float64); the chest KG: 80 terms, 21 candidates, 51 cases
DENSE_TERMS = 1024
DENSE_ENTRIES = 1 << 20
# and a batch of at most this many (row, term, term) steps (the ancestor product is B x T x T):
# 10,000 rows on the chest KG; a larger batch (training's, never a diagnosis's) goes sparse,
# whose values differ from these by float32 rounding only
DENSE_BATCH_STEPS = 1 << 26


def fits(num_terms: int, num_diseases: int) -> bool:
    """Whether a KG of this size gets :class:`DenseTerms`."""
    return num_terms <= DENSE_TERMS and 5 * num_diseases * num_terms <= DENSE_ENTRIES


class DenseTerms:
    """Dense copies of a small :class:`Similarity`'s per-term matrices, and the batched sums
    that :meth:`Similarity.features_batch` and :meth:`CaseMemory.similarity_batch` need."""

    def __init__(self, sim: Similarity) -> None:
        self.num_terms = sim.kg.num_terms
        by_observed, by_excluded = sim._term_rows
        self.by_observed = by_observed.toarray().astype(np.float64)  # [T, 5C]
        self.by_excluded = by_excluded.toarray().astype(np.float64)  # [T, 2C]
        self.ancestors = sim.ancestors.toarray().astype(np.float64)  # [T, T], itself included
        terms = np.arange(self.num_terms)
        self.best = sim.best_match_batch(terms).astype(np.float64)  # [T, C]
        self.frequency = sim.frequency.toarray().astype(np.float64)  # [C, T]
        self.ic = sim.ic.astype(np.float64)
        self.frequency_sum = sim.frequency_sum
        self.inheritance = sim._inheritance  # the DAG's max-propagation steps

    def takes(self, batch: int) -> bool:
        """Whether a batch of ``batch`` patients is computed densely (:data:`DENSE_BATCH_STEPS`)."""
        return batch * self.num_terms * self.num_terms <= DENSE_BATCH_STEPS

    def holds(self, cases: int) -> bool:
        """Whether a case memory of ``cases`` cases is kept dense (:data:`DENSE_ENTRIES`)."""
        return cases * self.num_terms <= DENSE_ENTRIES

    def counts(self, lists: Sequence[Sequence[int]]) -> np.ndarray:
        """``[B, T]`` float64 counts of each term in each list (repeats counted)."""
        from gnn.reasoning.similarity import _concat  # (imports this module)

        lengths = np.array([len(t) for t in lists], dtype=np.int64)
        flat = _concat(lists)
        keys = np.repeat(np.arange(len(lists)) * self.num_terms, lengths) + flat
        size = len(lists) * self.num_terms
        return (
            np.bincount(keys, minlength=size).reshape(len(lists), self.num_terms).astype(np.float64)
        )

    def reached(self, counts: np.ndarray) -> np.ndarray:
        """``[B, T]`` 0/1: the terms that are a counted term or an ancestor of one."""
        return ((counts @ self.ancestors) > 0).astype(np.float64)

    def sums(
        self, observed: Sequence[Sequence[int]], excluded: Sequence[Sequence[int]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(resnik [B, C], resnik_reverse [B, C], observed sums [B, 5C], excluded sums
        [B, 2C])``: what :meth:`Similarity.features_batch` combines, each as its sparse path
        computes it (:meth:`~Similarity.resnik_batch`, :meth:`~Similarity.resnik_reverse_batch`,
        the per-term rows summed over the patients' terms)."""
        counts = self.counts(observed)
        lengths = np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        resnik = (counts @ self.best) / lengths
        # best IC(MICA) of each term with the patient: IC where the patient reaches it, then
        # maxed down the DAG, a term's after its parents' (Similarity._inheritance)
        best = (self.reached(counts) * self.ic).T.copy()  # [T, B]
        for children, parents in self.inheritance:
            best[children] = np.maximum(best[children], best[parents])
        reverse = (self.frequency @ best).T / self.frequency_sum
        observed_sums = counts @ self.by_observed
        excluded_sums = self.counts(excluded) @ self.by_excluded
        return (
            resnik.astype(np.float32),
            reverse.astype(np.float32),
            observed_sums.astype(np.float32),
            excluded_sums.astype(np.float32),
        )

    def cosine(self, vectors: np.ndarray, observed: Sequence[Sequence[int]]) -> np.ndarray:
        """``[cases, B]`` float32 cosine of each memory case (``vectors``, dense ``[cases, T]``,
        L2-normalised) with each patient's IC-weighted ancestor set."""
        weighted = self.reached(self.counts(observed)) * self.ic
        norms = np.sqrt((weighted * weighted).sum(axis=1, keepdims=True))
        norms[norms == 0] = 1.0
        return (vectors @ (weighted / norms).T).astype(np.float32)
