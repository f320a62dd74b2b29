"""Two exemplar-free class-incremental learners of the field, on frozen embeddings as their
authors ran them on pretrained models:

- ``RanPAC`` (McDonnell et al., NeurIPS 2023): a seeded random projection of the embeddings to
  M dimensions (default 10,000) with ReLU, then ridge regression on one-hot targets. The Gram
  matrix G = Σ hhᵀ and Q = Σ hyᵀ are summed over steps; on every step λ is chosen from
  10⁻⁸…10⁸ by the mean squared error on the last fifth of that step's rows (shuffled; seeded here)
  of a ridge fitted on the first four fifths, and the weights are (G + λI)⁻¹ Q. The first
  session's adapter training of the full method is not run: the embeddings stay the FM's; and
  everything is computed in float64 (the authors' code: float32).
- ``FeCAM`` (Goswami et al., NeurIPS 2023), its rule for pretrained ViTs: rows L2-normalised,
  per class the mean and the sample covariance, shrunk by the mean of its diagonal
  (Σ + mean(diag Σ)·I) and scaled to a correlation matrix; a row goes to the class of the least
  Mahalanobis distance under that matrix's pseudo-inverse. ``tukey`` applies the Tukey power
  transform x^β (log for β = 0) the authors use for non-negative CNN features first.

Both keep statistics only (no row): RanPAC the M × M Gram matrix, FeCAM one D × D matrix a
class. FeCAM's classes depend on their own rows alone, so steps give exactly one fit's model;
RanPAC's λ is chosen on each step's rows, so a sequence of steps may differ from one fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from imprint.method.params import RANPAC_DIMENSIONS

RANPAC_RIDGES = 10.0 ** np.arange(-8, 9)
RANPAC_HELD_OUT = 0.2
_CHUNK_ROWS = 2048  # rows RanPAC projects at a time where it needs only their sums


class ClassLearner:
    """A learner whose classes come with ``partial_fit``: labels to positions in the order the
    classes were first seen, and prediction by the highest of its ``scores`` (ties: the first
    learnt)."""

    classes_: np.ndarray | None = None

    def _positions(self, y: np.ndarray) -> Tensor:
        """Positions of the labels ``y``, new labels appended to ``classes_``."""
        y = np.asarray(y)
        seen = np.empty(0, dtype=y.dtype) if self.classes_ is None else self.classes_
        self.classes_ = np.concatenate([seen, np.setdiff1d(np.unique(y), seen)])
        position = {label: i for i, label in enumerate(self.classes_.tolist())}
        return torch.tensor([position[label] for label in y.tolist()])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The class with the highest score of each row (``scores``)."""
        if self.classes_ is None:
            raise ValueError(
                f"this {type(self).__name__} has learnt no class yet: call partial_fit"
            )
        return self.classes_[self.scores(X).argmax(1).numpy()]


def _rows(X: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(X, dtype=np.float64))


def ranpac_ridge(
    held: tuple[Tensor, Tensor],
    fit_sums: tuple[Tensor, Tensor],
    fit_rows: tuple[Tensor, Tensor] | None = None,
) -> float:
    """RanPAC's λ: the ridge of ``RANPAC_RIDGES`` whose fit on four fifths of a call's rows
    predicts the other fifth with the least mean squared error (the first such). ``held``: that
    fifth's projected rows (N_v, M) and one-hot targets; ``fit_sums``: G and Q of the fitted rows;
    ``fit_rows``: those rows and targets themselves, given where fewer than M. Every ridge from
    one eigen-decomposition: of G or, given the rows, of their kernel matrix (the same
    predictions: H_v (H_fᵀH_f + λI)⁻¹ H_fᵀY = H_v H_fᵀ (H_f H_fᵀ + λI)⁻¹ Y)."""
    h_held, y_held = held
    if fit_rows is not None:
        h_fit, y_fit = fit_rows
        values, vectors = torch.linalg.eigh(h_fit @ h_fit.T)
        left, right = h_held @ h_fit.T @ vectors, vectors.T @ y_fit
    else:
        gram, products = fit_sums
        values, vectors = torch.linalg.eigh(gram)
        left, right = h_held @ vectors, vectors.T @ products
    losses = [
        float(((left / (values + ridge)) @ right - y_held).pow(2).mean()) for ridge in RANPAC_RIDGES
    ]
    return float(RANPAC_RIDGES[int(np.argmin(losses))])


class _Projected:
    """A call's rows as RanPAC projects them, made ``_CHUNK_ROWS`` at a time when only their
    sums are needed (the projected rows of a large call would take N × M float64)."""

    def __init__(self, x: Tensor, projection: Tensor) -> None:
        self.x, self.projection = x, projection

    def rows(self, index: Tensor) -> Tensor:
        return torch.relu(self.x[index] @ self.projection)

    def sums(self, index: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Σ hhᵀ and Σ hyᵀ over the rows ``index`` (one-hot ``targets``, one row each)."""
        size = self.projection.shape[1]
        gram, products = self.x.new_zeros(size, size), self.x.new_zeros(size, targets.shape[1])
        for start in range(0, len(index), _CHUNK_ROWS):
            h = self.rows(index[start : start + _CHUNK_ROWS])
            gram += h.T @ h
            products += h.T @ targets[start : start + _CHUNK_ROWS]
        return gram, products


def ranpac_scores(x: Tensor, projection: Tensor, weight: Tensor) -> Tensor:
    """RanPAC's class scores of the rows ``x`` (N, D): ReLU(x P) W, (N, classes)."""
    return torch.relu(x.to(projection.dtype) @ projection) @ weight


def fecam_rows(x: Tensor, tukey: float | None = None) -> Tensor:
    """Rows (N, D) as FeCAM compares them: Tukey's power transform (``tukey``; 0: the log), if
    any, then each row L2-normalised."""
    if tukey is not None:
        if (x < 0).any():
            raise ValueError(
                "FeCAM's Tukey transform needs non-negative embeddings (CNN features after a "
                "ReLU); these have negative entries: use tukey=None"
            )
        x = x.log() if tukey == 0 else x.pow(tukey)
    return torch.nn.functional.normalize(x, dim=1)


def fecam_scores(
    x: Tensor, means: Tensor | Sequence[Tensor], precisions: Tensor | Sequence[Tensor]
) -> Tensor:
    """FeCAM's class scores of the rows ``x`` (N, D; as ``fecam_rows`` gives them): each row's
    negative Mahalanobis distance to each class of ``means`` (C, D) under its matrix of
    ``precisions`` (C, D, D), stacked or one tensor a class."""
    distances = []
    for mean, precision in zip(means, precisions, strict=True):
        centred = x - mean
        distances.append((centred @ precision * centred).sum(1))
    return -torch.stack(distances, 1)


class RanPAC(ClassLearner):
    """RanPAC without its first-session adapter training (module docstring): ``partial_fit``
    adds each call's rows to G and Q, chooses λ on them and solves for the weights."""

    def __init__(self, dimensions: int = RANPAC_DIMENSIONS, seed: int = 0) -> None:
        self.dimensions, self.seed = dimensions, seed
        self.steps = 0
        self.projection: Tensor | None = None
        self.gram: Tensor | None = None
        self.targets: Tensor | None = None
        self.weight: Tensor | None = None
        self.ridge: float | None = None

    def partial_fit(self, X: np.ndarray, y: np.ndarray) -> RanPAC:
        """Learn from the rows ``X`` (N, D) of labels ``y``; labels not seen before are new
        classes. λ is chosen on a seeded fifth of them; G and Q gain all of them."""
        labels = self._positions(y)
        if self.projection is None:
            generator = torch.Generator().manual_seed(self.seed)
            shape = (np.shape(X)[1], self.dimensions)
            self.projection = torch.randn(shape, generator=generator, dtype=torch.float64)
            self.gram = torch.zeros(self.dimensions, self.dimensions, dtype=torch.float64)
            self.targets = torch.zeros(self.dimensions, 0, dtype=torch.float64)
        one_hot = torch.nn.functional.one_hot(labels, len(self.classes_)).double()
        grown = len(self.classes_) - self.targets.shape[1]
        self.targets = torch.cat([self.targets, self.targets.new_zeros(self.dimensions, grown)], 1)
        order = torch.as_tensor(np.random.default_rng(self.seed + self.steps).permutation(len(y)))
        n_fit = int(len(y) * (1 - RANPAC_HELD_OUT))
        fit, held = order[:n_fit], order[n_fit:]
        projected = _Projected(_rows(X), self.projection)
        h_held, fit_sums = projected.rows(held), projected.sums(fit, one_hot[fit])
        # the kernel form where the fitted rows themselves are smaller than G
        fit_rows = (projected.rows(fit), one_hot[fit]) if n_fit <= self.dimensions else None
        self.ridge = ranpac_ridge((h_held, one_hot[held]), fit_sums, fit_rows)
        self.gram += fit_sums[0] + h_held.T @ h_held
        self.targets += fit_sums[1] + h_held.T @ one_hot[held]
        regularised = self.gram + self.ridge * torch.eye(self.dimensions, dtype=torch.float64)
        self.weight = torch.linalg.solve(regularised, self.targets)
        self.steps += 1
        return self

    def scores(self, X: np.ndarray) -> Tensor:
        """Each row's score per class (N, classes): its projected features times the weights."""
        return ranpac_scores(_rows(X), self.projection, self.weight)

    def kept_state(self) -> dict[str, Tensor]:
        """What RanPAC keeps between calls: G, Q and the weights (the projection is its seed's)."""
        return {"gram": self.gram, "targets": self.targets, "weight": self.weight}


def fecam_matrix(count: int, total: Tensor, outer: Tensor) -> Tensor:
    """FeCAM's matrix of a class from its row count, sum and sum of outer products: the sample
    covariance shrunk by the mean of its diagonal and scaled to unit diagonal, pseudo-inverted."""
    mean = total / count
    covariance = (outer - count * torch.outer(mean, mean)) / (count - 1)
    shrunk = covariance + covariance.diagonal().mean() * torch.eye(len(mean), dtype=mean.dtype)
    spread = shrunk.diagonal().sqrt()
    return torch.linalg.pinv(shrunk / torch.outer(spread, spread), hermitian=True)


class FeCAM(ClassLearner):
    """FeCAM on frozen embeddings (module docstring): per class the row count, sum and sum of
    outer products, from which its mean and matrix are recomputed when it gains rows (kept per
    class, so a step touches only its own classes)."""

    def __init__(self, tukey: float | None = None) -> None:
        self.tukey = tukey
        self.count: list[int] = []
        self.total: list[Tensor] = []
        self.outer: list[Tensor] = []
        self.precision: list[Tensor | None] = []  # None only until its class's first rows

    def partial_fit(self, X: np.ndarray, y: np.ndarray) -> FeCAM:
        """Learn from the rows ``X`` (N, D) of labels ``y`` (at least two rows a new class)."""
        x = fecam_rows(_rows(X), self.tukey)
        known = (
            {}
            if self.classes_ is None
            else dict(zip(self.classes_.tolist(), self.count, strict=True))
        )
        for label, n in zip(*np.unique(np.asarray(y), return_counts=True), strict=True):
            if n + known.get(label, 0) < 2:
                raise ValueError(
                    f"FeCAM needs at least two rows of a class for its covariance; class "
                    f"{label!r} has one"
                )
        labels = self._positions(y)
        dim = x.shape[1]
        for _ in range(len(self.classes_) - len(self.count)):
            self.count.append(0)
            self.total.append(x.new_zeros(dim))
            self.outer.append(x.new_zeros(dim, dim))
            self.precision.append(None)
        for c in labels.unique().tolist():
            rows = x[labels == c]
            self.count[c] += len(rows)
            self.total[c] += rows.sum(0)
            self.outer[c] += rows.T @ rows
            self.precision[c] = fecam_matrix(self.count[c], self.total[c], self.outer[c])
        return self

    def scores(self, X: np.ndarray) -> Tensor:
        """Each row's negative Mahalanobis distance to each class (N, classes)."""
        return fecam_scores(fecam_rows(_rows(X), self.tukey), self.means(), self.precision)

    def means(self) -> Tensor:
        """Each class's mean (classes, D)."""
        return torch.stack(
            [total / count for count, total in zip(self.count, self.total, strict=True)]
        )

    def kept_state(self) -> dict[str, Tensor]:
        """What FeCAM keeps between calls: each class's count, sum, outer products and matrix."""
        return {
            "count": torch.tensor(self.count),
            "total": torch.stack(self.total),
            "outer": torch.stack(self.outer),
            "precision": torch.stack(self.precision),
        }
