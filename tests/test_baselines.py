"""The baselines (linear probe, k-NN, cache) against direct NumPy computations and
scikit-learn, and in the sweep beside imprinting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from imprint import NAMED_METHODS, ImprintingClassifier, expand_grid, sweep
from imprint.method.baselines import (
    cache_scores,
    fit_linear_probe,
    fit_logistic,
    holdout_split,
    knn_scores,
    select_cache_beta,
)
from imprint.method.pipeline import prepare_classes
from tests.conftest import make_task


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _numpy_knn(train, labels, test, n_classes, k, temperature):
    """DINO's rule, one test row at a time."""
    scores = np.zeros((len(test), n_classes))
    similarity = _unit(test) @ _unit(train).T
    for i, row in enumerate(similarity):
        for j in np.argsort(-row, kind="stable")[:k]:
            scores[i, labels[j]] += np.exp(row[j] / temperature)
    return scores


@pytest.mark.parametrize(("k", "temperature"), [(20, 0.07), (5, 0.5), (1000, 0.07)])
def test_knn_is_the_direct_rule(k, temperature):
    rng = np.random.default_rng(k)
    train, test = rng.normal(size=(300, 16)), rng.normal(size=(90, 16))
    labels = rng.integers(0, 6, 300)
    ours = knn_scores(
        torch.tensor(train), torch.tensor(labels), torch.tensor(test), 6, k, temperature
    ).numpy()
    expected = _numpy_knn(train, labels, test, 6, k, temperature)
    np.testing.assert_allclose(ours, expected, rtol=1e-9)
    assert (ours.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize("beta", [1.0, 5.5])
def test_cache_is_the_direct_sum_of_affinities(beta):
    rng = np.random.default_rng(3)
    train, test = rng.normal(size=(200, 12)), rng.normal(size=(50, 12))
    labels = rng.integers(0, 4, 200)
    ours = cache_scores(torch.tensor(train), torch.tensor(labels), torch.tensor(test), 4, beta)
    expected = np.zeros((50, 4))
    for i, row in enumerate(_unit(test)):
        for j, other in enumerate(_unit(train)):
            expected[i, labels[j]] += np.exp(-beta * (1 - row @ other))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize("noise", [0.2, 3.0])  # separable, and classes that overlap
@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
def test_logistic_regression_agrees_with_scikit_learn(noise, C):
    rng = np.random.default_rng(int(noise * 10))
    centres = rng.normal(size=(5, 10)) * 2
    labels = rng.integers(0, 5, 600)
    x = (centres[labels] + noise * rng.normal(size=(600, 10))).astype(np.float32)
    train, test = slice(0, 400), slice(400, None)
    weight, bias = fit_logistic(torch.tensor(x[train]), torch.tensor(labels[train]), 5, C)
    ours = (torch.tensor(x[test]).double() @ weight.T + bias).argmax(1).numpy() == labels[test]
    reference = LogisticRegression(C=C, max_iter=1000).fit(x[train], labels[train])
    assert abs(ours.mean() - reference.score(x[test], labels[test])) * 100 <= 0.5

    def objective(w: np.ndarray, b: np.ndarray) -> float:  # scikit-learn's, on the training rows
        z = x[train].astype(np.float64) @ w.T + b
        z -= z.max(1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -C * log_p[np.arange(400), labels[train]].sum() + 0.5 * (w**2).sum()

    reached = objective(weight.numpy(), bias.numpy())
    assert reached <= objective(reference.coef_, reference.intercept_) * 1.001 + 1e-6


def test_holdout_split_keeps_a_seeded_fifth_of_every_class():
    labels = torch.tensor(np.repeat(np.arange(3), [10, 5, 2]))
    kept, held = holdout_split(labels, 3, seed=4)
    assert sorted(torch.cat([kept, held]).tolist()) == list(range(17))
    assert np.bincount(labels[held].numpy(), minlength=3).tolist() == [2, 1, 1]
    again = holdout_split(labels, 3, seed=4)
    assert torch.equal(held, again[1]) and not torch.equal(held, holdout_split(labels, 3, 5)[1])
    assert holdout_split(torch.tensor([0, 0, 1]), 2, seed=0) is None  # one row of class 1


def test_the_probe_and_the_cache_choose_by_held_out_accuracy():
    x, y = make_task(n_classes=4, per_class=40, dim=8, seed=5)
    x, y = torch.tensor(x), torch.tensor(y)
    kept, held = holdout_split(y, 4, seed=2)
    grid = (0.01, 1.0, 100.0)
    accuracy = {}
    for C in grid:
        reference = LogisticRegression(C=C, max_iter=1000).fit(x[kept], y[kept])
        accuracy[C] = reference.score(x[held], y[held])
    _, _, chosen = fit_linear_probe(x, y, 4, seed=2, grid=grid)
    assert accuracy[chosen] >= max(accuracy.values()) - 1 / len(held)
    betas = (0.5, 4.0, 32.0)
    hits = {
        b: float(
            (cache_scores(x[kept], y[kept], x[held], 4, b).argmax(1) == y[held]).double().mean()
        )
        for b in betas
    }
    assert select_cache_beta(x, y, 4, seed=2, grid=betas) == max(betas, key=lambda b: (hits[b], -b))


def test_baselines_in_a_sweep_equal_the_classifier_and_see_the_few_shot_rows(task):
    x, y, x_test, y_test = task
    names = ["linear_probe", "knn", "cache"]
    runs = expand_grid({"gen": names, "fewshot": [3, -1], "seed": [1, 2]})
    assert len(runs) == 3 * 2 * 2 and set(runs["norm_post"]) == {"none"}
    result = sweep(x, y, x_test, y_test, runs)
    assert result["self_duality"].isna().all() and (result["gen_time_s"] > 0).all()
    for _, row in result.iterrows():
        params = {c: row[c] for c in runs.columns}
        clf = ImprintingClassifier(**params).fit(x, y)
        assert row["accuracy"] == pytest.approx(clf.score(x_test, y_test) * 100)
    # A few-shot k-NN over every row votes with exactly the rows imprinting's GEN all keeps.
    row = expand_grid({"gen": ["knn"], "k": [-1], "fewshot": [3], "seed": [7]})
    knn = sweep(x, y, x_test, y_test, row)["accuracy"].iloc[0]
    batch = prepare_classes(torch.tensor(x), torch.tensor(y), 4, "l2", 3, None, 7)
    rows, index = batch.flat()
    scores = _numpy_knn(rows.numpy(), index.numpy(), x_test, 4, len(rows), 0.07)
    assert knn == pytest.approx(np.mean(scores.argmax(1) == y_test) * 100)


def test_named_baselines_and_their_grid_rules():
    assert NAMED_METHODS["knn"]["k"] == 20 and NAMED_METHODS["linear_probe"]["norm_pre"] == "none"
    runs = expand_grid(
        {"gen": ["knn", "cache", "linear_probe"], "k": [5, 20], "norm_pre": ["none", "l2"],
         "norm_inf": ["none", "l2"], "norm_post": ["l2", "quantile"], "agg": ["max", "mnn"],
         "distance": ["cosine"], "m": [3]}
    )  # fmt: skip
    found = sorted(map(tuple, runs[["gen", "k", "norm_pre", "norm_inf"]].values.tolist()))
    assert found == [
        ("cache", -1, "l2", "l2"), ("knn", 5, "l2", "l2"), ("knn", 20, "l2", "l2"),
        ("linear_probe", -1, "l2", "l2"), ("linear_probe", -1, "none", "none"),
    ]  # fmt: skip


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_baselines_on_the_gpu_agree_with_the_cpu(task):
    x, y, x_test, y_test = task
    runs = expand_grid({"gen": ["linear_probe", "knn", "cache"], "fewshot": [5, -1], "seed": [3]})
    cpu = sweep(x, y, x_test, y_test, runs)
    gpu = sweep(x, y, x_test, y_test, runs, device="cuda")
    assert (np.abs(cpu["accuracy"] - gpu["accuracy"]) <= 100 / len(y_test) * 2).all()
