"""Scores that mean something: a fitted classifier's calibration.

- **Confidence**: the softmax of the class scores divided by a temperature, the temperature
  fitted (least negative log-likelihood) on held-out rows of the training classes (Guo et al.,
  ICML 2017).
- **None of these**: a novelty score, the least Mahalanobis distance of an L2-normalised
  embedding to a class mean under one Ledoit-Wolf covariance shared by the classes (Lee et al.,
  NeurIPS 2018), flagged above a threshold set on held-out rows of the known classes so that at
  most the stated fraction of them would be flagged (the split-conformal quantile).

Held-out rows come from cross-fitting: the training rows in stratified folds, each fold scored by
a classifier and class means fitted on the other folds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from torch import Tensor

from imprint.method.aggregation import ledoit_wolf_covariance
from imprint.method.normalize import l2_normalize

FALSE_REJECTION = 0.05


def class_gaussians(x: Tensor, index: Tensor, n_classes: int) -> tuple[Tensor, Tensor]:
    """Class means (C, D) of the L2-normalised rows of ``x`` (N, D) with class ``index`` (N,), and
    the precision (D, D) of their shared within-class covariance (Ledoit-Wolf), in float64."""
    z = _unit(x)
    counts = torch.bincount(index, minlength=n_classes).to(z.dtype)
    means = torch.zeros(n_classes, z.shape[1], dtype=z.dtype, device=z.device)
    means.index_add_(0, index, z).div_(counts[:, None])
    covariance = ledoit_wolf_covariance(z - means[index])
    covariance.diagonal().add_(1e-9)  # rows all alike within their classes: still invertible
    return means, torch.cholesky_inverse(torch.linalg.cholesky(covariance))


def novelty_scores(x: Tensor, means: Tensor, precision: Tensor) -> Tensor:
    """The squared Mahalanobis distance (N,) of each L2-normalised row of ``x`` to its nearest
    class mean."""
    z = _unit(x)
    zp = z @ precision
    cross = zp @ means.T
    mean_terms = ((means @ precision) * means).sum(1)
    return ((zp * z).sum(1)[:, None] - 2 * cross + mean_terms[None, :]).amin(1).clamp_min(0)


def _unit(x: Tensor) -> Tensor:
    return l2_normalize(x.double())


def fit_temperature(scores: Tensor, index: Tensor) -> float:
    """The temperature T minimising the mean negative log-likelihood of the true classes
    ``index`` (N,) under softmax(scores / T) of held-out ``scores`` (N, C)."""
    s = scores.double()

    def loss(log_t: float) -> float:
        logits = s / math.exp(log_t)
        return float(torch.nn.functional.cross_entropy(logits, index))

    spread = float(s.std()) or 1.0  # searched from 1e-6 to 1e3 times the scores' spread
    found = minimize_scalar(
        loss, bounds=(math.log(spread) - 14, math.log(spread) + 7), method="bounded"
    )
    return math.exp(found.x)


def conformal_threshold(held_out: Tensor, false_rejection: float) -> float:
    """The novelty above which a new row of the known classes lies with probability at most
    ``false_rejection``: the ceil((n + 1)(1 - rate))-th smallest of ``n`` held-out scores."""
    n = len(held_out)
    rank = math.ceil((n + 1) * (1 - false_rejection))
    if rank > n:
        raise ValueError(
            f"{n} training rows cannot set a threshold at a false-rejection rate of "
            f"{false_rejection}: it needs at least {math.ceil(1 / false_rejection) - 1}; "
            "allow a higher rate or add rows"
        )
    return float(held_out.sort().values[rank - 1])


@dataclass(frozen=True)
class Calibration:
    """A classifier's temperature, its classes' Gaussians (in ``classes_`` order) and the
    novelty threshold at ``false_rejection``."""

    temperature: float
    means: Tensor
    precision: Tensor
    threshold: float
    false_rejection: float

    def confidence(self, scores: Tensor) -> Tensor:
        """Calibrated class probabilities (N, C) from the classifier's scores (N, C)."""
        return torch.softmax(scores.double() / self.temperature, dim=1)

    def novelty(self, x: Tensor) -> Tensor:
        """How unlike every known class each embedding (N, D) is (higher: less alike)."""
        return novelty_scores(x, self.means.to(x.device), self.precision.to(x.device))

    def unknown(self, x: Tensor) -> Tensor:
        """Whether each embedding looks like none of the known classes."""
        return self.novelty(x) > self.threshold

    def state(self) -> dict[str, Any]:
        """Plain values and CPU tensors (kept in model files); ``from_state`` reads them."""
        return {
            "temperature": self.temperature,
            "means": self.means.cpu(),
            "precision": self.precision.cpu(),
            "threshold": self.threshold,
            "false_rejection": self.false_rejection,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Calibration:
        return cls(**state)

    def reordered(self, order: list[int]) -> Calibration:
        """The same calibration with the classes in ``order``."""
        return Calibration(
            self.temperature, self.means[order], self.precision, self.threshold,
            self.false_rejection,
        )  # fmt: skip


def calibrate(
    clf: Any, x: Tensor, y: np.ndarray, false_rejection: float = FALSE_REJECTION, folds: int = 5
) -> Calibration:
    """The calibration of the fitted classifier ``clf``, from its training rows ``x`` (N, D) and
    labels ``y``: held-out scores and novelties from ``folds``-fold cross-fitting (fewer folds
    where a class has fewer rows; a class's lone row is never held out; clones of ``clf``, same
    parameters), the Gaussians from all rows."""
    if not 0 < false_rejection < 1:
        raise ValueError(f"false_rejection must lie between 0 and 1, got {false_rejection}")
    classes, counts = np.unique(y, return_counts=True)
    index = torch.as_tensor(np.searchsorted(classes, y), device=x.device)
    held = np.flatnonzero(counts[np.searchsorted(classes, y)] >= 2)  # a lone row is never held
    if len(held) == 0:
        raise ValueError(
            "every class has a single training row; calibration holds rows out of the classes: "
            "give some class two or more"
        )
    always = np.setdiff1d(np.arange(len(y)), held)
    splits = StratifiedKFold(
        min(folds, int(counts[counts >= 2].min())), shuffle=True, random_state=clf.seed % 2**32
    )
    scores = x.new_empty(len(held), len(classes), dtype=torch.float64)
    novelty = x.new_empty(len(held), dtype=torch.float64)
    for train, test in splits.split(held, y[held]):
        train = np.r_[held[train], always]
        rows = held[test]
        fold = clone(clf).fit(x[train], y[train])
        scores[test] = torch.as_tensor(fold.decision_function(x[rows]), device=x.device).double()
        gaussians = class_gaussians(x[train], index[train], len(classes))
        novelty[test] = novelty_scores(x[rows], *gaussians)
    return Calibration(
        fit_temperature(scores, index[held]),
        *class_gaussians(x, index, len(classes)),
        conformal_threshold(novelty, false_rejection),
        false_rejection,
    )
