"""The chest KG's batched evidence as dense products (``gnn/reasoning/small_kg.py``): the same
values as the sparse path and as one patient at a time, every column, with the edge cases;
rows that do not depend on their batch; the HPO KG's size stays sparse."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.reasoning import small_kg
from gnn.reasoning.logits import without
from gnn.reasoning.memory import CaseMemory
from gnn.reasoning.patients import resolved_patients
from gnn.reasoning.pipeline import Patient
from gnn.reasoning.similarity import FEATURES, Similarity
from gnn.reasoning.small_kg import DenseTerms, fits
from graph.subgraph import patient_subgraph


@pytest.fixture(scope="module")
def patients(chest_run, chest_store):
    """Test patients, each one's leave-one-out variants, and the edge cases."""
    ids = chest_run.splits["test"][:8]
    found = resolved_patients(chest_run, [patient_subgraph(chest_store, i) for i in ids])
    first = found[0]
    variants = [without(first, t) for t in [*first.observed, *first.excluded]]
    return (
        found
        + variants
        + [
            Patient("no-observed", [], first.excluded, -1),
            Patient("no-excluded", first.observed, [], -1),
            Patient("repeated", first.observed + first.observed[:2], first.excluded, -1),
            Patient("nothing", [], [], -1),
        ]
    )


@pytest.fixture(scope="module")
def sparse(chest_kg):
    """A second similarity of the same KG that keeps the sparse path."""
    similarity = Similarity(chest_kg)
    similarity.dense = None
    return similarity


def test_the_chest_kg_is_dense_and_the_hpo_kg_is_not(chest_run):
    kg = chest_run.reasoner.kg
    assert isinstance(chest_run.reasoner.sim.dense, DenseTerms)
    assert fits(kg.num_terms, kg.num_diseases)
    assert not fits(19_000, 8_469)  # the default HPO KG's size
    assert not fits(1_025, 1)  # too many terms (the ancestor closure)
    assert not fits(1_000, 300)  # few enough terms, but their rows would be large
    dense = chest_run.reasoner.sim.dense
    assert dense.takes(33) and not dense.takes(20_000)  # a diagnosis's batch, a huge one
    assert chest_run.reasoner.memory._dense_vectors is not None


def test_dense_features_equal_the_sparse_ones(chest_run, sparse, patients):
    dense_similarity = chest_run.reasoner.sim
    observed, excluded = [p.observed for p in patients], [p.excluded for p in patients]
    dense = dense_similarity.features_batch(observed, excluded)
    by_sparse = sparse.features_batch(observed, excluded)
    one_by_one = np.stack([sparse.features(p.observed, p.excluded) for p in patients])
    assert (
        dense.shape
        == by_sparse.shape
        == (len(patients), chest_run.reasoner.kg.num_diseases, len(FEATURES))
    )
    for column, name in enumerate(FEATURES):
        assert np.allclose(dense[..., column], by_sparse[..., column], rtol=1e-6, atol=1e-6), name
        assert np.allclose(dense[..., column], one_by_one[..., column], atol=1e-5), name
        if name not in ("not_contradicted",):  # the seed KG has no NOT annotation
            assert np.abs(dense[..., column]).max() > 0, name
    assert not dense[-1, :, :2].any()  # no findings: no Resnik match


def test_dense_rows_do_not_depend_on_their_batch(chest_run, patients):
    similarity = chest_run.reasoner.sim
    observed, excluded = [p.observed for p in patients], [p.excluded for p in patients]
    whole = similarity.features_batch(observed, excluded)
    parts = [
        similarity.features_batch(observed[i : i + 3], excluded[i : i + 3])
        for i in range(0, len(patients), 3)
    ]
    assert np.array_equal(whole, np.concatenate(parts))
    memory = chest_run.reasoner.memory
    cosine = memory.similarity_batch(observed)
    assert np.array_equal(cosine[:5], memory.similarity_batch(observed[:5]))


def test_dense_memory_equals_the_sparse_memory(chest_run, sparse, patients):
    trained = chest_run.reasoner.memory
    plain = CaseMemory(sparse, trained.observed, list(trained.diseases))
    observed = [p.observed for p in patients]
    n = len(patients)
    drop_case = np.where(np.arange(n) % 3 == 0, np.arange(n) % len(trained.diseases), -1)
    drop_disease = np.where(np.arange(n) % 4 == 1, trained.diseases[np.arange(n) % 5], -1)
    for drops in ({}, {"drop_case": drop_case, "drop_disease": drop_disease}):
        dense = trained.similarity_batch(observed, **drops)
        assert np.allclose(dense, plain.similarity_batch(observed, **drops), atol=1e-6)
        assert dense.max() > 0.5
    one = [trained.similarity(o) for o in observed]
    assert np.allclose(trained.similarity_batch(observed), np.stack(one), atol=1e-5)


def test_a_batch_too_large_goes_sparse_with_the_same_values(chest_run, patients, monkeypatch):
    similarity, memory = chest_run.reasoner.sim, chest_run.reasoner.memory
    observed, excluded = [p.observed for p in patients], [p.excluded for p in patients]
    dense = similarity.features_batch(observed, excluded)
    cosine = memory.similarity_batch(observed)
    terms = similarity.kg.num_terms
    monkeypatch.setattr(small_kg, "DENSE_BATCH_STEPS", 3 * terms * terms)  # 3 rows at most
    assert similarity.dense.takes(3) and not similarity.dense.takes(4)
    sparse = similarity.features_batch(observed, excluded)
    assert not np.array_equal(sparse, dense)  # the other path ran
    assert np.allclose(sparse, dense, rtol=1e-6, atol=1e-6)
    assert np.allclose(memory.similarity_batch(observed), cosine, atol=1e-6)
    assert np.array_equal(similarity.features_batch(observed[:3], excluded[:3]), dense[:3])
