"""Faithfulness of ``kgdx diagnose``'s explanation paths, measured on the trained model.

For a patient, its top diagnosis ``D`` under kgdx's model and the paths of
:func:`gnn.reasoning.explain_paths.disease_paths` to ``D`` (strongest first), with ``p(D | S)``
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


def _probability(reasoner: Reasoner, patient: Patient, disease: int) -> float:
    return float(reasoner.probabilities(patient)[disease])


def _with(patient: Patient, keep: set[int]) -> Patient:
    return Patient(
        patient.id,
        [t for t in patient.observed if t in keep],
        [t for t in patient.excluded if t in keep],
        patient.disease,
    )


def path_findings(
    reasoner: Reasoner, patient: Patient, disease: int, labels: list[str] | None = None
) -> list[int]:
    """Term indices of the findings on ``disease``'s explanation paths, strongest path first."""
    labels = labels if labels is not None else _hpo_names(reasoner)
    index_of = {labels[t]: t for t in (*patient.observed, *patient.excluded)}
    out: list[int] = []
    for path in disease_paths(reasoner, patient, disease, labels):
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
    probabilities = reasoner.probabilities(patient)
    disease = int(np.argmax(probabilities))
    full = float(probabilities[disease])
    ranked = path_findings(reasoner, patient, disease, labels)
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
        out.plus[k] = full - _probability(reasoner, _with(patient, everything - named), disease)
        drops = []
        for _ in range(config.draws):
            removed = set(rng.choice(findings, size=m, replace=False).tolist())
            drops.append(
                full - _probability(reasoner, _with(patient, everything - removed), disease)
            )
        out.plus_random[k] = float(np.mean(drops))
        out.minus[k] = _probability(reasoner, _with(patient, named), disease) / max(full, 1e-12)
    return out


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
        {k}, "ratio": {k}, "minus": {k}, "patients": [PatientFidelity]}``.

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
        "minus": {},
        "patients": measured,
    }
    for k in config.ks:
        plus = float(np.mean([r.plus[k] for r in measured])) if measured else 0.0
        rand = float(np.mean([r.plus_random[k] for r in measured])) if measured else 0.0
        summary["plus"][k] = plus
        summary["plus_random"][k] = rand
        summary["ratio"][k] = plus / rand if rand > 0 else float("inf")
        summary["minus"][k] = float(np.mean([r.minus[k] for r in measured])) if measured else 0.0
    return summary
