"""ImprintingClassifier: the scikit-learn contract, the named methods and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from imprint import NAMED_METHODS, ImprintingClassifier
from tests.conftest import in_fresh_process, make_task, torch_threads


def test_sklearn_contract(task):
    x, y, x_test, y_test = task
    clf = ImprintingClassifier(gen="kmeans", k=3, seed=4)
    assert clone(clf).get_params() == clf.get_params()
    clf.set_params(k=2)
    assert clf.k == 2
    pipe = make_pipeline(StandardScaler(), ImprintingClassifier(**NAMED_METHODS["qi"])).fit(x, y)
    assert pipe.score(x_test, y_test) > 0.5
    assert clf.fit(x, y).score(x_test, y_test) == np.mean(clf.predict(x_test) == y_test)


@pytest.mark.parametrize("name", ["qi", "hosoda", "hosoda_quantile", "janson", "ours", "oracle"])
def test_named_methods_learn_a_separable_task(task, name):
    x, y, x_test, y_test = task
    assert ImprintingClassifier(**NAMED_METHODS[name]).fit(x, y).score(x_test, y_test) > 0.6


def test_arbitrary_labels_are_mapped_and_mapped_back(task):
    """(A deterministic GEN: random draws are keyed by the labels, so renaming redraws.)"""
    x, y, x_test, _ = task
    names = np.array(["cat", "dog", "emu", "fox"])
    plain = ImprintingClassifier(gen="kmedoids", k=3).fit(x, y).predict(x_test)
    named = ImprintingClassifier(gen="kmedoids", k=3).fit(x, names[y]).predict(x_test)
    shifted = ImprintingClassifier(gen="kmedoids", k=3).fit(x, y * 10 + 7).predict(x_test)
    np.testing.assert_array_equal(named, names[plain])
    np.testing.assert_array_equal(shifted, plain * 10 + 7)


def test_torch_tensors_are_accepted(task):
    x, y, x_test, _ = task
    from_numpy = ImprintingClassifier(k=2).fit(x, y).predict(x_test)
    from_torch = (
        ImprintingClassifier(k=2)
        .fit(torch.tensor(x), torch.tensor(y))
        .predict(torch.tensor(x_test))
    )
    np.testing.assert_array_equal(from_numpy, from_torch)


def test_k_larger_than_a_class_and_a_one_sample_class():
    x, y = make_task(n_classes=3, per_class=5, seed=3)
    x, y = x[:11], y[:11]  # class 2 has one sample
    clf = ImprintingClassifier(
        norm_pre="none", gen="kmeans", k=8, norm_post="none", norm_inf="none"
    ).fit(x, y)
    weights = clf.proxies_.weights.numpy()
    assert clf.proxies_.labels.tolist() == [0] * 5 + [1] * 5 + [2]
    np.testing.assert_array_equal(weights, x)
    assert clf.predict(x[10:11]).tolist() == [2]


def test_same_seed_same_proxies_and_predictions(task):
    x, y, x_test, _ = task
    first = ImprintingClassifier(gen="kmedoids", k=4, seed=9).fit(x, y)
    second = ImprintingClassifier(gen="kmedoids", k=4, seed=9).fit(x, y)
    assert torch.equal(first.proxies_.weights, second.proxies_.weights)
    np.testing.assert_array_equal(first.predict(x_test), second.predict(x_test))


@pytest.mark.parametrize("gen", ["kmeans", "kmedoids", "linear_probe"])
def test_rows_that_require_grad_fit_and_predict_as_their_values(task, gen):
    """Embeddings straight from a model (tensors that require grad) are taken by value: the
    same proxies and predictions as the detached rows."""
    x, y, x_test, _ = task
    rows, test = torch.tensor(x, requires_grad=True), torch.tensor(x_test, requires_grad=True)
    graph = ImprintingClassifier(gen=gen, k=3).fit(rows, y)
    values = ImprintingClassifier(gen=gen, k=3).fit(x, y)
    np.testing.assert_array_equal(graph.predict(test), values.predict(x_test))
    np.testing.assert_array_equal(graph.decision_function(test), values.decision_function(x_test))


def test_results_do_not_depend_on_the_number_of_threads(task):
    x, y, x_test, _ = task
    outputs = []
    for n in (1, 2):
        with torch_threads(n):
            clf = ImprintingClassifier(gen="kmeans", k=5, seed=1).fit(x, y)
            outputs.append((clf.proxies_.weights, clf.predict(x_test)))
    assert torch.equal(outputs[0][0], outputs[1][0])
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])


_THREADS_AFTER = """
import os, torch
from imprint import ImprintingClassifier
from tests.conftest import make_task
x, y = make_task(seed=1)
for n in (1, (os.cpu_count() or 1) + 1):
    torch.set_num_threads(n)
    for distance in ("manhattan", "euclidean"):
        ImprintingClassifier(gen="kmeans", k=5, agg="mnn", distance=distance).fit(x, y).predict(x)
        print(n, torch.get_num_threads())
"""


def test_a_fit_leaves_pytorch_on_the_threads_it_was_given():
    """numba's kernels (k-means' nearest centres, the searches) run on PyTorch's threads and
    leave PyTorch on them, fewer than the cores or more, in a fresh process as a sweep job's:
    numba's OpenMP threading layer shares PyTorch's OpenMP runtime, whose thread count it sets
    (a one-thread job ran on every core after its first kernel)."""
    pairs = [line.split() for line in in_fresh_process(_THREADS_AFTER).splitlines()]
    assert len(pairs) == 4 and all(given == kept for given, kept in pairs)


@pytest.mark.parametrize(
    ("params", "fit_input", "message"),
    [
        ({}, "nan", "NaN or infinite"),
        ({}, "inf", "NaN or infinite"),
        ({}, "one_class", "at least 2 classes"),
        ({"gen": "kmeanz"}, None, r"gen='kmeanz' is not valid; choose one of \['all', 'mean'"),
        ({"norm_post": "max"}, None, "norm_post='max' is not valid"),
        ({"distance": "hamming"}, None, "distance='hamming' is not valid"),
        ({"agg": "mnn", "distance": "euclidean", "m": 0}, None, "m=0 is not valid for agg='mnn'"),
        (
            {"agg": "mnn", "distance": "inner_product"},
            None,
            "distance='inner_product' is not valid for agg='mnn'",
        ),
        ({"k": 0}, None, "k=0 is not valid"),
        ({"k": 2.5}, None, "k=2.5 is not valid"),
        ({"fewshot": 0}, None, "fewshot=0 is not valid"),
        ({"lambda_reg": -1}, None, "lambda_reg=-1.0 is not valid"),
        ({"gen": "ls", "lambda_reg": 0}, None, r"lambda_reg=0.0 is not valid; .* > 0"),
        ({"k": float("nan")}, None, "k=nan is not valid; it must be an integer"),
        ({"seed": 2.0**60}, None, r"seed=1.15\d+e\+18 is not valid; it must be an integer"),
        ({"weibull": (0.9, 0.1)}, None, "weibull=.* is not valid"),
        ({}, "labels_length", "one label per row"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(task, params, fit_input, message):
    x, y, _, _ = task
    x = x.copy()
    if fit_input == "nan":
        x[3, 1] = np.nan
    elif fit_input == "inf":
        x[0, 0] = np.inf
    elif fit_input == "one_class":
        y = np.zeros_like(y)
    elif fit_input == "labels_length":
        y = y[:-1]
    with pytest.raises(ValueError, match=message):
        ImprintingClassifier(**params).fit(x, y)


def test_test_dimension_mismatch_is_rejected(task):
    x, y, x_test, _ = task
    clf = ImprintingClassifier(k=2).fit(x, y)
    with pytest.raises(
        ValueError, match="X has 5 features, but ImprintingClassifier is expecting 8"
    ):
        clf.predict(x_test[:, :5])
    with pytest.raises(ValueError, match="NaN or infinite"):
        clf.predict(np.full_like(x_test, np.nan))


def test_integers_beyond_float_precision_stay_exact(task):
    x, y, _, _ = task
    seed = 2**60 + 1  # a Python int is taken as it is, not through a float
    clf = ImprintingClassifier(gen="random", k=2, seed=seed).fit(x, y)
    assert clf.params_["seed"] == seed


def test_unknown_parameter_in_set_params_is_rejected():
    with pytest.raises(ValueError):
        ImprintingClassifier().set_params(gem="mean")


@pytest.mark.parametrize(
    "params",
    [
        {"gen": "kmeans", "k": 3},
        {"gen": "mean", "norm_post": "quantile", "agg": "mnn", "distance": "chebyshev", "m": 1},
        {"gen": "kmeans", "k": 4, "agg": "mnn", "distance": "euclidean", "m": 4},
        {"gen": "all", "agg": "mnn", "distance": "manhattan", "m": 6,
         "weighting": "weighted_by_distance"},
        {"gen": "random", "k": 2, "agg": "max", "distance": "cosine"},
        {"gen": "all", "norm_pre": "none", "norm_inf": "none", "agg": "mnn",
         "distance": "mahalanobis", "m": 2},
        *({**NAMED_METHODS[name]} for name in ("linear_probe", "knn", "cache")),
    ],
)  # fmt: skip
def test_decision_function_first_maximum_is_the_prediction(task, params):
    x, y, x_test, _ = task
    x_test = np.round(x_test, 1)  # coarse values: exact ties between votes and distances
    clf = ImprintingClassifier(**params).fit(x, y)
    scores = clf.decision_function(x_test)
    assert scores.shape == (len(x_test), 4)
    np.testing.assert_array_equal(clf.classes_[scores.argmax(1)], clf.predict(x_test))


def test_decision_function_under_max_is_each_class_best_proxy_score(task):
    x, y, x_test, _ = task
    clf = ImprintingClassifier(gen="kmeans", k=3).fit(x, y)
    proxies, labels = clf.proxies_.weights.numpy(), clf.proxies_.labels.numpy()
    unit = x_test / np.linalg.norm(x_test, axis=1, keepdims=True)
    expected = np.stack([(unit @ proxies[labels == c].T).max(1) for c in range(4)], axis=1)
    np.testing.assert_allclose(clf.decision_function(x_test), expected, rtol=1e-5, atol=1e-6)


def test_vote_ties_go_to_the_class_of_the_nearest_proxy():
    from imprint.method.aggregation import vote_scores

    dists = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]])
    labels = torch.tensor([[2, 0, 0, 2], [1, 1, 0, 0]])  # 2:2 ties, nearest proxy of class 2 / 1
    scores = vote_scores(dists, labels, 3, "uniform")
    assert scores.argmax(1).tolist() == [2, 1]
    step = torch.nextafter(torch.tensor(2.0), torch.tensor(3.0)) - 2
    assert scores[0, 0] == 2 and 0 < scores[0, 2] - 2 <= 2 * step


def test_parameters_take_effect_at_fit_and_an_unfitted_classifier_says_so():
    """``set_params`` on a fitted classifier, then ``predict``: refused (it would predict with
    the old parameters while ``get_params`` reports the new); before ``fit``: NotFittedError."""
    x, y = make_task(n_classes=3, per_class=10, dim=4, seed=2)
    with pytest.raises(NotFittedError):
        ImprintingClassifier().predict(x)
    clf = ImprintingClassifier(gen="kmeans", k=2).fit(x, y)
    clf.set_params(gen="mean", norm_inf="none")
    for method in (clf.predict, clf.decision_function):
        with pytest.raises(ValueError, match=r"\['gen', 'norm_inf'\] changed since .* fit again"):
            method(x)
    assert clf.fit(x, y).score(x, y) == ImprintingClassifier(gen="mean", norm_inf="none").fit(
        x, y
    ).score(x, y)


def test_labels_that_cannot_be_ordered_and_values_beyond_float32_are_named():
    x, _ = make_task(n_classes=2, per_class=3, dim=4, seed=2)
    with pytest.raises(ValueError, match=r"y mixes labels of types \['int', 'str'\]"):
        ImprintingClassifier().fit(x, np.array([1, "a", 1, "a", 1, "a"], dtype=object))
    huge = x.astype(np.float64)
    huge[0, 0] = 1e39
    with pytest.raises(ValueError, match=r"X holds values beyond torch.float32's range .*1e\+39"):
        ImprintingClassifier().fit(huge, np.repeat([0, 1], 3))
