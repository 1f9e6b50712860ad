"""Batched inference: scores and ranks of many patients against every candidate at once.

The per-patient path (:meth:`Reasoner.evidence`, :meth:`Reasoner.scores`) computes one
patient's evidence with column slices of the KG matrices and scores it with one model call;
here ``B`` patients share each step: :meth:`Similarity.features_batch` and
:meth:`CaseMemory.similarity_batch` (sparse products over the patients' terms, see their
docstrings), :meth:`Reasoner.evidence_batch`, then one model call per chunk of patients (the
model's ``score`` takes a batch of patients x candidates). The values are the per-patient ones
(``tests/gnn/reasoning/test_batch.py`` asserts it on real data), so evaluation, training and
``bench/reasoning.py`` use this path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from gnn.tasks import ranks_of
from graph.errors import InputError

if TYPE_CHECKING:
    from gnn.reasoning.pipeline import Patient, Reasoner

BATCH_SIZE = 128  # patients per evidence batch: ~50 MB of [B, C, F] evidence with 8,469 diseases
SCORE_CHUNK = 4  # patients per model call: its [b, C, 33] first-layer output stays in cache (~4 MB)


@torch.no_grad()
def scores_batch(
    reasoner: Reasoner,
    method: str,
    patients: Sequence[Patient],
    evidence: np.ndarray | None = None,
) -> np.ndarray:
    """``[B, C]`` scores of ``method`` for each patient: ``Reasoner.scores(method, p)`` stacked.

    ``evidence``: ``[B, C, NUM_FEATURES]`` from :meth:`Reasoner.evidence_batch` (kgdx only),
    computed here when not given."""
    from gnn.reasoning.pipeline import METHODS, _batch

    observed = [p.observed for p in patients]
    num = reasoner.kg.num_diseases
    if method == "phenomizer":
        return reasoner.sim.resnik_batch(observed)
    if method == "knn":
        return reasoner.memory.similarity_batch(observed)
    if method == "no_kg":
        model = reasoner.no_kg
        model.eval()
        return model.score_all(model.encode(), _batch(patients, None), torch.arange(num)).numpy()
    if method != "kgdx":
        raise InputError(f"unknown method {method!r}; expected one of {METHODS}")
    if evidence is None:
        evidence = reasoner.evidence_batch(patients)
    model, embeddings = reasoner.model, reasoner.embeddings()
    model.eval()
    out = np.zeros((len(patients), num), np.float32)
    for start in range(0, len(patients), SCORE_CHUNK):
        stop = min(start + SCORE_CHUNK, len(patients))
        features = torch.as_tensor(np.ascontiguousarray(evidence[start:stop]))
        batch = _batch(patients[start:stop], features)
        out[start:stop] = model.score_all(embeddings, batch, torch.arange(num)).numpy()
    return out


def rank_batch(
    reasoner: Reasoner,
    patients: Sequence[Patient],
    methods: Sequence[str] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Pessimistic rank of each patient's disease under each method (all by default), in
    batches of ``batch_size`` patients; ``progress(done)`` after each batch."""
    from gnn.reasoning.pipeline import METHODS

    methods = METHODS if methods is None else methods
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}")
    ranks = {m: np.zeros(len(patients), np.int64) for m in methods}
    for start in range(0, len(patients), batch_size):
        chunk = list(patients[start : start + batch_size])
        y_true = np.array([p.disease for p in chunk], dtype=np.int64)
        evidence = reasoner.evidence_batch(chunk) if "kgdx" in methods else None
        for m in methods:
            scores = scores_batch(reasoner, m, chunk, evidence)
            ranks[m][start : start + len(chunk)] = ranks_of(y_true, scores)
        if progress:
            progress(start + len(chunk))
    return ranks
