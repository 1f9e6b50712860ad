"""The seen-disease prior, its cross-fitting, the simulation's shape and the card version."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gnn.reasoning.free_fit import fit_prior
from gnn.reasoning.pipeline import (
    MEMORY_FEATURE,
    NUM_FEATURES,
    PRIOR_FEATURE,
    PRIOR_FLOOR,
    Patient,
    TrainConfig,
    resolve_cases,
)
from graph.errors import ModelError


def test_prior_features_cover_seen_diseases_only(small_run):
    reasoner, _, _ = small_run
    seen = reasoner.memory.seen
    case = reasoner.memory.observed[0]
    evidence = reasoner.evidence(Patient("p", case, [], -1))
    assert evidence.shape == (reasoner.kg.num_diseases, NUM_FEATURES)
    prior, flag = evidence[:, PRIOR_FEATURE], evidence[:, PRIOR_FEATURE + 1]
    assert np.array_equal(flag, seen.astype(np.float32))
    assert np.all(prior[~seen] == PRIOR_FLOOR)
    # a log-softmax over the seen diseases (up to the clamp at the floor)
    assert np.exp(prior[seen]).sum() == pytest.approx(1.0, abs=1e-3)
    # the training case's own disease is among the prior's favourites
    disease = int(reasoner.memory.diseases[0])
    assert (prior[seen] > prior[disease]).sum() < 0.05 * seen.sum()


def test_excluded_findings_never_move_the_prior(small_run):
    reasoner, _, _ = small_run
    observed = reasoner.memory.observed[1]
    plain = reasoner.prior_features(Patient("p", observed, [], -1))
    with_excluded = reasoner.prior_features(Patient("p", observed, [5, 6, 7], -1))
    assert np.array_equal(plain, with_excluded)


def test_cross_fitted_folds_never_saw_their_cases(small_run, hpo_kg, cases):
    reasoner, _, split = small_run
    by_id = {c.id: c for c in cases}
    train, _ = resolve_cases(hpo_kg, [by_id[i] for i in split.train[::10]])
    train = [p for p in train if p.disease >= 0 and p.observed][:200]
    config = TrainConfig.quick(no_kg_epochs=1)
    from gnn.models import resolve_model

    prior = resolve_model("free", num_terms=hpo_kg.num_terms, num_diseases=hpo_kg.num_diseases)
    folds, priors, _ = fit_prior(prior, hpo_kg, train, [], config, np.random.default_rng(0))
    assert len(priors) == config.prior_folds and set(folds.tolist()) <= set(range(len(priors)))
    counts: dict[int, int] = {}
    for p in train:
        counts[p.disease] = counts.get(p.disease, 0) + 1
    held_out_whole = 0
    for i, p in enumerate(train):
        _, seen = priors[folds[i]]
        others = [j for j, q in enumerate(train) if q.disease == p.disease and folds[j] != folds[i]]
        # a fold model knows a disease exactly when a case of it is outside the fold
        assert seen[p.disease] == bool(others)
        held_out_whole += not seen[p.disease]
        if counts[p.disease] == 1:
            assert not seen[p.disease]
    assert 0 < held_out_whole < len(train)


def test_simulated_patients_look_like_case_reports(similarity):
    from gnn.reasoning.simulate import SimulationConfig, simulate_patient

    rng = np.random.default_rng(0)
    diseases = rng.choice(similarity.kg.num_diseases, 300, replace=False)
    sizes, with_excluded, exact = [], 0, []
    for d in diseases:
        observed, excluded = simulate_patient(similarity, int(d), rng, SimulationConfig())
        annotated = set(similarity.frequency.getrow(int(d)).indices.tolist())
        if not annotated:
            continue
        assert observed and not set(observed) & set(excluded)
        sizes.append(len(observed))
        with_excluded += bool(excluded)
        exact.append(np.mean([t in annotated for t in observed]))
    assert 4 <= np.median(sizes) <= 10 and max(sizes) > 12
    assert 0.6 < with_excluded / len(sizes) < 0.95
    assert 0.55 < np.mean(exact) < 0.9  # the rest: ancestors, descendants, related, noise
    again = simulate_patient(similarity, 7, np.random.default_rng(3), SimulationConfig())
    assert again == simulate_patient(similarity, 7, np.random.default_rng(3), SimulationConfig())


def test_old_card_version_asks_for_a_retrain(small_run, hpo_kg, tmp_path):
    from gnn.reasoning.run import load_run, save_run

    reasoner, report, _ = small_run
    save_run(reasoner, tmp_path / "run", task="phenopackets", report=report, split={})
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    card["card_version"] = 1
    (tmp_path / "run" / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="version 1.*retrain"):
        load_run(tmp_path / "run", hpo_kg)


def test_memory_feature_index_is_the_case_memory(small_run):
    reasoner, _, _ = small_run
    case = reasoner.memory.observed[2]
    p = Patient("p", case, [], -1)
    assert np.allclose(
        reasoner.evidence(p)[:, MEMORY_FEATURE], reasoner.memory.similarity(case), atol=1e-6
    )
