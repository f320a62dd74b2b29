"""Neural collapse (NC1) of embeddings, accumulated in one pass with O(D²) memory."""

from __future__ import annotations

from typing import Any

import torch

from imprint.pipeline import as_embeddings, encode_labels

_CHUNK_ROWS = 8192
# Ranks count the eigenvalues above RANK_TOLERANCE × the largest eigenvalue of Σ_T: embeddings
# stored in float32 carry relative rounding errors of about 1e-7, whose squares (about 1e-14)
# are noise, not variance, and would make a collapsed Σ_W look full-rank.
RANK_TOLERANCE = 1e-10


def _rank(matrix: torch.Tensor, scale: float) -> int:
    return int((torch.linalg.eigvalsh(matrix) > RANK_TOLERANCE * scale).sum())


def nc1(X: Any, y: Any, device: str = "cpu") -> dict[str, float]:
    """NC1 = Tr(Σ_W Σ_B⁺)/C (Papyan et al., 2020) of ``X`` as given, plus VCI, traces and ranks.

    Σ_W = (1/C) Σ_c (1/n_c) Σ_i (h_i − μ_c)(h_i − μ_c)ᵀ centres each class at its own mean;
    Σ_B = (1/C) Σ_c (μ_c − μ_G)(μ_c − μ_G)ᵀ with μ_G the mean of all samples;
    VCI = 1 − Tr(Σ_B Σ_T⁺)/rank(Σ_B) with Σ_T = Σ_W + Σ_B.
    ``nc1_paper`` is the reference's variant (PAPER.md §B, §F.2), which centres each class at
    μ_c − μ_G instead of μ_c, i.e. uses Σ_W + μ_G μ_Gᵀ.
    Ranks count eigenvalues above ``RANK_TOLERANCE`` times the largest of Σ_T.
    Rows are read in chunks (memory-mapped arrays stay on disk); sums are kept in float64 and
    Σ_W comes from (1/C) Σ_c [(1/n_c) Σ_i h_i h_iᵀ − μ_c μ_cᵀ], so no C × D × D array exists.
    """
    n_rows = len(X)
    classes, index = encode_labels(y, n_rows)
    n_classes = len(classes)
    index_t = torch.as_tensor(index, device=device)
    counts = torch.bincount(index_t, minlength=n_classes).double()
    dim = as_embeddings(X[:1], "X", device, torch.float64).shape[1]
    sums = torch.zeros(n_classes, dim, dtype=torch.float64, device=device)
    weighted_gram = torch.zeros(dim, dim, dtype=torch.float64, device=device)
    for start in range(0, n_rows, _CHUNK_ROWS):
        h = as_embeddings(X[start : start + _CHUNK_ROWS], "X", device, torch.float64)
        c = index_t[start : start + _CHUNK_ROWS]
        sums.index_add_(0, c, h)
        weighted_gram += (h / counts[c][:, None]).T @ h
    means = sums / counts[:, None]
    global_mean = sums.sum(0) / n_rows
    sigma_w = (weighted_gram - means.T @ means) / n_classes
    centred = means - global_mean
    sigma_b = centred.T @ centred / n_classes
    sigma_t = sigma_w + sigma_b
    scale = float(torch.linalg.eigvalsh(sigma_t)[-1])
    rank_b = _rank(sigma_b, scale)
    pinv_b = torch.linalg.pinv(sigma_b, hermitian=True)
    pinv_t = torch.linalg.pinv(sigma_t, hermitian=True)
    return {
        "nc1": float(torch.trace(sigma_w @ pinv_b)) / n_classes,
        "nc1_paper": float(global_mean @ pinv_b @ global_mean + torch.trace(sigma_w @ pinv_b))
        / n_classes,
        "vci": 1 - float(torch.trace(sigma_b @ pinv_t)) / max(rank_b, 1),
        "tr_sigma_w": float(torch.trace(sigma_w)),
        "tr_sigma_b": float(torch.trace(sigma_b)),
        "rank_sigma_w": _rank(sigma_w, scale),
        "rank_sigma_b": rank_b,
    }
