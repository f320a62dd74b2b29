"""Aggregation (AGG): from the scores of test embeddings against proxies to one class each.

Every aggregation is ``agg(x, proxies, n_classes, distance, variants, metric) -> [predictions]``:
it evaluates a list of (m, weighting) variants that share one distance computation, so that a
sweep scores each proxy set once. The classifier passes a single variant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from imprint.method.batch import ProxySet
from imprint.method.params import DISTANCES

# Rows of test embeddings per block, so that a block's score matrix holds about 2**24 entries.
_BLOCK_ENTRIES = 2**24
# Distance matrices from this many entries select their nearest proxies with the numba kernel
# (its import and load take most of a second: not worth it for a small search).
_KERNEL_ENTRIES = 2**18


def _blocks(n_rows: int, n_cols: int) -> list[slice]:
    step = max(1, _BLOCK_ENTRIES // max(n_cols, 1))
    return [slice(i, i + step) for i in range(0, n_rows, step)]


class Scratch:
    """One buffer for the score blocks of a search on the CPU, each block written over the one
    before: the operating system pages in a fresh block of 64 MB anew (a quarter of the time of
    the product that fills it, measured); a GPU's caching allocator reuses its memory itself."""

    def __init__(self) -> None:
        self.buffer: Tensor | None = None

    def __call__(self, rows: int, cols: int, like: Tensor) -> Tensor | None:
        """A (rows, cols) view of the buffer in ``like``'s dtype; None off the CPU."""
        if like.device.type != "cpu":
            return None
        if self.buffer is None or self.buffer.dtype != like.dtype or len(self.buffer) < rows * cols:
            self.buffer = like.new_empty(rows * cols)
        return self.buffer[: rows * cols].view(rows, cols)


def ledoit_wolf_covariance(x: Tensor) -> Tensor:
    """Ledoit–Wolf shrinkage of the covariance of the rows of ``x`` (N, D), in float64
    (``ledoit_wolf_shrink`` of their empirical covariance)."""
    xd = x.double() - x.double().mean(0)
    return ledoit_wolf_shrink(xd.T @ xd / len(xd), (xd.pow(2).sum(1) ** 2).sum(), len(xd))


def ledoit_wolf_shrink(emp: Tensor, fourth: Tensor, n: int) -> Tensor:
    """The empirical covariance S (D, D) of n rows, shrunk towards μ I (μ = tr S / D) with
    intensity min(b², d²) / d², where d² = ||S - μ I||²_F / D and b² = (Σ_n ||x_n - mean||⁴ / N -
    ||S||²_F) / (N D) (Ledoit & Wolf, 2004); ``fourth`` is that sum of fourth powers."""
    dim = emp.shape[0]
    mu = emp.diagonal().sum() / dim
    d2 = ((emp - mu * torch.eye(dim, dtype=emp.dtype, device=emp.device)) ** 2).sum() / dim
    b2 = (fourth / n - (emp**2).sum()) / (n * dim)
    shrinkage = 0.0 if float(d2) == 0 else float(torch.clamp(b2, max=d2) / d2)
    shrunk = (1 - shrinkage) * emp
    shrunk.diagonal().add_(shrinkage * mu)
    return shrunk


def whitening(x: Tensor) -> Tensor:
    """A (D, D) map A with ||(u - v) A|| the Mahalanobis distance under the Ledoit–Wolf covariance
    of ``x``."""
    return whitening_of(ledoit_wolf_covariance(x)).to(x.dtype)


def whitening_of(covariance: Tensor) -> Tensor:
    """A = L^-T for the Cholesky factor L L^T of ``covariance``: ||(u - v) A|| is the
    Mahalanobis distance under it."""
    chol = torch.linalg.cholesky(covariance)
    eye = torch.eye(covariance.shape[0], dtype=chol.dtype, device=chol.device)
    return torch.linalg.solve_triangular(chol, eye, upper=False).T


def proxy_distances(distance: str, w: Tensor, metric: Tensor | None) -> Callable[[Tensor], Tensor]:
    """A function from a block of test rows to their distances to every proxy (rows, P); what
    depends on the proxies alone is computed once, here."""
    scores, rooted = _proxy_scores(distance, w, metric)
    return (lambda x: scores(x).clamp_min_(0).sqrt_()) if rooted else scores


def _proxy_scores(
    distance: str, w: Tensor, metric: Tensor | None, scratch: Scratch | None = None
) -> tuple[Callable[[Tensor], Tensor], bool]:
    """``proxy_distances``' function, or, where ``rooted`` (Euclidean and Mahalanobis on the
    CPU), one that leaves out the final clamp at 0 and square root (``_squared_distances``), so
    that the selection of the nearest proxies takes them of the entries it reads. With
    ``scratch``, a call's scores (cosine, Euclidean, Mahalanobis, Manhattan) are written over
    the previous call's."""
    if distance == "cosine":
        wn_t = (w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)).T
        one = w.new_ones(())

        def cosine(x: Tensor) -> Tensor:
            xn = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
            out = scratch(len(x), len(w), xn) if scratch else None
            # rounding can push 1 - cos of equal rows below 0
            return torch.addmm(one, xn, wn_t, alpha=-1, out=out).clamp_min_(0)

        return cosine, False
    if distance in ("euclidean", "mahalanobis"):
        project = (lambda v: v @ metric) if distance == "mahalanobis" else (lambda v: v)
        w = project(w)
        centre = w.mean(0)  # distances are translation invariant; centring keeps float32 accurate
        w = w - centre
        if _rooted(w):
            squares = _squared_distances(w, scratch)
            return (lambda x: squares(project(x) - centre)), True
        return (lambda x: torch.cdist(project(x) - centre, w)), False
    if distance == "manhattan":
        # numba's import and kernel load take most of a second: only where runs ask for it
        from imprint.method.manhattan import manhattan_to

        return manhattan_to(w, scratch), False
    if distance == "chebyshev":
        return (lambda x: torch.cdist(x, w, p=float("inf"))), False
    raise ValueError(f"distance={distance!r} is not a distance; choose one of {DISTANCES}")


def _rooted(w: Tensor) -> bool:
    """Whether a search of proxies ``w`` takes its Euclidean distances' roots in the selection:
    on the CPU, where ``torch.cdist`` takes its product path for every block (over 25 proxies)."""
    return w.device.type == "cpu" and w.dtype in (torch.float32, torch.float64) and len(w) > 25


def _squared_distances(w: Tensor, scratch: Scratch | None = None) -> Callable[[Tensor], Tensor]:
    """``torch.cdist``'s product path (more than 25 rows on a side) without its clamp and root:
    one product of the rows widened to (-2 x, ‖x‖², 1) with the proxies widened to (w, 1, ‖w‖²),
    the same operations and so the same bits; the proxies' side built once, not every block."""
    w_wide = torch.cat([w, torch.ones_like(w[:, :1]), w.pow(2).sum(-1, keepdim=True)], -1)

    def squares(x: Tensor) -> Tensor:
        norms = x.pow(2).sum(-1, keepdim=True)
        out = scratch(len(x), len(w), x) if scratch else None
        x_wide = torch.cat([x.mul(-2), norms, torch.ones_like(norms)], -1)
        return torch.matmul(x_wide, w_wide.mT, out=out)

    return squares


@dataclass(frozen=True)
class Variant:
    """One m-nearest-neighbour setting: how many proxies vote, and how votes are weighted."""

    m: int = 1
    weighting: str = "uniform"


def class_max_scores(x: Tensor, proxies: ProxySet, n_classes: int) -> Tensor:
    """score_c(x) = max_j <w_cj, x> for every test row and class, (N, C). Proxies sorted by
    class in runs of equal length (every GEN's) are reduced as (N, C, K) views, any others by
    their labels."""
    out = x.new_empty(x.shape[0], n_classes)
    labels = proxies.labels
    counts = torch.bincount(labels, minlength=n_classes)
    equal = bool((counts == counts[0]).all()) and bool((labels[1:] >= labels[:-1]).all())
    scratch = Scratch()
    for block in _blocks(x.shape[0], proxies.weights.shape[0]):
        rows = x[block]
        scores = torch.matmul(
            rows, proxies.weights.T, out=scratch(len(rows), len(proxies.weights), rows)
        )
        if equal:
            out[block] = scores.view(scores.shape[0], n_classes, -1).amax(-1)
        else:
            index = labels.expand_as(scores)
            full = scores.new_full((scores.shape[0], n_classes), -torch.inf)
            out[block] = full.scatter_reduce_(1, index, scores, "amax")
    return out


def aggregate_max(
    x: Tensor,
    proxies: ProxySet,
    n_classes: int,
    distance: str,
    variants: Sequence[Variant],
    metric: Tensor | None = None,
) -> list[Tensor]:
    """The class of the proxy with the largest inner product (ties: the lowest class index).

    With a distance other than the inner product, ``max`` is the 1-nearest-neighbour rule."""
    if distance != "inner_product":
        return aggregate_mnn(x, proxies, n_classes, distance, [Variant()] * len(variants), metric)
    prediction = class_max_scores(x, proxies, n_classes).argmax(1)
    return [prediction] * len(variants)


def nearest_proxies(
    x: Tensor, proxies: ProxySet, distance: str, m: int, metric: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Distances and indices (N, m) of the m nearest proxies of every test row, nearest first.

    Equal distances (common under Chebyshev or after quantile normalisation) are ordered by proxy
    index, so the m nearest are the first m of the m + 1 nearest, whatever m is asked for. Blocks
    of test rows are scored against all proxies and only their m + 1 nearest are kept (a
    partial selection, not a sort); the rare rows whose (m + 1)-th distance equals their m-th are
    sorted in full so that ties still go by index."""
    dists, index = [], []
    to_proxies, rooted = _proxy_scores(distance, proxies.weights, metric, Scratch())
    for block in _blocks(x.shape[0], proxies.weights.shape[0]):
        block_dists, block_index = _smallest(to_proxies(x[block]), m, rooted)
        dists.append(block_dists)
        index.append(block_index)
    return torch.cat(dists), torch.cat(index)


def _smallest(d: Tensor, m: int, rooted: bool = False) -> tuple[Tensor, Tensor]:
    """The m smallest entries of each row of ``d`` and their columns, ordered by (value, column):
    what a stable sort's first m columns hold, found by a partial selection of m + 1 (large
    blocks on the CPU: one pass of a numba kernel, ``least_in_rows``). ``rooted``: of the square
    roots of ``d`` clamped at 0, as torch takes them (``_smallest_roots``)."""
    n_columns = d.shape[1]
    m = min(m, n_columns)
    on_cpu = d.device.type == "cpu" and d.dtype in (torch.float32, torch.float64)
    kernel = on_cpu and m > 0 and d.numel() >= _KERNEL_ENTRIES
    if rooted:
        return _smallest_roots(d, m) if kernel else _smallest(d.clamp_min_(0).sqrt_(), m)
    if kernel:
        from imprint.method.kernels import least_in_rows, on_torch_threads

        scores = np.ascontiguousarray(d.detach().numpy())
        values, columns = np.empty((len(d), m), scores.dtype), np.empty((len(d), m), np.int64)
        on_torch_threads(least_in_rows, scores, values, columns)
        return torch.from_numpy(values), torch.from_numpy(columns)
    values, columns = _ordered(*torch.topk(d, min(m + 1, n_columns), dim=1, largest=False))
    columns = columns[:, :m]
    if values.shape[1] > m:
        # Where the m-th value ties with the next, columns of lower index holding that value may
        # have been left out: keep the entries below it, then take its lowest-index columns.
        tied = torch.nonzero(values[:, m - 1] == values[:, m]).squeeze(1)
        values = values[:, :m]
        if len(tied):
            rows, threshold = d[tied], values[tied, m - 1 :]
            below = (rows < threshold).sum(1, keepdim=True)
            index = torch.arange(n_columns, device=d.device)
            tie_columns = torch.where(rows == threshold, index, n_columns)
            lowest = torch.topk(tie_columns, m, dim=1, largest=False, sorted=True).values
            position = index[:m]
            from_ties = position >= below
            lowest = torch.gather(lowest, 1, (position - below).clamp_min(0))
            columns[tied] = torch.where(from_ties, lowest, columns[tied])
            values[tied] = torch.where(from_ties, threshold, values[tied])
    return values, columns


def _ordered(values: Tensor, columns: Tensor) -> tuple[Tensor, Tensor]:
    """Each row's entries in (value, column) order: columns ascending, then a stable sort by
    value."""
    by_column = torch.sort(columns, dim=1).indices
    values, columns = torch.gather(values, 1, by_column), torch.gather(columns, 1, by_column)
    order = torch.sort(values, dim=1, stable=True).indices
    return torch.gather(values, 1, order), torch.gather(columns, 1, order)


def _smallest_roots(d: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """``_smallest`` of ``d.clamp_min(0).sqrt()`` (the bits of ``torch.cdist``'s distances),
    with the kernel's selection of the m + 1 least of ``d`` itself: the root keeps the order
    of the squares, but may round two of them to one value, so the m + 1 roots are put in
    (root, column) order, and the rare rows whose m-th and (m + 1)-th roots are equal (a column
    of lower index may hold that root beyond them) are selected again on all their roots."""
    squares, columns = _smallest(d, min(m + 1, d.shape[1]))
    values, columns = _ordered(squares.clamp_min_(0).sqrt_(), columns)
    if values.shape[1] == m:
        return values, columns
    tied = torch.nonzero(values[:, m - 1] == values[:, m]).squeeze(1)
    values, columns = values[:, :m].contiguous(), columns[:, :m].contiguous()
    if len(tied):
        values[tied], columns[tied] = _smallest(d[tied].clamp_min_(0).sqrt_(), m)
    return values, columns


def vote_scores(dists: Tensor, labels: Tensor, n_classes: int, weighting: str) -> Tensor:
    """Class votes (N, C) of the m nearest proxies (columns nearest first), whose first maximum
    is the predicted class: a tie between classes goes to the class, among the tied ones, of the
    nearest proxy, whose vote is raised by a relative 2·eps of its dtype (a float step or two).
    Written with fixed-shape operations only, so that ``torch.export`` and ONNX take it."""
    n, m = labels.shape
    if weighting == "uniform":
        weights = torch.ones_like(dists)
    else:
        weights = 1 / (dists + 1e-10)
    votes = dists.new_zeros(n, n_classes).scatter_add(1, labels, weights)
    position = torch.arange(m, device=labels.device).expand(n, m)
    first = torch.full((n, n_classes), m, dtype=torch.long, device=labels.device)
    first = first.scatter_reduce(1, labels, position, "amin")
    top = votes.amax(1, keepdim=True)
    tied = votes == top
    winner = torch.where(tied, first, m + 1).argmin(1, keepdim=True)
    # top + top·2eps, not top·(1 + 2eps): ONNX export rounds the constant 1 + 2eps to 1
    raised = votes.scatter(1, winner, top + top * (2 * torch.finfo(votes.dtype).eps))
    return torch.where(tied.sum(1, keepdim=True) > 1, raised, votes)


def vote(dists: Tensor, labels: Tensor, n_classes: int, weighting: str) -> Tensor:
    """The predicted class (N,) of the m nearest proxies' vote (``vote_scores``)."""
    return vote_scores(dists, labels, n_classes, weighting).argmax(1)


def aggregate_mnn(
    x: Tensor,
    proxies: ProxySet,
    n_classes: int,
    distance: str,
    variants: Sequence[Variant],
    metric: Tensor | None = None,
) -> list[Tensor]:
    """m-nearest-neighbour vote of the proxies, for every variant from one neighbour search."""
    n_proxies = proxies.weights.shape[0]
    m_max = min(max(v.m for v in variants), n_proxies)
    dists, index = nearest_proxies(x, proxies, distance, m_max, metric)
    labels = proxies.labels[index]
    out = []
    for v in variants:
        m = min(v.m, n_proxies)
        out.append(vote(dists[:, :m], labels[:, :m], n_classes, v.weighting))
    return out


AGG: dict[str, Callable[..., list[Tensor]]] = {"max": aggregate_max, "mnn": aggregate_mnn}
