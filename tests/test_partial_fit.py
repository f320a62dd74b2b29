"""``partial_fit``: any order of class batches, and more samples of known classes, equal one
``fit`` on everything seen, for every GEN, NORMpost and aggregation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imprint import ImprintingClassifier
from imprint.method.generators import GEN
from imprint.method.normalize import NORM_POST
from imprint.method.params import BASELINES
from tests.conftest import make_task

NAMES = np.array(["ant", "bee", "cat", "dog", "eel"])


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = make_task(n_classes=5, per_class=24, dim=6, modes=3, seed=3)
    x_test, _ = make_task(n_classes=5, per_class=12, dim=6, modes=3, seed=3, sample_seed=4)
    return x, NAMES[y], x_test


def _batches(x: np.ndarray, y: np.ndarray, order: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The training rows in class batches: cat and eel first, then bee with the first half of
    dog, then ant with dog's second half (a known class gets more samples), in ``order``."""
    dog = np.flatnonzero(y == "dog")
    parts = [
        np.isin(y, ["cat", "eel"]),
        np.isin(y, ["bee"]) | np.isin(np.arange(len(y)), dog[:12]),
        np.isin(y, ["ant"]) | np.isin(np.arange(len(y)), dog[12:]),
    ]
    if order == "reversed":
        parts = parts[::-1]
    return [(x[p], y[p]) for p in parts]


def _fit_both(params, x, y, order):
    batches = _batches(x, y, order)
    whole = ImprintingClassifier(**params).fit(
        np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    )
    step = ImprintingClassifier(**params)
    for rows, labels in batches:
        step.partial_fit(rows, labels)
    return whole, step


def _assert_same(whole, step, x_test):
    np.testing.assert_array_equal(step.classes_, whole.classes_)
    np.testing.assert_array_equal(step.predict(x_test), whole.predict(x_test))
    np.testing.assert_allclose(
        step.decision_function(x_test), whole.decision_function(x_test), rtol=1e-4, atol=1e-5
    )
    if whole.proxies_ is not None:
        assert torch.equal(step.proxies_.labels, whole.proxies_.labels)
        torch.testing.assert_close(step.proxies_.weights, whole.proxies_.weights)


@pytest.mark.parametrize("order", ["given", "reversed"])
@pytest.mark.parametrize("gen", [*GEN, *BASELINES])
def test_every_gen_in_class_batches_equals_one_fit(data, gen, order):
    x, y, x_test = data
    whole, step = _fit_both({"gen": gen, "k": 3, "seed": 5}, x, y, order)
    _assert_same(whole, step, x_test)


@pytest.mark.parametrize(
    "params",
    [
        *({"gen": "kmeans", "k": 4, "norm_post": post} for post in NORM_POST),
        {"gen": "kls", "k": 2, "norm_pre": "none", "norm_post": "quantile"},
        {"gen": "ls", "norm_post": "quantile_sequential"},
        {"gen": "all", "agg": "mnn", "m": 5, "distance": "mahalanobis"},
        {"gen": "kmeans", "k": 3, "agg": "mnn", "m": 3, "distance": "cosine",
         "weighting": "weighted_by_distance"},
        {"gen": "random", "k": 3, "agg": "max", "distance": "chebyshev", "norm_post": "quantile"},
        {"gen": "fps", "k": 3, "fewshot": 5, "seed": 2},
        {"gen": "kmeans", "k": 2, "fewshot": 8, "weibull": (0.05, 0.95)},
    ],
)  # fmt: skip
def test_normalisations_aggregations_and_presampling_in_class_batches_equal_one_fit(data, params):
    x, y, x_test = data
    for order in ("given", "reversed"):
        _assert_same(*_fit_both(params, x, y, order), x_test)


def test_adding_a_class_leaves_the_other_classes_proxies_as_they_were(data):
    x, y, _ = data
    clf = ImprintingClassifier(gen="kmeans", k=3, seed=1).fit(x[y != "cat"], y[y != "cat"])
    before = {c: clf.proxies_.weights[clf.proxies_.labels == i] for i, c in enumerate(clf.classes_)}
    clf.partial_fit(x[y == "cat"], y[y == "cat"])
    assert clf.classes_.tolist() == NAMES.tolist()
    for i, c in enumerate(clf.classes_):
        if c != "cat":
            assert torch.equal(clf.proxies_.weights[clf.proxies_.labels == i], before[c])


def test_a_first_partial_fit_may_hold_one_class_and_bad_additions_are_refused(data):
    x, y, x_test = data
    clf = ImprintingClassifier(gen="mean").partial_fit(x[y == "ant"], y[y == "ant"], NAMES)
    assert set(clf.predict(x_test)) == {"ant"}
    with pytest.raises(ValueError, match=r"y holds labels \['cat'\] that classes does not list"):
        clf.partial_fit(x[y == "cat"], y[y == "cat"], classes=["ant", "dog"])
    with pytest.raises(
        ValueError, match="X has 3 features, but ImprintingClassifier is expecting 6"
    ):
        clf.partial_fit(x[:4, :3], y[:4])
    with pytest.raises(ValueError, match=r"y holds numbers .* but the training labels are text"):
        clf.partial_fit(x[:4], np.arange(4))
    clf.set_params(gen="kmeans")
    with pytest.raises(ValueError, match="parameters changed since the classifier was fitted"):
        clf.partial_fit(x[:4], y[:4])
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(x[y == "ant"], y[y == "ant"])


def test_renamed_classes_predict_the_same_under_their_new_names_and_take_more(data):
    x, y, x_test = data
    numbers = np.searchsorted(NAMES, y)
    clf = ImprintingClassifier(gen="kmeans", k=3, seed=2).fit(x, numbers)
    names = {0: "zebra", 1: "yak", 2: "cat", 3: "dog", 4: "ant"}
    renamed = clf.with_labels(names)
    assert renamed.classes_.tolist() == ["ant", "cat", "dog", "yak", "zebra"]
    expected = [names[c] for c in clf.predict(x_test).tolist()]
    assert renamed.predict(x_test).tolist() == expected
    renamed.partial_fit(x[:5] + 100, ["emu"] * 5)
    assert renamed.predict(x_test[:1] * 0 + x[:1] + 100).tolist() == ["emu"]
    with pytest.raises(ValueError, match="names must give every class its own label"):
        clf.with_labels({**names, 1: "zebra"})


def test_a_refused_addition_leaves_the_classifier_as_it_was(data):
    x, y, x_test = data
    clf = ImprintingClassifier(gen="kmeans", k=2, weibull=(0.05, 0.95)).fit(x, y)
    before = clf.decision_function(x_test)
    with pytest.raises(ValueError, match="at least 2 training samples in every class"):
        clf.partial_fit(x[:1], ["fox"])  # Weibull needs two samples of the new class
    assert clf.classes_.tolist() == NAMES.tolist() and "fox" not in clf.store_
    np.testing.assert_array_equal(clf.decision_function(x_test), before)


@pytest.mark.cuda
def test_class_batches_on_the_gpu_equal_one_cpu_fit_and_its_head(data):
    """The keyed draws are made on the CPU and moved: a CUDA classifier built in class batches
    predicts as one CPU fit (but for rows that float rounding on another device may tip), and its
    head, moved to the GPU, as it does."""
    x, y, x_test = data
    params = {"gen": "kmeans", "k": 3, "seed": 5, "agg": "mnn", "m": 3, "distance": "euclidean"}
    whole = ImprintingClassifier(**params).fit(x, y)
    step = ImprintingClassifier(**params, device="cuda")
    for rows, labels in _batches(x, y, "reversed"):
        step.partial_fit(rows, labels)
    assert np.mean(step.predict(x_test) == whole.predict(x_test)) >= 0.95
    head = step.to_torch().to("cuda")
    with torch.no_grad():
        scores = head(torch.from_numpy(x_test).cuda()).cpu().numpy()
    assert np.mean(head.classes[scores.argmax(1)] == step.predict(x_test)) >= 0.99


def test_integer_labels_of_any_width_come_back_exactly_from_the_head_and_the_kept_state(data):
    """uint64 ids of 2^63 and above (hashed ids) stay uint64 through ``to_torch`` and the kept
    state; through float64 two of them would be one class."""
    x, y, x_test = data
    ids = np.array([2**63 + 1, 2**63 + 3, 2**64 - 1, 5, 2**63], dtype=np.uint64)
    labels = ids[np.searchsorted(NAMES, y)]
    clf = ImprintingClassifier(gen="mean").fit(x, labels)
    head = clf.to_torch()
    assert head.classes.dtype == np.uint64
    assert head.classes.tolist() == sorted(ids.tolist())
    np.testing.assert_array_equal(head.predict(torch.tensor(x_test)), clf.predict(x_test))
    again = ImprintingClassifier.from_kept_state(clf.kept_state())
    assert again.classes_.dtype == np.uint64
    np.testing.assert_array_equal(again.predict(x_test), clf.predict(x_test))


def test_partial_fit_refuses_labels_of_another_kind(data):
    x, _, _ = data
    numbered = ImprintingClassifier(gen="mean").fit(x[:48], np.repeat([0, 1], 24))
    with pytest.raises(ValueError, match=r"y holds booleans .* the training labels are numbers"):
        numbered.partial_fit(x[:5], [True] * 5)
