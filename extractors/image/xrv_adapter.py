"""Adapter for torchxrayvision DenseNet-121 weights: 18 chest pathologies -> KG concepts.

Users who have torchxrayvision weights (``densenet121-res224-*``) get findings for its 18
pathologies, each mapped to a KG concept by ``data/labels/image_xrv_pathologies.tsv``. The network
is MONAI's ``DenseNet121`` (same topology as torchxrayvision's: 7x7 stem, blocks 6/12/24/16,
growth 32, ReLU + global average pool + linear head), so inference does not need torchxrayvision
(nor torchvision, which it imports and which has no CPU build for our torch): weights come from
torchxrayvision when it imports, otherwise from a state-dict file (``.safetensors`` or ``.pt``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from extractors.image.labels import LabelMap, load_label_map
from graph.errors import ModelError
from graph.records import Finding
from graph.settings import DATA_DIR

XRV_LABELS_PATH = DATA_DIR / "labels" / "image_xrv_pathologies.tsv"
XRV_INPUT_SIZE = 224
_DENSE_LAYER_KEY = re.compile(r"^(.*denselayer\d+)\.((?:norm|conv)[12]\..+)$")


def xrv_label_map() -> LabelMap:
    """torchxrayvision's 18 default pathologies, in its output order, with their concept ids."""
    return load_label_map(XRV_LABELS_PATH)


def build_xrv_densenet(num_classes: int = 18) -> torch.nn.Module:
    """An untrained MONAI DenseNet-121 with torchxrayvision's input (1 channel) and head."""
    from monai.networks.nets import DenseNet121

    return DenseNet121(spatial_dims=2, in_channels=1, out_channels=num_classes)


def convert_xrv_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchxrayvision DenseNet keys to MONAI ``DenseNet121`` keys.

    ``features.denseblockB.denselayerL.norm1.weight`` -> ``...denselayerL.layers.norm1.weight``
    and ``classifier.*`` -> ``class_layers.out.*``; ``op_threshs`` (a calibration buffer, not a
    weight) is dropped. Every other key is already the same.
    """
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key == "op_threshs":
            continue
        if key.startswith("classifier."):
            key = "class_layers.out." + key.removeprefix("classifier.")
        else:
            match = _DENSE_LAYER_KEY.match(key)
            if match:
                key = f"{match.group(1)}.layers.{match.group(2)}"
        converted[key] = tensor
    return converted


def load_xrv_model(source: str | Path) -> torch.nn.Module:
    """A MONAI DenseNet-121 carrying torchxrayvision weights, in eval mode.

    Args:
        source: a torchxrayvision weights name (``"densenet121-res224-all"``; needs the package
            and its downloaded weights) or a state-dict file (``.safetensors`` or a ``.pt`` holding
            a state dict) saved from a torchxrayvision ``DenseNet``.

    Raises:
        ModelError: the package or file is unavailable, or the weights do not fit DenseNet-121.
    """
    path = Path(source)
    if path.suffix in (".safetensors", ".pt", ".pth"):
        if not path.is_file():
            raise ModelError(f"torchxrayvision weights {path} not found")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, Mapping):
                raise ModelError(f"{path} holds a pickled model; save its state_dict() instead")
    else:
        try:
            import torchxrayvision as xrv
        except Exception as exc:  # ImportError, or torchvision failing to load
            raise ModelError(
                f"torchxrayvision cannot be imported ({exc}); pass a state-dict file instead"
            ) from None
        state = xrv.models.DenseNet(weights=str(source)).state_dict()
    model = build_xrv_densenet(num_classes=len(xrv_label_map()))
    try:
        model.load_state_dict(convert_xrv_state_dict(state), strict=True)
    except RuntimeError as exc:
        raise ModelError(f"weights from {source} do not fit DenseNet-121: {exc}") from None
    return model.eval()


def xrv_preprocess(pixels: np.ndarray) -> torch.Tensor:
    """One 2D image in [0, 1] -> ``[1, 224, 224]`` in torchxrayvision's [-1024, 1024] range."""
    from monai.transforms import (
        Compose,
        EnsureChannelFirst,
        EnsureType,
        Resize,
        ScaleIntensityRange,
    )

    from extractors.image.transforms import CenterSquareCrop

    pipeline = Compose(
        [
            EnsureChannelFirst(channel_dim="no_channel"),
            ScaleIntensityRange(a_min=0.0, a_max=1.0, b_min=-1024.0, b_max=1024.0),
            CenterSquareCrop(),
            Resize((XRV_INPUT_SIZE, XRV_INPUT_SIZE), mode="area"),
            EnsureType(data_type="tensor", dtype=torch.float32, track_meta=False),
        ]
    )
    return pipeline(np.ascontiguousarray(pixels))


def xrv_findings(
    model: torch.nn.Module, image_id: str, pixels: np.ndarray, model_id: str = "torchxrayvision"
) -> tuple[Finding, ...]:
    """Findings for the 18 pathologies of one 2D image in [0, 1] (sigmoid of the logits)."""
    from extractors.image.calibration import sigmoid
    from extractors.image.predict import to_findings

    with torch.inference_mode():
        logits = model(xrv_preprocess(pixels)[None])[0].numpy()
    return to_findings(image_id, model_id, sigmoid(logits), xrv_label_map())
