"""kgdx's temperature-scaled logits of one patient, and of its leave-one-finding-out variants.

The calibrated probabilities (:meth:`Reasoner.probabilities`) and the occlusion attributions
that rank explanation paths (:func:`gnn.reasoning.explain_paths.occlusion`) both come from
:func:`patient_logits`:

- on a tiny candidate set (at most :data:`LEAVE_OUT_BELOW` diseases, the chest KG's 21) and
  at most :data:`LEFT_OUT_AT_ONCE` distinct findings, the patient and each of its variants with
  one finding left out are scored as **one** batch (evidence and model call) against every
  candidate. There the cost is per call, not per row (scipy and torch overhead on tiny
  matrices: ~4.9 ms for a chest patient's 1 + 9 rows before the dense evidence of
  :mod:`gnn.reasoning.small_kg`, ~3 ms for its one row alone), so the probabilities and every
  finding's attribution cost one computation instead of two; a call that wants the
  probabilities only pays the variants too (at most ~1.4x, at 32 findings). Row 0 is the
  patient: its probabilities come from that row, wherever they are asked for (a diagnosis, the
  CLI, the explanation of one disease, fidelity), so they agree to the last bit, and they
  depend on the patient only (the batch is its findings' variants, in their order), never on
  other patients;
- otherwise (the HPO KG's 8,469 candidates, or more findings) the patient alone is scored
  (:meth:`Reasoner.scores`), and an occlusion computes its variants' evidence for the
  explained diseases only (:func:`variant_logits`: all its rows at once below
  :data:`BATCHED_EVIDENCE_BELOW` candidates, those rows only above).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gnn.reasoning.pipeline import Patient, Reasoner, _batch, inference_mode

# below this many candidate diseases variants' evidence is computed as one batch (all rows)
BATCHED_EVIDENCE_BELOW = 1024
# at most this many candidates: the patient's own scoring includes its variants (a batch costs
# about what one row does there; with more candidates each row costs its own)
LEAVE_OUT_BELOW = 128
# at most this many distinct findings are left out together with the patient's own scoring:
# 1 + 32 rows cost ~1.3x one row on the chest model; a larger patient (up to 2,000 findings,
# Settings.max_patient_findings) would make the batch quadratic in its findings
LEFT_OUT_AT_ONCE = 32


def without(patient: Patient, term: int) -> Patient:
    """``patient`` with ``term`` removed from its observed and its excluded findings."""
    return Patient(
        patient.id,
        [q for q in patient.observed if q != term],
        [e for e in patient.excluded if e != term],
        patient.disease,
    )


@dataclass(frozen=True)
class PatientLogits:
    """One patient's ``[C]`` temperature-scaled logits, and when computed with them, its
    variants' (``left_out[t]``: the ``[C]`` logits without finding ``t``)."""

    patient: Patient
    logits: np.ndarray
    left_out: dict[int, np.ndarray] | None

    def probabilities(self) -> np.ndarray:
        """Calibrated ``[C]`` probabilities (softmax of :attr:`logits`)."""
        logits = self.logits - self.logits.max()
        p = np.exp(logits)
        return p / p.sum()


def patient_logits(reasoner: Reasoner, patient: Patient) -> PatientLogits:
    """:class:`PatientLogits` of ``patient``: with its variants' when the candidate set is
    small and the patient has at most :data:`LEFT_OUT_AT_ONCE` distinct findings (one batch)."""
    if not leaves_out_together(reasoner, patient):
        logits = reasoner.scores("kgdx", patient) / reasoner.temperature
        return PatientLogits(patient, logits, None)
    findings = list(dict.fromkeys([*patient.observed, *patient.excluded]))
    variants = [patient] + [without(patient, t) for t in findings]
    every = np.arange(reasoner.kg.num_diseases)
    logits = variant_logits(reasoner, variants, every)
    left_out = {t: logits[1 + i] for i, t in enumerate(findings)}
    return PatientLogits(patient, logits[0], left_out)


def leaves_out_together(reasoner: Reasoner, patient: Patient) -> bool:
    """Whether :func:`patient_logits` scores the patient's variants with it."""
    findings = len(set(patient.observed) | set(patient.excluded))
    return reasoner.kg.num_diseases <= LEAVE_OUT_BELOW and findings <= LEFT_OUT_AT_ONCE


def occlusion(
    reasoner: Reasoner,
    patient: Patient,
    diseases: Sequence[int],
    terms: Sequence[int],
    logits: PatientLogits | None = None,
) -> np.ndarray:
    """``[len(terms), len(diseases)]`` leave-one-finding-out attributions: each disease's logit
    with all the patient's findings minus its logit with ``terms[i]`` removed (from observed or
    excluded; 0 for a term the patient does not have). Positive: the finding raises the
    disease's score; negative: it counts against. ``logits``: the patient's
    :func:`patient_logits`, when its probabilities were computed from them (its variants'
    logits are then read, not computed again)."""
    if not terms or not diseases:
        return np.zeros((len(terms), len(diseases)), np.float64)
    if logits is None and leaves_out_together(reasoner, patient):
        logits = patient_logits(reasoner, patient)
    columns = np.asarray(list(diseases), dtype=np.int64)
    if logits is None or logits.left_out is None:
        variants = [patient] + [without(patient, t) for t in terms]
        scored = variant_logits(reasoner, variants, columns)
        return (scored[0][None, :] - scored[1:]).astype(np.float64)
    base = logits.logits[columns]
    rows = [base - logits.left_out.get(t, logits.logits)[columns] for t in terms]
    return np.asarray(rows, dtype=np.float64)


def disease_logits(reasoner: Reasoner, patient: Patient, diseases: Sequence[int]) -> np.ndarray:
    """kgdx's temperature-scaled logits of ``diseases`` only (each candidate's score depends on
    its own evidence row and embedding, so this equals the matching entries of
    ``Reasoner.scores("kgdx", patient) / temperature``)."""
    return variant_logits(reasoner, [patient], diseases)[0]


def variant_logits(
    reasoner: Reasoner, patients: Sequence[Patient], diseases: Sequence[int]
) -> np.ndarray:
    """``[len(patients), len(diseases)]``: :func:`disease_logits` of each patient, one model
    call (a patient's leave-one-out variants)."""
    if len(patients) > 1 and reasoner.kg.num_diseases <= BATCHED_EVIDENCE_BELOW:
        # a small candidate set: every variant's whole evidence in one batched computation
        # beats one rows-only computation per variant
        rows = np.asarray(list(diseases), dtype=np.int64)
        evidence = reasoner.evidence_batch(patients)[:, rows]
    else:
        evidence = np.stack([evidence_rows(reasoner, p, diseases) for p in patients])
    batch = _batch(patients, torch.as_tensor(np.ascontiguousarray(evidence)))
    candidates = torch.as_tensor(list(diseases), dtype=torch.long).expand(len(patients), -1)
    inference_mode(reasoner.model)
    with torch.no_grad():
        logits = reasoner.model.score(reasoner.embeddings(), batch, candidates).numpy()
    return logits / reasoner.temperature


def evidence_rows(reasoner: Reasoner, patient: Patient, diseases: Sequence[int]) -> np.ndarray:
    """``Reasoner.evidence(patient)[diseases]``, computed for those rows only (the occlusion loop
    needs a few candidates' evidence per left-out finding, not all 8,469)."""
    return reasoner.evidence(patient, rows=np.asarray(list(diseases), dtype=np.int64))
