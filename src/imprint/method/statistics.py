"""Exemplar-free state: what ``ImprintingClassifier(keep="statistics")`` keeps instead of the
training rows, and which configurations it serves.

Each ``partial_fit`` call brings classes not seen before. Their per-class steps (NORMpre,
presampling, GEN) run on their rows as in ``fit``; then the rows are dropped. What the steps that
couple classes need is kept as sums over rows, which add up from call to call:

- every GEN: each class's proxies before NORMpost (``kls``: its k-means clusters); ``ls``: each
  class's mean and row count instead;
- ``ls`` and ``kls``: X^T X over the rows of the joint solve (``kls``: the classes with at least
  k rows, as the reference leaves the others out);
- NORMpost (``none``, ``l2``, ``quantile``, ``quantile_sequential``) and AGG: the proxies alone;
- ``mahalanobis``: the moments of ``RowMoments``, from which the Ledoit–Wolf covariance of all
  rows follows.

So every GEN, NORMpost, NORMinf and AGG predicts as one ``fit`` on all the rows, but for the
order of float sums (the scores agree to rounding). Refused, with the reason: the baselines (the
linear probe refits on every row; k-NN and the cache score against every row), more rows for a
class already kept (its per-class steps would need its earlier rows) and ``calibrate``
(cross-fitting refits on rows).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from imprint.method.aggregation import ledoit_wolf_shrink, whitening_of
from imprint.method.batch import ClassBatch, ProxySet
from imprint.method.generators import (
    gram_matrix,
    least_squares_weights,
    ridge_factor,
    solve_clusters,
)

KEEP = ("rows", "statistics")


@dataclass(frozen=True)
class RowMoments:
    """Sums over rows x in float64, about a fixed ``origin`` o (the first rows' mean, which keeps
    the sums small): the count n, Σ z, Σ z zᵀ, Σ ||z||² z and Σ ||z||⁴ for z = x - o."""

    origin: Tensor
    count: int
    total: Tensor
    gram: Tensor
    weighted: Tensor
    fourth: Tensor

    @classmethod
    def of(cls, x: Tensor, origin: Tensor | None = None) -> RowMoments:
        xd = x.double()
        origin = xd.mean(0) if origin is None else origin
        z = xd - origin
        norms = z.pow(2).sum(1)
        return cls(origin, len(z), z.sum(0), z.T @ z, norms @ z, norms.pow(2).sum())

    def add(self, x: Tensor) -> RowMoments:
        """These moments with the rows ``x`` added."""
        more = RowMoments.of(x, self.origin)
        return RowMoments(
            self.origin,
            self.count + more.count,
            *(getattr(self, f) + getattr(more, f) for f in ("total", "gram", "weighted", "fourth")),
        )

    def covariance(self) -> Tensor:
        """The Ledoit–Wolf covariance of the rows (``ledoit_wolf_shrink``), from the moments: with
        m = Σ z / n, Σ ||z - m||⁴ = Σ ||z||⁴ - 4 m·Σ ||z||² z + 4 mᵀ (Σ z zᵀ) m
        + 2 ||m||² Σ ||z||² - 3 n ||m||⁴."""
        n, m = self.count, self.total / self.count
        c = m @ m
        fourth = (
            self.fourth
            - 4 * (m @ self.weighted)
            + 4 * (m @ self.gram @ m)
            + 2 * c * self.gram.trace()
            - 3 * n * c**2
        )
        return ledoit_wolf_shrink(self.gram / n - torch.outer(m, m), fourth, n)

    def state(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class KeptSums:
    """The sums over every class added so far that the coupled steps need: X^T X (float64) and
    the row count of the joint solve (``ls``, ``kls``), and the rows' moments (``mahalanobis``);
    None where the configuration needs none."""

    gram: Tensor | None = None
    gram_rows: int = 0
    moments: RowMoments | None = None

    def added(self, batch: ClassBatch, p: dict[str, Any]) -> KeptSums:
        """These sums with the prepared rows of ``batch`` (new classes) added."""
        sums = self
        if p["gen"] in ("ls", "kls"):
            solved = batch if p["gen"] == "ls" else batch.subset(batch.counts >= p["k"])
            gram, rows = gram_matrix(solved)
            gram = gram if self.gram is None else self.gram + gram
            sums = replace(sums, gram=gram, gram_rows=self.gram_rows + rows)
        if p["distance"] == "mahalanobis":
            x = batch.flat()[0]
            moments = RowMoments.of(x) if self.moments is None else self.moments.add(x)
            sums = replace(sums, moments=moments)
        return sums

    def proxies(
        self, kept: ProxySet | None, means: list[Tensor], counts: list[int], p: dict[str, Any]
    ) -> ProxySet:
        """Every class's proxies before NORMpost, from what was kept of each (``kept``: their
        proxies stacked in class order; ``means`` and ``counts`` for ``ls``), as one fit on all
        rows computes them."""
        if p["gen"] == "ls":
            weights = least_squares_weights(self._factor(p), torch.stack(means))
            return ProxySet(weights, torch.arange(len(means), device=weights.device))
        if p["gen"] != "kls":
            return kept
        solved_classes = torch.tensor(counts, device=kept.labels.device) >= p["k"]
        return solve_clusters(kept, solved_classes, lambda: self._factor(p))

    def _factor(self, p: dict[str, Any]) -> tuple[Tensor, Tensor]:
        return ridge_factor(self.gram, self.gram_rows, p["lambda_reg"])

    def whitening(self, dtype: torch.dtype) -> Tensor | None:
        """Mahalanobis' whitening map of all rows (``whitening_of``), where it is needed."""
        return None if self.moments is None else whitening_of(self.moments.covariance()).to(dtype)

    def state(self) -> dict[str, Any]:
        moments = None if self.moments is None else self.moments.state()
        return {"gram": self.gram, "gram_rows": self.gram_rows, "moments": moments}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KeptSums:
        moments = state["moments"]
        return cls(
            state["gram"], state["gram_rows"], None if moments is None else RowMoments(**moments)
        )

    def to(self, device: str) -> KeptSums:
        """These sums on ``device``."""

        def moved(value: Any) -> Any:
            return value.to(device) if isinstance(value, Tensor) else value

        moments = self.moments
        if moments is not None:
            moments = RowMoments(**{key: moved(value) for key, value in moments.state().items()})
        return KeptSums(moved(self.gram), self.gram_rows, moments)
