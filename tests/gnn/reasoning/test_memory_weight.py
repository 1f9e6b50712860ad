"""kgdx's case-memory weight: what it adds to the logits, how it is fitted, that it is saved."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.reasoning.calibration import as_unseen, fit_memory_weight
from gnn.reasoning.pipeline import MEMORY_FEATURE, Patient, resolve_cases


@pytest.fixture
def restore_weight(small_run):
    reasoner, _, _ = small_run
    kept = float(reasoner.model.memory_weight)
    yield reasoner
    reasoner.model.memory_weight.fill_(kept)


def test_the_weight_adds_exactly_weight_times_the_memory_column(restore_weight):
    reasoner = restore_weight
    patient = Patient("p", reasoner.memory.observed[3], [], -1)
    evidence = reasoner.evidence(patient)
    assert evidence[:, MEMORY_FEATURE].max() > 0.5  # the case itself is in the memory
    fit_memory_weight(reasoner, [], [], fixed=0.0)
    without = reasoner.scores("kgdx", patient, evidence)
    assert fit_memory_weight(reasoner, [], [], fixed=1.5) == 1.5
    with_weight = reasoner.scores("kgdx", patient, evidence)
    assert np.allclose(with_weight - without, 1.5 * evidence[:, MEMORY_FEATURE], atol=1e-4)
    # diseases without training cases keep their scores
    unseen = ~reasoner.memory.seen
    assert np.allclose(with_weight[unseen], without[unseen], atol=1e-5)


def test_a_validation_of_unseen_diseases_keeps_the_weight_at_zero(restore_weight, cases):
    reasoner = restore_weight
    patients, _ = resolve_cases(reasoner.kg, cases[:400])
    unseen = [p for p in patients if p.disease >= 0 and not reasoner.memory.seen[p.disease]][:40]
    assert len(unseen) >= 10
    evidence = [reasoner.evidence(p) for p in unseen]
    # any weight can only lift seen competitors over these cases' diseases
    assert fit_memory_weight(reasoner, unseen, evidence) == 0.0
    assert float(reasoner.model.memory_weight) == 0.0


def test_the_fitted_weight_is_best_on_the_balanced_validation(restore_weight, cases):

    reasoner = restore_weight
    memory = reasoner.memory
    patients, _ = resolve_cases(reasoner.kg, cases[::7])
    val = [p for p in patients if p.disease >= 0 and p.observed][:150]
    evidence = [reasoner.evidence(p) for p in val]
    seen = [bool(memory.seen[p.disease]) for p in val]
    assert any(seen)
    seen_part = [(p, e) for p, e, s in zip(val, evidence, seen, strict=True) if s]
    unseen_part = [(p, e) for p, e, s in zip(val, evidence, seen, strict=True) if not s]
    unseen_part += [(p, as_unseen(e, p.disease, memory.seen)) for p, e in seen_part]

    def balanced(weight: float) -> float:
        fit_memory_weight(reasoner, [], [], fixed=weight)
        return float(
            np.mean(
                [
                    np.mean([1.0 / _rank(reasoner, p, e) for p, e in part])
                    for part in (seen_part, unseen_part)
                ]
            )
        )

    weight = fit_memory_weight(reasoner, val, evidence)
    assert weight >= 0.0
    best = balanced(weight)
    assert best >= balanced(0.0) - 1e-9
    assert best >= balanced(weight + 5.0) - 1e-9


def test_the_weight_is_saved_and_loaded_with_the_run(restore_weight, small_run, hpo_kg, tmp_path):
    from gnn.reasoning.run import load_run, save_run

    reasoner = restore_weight
    _, report, _ = small_run
    fit_memory_weight(reasoner, [], [], fixed=0.75)
    save_run(reasoner, tmp_path / "run", task="phenopackets", report=report, split={})
    loaded, _ = load_run(tmp_path / "run", hpo_kg)
    assert float(loaded.model.memory_weight) == pytest.approx(0.75)
    patient = Patient("p", reasoner.memory.observed[1], [], -1)
    assert np.allclose(loaded.scores("kgdx", patient), reasoner.scores("kgdx", patient), atol=1e-5)


def _rank(reasoner, patient, evidence) -> int:
    scores = reasoner.scores("kgdx", patient, evidence)
    return int((scores >= scores[patient.disease]).sum())


def testas_unseen_is_the_evidence_with_the_disease_left_out(small_run):
    from gnn.reasoning.pipeline import PRIOR_FEATURE

    reasoner, _, _ = small_run
    memory = reasoner.memory
    case = 5
    patient = Patient("p", memory.observed[case], [], int(memory.diseases[case]))
    others = memory.seen.copy()
    others[patient.disease] = False
    hidden = reasoner.evidence(
        patient, drop_disease=patient.disease, prior=(reasoner.prior, others)
    )
    derived = as_unseen(reasoner.evidence(patient), patient.disease, memory.seen)
    assert derived[patient.disease, MEMORY_FEATURE] == 0.0
    assert derived[patient.disease, PRIOR_FEATURE + 1] == 0.0
    assert np.allclose(derived, hidden, atol=1e-4)
