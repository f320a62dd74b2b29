"""sweep(): every row equals the classifier on the same parameters; F1 and timings are right."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from imprint import ImprintingClassifier, expand_grid, sweep
from imprint.method.engine import TIMING_COLUMNS, f1_per_class
from imprint.method.generators import GEN
from imprint.method.params import BASELINES, RUN_COLUMNS

GRID = {
    "norm_pre": ["none", "l2"],
    "gen": list(GEN),
    "k": [1, 3, -1],
    "norm_post": ["none", "l2", "quantile", "quantile_sequential"],
    "norm_inf": ["none", "l2"],
    "agg": ["max", "mnn"],
    "distance": ["inner_product", "cosine", "euclidean", "manhattan", "chebyshev", "mahalanobis"],
    "weighting": ["uniform", "weighted_by_distance"],
    "m": [1, 4, 25],
    "fewshot": [-1, 6],
    "lambda_reg": [1e-3],
    "seed": [3, 8],
}


def _classifier_accuracy(row, x, y, x_test, y_test) -> float:
    params = {c: row[c] for c in RUN_COLUMNS}
    return ImprintingClassifier(**params).fit(x, y).score(x_test, y_test) * 100


def test_every_row_equals_the_classifier_on_a_random_sample_of_the_grid(task):
    x, y, x_test, y_test = task
    grid = expand_grid(GRID)
    runs = grid.sample(n=150, random_state=0).reset_index(drop=True)
    result = sweep(x, y, x_test, y_test, runs)
    assert list(result.columns[: len(runs.columns)]) == list(runs.columns)
    for _, row in result.iterrows():
        assert row["accuracy"] == _classifier_accuracy(row, x, y, x_test, y_test), dict(row)


def test_max_with_a_distance_shares_the_mnn_search_and_still_equals_the_classifier(task):
    """Under the paper's rules ``max`` keeps its distance (1-NN); the sweep scores it from the
    same neighbour search as the m-NN runs of that distance."""
    x, y, x_test, y_test = task
    grid = {"gen": ["kmeans", "all"], "k": [3, -1], "agg": ["max", "mnn"], "m": [-1, 1, 4]}
    grid |= {"distance": ["inner_product", "euclidean", "chebyshev"], "seed": [3]}
    runs = expand_grid(grid, rules="paper")
    assert ((runs["agg"] == "max") & (runs["distance"] != "inner_product")).any()
    result = sweep(x, y, x_test, y_test, runs)
    for _, row in result.iterrows():
        assert row["accuracy"] == _classifier_accuracy(row, x, y, x_test, y_test), dict(row)


def test_weibull_presampling_runs_in_a_sweep(task):
    x, y, x_test, y_test = task
    runs = expand_grid(
        {"gen": ["kmeans", "mean"], "k": [2], "weibull": [(0.05, 0.95)], "seed": [1]}
    )
    result = sweep(x, y, x_test, y_test, runs)
    for _, row in result.iterrows():
        clf = ImprintingClassifier(**{c: row[c] for c in (*RUN_COLUMNS, "weibull")})
        assert row["accuracy"] == clf.fit(x, y).score(x_test, y_test) * 100


def test_deterministic_gens_are_timed_once_and_say_which_seed_they_measured(task):
    """One proxy set serves all seeds of a deterministic GEN, timed once: every row names the
    seed whose run its time measured, the first; a random GEN is timed under each seed."""
    x, y, x_test, y_test = task
    runs = expand_grid({"gen": ["mean", "ls", "kmedoids", "random"], "k": [3], "seed": [4, 2, 3]})
    result = sweep(x, y, x_test, y_test, runs)
    for gen, per_gen in result.groupby("gen"):
        if gen == "random":
            assert per_gen["gen_time_seed"].tolist() == per_gen["seed"].tolist()
            continue
        assert per_gen["accuracy"].nunique() == 1
        assert per_gen["gen_time_s"].nunique() == 1
        assert set(per_gen["gen_time_seed"]) == {2}


def test_deterministic_gens_are_timed_for_every_seed_when_asked(task):
    """With ``time_every_seed`` (the GEN-time figure's experiments, as PAPER.md §D.8 timed every
    run) each seed's GEN is run again for its own time."""
    x, y, x_test, y_test = task
    runs = expand_grid({"gen": ["mean", "ls", "kmedoids"], "k": [3], "seed": [1, 2, 3, 4]})
    result = sweep(x, y, x_test, y_test, runs, time_every_seed=True)
    for _, per_gen in result.groupby("gen"):
        assert per_gen["accuracy"].nunique() == 1
        assert per_gen["gen_time_s"].nunique() == len(per_gen) > 1
        assert per_gen["gen_time_seed"].tolist() == per_gen["seed"].tolist()


def test_sweep_is_deterministic_and_reports_f1_and_times(task):
    x, y, x_test, y_test = task
    runs = expand_grid({"gen": ["kmeans", "random"], "k": [2, 5], "seed": [1, 2]})
    first = sweep(x, y, x_test, y_test, runs)
    second = sweep(x, y, x_test, y_test, runs)
    pd.testing.assert_series_equal(first["accuracy"], second["accuracy"])
    assert (first["gen_time_s"] > 0).all()
    assert (first["time_s"] >= first["gen_time_s"]).all()
    for _, row in first.iterrows():
        params = {c: row[c] for c in RUN_COLUMNS}
        prediction = ImprintingClassifier(**params).fit(x, y).predict(x_test)
        expected = f1_score(y_test, prediction, average=None, labels=[0, 1, 2, 3])
        np.testing.assert_allclose(row["f1_per_class"], expected)


_SWEEP_IN_A_PROCESS = """
import sys
import numpy as np, pandas as pd
from imprint import sweep
task = np.load(sys.argv[1])
runs = pd.read_parquet(sys.argv[2])
sweep(task["x"], task["y"], task["x_test"], task["y_test"], runs).to_parquet(sys.argv[3])
"""


def test_a_sweep_in_a_fresh_process_gives_the_same_table(task, tmp_path):
    """What rerunning a killed or stale sweep job relies on: rows covering every value of every
    column (each GEN and baseline, NORM, AGG, distance, weighting, m, few-shot draw and seed),
    swept in two fresh processes, are the same but for their timings."""
    x, y, x_test, y_test = task
    grid = expand_grid({**GRID, "gen": [*GEN, *BASELINES]})
    rng = np.random.default_rng(0)
    picked = {
        int(rng.choice(np.flatnonzero(grid[column] == value)))
        for column in GRID
        for value in grid[column].unique()
    }
    runs = grid.iloc[sorted(picked)].reset_index(drop=True)
    assert set(runs["gen"]) == {*GEN, *BASELINES} and set(runs["distance"]) == set(GRID["distance"])
    np.savez(tmp_path / "task.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    runs.to_parquet(tmp_path / "runs.parquet")
    tables = []
    for name in ("first", "second"):
        command = [sys.executable, "-c", _SWEEP_IN_A_PROCESS, str(tmp_path / "task.npz"),
                   str(tmp_path / "runs.parquet"), str(tmp_path / f"{name}.parquet")]  # fmt: skip
        assert subprocess.run(command, check=False).returncode == 0
        tables.append(
            pd.read_parquet(tmp_path / f"{name}.parquet").drop(columns=list(TIMING_COLUMNS))
        )
    pd.testing.assert_frame_equal(*tables, check_exact=True)


def test_f1_per_class_matches_sklearn_with_absent_classes():
    truth = np.array([0, 0, 1, 1, 2, 2])  # class 3 only predicted
    prediction = np.array([0, 1, 1, 1, 0, 3])
    expected = f1_score(truth, prediction, labels=[0, 1, 2, 3], average=None, zero_division=0)
    np.testing.assert_allclose(f1_per_class(truth, prediction, 4), expected)


def test_sweep_rejects_missing_columns_and_bad_values(task):
    x, y, x_test, y_test = task
    runs = expand_grid({"gen": ["mean"]})
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['seed'\]"):
        sweep(x, y, x_test, y_test, runs.drop(columns="seed"))
    with pytest.raises(ValueError, match="gen='means' is not valid"):
        sweep(x, y, x_test, y_test, runs.assign(gen="means"))
    with pytest.raises(ValueError, match="X_test has 3 features"):
        sweep(x, y, x_test[:, :3], y_test, runs)
    with_nan = pd.concat([runs, runs.assign(gen="kmeans", k=np.nan)], ignore_index=True)
    with pytest.raises(ValueError, match="k=nan is not valid; it must be an integer"):
        sweep(x, y, x_test, y_test, with_nan)
    with pytest.raises(ValueError, match=r"lambda_reg=0.0 is not valid; .* > 0"):
        sweep(x, y, x_test, y_test, runs.assign(gen="ls", lambda_reg=0.0))
    with pytest.raises(ValueError, match=r"seed=1.+e\+18 is not valid; it must be an integer"):
        sweep(x, y, x_test, y_test, runs.assign(seed=2.0**60))


def _bad_labels(y, y_test, case):
    if case == "text_vs_numbers":
        return y, y_test.astype(str)
    if case == "unseen_test_class":
        return y, np.where(y_test == 3, 99, y_test)
    if case == "nan_in_test":
        return y, np.where(np.arange(len(y_test)) == 4, np.nan, y_test.astype(float))
    return np.where(np.arange(len(y)) == 2, np.nan, y.astype(float)), y_test  # nan_in_training


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("text_vs_numbers", r"y_test holds text \(<U\d+\) but the training labels are numbers"),
        ("unseen_test_class", r"1 label\(s\) never seen in training, e\.g\. \[99\]"),
        ("nan_in_test", r"y_test has 1 missing \(NaN or None\) label\(s\), the first at row 4"),
        ("nan_in_training", r"y has 1 missing \(NaN or None\) label\(s\), the first at row 2"),
    ],
)
def test_sweep_and_classifier_reject_the_same_labels_with_the_same_message(task, case, message):
    x, y, x_test, y_test = task
    y, y_test = _bad_labels(y, y_test, case)
    runs = expand_grid({"gen": ["mean"], "norm_pre": ["l2"], "norm_inf": ["l2"]})
    with pytest.raises(ValueError, match=message) as from_sweep:
        sweep(x, y, x_test, y_test, runs)
    with pytest.raises(ValueError, match=message) as from_classifier:
        ImprintingClassifier(gen="mean").fit(x, y).score(x_test, y_test)
    assert str(from_sweep.value) == str(from_classifier.value)


@pytest.mark.cuda
def test_gpu_sweep_agrees_with_cpu(task):
    x, y, x_test, y_test = task
    runs = expand_grid(
        {
            "gen": ["mean", "kmeans", "ls"],
            "k": [1, 3],
            "agg": ["max", "mnn"],
            "distance": ["inner_product", "euclidean"],
            "m": [1, 3],
        }
    )
    cpu = sweep(x, y, x_test, y_test, runs)
    gpu = sweep(x, y, x_test, y_test, runs, device="cuda")
    assert (np.abs(cpu["accuracy"] - gpu["accuracy"]) <= 100 / len(y_test) * 2).all()


def test_ncc_agreement_and_self_duality_match_a_direct_computation(task):
    """NC4: the share of test rows predicted as the nearest class centre (Euclidean, training
    means after NORMpre) predicts them; NC3: ‖W̃/‖W̃‖ − M̃/‖M̃‖‖², from the classifier's proxies."""
    x, y, x_test, y_test = task
    runs = expand_grid(
        {"gen": ["mean", "kmeans", "random"], "k": [1, 3], "norm_pre": ["none", "l2"],
         "norm_inf": ["l2"], "norm_post": ["none", "l2"], "agg": ["max", "mnn"],
         "distance": ["inner_product", "euclidean"], "m": [3]}
    )  # fmt: skip
    result = sweep(x, y, x_test, y_test, runs)
    for _, row in result.sample(12, random_state=0).iterrows():
        params = {c: row[c] for c in RUN_COLUMNS}
        clf = ImprintingClassifier(**params).fit(x, y)
        train, test = x.astype(np.float64), x_test.astype(np.float64)
        if row.norm_pre == "l2":
            train = train / np.linalg.norm(train, axis=1, keepdims=True)
            test = test / np.linalg.norm(test, axis=1, keepdims=True)
        means = np.stack([train[y == c].mean(0) for c in clf.classes_])
        ncc = clf.classes_[((test[:, None] - means[None]) ** 2).sum(-1).argmin(1)]
        assert row["ncc_agreement"] == pytest.approx(np.mean(clf.predict(x_test) == ncc))
        weights = clf.proxies_.weights.double().numpy()
        labels = clf.proxies_.labels.numpy()
        w = np.stack([weights[labels == c].mean(0) for c in range(len(clf.classes_))])
        w_tilde = w - w.mean(0)
        m_tilde = means - train.mean(0)
        expected = np.sum(
            (w_tilde / np.linalg.norm(w_tilde) - m_tilde / np.linalg.norm(m_tilde)) ** 2
        )
        assert row["self_duality"] == pytest.approx(expected, rel=1e-4, abs=1e-9)
