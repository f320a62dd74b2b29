"""Class-incremental runs (``imprint.study.continual``): steps, the field's metrics, and NCM's
zero gap to its joint fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestCentroid

from imprint.analysis.continual import (
    continual_markdown,
    continual_table,
    continual_voters,
    forgetting,
    summarize,
)
from imprint.method import cil_methods
from imprint.method.baselines import FineTunedProbe
from imprint.method.classifier import ImprintingClassifier
from imprint.study.config import continual_ranked
from imprint.study.continual import incremental_runs
from imprint.study.continual_spec import check_continual, class_groups, class_order
from imprint.study.methods import NAMED_METHODS
from tests.conftest import make_task

NCM = {
    "gen": "mean", "norm_pre": "none", "norm_post": "none", "norm_inf": "none",
    "agg": "max", "distance": "euclidean",
}  # fmt: skip


def test_groups_are_the_base_then_increments():
    order = np.array([3, 1, 4, 0, 2, 5])
    assert [g.tolist() for g in class_groups(order, 2, 2)] == [[3, 1], [4, 0], [2, 5]]
    assert [g.tolist() for g in class_groups(order, 4, 3)] == [[3, 1, 4, 0], [2, 5]]
    assert [g.tolist() for g in class_groups(order, 6, 1)] == [[3, 1, 4, 0, 2, 5]]
    with pytest.raises(ValueError, match="increment=0 is not valid"):
        class_groups(order, 2, 0)
    with pytest.raises(ValueError, match="base=7 is not valid: the task has 6 classes"):
        class_groups(order, 7, 1)


def test_orders_are_seeded_permutations():
    assert class_order(range(10), 0).tolist() == [4, 6, 2, 7, 3, 5, 9, 0, 8, 1]
    assert sorted(class_order(range(10), 1).tolist()) == list(range(10))
    assert class_order(range(10), 1).tolist() != class_order(range(10), 0).tolist()


def test_forgetting_is_each_earlier_groups_best_minus_its_last():
    # group 0: best 90 before the last step, 60 at it; group 1: 70, then 65; the last group none
    assert forgetting([[90.0], [80.0, 70.0], [60.0, 65.0, 50.0]]) == pytest.approx(17.5)
    assert forgetting([[90.0]]) == 0.0


def test_summaries_per_method():
    runs = pd.DataFrame(
        {
            "method": ["a", "a", "b", "b"],
            "step": [1, 0, 0, 1],
            "accuracy": [60.0, 90.0, 80.0, 70.0],
            "group_accuracy": [[50.0, 70.0], [90.0], [80.0], [75.0, 65.0]],
            "gap_to_joint": [2.0, 0.0, 0.0, 1.0],
        }
    )
    summary = summarize(runs, ["method"]).set_index("method")
    assert summary.loc["a"].tolist() == [75.0, 60.0, 40.0, 1.0]
    assert summary.loc["b"].tolist() == [75.0, 70.0, 5.0, 0.5]


def test_the_markdown_table_shows_a_spread_only_over_two_groups_or_more():
    runs = pd.DataFrame(
        {
            "method": ["a", "a", "b", "b", "b", "b"],
            "dataset": "d",
            "fm": "f",
            "order": [0, 0, 0, 0, 1, 1],
            "step": [0, 1, 0, 1, 0, 1],
            "accuracy": [90.0, 60.0, 80.0, 70.0, 84.0, 74.0],
            "group_accuracy": [[90.0], [50.0, 70.0], [80.0], [75.0, 65.0], [84.0], [80.0, 68.0]],
            "gap_to_joint": [0.0, 2.0, 0.0, 1.0, 0.0, 3.0],
        }
    )
    lines = continual_markdown(continual_table(runs)).splitlines()
    assert lines[2] == "| a | 75.00 | 60.00 | 40.00 | 1.00 |"  # one order: no spread
    assert lines[3] == "| b | 77.00 ± 2.83 | 72.00 ± 2.83 | 4.50 ± 0.71 | 1.00 ± 0.71 |"


def test_ncm_in_steps_is_its_joint_fit_and_the_nearest_centroid():
    x, y = make_task(n_classes=6, per_class=30, dim=8, seed=4)
    x_test, y_test = make_task(n_classes=6, per_class=20, dim=8, seed=4, sample_seed=8)
    groups = class_groups(class_order(range(6), 3), 2, 2)
    runs = incremental_runs((x, y), (x_test, y_test), NCM, groups)
    assert runs["step"].tolist() == [0, 1, 2] and runs["classes_seen"].tolist() == [2, 4, 6]
    assert (runs["gap_to_joint"] == 0).all()
    centroid = NearestCentroid().fit(x, y)
    assert runs["accuracy"].iloc[-1] == pytest.approx(centroid.score(x_test, y_test) * 100)
    first = np.isin(y_test, groups[0])
    expected = NearestCentroid().fit(x[np.isin(y, groups[0])], y[np.isin(y, groups[0])])
    assert runs["accuracy"].iloc[0] == pytest.approx(
        expected.score(x_test[first], y_test[first]) * 100
    )
    last = runs.iloc[-1]
    assert last["group_accuracy"][-1] == pytest.approx(last["accuracy_new"])
    assert runs["kept_bytes"].is_monotonic_increasing  # a mean per class, no rows


def test_few_shot_steps_feed_n_rows_per_class():
    x, y = make_task(n_classes=4, per_class=30, dim=8, seed=4)
    test = make_task(n_classes=4, per_class=10, dim=8, seed=4, sample_seed=8)
    groups = class_groups(np.arange(4), 2, 1)
    all_rows = incremental_runs((x, y), test, NCM, groups, learning="rows")
    few = incremental_runs((x, y), test, NCM, groups, shots=2, learning="rows")
    assert few["kept_bytes"].iloc[0] == all_rows["kept_bytes"].iloc[0]  # the base step: all rows
    grown = all_rows["kept_bytes"].diff().iloc[1:]
    assert (few["kept_bytes"].diff().iloc[1:] < grown).all()
    assert (few["gap_to_joint"] == 0).all()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"increment": 0}, r"continual\.b2 \(demo_cnn on digits\): increment=0 is not valid"),
        ({"base": 11}, r"base=11 is not valid: the task has 10 classes"),
        ({"methods": ["ncm", "nearest"]}, r"continual\.b2\.methods: no method named 'nearest'"),
        ({"methods": ["knn"]}, r"knn cannot learn classes exemplar-free"),
        ({"shots": 0}, r"continual\.b2\.shots=0 is not valid"),
        (
            {"methods": ["fecam", "ranpac", "ridge"]},
            r"no method named 'ridge'; choose from .*'fecam'",
        ),
    ],
)
def test_bad_studies_are_refused_with_the_key(change, message):
    study = {
        "fms": ["demo_cnn"], "datasets": ["digits"], "base": 2, "increment": 2,
        "orders": [0], "methods": ["ncm", "ours"], **change,
    }  # fmt: skip
    with pytest.raises(ValueError, match=message):
        check_continual("b2", study, lambda fm, dataset: 10)


def _objective_gradient(weight, bias, x, labels, n_classes, C):
    """The gradient of scikit-learn's objective C · Σ cross-entropy + ½ ‖W‖² over every class
    (those without rows too), in NumPy, divided by C·N as the probe's stopping test reads it."""
    logits = x @ weight.T + bias
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(x)), labels] -= 1
    return (p.T @ x + weight / C) / len(x), p.sum(0) / len(x)


def test_the_fine_tuned_probe_is_clips_probe_then_the_optimum_on_each_steps_rows_alone():
    x, y = make_task(n_classes=6, per_class=30, dim=8, seed=5)
    x_test, y_test = make_task(n_classes=6, per_class=20, dim=8, seed=5, sample_seed=9)
    probe, base = FineTunedProbe(seed=3), np.isin(y, [4, 1, 2])
    probe.partial_fit(x[base], y[base])
    clip = ImprintingClassifier(**{**NAMED_METHODS["linear_probe"], "seed": 3})
    clip.fit(x[base], y[base])
    np.testing.assert_array_equal(probe.predict(x_test), clip.predict(x_test))
    step = np.isin(y, [0, 5])
    probe.partial_fit(x[step], y[step])
    assert probe.classes_.tolist() == [1, 2, 4, 0, 5]
    labels = np.array([{1: 0, 2: 1, 4: 2, 0: 3, 5: 4}[label] for label in y[step]])
    weight, bias = (t.numpy() for t in probe.kept_state().values())
    gradients = _objective_gradient(weight, bias, x[step].astype(np.float64), labels, 5, probe.C)
    assert max(np.abs(g).max() for g in gradients) <= 1e-4
    old = np.isin(y_test, [4, 1, 2])
    assert (probe.predict(x_test[old]) == y_test[old]).mean() < 0.2  # the old classes forgotten


def test_the_probe_retrained_has_no_gap_and_the_fine_tuned_one_forgets():
    x, y = make_task(n_classes=6, per_class=30, dim=8, seed=4)
    test = make_task(n_classes=6, per_class=20, dim=8, seed=4, sample_seed=8)
    groups = class_groups(class_order(range(6), 3), 2, 2)
    params = NAMED_METHODS["linear_probe"]
    retrained = incremental_runs((x, y), test, params, groups, learning="rows")
    tuned = incremental_runs((x, y), test, params, groups, learning="finetune")
    assert (retrained["gap_to_joint"] == 0).all()
    assert tuned["accuracy"].iloc[0] == retrained["accuracy"].iloc[0]  # the same base probe
    assert (tuned["joint_accuracy"] == retrained["accuracy"]).all()
    assert (tuned["gap_to_joint"].iloc[1:] > 20).all()
    assert forgetting(tuned["group_accuracy"].tolist()) > 50
    assert tuned["kept_bytes"].iloc[-1] < retrained["kept_bytes"].iloc[-1]  # no rows kept


def test_fecam_in_steps_is_its_joint_fit_and_ranpac_runs_as_its_authors_update(monkeypatch):
    monkeypatch.setattr(cil_methods, "RANPAC_DIMENSIONS", 300)  # 10,000 in a study
    x, y = make_task(n_classes=6, per_class=30, dim=8, seed=4)
    test = make_task(n_classes=6, per_class=20, dim=8, seed=4, sample_seed=8)
    groups = class_groups(class_order(range(6), 3), 2, 2)
    fecam = incremental_runs((x, y), test, {}, groups, learning="fecam", seed=3)
    assert (fecam["gap_to_joint"] == 0).all()
    expected = cil_methods.FeCAM().partial_fit(x, y).predict(test[0])
    assert fecam["accuracy"].iloc[-1] == pytest.approx((expected == test[1]).mean() * 100)
    ranpac = incremental_runs((x, y), test, {}, groups, learning="ranpac", seed=3)
    learner = cil_methods.RanPAC(300, seed=3)
    fed = [np.concatenate([np.flatnonzero(y == c) for c in group]) for group in groups]
    for rows in fed:  # class by class, as a step feeds them
        learner.partial_fit(x[rows], y[rows])
    assert ranpac["accuracy"].iloc[-1] == pytest.approx(
        (learner.predict(test[0]) == test[1]).mean() * 100
    )
    every = np.concatenate(fed)
    joint = cil_methods.RanPAC(300, seed=3).partial_fit(x[every], y[every])
    assert ranpac["joint_accuracy"].iloc[-1] == pytest.approx(
        (joint.predict(test[0]) == test[1]).mean() * 100
    )
    # the kept state: FeCAM's grows with the classes, RanPAC's G only with Q's columns
    assert fecam["kept_bytes"].is_monotonic_increasing
    assert ranpac["kept_bytes"].iloc[-1] - ranpac["kept_bytes"].iloc[0] < 300 * 8 * 8 + 4096


def test_the_cd_voters_are_each_groups_average_accuracy_per_method():
    runs = pd.DataFrame(
        {
            "method": ["a", "a", "b", "b", "a", "b"],
            "dataset": ["d"] * 6,
            "fm": ["f"] * 4 + ["g"] * 2,
            "order": [0] * 6,
            "step": [0, 1, 0, 1, 0, 0],
            "accuracy": [90.0, 70.0, 80.0, 76.0, 50.0, 60.0],
            "group_accuracy": [[90.0], [70.0, 70.0], [80.0], [76.0, 76.0], [50.0], [60.0]],
            "gap_to_joint": [0.0] * 6,
        }
    )
    voters = continual_voters(runs)
    assert voters.loc[("d", "f", 0)].tolist() == [80.0, 78.0]
    assert voters.loc[("d", "g", 0)].tolist() == [50.0, 60.0]
    study = {"fms": ["f"], "datasets": ["d"], "orders": [0, 1], "methods": ["a", "b"]}
    assert continual_ranked(study)
    assert not continual_ranked({**study, "methods": ["a"]})
    assert not continual_ranked({**study, "orders": [0]})
