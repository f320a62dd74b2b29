"""Weight generators (GEN): from a task's per-class training embeddings to proxies.

Each generator is ``gen(batch, k, context) -> ProxySet`` and is registered in ``GEN`` by name.
``k = -1``, or a class with no more than k samples, means the class's samples are its proxies.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from imprint.method import clustering
from imprint.method.batch import ClassBatch, ProxySet
from imprint.method.plan import KMEDOIDS_CACHE_ENTRIES
from imprint.method.randomness import ClassStreams


@dataclass
class GenContext:
    """What generators share for one batch and seed: the seed, the ridge λ and ``view``, the
    results that every k and seed of the batch may reuse: k-means clusterings (``kls`` reuses
    the clustering ``kmeans`` computed for the same k and seed, and the other way round), the
    Gram matrix and its factors, k-medoids' distances. A generator that reuses a result is
    charged the seconds it took in ``reused_seconds``: every GEN time is what the GEN would take
    alone."""

    seed: int
    lambda_reg: float = 1e-4
    view: dict[Hashable, tuple[Any, float]] = field(default_factory=dict)
    reused_seconds: float = 0.0

    def streams(self, batch: ClassBatch) -> ClassStreams:
        """The GEN stage's random stream of each class of ``batch``."""
        return ClassStreams.keyed(self.seed, "gen", batch.keys)

    def shared(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``view[key]``, computed once; its seconds (those of what it reused included) are
        charged to every later caller."""
        if key in self.view:
            value, seconds = self.view[key]
            self.reused_seconds += seconds
            return value
        start, reused = time.perf_counter(), self.reused_seconds
        value = compute()
        if _on_cuda(value):
            torch.cuda.synchronize()
        self.view[key] = value, time.perf_counter() - start + self.reused_seconds - reused
        return value

    def kmeans(self, batch: ClassBatch, k: int) -> ProxySet:
        def cluster() -> ProxySet:
            return _select_per_class(
                batch, k, lambda sub: clustering.kmeans(sub.x, sub.mask, k, self.streams(sub))[0]
            )

        return self.shared(("kmeans", k, self.seed), cluster)

    def ridge(self, batch: ClassBatch, solved: Tensor) -> tuple[Tensor, Tensor]:
        """The LU factors of X^T X / N + λ I over the samples of the ``solved`` classes (a
        boolean per class), from the batch's Gram matrix: once per (λ, solved classes)."""

        def factor() -> tuple[Tensor, Tensor]:
            gram, rows = self.shared("gram", lambda: gram_matrix(batch))
            if not bool(solved.all()):  # the full Gram matrix less the left-out classes'
                left_gram, left_rows = gram_matrix(batch.subset(~solved))
                gram, rows = gram - left_gram, rows - left_rows
            return ridge_factor(gram, rows, self.lambda_reg)

        key = ("ridge", self.lambda_reg, tuple(solved.tolist()))
        return self.shared(key, factor)


def cluster_together(
    batch: ClassBatch, view: dict[Hashable, tuple[Any, float]], clusterings: set[tuple[int, int]]
) -> None:
    """Every k-means clustering (k, seed) of ``clusterings`` whose k every class of the batch
    exceeds, computed together (``clustering.kmeans_together``: one pass over the data per
    Lloyd step) into ``view`` for ``GenContext.kmeans``, each with its share of the time by its
    work (k times its Lloyd steps, the mean over the classes)."""
    todo = sorted(
        (k, seed)
        for k, seed in clusterings
        if 0 < k < int(batch.counts.min()) and ("kmeans", k, seed) not in view
    )
    if len(todo) < 2:
        return
    start = time.perf_counter()
    streams = [ClassStreams.keyed(seed, "gen", batch.keys) for _, seed in todo]
    centres, steps = clustering.kmeans_together(batch.x, batch.mask, [k for k, _ in todo], streams)
    if batch.x.is_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    work = [k * max(n, 1) for (k, _), n in zip(todo, steps, strict=True)]
    for (k, seed), found, share in zip(todo, centres, work, strict=True):
        valid = torch.ones(found.shape[:2], dtype=torch.bool, device=found.device)
        view["kmeans", k, seed] = ProxySet.from_padded(found, valid), seconds * share / sum(work)


def _on_cuda(value: Any) -> bool:
    first = value.weights if isinstance(value, ProxySet) else value
    while isinstance(first, tuple):
        first = first[0]
    return isinstance(first, Tensor) and first.is_cuda


def _select_per_class(
    batch: ClassBatch, k: int, choose: Callable[[ClassBatch], Tensor]
) -> ProxySet:
    """k proxies per class from ``choose`` (C', k, D) for the classes with more than k samples;
    the other classes (and all classes when k = -1) keep their samples."""
    counts = batch.counts
    if k == -1 or int(counts.max()) <= k:
        return ProxySet.from_padded(batch.x, batch.mask)
    large = counts > k
    width = max(k, 1)
    weights = batch.x.new_zeros(batch.n_classes, width, batch.x.shape[2])
    small_width = min(width, batch.x.shape[1])
    weights[:, :small_width] = batch.x[:, :small_width]
    valid = torch.arange(width, device=counts.device)[None, :] < counts[:, None]
    weights[large] = choose(batch.subset(large))
    valid[large] = True
    return ProxySet.from_padded(weights, valid)


def _pick(sub: ClassBatch, index: Tensor) -> Tensor:
    return torch.gather(sub.x, 1, index[..., None].expand(-1, -1, sub.x.shape[2]))


def generate_all(batch: ClassBatch, k: int, context: GenContext) -> ProxySet:
    """Every training sample is a proxy."""
    return ProxySet.from_padded(batch.x, batch.mask)


def generate_mean(batch: ClassBatch, k: int, context: GenContext) -> ProxySet:
    """The class mean."""
    means = batch.means()[:, None]
    return ProxySet.from_padded(
        means, torch.ones(means.shape[:2], dtype=torch.bool, device=means.device)
    )


def generate_random(batch: ClassBatch, k: int, context: GenContext) -> ProxySet:
    """k samples per class drawn uniformly without replacement."""

    def choose(sub: ClassBatch) -> Tensor:
        keys = context.streams(sub).uniform_masked(sub.mask)
        return _pick(sub, torch.argsort(keys, dim=1)[:, :k])

    return _select_per_class(batch, k, choose)


def generate_kmeans(batch: ClassBatch, k: int, context: GenContext) -> ProxySet:
    """The k centroids of k-means on each class."""
    return context.kmeans(batch, k)


def generate_kmedoids(batch: ClassBatch, k: int, context: GenContext) -> ProxySet:
    """The k medoids of the reference's k-medoids on each class (deterministic): the view's
    (``medoids_together``), or found for this k. The classes' distance matrices are computed
    once per view for every k (up to ``KMEDOIDS_CACHE_ENTRIES``; larger views compute them for
    each k)."""
    large = batch.counts > k

    def choose(sub: ClassBatch) -> Tensor:
        distances = _cached_distances(batch, context)
        if distances is not None and not bool(large.all()):
            distances = distances[large]
        return _pick(sub, clustering.kmedoids(sub.x, sub.mask, k, distances=distances)[0])

    return context.shared(("kmedoids", k), lambda: _select_per_class(batch, k, choose))


def _cached_distances(batch: ClassBatch, context: GenContext) -> Tensor | None:
    """The view's k-medoids distance matrices, computed once, or None when they are too many
    to keep (``KMEDOIDS_CACHE_ENTRIES``)."""
    if batch.n_classes * batch.x.shape[1] ** 2 > KMEDOIDS_CACHE_ENTRIES:
        return None
    return context.shared("distances", lambda: clustering.reference_distances(batch.x, batch.mask))


def medoids_together(
    batch: ClassBatch, view: dict[Hashable, tuple[Any, float]], ks: set[int]
) -> None:
    """The reference k-medoids of every k of ``ks`` that every class of the batch exceeds,
    found together (``clustering.kmedoids_together``: one product with the distances per
    alternate round) into ``view`` for ``generate_kmedoids``, each charged the distances' time
    and its share of the rounds' by its work (k times its rounds)."""
    todo = sorted(k for k in ks if 0 < k < int(batch.counts.min()) and ("kmedoids", k) not in view)
    context = GenContext(0, view=view)
    if len(todo) < 2 or (distances := _cached_distances(batch, context)) is None:
        return
    start = time.perf_counter()
    medoids, rounds = clustering.kmedoids_together(batch.x, batch.mask, todo, distances)
    if batch.x.is_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    work = [k * n for k, n in zip(todo, rounds, strict=True)]
    valid = torch.ones(batch.n_classes, 1, dtype=torch.bool, device=batch.x.device)
    for k, found, share in zip(todo, medoids, work, strict=True):
        proxies = ProxySet.from_padded(_pick(batch, found), valid.expand(-1, k))
        view["kmedoids", k] = proxies, view["distances"][1] + seconds * share / sum(work)


def generate_kmedoids_pam(batch: ClassBatch, k: int, context: GenContext) -> ProxySet:
    """The k medoids of seeded k-medoids++, alternate and PAM swaps on each class."""

    def choose(sub: ClassBatch) -> Tensor:
        return _pick(sub, clustering.kmedoids_pam(sub.x, sub.mask, k, context.streams(sub))[0])

    return _select_per_class(batch, k, choose)


def generate_fps(batch: ClassBatch, k: int, context: GenContext) -> ProxySet:
    """Farthest-point sampling from a random first sample: the first k samples of the view's
    sampling for the seed (``sample_together``), or a sampling of k."""
    large = batch.counts > k

    def choose(sub: ClassBatch) -> Tensor:
        def sample() -> Tensor:
            streams = context.streams(batch)
            return clustering.farthest_point_sampling(batch.x, batch.mask, k, streams)

        return _pick(sub, context.shared(("fps", k, context.seed), sample)[large])

    return _select_per_class(batch, k, choose)


def sample_together(
    batch: ClassBatch, view: dict[Hashable, tuple[Any, float]], samplings: set[tuple[int, int]]
) -> None:
    """Every farthest-point sampling (k, seed) of ``samplings`` from one sampling per seed, of
    the largest k (a sampling of k is the first k samples of any longer one from the same first
    sample), into ``view`` for ``generate_fps``, each with its share of the time by k."""
    for seed in {seed for _, seed in samplings}:
        ks = sorted(k for k, s in samplings if s == seed and k > 0 and ("fps", k, s) not in view)
        if len(ks) < 2:
            continue
        start = time.perf_counter()
        streams = ClassStreams.keyed(seed, "gen", batch.keys)
        longest = clustering.farthest_point_sampling(batch.x, batch.mask, ks[-1], streams)
        if batch.x.is_cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        for k in ks:
            view["fps", k, seed] = longest[:, :k], seconds * k / ks[-1]


def covariance_column_sums(x: Tensor, mask: Tensor) -> Tensor:
    """Column sums (C, n) of each class's n x n sample-by-sample covariance matrix, in O(n D):
    with z_i the sample x_i centred over its own features,
    sum_j cov(i, j) = <z_i, sum_j z_j> / (D - 1)."""
    z = (x - x.mean(-1, keepdim=True)) * mask[..., None]
    return torch.einsum("cnd,cd->cn", z, z.sum(1)) / (x.shape[-1] - 1)


def generate_cov_max(batch: ClassBatch, k: int, context: GenContext) -> ProxySet:
    """The k samples with the largest column sums of the sample covariance matrix (the sums
    computed once per view, for every k)."""
    large = batch.counts > k

    def choose(sub: ClassBatch) -> Tensor:
        sums = context.shared(
            "covariance_sums",
            lambda: covariance_column_sums(batch.x.double(), batch.mask),
        )
        sums = sums[large].masked_fill(~sub.mask, -math.inf)
        order = torch.sort(sums, dim=1, descending=True, stable=True).indices
        return _pick(sub, order[:, :k])

    return _select_per_class(batch, k, choose)


# Rows widened to float64 at a time for a Gram matrix on the CPU: a buffer that stays in cache.
_GRAM_ROWS = 4096


def gram_matrix(batch: ClassBatch) -> tuple[Tensor, int]:
    """X^T X (D, D) over every sample of the batch, in float64, and the number of samples. On
    the CPU, ``_GRAM_ROWS`` rows at a time widened into one buffer, each block's product by
    NumPy's ``A.T @ A``: BLAS's symmetric rank-k update, half the products of a general product
    (all PyTorch offers), on the threads its BLAS is given (``OPENBLAS_NUM_THREADS``: Snakemake
    sets it to a job's threads)."""
    x = batch.flat()[0]
    if x.device.type != "cpu":
        x = x.double()
        return x.T @ x, len(x)
    rows = x.numpy()
    gram = np.zeros((rows.shape[1], rows.shape[1]))
    wide = np.empty((min(_GRAM_ROWS, len(rows)), rows.shape[1]))
    for start in range(0, len(rows), _GRAM_ROWS):
        block = wide[: min(_GRAM_ROWS, len(rows) - start)]
        block[:] = rows[start : start + len(block)]
        gram += block.T @ block
    return torch.from_numpy(gram), len(rows)


def ridge_factor(gram: Tensor, rows: int, lambda_reg: float) -> tuple[Tensor, Tensor]:
    """The LU factors of gram / rows + λ I (``torch.linalg.lu_factor``)."""
    matrix = gram / rows
    matrix.diagonal().add_(lambda_reg)
    return torch.linalg.lu_factor(matrix)


def least_squares_weights(factor: tuple[Tensor, Tensor], targets: Tensor) -> Tensor:
    """Ridge weights (Q, D) = (1/Q) T (X^T X / N + λ I)^-1 for target means T (Q, D), from the
    ``ridge_factor`` of X, in float64 (the matrix is symmetric, so T A^-1 = (A^-1 T^T)^T)."""
    solved = torch.linalg.lu_solve(*factor, targets.double().T).T
    return (solved / targets.shape[0]).to(targets.dtype)


def generate_ls(batch: ClassBatch, k: int, context: GenContext) -> ProxySet:
    """Least squares over all classes jointly: one proxy per class."""
    solved = torch.ones(batch.n_classes, dtype=torch.bool, device=batch.x.device)
    weights = least_squares_weights(context.ridge(batch, solved), batch.means())
    labels = torch.arange(batch.n_classes, device=batch.x.device)
    return ProxySet(weights, labels)


def generate_kls(batch: ClassBatch, k: int, context: GenContext) -> ProxySet:
    """k-means each class, solve least squares with the clusters as classes, k rows per class.

    As the reference: a class with fewer than k samples keeps its samples as proxies, and
    neither they nor their samples enter the joint solve."""
    solved_classes = batch.counts >= k
    return solve_clusters(
        context.kmeans(batch, k), solved_classes, lambda: context.ridge(batch, solved_classes)
    )


def solve_clusters(
    clusters: ProxySet, solved_classes: Tensor, factor: Callable[[], tuple[Tensor, Tensor]]
) -> ProxySet:
    """``kls``' joint solve: the clusters of the ``solved_classes`` (a boolean per class) replaced
    by their least-squares weights under ``factor()`` (the ``ridge_factor`` of those classes'
    samples, asked for only where some class is solved); the others' clusters kept."""
    solved = solved_classes[clusters.labels]
    if not bool(solved.any()):
        return clusters
    weights = clusters.weights.clone()
    weights[solved] = least_squares_weights(factor(), clusters.weights[solved])
    return clusters.replace(weights)


GEN: dict[str, Callable[[ClassBatch, int, GenContext], ProxySet]] = {
    "all": generate_all,
    "mean": generate_mean,
    "random": generate_random,
    "kmeans": generate_kmeans,
    "kmedoids": generate_kmedoids,
    "kmedoids_pam": generate_kmedoids_pam,
    "fps": generate_fps,
    "cov_max": generate_cov_max,
    "ls": generate_ls,
    "kls": generate_kls,
}
