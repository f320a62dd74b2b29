"""Normalisations: NORMpre and NORMinf act on embeddings, NORMpost on a task's proxies."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from imprint.method.batch import ProxySet

_EPS = 1e-12


def identity(x: Tensor) -> Tensor:
    return x


def l2_normalize(x: Tensor) -> Tensor:
    """Scale each row to unit Euclidean norm (zero rows stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def quantiles(values: Tensor, probs: Tensor) -> Tensor:
    """Quantiles of ``values`` (any shape) at ``probs``, linear interpolation as ``numpy.quantile``.

    Written out because ``torch.quantile`` refuses inputs above 2**24 elements: only the order
    statistics needed are found, by a partial selection on the CPU (NumPy's introselect, a few
    times faster than a full sort there) and by a sort on a GPU.
    """
    flat = values.flatten()

    def order_statistics(index: Tensor) -> Tensor:
        if flat.device.type == "cpu":
            wanted = torch.unique(index)
            return torch.from_numpy(np.partition(flat.numpy(), wanted.numpy()))[index]
        return torch.sort(flat).values[index]

    return _interpolated(order_statistics, flat.numel(), probs)


def _interpolated(order_statistics: Callable[[Tensor], Tensor], size: int, probs: Tensor) -> Tensor:
    """``numpy.quantile``'s linear interpolation at ``probs`` between the order statistics of
    ``size`` values (``order_statistics``: the values at given sorted positions)."""
    position = probs.double() * (size - 1)
    lower = position.floor().long()
    upper = torch.clamp(lower + 1, max=size - 1)
    low, high = order_statistics(torch.cat([lower, upper])).double().split(len(lower))
    return low + (position - lower) * (high - low)


def _probs(dim: int, device: torch.device) -> Tensor:
    return (torch.arange(dim, device=device, dtype=torch.float64) + 0.5) / dim


def _rank_replace(weights: Tensor, targets: Tensor) -> Tensor:
    """Each row's values replaced, rank for rank, by ``targets`` (D,) in ascending order."""
    ranks = torch.argsort(weights, dim=1, stable=True)
    return torch.empty_like(weights).scatter_(1, ranks, targets.expand_as(weights).contiguous())


def quantile_normalize(proxies: ProxySet) -> ProxySet:
    """Every proxy mapped onto the pooled value distribution of all the task's proxies."""
    weights = proxies.weights
    targets = quantiles(weights, _probs(weights.shape[1], weights.device)).to(weights.dtype)
    return proxies.replace(_rank_replace(weights, targets))


def quantile_normalize_sequential(proxies: ProxySet) -> ProxySet:
    """The paper's variant: class c is mapped onto the already normalised proxies of classes < c.

    The first class with proxies is left as it is, so it sets the reference for all others. A
    normalised proxy holds exactly the D targets of its class, so the reference grows by those
    targets, each as often as the class has proxies (``_Reference``), not by pooling again."""
    out = proxies.weights.clone()
    probs = _probs(out.shape[1], out.device)
    reference: _Reference | None = None
    for c in range(int(proxies.labels.max()) + 1):
        rows = proxies.labels == c
        count = int(rows.sum())
        if count == 0:
            continue
        if reference is None:
            reference = _Reference(out[rows])
            continue
        targets = _interpolated(reference.order_statistics, len(reference), probs).to(out.dtype)
        out[rows] = _rank_replace(out[rows], targets)
        reference.add(targets, count)
    return proxies.replace(out)


class _Reference:
    """A multiset of values: the sorted values of a base, and sorted values each repeated a
    given number of times; its order statistics without writing the repeats out."""

    def __init__(self, base: Tensor) -> None:
        self.base = torch.sort(base.flatten()).values
        self.values = base.new_empty(0)
        self.counts = torch.empty(0, dtype=torch.long, device=base.device)

    def __len__(self) -> int:
        return len(self.base) + int(self.counts.sum())

    def add(self, values: Tensor, count: int) -> None:
        """``values`` (any order), each ``count`` times."""
        every = torch.cat([self.values, values])
        counts = torch.cat([self.counts, torch.full(values.shape, count, device=values.device)])
        order = torch.sort(every, stable=True).indices
        self.values, self.counts = every[order], counts[order]

    def order_statistics(self, index: Tensor) -> Tensor:
        """The values at sorted positions ``index``; a repeated value sorts before base values
        equal to it, each value's repeats as one run."""
        if not len(self.values):
            return self.base[index]
        ends = torch.cumsum(self.counts, 0)
        starts = torch.searchsorted(self.base, self.values) + ends - self.counts
        run = torch.searchsorted(starts, index, right=True) - 1
        safe = run.clamp_min(0)
        in_run = (run >= 0) & (index < starts[safe] + self.counts[safe])
        before = torch.where(run >= 0, ends[safe], 0)  # repeats sorted before the position
        base_index = (index - before).clamp(0, len(self.base) - 1)
        return torch.where(in_run, self.values[safe], self.base[base_index])


# NORMpre and NORMinf: row-wise maps of embeddings.
NORM: dict[str, Callable[[Tensor], Tensor]] = {"none": identity, "l2": l2_normalize}

# NORMpost: maps of a whole proxy set (quantile normalisation pools over all proxies).
NORM_POST: dict[str, Callable[[ProxySet], ProxySet]] = {
    "none": lambda proxies: proxies,
    "l2": lambda proxies: proxies.replace(l2_normalize(proxies.weights)),
    "quantile": quantile_normalize,
    "quantile_sequential": quantile_normalize_sequential,
}
