"""OGB-style evaluator for multi-label diagnosis: one ``eval`` call, one metrics dict.

Metrics, macro-averaged over candidate diagnoses that have both classes in ``y_true``:
AUROC, AUPRC (average precision), F1 at ``threshold``; top-1 accuracy (the highest-scored
diagnosis is one of the patient's labels) and expected calibration error (ECE, equal-width bins
over every (patient, diagnosis) probability).
"""

from __future__ import annotations

import numpy as np

from graph.errors import InputError


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-width bins, in the evaluator's argument order (targets first, as OGB);
    one implementation for the project: ``extractors.image.calibration``."""
    from extractors.image.calibration import expected_calibration_error as ece

    return ece(y_prob, y_true, n_bins=bins)


class Evaluator:
    """Evaluate predicted probabilities against multi-label targets (OGB's ``Evaluator`` shape).

    Args:
        threshold: probability above which a diagnosis counts as predicted (for F1).
    """

    metrics = ("auroc", "auprc", "f1", "top1_accuracy", "ece")

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def eval(self, input_dict: dict[str, np.ndarray]) -> dict[str, float]:
        """``{"y_true": [n, c] 0/1, "y_pred": [n, c] probabilities}`` -> metrics.

        Raises:
            InputError: shapes differ, or probabilities fall outside [0, 1].
        """
        from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

        y_true = np.asarray(input_dict["y_true"], dtype=float)
        y_pred = np.asarray(input_dict["y_pred"], dtype=float)
        if y_true.shape != y_pred.shape or y_true.ndim != 2:
            raise InputError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 2-D")
        if y_pred.size and (y_pred.min() < 0 or y_pred.max() > 1):
            raise InputError("y_pred must hold probabilities in [0, 1]")
        aurocs, auprcs, f1s = [], [], []
        for j in range(y_true.shape[1]):
            column = y_true[:, j]
            if 0 < column.sum() < len(column):
                aurocs.append(roc_auc_score(column, y_pred[:, j]))
                auprcs.append(average_precision_score(column, y_pred[:, j]))
                f1s.append(f1_score(column, y_pred[:, j] >= self.threshold, zero_division=0))
        top1 = y_true[np.arange(len(y_true)), y_pred.argmax(axis=1)] if len(y_true) else []
        return {
            "auroc": float(np.mean(aurocs)) if aurocs else float("nan"),
            "auprc": float(np.mean(auprcs)) if auprcs else float("nan"),
            "f1": float(np.mean(f1s)) if f1s else float("nan"),
            "top1_accuracy": float(np.mean(top1)) if len(top1) else float("nan"),
            "ece": expected_calibration_error(y_true, y_pred),
        }
