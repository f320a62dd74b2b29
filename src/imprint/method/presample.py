"""Presampling: which training samples of each class reach the weight generator."""

from __future__ import annotations

import numpy as np
import torch

from imprint.method.batch import ClassBatch
from imprint.method.randomness import ClassStreams


def fewshot(batch: ClassBatch, n: int, seed: int) -> ClassBatch:
    """``n`` random samples per class (all of a class with fewer; ``n = -1`` keeps everything),
    each class drawn from its own stream (``imprint.method.randomness``)."""
    if n == -1 or n >= int(batch.counts.max()):
        return batch
    keys = ClassStreams.keyed(seed, "presample", batch.keys).uniform_masked(batch.mask)
    rank = torch.argsort(torch.argsort(keys, dim=1), dim=1)
    return batch.keep(rank < n)


def weibull(batch: ClassBatch, lower: float, upper: float) -> ClassBatch:
    """Keep the samples whose distance to their class mean lies between the ``lower`` and
    ``upper`` quantiles of a Weibull law fitted to those distances, as the reference does: a
    three-parameter maximum-likelihood fit (shape, free location, scale; SciPy's
    ``weibull_min.fit``) per class, on float32 distances."""
    from scipy.stats import weibull_min  # about a second to import: only where runs ask for it

    if not 0 <= lower < upper <= 1:
        raise ValueError(f"weibull=[{lower}, {upper}] is not valid; need 0 <= a < b <= 1")
    if int(batch.counts.min()) < 2:
        raise ValueError("weibull presampling needs at least 2 training samples in every class")
    distances = (batch.x - batch.means()[:, None]).norm(dim=-1).cpu()
    bounds = []
    for c in range(batch.n_classes):
        params = weibull_min.fit(distances[c][batch.mask[c].cpu()].numpy())
        bounds.append(weibull_min.ppf([lower, upper], *params))
    low, high = torch.tensor(np.array(bounds), device=batch.x.device).T[..., None]
    d = distances.to(batch.x.device).double()
    kept = batch.keep((d >= low) & (d <= high))
    if int(kept.counts.min()) == 0:
        raise ValueError(
            f"weibull=[{lower}, {upper}] leaves a class without samples; widen the quantile range"
        )
    return kept
