"""numba kernels of the CPU's hot loops, and how they are run: on the threads PyTorch uses.

numba's import and a kernel's first load take most of a second, so callers import this module
where a run asks for one of its kernels, not at start-up.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import torch


def on_torch_threads(kernel: Any, *args: Any, threads: int | None = None) -> None:
    """Run ``kernel(*args)`` on ``threads`` (default: as many as PyTorch uses; within numba's
    pool), and leave PyTorch on the threads it had: numba's OpenMP threading layer shares
    PyTorch's OpenMP runtime, whose thread count numba's setting is, so that PyTorch's changes
    with it (a one-thread sweep job ran its products on every core after its first kernel)."""
    before = torch.get_num_threads()
    wanted = before if threads is None else threads
    numba.set_num_threads(max(1, min(wanted, numba.config.NUMBA_NUM_THREADS)))
    try:
        kernel(*args)
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@numba.njit(boundscheck=False, parallel=True, cache=True)
def first_least_rows(
    products: np.ndarray,
    row_norms: np.ndarray,
    column_norms: np.ndarray,
    blocks: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover
    """For every block (c, lo, hi) of ``blocks`` (T, 3), rows ``lo:hi`` of ``products[c]`` (C,
    K, n): each column's first row of the least ``max(row_norm - 2 product + column_norm,
    0)``, its index within the block, into ``out[t]`` (n,). The sum is rounded in the dtype of
    ``products`` in the order ``imprint.method.clustering.squared_distances`` rounds it (-2·p
    is exact), so the rows are those of its distances, read once instead of in several
    passes."""
    n = column_norms.shape[1]
    for task in numba.prange(blocks.shape[0]):
        c, lo, hi = blocks[task, 0], blocks[task, 1], blocks[task, 2]
        zero = products[c, lo, 0] * 0
        least = np.empty(n, dtype=products.dtype)
        index = np.zeros(n, dtype=np.int64)
        for r in range(lo, hi):
            row_norm = row_norms[c, r]
            for i in range(n):
                p = products[c, r, i]
                value = (row_norm - (p + p)) + column_norms[c, i]
                if value < zero:
                    value = zero
                if r == lo or value < least[i]:
                    least[i] = value
                    index[i] = r - lo
        out[task] = index


_TILE = 64  # rows and columns of a tile of ``symmetric_distances``: two 32 KB float64 blocks


@numba.njit(boundscheck=False, parallel=True, cache=True)
def symmetric_distances(products: np.ndarray, norms: np.ndarray) -> None:  # pragma: no cover
    """Squared Euclidean distances from the Gram matrices ``products`` (C, n, n) and squared
    norms (C, n), in place: ``(s_ij + s_ji) / 2`` with ``s_ij = max(norm_i - 2 p_ij + norm_j,
    0)`` rounded in that order, zero on the diagonal, so that d(a, b) = d(b, a) exactly whatever
    rounding left the product unsymmetric. The same bits as those steps run one after another on
    whole matrices (``imprint.method.clustering.squared_distances``), in one pass over them."""
    n = norms.shape[1]
    tiles = (n + _TILE - 1) // _TILE
    for task in numba.prange(norms.shape[0] * tiles):
        c, t = task // tiles, task % tiles
        for i in range(t * _TILE, min(n, (t + 1) * _TILE)):
            products[c, i, i] = 0.0
        for u in range(t, tiles):
            for i in range(t * _TILE, min(n, (t + 1) * _TILE)):
                first = i + 1 if u == t else u * _TILE
                for j in range(first, min(n, (u + 1) * _TILE)):
                    a = (norms[c, i] + -2 * products[c, i, j]) + norms[c, j]
                    b = (norms[c, j] + -2 * products[c, j, i]) + norms[c, i]
                    d = (max(a, 0.0) + max(b, 0.0)) / 2
                    products[c, i, j] = d
                    products[c, j, i] = d


@numba.njit(boundscheck=False, parallel=True, cache=True)
def farthest_points(  # pragma: no cover
    x: np.ndarray, mask: np.ndarray, out: np.ndarray, closest: np.ndarray
) -> None:
    """Farthest-point sampling of every class of ``x`` (C, n, D), one class a thread: ``out[c]``
    (k,) starts with its given first sample; each next one is the sample farthest from all
    chosen so far, the first of equals (``argmax``), over the distances kept so far in
    ``closest`` (C, n; at the end each sample's distance to its nearest chosen one), -1 where
    ``mask`` (C, n) marks padding. A distance is the squared differences summed in order of the
    dimensions, then the root: the bits of ``torch.cdist``'s direct path
    (``donot_use_mm_for_euclid_dist``) on the CPU where D is a multiple of 4. Each class is
    transposed once, so that a pass adds one dimension of every row at a time in vector lanes
    (each row's sum still in order), and stays in cache for its k passes."""
    n, dim = x.shape[1], x.shape[2]
    for c in numba.prange(x.shape[0]):
        columns = np.ascontiguousarray(x[c].T)
        closest[c] = np.where(mask[c], np.inf, -1.0)
        sums = np.empty(n, dtype=x.dtype)
        for step in range(out.shape[1]):
            if step > 0:
                out[c, step] = np.argmax(closest[c])
            chosen = out[c, step]
            sums[:] = 0
            for t in range(dim):
                centre = columns[t, chosen]
                column = columns[t]
                for i in range(n):
                    d = column[i] - centre
                    sums[i] += d * d
            for i in range(n):
                if mask[c, i]:
                    closest[c, i] = min(closest[c, i], np.sqrt(sums[i]))


@numba.njit(boundscheck=False, parallel=True, cache=True)
def least_in_rows(  # pragma: no cover
    d: np.ndarray, values: np.ndarray, columns: np.ndarray
) -> None:
    """The m = ``values.shape[1]`` least entries of every row of ``d`` (N, P) and their columns,
    ordered by (value, column) as the first m of a stable ascending sort (NaN last): one pass
    over the row keeping the m least so far in order, a new entry going after its equals."""
    m = values.shape[1]
    for i in numba.prange(d.shape[0]):
        held = 0
        for j in range(d.shape[1]):
            v = d[i, j]
            if held == m and not _after(values[i, m - 1], v):
                continue
            k = min(held, m - 1)
            while k > 0 and _after(values[i, k - 1], v):
                values[i, k] = values[i, k - 1]
                columns[i, k] = columns[i, k - 1]
                k -= 1
            values[i, k] = v
            columns[i, k] = j
            held = min(held + 1, m)


@numba.njit(inline="always")
def _after(a: float, b: float) -> bool:  # pragma: no cover
    """Whether ``a`` sorts after ``b`` ascending, NaN after every number (as torch.sort)."""
    return a > b or (a != a and b == b)


LOGISTIC_PARTS = 16  # the rows' fixed partition of ``logistic_pass``: its sums whatever the threads
_LOGISTIC_BLOCK = 256  # rows a product of ``logistic_pass`` reads: 1.5 MB of float64 at D = 768


@numba.njit(boundscheck=False, parallel=True, cache=True)
def logistic_pass(  # pragma: no cover
    x: np.ndarray,
    weight_t: np.ndarray,
    bias: np.ndarray,
    labels: np.ndarray,
    losses: np.ndarray,
    gradients: np.ndarray,
) -> None:
    """The multinomial logistic loss of rows ``x`` (N, D) with labels (N,) under weights
    ``weight_t`` (D, C) and biases (C,), and its gradient, in one read of the rows: part p of
    ``losses.shape[0]`` equal runs of rows, a thread's, writes the sum of its rows' cross-entropy
    into ``losses[p]`` and that of their residuals (softmax − one-hot) times ``[x, 1]`` into
    ``gradients[p]`` (C, D + 1), one block of rows at a time, so that each block is still in cache
    when its residuals multiply it. The parts do not depend on the thread count, nor their sums."""
    n, d = x.shape
    c = weight_t.shape[1]
    parts = losses.shape[0]
    for p in numba.prange(parts):
        lo, hi = p * n // parts, (p + 1) * n // parts
        gradient = np.zeros((c, d))
        bias_gradient = np.zeros(c)
        residual = np.empty((_LOGISTIC_BLOCK, c))
        loss = 0.0
        for start in range(lo, hi, _LOGISTIC_BLOCK):
            rows = x[start : min(start + _LOGISTIC_BLOCK, hi)]
            logits = np.dot(rows, weight_t)
            for i in range(rows.shape[0]):
                most = -np.inf
                for j in range(c):
                    logits[i, j] += bias[j]
                    most = max(most, logits[i, j])
                total = 0.0
                for j in range(c):
                    residual[i, j] = np.exp(logits[i, j] - most)
                    total += residual[i, j]
                label = labels[start + i]
                loss += most + np.log(total) - logits[i, label]
                for j in range(c):
                    residual[i, j] /= total
                residual[i, label] -= 1.0
                for j in range(c):
                    bias_gradient[j] += residual[i, j]
            if rows.shape[0] == _LOGISTIC_BLOCK:
                gradient += np.dot(residual.T, rows)
            else:
                gradient += np.dot(np.ascontiguousarray(residual[: rows.shape[0]].T), rows)
        losses[p] = loss
        gradients[p, :, :d] = gradient
        gradients[p, :, d] = bias_gradient
