"""Training cases as a memory: per-disease nearest-neighbour similarity of a new patient.

Each case is its observed terms closed over IS_A ancestors, weighted by IC and L2-normalised;
the similarity of a patient to a disease is the best cosine to that disease's training cases
(0 for a disease no training case has). Used as baseline (c) and as one feature of kgdx's model.
:meth:`CaseMemory.similarity_batch` gives the same values for many patients at once (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from gnn.reasoning.similarity import Similarity


class CaseMemory:
    """Bag-of-phenotypes vectors of training cases, grouped by disease.

    Args:
        sim: the KG similarity (ancestors, IC).
        observed: term indices of each training case.
        diseases: candidate index of each training case.
    """

    def __init__(self, sim: Similarity, observed: list[list[int]], diseases: list[int]) -> None:
        self.sim = sim
        self.observed = [list(o) for o in observed]
        self.diseases = np.asarray(diseases, dtype=np.int64)
        self.vectors = (
            sp.vstack([self.vector(o) for o in observed], format="csr")
            if observed
            else sp.csr_matrix((0, sim.kg.num_terms), dtype=np.float32)
        )
        self.seen = np.zeros(sim.kg.num_diseases, bool)
        self.seen[self.diseases] = True
        dense = sim.dense
        # a small KG's cases as a dense [cases, T] for similarity_batch (gnn.reasoning.small_kg)
        self._dense_vectors = (
            self.vectors.toarray().astype(np.float64)
            if dense is not None and dense.holds(self.vectors.shape[0])
            else None
        )

    def vector(self, observed: list[int]) -> sp.csr_matrix:
        mask = np.zeros(self.sim.kg.num_terms, np.float32)
        for q in observed:
            mask[self.sim.ancestors_of(q)] = 1.0
        values = mask * self.sim.ic
        norm = float(np.linalg.norm(values)) or 1.0
        return sp.csr_matrix(values / norm)

    def similarity(
        self,
        observed: list[int],
        *,
        drop_case: int = -1,
        drop_disease: int = -1,
        rows: Sequence[int] | None = None,
    ) -> np.ndarray:
        """``[C]``: best cosine of the patient to each disease's cases (0 without cases), or
        ``[len(rows)]`` for the diseases ``rows`` only (their cases only are compared).

        ``drop_case`` / ``drop_disease`` leave one case or all cases of one disease out (used
        while training on the memory's own cases)."""
        out = np.zeros(self.sim.kg.num_diseases, np.float32)
        if self.vectors.shape[0] == 0 or not observed:
            return out if rows is None else out[np.asarray(rows, dtype=np.int64)]
        keep = np.ones(self.vectors.shape[0], bool)
        if drop_case >= 0:
            keep[drop_case] = False
        if drop_disease >= 0:
            keep &= self.diseases != drop_disease
        if rows is not None:
            keep &= np.isin(self.diseases, np.asarray(rows, dtype=np.int64))
        cases = np.flatnonzero(keep)
        vector = self.vector(observed).T
        if rows is None:  # every case, then the kept ones (cheaper than slicing the cases)
            cosine = np.asarray((self.vectors @ vector).todense()).ravel()[cases]
        else:
            cosine = np.asarray((self.vectors[cases] @ vector).todense()).ravel()
        np.maximum.at(out, self.diseases[cases], cosine.astype(np.float32))
        return out if rows is None else out[np.asarray(rows, dtype=np.int64)]

    def similarity_batch(
        self,
        observed: Sequence[Sequence[int]],
        *,
        drop_case: Sequence[int] | None = None,
        drop_disease: Sequence[int] | None = None,
    ) -> np.ndarray:
        """``[B, C]``: :meth:`similarity` of ``B`` patients (``drop_case[b]`` /
        ``drop_disease[b]``: what patient ``b`` leaves out, ``-1`` nothing), with one sparse
        product of the cases against all the patients and one max per disease."""
        batch = len(observed)
        out = np.zeros((batch, self.sim.kg.num_diseases), np.float32)
        if self.vectors.shape[0] == 0 or batch == 0:
            return out
        if self._dense_vectors is not None and self.sim.dense.takes(batch):
            # a small KG: dense products (gnn.reasoning.small_kg)
            cosine = self.sim.dense.cosine(self._dense_vectors, observed)
        else:
            reached = self.sim.patient_ancestors(observed).multiply(self.sim.ic[None, :]).tocsr()
            norms = np.sqrt(np.asarray(reached.multiply(reached).sum(axis=1)).ravel())
            norms[norms == 0] = 1.0
            vectors = sp.diags((1.0 / norms).astype(np.float32)) @ reached
            cosine = (self.vectors @ vectors.T).toarray().astype(np.float32)  # [cases, B]
        if drop_case is not None:
            drop = np.asarray(drop_case, dtype=np.int64)
            cosine[drop[drop >= 0], np.flatnonzero(drop >= 0)] = 0.0
        if drop_disease is not None:
            drop = np.asarray(drop_disease, dtype=np.int64)
            cosine[(self.diseases[:, None] == drop[None, :]) & (drop[None, :] >= 0)] = 0.0
        order, diseases, starts = self._by_disease
        best = np.maximum.reduceat(cosine[order], starts, axis=0)  # [diseases with cases, B]
        out[:, diseases] = np.maximum(best, 0.0).T
        return out

    @cached_property
    def _by_disease(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cases sorted by disease, each disease with cases, and where its cases start."""
        order = np.argsort(self.diseases, kind="stable")
        diseases, starts = np.unique(self.diseases[order], return_index=True)
        return order, diseases, starts
