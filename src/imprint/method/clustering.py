"""k-means and k-medoids (the reference's and a PAM variant) in torch, batched over the classes
of a task.

Both take padded samples ``x`` (C, n, D) with a mask (C, n), run every class at once, and need
k <= the number of samples of every class (callers hand smaller classes over whole).
Inputs are centred per class first: both methods are translation invariant, and centring keeps
the float32 distance expansion ||x||^2 - 2<x, c> + ||c||^2 accurate far from the origin.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from imprint.method.randomness import ClassStreams


def _centred(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    w = mask.to(x.dtype)[..., None]
    shift = (x * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1)
    return (x - shift) * w, shift


def squared_norms(x: Tensor) -> Tensor:
    """Squared lengths (C, n) of the rows of x (C, n, D)."""
    return x.pow(2).sum(-1)


def squared_distances(
    x: Tensor, centres: Tensor, x_norms: Tensor | None = None, centre_norms: Tensor | None = None
) -> Tensor:
    """Squared Euclidean distances (C, n, k) between x (C, n, D) and centres (C, k, D).
    ``x_norms``, ``centre_norms``: their ``squared_norms``, when the caller has them (a pass
    over the data saved)."""
    x_norms = squared_norms(x) if x_norms is None else x_norms
    centre_norms = squared_norms(centres) if centre_norms is None else centre_norms
    return _expanded(_product(x, centres.transpose(1, 2)), x_norms, centre_norms)


def _expanded(products: Tensor, left_norms: Tensor, right_norms: Tensor) -> Tensor:
    """Squared distances from the ``products`` (C, a, b) of two sets of rows and their squared
    norms (C, a) and (C, b), in place: no (C, a, b) temporaries."""
    sq = products.mul_(-2).add_(left_norms[..., None]).add_(right_norms[:, None, :])
    return sq.clamp_min_(0)


# BLAS gives each row of a product with this many rows or more the same bits whatever the
# number of rows (MKL picks other kernels for 1-3 rows; from 8 features on), so that a
# clustering's products are the same alone and stacked with other clusterings' (on the CPU;
# cuBLAS promises nothing of the kind). A batch of products has each product's bits whatever
# the batch and the threads, but MKL splits the sums of a lone product over its threads, so
# that one runs on one thread (k-means steps a class alone once it moves alone).
_ROWS = 4


def _product(a: Tensor, b: Tensor) -> Tensor:
    """``torch.bmm(a, b)``, with ``a`` padded to at least ``_ROWS`` rows for the product, and
    a batch of one on one thread (on the CPU)."""
    return _products(a, [(slice(None), b)])


def _products(a: Tensor, parts: Sequence[tuple[slice, Tensor]]) -> Tensor:
    """``_product`` of ``a`` (B, r, m) with a right-hand side (B, m, w) given in parts: a slice
    of the batch and its part of the right-hand side, each multiplied into its slice of one
    result (so that the parts need not be copied into one tensor first)."""
    rows = a.shape[1]
    if rows < _ROWS:
        a = torch.cat([a, a.new_zeros(a.shape[0], _ROWS - rows, a.shape[2])], 1)
    out = a.new_empty(a.shape[0], a.shape[1], parts[0][1].shape[2])
    threads = torch.get_num_threads()
    for batch, b in parts:
        if len(b) > 1 or threads == 1 or a.device.type != "cpu":
            torch.bmm(a[batch], b, out=out[batch])
            continue
        torch.set_num_threads(1)
        try:
            torch.bmm(a[batch], b, out=out[batch])
        finally:
            torch.set_num_threads(threads)
    return out[:, :rows]


def _first_argmin(distances: Tensor) -> Tensor:
    """The first row of the least value of every column of ``distances`` (C, k, n), as (C, n):
    ``argmin`` over a middle dimension, as a running minimum (many times faster on the CPU)."""
    best = distances[:, 0].clone()
    index = torch.zeros_like(best, dtype=torch.long)
    for row in range(1, distances.shape[1]):
        index.masked_fill_(distances[:, row] < best, row)
        torch.minimum(best, distances[:, row], out=best)
    return index


def _nearest_centres(
    centres: Tensor, parts: Sequence[tuple[slice, Tensor]], x_norms: Tensor, blocks: np.ndarray
) -> Tensor:
    """The nearest centre of every row of x (C, n, D), given as ``parts`` (``_products``: a
    slice of the classes and its rows transposed, (c, D, n)) with squared norms ``x_norms``
    (C, n), in each of ``blocks`` (T, 3): a class and the first and end rows of a clustering's
    centres within that class's ``centres`` (C, K, D), by ``squared_distances``, the first of
    equals; (T, n), indices within the block. One product with every centre, then on the CPU
    one pass over it (a numba kernel rounding as ``squared_distances`` does)."""
    products = _products(centres, parts)
    if products.device.type != "cpu":
        distances = _expanded(products, squared_norms(centres), x_norms)  # (C, K, n)
        out = torch.empty(len(blocks), x_norms.shape[1], dtype=torch.long, device=x_norms.device)
        alike: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for task, (c, lo, hi) in enumerate(blocks.tolist()):
            alike.setdefault((lo, hi), []).append((task, c))
        for (lo, hi), members in alike.items():
            tasks, classes = zip(*members, strict=True)
            out[list(tasks)] = _first_argmin(distances[list(classes), lo:hi])
        return out
    from imprint.method.kernels import first_least_rows, on_torch_threads

    out = np.empty((len(blocks), x_norms.shape[1]), dtype=np.int64)
    row_norms = squared_norms(centres).numpy()
    products = np.ascontiguousarray(products.numpy())
    on_torch_threads(first_least_rows, products, row_norms, x_norms.numpy(), blocks, out)
    return torch.from_numpy(out)


def _gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """x (C, n, D), index (C, m) -> (C, m, D)."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[2]))


def _sample_proportional(weights: Tensor, u: Tensor) -> Tensor:
    """One index per column of the uniform draws ``u`` (C, draws) in every row, each drawn with
    probability proportional to ``weights`` (C, n)."""
    cumulative = torch.cumsum(weights.double(), dim=1)
    index = torch.searchsorted(cumulative, u * cumulative[:, -1:], right=True)
    return index.clamp_(max=weights.shape[1] - 1)


def plus_plus_init(
    x: Tensor, mask: Tensor, k: int, streams: ClassStreams, power: float = 2.0
) -> Tensor:
    """Greedy k-means++ seeding: indices (C, k) of k samples per class.

    The first seed is uniform; each next one is the best, by total potential, of 2 + ln k candidates
    drawn with probability proportional to distance**power to the nearest seed (power 2 for
    k-means, 1 for k-medoids).
    """
    return seed_together(x, mask, [k], [streams], power)[0]


def seed_together(
    x: Tensor,
    mask: Tensor,
    ks: Sequence[int],
    streams: Sequence[ClassStreams],
    power: float = 2.0,
    norms: Tensor | None = None,
) -> list[Tensor]:
    """``plus_plus_init`` of several seedings (one per k and streams) of the same classes, each
    drawing exactly as alone; the candidates of every seeding's step are measured in one
    product with x."""
    norms = squared_norms(x) if norms is None else norms
    trials = [2 + int(math.log(k)) for k in ks]
    draws = [
        s.uniform(1 + (k - 1) * t, x.device) for k, s, t in zip(ks, streams, trials, strict=True)
    ]
    floor = mask.to(x.dtype) * 1e-30  # duplicates only: keeps every draw on a real sample
    first = [_sample_proportional(mask.to(x.dtype), u[:, :1]) for u in draws]
    chosen = [[f] for f in first]
    nearest = squared_distances(_gather_rows(x, torch.cat(first, 1)), x, None, norms)
    closest = [nearest[:, j].pow(power / 2) * mask for j in range(len(ks))]
    rows = torch.arange(x.shape[0], device=x.device)
    for step in range(1, max(ks)):
        active = [j for j, k in enumerate(ks) if k > step]
        candidates = [
            _sample_proportional(
                closest[j] + floor, draws[j][:, 1 + (step - 1) * trials[j] : 1 + step * trials[j]]
            )
            for j in active
        ]
        # (C, T, n): every seeding's candidates against x, one row per candidate
        every = squared_distances(_gather_rows(x, torch.cat(candidates, 1)), x, None, norms)
        offset = 0
        for j, mine in zip(active, candidates, strict=True):
            dist = every[:, offset : offset + trials[j]].transpose(1, 2).pow(power / 2)
            offset += trials[j]
            merged = torch.minimum(closest[j][..., None], dist) * mask[..., None]
            best = merged.sum(1).argmin(1)
            chosen[j].append(mine[rows, best][:, None])
            closest[j] = merged[rows, :, best]
    return [torch.cat(c, dim=1) for c in chosen]


def kmeans(
    x: Tensor, mask: Tensor, k: int, streams: ClassStreams, max_iter: int = 300
) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means from greedy k-means++ seeds, run until no assignment changes.

    Returns centroids (C, k, D) and inertia (C,): squared distances to the nearest centroid, summed.
    An emptied cluster keeps its previous centroid.
    """
    xc, shift = _centred(x, mask)
    norms = squared_norms(xc)
    (centres,), _ = _lloyd(xc, mask, norms, [k], [streams], max_iter)
    inertia = (squared_distances(xc, centres, norms).amin(-1) * mask).sum(1)
    return centres + shift, inertia


def kmeans_together(
    x: Tensor,
    mask: Tensor,
    ks: Sequence[int],
    streams: Sequence[ClassStreams],
    max_iter: int = 300,
) -> tuple[list[Tensor], list[float]]:
    """``kmeans`` of several clusterings (one per k and streams) of the same classes, each
    seeded and stopped as alone, in one pass over x per Lloyd step: one product with the centres
    of every clustering still moving (``_nearest_centres``), one with their assignments (on the
    CPU each clustering is bit for bit as alone: see ``_ROWS``). A class stops when its own
    assignments stop changing, as scikit-learn's ``KMeans`` fitted on that class alone stops.
    Returns each clustering's centroids and its Lloyd steps, the mean over the classes."""
    xc, shift = _centred(x, mask)
    centres, steps = _lloyd(xc, mask, squared_norms(xc), ks, streams, max_iter)
    return [c + shift for c in centres], steps


class _Layout(NamedTuple):
    """The centres a Lloyd step stacks: per class that moves (``classes``, (C',); ``runs``, the
    slices of the stack and of the classes of each range of consecutive ones, so that their
    rows are read in place), the rows of its moving clusterings' centres (``rows``, (C', K),
    padded with the zero row past every clustering's), and the ``blocks`` (T, 3) of its moving
    clusterings in them (the class's position, first and end row) with their (clustering,
    class) ``pairs`` (T, 2)."""

    classes: Tensor
    runs: list[tuple[slice, slice]]
    rows: Tensor
    blocks: np.ndarray
    pairs: np.ndarray


def _layout(moving: np.ndarray, ks: Sequence[int], union: bool, device: torch.device) -> _Layout:
    """The stacked centres of the (clustering, class) pairs ``moving`` (clusterings, C): on the
    CPU each class's own (a class stops when its assignments do, as scikit-learn's ``KMeans``
    on that class alone); on a GPU (``union``), where every launch counts, every class gets the
    rows of every clustering that moves in any class, so that all share one layout."""
    offsets = np.cumsum([0, *ks])
    classes = np.flatnonzero(moving.any(0))
    anywhere = np.flatnonzero(moving.any(1))
    rows: list[list[int]] = []
    blocks, pairs = [], []
    for position, c in enumerate(classes.tolist()):
        mine: list[int] = []
        for j in anywhere.tolist() if union else np.flatnonzero(moving[:, c]).tolist():
            if moving[j, c]:
                blocks.append((position, len(mine), len(mine) + ks[j]))
                pairs.append((j, c))
            mine.extend(range(offsets[j], offsets[j + 1]))
        rows.append(mine)
    width = max(len(r) for r in rows)
    padded = torch.tensor([r + [int(offsets[-1])] * (width - len(r)) for r in rows], device=device)
    starts = np.flatnonzero(np.diff(classes, prepend=-2) != 1).tolist()
    runs = [
        (slice(lo, hi), slice(int(classes[lo]), int(classes[hi - 1]) + 1))
        for lo, hi in itertools.pairwise([*starts, len(classes)])
    ]
    return _Layout(
        torch.as_tensor(classes, device=device),
        runs,
        padded,
        np.array(blocks, dtype=np.int64),
        np.array(pairs, dtype=np.int64),
    )


def _stack(
    centres: Tensor, moving: np.ndarray, ks: Sequence[int], union: bool
) -> tuple[_Layout, Tensor, Tensor, Tensor]:
    """The ``_layout`` of ``moving`` over ``centres`` (C, sum ks + 1, D), its pairs' clusterings
    and classes as index tensors, and the centres it stacks (C', K, D)."""
    layout = _layout(moving, ks, union, centres.device)
    clustering, of = (torch.as_tensor(p, device=centres.device) for p in layout.pairs.T)
    return layout, clustering, of, centres[layout.classes[:, None], layout.rows]


def _lloyd(
    xc: Tensor,
    mask: Tensor,
    norms: Tensor,
    ks: Sequence[int],
    streams: Sequence[ClassStreams],
    max_iter: int,
) -> tuple[list[Tensor], list[float]]:
    """``kmeans_together`` on centred samples ``xc`` (C, n, D) of squared norms ``norms``: the
    centred centroids and the Lloyd steps of each clustering (the mean over the classes). A
    step stacks the centres of the clusterings that move in each class (``_layout``), finds
    every row's nearest centre in one product, compares each (clustering, class) with its
    previous assignments, then updates those still moving in one product with their
    memberships."""
    starts = seed_together(xc, mask, ks, streams, norms=norms)
    n_classes, n = mask.shape
    # every clustering's centres side by side, then a zero row that padding reads
    zero = xc.new_zeros(n_classes, 1, xc.shape[2])
    centres = torch.cat([_gather_rows(xc, start) for start in starts] + [zero], 1)
    valid = mask.to(xc.dtype)
    assigned = torch.zeros(len(ks), n_classes, n, dtype=torch.long, device=xc.device)
    moving = np.ones((len(ks), n_classes), dtype=bool)
    steps = np.zeros((len(ks), n_classes))
    union = xc.device.type != "cpu"
    for step in range(max_iter):
        layout, j, c, stacked = _stack(centres, moving, ks, union)
        parts = [(at, xc[of].transpose(1, 2)) for at, of in layout.runs]
        nearest = _nearest_centres(stacked, parts, norms[layout.classes], layout.blocks)
        if step:
            same = ((nearest == assigned[j, c]) | ~mask[c]).all(1).cpu().numpy()
            moving[layout.pairs[same, 0], layout.pairs[same, 1]] = False
        assigned[j, c] = nearest
        if not moving.any():
            break
        steps += moving
        layout, j, c, stacked = _stack(centres, moving, ks, union)
        # the one-hot memberships (C', K, n) of the moving pairs, and each cluster's size
        position, first = (torch.as_tensor(b, device=xc.device) for b in layout.blocks[:, :2].T)
        onehot = stacked.new_zeros(*stacked.shape[:2], n)
        columns = torch.arange(n, device=xc.device)
        onehot[position[:, None], assigned[j, c] + first[:, None], columns] = valid[c]
        sizes = onehot.sum(2, keepdim=True)
        sums = _products(onehot, [(at, xc[of]) for at, of in layout.runs])
        update = torch.where(sizes > 0, sums / sizes.clamp_min(1), stacked)
        centres[layout.classes[:, None], layout.rows] = update
    offsets = np.cumsum([0, *ks])
    clusterings = [centres[:, lo:hi].contiguous() for lo, hi in itertools.pairwise(offsets)]
    return clusterings, steps.mean(1).tolist()


def _class_distances(
    x: Tensor,
    mask: Tensor,
    centre: bool = True,
    per_chunk_entries: int = 2**26,
    out: Tensor | None = None,
):
    """Per chunk of classes: the chunk's slice and its Euclidean distance matrices (C', n, n) in
    float64, computed as scikit-learn does (||a||^2 - 2<a, b> + ||b||^2, zero diagonal), of the
    samples as they are or centred per class (into ``out[chunk]`` when given). A chunk's
    matrices hold at most ``per_chunk_entries`` entries together."""
    per_chunk = max(1, per_chunk_entries // max(x.shape[1] ** 2, 1))
    for i in range(0, x.shape[0], per_chunk):
        part = slice(i, i + per_chunk)
        rows = x[part].double()
        if centre:
            rows, _ = _centred(rows, mask[part])
        yield part, _distance_matrices(rows, None if out is None else out[part])


def _distance_matrices(rows: Tensor, out: Tensor | None) -> Tensor:
    """``squared_distances(rows, rows)`` made exactly symmetric (the mean of it and its
    transpose), its diagonal zero, square-rooted: on the CPU, the product and one pass over it
    (a numba kernel with the same rounding), in ``out`` when given."""
    if rows.device.type != "cpu":
        distances = squared_distances(rows, rows)
        distances = (distances + distances.transpose(1, 2)) / 2  # d(a, b) = d(b, a) exactly
        distances.diagonal(dim1=1, dim2=2).zero_()  # exact zeros where rounding left crumbs
        return distances.sqrt_() if out is None else out.copy_(distances.sqrt_())
    from imprint.method.kernels import on_torch_threads, symmetric_distances

    if rows.shape[1] >= _ROWS:
        products = torch.bmm(rows, rows.transpose(1, 2), out=out)
    else:
        products = _product(rows, rows.transpose(1, 2)).contiguous()
        products = products if out is None else out.copy_(products)
    on_torch_threads(symmetric_distances, products.numpy(), squared_norms(rows).numpy())
    return products.sqrt_()


# Sums closer than this (relative) may compare differently when summed in another order.
_TIE = 1e-9


def _numpy_sums(distances: Tensor, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Row sums of one class's ``distances[rows][:, columns]`` as the reference's NumPy summed
    them (pairwise summation along the rows of a 2-D array)."""
    block = distances[torch.as_tensor(rows, device=distances.device)]
    block = block[:, torch.as_tensor(columns, device=distances.device)].cpu().numpy()
    return np.ascontiguousarray(block).sum(axis=1)


def _near_ties(values: np.ndarray) -> np.ndarray:
    """Which ``values`` lie within rounding distance of another one."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    close = np.diff(ordered) <= _TIE * np.abs(ordered[1:])
    near = np.zeros(len(values), dtype=bool)
    near[order[1:][close]] = True
    near[order[:-1][close]] = True
    return near


def _heuristic_start(distances: Tensor, mask: Tensor, k: int) -> Tensor:
    """scikit-learn-extra's heuristic start per class: ``np.argpartition(sums, k - 1)[:k]`` of
    every sample's summed distance to the class (``_class_sums``), in that order."""
    return _heuristic_starts(_class_sums(distances, mask), [k], distances.device)[0]


def _class_sums(distances: Tensor, mask: Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each class's samples and their summed distances to the class, as NumPy arrays: summed
    on the device; those within rounding distance of another are summed again as NumPy summed
    them, so that ties are decided as in the reference."""
    totals = torch.einsum("cij,cj->ci", distances, mask.double()).cpu().numpy()
    valid = mask.cpu().numpy()
    out = []
    for c in range(len(totals)):
        samples = np.flatnonzero(valid[c])
        sums = totals[c, samples]
        near = _near_ties(sums)
        if near.any():
            sums[near] = _numpy_sums(distances[c], samples[near], samples)
        out.append((samples, sums))
    return out


def _heuristic_starts(
    sums: list[tuple[np.ndarray, np.ndarray]], ks: Sequence[int], device: torch.device
) -> list[Tensor]:
    """The heuristic start (C, k) of every k from the classes' ``_class_sums``."""
    return [
        torch.as_tensor(
            np.stack([samples[np.argpartition(total, k - 1)[:k]] for samples, total in sums]),
            device=device,
        )
        for k in ks
    ]


def reference_distances(x: Tensor, mask: Tensor) -> Tensor:
    """Every class's Euclidean distance matrix (C, n, n) in float64, of the samples as given (not
    centred), as ``kmedoids`` computes them: the same for every k, so a sweep computes it once."""
    out = x.new_empty(x.shape[0], x.shape[1], x.shape[1], dtype=torch.float64)
    for _ in _class_distances(x, mask, centre=False, out=out):
        pass  # each chunk's matrices are written into out
    return out


def kmedoids(
    x: Tensor, mask: Tensor, k: int, max_iter: int = 300, distances: Tensor | None = None
) -> tuple[Tensor, Tensor, int]:
    """The reference's k-medoids (scikit-learn-extra 0.3 ``KMedoids`` defaults, PAPER.md §F.1),
    per class, Euclidean, deterministic.

    float64 distances of the samples as given (not centred; ``distances``: their
    ``reference_distances``, when the caller has them), the heuristic start, then
    ``_alternate`` until no medoid moves or ``max_iter`` rounds; ties are decided as the
    reference's NumPy code decides them. Returns medoid indices (C, k) into the rows of ``x``,
    the objective (C,): distances to the nearest medoid, summed, and the alternate rounds taken
    (the most of any chunk of classes)."""
    chunks = (
        _class_distances(x, mask, centre=False) if distances is None else [(slice(None), distances)]
    )
    medoids, objective, rounds = [], [], 0
    for part, chunk in chunks:
        chunk_mask = mask[part]
        start = _heuristic_start(chunk, chunk_mask, k)
        chosen, taken = _alternate(chunk, chunk_mask, start, max_iter)
        medoids.append(chosen)
        objective.append((_to_medoids(chunk, chosen).amin(-1) * chunk_mask).sum(1))
        rounds = max(rounds, taken)
    return torch.cat(medoids), torch.cat(objective), rounds


def kmedoids_together(
    x: Tensor, mask: Tensor, ks: Sequence[int], distances: Tensor, max_iter: int = 300
) -> tuple[list[Tensor], list[int]]:
    """``kmedoids`` for several k of the same classes, given their ``reference_distances``:
    each k's medoids as alone, and its alternate rounds; every round of the k still moving is one
    product with the distances (``_alternate_together``)."""
    starts = _heuristic_starts(_class_sums(distances, mask), ks, distances.device)
    return _alternate_together(distances, mask, starts, max_iter)


def kmedoids_pam(
    x: Tensor, mask: Tensor, k: int, streams: ClassStreams, max_iter: int = 300
) -> tuple[Tensor, Tensor]:
    """k-medoids per class (Euclidean) to a better optimum than the reference's: greedy
    k-medoids++ seeds, ``_alternate``, then PAM swaps to a local optimum. Returns medoid indices
    (C, k) into the rows of ``x`` and the objective (C,): distances to the nearest medoid,
    summed."""
    medoids, objective = [], []
    for part, distances in _class_distances(x, mask):
        chunk_mask = mask[part]
        xc, _ = _centred(x[part], chunk_mask)
        chosen = plus_plus_init(xc, chunk_mask, k, streams.subset(part), power=1.0)
        chosen, _ = _alternate(distances, chunk_mask, chosen, max_iter)
        if k > 1:
            chosen = _swap(distances, chunk_mask, chosen, max_passes=max_iter)
        medoids.append(chosen)
        objective.append((_to_medoids(distances, chosen).amin(-1) * chunk_mask).sum(1))
    return torch.cat(medoids), torch.cat(objective)


def _to_medoids(distances: Tensor, medoids: Tensor) -> Tensor:
    """Distances (C, n, k) from every sample to every medoid."""
    return torch.gather(distances, 2, medoids[:, None, :].expand(-1, distances.shape[1], -1))


def _alternate(
    distances: Tensor, mask: Tensor, medoids: Tensor, max_iter: int
) -> tuple[Tensor, int]:
    """The alternate step of scikit-learn-extra's ``KMedoids``, every class at once: assign each
    sample to its nearest medoid (ties to the first), then in every non-empty cluster move the
    medoid to the member with the least total distance to the cluster (ties to the lowest index),
    only if that total is strictly below the current medoid's (the first member's, should the
    medoid have been assigned elsewhere); repeat until no medoid moves.

    Totals are summed on the device; where several members lie within rounding distance of the
    least, those are summed again as the reference's NumPy summed them and compared exactly.
    Returns the medoids and the rounds taken (the last one, which moves none, included)."""
    (medoids,), (rounds,) = _alternate_together(distances, mask, [medoids], max_iter)
    return medoids, rounds


def _alternate_together(
    distances: Tensor, mask: Tensor, starts: Sequence[Tensor], max_iter: int
) -> tuple[list[Tensor], list[int]]:
    """``_alternate`` from several starts (C, k) of any k, each to where it stops alone: the
    members' totals of every start still moving come from one product with the distances per
    round. A total's rounding may depend on the product's width, but no decision does: totals
    within rounding distance of each other are decided on NumPy's sums."""
    valid = mask.to(distances.dtype)[..., None]
    medoids, rounds = list(starts), [0] * len(starts)
    moving = list(range(len(starts)))
    for _ in range(max_iter):
        if not moving:
            break
        onehots = []
        for j in moving:
            rounds[j] += 1
            assign = _to_medoids(distances, medoids[j]).argmin(-1)
            k = medoids[j].shape[1]
            onehots.append(torch.nn.functional.one_hot(assign, k).to(distances.dtype) * valid)
        totals = torch.bmm(distances, torch.cat(onehots, 2))
        still, offset = [], 0
        for j, onehot in zip(moving, onehots, strict=True):
            within = totals[..., offset : offset + onehot.shape[2]]
            offset += onehot.shape[2]
            updated = _moved_medoids(distances, onehot, within, medoids[j])
            if not torch.equal(updated, medoids[j]):
                medoids[j] = updated
                still.append(j)
        moving = still
    return medoids, rounds


def _moved_medoids(distances: Tensor, onehot: Tensor, within: Tensor, medoids: Tensor) -> Tensor:
    """One alternate move of ``_alternate``: from the members (``onehot``, (C, n, k)) and their
    total distances to their clusters (``within``, (C, n, k)), each cluster's new medoid."""
    within = within.masked_fill(onehot == 0, math.inf)
    best = within.argmin(1)
    best_cost = torch.gather(within, 1, best[:, None])[:, 0]
    in_own = torch.gather(onehot, 1, medoids[:, None])[:, 0] > 0
    position = torch.where(in_own, medoids, onehot.argmax(1))
    current = torch.gather(within, 1, position[:, None])[:, 0]
    nonempty = onehot.sum(1) > 0
    updated = torch.where(nonempty & (best_cost < current), best, medoids)
    near = within <= best_cost[:, None] * (1 + _TIE)
    ambiguous = nonempty & (near.sum(1) > 1)
    if bool(ambiguous.any()):
        updated = _decide_near_ties(
            distances, onehot > 0, near, position, medoids, updated, ambiguous
        )
    return updated


def _decide_near_ties(
    distances: Tensor,
    members: Tensor,
    near: Tensor,
    position: Tensor,
    medoids: Tensor,
    updated: Tensor,
    ambiguous: Tensor,
) -> Tensor:
    """``_alternate``'s move for the (class, cluster) pairs in ``ambiguous``, decided on the
    NumPy sums of the members near the least total: the first of the least, if strictly below
    the total at ``position`` (the current medoid, or the cluster's first member); otherwise
    the medoid stays."""
    updated = updated.clone()
    members, near, position = members.cpu().numpy(), near.cpu().numpy(), position.cpu().numpy()
    for c, j in ambiguous.nonzero().tolist():
        candidates = np.flatnonzero(near[c, :, j])
        sums = _numpy_sums(distances[c], candidates, np.flatnonzero(members[c, :, j]))
        least = int(np.argmin(sums))
        at_current = sums[candidates == position[c, j]]
        moves = not len(at_current) or sums[least] < at_current[0]
        updated[c, j] = int(candidates[least]) if moves else medoids[c, j]
    return updated


def _nearest_two(to_medoids: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """From distances to the medoids (C, n, k): the nearest and second nearest distance (C, n),
    the one-hot owner (C, n, k), and each medoid's removal loss (C, k), by which the objective
    grows if its members move to their second nearest medoid."""
    d1, slot = to_medoids.min(-1)
    d2 = to_medoids.scatter(-1, slot[..., None], math.inf).amin(-1)
    owner = torch.nn.functional.one_hot(slot, to_medoids.shape[-1]).to(to_medoids.dtype)
    owner *= valid[..., None]
    return d1, d2, owner, torch.einsum("cnk,cn->ck", owner, d2 - d1)


def _swap(
    distances: Tensor, mask: Tensor, medoids: Tensor, max_passes: int, block: int = 32
) -> Tensor:
    """PAM's swap phase, eagerly in the manner of FasterPAM (Schubert & Rousseeuw, 2021), every
    class at once.

    Candidates are taken in blocks of ``block`` samples; the cost change of exchanging each with
    every medoid comes from the medoids' removal losses and the candidate's shared gain, and the
    best exchange of the block is made at once when it lowers the objective. Passes repeat until
    one makes no exchange."""
    valid = mask.to(distances.dtype)
    medoids = medoids.clone()
    to_medoids = _to_medoids(distances, medoids)
    d1, d2, owner, removal = _nearest_two(to_medoids, valid)
    k, n = medoids.shape[1], distances.shape[1]
    for _ in range(max_passes):
        exchanged = False
        for start in range(0, n, block):
            candidates = torch.arange(start, min(start + block, n), device=distances.device)
            to_candidates = distances[:, candidates]  # (C, B, n), symmetric: rows = columns
            closer = (to_candidates - d1[:, None]).clamp_max(0) * valid[:, None]
            gain = torch.where(
                to_candidates < d1[:, None],
                (d1 - d2)[:, None],
                (to_candidates - d2[:, None]).clamp_max(0),
            )
            delta = removal[:, None] + torch.bmm(gain * valid[:, None], owner)
            delta += closer.sum(2)[..., None]  # (C, B, k)
            taken = (medoids[:, :, None] == candidates).any(1) | ~mask[:, candidates]
            best_delta, best = delta.masked_fill_(taken[..., None], math.inf).flatten(1).min(1)
            tolerance = 1e-6 * (d1 * valid).sum(1).clamp_min(1e-12)
            accept = best_delta < -tolerance
            if bool(accept.any()):
                rows = accept.nonzero()[:, 0]
                chosen, slots = candidates[best[rows] // k], best[rows] % k
                medoids[rows, slots] = chosen
                to_medoids[rows, :, slots] = distances[rows, chosen]
                d1[rows], d2[rows], owner[rows], removal[rows] = _nearest_two(
                    to_medoids[rows], valid[rows]
                )
                exchanged = True
        if not exchanged:
            break
    return medoids


def farthest_point_sampling(x: Tensor, mask: Tensor, k: int, streams: ClassStreams) -> Tensor:
    """Indices (C, k): a uniformly random first sample, then repeatedly the sample farthest
    (Euclidean) from all chosen ones; ties go to the lowest index. Distances are computed
    directly, not by the expansion (on the CPU by a numba kernel: ``farthest_points``)."""
    first = _sample_proportional(mask.to(x.dtype), streams.uniform(1, x.device))
    if x.device.type == "cpu":
        from imprint.method.kernels import farthest_points, on_torch_threads

        out = np.empty((x.shape[0], k), dtype=np.int64)
        out[:, 0] = first[:, 0].numpy()
        rows = np.ascontiguousarray(x.numpy())
        closest = np.empty(mask.shape, dtype=rows.dtype)
        on_torch_threads(farthest_points, rows, mask.numpy(), out, closest)
        return torch.from_numpy(out)

    def distance_to(index: Tensor) -> Tensor:
        chosen = _gather_rows(x, index)
        return torch.cdist(x, chosen, compute_mode="donot_use_mm_for_euclid_dist")[..., 0]

    chosen = [first]
    closest = distance_to(first).masked_fill(~mask, -1)
    for _ in range(1, k):
        nxt = closest.argmax(1, keepdim=True)
        chosen.append(nxt)
        closest = torch.minimum(closest, distance_to(nxt))
    return torch.cat(chosen, dim=1)
