"""Labelled image sets for training and evaluation: MedMNIST ``.npz`` or a CSV of image files.

Both give ``(images [N, 1, S, S] float32 in [0, 1], targets [N, K] float32)`` in the label order
of the model's label map.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from graph.errors import InputError


def load_npz_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read ``{split}_images`` / ``{split}_labels`` from a MedMNIST-layout ``.npz``.

    Raises:
        InputError: the file is missing or unreadable, or lacks the split's arrays.
    """
    if not path.is_file():
        raise InputError(f"{path} not found; pass a MedMNIST .npz (e.g. pneumoniamnist.npz)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            if f"{split}_images" not in keys or f"{split}_labels" not in keys:
                splits = sorted({key.rsplit("_", 1)[0] for key in keys})
                raise InputError(f"{path} has no split {split!r}; its splits are {splits}")
            images = archive[f"{split}_images"]
            labels = archive[f"{split}_labels"]
    except (OSError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read {path} as .npz: {exc}") from None
    if images.ndim != 3 or len(images) != len(labels):
        raise InputError(f"{path}: expected {split}_images [N, H, W] and N labels")
    pixels = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else images.max())
    return pixels[:, None], labels.reshape(len(labels), -1).astype(np.float32)


def load_csv_dataset(
    path: Path, labels: tuple[str, ...], input_size: int = 28
) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV with a ``path`` column and one 0/1 column per label; images via the readers.

    Relative image paths are taken from the CSV's folder. Each image goes through the same
    readers and MONAI preprocessing as ``kgdx image predict``.

    Raises:
        InputError: missing columns, unreadable images, or labels other than 0/1.
    """
    from extractors.image.readers import load_image
    from extractors.image.transforms import inference_transforms

    if not path.is_file():
        raise InputError(f"{path} not found; pass a CSV with 'path' and label columns")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"path", *labels} - set(rows[0] if rows else {})
    if missing:
        raise InputError(f"{path} lacks columns {sorted(missing)}; need 'path' and {list(labels)}")
    pipeline = inference_transforms(input_size)
    images, targets = [], []
    for number, row in enumerate(rows, start=2):
        image_path = Path(row["path"])
        if not image_path.is_absolute():
            image_path = path.parent / image_path
        loaded = load_image(image_path)
        images.append(pipeline(loaded.pixels[0]).numpy())
        try:
            values = [float(row[label]) for label in labels]
        except ValueError:
            raise InputError(f"{path} line {number}: label values must be 0 or 1") from None
        if any(value not in (0.0, 1.0) for value in values):
            raise InputError(f"{path} line {number}: label values must be 0 or 1")
        targets.append(values)
    return np.stack(images).astype(np.float32), np.asarray(targets, dtype=np.float32)


def stratified_holdout(
    targets: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held out) with ``fraction`` of each first-label class held out."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for value in np.unique(targets[:, 0]):
        members = np.flatnonzero(targets[:, 0] == value)
        rng.shuffle(members)
        held.append(members[: max(1, round(fraction * len(members)))])
    held_out = np.sort(np.concatenate(held))
    kept = np.setdiff1d(np.arange(len(targets)), held_out)
    return kept, held_out
