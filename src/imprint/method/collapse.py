"""Neural collapse of embeddings (NC1, CDNV, NC2), accumulated in one pass with O(C·D + D²)
memory, and of imprinted classifiers (NC3 self-duality, NC4 agreement with the nearest class
centre)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from imprint.method.batch import ClassBatch, ProxySet
from imprint.method.pipeline import as_embeddings, encode_labels

_CHUNK_ROWS = 8192
# Ranks count the eigenvalues above RANK_TOLERANCE × the largest eigenvalue of Σ_T: embeddings
# stored in float32 carry relative rounding errors of about 1e-7, whose squares (about 1e-14)
# are noise, not variance, and would make a collapsed Σ_W look full-rank.
RANK_TOLERANCE = 1e-10


@dataclass(frozen=True)
class ClassMoments:
    """What one pass over the rows gives, in float64: class sizes (C,), class means (C, D),
    (1/C) Σ_c (1/n_c) Σ_i h_i h_iᵀ (D, D) and each class's mean squared norm (C,)."""

    counts: Tensor
    means: Tensor
    weighted_gram: Tensor
    mean_sq_norms: Tensor

    @property
    def global_mean(self) -> Tensor:
        return (self.counts[:, None] * self.means).sum(0) / self.counts.sum()

    @property
    def variances(self) -> Tensor:
        """σ²_c: the mean of ‖h − μ_c‖² over class c."""
        return (self.mean_sq_norms - self.means.pow(2).sum(1)).clamp_min(0)


def class_moments(X: Any, y: Any, device: str = "cpu") -> ClassMoments:
    """One pass over ``X`` in chunks (memory-mapped arrays stay on disk)."""
    n_rows = len(X)
    classes, index = encode_labels(y, n_rows)
    n_classes = len(classes)
    index_t = torch.as_tensor(index, device=device)
    counts = torch.bincount(index_t, minlength=n_classes).double()
    dim = as_embeddings(X[:1], "X", device, torch.float64).shape[1]
    sums = torch.zeros(n_classes, dim, dtype=torch.float64, device=device)
    sq_norms = torch.zeros(n_classes, dtype=torch.float64, device=device)
    weighted_gram = torch.zeros(dim, dim, dtype=torch.float64, device=device)
    for start in range(0, n_rows, _CHUNK_ROWS):
        h = as_embeddings(X[start : start + _CHUNK_ROWS], "X", device, torch.float64)
        c = index_t[start : start + _CHUNK_ROWS]
        sums.index_add_(0, c, h)
        sq_norms.index_add_(0, c, h.pow(2).sum(1))
        weighted_gram += (h / counts[c][:, None]).T @ h
    return ClassMoments(
        counts, sums / counts[:, None], weighted_gram / n_classes, sq_norms / counts
    )


def _rank(matrix: Tensor, scale: float) -> int:
    return int((torch.linalg.eigvalsh(matrix) > RANK_TOLERANCE * scale).sum())


def _nc1_from(m: ClassMoments) -> dict[str, float]:
    n_classes = len(m.counts)
    global_mean = m.global_mean
    sigma_w = m.weighted_gram - m.means.T @ m.means / n_classes
    centred = m.means - global_mean
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


def nc1(X: Any, y: Any, device: str = "cpu") -> dict[str, float]:
    """NC1 = Tr(Σ_W Σ_B⁺)/C (Papyan et al., 2020) of ``X`` as given, plus VCI, traces and ranks.

    Σ_W = (1/C) Σ_c (1/n_c) Σ_i (h_i − μ_c)(h_i − μ_c)ᵀ centres each class at its own mean;
    Σ_B = (1/C) Σ_c (μ_c − μ_G)(μ_c − μ_G)ᵀ with μ_G the mean of all samples;
    VCI = 1 − Tr(Σ_B Σ_T⁺)/rank(Σ_B) with Σ_T = Σ_W + Σ_B.
    ``nc1_paper`` is the reference's variant (PAPER.md §B, §F.2), which centres each class at
    μ_c − μ_G instead of μ_c, i.e. uses Σ_W + μ_G μ_Gᵀ.
    Ranks count eigenvalues above ``RANK_TOLERANCE`` times the largest of Σ_T.
    Sums are kept in float64 and Σ_W comes from (1/C) Σ_c [(1/n_c) Σ_i h_i h_iᵀ − μ_c μ_cᵀ], so
    no C × D × D array exists.
    """
    return _nc1_from(class_moments(X, y, device))


def _pairs(n_classes: int) -> tuple[Tensor, Tensor]:
    return torch.triu_indices(n_classes, n_classes, offset=1)


def collapse_metrics(X: Any, y: Any, device: str = "cpu") -> dict[str, float]:
    """``nc1``'s metrics and, from the same pass, the geometry of the class means:

    - ``cdnv`` (Galanti et al., 2022): the mean over pairs c < c′ of
      (σ²_c + σ²_c′) / (2 ‖μ_c − μ_c′‖²), σ²_c the mean of ‖h − μ_c‖² over class c;
      ``cdnv_max`` its largest pair;
    - ``equinorm`` (NC2): std / mean of ‖μ_c − μ_G‖ over classes (population std);
    - ``equiangularity`` (NC2): the std over pairs of ⟨u_c, u_c′⟩, u_c = (μ_c − μ_G)/‖μ_c − μ_G‖;
      ``max_equiangularity``: the mean over pairs of |⟨u_c, u_c′⟩ + 1/(C − 1)|, the distance
      from a simplex ETF;
    - ``hyperspherical_energy`` (GNC2, Liu et al., 2023): the mean over pairs of
      log(1/‖u_c − u_c′‖).

    Pairwise terms come from the C × C Gram matrices of the means, never from C² vectors.
    """
    m = class_moments(X, y, device)
    n_classes = len(m.counts)
    first, second = _pairs(n_classes)
    gram = m.means @ m.means.T
    squared_gaps = gram.diagonal()[:, None] + gram.diagonal()[None, :] - 2 * gram
    variances = m.variances
    cdnv = (variances[first] + variances[second]) / (2 * squared_gaps[first, second])
    centred = m.means - m.global_mean
    norms = centred.norm(dim=1)
    cosines = (centred @ centred.T / (norms[:, None] * norms[None, :]))[first, second]
    unit_gaps = (2 - 2 * cosines).clamp_min(0).sqrt()
    return {
        **_nc1_from(m),
        "cdnv": float(cdnv.mean()),
        "cdnv_max": float(cdnv.max()),
        "equinorm": float(norms.std(unbiased=False) / norms.mean()),
        "equiangularity": float(cosines.std(unbiased=False)),
        "max_equiangularity": float((cosines + 1 / (n_classes - 1)).abs().mean()),
        "hyperspherical_energy": float(-torch.log(unit_gaps).mean()),
    }


def nearest_class_centre(x: Tensor, means: Tensor) -> Tensor:
    """The nearest-class-centre rule (NC4): for each row of ``x``, the class whose training mean
    (``means``, C × D) is nearest (Euclidean; ties to the lowest class). In float64, as the
    least ‖m_c‖² − 2⟨x, m_c⟩: ‖x‖² is the same for every class, and one product computes it."""
    m = means.double()
    return torch.addmm((m * m).sum(1), x.double(), m.T, alpha=-2).argmin(1)


def centred_class_means(batch: ClassBatch) -> Tensor:
    """M̃ (C × D, float64): each class's training mean minus the mean of all samples."""
    means, counts = batch.means().double(), batch.counts.double()
    return means - (counts[:, None] * means).sum(0) / counts.sum()


def self_duality(proxies: ProxySet, centred_means: Tensor) -> float:
    """NC3 of an imprinted classifier: ‖W̃/‖W̃‖_F − M̃/‖M̃‖_F‖²_F, where W̃ stacks w_c − mean_c(w_c)
    with w_c the mean of class c's proxies, and M̃ is ``centred_class_means`` of its training
    data. NaN when either is zero."""
    weights = proxies.weights.double()
    n_classes = centred_means.shape[0]
    counts = torch.bincount(proxies.labels, minlength=n_classes).double()
    w = torch.zeros(n_classes, weights.shape[1], dtype=torch.float64, device=weights.device)
    w = w.index_add_(0, proxies.labels, weights) / counts[:, None]
    centred_w = w - w.mean(0)
    w_norm, m_norm = centred_w.norm(), centred_means.norm()
    if float(w_norm) == 0 or float(m_norm) == 0:
        return float("nan")
    return float((centred_w / w_norm - centred_means / m_norm).pow(2).sum())
