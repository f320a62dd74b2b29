"""Configuration labels: one per distinct configuration of a group, the same across groups."""

from __future__ import annotations

import pandas as pd

from imprint import expand_grid
from imprint.stats import config_labels, median_table


def _runs(grid: dict, rules: str = "spec", **group) -> pd.DataFrame:
    runs = expand_grid({**grid, "seed": [0, 1]}, rules=rules)
    for key, value in {"fm": "a", "dataset": "d", "mapping": "none", "task": "all"}.items():
        runs[key] = group.get(key, value)
    runs["accuracy"] = range(len(runs))
    return runs


def _distinct_per_group(runs: pd.DataFrame) -> None:
    labels = config_labels(runs)
    params = runs.drop(columns=["seed", "accuracy"]).astype(str)
    for _, members in runs.groupby(["fm", "dataset", "mapping", "task"]):
        configs = params.loc[members.index].drop_duplicates()
        assert labels[members.index].nunique() == len(configs)


def test_labels_tell_apart_distance_under_max_lambda_and_weibull():
    runs = pd.concat(
        [
            _runs(
                {"gen": ["mean"], "agg": ["max"], "distance": ["inner_product", "euclidean"]},
                rules="paper",
            ),
            _runs({"gen": ["ls"], "lambda_reg": [0.1, 0.01]}),
            _runs({"gen": ["kmeans"], "k": [2], "weibull": [(0.0, 0.9), (0.1, 1.0)]}),
        ],
        ignore_index=True,
    )
    _distinct_per_group(runs)
    assert len(median_table(runs).columns) == 6


def test_labels_ignore_what_a_run_ignores_and_lambda_per_fm():
    resnet = _runs({"gen": ["ls", "mean"], "lambda_reg": [1e-4]}, fm="resnet18")
    vit = _runs({"gen": ["ls", "mean"], "lambda_reg": [0.1]}, fm="vit_b_16")
    runs = pd.concat([resnet, vit], ignore_index=True)
    medians = median_table(runs)
    assert medians.shape == (2, 2)  # λ is the FM's: the same two configurations in both groups
    assert not medians.isna().any().any()
    paper_max = _runs({"gen": ["mean"], "m": [-1]}, rules="paper")
    spec_max = _runs({"gen": ["mean"]})
    assert set(config_labels(paper_max)) == set(config_labels(spec_max))
