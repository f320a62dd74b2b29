"""NORM and NORMpost against direct numpy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imprint.method.batch import ProxySet
from imprint.method.normalize import NORM, NORM_POST, quantiles


def _proxies(rng: np.random.Generator, per_class: list[int], dim: int = 6) -> ProxySet:
    labels = np.repeat(np.arange(len(per_class)), per_class)
    weights = rng.normal(size=(labels.size, dim)) + rng.normal(size=(len(per_class), 1))[labels]
    return ProxySet(torch.tensor(weights, dtype=torch.float64), torch.tensor(labels))


def _rank_replace(row: np.ndarray, reference: np.ndarray) -> np.ndarray:
    dim = row.size
    targets = [np.quantile(reference, (i + 0.5) / dim) for i in range(dim)]
    out = np.empty(dim)
    for rank, position in enumerate(np.argsort(row, kind="stable")):
        out[position] = targets[rank]
    return out


def test_l2_and_none_row_by_row():
    x = np.random.default_rng(0).normal(size=(5, 3))
    got = NORM["l2"](torch.tensor(x)).numpy()
    for row, out in zip(x, got, strict=True):
        np.testing.assert_allclose(out, row / np.sqrt((row**2).sum()))
    assert torch.equal(NORM["none"](torch.tensor(x)), torch.tensor(x))


def test_quantiles_match_numpy_linear_interpolation():
    values = np.random.default_rng(1).normal(size=(7, 11))
    probs = np.linspace(0, 1, 13)
    got = quantiles(torch.tensor(values), torch.tensor(probs)).numpy()
    np.testing.assert_allclose(got, np.quantile(values, probs))


def test_quantile_normalises_every_proxy_to_the_pooled_distribution():
    proxies = _proxies(np.random.default_rng(2), [2, 3, 1])
    got = NORM_POST["quantile"](proxies).weights.numpy()
    pooled = proxies.weights.numpy().ravel()
    for row, out in zip(proxies.weights.numpy(), got, strict=True):
        np.testing.assert_allclose(out, _rank_replace(row, pooled))


def test_quantile_sequential_keeps_first_class_and_chains_the_rest():
    proxies = _proxies(np.random.default_rng(3), [2, 2, 3])
    weights, labels = proxies.weights.numpy(), proxies.labels.numpy()
    expected = weights.copy()
    for c in (1, 2):
        reference = expected[labels < c].ravel()
        for i in np.flatnonzero(labels == c):
            expected[i] = _rank_replace(weights[i], reference)
    got = NORM_POST["quantile_sequential"](proxies).weights.numpy()
    np.testing.assert_allclose(got, expected)
    np.testing.assert_array_equal(got[labels == 0], weights[labels == 0])


@pytest.mark.parametrize("levels", [2, 40])
def test_quantile_sequential_with_ties_and_an_empty_class_as_numpy_pools_them(levels):
    """Equal values within and across classes (few or many levels), float32, an empty class:
    the reference of each class is every earlier proxy as normalised, pooled and handed to
    numpy.quantile."""
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 2, 3, 4, 5], [12, 1, 2, 1, 2])  # class 1 has no proxies
    steps = rng.integers(-levels, levels + 1, size=(labels.size, 20))
    weights = (steps / levels).astype(np.float32)
    expected = weights.copy()
    for c in (2, 3, 4, 5):
        reference = expected[labels < c].ravel().astype(np.float64)
        for i in np.flatnonzero(labels == c):
            expected[i] = _rank_replace(weights[i], reference).astype(np.float32)
    proxies = ProxySet(torch.tensor(weights), torch.tensor(labels))
    got = NORM_POST["quantile_sequential"](proxies).weights.numpy()
    np.testing.assert_array_equal(got, expected)


def test_l2_post_normalises_each_proxy():
    proxies = _proxies(np.random.default_rng(4), [3, 3])
    got = NORM_POST["l2"](proxies).weights.numpy()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0)
    assert NORM_POST["none"](proxies) is proxies
