"""Training cases as a memory: per-disease nearest-neighbour similarity of a new patient.

Each case is its observed terms closed over IS_A ancestors, weighted by IC and L2-normalised;
the similarity of a patient to a disease is the best cosine to that disease's training cases
(0 for a disease no training case has). Used as baseline (c) and as one feature of kgdx's model.
"""

from __future__ import annotations

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

    def vector(self, observed: list[int]) -> sp.csr_matrix:
        mask = np.zeros(self.sim.kg.num_terms, np.float32)
        for q in observed:
            mask[self.sim.ancestors_of(q)] = 1.0
        values = mask * self.sim.ic
        norm = float(np.linalg.norm(values)) or 1.0
        return sp.csr_matrix(values / norm)

    def similarity(
        self, observed: list[int], *, drop_case: int = -1, drop_disease: int = -1
    ) -> np.ndarray:
        """``[C]``: best cosine of the patient to each disease's cases (0 without cases).

        ``drop_case`` / ``drop_disease`` leave one case or all cases of one disease out (used
        while training on the memory's own cases)."""
        out = np.zeros(self.sim.kg.num_diseases, np.float32)
        if self.vectors.shape[0] == 0 or not observed:
            return out
        cosine = np.asarray((self.vectors @ self.vector(observed).T).todense()).ravel()
        keep = np.ones(len(cosine), bool)
        if drop_case >= 0:
            keep[drop_case] = False
        if drop_disease >= 0:
            keep &= self.diseases != drop_disease
        np.maximum.at(out, self.diseases[keep], cosine[keep].astype(np.float32))
        return out
