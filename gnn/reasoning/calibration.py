"""Calibration after training: kgdx's case-memory weight (:func:`fit_memory_weight`) and the
softmax temperature (:func:`fit_temperature`), both on the validation part."""

from __future__ import annotations

import numpy as np

from gnn.reasoning.pipeline import MEMORY_FEATURE, PRIOR_FEATURE, PRIOR_FLOOR, Reasoner
from gnn.tasks import ranks_of

MEMORY_WEIGHT_GRID = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0)  # x the validation temperature


def _val_logits(reasoner: Reasoner, val, val_evidence) -> np.ndarray:
    return np.stack([reasoner.scores("kgdx", p, e) for p, e in zip(val, val_evidence, strict=True)])


def fit_memory_weight(reasoner: Reasoner, val, val_evidence, fixed: float | None = None) -> float:
    """Set and return kgdx's case-memory weight (``KGDiagnosisModel.memory_weight``).

    kgdx's scorer trains on patients simulated from every disease's annotations besides the real
    cases, so it learns a lower base rate of diseases with training cases than real patients
    have: on the patient split it trailed the no-KG model on seen diseases. Adding
    ``w * memory(p, D)`` (the best cosine to D's training cases, 0 for a disease without cases)
    restores it, at a cost for patients whose disease has no training case: seen diseases that
    resemble them rise. ``w`` is chosen from :data:`MEMORY_WEIGHT_GRID` (in units of the
    validation temperature) to maximise the mean of two validation MRRs, each counting equally:
    the cases of seen diseases, and *unseen* ones, the validation cases of unseen diseases plus
    every seen-disease case again with its disease hidden (:func:`as_unseen`: its memory and
    prior columns as if no training case had it), so the cost is measured on hundreds of cases,
    not on the few unseen ones a patient split has. The smallest weight on ties. ``fixed``: use
    that weight instead (0 turns the term off). 0 without validation cases.
    """
    model = reasoner.model
    if getattr(model, "memory_column", -1) < 0:
        return 0.0
    if fixed is not None or not val:
        weight = float(fixed or 0.0)
        model.memory_weight.fill_(weight)
        return weight
    model.memory_weight.zero_()
    seen_mask = reasoner.memory.seen
    y_true = np.array([p.disease for p in val], dtype=np.int64)
    seen = seen_mask[y_true]
    unseen = [(p, e) for p, e, s in zip(val, val_evidence, seen, strict=True) if not s]
    unseen += [
        (p, as_unseen(e, p.disease, seen_mask))
        for p, e, s in zip(val, val_evidence, seen, strict=True)
        if s
    ]
    parts = []
    for members in ([(p, e) for p, e, s in zip(val, val_evidence, seen, strict=True) if s], unseen):
        if members:
            patients, evidence = zip(*members, strict=True)
            logits = _val_logits(reasoner, patients, evidence)
            memory = np.stack([e[:, model.memory_column] for e in evidence])
            parts.append((logits, memory, np.array([p.disease for p in patients])))
    scale = temperature_of(
        np.concatenate([part[0] for part in parts]), np.concatenate([part[2] for part in parts])
    )
    best = (-1.0, 0.0)
    for g in MEMORY_WEIGHT_GRID:
        balanced = float(
            np.mean([np.mean(1.0 / ranks_of(y, z + g * scale * m)) for z, m, y in parts])
        )
        if balanced > best[0] + 1e-9:
            best = (balanced, g * scale)
    model.memory_weight.fill_(best[1])
    return float(best[1])


def as_unseen(evidence: np.ndarray, disease: int, seen: np.ndarray) -> np.ndarray:
    """A seen-disease case's evidence as if no training case had its disease: the case-memory
    similarity to it 0 (all its cases dropped), the seen flag 0, and the seen-disease prior a
    softmax over the other seen diseases (the disease at :data:`PRIOR_FLOOR`, the others'
    log-probabilities renormalised without it)."""
    out = evidence.copy()
    out[disease, MEMORY_FEATURE] = 0.0
    prior = out[:, PRIOR_FEATURE]
    dropped = float(np.exp(prior[disease]))
    others = seen.copy()
    others[disease] = False
    if dropped < 1.0:
        prior[others] = np.maximum(prior[others] - np.log1p(-dropped), PRIOR_FLOOR)
    prior[disease] = PRIOR_FLOOR
    out[disease, PRIOR_FEATURE + 1] = 0.0
    return out


def fit_temperature(reasoner: Reasoner, val, val_evidence) -> float:
    """The softmax temperature that minimises the validation NLL (Guo et al., ICML 2017)."""
    if not val:
        return 1.0
    return temperature_of(
        _val_logits(reasoner, val, val_evidence),
        np.array([p.disease for p in val], dtype=np.int64),
    )


def temperature_of(logits: np.ndarray, y_true: np.ndarray) -> float:
    right = logits[np.arange(len(y_true)), y_true]
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.1), np.log(10.0), 61)):
        z = logits / t
        m = z.max(axis=1)
        nll = float(np.mean(m + np.log(np.exp(z - m[:, None]).sum(axis=1)) - right / t))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t
