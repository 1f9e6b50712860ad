"""Non-GNN baseline: one-vs-rest logistic regression on each patient's bag of findings.

Features are the patient's finding edges in the graph, one column per (finding relation,
concept): a present and an absent finding of the same concept are different columns, as they are
different edge types for the GNN. It sees no KG relations, so the gap between it and the GNN
measured on the same split is what the KG structure and message passing add (or cost).
"""

from __future__ import annotations

import numpy as np
import torch

from gnn.dataset import PatientLabels
from gnn.evaluate import Evaluator
from graph.schema import PATIENT_NODE_TYPE
from graph.subgraph import PatientGraph


def finding_bag(graph: PatientGraph) -> np.ndarray:
    """``[num_patients, num_features]`` 0/1 matrix of the patients' finding edges."""
    blocks = []
    n = len(graph.patient_ids)
    for edge_type in graph.vocabulary.edge_types:
        src, _, dst = edge_type
        if src != PATIENT_NODE_TYPE:
            continue
        block = np.zeros((n, len(graph.vocabulary.concept_ids[dst])), dtype=np.float32)
        edge_index = graph.data[edge_type].edge_index
        block[edge_index[0].numpy(), edge_index[1].numpy()] = 1.0
        blocks.append(block)
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), dtype=np.float32)


def logistic_baseline(
    graph: PatientGraph,
    labels: PatientLabels,
    masks: dict[str, torch.Tensor],
    *,
    c: float = 1.0,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Fit on the ``train`` mask and evaluate every split with the same :class:`Evaluator`.

    A candidate with no positive training patient gets its training prevalence (0) as score.
    """
    from sklearn.linear_model import LogisticRegression

    x = finding_bag(graph)
    y = labels.y.numpy()
    train = masks["train"].numpy()
    probabilities = np.zeros_like(y)
    for j in range(y.shape[1]):
        target = y[train, j]
        if 0 < target.sum() < len(target):
            classifier = LogisticRegression(C=c, max_iter=2000, random_state=seed)
            classifier.fit(x[train], target)
            probabilities[:, j] = classifier.predict_proba(x)[:, 1]
        else:
            probabilities[:, j] = target.mean() if len(target) else 0.0
    evaluator = Evaluator()
    return {
        name: evaluator.eval({"y_true": y[mask.numpy()], "y_pred": probabilities[mask.numpy()]})
        for name, mask in masks.items()
        if bool(mask.any())
    }
