"""Fidelity+ / fidelity- of the explanation paths, on the session's quick kgdx run."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.reasoning.fidelity import (
    FidelityConfig,
    measure_fidelity,
    path_findings,
    patient_fidelity,
)
from gnn.reasoning.pipeline import Patient, resolve_cases
from graph.errors import InputError


@pytest.fixture(scope="module")
def test_patients(small_run, cases):
    reasoner, _, split = small_run
    by_id = {c.id: c for c in cases}
    patients, _ = resolve_cases(reasoner.kg, [by_id[i] for i in split.test[::80][:8]])
    return [p for p in patients if len(p.observed) + len(p.excluded) >= 2]


def test_fidelity_is_the_trained_models_score_drop(small_run, test_patients):
    reasoner, _, _ = small_run
    patient = test_patients[0]
    result = patient_fidelity(reasoner, patient, config=FidelityConfig(ks=(1, 2), draws=4))
    probabilities = reasoner.probabilities(patient)
    assert result.disease == int(np.argmax(probabilities))
    assert result.probability == pytest.approx(float(probabilities.max()))
    named = path_findings(reasoner, patient, result.disease)
    assert named and set(named) <= set(patient.observed) | set(patient.excluded)
    # fidelity+ (k=1): the model's probability without the top path's finding, by hand
    without = Patient(
        patient.id,
        [t for t in patient.observed if t != named[0]],
        [t for t in patient.excluded if t != named[0]],
        patient.disease,
    )
    dropped = reasoner.probabilities(without)[result.disease]
    assert result.plus[1] == pytest.approx(result.probability - dropped, abs=1e-6)
    logit = (reasoner.scores("kgdx", patient) - reasoner.scores("kgdx", without))[result.disease]
    assert result.plus_logit[1] == pytest.approx(logit / reasoner.temperature, rel=1e-4, abs=1e-5)
    # fidelity- (k=2): the top two paths' findings alone
    only = Patient(
        patient.id,
        [t for t in patient.observed if t in named[:2]],
        [t for t in patient.excluded if t in named[:2]],
        patient.disease,
    )
    kept = reasoner.probabilities(only)[result.disease] / result.probability
    assert result.minus[2] == pytest.approx(kept, rel=1e-5)


def test_fidelity_summary_is_seeded(small_run, test_patients):
    reasoner, _, _ = small_run
    config = FidelityConfig(ks=(1, 3), draws=3, seed=7)
    first = measure_fidelity(reasoner, test_patients, config=config)
    again = measure_fidelity(reasoner, test_patients, config=config)
    assert first["n"] == len(test_patients) and first["skipped"] == 0
    assert first["plus"] == again["plus"] and first["plus_random"] == again["plus_random"]
    assert np.array_equal(
        list(first["ratio"].values()), list(again["ratio"].values()), equal_nan=True
    )
    for k in (1, 3):
        assert -1.0 <= first["plus"][k] <= 1.0 and -1.0 <= first["plus_random"][k] <= 1.0
        assert first["minus"][k] >= 0.0
    for k in (1, 3):
        plus, rand = first["plus"][k], first["plus_random"][k]
        if rand > 0:
            assert first["ratio"][k] == pytest.approx(plus / rand)
        else:  # random removals raise the score on average: no finite ratio
            assert first["ratio"][k] == (
                float("inf") if plus > 0 else pytest.approx(np.nan, nan_ok=True)
            )
    capped = np.mean([min(r.minus[3], 1.0) for r in first["patients"]])
    assert first["minus_capped"][3] == pytest.approx(capped)
    assert first["minus_capped"][3] <= min(first["minus"][3], 1.0) + 1e-9
    wins = np.mean([r.plus[1] > r.plus_random[1] for r in first["patients"]])
    assert first["wins"][1] == pytest.approx(wins)


def test_fidelity_skips_single_finding_patients_and_refuses_bad_settings(small_run, test_patients):
    reasoner, _, _ = small_run
    single = Patient("one", test_patients[0].observed[:1], [], -1)
    assert patient_fidelity(reasoner, single) is None
    with pytest.raises(InputError):
        measure_fidelity(reasoner, [])
    with pytest.raises(InputError):
        measure_fidelity(reasoner, test_patients, config=FidelityConfig(ks=(0,)))
