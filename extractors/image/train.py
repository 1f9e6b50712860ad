"""Train the compact CNN, fit its temperature on a held-out slice of train, report on val.

Splits (no data is used twice): ``train`` minus a stratified 10% -> fitting (and the Gaussians
of the OOD score, :mod:`extractors.image.ood`); that 10% -> temperature scaling and the OOD flag
threshold; the ``val`` split -> the reported metrics only (never for choices made in code). One
call with one seed gives the same weights on the same machine.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from extractors.image.calibration import binary_metrics, fit_temperature, sigmoid
from extractors.image.datasets import load_csv_dataset, load_npz_split, stratified_holdout
from extractors.image.labels import LabelMap, load_label_map
from extractors.image.model import CompactCNN, ModelConfig, save_model
from extractors.image.ood import OodStatistics, file_sha256, fit_ood, ood_path_for
from extractors.image.transforms import training_augmentation
from graph.errors import InputError

logger = logging.getLogger("kgdx.image.train")


@dataclass
class TrainResult:
    """A trained model with its config, metrics per split and the loss history."""

    model: CompactCNN
    config: ModelConfig
    label_map_path: Path
    metrics: dict[str, dict[str, float]]
    history: list[dict[str, float]] = field(default_factory=list)
    settings: dict[str, object] = field(default_factory=dict)
    ood: OodStatistics | None = None

    def save_to_directory(self, directory: Path, name: str = "pneumonia_cnn") -> Path:
        """Write ``<name>.safetensors``, ``<name>.labels.tsv``, ``<name>.metrics.json``, the
        model card ``<name>.md`` and the OOD statistics ``<name>.ood.safetensors``."""
        directory.mkdir(parents=True, exist_ok=True)
        weights = directory / f"{name}.safetensors"
        save_model(self.model, self.config, weights)
        if self.ood is not None:
            self.ood.info["weights_sha256"] = file_sha256(weights)
            self.ood.save(ood_path_for(weights))
        labels_target = directory / f"{name}.labels.tsv"
        if labels_target.resolve() != self.label_map_path.resolve():
            labels_target.write_text(self.label_map_path.read_text(encoding="utf-8"))
        summary = {
            "config": asdict(self.config),
            "metrics": self.metrics,
            "settings": self.settings,
            "history": self.history,
        }
        (directory / f"{name}.metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        from extractors.image.model_card import render_model_card

        (directory / f"{name}.md").write_text(render_model_card(self, name), encoding="utf-8")
        return weights

    @property
    def label_map_concepts(self) -> tuple[str, ...]:
        return load_label_map(self.label_map_path).concept_ids


def predict_logits(model: torch.nn.Module, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Logits ``[N, K]`` of ``images [N, 1, S, S]`` in eval mode, without gradients."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.as_tensor(images[start : start + batch_size])
            outputs.append(model(batch).numpy())
    return np.concatenate(outputs).astype(np.float64)


def _load(data: Path, split: str, label_map: LabelMap) -> tuple[np.ndarray, np.ndarray]:
    if data.suffix == ".npz":
        images, targets = load_npz_split(data, split)
    elif data.suffix == ".csv":
        images, targets = load_csv_dataset(
            data.parent / f"{data.stem}_{split}.csv", label_map.labels
        )
    else:
        raise InputError(f"{data}: training data must be a MedMNIST .npz or a CSV of images")
    if targets.shape[1] != len(label_map):
        raise InputError(
            f"{data} has {targets.shape[1]} label columns, the label map has {len(label_map)}"
        )
    return images, targets


def train(
    *,
    data: Path,
    label_map_path: Path,
    model_id: str = "kgdx-pneumonia-cnn-v1",
    seed: int = 0,
    epochs: int = 40,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-4,
    channels: tuple[int, int, int] = (24, 48, 96),
    calibration_fraction: float = 0.1,
) -> TrainResult:
    """Train a :class:`CompactCNN` on ``data`` and calibrate it.

    Args:
        data: MedMNIST ``.npz`` (``train``/``val`` arrays) or ``NAME.csv`` with ``NAME_train.csv``
            and ``NAME_val.csv`` beside it (``path`` + one 0/1 column per label).
        label_map_path: TSV mapping each output class to a KG concept id.
        seed: seeds torch, numpy and the MONAI augmentation.

    Returns:
        The trained model with metrics for the ``calibration`` and ``val`` splits.
    """
    label_map = load_label_map(label_map_path)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images, targets = _load(data, "train", label_map)
    val_images, val_targets = _load(data, "val", label_map)
    fit_index, calib_index = stratified_holdout(targets, calibration_fraction, seed)
    fit_images, fit_targets = images[fit_index], targets[fit_index]
    config = ModelConfig(
        model_id=model_id,
        labels=label_map.labels,
        channels=channels,
        input_size=int(images.shape[-1]),
    )
    model = CompactCNN(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    steps_per_epoch = int(np.ceil(len(fit_images) / batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=epochs * steps_per_epoch
    )
    augment = training_augmentation(seed)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(fit_images))
        total = 0.0
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = torch.stack([augment(torch.from_numpy(fit_images[i])) for i in index])
            loss = F.binary_cross_entropy_with_logits(
                model(batch), torch.from_numpy(fit_targets[index])
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(index)
        history.append({"epoch": epoch + 1, "train_loss": total / len(order)})
        logger.info("epoch %d/%d loss %.4f", epoch + 1, epochs, total / len(order))
    seconds = time.perf_counter() - started

    calib_logits = predict_logits(model, images[calib_index])
    temperature = fit_temperature(calib_logits, targets[calib_index])
    config = ModelConfig(**{**asdict(config), "temperature": temperature})
    val_logits = predict_logits(model, val_images)
    ood = fit_ood(model, fit_images, images[calib_index])
    ood.info.update(data=data.name, seed=seed, calibration_fraction=calibration_fraction)
    metrics = {
        "calibration": binary_metrics(sigmoid(calib_logits, temperature), targets[calib_index]),
        "val_uncalibrated": binary_metrics(sigmoid(val_logits), val_targets),
        "val": binary_metrics(sigmoid(val_logits, temperature), val_targets),
    }
    settings = {
        "data": str(data.name),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "calibration_fraction": calibration_fraction,
        "n_fit": len(fit_index),
        "n_calibration": len(calib_index),
        "n_val": len(val_targets),
        "train_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    return TrainResult(model, config, label_map_path, metrics, history, settings, ood)
