"""Seeded random draws that are identical on every device and independent between stages."""

from __future__ import annotations

import torch

# Each stage draws from its own stream: few-shot sampling never shifts k-means' draws.
_STAGE_OFFSETS = {"presample": 0x5EED_0001, "gen": 0x5EED_0002, "baseline": 0x5EED_0003}


def stage_generator(seed: int, stage: str) -> torch.Generator:
    """A CPU generator for ``stage``; draw on the CPU and move, so CPU and GPU runs agree."""
    return torch.Generator().manual_seed((int(seed) + _STAGE_OFFSETS[stage]) % 2**63)


def uniform(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Uniform [0, 1) draws in float64, made on the CPU and moved to ``device``."""
    return torch.rand(shape, generator=generator, dtype=torch.float64).to(device)
