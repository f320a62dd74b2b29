"""Calibration (``imprint.method.novelty``) against independent computations: scikit-learn's
Ledoit-Wolf and SciPy's Mahalanobis distance, a brute-force search of the temperature, the
conformal quantile counted by hand; its promises measured on fresh rows; and the classifier's
``calibrate``, ``predict_proba`` and ``predict_unknown``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import mahalanobis
from sklearn.covariance import LedoitWolf
from sklearn.exceptions import NotFittedError

from imprint import ImprintingClassifier
from imprint.deploy.keep import expected_calibration_error
from imprint.method import novelty
from imprint.method.novelty import (
    class_gaussians,
    conformal_threshold,
    fit_temperature,
    novelty_scores,
)


def _classes(rng: np.random.Generator, n: int, dim: int = 8, centres: np.ndarray | None = None):
    """``n`` rows of each of three Gaussian classes around the rows of ``centres``."""
    centres = rng.normal(size=(3, dim)) * 3 if centres is None else centres
    x = np.concatenate([c + rng.normal(size=(n, dim)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(len(centres)), n), centres


def test_class_gaussians_and_novelty_match_scikit_learn_and_scipy():
    rng = np.random.default_rng(0)
    x, y, _ = _classes(rng, 40)
    means, precision = class_gaussians(torch.from_numpy(x), torch.from_numpy(y), 3)
    z = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    expected_means = np.stack([z[y == c].mean(0) for c in range(3)])
    np.testing.assert_allclose(means.numpy(), expected_means, atol=1e-12)
    lw = LedoitWolf().fit(z - expected_means[y])
    np.testing.assert_allclose(precision.numpy(), lw.precision_, rtol=1e-6)
    queries = rng.normal(size=(7, 8))
    unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    brute = [min(mahalanobis(q, m, lw.precision_) ** 2 for m in expected_means) for q in unit]
    got = novelty_scores(torch.from_numpy(queries), means, precision)
    np.testing.assert_allclose(got.numpy(), brute, rtol=1e-6)


def test_the_temperature_is_the_least_negative_log_likelihood():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(200, 4))
    truth = rng.integers(0, 4, 200)
    scores[np.arange(200), truth] += 1.5

    def nll(t: float) -> float:
        z = scores / t
        z = z - z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(200), truth]))

    grid = np.exp(np.linspace(np.log(0.01), np.log(100), 20001))
    best = grid[np.argmin([nll(t) for t in grid])]
    found = fit_temperature(torch.from_numpy(scores), torch.from_numpy(truth))
    assert found == pytest.approx(best, rel=1e-3)


def test_the_threshold_is_the_conformal_quantile():
    held_out = torch.tensor([5.0, 1, 19, 3, 7, 2, 11, 13, 17, 4, 6, 8, 9, 10, 12, 14, 15, 16, 18])
    # n = 19, rate 0.1: the ceil(20 * 0.9) = 18th smallest of 1..19
    assert conformal_threshold(held_out, 0.1) == 18.0
    assert conformal_threshold(held_out, 0.5) == 10.0  # ceil(20 * 0.5) = 10th
    with pytest.raises(ValueError, match="19 training rows cannot set a threshold at a false"):
        conformal_threshold(held_out, 0.01)  # needs 99 rows


def test_the_expected_calibration_error_counted_by_hand():
    confidence = np.array([0.95, 0.95, 0.55, 0.25])
    correct = np.array([True, False, True, False])
    # bins (0.9, 1]: 2 rows, accuracy 0.5 -> |0.5 - 0.95| * 2/4; (0.5, 0.6]: |1 - 0.55| * 1/4;
    # (0.2, 0.3]: |0 - 0.25| * 1/4
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.225 + 0.1125 + 0.0625)


def test_fresh_rows_of_known_classes_are_flagged_at_the_stated_rate_and_others_are_caught():
    rng = np.random.default_rng(2)
    x, y, centres = _classes(rng, 200)
    clf = ImprintingClassifier(k=3, seed=0).fit(x, y).calibrate(0.1)
    fresh, fresh_y, _ = _classes(rng, 2000, centres=centres)
    flagged = clf.predict_unknown(fresh).mean()
    assert 0.06 < flagged < 0.14  # the stated 0.1, up to sampling and cross-fitting
    strangers, _, _ = _classes(rng, 300)  # three other classes
    assert clf.predict_unknown(strangers).mean() > 0.9
    proba = clf.predict_proba(fresh)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-9)
    assert (clf.classes_[proba.argmax(1)] == clf.predict(fresh)).all()
    correct = clf.predict(fresh) == fresh_y
    assert abs(proba.max(1).mean() - correct.mean()) < 0.03  # confidence is the accuracy


def test_calibration_is_kept_renamed_and_refitted_as_classes_come():
    rng = np.random.default_rng(3)
    x, y, _ = _classes(rng, 30)
    clf = ImprintingClassifier(k=2, seed=4).fit(x, y)
    assert not hasattr(clf, "predict_proba")  # scikit-learn's way: there once it can answer
    with pytest.raises(AttributeError, match="has no attribute 'predict_proba'") as refused:
        clf.predict_proba(x)
    assert "not calibrated; call calibrate" in str(refused.value.__cause__)
    with pytest.raises(NotFittedError, match="not calibrated; call calibrate"):
        clf.predict_unknown(x)
    clf.calibrate()
    copy = ImprintingClassifier.from_kept_state(clf.kept_state())
    np.testing.assert_array_equal(copy.predict_proba(x), clf.predict_proba(x))
    np.testing.assert_array_equal(copy.novelty(x), clf.novelty(x))
    renamed = clf.with_labels({0: "zebra", 1: "ant", 2: "mole"})
    assert renamed.classes_.tolist() == ["ant", "mole", "zebra"]
    np.testing.assert_allclose(renamed.predict_proba(x), clf.predict_proba(x)[:, [1, 2, 0]])
    np.testing.assert_allclose(renamed.novelty(x), clf.novelty(x))
    new = x[y == 0][:1] + 40  # one row of a far class: it joins without being held out
    clf.partial_fit(new, [3])
    assert clf.predict_proba(x).shape == (len(x), 4)
    assert not clf.predict_unknown(new).any()
    assert clf.calibration_.means.shape[0] == 4
    clf.fit(x, y)
    assert not hasattr(clf, "calibration_")  # a new fit forgets the calibration


def test_a_calibration_that_fails_leaves_partial_fit_undone(monkeypatch):
    rng = np.random.default_rng(5)
    x, y, _ = _classes(rng, 20)
    clf = ImprintingClassifier(k=2, seed=0).fit(x, y).calibrate()
    before = clf.predict_proba(x)

    def fail(*args, **kwargs):
        raise ValueError("no calibration today")

    monkeypatch.setattr("imprint.method.classifier.calibrate", fail)
    with pytest.raises(ValueError, match="no calibration today"):
        clf.partial_fit(x[:5] + 20, [7] * 5)
    assert clf.classes_.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(clf.predict_proba(x), before)
    with pytest.raises(ValueError, match=r"between 0 and 1, got 1\.5"):
        novelty.calibrate(clf, torch.from_numpy(x), y, 1.5)
