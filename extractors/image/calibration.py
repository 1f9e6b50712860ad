"""Temperature scaling and calibration metrics for sigmoid (multi-label) outputs.

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017) divides
all logits by one scalar ``T`` fitted by minimising the negative log-likelihood on held-out data;
it changes confidence, never the ranking, so AUROC is unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def fit_temperature(logits: np.ndarray, targets: np.ndarray, *, max_iter: int = 200) -> float:
    """Return the temperature that minimises the binary cross-entropy of ``logits / T``.

    Args:
        logits: ``[n, k]`` raw model outputs on held-out (never training) data.
        targets: ``[n, k]`` 0/1 labels.
        max_iter: L-BFGS iterations.
    """
    logit_tensor = torch.as_tensor(logits, dtype=torch.float64)
    target_tensor = torch.as_tensor(targets, dtype=torch.float64)
    # Optimise log T so T stays positive.
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(logit_tensor / log_t.exp(), target_tensor)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.exp().item())


def expected_calibration_error(
    probabilities: np.ndarray, targets: np.ndarray, *, n_bins: int = 15
) -> float:
    """Expected calibration error of positive-class probabilities (equal-width bins).

    Each (sample, label) probability is one prediction: ECE = sum over bins of
    ``|bin| / n * |mean(p) - mean(y)|``.
    """
    probs = np.asarray(probabilities, dtype=np.float64).ravel()
    labels = np.asarray(targets, dtype=np.float64).ravel()
    if probs.size == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(probs, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for index in range(n_bins):
        mask = bins == index
        if mask.any():
            ece += mask.mean() * abs(probs[mask].mean() - labels[mask].mean())
    return float(ece)


def sigmoid(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Numerically stable ``1 / (1 + exp(-logits / T))``."""
    from scipy.special import expit

    return expit(np.asarray(logits, dtype=np.float64) / temperature)


def binary_metrics(probabilities: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """AUROC (mean over labels with both classes), accuracy at 0.5, ECE and NLL."""
    from sklearn.metrics import roc_auc_score

    probs = np.asarray(probabilities, dtype=np.float64).reshape(len(probabilities), -1)
    labels = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    aurocs = [
        roc_auc_score(labels[:, k], probs[:, k])
        for k in range(labels.shape[1])
        if 0 < labels[:, k].sum() < len(labels)
    ]
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    nll = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    return {
        "auroc": float(np.mean(aurocs)) if aurocs else float("nan"),
        "accuracy": float(((probs >= 0.5) == (labels >= 0.5)).mean()),
        "ece": expected_calibration_error(probs, labels),
        "nll": float(nll),
        "n": int(len(labels)),
    }
