"""The batched inference path equals the per-patient one, on real cases and the real HPO KG.

Every evidence column, every method's scores and every rank: a feature added to the per-patient
path and not to the batched one (or the reverse) fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from gnn.reasoning.memory import CaseMemory
from gnn.reasoning.pipeline import Patient, resolve_cases
from graph.errors import InputError

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def patients(hpo_kg, cases):
    """Real cases plus the edge cases: no observed term, no excluded term, a repeated term."""
    resolved, _ = resolve_cases(hpo_kg, cases[5::97][:48])
    resolved = [p for p in resolved if p.observed]
    first = resolved[0]
    return resolved + [
        Patient("no-observed", [], first.excluded or first.observed[:1], first.disease),
        Patient("no-excluded", first.observed, [], first.disease),
        Patient("repeated", first.observed + first.observed[:2], first.excluded, first.disease),
    ]


@pytest.fixture(scope="module")
def memory(similarity, hpo_kg, cases):
    train, _ = resolve_cases(hpo_kg, cases[::7])
    train = [p for p in train if p.disease >= 0 and p.observed]
    return CaseMemory(similarity, [p.observed for p in train], [p.disease for p in train])


def test_features_batch_equals_features(similarity, patients):
    similarity._best_cache.clear()  # the batch computes its best matches itself
    batched = similarity.features_batch(
        [p.observed for p in patients], [p.excluded for p in patients]
    )
    similarity._best_cache.clear()
    one_by_one = np.stack([similarity.features(p.observed, p.excluded) for p in patients])
    assert batched.shape == one_by_one.shape
    for column in range(one_by_one.shape[2]):
        assert np.allclose(batched[:, :, column], one_by_one[:, :, column], **TOLERANCE), column
    assert np.abs(one_by_one[:, :, :2]).max() > 0  # the Resnik columns are not trivially 0


def test_features_batch_does_not_depend_on_the_batch(similarity, patients):
    obs, exc = [p.observed for p in patients], [p.excluded for p in patients]
    whole = similarity.features_batch(obs, exc)
    similarity._best_cache.clear()
    halves = np.concatenate(
        [similarity.features_batch(obs[:5], exc[:5]), similarity.features_batch(obs[5:], exc[5:])]
    )
    assert np.array_equal(whole, halves)
    assert similarity.features_batch([], []).shape == (0, whole.shape[1], whole.shape[2])
    with pytest.raises(InputError, match="one each per patient"):
        similarity.features_batch(obs[:2], exc[:1])


def test_features_of_some_rows_are_those_rows(similarity, patients, memory):
    rows = [0, int(memory.diseases[0]), similarity.kg.num_diseases - 1, 17]
    for p in patients[:6] + patients[-3:]:
        full = similarity.features(p.observed, p.excluded)
        assert np.allclose(similarity.features(p.observed, p.excluded, rows=rows), full[rows])
        assert np.allclose(
            memory.similarity(p.observed, rows=rows), memory.similarity(p.observed)[rows]
        )


def test_memory_similarity_batch_equals_similarity(memory, patients):
    observed = [p.observed for p in patients]
    n = len(patients)
    drop_case = np.where(np.arange(n) % 3 == 0, np.arange(n) % len(memory.diseases), -1)
    drop_disease = np.where(np.arange(n) % 4 == 1, memory.diseases[np.arange(n) % 5], -1)
    batched = memory.similarity_batch(observed, drop_case=drop_case, drop_disease=drop_disease)
    one_by_one = np.stack(
        [
            memory.similarity(o, drop_case=int(c), drop_disease=int(d))
            for o, c, d in zip(observed, drop_case, drop_disease, strict=True)
        ]
    )
    assert np.allclose(batched, one_by_one, **TOLERANCE)
    assert one_by_one.max() > 0.5
    # leaving a case out matters (a case's own disease is among the best matches)
    plain = memory.similarity_batch(observed)
    assert not np.allclose(plain, batched)
