"""Every registered reasoning model runs forward and backward on the chest KG and can fit it."""

from __future__ import annotations

import pytest
import torch

from gnn.models import REASONING_MODELS, PatientBatch, kg_graph, resolve_model
from graph.errors import ConfigError


def _batch(kg, n: int = 6) -> tuple[PatientBatch, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    observed = torch.randint(0, kg.num_terms, (n, 3), generator=generator)
    excluded = torch.full((n, 1), -1, dtype=torch.long)
    candidates = torch.arange(kg.num_diseases).expand(n, -1)
    return PatientBatch(observed=observed, excluded=excluded, features=torch.zeros(0)), candidates


@pytest.mark.parametrize("name", sorted(REASONING_MODELS))
def test_forward_backward_and_a_few_steps_lower_the_loss(name, chest_kg):
    from gnn.reasoning.pipeline import NUM_FEATURES

    torch.manual_seed(0)
    common = {"num_terms": chest_kg.num_terms, "num_diseases": chest_kg.num_diseases}
    if name == "free":
        model = resolve_model(name, hidden=8, **common)
    else:
        model = resolve_model(name, num_features=NUM_FEATURES, hidden=8, heads=2, **common)
    graph = kg_graph(chest_kg)
    batch, candidates = _batch(chest_kg)
    if name != "free":
        batch.features = torch.randn(len(candidates), chest_kg.num_diseases, NUM_FEATURES)
    target = torch.arange(len(candidates)) % chest_kg.num_diseases
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(12):
        embeddings = model.encode() if name == "free" else model.encode(graph)
        logits = model.score(embeddings, batch, candidates)
        assert logits.shape == (len(candidates), chest_kg.num_diseases)
        loss = torch.nn.functional.cross_entropy(logits, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert losses[-1] < losses[0]


def test_registry_resolves_names_and_instances(chest_kg):
    model = resolve_model("free", hidden=4, num_terms=3, num_diseases=2)
    assert resolve_model(model) is model
    with pytest.raises(ConfigError, match="unknown model"):
        resolve_model("gat")
