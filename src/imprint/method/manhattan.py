"""Manhattan (L1) distances between rows on the CPU, at close to the machine's arithmetic rate.

An L1 distance has no product form, so no BLAS routine computes it; ``torch.cdist(p=1)`` reads
both rows of every pair from memory and reaches about a tenth of the GEMM rate. The kernel here
keeps a 4 × 2 tile of (test row, proxy) sums in registers, so every value it loads serves two or
four pairs, and the compiler vectorises the sum over the embedding dimension. The sums are kept in
the rows' dtype (float32 rows: eight lanes a vector, each summing every eighth dimension; a
float64 sum of float32 terms would halve the width and convert every term). Rows are padded to
the tile with zeros, and the tiles of test rows are shared out among the threads PyTorch uses.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import torch
from torch import Tensor

from imprint.method.kernels import on_torch_threads

# The tile: test rows by proxies whose sums stay in registers.
_ROWS, _COLS = 4, 2
# Tiles of test rows a thread keeps in its cache while the proxies stream past (8 tiles of
# 512-d float32 rows: 64 KB).
_GROUP = 8


@numba.njit(fastmath=True, boundscheck=False, parallel=True, cache=True)
def _l1_tiles(x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """out[i, j] = Σ_k |x[i, k] - w[j, k]| for x (R·4, D) and w (C·2, D).

    A thread takes a group of tiles of rows of ``x`` (they stay in its cache) past every pair of
    rows of ``w``, so that ``w`` is read from memory once per group rather than once per tile."""
    dim = x.shape[1]
    tiles = x.shape[0] // 4
    for group in numba.prange((tiles + _GROUP - 1) // _GROUP):
        for j in range(0, w.shape[0], 2):
            for tile in range(group * _GROUP, min(tiles, (group + 1) * _GROUP)):
                i = 4 * tile
                zero = x.dtype.type(0)  # sums in the rows' dtype: float32 vectors twice as wide
                s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = zero
                for k in range(dim):
                    b0, b1 = w[j, k], w[j + 1, k]
                    a = x[i, k]
                    s00 += abs(a - b0)
                    s01 += abs(a - b1)
                    a = x[i + 1, k]
                    s10 += abs(a - b0)
                    s11 += abs(a - b1)
                    a = x[i + 2, k]
                    s20 += abs(a - b0)
                    s21 += abs(a - b1)
                    a = x[i + 3, k]
                    s30 += abs(a - b0)
                    s31 += abs(a - b1)
                out[i, j], out[i, j + 1] = s00, s01
                out[i + 1, j], out[i + 1, j + 1] = s10, s11
                out[i + 2, j], out[i + 2, j + 1] = s20, s21
                out[i + 3, j], out[i + 3, j + 1] = s30, s31


def _padded(a: Tensor, multiple: int) -> np.ndarray:
    """``a`` as a C-contiguous array whose rows are padded with zeros to a multiple."""
    extra = -a.shape[0] % multiple
    if extra:
        a = torch.cat([a, a.new_zeros(extra, a.shape[1])])
    return np.ascontiguousarray(a.detach().numpy())


def manhattan_to(w: Tensor) -> Callable[[Tensor], Tensor]:
    """A function from rows ``x`` (N, D) to their L1 distances to the rows of ``w`` (P, D), (N, P).

    CPU tensors of float32 or float64 use the tiled kernel (``w`` is laid out once, here); on
    any other device, or for other dtypes, ``torch.cdist(p=1)`` computes them."""
    if w.device.type != "cpu" or w.dtype not in (torch.float32, torch.float64):
        return lambda x: torch.cdist(x, w, p=1.0)
    proxies = _padded(w, _COLS)

    def distances(x: Tensor) -> Tensor:
        rows = _padded(x.to(w.dtype), _ROWS)
        out = np.empty((rows.shape[0], proxies.shape[0]), dtype=rows.dtype)
        on_torch_threads(_l1_tiles, rows, proxies, out)
        return torch.from_numpy(out)[: x.shape[0], : w.shape[0]]

    return distances
