"""Manhattan (L1) distances between rows on the CPU, at close to the machine's arithmetic rate.

An L1 distance has no product form, so no BLAS routine computes it; ``torch.cdist(p=1)`` reads
both rows of every pair from memory and reaches about a tenth of the GEMM rate. The kernel here
uses ``|a - b| = a + b - 2 min(a, b)``: with the rows' sums known, a term costs a minimum and an
addition (two vector operations, not the three of a difference, its absolute value and a sum). It
keeps a 6 × 4 tile of (test row, proxy) sums in registers, so every value it loads serves four
or six pairs, and the compiler vectorises the sum over the embedding dimension. The sums are kept
in the rows' dtype (float32 rows: eight lanes a vector, each summing every eighth dimension).
Both sides are first shifted by the proxies' per-dimension median, which leaves every distance
unchanged but keeps the sums and minima at the scale of the differences rather than of the
coordinates. Rows are padded to the tile with zeros, and the tiles of test rows are shared out
among the threads PyTorch uses.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import torch
from torch import Tensor

from imprint.method.kernels import on_torch_threads

# The tile: test rows by proxies whose sums stay in registers (24 of the 32 vector registers
# AVX-512 has; with AVX2's 16 some spill, and it is still faster than a 4 × 2 tile of |a - b|).
_ROWS, _COLS = 6, 4
# Tiles of test rows a thread keeps in its cache while the proxies stream past (8 tiles of
# 512-d float32 rows: 96 KB).
_GROUP = 8
# Rows of the proxies whose per-dimension median shifts both sides (a median of all 50,000 rows
# of a CIFAR-sized search takes a fifth of its time).
_SHIFT_SAMPLE = 1024


@numba.njit(inline="always")
def _plus_min(s: tuple, a: float, b: tuple) -> tuple:  # pragma: no cover
    """The four running sums ``s`` plus min(a, b_c) for each of the four proxy values ``b``."""
    return (s[0] + min(a, b[0]), s[1] + min(a, b[1]), s[2] + min(a, b[2]), s[3] + min(a, b[3]))


@numba.njit(inline="always")
def _store(  # pragma: no cover
    out: np.ndarray, i: int, j: int, row_sum: float, sums: np.ndarray, s: tuple
) -> None:
    """out[i, j + c] = row_sum + sums[j + c] - 2 s_c (never below 0) for the four sums ``s``."""
    for c in range(4):
        out[i, j + c] = max(row_sum + sums[j + c] - 2 * s[c], 0)


@numba.njit(fastmath=True, boundscheck=False, parallel=True, cache=True)
def _l1_tiles(  # pragma: no cover
    x: np.ndarray, w: np.ndarray, x_sums: np.ndarray, w_sums: np.ndarray, out: np.ndarray
) -> None:
    """out[i, j] = x_sums[i] + w_sums[j] - 2 Σ_k min(x[i, k], w[j, k]) = Σ_k |x[i, k] - w[j, k]|
    for x (R·6, D) and w (C·4, D) whose rows sum to ``x_sums`` and ``w_sums``.

    A thread takes a group of tiles of rows of ``x`` (they stay in its cache) past every four
    rows of ``w``, so that ``w`` is read from memory once per group rather than once per tile."""
    dim = x.shape[1]
    tiles = x.shape[0] // 6
    for group in numba.prange((tiles + _GROUP - 1) // _GROUP):
        for j in range(0, w.shape[0], 4):
            for tile in range(group * _GROUP, min(tiles, (group + 1) * _GROUP)):
                i = 6 * tile
                zero = x.dtype.type(0)  # sums in the rows' dtype: float32 vectors twice as wide
                s0 = s1 = s2 = s3 = s4 = s5 = (zero, zero, zero, zero)
                for k in range(dim):
                    b = (w[j, k], w[j + 1, k], w[j + 2, k], w[j + 3, k])
                    s0 = _plus_min(s0, x[i, k], b)
                    s1 = _plus_min(s1, x[i + 1, k], b)
                    s2 = _plus_min(s2, x[i + 2, k], b)
                    s3 = _plus_min(s3, x[i + 3, k], b)
                    s4 = _plus_min(s4, x[i + 4, k], b)
                    s5 = _plus_min(s5, x[i + 5, k], b)
                _store(out, i, j, x_sums[i], w_sums, s0)
                _store(out, i + 1, j, x_sums[i + 1], w_sums, s1)
                _store(out, i + 2, j, x_sums[i + 2], w_sums, s2)
                _store(out, i + 3, j, x_sums[i + 3], w_sums, s3)
                _store(out, i + 4, j, x_sums[i + 4], w_sums, s4)
                _store(out, i + 5, j, x_sums[i + 5], w_sums, s5)


def _laid_out(a: Tensor, shift: Tensor, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """``a - shift`` as a C-contiguous array whose rows are padded with zeros to a multiple, and
    its row sums (summed in float64)."""
    a = a - shift
    extra = -a.shape[0] % multiple
    if extra:
        a = torch.cat([a, a.new_zeros(extra, a.shape[1])])
    rows = np.ascontiguousarray(a.detach().numpy())
    return rows, rows.sum(1, dtype=np.float64).astype(rows.dtype)


def _shift(w: Tensor) -> Tensor:
    """Per dimension, the lower median of (at most 1,024 evenly spaced) rows of ``w``: a value
    each dimension holds, so that integer-valued rows stay integers once shifted."""
    if not len(w):
        return w.new_zeros(w.shape[1])
    return w[:: -(-len(w) // _SHIFT_SAMPLE)].median(dim=0).values


def manhattan_to(
    w: Tensor, scratch: Callable[[int, int, Tensor], Tensor | None] | None = None
) -> Callable[[Tensor], Tensor]:
    """A function from rows ``x`` (N, D) to their L1 distances to the rows of ``w`` (P, D), (N, P).

    CPU tensors of float32 or float64 use the tiled kernel (``w`` is laid out once, here),
    writing into ``scratch(rows, columns, like)`` where given (``aggregation.Scratch``: each call
    over the one before); on any other device, or for other dtypes, ``torch.cdist(p=1)``
    computes them."""
    if w.device.type != "cpu" or w.dtype not in (torch.float32, torch.float64):
        return lambda x: torch.cdist(x, w, p=1.0)
    shift = _shift(w)
    proxies, proxy_sums = _laid_out(w, shift, _COLS)

    def distances(x: Tensor) -> Tensor:
        rows, row_sums = _laid_out(x.to(w.dtype), shift, _ROWS)
        shape = (rows.shape[0], proxies.shape[0])
        out = scratch(*shape, w) if scratch else None
        out = w.new_empty(shape) if out is None else out
        on_torch_threads(_l1_tiles, rows, proxies, row_sums, proxy_sums, out.numpy())
        return out[: x.shape[0], : w.shape[0]]

    return distances
