"""MONAI preprocessing for the image model: the same pipeline for training, evaluation and use.

Readers hand over a 2D float32 array scaled to [0, 1] (DICOM after the LUTs, PNG/JPEG divided by
its bit depth). The pipeline adds the channel, crops the centre square (as MedMNIST did when it
built its 28x28 images from the full radiographs), area-resizes and returns a float tensor.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import (
    Compose,
    EnsureChannelFirst,
    EnsureType,
    RandAdjustContrast,
    RandAffine,
    RandGaussianNoise,
    Resize,
    Transform,
)


class CenterSquareCrop(Transform):
    """Crop a channel-first image ``[C, H, W]`` to its centred ``min(H, W)`` square."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return image[..., top : top + side, left : left + side]


def inference_transforms(input_size: int = 28) -> Compose:
    """Preprocessing of one 2D ``[H, W]`` array in [0, 1] to a ``[1, S, S]`` float tensor."""
    return Compose(
        [
            EnsureChannelFirst(channel_dim="no_channel"),
            CenterSquareCrop(),
            # Area interpolation averages the pixels it merges, so a 2000 px radiograph shrinks
            # without aliasing, the way MedMNIST's own downsampling did.
            Resize((input_size, input_size), mode="area"),
            EnsureType(data_type="tensor", dtype=torch.float32, track_meta=False),
        ]
    )


def training_augmentation(seed: int) -> Compose:
    """Random affine, contrast and noise for ``[1, S, S]`` tensors; seeded for reproducibility."""
    augment = Compose(
        [
            RandAffine(
                prob=0.9,
                rotate_range=0.17,  # about 10 degrees: patient positioning varies that much
                scale_range=0.1,
                translate_range=2,
                padding_mode="border",
            ),
            RandAdjustContrast(prob=0.3, gamma=(0.75, 1.3)),
            RandGaussianNoise(prob=0.2, std=0.02),
            EnsureType(data_type="tensor", dtype=torch.float32, track_meta=False),
        ]
    )
    augment.set_random_state(seed=seed)
    return augment


def preprocess_batch(images: list[np.ndarray], input_size: int = 28) -> torch.Tensor:
    """Stack preprocessed 2D images into a ``[N, 1, S, S]`` batch."""
    pipeline = inference_transforms(input_size)
    return torch.stack([pipeline(np.ascontiguousarray(image)) for image in images])
