"""Presampling: few-shot draws and the Weibull filter against SciPy's weibull_min."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import weibull_min

from imprint.method.batch import ClassBatch
from imprint.method.pipeline import prepare_classes
from imprint.method.presample import fewshot, weibull
from tests.conftest import make_task


def _batch(per_class: int = 30, seed: int = 0) -> tuple[ClassBatch, np.ndarray, np.ndarray]:
    x, y = make_task(per_class=per_class, seed=seed)
    return ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), 4), x, y


def _rows(batch: ClassBatch, c: int) -> np.ndarray:
    return batch.x[c][batch.mask[c]].numpy()


def test_fewshot_draws_n_distinct_samples_of_each_class_deterministically():
    batch, x, y = _batch()
    picked = fewshot(batch, 5, 7)
    again = fewshot(batch, 5, 7)
    other = fewshot(batch, 5, 8)
    assert picked.counts.tolist() == [5, 5, 5, 5]
    for c in range(4):
        rows = _rows(picked, c)
        assert len({r.tobytes() for r in rows}) == 5
        assert all((x[y == c] == r).all(1).any() for r in rows)
    assert torch.equal(picked.x, again.x)
    assert not torch.equal(picked.x, other.x)


def test_fewshot_all_and_more_than_available_keep_everything():
    batch, _, _ = _batch(per_class=6)
    assert fewshot(batch, -1, 0) is batch
    assert fewshot(batch, 50, 0).counts.tolist() == [6] * 4


def test_weibull_keeps_samples_between_the_quantiles_of_a_three_parameter_fit():
    batch, x, y = _batch(per_class=40)
    kept = weibull(batch, 0.1, 0.8)
    for c in range(4):
        rows = x[y == c].astype(np.float64)
        d = np.linalg.norm(rows - rows.mean(0), axis=1)
        shape, loc, scale = weibull_min.fit(d)  # location free, as the reference
        low, high = weibull_min.ppf([0.1, 0.8], shape, loc, scale)
        expected = rows[(d >= low) & (d <= high)]
        np.testing.assert_allclose(_rows(kept, c), expected, rtol=1e-6)


def test_weibull_comes_before_fewshot():
    """The few-shot draw picks among the samples Weibull kept, as the reference's prefilter."""
    x, y = make_task(per_class=40, seed=3)
    labels = torch.tensor(y)
    batch = prepare_classes(torch.tensor(x), labels, 4, "none", 5, (0.3, 0.7), seed=1)
    filtered = weibull(ClassBatch.from_labels(torch.tensor(x), labels, 4), 0.3, 0.7)
    expected = fewshot(filtered, 5, 1)
    assert batch.counts.tolist() == [5] * 4
    assert torch.equal(batch.x, expected.x)


def test_weibull_full_range_keeps_everything_and_rejects_bad_ranges():
    batch, _, _ = _batch()
    assert weibull(batch, 0.0, 1.0).counts.tolist() == batch.counts.tolist()
    with pytest.raises(ValueError, match="weibull"):
        weibull(batch, 0.8, 0.2)


@pytest.mark.parametrize("norm_pre", ["none", "l2"])
@pytest.mark.parametrize("draw", [(-1, None), (5, None), (10_000, None), (5, (0.1, 0.9))])
def test_preparing_from_rows_grouped_once_is_the_references_order_to_the_bit(norm_pre, draw):
    """A sweep groups the raw rows once and draws few-shot samples before NORMpre: the same
    bits as the reference's order (NORMpre of every row, grouping, Weibull, few-shot)."""
    x, y = make_task(per_class=40, seed=3)
    x = torch.tensor(x) * 7 + 2
    fewshot_n, bounds = draw
    normalised = x / x.norm(dim=1, keepdim=True) if norm_pre == "l2" else x
    expected = ClassBatch.from_labels(normalised, torch.tensor(y), 4)
    if bounds is not None:
        expected = weibull(expected, *bounds)
    expected = fewshot(expected, fewshot_n, 11)
    got = prepare_classes(x, torch.tensor(y), 4, norm_pre, fewshot_n, bounds, 11)
    assert torch.equal(got.mask, expected.mask)
    assert torch.equal(got.x, expected.x)
