"""The tiled Manhattan kernel against a float64 brute-force sum of absolute differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imprint.method.manhattan import manhattan_to
from tests.conftest import torch_threads


def _brute(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.array(
        [[sum(abs(float(a) - float(b)) for a, b in zip(u, v, strict=True)) for v in w] for u in x]
    )


@pytest.mark.parametrize(("rows", "proxies"), [(1, 1), (3, 5), (4, 2), (9, 7), (13, 40)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_shape_and_dtype_matches_a_brute_force_sum(rows, proxies, dtype):
    """Row counts off the 6 × 4 tile are padded; the padding never reaches the result."""
    rng = np.random.default_rng(rows * 100 + proxies)
    x = rng.normal(size=(rows, 37)) * 3 + 1
    w = rng.normal(size=(proxies, 37)) * 3 - 1
    got = manhattan_to(torch.tensor(w, dtype=dtype))(torch.tensor(x, dtype=dtype))
    assert got.shape == (rows, proxies) and got.dtype == dtype
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(got.numpy(), _brute(x, w), rtol=tolerance)


def test_small_integers_are_summed_exactly_whatever_the_thread_count():
    """Integer coordinates have exact float32 sums, so every thread count gives the same bits."""
    rng = np.random.default_rng(3)
    x = rng.integers(-4, 5, size=(50, 64)).astype(np.float32)
    w = rng.integers(-4, 5, size=(31, 64)).astype(np.float32)
    expected = _brute(x, w)
    for n in (1, 2):
        with torch_threads(n):
            got = manhattan_to(torch.tensor(w))(torch.tensor(x))
        assert np.array_equal(got.numpy(), expected.astype(np.float32))


def test_non_contiguous_rows():
    """A transposed view is laid out before the kernel."""
    x = torch.arange(24, dtype=torch.float32).reshape(6, 4).T  # (4, 6), not contiguous
    w = torch.ones(3, 6)
    expected = _brute(x.numpy(), w.numpy())
    np.testing.assert_array_equal(manhattan_to(w)(x).numpy(), expected)
