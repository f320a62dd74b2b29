"""Exemplar-free ``partial_fit`` (``keep="statistics"``): a sequence of calls, each bringing new
classes, predicts as one fit that keeps every row; what it cannot serve it refuses."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from sklearn.covariance import LedoitWolf

from imprint import ImprintingClassifier
from imprint.method.generators import GEN
from imprint.method.normalize import NORM_POST
from imprint.method.statistics import RowMoments
from tests.conftest import make_task

N_CLASSES = 6


@pytest.fixture(scope="module")
def data():
    x, y = make_task(n_classes=N_CLASSES, per_class=40, dim=8, offset=4.0, seed=5)
    x_test, _ = make_task(
        n_classes=N_CLASSES, per_class=30, dim=8, offset=4.0, seed=5, sample_seed=9
    )
    return x, y, x_test


def _in_steps(params: dict, x, y, order: list[int], size: int = 2) -> ImprintingClassifier:
    """Classes added ``size`` at a time in ``order``, exemplar-free."""
    clf = ImprintingClassifier(**params, keep="statistics")
    for start in range(0, len(order), size):
        rows = np.isin(y, order[start : start + size])
        clf.partial_fit(x[rows], y[rows])
    return clf


def _assert_as_one_fit(params: dict, data) -> None:
    x, y, x_test = data
    whole = ImprintingClassifier(**params).fit(x, y)
    for order in ([0, 1, 2, 3, 4, 5], [4, 1, 5, 0, 3, 2]):
        steps = _in_steps(params, x, y, order)
        assert np.array_equal(steps.predict(x_test), whole.predict(x_test)), order
        np.testing.assert_allclose(
            steps.decision_function(x_test), whole.decision_function(x_test), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("gen", sorted(GEN))
def test_every_gen_in_steps_predicts_as_one_fit(gen, data):
    _assert_as_one_fit({"gen": gen, "k": 3, "seed": 7}, data)


@pytest.mark.parametrize("norm_post", sorted(NORM_POST))
@pytest.mark.parametrize("gen", ["kmeans", "ls"])
def test_every_norm_post_in_steps_predicts_as_one_fit(norm_post, gen, data):
    _assert_as_one_fit({"gen": gen, "k": 3, "norm_post": norm_post, "seed": 3}, data)


@pytest.mark.parametrize(
    "agg",
    [
        {"agg": "max", "distance": "inner_product", "norm_inf": "l2"},
        {"agg": "max", "distance": "mahalanobis"},
        {"agg": "mnn", "distance": "euclidean", "m": 5},
        {"agg": "mnn", "distance": "cosine", "m": 3, "weighting": "weighted_by_distance"},
        {"agg": "mnn", "distance": "manhattan", "m": 3},
        {"agg": "mnn", "distance": "chebyshev", "m": 3},
        {"agg": "mnn", "distance": "mahalanobis", "m": 5},
    ],
    ids=lambda a: f"{a['agg']}-{a['distance']}",
)
def test_every_agg_in_steps_predicts_as_one_fit(agg, data):
    _assert_as_one_fit({"gen": "kls", "k": 3, "norm_pre": "l2", **agg}, data)


def test_old_classes_keep_their_proxies_bit_for_bit(data):
    x, y, _ = data
    clf = ImprintingClassifier(gen="kmeans", k=3, norm_post="l2", keep="statistics")
    seen = {}
    for step in ([0, 1], [2, 3], [4, 5]):
        rows = np.isin(y, step)
        clf.partial_fit(x[rows], y[rows])
        for c, before in seen.items():
            assert torch.equal(clf.proxies_.weights[clf.proxies_.labels == c], before)
        seen = {c: clf.proxies_.weights[clf.proxies_.labels == c].clone() for c in clf.classes_}


def test_the_moments_give_the_ledoit_wolf_covariance_of_all_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)) * [1, 2, 3, 0.5, 1] + 40.0  # far from the origin
    moments = RowMoments.of(torch.tensor(x[:100]))
    for part in (x[100:120], x[120:]):
        moments = moments.add(torch.tensor(part))
    assert moments.count == 300
    expected = LedoitWolf().fit(x).covariance_
    np.testing.assert_allclose(moments.covariance().numpy(), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("gen", ["linear_probe", "knn", "cache"])
def test_baselines_are_refused_with_the_reason(gen, data):
    x, y, _ = data
    with pytest.raises(ValueError, match=r"cannot serve gen=.*use keep='rows'"):
        ImprintingClassifier(gen=gen, keep="statistics").fit(x, y)


def test_more_rows_of_a_kept_class_and_calibration_are_refused(data):
    x, y, _ = data
    clf = ImprintingClassifier(keep="statistics").fit(x[y < 4], y[y < 4])
    before = clf.proxies_.weights.clone()
    with pytest.raises(ValueError, match=r"classes \[3\] that are already kept"):
        clf.partial_fit(x[y >= 3], y[y >= 3])
    assert torch.equal(clf.proxies_.weights, before) and list(clf.classes_) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="calibrate refits on the training rows"):
        clf.calibrate()
    with pytest.raises(ValueError, match="keep='everything' is not valid"):
        ImprintingClassifier(keep="everything").fit(x, y)
    clf.set_params(keep="rows")
    with pytest.raises(ValueError, match=r"\['keep'\] changed since"):
        clf.predict(x)


def _saved_bytes(clf: ImprintingClassifier) -> int:
    buffer = io.BytesIO()
    torch.save(clf.kept_state(), buffer)
    return buffer.getbuffer().nbytes


@pytest.mark.parametrize(
    "params", [{"gen": "mean"}, {"gen": "ls", "distance": "mahalanobis", "agg": "mnn"}]
)
def test_a_kept_state_without_rows_restores_renames_and_does_not_grow(params, data):
    x, y, x_test = data
    clf = _in_steps(params, x, y, [0, 1, 2, 3, 4, 5], size=3)
    again = ImprintingClassifier.from_kept_state(clf.kept_state())
    assert np.array_equal(again.predict(x_test), clf.predict(x_test))
    again.partial_fit(x[y == 5] + 1.0, np.full((y == 5).sum(), 9))  # still takes new classes
    renamed = clf.with_labels({c: f"class {c}" for c in range(N_CLASSES)})
    assert list(renamed.predict(x_test)) == [f"class {c}" for c in clf.predict(x_test)]
    doubled = _in_steps(
        params, np.concatenate([x, x + 0.1]), np.concatenate([y, y]), list(range(6))
    )
    assert _saved_bytes(doubled) == _saved_bytes(clf)
    assert _saved_bytes(clf) < _saved_bytes(ImprintingClassifier(**params).fit(x, y))


def test_kls_leaves_classes_of_fewer_than_k_rows_out_of_the_solve_as_one_fit_does(data):
    x, y, x_test = data
    small = np.flatnonzero(y == 2)[2:]  # class 2 keeps 2 rows, fewer than k = 3
    kept = np.setdiff1d(np.arange(len(y)), small)
    _assert_as_one_fit({"gen": "kls", "k": 3, "seed": 1}, (x[kept], y[kept], x_test))
