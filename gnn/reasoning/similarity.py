"""Semantic similarity of a patient's HPO terms to every candidate disease, vectorised.

Our own implementation (numpy / scipy.sparse), not pyhpo's; ``tests/gnn/reasoning`` checks
its information content and Resnik values against pyhpo's on the same release.

- information content ``IC(t) = -log(n_t / C)``, ``n_t`` the candidate diseases annotated to
  ``t`` or one of its descendants (annotation frequency over IS_A ancestors, as Phenomizer,
  Köhler et al., AJHG 2009);
- the most informative common ancestor of a patient term ``q`` and any annotation of disease
  ``D`` is the most informative term of ``anc(q) ∩ anc(annotations(D))``, so one column slice of
  the ``[C, T]`` disease–ancestor matrix scores a term against all diseases at once;
- :meth:`Similarity.features` gives the KG evidence the model combines (see ``FEATURES``) for
  one patient; :meth:`Similarity.features_batch` gives the same values for many patients at once
  (sparse products over the patients' term columns, a max-propagation down the IS_A DAG for the
  reverse best match, ascending-IC writes for the forward one); a test asserts they are equal,
  so a feature added to one must be added to the other. On a small KG (the chest KG) the batch's
  sums are dense products instead (:mod:`gnn.reasoning.small_kg`, tested equal too).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from gnn.reasoning.knowledge import PhenotypeKG
from gnn.reasoning.small_kg import DenseTerms, fits
from graph.errors import InputError

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
# best_match_batch: ancestors implied by more diseases than this are maxed as dense rows
# (267 such terms in the default KG, 9 MB), the others written sparsely
DENSE_COLUMN = 512


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
        # a small KG's batched sums as dense products (gnn.reasoning.small_kg), made now: the
        # reasoner is pickled to the model worker, and nothing of it is set lazily on the way
        self.dense: DenseTerms | None = (
            DenseTerms(self) if fits(kg.num_terms, kg.num_diseases) else None
        )

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

    def resnik_reverse(self, observed: list[int], rows: np.ndarray | None = None) -> np.ndarray:
        """Frequency-weighted mean over each disease's annotations of their best IC(MICA)
        with the patient's terms (``[C]``, or ``[len(rows)]`` for those diseases only)."""
        n = self.kg.num_diseases if rows is None else len(rows)
        if not observed:
            return np.zeros(n, np.float32)
        patient_ancestors = np.zeros(self.kg.num_terms, bool)
        for q in observed:
            patient_ancestors[self.ancestors_of(q)] = True
        if rows is None:
            keep = patient_ancestors[self._anc_cols]
            best = np.zeros(self.kg.num_terms, np.float32)
            np.maximum.at(best, self._anc_rows[keep], self.ic[self._anc_cols[keep]])
            return (self.frequency @ best) / self.frequency_sum
        # a few diseases: each of their annotations' ancestors only
        frequency = self.frequency[rows]
        closure = self.ancestors[frequency.indices]  # [annotations, T]
        values = np.where(patient_ancestors[closure.indices], self.ic[closure.indices], 0.0)
        best = np.zeros(len(frequency.indices), np.float32)
        owner = np.repeat(np.arange(len(frequency.indices)), np.diff(closure.indptr))
        np.maximum.at(best, owner, values.astype(np.float32))
        weighted = frequency.copy()
        weighted.data = weighted.data * best
        return np.asarray(weighted.sum(axis=1)).ravel() / self.frequency_sum[rows]

    def features(
        self, observed: list[int], excluded: list[int], rows: Sequence[int] | None = None
    ) -> np.ndarray:
        """``[C, len(FEATURES)]`` KG evidence of one patient against every candidate, or
        ``[len(rows), len(FEATURES)]`` against the candidates ``rows`` only (cheaper for a few:
        the occlusion of ``kgdx diagnose``)."""
        rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        n = self.kg.num_diseases if rows is None else len(rows)

        def columns(matrix: sp.csc_matrix, terms: list[int]) -> sp.csc_matrix:
            block = matrix[:, terms]
            return block if rows is None else block[rows]

        out = np.zeros((n, len(FEATURES)), np.float32)
        ic_obs = self.ic[observed] if observed else np.zeros(0, np.float32)
        total_ic = float(ic_obs.sum()) + 1e-6
        if observed:
            best = [self.best_match(q) for q in observed]
            out[:, 0] = np.mean(best if rows is None else [b[rows] for b in best], axis=0)
            out[:, 1] = self.resnik_reverse(observed, rows)
            out[:, 2] = (columns(self.annotated, observed) @ ic_obs) / total_ic
            out[:, 3] = (columns(self.implied, observed) @ ic_obs) / total_ic
            out[:, 6] = np.asarray(columns(self.negated_below, observed).sum(axis=1)).ravel()
            implied = columns(self.max_frequency_below, observed).toarray()
            out[:, 8] = np.log(LIKELIHOOD_FLOOR + implied).sum(axis=1) / len(observed)
        if excluded:
            below = columns(self.max_frequency_below, excluded)
            out[:, 4] = np.asarray(below.sum(axis=1)).ravel()
            considered = below.copy()
            considered.data = 1.0 - considered.data
            out[:, 5] = np.asarray(considered.sum(axis=1)).ravel()
        out[:, 7] = self.log_annotations if rows is None else self.log_annotations[rows]
        return out

    # ---- many patients at once (same values as `features`, tested) ----

    def features_batch(
        self, observed: Sequence[Sequence[int]], excluded: Sequence[Sequence[int]]
    ) -> np.ndarray:
        """``[B, C, len(FEATURES)]``: :meth:`features` of ``B`` patients (``observed[b]``,
        ``excluded[b]``), computed together (a view of a feature-major array): the per-term
        sums are one sparse product of the patients' ``[B, T]`` term counts with per-term rows
        (:attr:`_term_rows`), the best matches come from :meth:`resnik_batch` and
        :meth:`resnik_reverse_batch`.

        Raises:
            InputError: ``observed`` and ``excluded`` list different numbers of patients."""
        batch, n = len(observed), self.kg.num_diseases
        if len(excluded) != batch:
            raise InputError(
                f"{len(observed)} observed but {len(excluded)} excluded term lists: one each "
                "per patient"
            )
        out = np.zeros((len(FEATURES), batch, n), np.float32)
        out[7] = self.log_annotations
        if batch == 0:
            return out.transpose(1, 2, 0)
        n_obs = np.array([len(o) for o in observed], dtype=np.float32)
        total_ic = np.array([self.ic[o].sum() for o in observed], np.float32) + np.float32(1e-6)
        dense = self.dense if self.dense is not None and self.dense.takes(batch) else None
        if dense is None:
            by_observed, by_excluded = self._term_rows
            out[0] = self.resnik_batch(observed)
            out[1] = self.resnik_reverse_batch(observed)
            observed_sums = _term_sums(by_observed, self._incidence(observed))
            excluded_sums = _term_sums(by_excluded, self._incidence(excluded))
        else:  # a small KG: the same sums as dense products
            out[0], out[1], observed_sums, excluded_sums = dense.sums(observed, excluded)
        sums = observed_sums.reshape(batch, 5, n)
        out[2] = sums[:, 0] / total_ic[:, None]
        out[3] = sums[:, 1] / total_ic[:, None]
        out[6] = sums[:, 2]
        # mean of log(floor + f) over the patient's terms: the stored entries' logs, log(floor)
        # for the others (summed so, not as a gain over n log(floor): no float32 cancellation)
        has = n_obs > 0
        unimplied = n_obs[has, None] - sums[has, 4]
        log_floor = np.log(np.float32(LIKELIHOOD_FLOOR))
        out[8, has] = (sums[has, 3] + unimplied * log_floor) / n_obs[has, None]
        sums = excluded_sums.reshape(batch, 2, n)
        out[4], out[5] = sums[:, 0], sums[:, 1]
        return out.transpose(1, 2, 0)

    def resnik_batch(self, observed: Sequence[Sequence[int]]) -> np.ndarray:
        """``[B, C]``: :meth:`resnik` of each patient (the best matches of the batch's distinct
        terms, averaged by one sparse ``[B, U] @ [U, C]`` product)."""
        flat = _concat(observed)
        terms = np.unique(flat)
        best = self.best_match_batch(terms)
        lengths = np.array([len(o) for o in observed], dtype=np.int64)
        weights = np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        shape = (len(observed), len(terms))
        mean = sp.csr_matrix((weights, np.searchsorted(terms, flat), indptr), shape=shape)
        return np.asarray(mean @ best, dtype=np.float32)

    def best_match_batch(self, terms: np.ndarray) -> np.ndarray:
        """``[len(terms), C]``: :meth:`best_match` of each term, the uncached ones together.

        ``IC`` falls as a term's disease count grows, so a term's ancestors split by count:
        the general ones (more than :data:`DENSE_COLUMN` diseases, lowest IC) are maxed as
        dense rows, once per distinct set of them; then each specific ancestor ``a`` writes
        ``IC(a)`` at the diseases that imply it, in ascending IC order (one ancestor per term
        per write), so the last, largest value wins."""
        out = np.zeros((len(terms), self.kg.num_diseases), np.float32)
        todo = []
        for i, t in enumerate(terms.tolist()):
            cached = self._best_cache.get(t)
            if cached is None:
                todo.append(i)
            else:
                out[i] = cached
        if not todo:
            return out
        todo = np.asarray(todo, dtype=np.int64)
        rows = self.ancestors[terms[todo]]  # [n, T]: each term's ancestors (and itself)
        owner = np.repeat(todo, np.diff(rows.indptr))
        ancestor = rows.indices.astype(np.int64)
        dense_row = self._dense_best[1][ancestor]
        general = dense_row >= 0
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, start, stop in zip(todo.tolist(), rows.indptr[:-1], rows.indptr[1:], strict=True):
            key = tuple(sorted(dense_row[start:stop][general[start:stop]].tolist()))
            groups.setdefault(key, []).append(i)
        for key, members in groups.items():
            if key:
                out[members] = self._dense_best[0][list(key)].max(axis=0)
        owner, ancestor = owner[~general], ancestor[~general]
        order = np.lexsort((self.ic[ancestor], owner))  # by term, then ascending IC
        owner, ancestor = owner[order], ancestor[order]
        first = np.ones(len(owner), bool)
        first[1:] = owner[1:] != owner[:-1]
        group_start = np.maximum.accumulate(np.where(first, np.arange(len(owner)), 0))
        position = np.arange(len(owner)) - group_start
        indptr, indices = self.implied.indptr, self.implied.indices
        flat = out.reshape(-1)
        n = self.kg.num_diseases
        for step in range(int(position.max()) + 1 if len(position) else 0):
            at = position == step
            a, u = ancestor[at], owner[at]
            lengths = indptr[a + 1] - indptr[a]
            starts = np.repeat(indptr[a] - np.cumsum(lengths) + lengths, lengths)
            diseases = indices[np.arange(lengths.sum()) + starts]
            # one ancestor per term per step: no index is written twice in one assignment
            flat[np.repeat(u * n, lengths) + diseases] = np.repeat(self.ic[a], lengths)
        for i in todo.tolist():
            if len(self._best_cache) < 40_000:
                self._best_cache[int(terms[i])] = out[i].copy()
        return out

    @cached_property
    def _dense_best(self) -> tuple[np.ndarray, np.ndarray]:
        """``([G, C], [T])``: for the general terms (more than :data:`DENSE_COLUMN` diseases),
        ``IC(a)`` at the diseases that imply ``a`` as dense rows, and each term's row (-1: not
        general)."""
        counts = np.diff(self.implied.indptr)
        general = np.flatnonzero(counts > DENSE_COLUMN)
        dense = np.zeros((len(general), self.kg.num_diseases), np.float32)
        for row, a in enumerate(general.tolist()):
            dense[
                row, self.implied.indices[self.implied.indptr[a] : self.implied.indptr[a + 1]]
            ] = self.ic[a]
        index = np.full(self.kg.num_terms, -1, np.int64)
        index[general] = np.arange(len(general))
        return dense, index

    def resnik_reverse_batch(self, observed: Sequence[Sequence[int]]) -> np.ndarray:
        """``[B, C]``: :meth:`resnik_reverse` of each patient. A term's best IC(MICA) with the
        patient is ``max(IC(t) if t is an ancestor of a patient term, its parents' values)``:
        one max-propagation down the DAG (:attr:`_inheritance`) for all patients at once."""
        reached = self.patient_ancestors(observed)  # [B, T]
        best = (reached.T.multiply(self.ic[:, None])).toarray().astype(np.float32)  # [T, B]
        for children, parents in self._inheritance:
            best[children] = np.maximum(best[children], best[parents])
        return ((self.frequency @ best) / self.frequency_sum[:, None]).T.astype(np.float32)

    def patient_ancestors(self, observed: Sequence[Sequence[int]]) -> sp.csr_matrix:
        """``[B, T]`` 0/1: the terms that are a patient term or an ancestor of one."""
        reached = (self._incidence(observed) @ self.ancestors).tocsr()
        reached.data[:] = 1.0
        return reached

    def _incidence(self, terms: Sequence[Sequence[int]]) -> sp.csr_matrix:
        """``[B, T]`` counts of each term in each patient's list."""
        lengths = np.array([len(t) for t in terms], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = _concat(terms)
        data = np.ones(len(indices), np.float32)
        shape = (len(terms), self.kg.num_terms)
        matrix = sp.csr_matrix((data, indices, indptr), shape=shape)
        matrix.sum_duplicates()
        return matrix

    @cached_property
    def _term_rows(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Per term, the rows summed over a patient's terms: ``[T, 5C]`` for observed terms (IC
        if the disease is annotated with it; IC if it implies it; NOT annotations at or below
        it; ``log(floor + f)`` of the frequency at or below it, and 1, where one is) and
        ``[T, 2C]`` for excluded ones (``f``, ``1 - f`` over the stored entries)."""
        ic = sp.diags(self.ic)
        below = sp.csr_matrix(self.max_frequency_below.T)
        considered, log_frequency, stored = below.copy(), below.copy(), below.copy()
        considered.data = 1.0 - considered.data
        log_frequency.data = np.log(np.float32(LIKELIHOOD_FLOOR) + log_frequency.data)
        stored.data[:] = 1.0
        by_observed = sp.hstack(
            [
                ic @ self.annotated.T,
                ic @ self.implied.T,
                self.negated_below.T,
                log_frequency,
                stored,
            ],
            format="csr",
            dtype=np.float32,
        )
        return by_observed, sp.hstack([below, considered], format="csr", dtype=np.float32)

    @cached_property
    def _inheritance(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The IS_A edges as ``(children, parents)`` steps, a term's after all its ancestors':
        by depth (longest path from a root), then by parent slot (a term's k-th parent), so no
        term appears twice in one step."""
        parents = sp.csr_matrix(self.kg.parents)
        count = np.diff(parents.indptr)
        has_parent = count > 0
        depth = np.zeros(self.kg.num_terms, np.int64)
        for _ in range(self.kg.num_terms + 1):
            new = np.zeros_like(depth)
            if has_parent.any():
                starts = parents.indptr[:-1][has_parent]
                new[has_parent] = np.maximum.reduceat(depth[parents.indices], starts) + 1
            if np.array_equal(new, depth):
                break
            depth = new
        steps = []
        for level in range(1, int(depth.max(initial=0)) + 1):
            children = np.flatnonzero(depth == level)
            for slot in range(int(count[children].max())):
                some = children[count[children] > slot]
                steps.append((some, parents.indices[parents.indptr[some] + slot].astype(np.int64)))
        return steps


def _concat(lists: Sequence[Sequence[int]]) -> np.ndarray:
    """The lists' term indices one after the other (int64)."""
    return np.concatenate([np.zeros(0, np.int64)] + [np.asarray(t, np.int64) for t in lists])


def _term_sums(rows: sp.csr_matrix, counts: sp.csr_matrix) -> np.ndarray:
    """``counts [B, T] @ rows [T, K]`` as a dense ``[B, K]`` (one sparse product: its cost is
    the number of (patient, term, stored entry) triples)."""
    return (counts @ rows).toarray()


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
