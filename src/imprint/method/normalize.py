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
    position = probs.double() * (flat.numel() - 1)
    lower = position.floor().long()
    upper = torch.clamp(lower + 1, max=flat.numel() - 1)
    if flat.device.type == "cpu":
        wanted = torch.unique(torch.cat([lower, upper]))
        ordered = torch.from_numpy(np.partition(flat.numpy(), wanted.numpy()))
    else:
        ordered = torch.sort(flat).values
    low, high = ordered[lower].double(), ordered[upper].double()
    return low + (position - lower) * (high - low)


def _match_ranks(weights: Tensor, reference: Tensor) -> Tensor:
    """Replace the values of each row, rank for rank, by the quantiles of ``reference``."""
    dim = weights.shape[1]
    probs = (torch.arange(dim, device=weights.device, dtype=torch.float64) + 0.5) / dim
    targets = quantiles(reference, probs).to(weights.dtype)
    ranks = torch.argsort(weights, dim=1, stable=True)
    return torch.empty_like(weights).scatter_(1, ranks, targets.expand_as(weights).contiguous())


def quantile_normalize(proxies: ProxySet) -> ProxySet:
    """Every proxy mapped onto the pooled value distribution of all the task's proxies."""
    return proxies.replace(_match_ranks(proxies.weights, proxies.weights))


def quantile_normalize_sequential(proxies: ProxySet) -> ProxySet:
    """The paper's variant: class c is mapped onto the already normalised proxies of classes < c.

    The first class is left as it is, so it sets the reference for all others.
    """
    out = proxies.weights.clone()
    n_classes = int(proxies.labels.max()) + 1
    for c in range(1, n_classes):
        rows = proxies.labels == c
        if rows.any():
            out[rows] = _match_ranks(out[rows], out[proxies.labels < c])
    return proxies.replace(out)


# NORMpre and NORMinf: row-wise maps of embeddings.
NORM: dict[str, Callable[[Tensor], Tensor]] = {"none": identity, "l2": l2_normalize}

# NORMpost: maps of a whole proxy set (quantile normalisation pools over all proxies).
NORM_POST: dict[str, Callable[[ProxySet], ProxySet]] = {
    "none": lambda proxies: proxies,
    "l2": lambda proxies: proxies.replace(l2_normalize(proxies.weights)),
    "quantile": quantile_normalize,
    "quantile_sequential": quantile_normalize_sequential,
}
