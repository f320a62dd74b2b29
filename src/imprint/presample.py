"""Presampling: which training samples of each class reach the weight generator."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from imprint.batch import ClassBatch
from imprint.randomness import uniform


def fewshot(batch: ClassBatch, n: int, generator: torch.Generator) -> ClassBatch:
    """``n`` random samples per class (all of a class with fewer; ``n = -1`` keeps everything)."""
    if n == -1 or n >= int(batch.counts.max()):
        return batch
    keys = uniform(tuple(batch.mask.shape), generator, batch.x.device)
    keys = keys.masked_fill(~batch.mask, math.inf)
    rank = torch.argsort(torch.argsort(keys, dim=1), dim=1)
    return batch.keep(rank < n)


def fit_weibull(distances: Tensor, mask: Tensor, iterations: int = 200) -> tuple[Tensor, Tensor]:
    """Maximum-likelihood Weibull shape and scale (location 0) per row of ``distances``.

    Solves the shape equation  sum(d^b ln d)/sum(d^b) - 1/b = mean(ln d), whose left side increases
    with b, by bisection on log b; rows are fitted independently, in float64.
    """
    d = distances.double()
    w = mask.double()
    d = d / (d * w).amax(1, keepdim=True).clamp_min(
        1e-300
    )  # shape is scale-free; scale is restored
    log_d = torch.log(d.clamp_min(1e-300)) * w
    target = log_d.sum(1) / w.sum(1)
    lo = torch.full_like(target, math.log(1e-3))
    hi = torch.full_like(target, math.log(1e3))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        b = torch.exp(mid)[:, None]
        power = d.clamp_min(1e-300) ** b * w
        lhs = (power * log_d).sum(1) / power.sum(1) - 1 / b[:, 0]
        above = lhs > target
        hi = torch.where(above, mid, hi)
        lo = torch.where(above, lo, mid)
    shape = torch.exp((lo + hi) / 2)
    scale_unit = ((d.clamp_min(1e-300) ** shape[:, None] * w).sum(1) / w.sum(1)) ** (1 / shape)
    scale = scale_unit * (distances.double() * w).amax(1)
    return shape, scale


def weibull_quantile(shape: Tensor, scale: Tensor, p: float) -> Tensor:
    """Inverse CDF of the Weibull law: scale * (-ln(1 - p))^(1/shape)."""
    if p >= 1:
        return torch.full_like(scale, math.inf)
    return scale * (-math.log1p(-p)) ** (1 / shape)


def weibull(batch: ClassBatch, lower: float, upper: float) -> ClassBatch:
    """Keep the samples whose distance to their class mean lies between the fitted Weibull law's
    ``lower`` and ``upper`` quantiles (``[0, 1]`` keeps everything)."""
    if not 0 <= lower < upper <= 1:
        raise ValueError(f"weibull=[{lower}, {upper}] is not valid; need 0 <= a < b <= 1")
    if int(batch.counts.min()) < 2:
        raise ValueError("weibull presampling needs at least 2 training samples in every class")
    distances = (batch.x - batch.means()[:, None]).norm(dim=-1)
    shape, scale = fit_weibull(distances, batch.mask)
    low = weibull_quantile(shape, scale, lower)[:, None]
    high = weibull_quantile(shape, scale, upper)[:, None]
    d = distances.double()
    kept = batch.keep((d >= low) & (d <= high))
    if int(kept.counts.min()) == 0:
        raise ValueError(
            f"weibull=[{lower}, {upper}] leaves a class without samples; widen the quantile range"
        )
    return kept
