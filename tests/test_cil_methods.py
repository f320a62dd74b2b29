"""RanPAC and FeCAM against NumPy written from their authors' published rules."""

from __future__ import annotations

import numpy as np
import pytest

from imprint.method import cil_methods
from imprint.method.cil_methods import RANPAC_RIDGES, FeCAM, RanPAC
from tests.conftest import make_task


def _reference_ridge(h: np.ndarray, y: np.ndarray, seed: int) -> float:
    """RanPAC's ridge search as its authors wrote it: one solve per ridge on the first 80 % of
    the (shuffled) rows, mean squared error on the rest, the first minimum."""
    h = h[np.random.default_rng(seed).permutation(len(h))]
    y = y[np.random.default_rng(seed).permutation(len(y))]
    n = int(len(h) * 0.8)
    gram, q = h[:n].T @ h[:n], h[:n].T @ y[:n]
    losses = []
    for ridge in 10.0 ** np.arange(-8, 9):
        w = np.linalg.solve(gram + ridge * np.eye(len(gram)), q)
        losses.append(np.mean((h[n:] @ w - y[n:]) ** 2))
    return float(10.0 ** np.arange(-8, 9)[np.argmin(losses)])


def _one_hot(labels: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n)[labels]


@pytest.mark.parametrize("dimensions", [40, 400])  # more rows than M, and fewer
def test_ranpac_chooses_the_ridge_its_authors_search_chooses(dimensions):
    x, y = make_task(n_classes=4, per_class=60, dim=16, seed=3)
    clf = RanPAC(dimensions=dimensions, seed=5).partial_fit(x, y)
    h = np.maximum(x.astype(np.float64) @ clf.projection.numpy(), 0)
    expected = _reference_ridge(h, _one_hot(y, 4), seed=5)
    assert clf.ridge == expected
    assert RANPAC_RIDGES[0] == 1e-8 and RANPAC_RIDGES[-1] == 1e8 and len(RANPAC_RIDGES) == 17


def test_ranpac_sums_its_statistics_over_steps_and_solves_with_the_last_ridge(monkeypatch):
    """Steps of 120, 80 and 40 rows at M = 50: the first two choose λ from G (summed 7 rows at a
    time here), the last from its rows' kernel matrix."""
    monkeypatch.setattr(cil_methods, "_CHUNK_ROWS", 7)
    x, y = make_task(n_classes=6, per_class=40, dim=16, seed=4)
    x_test, _ = make_task(n_classes=6, per_class=10, dim=16, seed=4, sample_seed=9)
    clf = RanPAC(dimensions=50, seed=1)
    for step in (np.isin(y, [0, 1, 2]), np.isin(y, [3, 4]), y == 5):
        clf.partial_fit(x[step], y[step])
    projection = clf.projection.numpy()
    h = np.maximum(x.astype(np.float64) @ projection, 0)
    positions = np.argsort(clf.classes_)[y]  # classes in the order first seen: 0..5
    gram, q = h.T @ h, h.T @ _one_hot(positions, 6)
    np.testing.assert_allclose(clf.gram.numpy(), gram, rtol=1e-10)
    np.testing.assert_allclose(clf.targets.numpy(), q, rtol=1e-10, atol=1e-9)
    weight = np.linalg.solve(gram + clf.ridge * np.eye(50), q)
    h_test = np.maximum(x_test.astype(np.float64) @ projection, 0)
    np.testing.assert_allclose(clf.scores(x_test).numpy(), h_test @ weight, rtol=1e-6, atol=1e-8)
    assert (clf.predict(x_test) == clf.classes_[(h_test @ weight).argmax(1)]).all()


def _reference_fecam(x, y, x_test, tukey=None):
    """FeCAM's pretrained-ViT rule as its authors wrote it (NumPy): normalised rows, np.cov,
    shrink by the diagonal's mean, to correlation, pseudo-inverse, least distance."""

    def transform(a):
        a = a.astype(np.float64)
        if tukey is not None:
            a = np.log(a) if tukey == 0 else a**tukey
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    x, x_test = transform(x), transform(x_test)
    classes = np.unique(y)
    distances = []
    for c in classes:
        rows = x[y == c]
        cov = np.cov(rows.T)
        cov = cov + np.mean(np.diagonal(cov)) * np.eye(len(cov))
        sd = np.sqrt(np.diagonal(cov))
        inverse = np.linalg.pinv(cov / np.outer(sd, sd))
        d = x_test - rows.mean(0)
        distances.append(np.diagonal(d @ inverse @ d.T))
    distances = np.array(distances).T
    return classes[distances.argmin(1)], distances


@pytest.mark.parametrize("tukey", [None, 0.5])
def test_fecam_equals_its_authors_rule(tukey):
    x, y = make_task(n_classes=5, per_class=30, dim=12, seed=6)
    x_test, _ = make_task(n_classes=5, per_class=12, dim=12, seed=6, sample_seed=8)
    if tukey is not None:
        x, x_test = np.abs(x), np.abs(x_test)  # non-negative, as CNN features after a ReLU
    clf = FeCAM(tukey=tukey).partial_fit(x, y)
    predicted, distances = _reference_fecam(x, y, x_test, tukey)
    order = np.argsort(clf.classes_)
    np.testing.assert_allclose(-clf.scores(x_test).numpy()[:, order], distances, rtol=1e-8)
    assert (clf.predict(x_test) == predicted).all()


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [4, 2, 5, 0, 3, 1]])
def test_fecam_step_by_step_equals_one_fit(order):
    x, y = make_task(n_classes=6, per_class=25, dim=10, seed=2)
    x_test, _ = make_task(n_classes=6, per_class=10, dim=10, seed=2, sample_seed=3)
    joint = FeCAM().partial_fit(x, y)
    steps = FeCAM()
    for group in (order[:2], order[2:4], order[4:]):
        kept = np.isin(y, group)
        steps.partial_fit(x[kept], y[kept])
    assert (steps.predict(x_test) == joint.predict(x_test)).all()
    at = [list(steps.classes_).index(c) for c in joint.classes_]
    np.testing.assert_allclose(steps.scores(x_test).numpy()[:, at], joint.scores(x_test).numpy())


def test_fecam_refuses_what_its_rule_cannot_take():
    x, y = make_task(n_classes=3, per_class=5, dim=6, seed=1)
    with pytest.raises(ValueError, match="non-negative embeddings"):
        FeCAM(tukey=0.5).partial_fit(x - 10, y)
    with pytest.raises(ValueError, match="at least two rows of a class"):
        FeCAM().partial_fit(x[:6], np.array([0, 0, 1, 1, 2, 0]))
    with pytest.raises(ValueError, match="call partial_fit"):
        RanPAC().predict(x)


def test_the_kept_state_does_not_grow_with_the_rows():
    x, y = make_task(n_classes=4, per_class=50, dim=8, seed=7)
    for learner in (FeCAM(), RanPAC(dimensions=64)):
        first = learner.partial_fit(x[::2], y[::2]).kept_state()  # every class, half its rows
        later = learner.partial_fit(x[1::2], y[1::2]).kept_state()  # the other half
        assert {k: v.shape for k, v in first.items()} == {k: v.shape for k, v in later.items()}
