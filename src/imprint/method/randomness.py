"""Seeded random draws that are identical on every device, independent between stages and
keyed by class.

Every class draws from its own stream, seeded by (seed, stage, class label): a class's few-shot
sample, random proxies and clustering seeds do not depend on which other classes share the task
or where the class sits among them. This is what lets ``ImprintingClassifier.partial_fit`` add
classes without redrawing the others, and a sweep over a subset of classes reproduce the full
task's draws for those classes.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

_STAGES = ("presample", "gen", "baseline")


def class_key(label: object) -> str:
    """A label's canonical text: integral numbers as integers (3, 3.0 and numpy's int64(3) are
    the same class), other numbers as Python floats, anything else as ``str``."""
    if isinstance(label, numbers.Number) and not isinstance(label, bool | complex):
        value = float(label)  # type: ignore[arg-type]
        return str(int(value)) if value.is_integer() else repr(value)
    return str(label)


def class_keys(labels: Iterable[object]) -> tuple[str, ...]:
    return tuple(class_key(label) for label in labels)


def stage_seed(seed: int, stage: str, key: str) -> int:
    """A 63-bit seed for one (seed, stage, class key)."""
    if stage not in _STAGES:
        raise ValueError(f"unknown random stage {stage!r}; one of {_STAGES}")
    text = f"{int(seed)}\x1f{stage}\x1f{key}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def stage_generator(seed: int, stage: str, key: str = "") -> torch.Generator:
    """A CPU generator for ``stage`` (and one class key); draw on the CPU and move, so CPU and GPU
    runs agree."""
    return torch.Generator().manual_seed(stage_seed(seed, stage, key))


def uniform(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Uniform [0, 1) draws in float64, made on the CPU and moved to ``device``."""
    return torch.rand(shape, generator=generator, dtype=torch.float64).to(device)


class ClassStreams:
    """One random stream per class of a batch (rows in the batch's class order)."""

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        self.generators = list(generators)

    @classmethod
    def keyed(cls, seed: int, stage: str, keys: Sequence[str]) -> ClassStreams:
        return cls([stage_generator(seed, stage, key) for key in keys])

    def __len__(self) -> int:
        return len(self.generators)

    def subset(self, classes: slice) -> ClassStreams:
        """The streams of a slice of the classes (shared, so drawing from the subset advances
        these streams)."""
        return ClassStreams(self.generators[classes])

    def uniform(self, draws: int, device: torch.device) -> Tensor:
        """``draws`` uniform [0, 1) values per class: (C, draws) in float64."""
        return torch.stack(
            [torch.rand(draws, generator=g, dtype=torch.float64) for g in self.generators]
        ).to(device)

    def uniform_masked(self, mask: Tensor) -> Tensor:
        """Per class, one uniform value for each true entry of its row of ``mask`` (C, n), in
        order; +inf where ``mask`` is false. A class draws as many values as it has entries."""
        counts = mask.sum(1).tolist()
        draws = torch.cat(
            [
                torch.rand(int(n), generator=g, dtype=torch.float64)
                for g, n in zip(self.generators, counts, strict=True)
            ]
        )
        keys = torch.full(mask.shape, torch.inf, dtype=torch.float64, device=mask.device)
        return keys.masked_scatter_(mask, draws.to(mask.device))
