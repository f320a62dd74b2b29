"""nc1() against a brute-force computation and a Gaussian model with known covariances."""

from __future__ import annotations

import numpy as np
import pytest

from imprint import collapse, nc1


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
