"""Faithfulness of ``kgdx diagnose``'s explanation paths, measured on the trained model.

For a patient, its top diagnosis ``D`` under kgdx's model and the paths of
:func:`gnn.reasoning.explain_paths.disease_paths` to ``D`` (strongest first: ranked by each
finding's occlusion attribution on ``D``'s logit, so fidelity+ of the top path is close to the
best single removal by construction; the random removal is the comparison), with ``p(D | S)``
the calibrated probability :meth:`Reasoner.probabilities` gives ``D`` when the patient has only
the findings ``S`` (observed and excluded terms):

- **fidelity+ (k paths)** ``= p(D | all) - p(D | all minus the findings of the top-k paths)``:
  how much the model's score falls when what the explanation names is taken away;
- **fidelity+ (random)**: the same drop when as many findings drawn at random from the patient's
  own findings are removed, averaged over ``draws`` seeded draws. A faithful explanation names
  findings the model depends on more than on a random one: the **ratio** of the two means
  (target >= 3);
- **fidelity- (k paths)** ``= p(D | findings of the top-k paths only) / p(D | all)``: the share of
  the score the explanation alone keeps (1 = sufficient).

Every score is the model's own (kgdx's logits through its evidence features and GNN embeddings,
``Reasoner.scores("kgdx", ...)``), not the Resnik baseline the paths are built from. Patients
with fewer than two findings carry no random comparison (removing one finding is removing all)
and are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gnn.reasoning.explain_paths import _hpo_names, disease_paths
from gnn.reasoning.logits import PatientLogits, patient_logits
from gnn.reasoning.pipeline import Patient, Reasoner
from graph.errors import InputError


@dataclass
class FidelityConfig:
    """Settings of :func:`measure_fidelity`."""

    ks: tuple[int, ...] = (1, 3)  # top-k paths
    draws: int = 10  # random removals per patient and k
    seed: int = 0


@dataclass
class PatientFidelity:
    """Fidelity figures of one patient's top diagnosis."""

    id: str
    disease: int  # the top diagnosis (candidate index)
    correct: bool  # the top diagnosis is the patient's recorded disease
    findings: int  # observed + excluded terms
    probability: float  # p(D | all findings)
    plus: dict[int, float] = field(default_factory=dict)  # k -> drop, top-k path findings removed
    plus_random: dict[int, float] = field(default_factory=dict)  # k -> mean drop, random removal
    minus: dict[int, float] = field(default_factory=dict)  # k -> share kept, top-k paths only
    # the same drops measured on D's (temperature-scaled) logit instead of its probability
    plus_logit: dict[int, float] = field(default_factory=dict)
    plus_logit_random: dict[int, float] = field(default_factory=dict)


def _score(
    reasoner: Reasoner, patient: Patient, disease: int, logits: PatientLogits | None = None
) -> tuple[float, float]:
    """``(p(D), logit(D))`` of kgdx's model, as :meth:`Reasoner.probabilities` computes them
    (:func:`~gnn.reasoning.logits.patient_logits`, or ``logits`` already computed)."""
    logits = logits if logits is not None else patient_logits(reasoner, patient)
    return float(logits.probabilities()[disease]), float(logits.logits[disease])


def _with(patient: Patient, keep: set[int]) -> Patient:
    return Patient(
        patient.id,
        [t for t in patient.observed if t in keep],
        [t for t in patient.excluded if t in keep],
        patient.disease,
    )


def path_findings(
    reasoner: Reasoner,
    patient: Patient,
    disease: int,
    labels: list[str] | None = None,
    logits: PatientLogits | None = None,
) -> list[int]:
    """Term indices of the findings on ``disease``'s explanation paths, strongest path first
    (``logits``: the patient's, when already computed)."""
    labels = labels if labels is not None else _hpo_names(reasoner)
    index_of = {labels[t]: t for t in (*patient.observed, *patient.excluded)}
    out: list[int] = []
    for path in disease_paths(reasoner, patient, disease, labels, logits):
        term = index_of.get(path["finding"])
        if term is not None and term not in out:
            out.append(term)
    return out


def patient_fidelity(
    reasoner: Reasoner,
    patient: Patient,
    *,
    config: FidelityConfig | None = None,
    labels: list[str] | None = None,
) -> PatientFidelity | None:
    """Fidelity of ``patient``'s top diagnosis; ``None`` when it has fewer than two findings
    or no explanation path."""
    config = config or FidelityConfig()
    findings = list(dict.fromkeys([*patient.observed, *patient.excluded]))
    if len(findings) < 2:
        return None
    logits = patient_logits(reasoner, patient)  # its probabilities and its paths' occlusion
    disease = int(np.argmax(logits.probabilities()))
    full, full_logit = _score(reasoner, patient, disease, logits)
    ranked = path_findings(reasoner, patient, disease, labels, logits)
    if not ranked:
        return None
    # one generator per patient, seeded by the run seed and the patient id: the same draws
    # whichever other patients are measured
    rng = np.random.default_rng([config.seed, *patient.id.encode()])
    out = PatientFidelity(patient.id, disease, disease == patient.disease, len(findings), full)
    everything = set(findings)
    for k in config.ks:
        named = set(ranked[:k])
        m = len(named)
        p, logit = _score(reasoner, _with(patient, everything - named), disease)
        out.plus[k], out.plus_logit[k] = full - p, full_logit - logit
        drops, logit_drops = [], []
        for _ in range(config.draws):
            removed = set(rng.choice(findings, size=m, replace=False).tolist())
            p, logit = _score(reasoner, _with(patient, everything - removed), disease)
            drops.append(full - p)
            logit_drops.append(full_logit - logit)
        out.plus_random[k] = float(np.mean(drops))
        out.plus_logit_random[k] = float(np.mean(logit_drops))
        out.minus[k] = _score(reasoner, _with(patient, named), disease)[0] / max(full, 1e-12)
    return out


def _ratio(top: float, random: float) -> float:
    """``top / random``; when random removals do not lower the score on average (possible on a
    few cases), ``inf`` if the top paths' removal does, else ``nan`` (no better than random)."""
    if random > 0:
        return top / random
    return float("inf") if top > 0 else float("nan")


def measure_fidelity(
    reasoner: Reasoner,
    patients: Sequence[Patient],
    *,
    config: FidelityConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Mean fidelity over ``patients`` (see the module docstring).

    Returns:
        ``{"n", "skipped", "top1_correct", "ks", "draws", "seed", "plus": {k}, "plus_random":
        {k}, "ratio": {k}, "wins": {k}, "minus": {k}, "minus_median": {k}, "minus_capped": {k},
        "ratio_logit": {k}, "patients": [PatientFidelity]}``: ``wins`` is the share of patients
        whose top-k drop exceeds their mean random drop; ``minus`` is the mean share kept, which
        a few patients with a small full probability can push above 1, so ``minus_median`` and
        ``minus_capped`` (mean of ``min(1, share)``) are given too; ``ratio_logit`` is the
        fidelity+ ratio on the top diagnosis's logit.

    Raises:
        InputError: no patient, or a k below 1 or draws below 1.
    """
    config = config or FidelityConfig()
    if not patients:
        raise InputError("no patient to measure explanation fidelity on")
    if min(config.ks, default=0) < 1 or config.draws < 1:
        raise InputError("fidelity needs k >= 1 paths and draws >= 1 random removals")
    labels = _hpo_names(reasoner)
    measured = []
    for i, patient in enumerate(patients):
        result = patient_fidelity(reasoner, patient, config=config, labels=labels)
        if result is not None:
            measured.append(result)
        if progress:
            progress(i + 1)
    summary: dict = {
        "n": len(measured),
        "skipped": len(patients) - len(measured),
        "top1_correct": float(np.mean([r.correct for r in measured])) if measured else 0.0,
        "ks": list(config.ks),
        "draws": config.draws,
        "seed": config.seed,
        "plus": {},
        "plus_random": {},
        "ratio": {},
        "wins": {},
        "minus": {},
        "minus_median": {},
        "minus_capped": {},
        "ratio_logit": {},
        "patients": measured,
    }
    mean = lambda values: float(np.mean(values)) if measured else 0.0  # noqa: E731
    ratio = _ratio
    for k in config.ks:
        plus = mean([r.plus[k] for r in measured])
        rand = mean([r.plus_random[k] for r in measured])
        minus = np.array([r.minus[k] for r in measured])
        summary["plus"][k] = plus
        summary["plus_random"][k] = rand
        summary["ratio"][k] = ratio(plus, rand)
        summary["wins"][k] = mean([r.plus[k] > r.plus_random[k] for r in measured])
        summary["minus"][k] = mean(minus)
        summary["minus_median"][k] = float(np.median(minus)) if measured else 0.0
        summary["minus_capped"][k] = mean(np.minimum(minus, 1.0))
        summary["ratio_logit"][k] = ratio(
            mean([r.plus_logit[k] for r in measured]),
            mean([r.plus_logit_random[k] for r in measured]),
        )
    return summary
