"""Out-of-distribution score of an image's pixels: how unlike the training X-rays the CNN sees it.

Method (Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution Samples and
Adversarial Attacks", NeurIPS 2018, without input perturbation): after each of the CNN's three
conv stages the feature map is averaged over space; one Gaussian per stage (mean, shrunk
covariance) is fitted on the features of the images the weights were trained on. An image's
score is the mean over stages of its squared Mahalanobis distance to that Gaussian, each divided
by the mean distance of the training images (so every stage weighs the same and a typical
training image scores about 1 per stage).

The flag threshold is a quantile (99% by default) of the scores of the calibration hold-out,
which neither the weights nor the Gaussians saw; no out-of-distribution image is used to choose
it. :attr:`OodStatistics.relative` reports ``score / threshold``: above 1 the image is flagged.

The statistics are a small safetensors file beside the weights (``NAME.ood.safetensors``) that
records the SHA-256 of the weights it was fitted for; stale statistics are refused.

Why this and not the alternatives (measured in ``docs/image-scope.md``): the max-softmax and
energy scores of a one-logit sigmoid head cannot tell a brain MR from a chest X-ray (AUROC near
0.5), and a pixel PCA or intensity histogram misses CT slices that the features catch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from graph.errors import InputError, ModelError

OOD_METHOD = "stage-mahalanobis-v1"
DEFAULT_QUANTILE = 0.99
_SHRINKAGE = 1e-3  # ridge added to each covariance, as a fraction of its mean variance


def ood_path_for(weights: Path) -> Path:
    """The OOD statistics that ship beside ``weights`` (``NAME.ood.safetensors``)."""
    return weights.with_name(weights.name.removesuffix(".safetensors") + ".ood.safetensors")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stage_features(model: torch.nn.Module, batch: torch.Tensor) -> tuple[np.ndarray, list]:
    """Logits ``[N, K]`` and the spatially averaged features after each conv stage.

    One forward pass: ``model.features`` (stages with pooling between) then ``model.head``, as
    :class:`~extractors.image.model.CompactCNN` is built.
    """
    stages: list[np.ndarray] = []
    with torch.inference_mode():
        hidden = batch
        for layer in model.features:
            hidden = layer(hidden)
            if isinstance(layer, torch.nn.Sequential):
                stages.append(hidden.mean(dim=(2, 3)).double().numpy())
        logits = model.head(hidden).numpy()
    return logits, stages


@dataclass(frozen=True)
class OodStatistics:
    """Per-stage Gaussians of training features and the flag threshold.

    Attributes:
        means / precisions: per stage, the feature mean ``[C]`` and inverse covariance ``[C, C]``.
        scales: per stage, the mean squared distance of the training images.
        threshold: scores above it are flagged (a quantile of held-out training-distribution
            scores).
        info: how it was fitted (method, quantile, counts, the weights' SHA-256).
    """

    means: tuple[np.ndarray, ...]
    precisions: tuple[np.ndarray, ...]
    scales: tuple[float, ...]
    threshold: float
    info: dict[str, object] = field(default_factory=dict)

    def scores(self, stages: list[np.ndarray]) -> np.ndarray:
        """Raw scores ``[N]`` of stage features from :func:`stage_features`."""
        if len(stages) != len(self.means):
            raise ModelError(
                f"OOD statistics have {len(self.means)} stages, the model gave {len(stages)}"
            )
        total = np.zeros(len(stages[0]))
        for feats, mean, precision, scale in zip(
            stages, self.means, self.precisions, self.scales, strict=True
        ):
            centred = feats - mean
            total += np.einsum("ij,jk,ik->i", centred, precision, centred) / scale
        return total / len(stages)

    def relative(self, stages: list[np.ndarray]) -> np.ndarray:
        """``score / threshold`` per image: above 1 the image is out of distribution."""
        return self.scores(stages) / self.threshold

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        tensors = {}
        for index, (mean, precision) in enumerate(zip(self.means, self.precisions, strict=True)):
            tensors[f"mean_{index}"] = np.ascontiguousarray(mean, dtype=np.float64)
            tensors[f"precision_{index}"] = np.ascontiguousarray(precision, dtype=np.float64)
        meta = {"scales": list(self.scales), "threshold": self.threshold, **self.info}
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata={"kgdx_ood": json.dumps(meta)})


def fit_ood(
    model: torch.nn.Module,
    fit_images: np.ndarray,
    calibration_images: np.ndarray,
    *,
    quantile: float = DEFAULT_QUANTILE,
    weights_sha256: str = "",
    batch_size: int = 512,
) -> OodStatistics:
    """Fit the stage Gaussians on ``fit_images`` and the threshold on ``calibration_images``.

    Args:
        fit_images: ``[N, 1, S, S]``, the images the weights were trained on.
        calibration_images: ``[M, 1, S, S]`` from the same distribution, unseen by the weights.
        quantile: share of calibration images left unflagged.
        weights_sha256: of the weights file the statistics belong to.
    """
    if not 0.5 <= quantile < 1.0:
        raise ValueError(f"quantile {quantile} must be in [0.5, 1)")
    model.eval()
    fit_stages = _batched_stages(model, fit_images, batch_size)
    means, precisions, scales = [], [], []
    for feats in fit_stages:
        mean = feats.mean(axis=0)
        cov = np.cov(feats - mean, rowvar=False)
        cov += _SHRINKAGE * np.trace(cov) / len(cov) * np.eye(len(cov))
        precision = np.linalg.inv(cov)
        centred = feats - mean
        scales.append(float(np.einsum("ij,jk,ik->i", centred, precision, centred).mean()))
        means.append(mean)
        precisions.append(precision)
    unscaled = OodStatistics(tuple(means), tuple(precisions), tuple(scales), threshold=1.0)
    calibration = unscaled.scores(_batched_stages(model, calibration_images, batch_size))
    threshold = float(np.quantile(calibration, quantile))
    info = {
        "method": OOD_METHOD,
        "quantile": quantile,
        "n_fit": len(fit_images),
        "n_calibration": len(calibration_images),
        "weights_sha256": weights_sha256,
    }
    return OodStatistics(unscaled.means, unscaled.precisions, unscaled.scales, threshold, info)


def _batched_stages(model: torch.nn.Module, images: np.ndarray, batch_size: int) -> list:
    parts = [
        stage_features(model, torch.as_tensor(images[start : start + batch_size]))[1]
        for start in range(0, len(images), batch_size)
    ]
    return [np.concatenate([part[i] for part in parts]) for i in range(len(parts[0]))]


def load_ood(path: Path, weights: Path | None = None) -> OodStatistics:
    """Read statistics saved by :meth:`OodStatistics.save`.

    Raises:
        ModelError: unreadable file, or statistics fitted for other weights than ``weights``.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        meta = json.loads(metadata["kgdx_ood"])
        stages = len(meta["scales"])
        means = tuple(tensors[f"mean_{i}"] for i in range(stages))
        precisions = tuple(tensors[f"precision_{i}"] for i in range(stages))
        threshold = float(meta.pop("threshold"))
        scales = tuple(float(s) for s in meta.pop("scales"))
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as exc:
        raise ModelError(
            f"cannot read OOD statistics {path}: {type(exc).__name__}: {exc}"
        ) from None
    if weights is not None and meta.get("weights_sha256"):
        actual = file_sha256(weights)
        if actual != meta["weights_sha256"]:
            raise ModelError(
                f"{path} was fitted for other weights than {weights.name}; refit it with "
                f"`kgdx image fit-ood --weights {weights}` (or delete it to skip the pixel check)"
            )
    if not threshold > 0 or any(not s > 0 for s in scales):
        raise ModelError(f"{path}: threshold and scales must be positive")
    return OodStatistics(means, precisions, scales, threshold, meta)


def fit_ood_for_weights(
    weights: Path,
    data: Path,
    *,
    seed: int = 0,
    calibration_fraction: float = 0.1,
    quantile: float = DEFAULT_QUANTILE,
) -> tuple[OodStatistics, Path]:
    """Fit and save the OOD statistics of saved ``weights`` on the split they were trained with.

    The fitting and calibration images are rebuilt exactly as ``kgdx image train`` split them
    (``train`` minus a stratified hold-out with the same seed and fraction; the hold-out).

    Returns:
        The statistics and the file they were written to (``NAME.ood.safetensors``).

    Raises:
        InputError: unreadable data; ModelError: unreadable weights.
    """
    from extractors.image.datasets import load_npz_split, stratified_holdout
    from extractors.image.model import load_model

    model, config = load_model(weights)
    images, targets = load_npz_split(Path(data), "train")
    if images.shape[-1] != config.input_size:
        raise InputError(
            f"{data} images are {images.shape[-1]} px; the model expects {config.input_size} px"
        )
    fit_index, calibration_index = stratified_holdout(targets, calibration_fraction, seed)
    stats = fit_ood(
        model,
        images[fit_index],
        images[calibration_index],
        quantile=quantile,
        weights_sha256=file_sha256(weights),
    )
    stats.info.update(data=Path(data).name, seed=seed, calibration_fraction=calibration_fraction)
    path = ood_path_for(weights)
    stats.save(path)
    return stats, path
