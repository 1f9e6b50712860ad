"""Every registered model runs forward and backward on the cohort graph and can fit it."""

from __future__ import annotations

import pytest
import torch

from gnn.models import MODELS, PatientDiseaseModel, build_model
from gnn.train import _make_model
from graph.errors import ConfigError


def _config(graph, encoder: str) -> dict:
    data = graph.data
    return {
        "encoder": encoder,
        "hidden": 16,
        "num_layers": 2,
        "heads": 2,
        "dropout": 0.0,
        "metadata": [list(data.metadata()[0]), [list(e) for e in data.metadata()[1]]],
        "num_nodes": {nt: int(data[nt].num_nodes) for nt in data.node_types},
        "feature_dims": {nt: int(data[nt].x.size(1)) for nt in data.node_types},
        "candidate_index": [0, 1, 2],
    }


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_backward_and_a_few_steps_lower_the_loss(name, cohort_graph):
    torch.manual_seed(0)
    model = _make_model(_config(cohort_graph, name))
    data = cohort_graph.data
    logits = model(data.x_dict, data.edge_index_dict)
    assert logits.shape == (data["patient"].num_nodes, 3)
    target = torch.zeros_like(logits)
    target[::3, 0] = 1.0
    loss_fn = torch.nn.BCEWithLogitsLoss()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    first = None
    for _ in range(15):
        optimiser.zero_grad()
        loss = loss_fn(model(data.x_dict, data.edge_index_dict), target)
        loss.backward()
        first = first if first is not None else loss.item()
        optimiser.step()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert loss.item() < first


def test_registry_resolves_names_and_instances(cohort_graph):
    config = _config(cohort_graph, "rgcn")
    model = _make_model(config)
    assert build_model(model) is model
    assert isinstance(model, PatientDiseaseModel)
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("gat", metadata=None)
