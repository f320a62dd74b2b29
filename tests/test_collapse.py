"""nc1() against a brute-force computation and a Gaussian model with known covariances."""

from __future__ import annotations

import numpy as np
import pytest

from imprint import nc1
from imprint.method import collapse
from imprint.method.collapse import collapse_metrics


def _brute_force(x, y):
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(0) for c in classes])
    global_mean = x.mean(0)
    dim = x.shape[1]
    sigma_w = np.zeros((dim, dim))
    for c, mu in zip(classes, means, strict=True):
        within = np.zeros((dim, dim))
        for h in x[y == c]:
            within += np.outer(h - mu, h - mu)
        sigma_w += within / (y == c).sum()
    sigma_w /= len(classes)
    sigma_b = sum(np.outer(mu - global_mean, mu - global_mean) for mu in means) / len(classes)
    rank_b = np.linalg.matrix_rank(sigma_b)
    return {
        "nc1": np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / len(classes),
        "vci": 1 - np.trace(sigma_b @ np.linalg.pinv(sigma_w + sigma_b)) / rank_b,
        "tr_sigma_w": np.trace(sigma_w),
        "tr_sigma_b": np.trace(sigma_b),
        "rank_sigma_w": np.linalg.matrix_rank(sigma_w),
        "rank_sigma_b": rank_b,
    }


def test_matches_brute_force_with_unequal_classes_and_chunks(monkeypatch):
    monkeypatch.setattr(collapse, "_CHUNK_ROWS", 17)  # several chunks, classes split across them
    rng = np.random.default_rng(0)
    y = rng.choice([3, 7, 11, 20], size=150, p=[0.1, 0.2, 0.3, 0.4])
    x = rng.normal(size=(150, 6)) + rng.normal(size=(21, 6))[y] * 2
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    got, expected = nc1(x, y), _brute_force(x, y)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_gaussian_classes_with_known_covariances():
    """Two classes at ±a·e1 with isotropic noise σ²: Σ_W = σ² I, Σ_B = a² e1 e1ᵀ."""
    rng = np.random.default_rng(1)
    a, sigma, dim, n = 3.0, 0.5, 4, 200_000
    y = np.repeat([0, 1], n)
    x = rng.normal(scale=sigma, size=(2 * n, dim))
    x[:, 0] += np.where(y == 0, -a, a)
    got = nc1(x.astype(np.float32), y)
    assert got["tr_sigma_w"] == pytest.approx(dim * sigma**2, rel=1e-2)
    assert got["tr_sigma_b"] == pytest.approx(a**2, rel=1e-2)
    assert got["nc1"] == pytest.approx(sigma**2 / a**2 / 2, rel=2e-2)  # Tr(σ² I · e1e1ᵀ/a²) / C
    assert got["vci"] == pytest.approx(1 - a**2 / (a**2 + sigma**2), rel=2e-2)
    assert (got["rank_sigma_b"], got["rank_sigma_w"]) == (1, dim)


def test_works_on_a_memory_map(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=300)
    path = tmp_path / "x.npy"
    np.save(path, x)
    assert nc1(np.load(path, mmap_mode="r"), y) == pytest.approx(nc1(x, y))


def _reference_nc1(x, y):
    """NC1 as the reference computes it (PAPER.md §B): each sample centred at m_c = μ_c − μ_G."""
    classes = np.unique(y)
    global_mean = x.mean(0)
    sigma_w = np.zeros((x.shape[1], x.shape[1]))
    sigma_b = np.zeros_like(sigma_w)
    for c in classes:
        m_c = x[y == c].mean(0) - global_mean
        centred = x[y == c] - m_c
        sigma_w += centred.T @ centred / len(centred)
        sigma_b += np.outer(m_c, m_c)
    sigma_w /= len(classes)
    sigma_b /= len(classes)
    return np.trace(np.linalg.pinv(sigma_b) @ sigma_w) / len(classes)


def test_paper_variant_matches_the_references_formula():
    rng = np.random.default_rng(3)
    y = rng.choice([0, 1, 2, 5], size=400, p=[0.1, 0.2, 0.3, 0.4])  # unbalanced: μ_G is weighted
    x = rng.normal(size=(400, 7)) + rng.normal(size=(6, 7))[y] * 2 + 1.5  # a common offset
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    got = nc1(x, y)
    assert got["nc1_paper"] == pytest.approx(_reference_nc1(x, y), rel=1e-9)
    assert got["nc1_paper"] > got["nc1"] * 1.01  # the offset makes the two differ


def test_collapsed_classes_have_a_rank_zero_within_class_covariance():
    """Every sample equal to its class mean, up to float32 rounding: Σ_W is noise, rank 0."""
    rng = np.random.default_rng(4)
    means = rng.normal(size=(5, 32))
    y = np.repeat(np.arange(5), 200)
    x = (means[y] * rng.uniform(0.5, 2.0, size=(len(y), 1))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # same directions, float32 rounding
    got = nc1(x, y)
    assert got["rank_sigma_w"] == 0
    assert got["rank_sigma_b"] == 4
    assert got["nc1"] < 1e-10
    assert np.linalg.matrix_rank(np.cov(x[y == 0].T.astype(np.float64))) > 0  # noise is there


def _brute_force_geometry(x, y):
    """CDNV and NC2 with loops over classes and pairs (issue's definitions)."""
    classes = np.unique(y)
    means = {c: x[y == c].mean(0) for c in classes}
    variances = {c: np.mean([np.sum((h - means[c]) ** 2) for h in x[y == c]]) for c in classes}
    global_mean = x.mean(0)
    centred = {c: means[c] - global_mean for c in classes}
    unit = {c: centred[c] / np.linalg.norm(centred[c]) for c in classes}
    pairs = [(a, b) for i, a in enumerate(classes) for b in classes[i + 1 :]]
    cdnv = [
        (variances[a] + variances[b]) / (2 * np.sum((means[a] - means[b]) ** 2)) for a, b in pairs
    ]
    cosines = [float(unit[a] @ unit[b]) for a, b in pairs]
    norms = [np.linalg.norm(centred[c]) for c in classes]
    return {
        "cdnv": np.mean(cdnv),
        "cdnv_max": np.max(cdnv),
        "equinorm": np.std(norms) / np.mean(norms),
        "equiangularity": np.std(cosines),
        "max_equiangularity": np.mean([abs(c + 1 / (len(classes) - 1)) for c in cosines]),
        "hyperspherical_energy": np.mean(
            [np.log(1 / np.linalg.norm(unit[a] - unit[b])) for a, b in pairs]
        ),
    }


def test_collapse_metrics_match_loops_over_classes_and_pairs(monkeypatch):
    monkeypatch.setattr(collapse, "_CHUNK_ROWS", 23)  # streamed in chunks, classes split
    rng = np.random.default_rng(6)
    y = rng.choice([2, 4, 5, 9, 11], size=300, p=[0.1, 0.15, 0.2, 0.25, 0.3])
    x = rng.normal(size=(300, 7)) + rng.normal(size=(12, 7))[y] * 3
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    got = collapse_metrics(x, y)
    for key, value in _brute_force_geometry(x, y).items():
        assert got[key] == pytest.approx(value, rel=1e-9), key
    one_shot = nc1(x, y)
    assert {k: got[k] for k in one_shot} == pytest.approx(one_shot)


def test_streaming_equals_one_shot(monkeypatch):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 4, size=500)
    x = rng.normal(size=(500, 6)) + rng.normal(size=(4, 6))[y]
    whole = collapse_metrics(x, y)
    monkeypatch.setattr(collapse, "_CHUNK_ROWS", 7)
    assert collapse_metrics(x, y) == pytest.approx(whole, rel=1e-10)


def test_a_simplex_etf_and_collapsed_classes_have_known_geometry():
    n_classes = 5
    etf = np.eye(n_classes) - 1 / n_classes  # centred simplex: equal norms, cos = -1/(C-1)
    y = np.repeat(np.arange(n_classes), 40)
    x = etf[y] + 0.0  # every sample at its class mean: collapsed
    got = collapse_metrics(x, y)
    assert got["equinorm"] == pytest.approx(0, abs=1e-12)
    assert got["equiangularity"] == pytest.approx(0, abs=1e-12)
    assert got["max_equiangularity"] == pytest.approx(0, abs=1e-12)
    assert got["cdnv"] == got["cdnv_max"] == pytest.approx(0, abs=1e-12)
    expected_energy = -np.log(np.sqrt(2 + 2 / (n_classes - 1)))
    assert got["hyperspherical_energy"] == pytest.approx(expected_energy)
