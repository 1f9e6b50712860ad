"""A compact CNN for chest X-ray findings, and its safetensors weights with metadata.

The network is small on purpose: 28x28 single-channel input (MedMNIST layout), three conv stages
and a global-average-pooled linear head with one logit per label. It trains in a few minutes on
two CPU cores and runs hundreds of images per second.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from graph.errors import ModelError


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and calibration of a saved model (stored in the safetensors metadata).

    Args:
        model_id: stable name used as ``ImageEvidence.model_id``.
        labels: output classes in order (their concept ids live in the label map file).
        channels: widths of the three conv stages.
        input_size: square input side in pixels.
        temperature: logit divisor fitted on held-out data (1.0 = uncalibrated).
        dropout: dropout before the linear head.
    """

    model_id: str
    labels: tuple[str, ...]
    channels: tuple[int, int, int] = (24, 48, 96)
    input_size: int = 28
    temperature: float = 1.0
    dropout: float = 0.2
    extra: dict[str, str] = field(default_factory=dict)


def _stage(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CompactCNN(nn.Module):
    """Three conv stages (two 3x3 convs each), max-pooling between, GAP and a linear head.

    Shapes: input ``[batch, 1, S, S]`` -> logits ``[batch, len(labels)]``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c1, c2, c3 = config.channels
        self.features = nn.Sequential(
            _stage(1, c1), nn.MaxPool2d(2), _stage(c1, c2), nn.MaxPool2d(2), _stage(c2, c3)
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(c3, len(config.labels)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def save_model(model: nn.Module, config: ModelConfig, path: Path) -> None:
    """Write weights and ``config`` (as JSON metadata) to a safetensors file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(path), metadata={"kgdx_config": json.dumps(asdict(config))})


def load_model(path: Path) -> tuple[CompactCNN, ModelConfig]:
    """Load a model saved by :func:`save_model`, in eval mode.

    Raises:
        ModelError: the file is missing, not safetensors, lacks kgdx metadata or does not fit.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelError(f"model weights {path} not found; train one with `kgdx image train`")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"cannot read {path} as safetensors: {exc}") from None
    if "kgdx_config" not in metadata:
        raise ModelError(f"{path} has no kgdx_config metadata; it was not saved by kgdx")
    raw = json.loads(metadata["kgdx_config"])
    raw["labels"] = tuple(raw["labels"])
    raw["channels"] = tuple(raw["channels"])
    config = ModelConfig(**raw)
    model = CompactCNN(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"weights in {path} do not fit the CompactCNN config: {exc}") from None
    model.eval()
    return model, config
