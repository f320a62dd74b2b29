"""The statistics of PAPER.md §C, each recomputed independently on small runs tables: brute-force
rank tables, SciPy called directly, Holm worked by hand and by statsmodels."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import friedmanchisquare, norm, rankdata, wilcoxon
from statsmodels.stats.multitest import multipletests

from imprint import expand_grid
from imprint.analysis.stats import (
    best_per_method,
    cliques,
    config_labels,
    critical_difference,
    holm,
    rank_pool,
    seed_medians,
    view_medians,
    view_methods,
    voter_table,
    wilcoxon_p,
    wilcoxon_pairs,
)
from imprint.analysis.tables import paper_comparison, table1, table1_markdown
from tests.workflow_runs import ROOT

GROUP = {"fm": "a", "dataset": "d", "mapping": "none", "task": "all"}


def _runs(grid: dict, rules: str = "spec", seeds=(0, 1), **group) -> pd.DataFrame:
    runs = expand_grid({**grid, "seed": list(seeds)}, rules=rules)
    for key, value in {**GROUP, **group}.items():
        runs[key] = value
    runs["accuracy"] = np.arange(len(runs), dtype=float)
    return runs


def _random_runs(rng, groups=6, seeds=3) -> pd.DataFrame:
    """kmeans k ∈ {1, 5, 20} × NORMpre × max/mnn over ``groups`` tasks, random accuracies."""
    grid = {"gen": ["kmeans"], "k": [1, 5, 20], "norm_pre": ["none", "l2"]}
    grid |= {"agg": ["max", "mnn"], "distance": ["inner_product", "euclidean"], "m": [1, 3]}
    frames = [_runs(grid, seeds=range(seeds), task=f"t{g}") for g in range(groups)]
    runs = pd.concat(frames, ignore_index=True)
    runs["accuracy"] = rng.integers(50, 100, len(runs)).astype(float)  # integers: real ties
    return runs


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
    assert seed_medians(runs)["config"].nunique() == 6
    assert config_labels(runs).nunique() == 6


def test_what_a_run_ignores_does_not_make_a_configuration():
    resnet = _runs({"gen": ["ls", "mean"], "lambda_reg": [1e-4]}, fm="resnet18")
    vit = _runs({"gen": ["ls", "mean"], "lambda_reg": [0.1]}, fm="vit_b_16")
    medians = seed_medians(pd.concat([resnet, vit], ignore_index=True))
    assert medians["config"].nunique() == 2  # λ is the FM's: the same two in both groups
    paper_max = seed_medians(_runs({"gen": ["mean"], "m": [-1]}, rules="paper"))
    spec_max = seed_medians(_runs({"gen": ["mean"]}))
    assert set(paper_max["config"]) == set(spec_max["config"])


def test_a_named_method_that_repeats_a_grid_configuration_names_it():
    grid = _runs({"gen": ["kls", "mean"], "k": [1, 5], "norm_pre": ["none"]})
    oracle = _runs({"gen": ["ls"], "norm_pre": ["none"]}).assign(method="oracle")
    medians = seed_medians(pd.concat([grid, oracle], ignore_index=True))
    assert len(medians) == 3  # the oracle's runs are the grid's kls with k = 1 (PAPER.md C.5.1)
    named = medians[medians["method"] == "oracle"]
    assert named[["gen", "k"]].values.tolist() == [["kls", 1]]


def test_named_runs_and_the_same_grid_configuration_are_one_configuration():
    grid = _runs({"gen": ["mean", "kmeans"], "k": [1, 5]})
    named = grid[grid["gen"] == "mean"].assign(method="qi", experiment="named")
    medians = seed_medians(pd.concat([grid, named], ignore_index=True))
    assert len(medians) == 3
    assert medians.loc[medians["gen"] == "mean", "method"].tolist() == ["qi"]


def test_seed_medians_and_ranks_match_a_brute_force_table():
    rng = np.random.default_rng(0)
    runs = _random_runs(rng)
    table = rank_pool(seed_medians(runs))
    runs = runs.assign(config=config_labels(runs))
    expected = {}
    for _, members in runs.groupby("task"):
        medians = {c: float(np.median(m["accuracy"])) for c, m in members.groupby("config")}
        for config, value in medians.items():
            better = sum(v > value for v in medians.values())
            equal = sum(v == value for v in medians.values())
            expected.setdefault(config, []).append((better + (equal + 1) / 2, value))
    assert len(table) == len(expected)
    for _, row in table.iterrows():
        ranks, accuracies = zip(*expected[row["config"]], strict=True)
        assert row["average_rank"] == pytest.approx(np.mean(ranks))
        assert row["std_rank"] == pytest.approx(np.std(ranks, ddof=1))
        assert row["stderr_rank"] == pytest.approx(np.std(ranks, ddof=1) / np.sqrt(len(ranks)))
        assert row["average_accuracy"] == pytest.approx(np.mean(accuracies))
        assert row["groups"] == len(ranks)
    assert table["average_rank"].is_monotonic_increasing


def test_best_per_method_is_the_lowest_average_rank_of_each_value():
    table = rank_pool(seed_medians(_random_runs(np.random.default_rng(1))))
    best = best_per_method(table, ["agg", "m"])
    assert sorted(best["name"]) == ["1-nn", "3-nn", "max"]
    for _, row in best.iterrows():
        same = table[(table["agg"] == row["agg"]) & (table["m"] == row["m"])]
        assert row["average_rank"] == same["average_rank"].min()


def test_holm_step_down_by_hand_and_as_statsmodels():
    # α = 0.05, K = 4: 0.01 ≤ 0.0125 yes; 0.02 ≤ 0.0167 no, so stop: 0.03 ≤ 0.025 is never asked.
    assert holm([0.03, 0.01, 0.02, 0.5], 0.05).tolist() == [False, True, False, False]
    assert holm([0.001, 0.012, 0.02, 0.04], 0.05).tolist() == [True, True, True, True]
    rng = np.random.default_rng(2)
    for _ in range(6):
        p = rng.uniform(0, 0.06, rng.integers(4, 12))
        assert holm(p, 0.05).tolist() == multipletests(p, 0.05, method="holm")[0].tolist()


def _exact_p_by_enumeration(x, y):
    """Two-sided exact signed-rank p-value, every sign pattern of ranks 1..n enumerated; the
    statistic (average ranks on ties) is rounded conservatively: up for the lower tail, down for
    the upper."""
    d = np.asarray(x, float) - np.asarray(y, float)
    r_plus = rankdata(np.abs(d))[d > 0].sum()
    n = len(d)
    signs = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    null = signs @ np.arange(1, n + 1)
    lower, upper = np.mean(null <= np.ceil(r_plus)), np.mean(null >= np.floor(r_plus))
    return min(1.0, 2 * min(lower, upper))


def _normal_p(x, y):
    """The normal approximation without zeros: ranks with ties averaged, variance reduced by
    Σ(t³ − t)/48 over tie groups, no continuity correction."""
    d = np.asarray(x, float) - np.asarray(y, float)
    n, ranks = len(d), rankdata(np.abs(d))
    _, t = np.unique(np.abs(d), return_counts=True)
    variance = n * (n + 1) * (2 * n + 1) / 24 - (t**3 - t).sum() / 48
    z = (ranks[d > 0].sum() - n * (n + 1) / 4) / np.sqrt(variance)
    return 2 * norm.sf(abs(z))


def test_wilcoxon_p_takes_the_method_scipy_1_14_took():
    rng = np.random.default_rng(3)
    tied = np.repeat(rng.normal(size=6), 2)  # 12 differences, equal in pairs: ties
    base = rng.normal(size=12)
    # n ≤ 50, ties, no zeros: the exact distribution (SciPy ≥ 1.15 would permute).
    assert wilcoxon_p(base + tied, base) == pytest.approx(
        _exact_p_by_enumeration(base + tied, base)
    )
    assert wilcoxon_p(base + tied * 0.3 - 0.2, base) == pytest.approx(
        _exact_p_by_enumeration(base + tied * 0.3 - 0.2, base)
    )
    # n ≤ 50 with a zero difference: the normal approximation with Pratt's zeros.
    shifted = base + rng.normal(size=12)
    shifted[:3] = base[:3]
    assert wilcoxon_p(shifted, base) == pytest.approx(
        wilcoxon(shifted, base, zero_method="pratt", method="asymptotic").pvalue
    )
    # n > 50, ties, no zeros: the normal approximation.
    big = np.round(rng.normal(0.2, 1, 60), 1)
    big[big == 0] = 0.5
    assert wilcoxon_p(big, np.zeros(60)) == pytest.approx(_normal_p(big, np.zeros(60)))
    # n = 50 exactly, no ties: exact.
    small = rng.normal(0.3, 1, 50)
    assert wilcoxon_p(small, np.zeros(50)) == pytest.approx(
        wilcoxon(small, np.zeros(50), method="exact").pvalue
    )


def test_wilcoxon_pairs_test_every_pair_and_join_identical_methods():
    rng = np.random.default_rng(3)
    voters = pd.DataFrame(rng.normal(size=(12, 3)), columns=["a", "b", "c"])
    voters["d"] = voters["a"]
    voters.loc[:5, "c"] = voters.loc[:5, "b"]  # zero differences: pratt keeps them in the ranks
    pairs = wilcoxon_pairs(voters, 0.05).set_index(["a", "b"])
    for x, y in itertools.combinations(voters.columns, 2):
        expected = 1.0 if (x, y) == ("a", "d") else wilcoxon_p(voters[x], voters[y])
        assert pairs.at[(x, y), "p_value"] == pytest.approx(expected)
    assert pairs.at[("b", "c"), "p_value"] == pytest.approx(
        wilcoxon(voters["b"], voters["c"], zero_method="pratt", method="asymptotic").pvalue
    )
    assert not pairs.at[("a", "d"), "significant"]


def test_exact_wilcoxon_p_value_with_every_voter_one_way():
    voters = pd.DataFrame({"better": np.arange(12.0) + 1, "worse": np.zeros(12)})
    pairs = wilcoxon_pairs(voters, 0.05)
    assert pairs["p_value"].iloc[0] == pytest.approx(2 * 2.0**-12)  # the exact two-sided test


def test_critical_difference_friedman_dense_ranks_and_bars():
    rng = np.random.default_rng(4)
    base = rng.normal(size=16)
    voters = pd.DataFrame(
        {"top": base + 3, "mid": base + 1.5, "mid2": base + 1.5 + rng.normal(0, 0.01, 16),
         "low": base}
    )  # fmt: skip
    voters.loc[0, "mid2"] = voters.loc[0, "mid"]  # a tie within one voter
    cd = critical_difference(voters, 0.05)
    statistic, p = friedmanchisquare(*(voters[c] for c in voters.columns))
    assert (cd.friedman_statistic, cd.friedman_p) == pytest.approx((statistic, p))
    dense = {c: [] for c in voters.columns}
    for _, row in voters.iterrows():
        distinct = sorted(set(row), reverse=True)
        for c in voters.columns:
            dense[c].append(distinct.index(row[c]) + 1)
    for c in voters.columns:
        assert cd.ranks[c] == pytest.approx(np.mean(dense[c]))
    assert list(cd.ranks.index) == ["low", "mid", "mid2", "top"] or list(cd.ranks.index) == [
        "low", "mid2", "mid", "top",
    ]  # fmt: skip
    assert cd.bars == [(1, 2)]  # only mid and mid2 are not told apart


def test_no_pairwise_tests_when_friedman_does_not_reject():
    rng = np.random.default_rng(5)
    voters = pd.DataFrame(rng.normal(size=(10, 3)), columns=["a", "b", "c"])
    cd = critical_difference(voters, 0.05)
    assert cd.friedman_p >= 0.05 and not cd.tested
    assert cd.pairs.empty and cd.bars == []


def test_cliques_span_their_lowest_and_highest_member():
    pairs = pd.DataFrame(
        [("a", "b", False), ("b", "c", False), ("a", "c", True), ("c", "d", False)],
        columns=["a", "b", "significant"],
    )
    assert cliques(pairs, ["a", "b", "c", "d"]) == [(0, 1), (1, 2), (2, 3)]
    everything = pairs.assign(significant=False)
    everything.loc[len(everything)] = ("a", "d", False)
    everything.loc[len(everything)] = ("b", "d", False)
    assert cliques(everything, ["a", "b", "c", "d"]) == [(0, 3)]


def _paper_view(name: str) -> dict:
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    return config, config["statistics"]["cd_diagrams"][name]


@pytest.mark.parametrize(("task", "count"), [("all", 151), ("even", 147)])
def test_the_paper_named_view_pools_151_and_147_configurations(task, count):
    config, view = _paper_view("named")
    frames = []
    for name in view["experiment"]:
        experiment = config["experiments"][name]
        if task not in experiment["tasks"]:
            continue
        if "methods" in experiment:
            from imprint.study.methods import NAMED_METHODS

            rows = [{**NAMED_METHODS[m], "method": m} for m in experiment["methods"]]
            frames.append(pd.DataFrame(rows).assign(seed=0))
        else:
            frames.append(expand_grid({**experiment["grid"], "seed": [0]}, rules="paper"))
    runs = pd.concat(frames, ignore_index=True).assign(**{**GROUP, "task": task}, accuracy=1.0)
    pool = view_medians(runs, view)
    assert pool["config"].nunique() == count  # PAPER.md §C.5.1
    assert set(view_methods(pool, view)["name"]) == set(view["methods"])


def test_table1_ranks_an_extra_method_in_the_pool_plus_itself():
    grid = _runs({"gen": ["mean", "kmeans"], "k": [5], "norm_post": ["l2"]}, seeds=(0,))
    groups = [grid.assign(task=t, accuracy=grid["accuracy"] + i) for i, t in enumerate("abc")]
    runs = pd.concat(groups, ignore_index=True)
    qi = runs[runs["gen"] == "mean"].assign(method="qi")
    extra = qi.assign(method="hosoda_quantile", norm_post="quantile", accuracy=100.0)
    view = {"experiment": "x", "slice": {"norm_post": ["l2"]}, "method": ["method"]}
    table = table1(pd.concat([runs, qi, extra], ignore_index=True), view, ["hosoda_quantile"])
    assert table["name"].tolist() == ["qi", "hosoda_quantile"]
    assert table["in_paper"].tolist() == [True, False]
    assert table["pool"].tolist() == [2, 3]
    assert table["average_rank"].tolist() == [2.0, 1.0]  # kmeans beats mean; the extra beats all
    assert table["GEN"].tolist() == ["mean", "mean"]
    text = table1_markdown(table, view)
    assert "hosoda_quantile (not in the paper)" in text
    assert "Ranks among the 2 configurations of experiment(s) x (norm_post in ['l2'])" in text


def test_table1_marks_a_method_of_the_view_that_the_paper_lacks():
    grid = _runs({"gen": ["mean"], "k": [1], "norm_post": ["l2", "quantile"]}, seeds=(0,))
    runs = pd.concat([grid.assign(task=t) for t in "ab"], ignore_index=True)
    runs["method"] = runs["norm_post"].map({"l2": "qi", "quantile": "hosoda_quantile"})
    table = table1(runs, {"experiment": ["x", "y"], "method": ["method"]})
    assert dict(zip(table["name"], table["in_paper"], strict=True)) == {
        "qi": True, "hosoda_quantile": False,
    }  # fmt: skip
    assert "experiment(s) x, y (all of their runs), over 2 groups" in table1_markdown(
        table, {"experiment": ["x", "y"]}
    )


def test_voters_are_the_groups_every_method_has():
    runs = _random_runs(np.random.default_rng(6), groups=4)
    medians = seed_medians(runs)
    medians = medians.drop(medians[(medians["task"] == "t0") & (medians["agg"] == "max")].index)
    shown = best_per_method(rank_pool(medians), ["agg"])
    assert len(voter_table(medians, shown)) == 3


def test_paper_comparison_puts_each_published_number_beside_the_reproduced_one():
    tables = {"table1": pd.DataFrame({"name": ["qi", "ours"], "average_accuracy": [80.0, 90.5]})}
    published = {"table1": {"average_accuracy": {"qi": 86.79, "ours": 91.06, "oracle": 94.54}}}
    comparison = paper_comparison(published, tables).set_index("name")
    assert comparison.at["qi", "difference"] == pytest.approx(80.0 - 86.79)
    assert comparison.at["ours", "reproduced"] == 90.5
    assert np.isnan(comparison.at["oracle", "reproduced"])  # not reproduced: said, not hidden
