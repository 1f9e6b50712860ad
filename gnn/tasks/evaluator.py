"""OGB-style evaluator of disease ranking: one ``eval`` call, one metrics dict.

Ranks are pessimistic: a candidate scored equal to the right one counts as ranked above it, so
a constant scorer earns the last rank, not the first.
"""

from __future__ import annotations

import numpy as np

from graph.errors import InputError

METRICS = ("top1", "top3", "top10", "mrr", "median_rank", "n")
GROUPS = ("overall", "seen", "unseen")


def ranks_of(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """1-based pessimistic rank of ``y_true[i]`` in row ``i`` of ``y_pred``."""
    right = y_pred[np.arange(len(y_true)), y_true][:, None]
    return (y_pred >= right).sum(axis=1)


class RankingEvaluator:
    """Evaluate candidate scores of a ranking task.

    Args:
        num_candidates: candidates per case (the task's candidate set).

    ``eval({"y_true": int [n], "y_pred": float [n, C], "seen": bool [n] (optional)})`` or
    ``eval({"y_true": ..., "rank": int [n], ...})``; returns metrics for ``overall`` and, with
    ``seen``, for cases whose disease was ``seen`` / ``unseen`` in training.
    """

    def __init__(self, num_candidates: int) -> None:
        self.num_candidates = num_candidates

    def ranks(self, input_dict: dict) -> np.ndarray:
        y_true = np.asarray(input_dict.get("y_true"))
        if y_true.ndim != 1 or not np.issubdtype(y_true.dtype, np.integer):
            raise InputError("y_true must be a 1-D integer array of candidate indices")
        if len(y_true) and (y_true.min() < 0 or y_true.max() >= self.num_candidates):
            raise InputError(f"y_true holds indices outside 0..{self.num_candidates - 1}")
        if "rank" in input_dict:
            ranks = np.asarray(input_dict["rank"])
            if ranks.shape != y_true.shape or (len(ranks) and ranks.min() < 1):
                raise InputError("rank must be one 1-based rank per case")
            return ranks
        y_pred = np.asarray(input_dict.get("y_pred"), dtype=np.float64)
        if y_pred.shape != (len(y_true), self.num_candidates):
            raise InputError(
                f"y_pred must be [n, {self.num_candidates}] (one score per candidate), "
                f"got {y_pred.shape}"
            )
        if not np.isfinite(y_pred).all():
            raise InputError("y_pred holds NaN or infinite scores")
        return ranks_of(y_true, y_pred)

    def eval(self, input_dict: dict) -> dict[str, dict[str, float]]:
        """Metrics per group; a group with no case is left out.

        Raises:
            InputError: a key is missing or an array has the wrong shape or type.
        """
        ranks = self.ranks(input_dict)
        groups = {"overall": np.ones(len(ranks), bool)}
        if "seen" in input_dict:
            seen = np.asarray(input_dict["seen"])
            if seen.shape != ranks.shape or seen.dtype != bool:
                raise InputError("seen must be a boolean array, one value per case")
            groups["seen"], groups["unseen"] = seen, ~seen
        return {g: summarise(ranks[m]) for g, m in groups.items() if m.any()}


def summarise(ranks: np.ndarray) -> dict[str, float]:
    """Top-1/3/10 accuracy, mean reciprocal rank, median rank and count of ``ranks``."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return {
        "top1": float((ranks <= 1).mean()),
        "top3": float((ranks <= 3).mean()),
        "top10": float((ranks <= 10).mean()),
        "mrr": float((1.0 / ranks).mean()),
        "median_rank": float(np.median(ranks)),
        "n": int(len(ranks)),
    }
