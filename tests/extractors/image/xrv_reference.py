"""A deterministic DenseNet-121 state dict in torchxrayvision's key layout, for adapter tests.

The same function builds the weights when the reference fixture is made (running the real
torchxrayvision ``DenseNet`` code) and when the test checks our MONAI-based adapter, so the two
outputs can be compared without downloading any trained weights.
"""

from __future__ import annotations

import torch


def deterministic_state_dict(
    shapes: dict[str, list[int]], seed: int = 0
) -> dict[str, torch.Tensor]:
    """Small random weights (positive BN variances), the same for the same shapes and seed."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(shape, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        elif key.endswith("running_mean") or key.endswith("bias"):
            state[key] = 0.05 * torch.randn(shape, generator=generator)
        elif len(shape) == 1:  # BatchNorm weight
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        else:  # conv / linear weight, He-scaled so activations stay finite through 121 layers
            fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
            state[key] = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
    return state


def reference_input() -> torch.Tensor:
    """A fixed ``[1, 1, 64, 64]`` input in torchxrayvision's [-1024, 1024] range."""
    ramp = torch.linspace(-1024.0, 1024.0, 64)
    return (ramp[None, :] * torch.cos(ramp[:, None] / 300.0))[None, None]
