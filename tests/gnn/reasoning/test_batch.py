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


def test_evidence_batch_equals_evidence(small_run, patients):
    """The whole evidence (KG features, memory, seen-disease prior), also with per-patient
    drops and priors as in training."""
    reasoner, _, _ = small_run
    some = patients[:12] + patients[-3:]
    batched = reasoner.evidence_batch(some)
    one_by_one = np.stack([reasoner.evidence(p) for p in some])
    assert batched.shape == one_by_one.shape
    for column in range(one_by_one.shape[2]):
        assert np.allclose(batched[:, :, column], one_by_one[:, :, column], **TOLERANCE), column
    n = len(some)
    drop_case = [i % len(reasoner.memory.diseases) if i % 2 else -1 for i in range(n)]
    drop_disease = [int(reasoner.memory.diseases[i]) if i % 3 == 0 else -1 for i in range(n)]
    other = (reasoner.no_kg, np.roll(reasoner.memory.seen, 1))  # another prior, another seen set
    priors = [other if i % 2 else None for i in range(n)]
    batched = reasoner.evidence_batch(
        some, drop_case=drop_case, drop_disease=drop_disease, priors=priors
    )
    one_by_one = np.stack(
        [
            reasoner.evidence(p, drop_case=c, drop_disease=d, prior=q)
            for p, c, d, q in zip(some, drop_case, drop_disease, priors, strict=True)
        ]
    )
    assert np.allclose(batched, one_by_one, **TOLERANCE)
    rows = [3, int(reasoner.memory.diseases[0]), reasoner.kg.num_diseases - 1]
    for p in some[:4]:
        assert np.allclose(reasoner.evidence(p, rows=rows), reasoner.evidence(p)[rows])


def test_scores_and_ranks_batch_equal_one_by_one(small_run, patients):
    from gnn.reasoning.batch import rank_batch, scores_batch
    from gnn.reasoning.pipeline import METHODS
    from gnn.tasks import ranks_of

    reasoner, _, _ = small_run
    some = [p for p in patients if p.disease >= 0][:20]
    y_true = np.array([p.disease for p in some])
    ranks = rank_batch(reasoner, some, batch_size=7)  # batches of 7, 7 and 6
    done = []
    assert rank_batch(reasoner, some[:5], ["knn"], progress=done.append)["knn"].shape == (5,)
    assert done == [5]
    for method in METHODS:
        one_by_one = np.stack([reasoner.scores(method, p) for p in some])
        batched = scores_batch(reasoner, method, some)
        assert np.allclose(batched, one_by_one, **TOLERANCE), method
        assert np.array_equal(ranks[method], ranks_of(y_true, one_by_one)), method
    assert np.array_equal(reasoner.rank_all(some)["kgdx"], ranks["kgdx"])
    with pytest.raises(InputError, match="unknown method"):
        scores_batch(reasoner, "nope", some)
