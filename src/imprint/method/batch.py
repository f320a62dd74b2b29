"""Padded per-class views of training embeddings and flat sets of proxies.

Every component works on these two shapes, so one code path serves one class, many classes,
CPU and GPU alike: ``ClassBatch`` holds C classes padded to (C, n_max, D) with a validity mask,
``ProxySet`` holds P proxies (P, D) with their class index, sorted by class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ClassBatch:
    """Training embeddings of C classes, padded to (C, n_max, D); ``mask`` marks real samples;
    ``keys`` name the classes for their random streams (``imprint.method.randomness``)."""

    x: Tensor
    mask: Tensor
    keys: tuple[str, ...]

    @classmethod
    def from_labels(
        cls, x: Tensor, labels: Tensor, n_classes: int, keys: Sequence[str] | None = None
    ) -> ClassBatch:
        """Group the rows of ``x`` (N, D) by ``labels`` in 0..n_classes-1, keeping their order.
        ``keys`` default to the class indices ("0", "1", ...: integer labels 0..C-1)."""
        order = torch.argsort(labels, stable=True)
        labels_sorted = labels[order]
        counts = torch.bincount(labels_sorted, minlength=n_classes)
        starts = torch.cumsum(counts, 0) - counts
        position = torch.arange(len(labels), device=x.device) - starts[labels_sorted]
        n_max = int(counts.max())
        padded = x.new_zeros(n_classes, n_max, x.shape[1])
        padded[labels_sorted, position] = x[order]
        mask = torch.zeros(n_classes, n_max, dtype=torch.bool, device=x.device)
        mask[labels_sorted, position] = True
        keys = tuple(keys) if keys is not None else tuple(str(c) for c in range(n_classes))
        if len(keys) != n_classes:
            raise ValueError(f"{len(keys)} class keys for {n_classes} classes")
        return cls(padded, mask, keys)

    @property
    def counts(self) -> Tensor:
        return self.mask.sum(1)

    @property
    def n_classes(self) -> int:
        return self.x.shape[0]

    def flat(self) -> tuple[Tensor, Tensor]:
        """All real samples (N, D) and their class indices (N,), class by class (the samples a
        view of ``x``, not a copy, when no class is padded)."""
        labels = torch.arange(self.n_classes, device=self.x.device)[:, None].expand_as(self.mask)
        if bool(self.mask.all()):
            return self.x.flatten(0, 1), labels.reshape(-1)
        return self.x[self.mask], labels[self.mask]

    def means(self) -> Tensor:
        """Class means (C, D)."""
        weights = self.mask.to(self.x.dtype)
        return (weights[..., None] * self.x).sum(1) / weights.sum(1, keepdim=True).clamp_min(1)

    def keep(self, keep: Tensor) -> ClassBatch:
        """The samples where ``keep`` (C, n_max) is true, moved to the front, in order."""
        keep = keep & self.mask
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
        n_max = max(int(keep.sum(1).max()), 1)
        order = order[:, :n_max]
        x = torch.gather(self.x, 1, order[..., None].expand(-1, -1, self.x.shape[2]))
        mask = torch.gather(keep, 1, order)
        return ClassBatch(x * mask[..., None], mask, self.keys)

    def subset(self, classes: Tensor) -> ClassBatch:
        """The classes selected by a boolean or index tensor (this batch itself, not a copy, when
        a boolean tensor selects every class)."""
        if classes.dtype == torch.bool and bool(classes.all()):
            return self
        index = (
            torch.arange(self.n_classes)[classes.cpu()] if classes.dtype == torch.bool else classes
        )
        keys = tuple(self.keys[i] for i in index.cpu().tolist())
        return ClassBatch(self.x[classes], self.mask[classes], keys)


@dataclass(frozen=True)
class ProxySet:
    """P proxies (P, D) and the class index of each (P,), sorted by class."""

    weights: Tensor
    labels: Tensor

    @classmethod
    def from_padded(cls, weights: Tensor, valid: Tensor) -> ProxySet:
        """Flatten per-class proxies (C, K, D) where ``valid`` (C, K) marks the real ones."""
        labels = torch.arange(weights.shape[0], device=weights.device)[:, None].expand_as(valid)
        return cls(weights[valid], labels[valid])

    def replace(self, weights: Tensor) -> ProxySet:
        return ProxySet(weights, self.labels)
