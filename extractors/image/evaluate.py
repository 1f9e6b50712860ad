"""Evaluate a saved image model on a labelled split: AUROC, accuracy, ECE (OGB-style evaluator)."""

from __future__ import annotations

from pathlib import Path

from extractors.image.calibration import binary_metrics, sigmoid
from extractors.image.datasets import load_npz_split
from extractors.image.model import load_model
from extractors.image.predict import DEFAULT_WEIGHTS
from extractors.image.train import predict_logits
from graph.errors import InputError


def evaluate(*, npz: Path, split: str = "test", weights: Path | None = None) -> dict[str, object]:
    """Score the model on ``{split}_images``/``{split}_labels`` of a MedMNIST ``.npz``.

    Returns:
        ``auroc``, ``accuracy`` (threshold 0.5), ``ece`` and ``nll`` of the calibrated
        probabilities, ``ece_uncalibrated``, ``n``, ``split`` and ``model_id``.

    Raises:
        InputError: missing file or split, or labels that do not match the model's outputs.
    """
    model, config = load_model(Path(weights) if weights else DEFAULT_WEIGHTS)
    images, targets = load_npz_split(Path(npz), split)
    if targets.shape[1] != len(config.labels):
        raise InputError(
            f"{npz} split {split!r} has {targets.shape[1]} label columns; "
            f"model {config.model_id} predicts {len(config.labels)}"
        )
    if images.shape[-1] != config.input_size:
        raise InputError(
            f"{npz} images are {images.shape[-1]} px; the model expects {config.input_size} px"
        )
    logits = predict_logits(model, images)
    metrics: dict[str, object] = dict(binary_metrics(sigmoid(logits, config.temperature), targets))
    metrics["ece_uncalibrated"] = binary_metrics(sigmoid(logits), targets)["ece"]
    metrics.update(split=split, model_id=config.model_id, temperature=config.temperature)
    return metrics
