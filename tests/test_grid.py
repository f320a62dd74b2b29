"""Grid expansion against a plain enumeration of SPEC §2's rules."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from imprint import expand_grid
from imprint.study.config import resolve_config
from imprint.study.experiments import shard_runs

ROOT = Path(__file__).resolve().parents[1]

# The §5.1 grid of the paper's experiment files, with the distances our mnn offers.
SECTION_5_1 = {
    "norm_pre": ["none", "l2"],
    "gen": ["kmeans", "kmedoids", "mean", "ls", "kls", "cov_max", "random", "fps", "all"],
    "k": [-1, 1, 2, 3, 5, 10, 20],
    "norm_post": ["none", "l2", "quantile"],
    "norm_inf": ["none", "l2"],
    "agg": ["max", "mnn"],
    "distance": ["inner_product", "cosine", "euclidean"],
    "weighting": ["uniform", "weighted_by_distance"],
    "m": [1, 3, 5, 20, 50],
    "seed": [17121997, 123987, 12412312],
}


def _count_by_hand() -> int:
    """Count runs per (GEN, k) by hand: one ``max`` plus distance × weighting × {m <= 10k}."""
    ms = SECTION_5_1["m"]
    mnn_distances = 2  # cosine, euclidean (inner product is not a distance)

    def per_k(k):
        return 1 + mnn_distances * 2 * sum(1 for m in ms if k == -1 or m <= 10 * k)

    multi = ["kmeans", "kmedoids", "kls", "cov_max", "random", "fps"]
    ks = [1, 2, 3, 5, 10, 20]
    per_norm = len(multi) * sum(per_k(k) for k in ks) + per_k(1) * 2 + per_k(-1)  # mean, ls; all
    norm_triples = 2 * 3 + 1 * 3  # NORMpre none: any NORMinf; l2: NORMinf l2
    return per_norm * norm_triples * len(SECTION_5_1["seed"])


def _enumerate_plainly(spec) -> set[tuple]:
    runs = set()
    for pre, gen, k, post, inf, agg, dist, weight, m, seed in itertools.product(*spec.values()):
        if pre != "none" and inf != pre:
            continue
        if gen == "all" or k == -1:
            gen, k = "all", -1
        if gen in ("mean", "ls"):
            k = 1
        if agg == "max" and dist == "inner_product":
            m, weight = 1, "uniform"
        elif agg == "max":
            agg, m, weight = "mnn", 1, "uniform"
        elif dist == "inner_product":
            continue
        if agg == "mnn" and k != -1 and m > 10 * k:
            continue
        runs.add((pre, gen, k, post, inf, agg, dist, weight, m, seed))
    return runs


def test_section_5_1_grid_count():
    grid = expand_grid(SECTION_5_1)
    assert len(grid) == _count_by_hand() == 19089
    columns = [
        "norm_pre",
        "gen",
        "k",
        "norm_post",
        "norm_inf",
        "agg",
        "distance",
        "weighting",
        "m",
        "seed",
    ]
    assert set(map(tuple, grid[columns].itertuples(index=False))) == _enumerate_plainly(SECTION_5_1)
    assert not grid.duplicated().any()


def test_rules_on_small_cases():
    grid = expand_grid(
        {
            "gen": ["mean", "ls", "kmeans"],
            "k": [1, 4],
            "fewshot": [2],
            "norm_pre": ["none"],
            "norm_inf": ["none"],
        }
    )
    assert sorted(zip(grid.gen, grid.k, strict=True)) == [
        ("kmeans", 1),
        ("kmeans", 2),
        ("ls", 1),
        ("mean", 1),
    ]
    lambdas = expand_grid({"gen": ["ls", "mean"], "lambda_reg": [0.1, 0.05]})
    assert sorted(zip(lambdas.gen, lambdas.lambda_reg, strict=True)) == [
        ("ls", 0.05),
        ("ls", 0.1),
        ("mean", 0.1),
    ]
    assert len(expand_grid({"agg": ["mnn"], "distance": ["euclidean"], "m": [0, -1]})) == 0


def test_unknown_keys_and_values_are_rejected():
    with pytest.raises(ValueError, match=r"unknown grid key\(s\) \['gens'\]"):
        expand_grid({"gens": ["mean"]})
    with pytest.raises(ValueError, match="norm_post='L2' is not valid"):
        expand_grid({"norm_post": ["L2"]})
    with pytest.raises(ValueError, match="has no values"):
        expand_grid({"gen": []})


# PAPER.md §A.2 and §A.4: per experiment, the distinct configurations of one group, the seeds,
# and the (datasets, mappings, tasks); plus the §F.3 experiment for Fig. 10's k = n curve and
# the §D.8 GEN-time batch (7 configurations x 144 = 1,008 runs, split by NORM).
S3 = [17121997, 123987, 12412312]
S5 = [14057, 994348, 23092007, 123456, 98765]
SMALL = ["mnist", "fashionmnist", "cifar10"]
FOUR_TASKS = ["all", "even", "odd", "short"]
REMAPS = [f"imagenet_merge_d{d}_r{r}" for d in range(1, 11) for r in range(10)]
PAPER_EXPERIMENTS = {
    "fig6": (51, S3, SMALL, ["none"], ["all"]),
    "subsec1_aggfixed": (288, S3, SMALL, ["none"], FOUR_TASKS),
    "subsec1_aggfixed_kls": (6, S3, SMALL, ["none"], FOUR_TASKS),
    "subsec1_aggfocus": (1968, S3, SMALL, ["none"], FOUR_TASKS),
    "subsec1_aggfocus_kls": (119, S3, SMALL, ["none"], FOUR_TASKS),
    "subsec2": (35, S5, SMALL, ["none"], ["all"]),
    "subsec2_kls": (35, S5, SMALL, ["none"], ["all"]),
    "subsec2_all": (13, S5, SMALL, ["none"], ["all"]),
    "subsec3_combidigits": (30, S3, ["combidigits"], ["mod10"], ["all"]),
    "subsec3_combidigits_kls": (15, S3, ["combidigits"], ["mod10"], ["all"]),
    "subsec3_imagenet": (30, S3, ["imagenet"], REMAPS, ["all"]),
    "subsec3_imagenet_kls": (15, S3, ["imagenet"], REMAPS, ["all"]),
    "subsec3_nonimagenet": (30, S3, SMALL, ["none"], ["all"]),
    "subsec3_nonimagenet_kls": (15, S3, SMALL, ["none"], ["all"]),
    "gen_time_kmeans": (4, S3, SMALL, ["none"], FOUR_TASKS),
    "gen_time_kls": (3, S3, SMALL, ["none"], FOUR_TASKS),
}


def test_the_paper_config_has_the_published_configurations_per_group():
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    resolved, _ = resolve_config({**config, "imagenet_root": "/data/imagenet"})
    experiments = resolved["experiments"]
    assert set(experiments) == {*PAPER_EXPERIMENTS, "named"}
    for name, (count, seeds, datasets, mappings, tasks) in PAPER_EXPERIMENTS.items():
        experiment = experiments[name]
        assert experiment["fms"] == ["resnet18", "resnet50", "vit_b_16", "swin_b"], name
        assert (experiment["datasets"], experiment["mappings"]) == (datasets, mappings), name
        assert (experiment["tasks"], experiment["seeds"]) == (tasks, seeds), name
        for fm in experiment["fms"]:
            runs = shard_runs(experiment, resolved["fms"][fm]["lambda_reg"])
            assert len(runs) == count * len(seeds), (name, fm)
            assert len(runs.drop(columns="seed").drop_duplicates()) == count, (name, fm)


def test_paper_rules_keep_what_the_reference_kept():
    aggfocus = {
        "gen": ["kmeans", "mean", "all"],
        "k": [-1, 1, 5, 20],
        "agg": ["max", "mnn"],
        "distance": ["inner_product", "euclidean"],
        "weighting": ["uniform"],
        "m": [-1, 1, 3, 5, 20, 50],
        "norm_pre": ["none"],
        "norm_inf": ["none"],
    }
    grid = expand_grid(aggfocus, rules="paper")
    mnn = grid[grid["agg"] == "mnn"]
    # Rule 4 sees the raw k: mean (raw k 5 or 20) keeps m = 20 and 50, k-means k = 1 does not.
    assert sorted(mnn[mnn.gen == "mean"].m) == [1, 3, 5, 20, 50]
    assert sorted(mnn[(mnn.gen == "kmeans") & (mnn.k == 1)].m) == [1, 3, 5]
    assert sorted(mnn[mnn.gen == "all"].m) == [1, 3, 5, 20, 50]
    # max keeps its distance (run as 1-NN) and m = -1; k-means k = -1 is dropped, not `all`.
    assert sorted(grid[(grid["agg"] == "max") & (grid.gen == "mean")].distance) == [
        "euclidean",
        "inner_product",
    ]
    assert set(grid[grid["agg"] == "max"].m) == {-1}
    assert -1 not in set(grid[grid.gen == "kmeans"].k)
    spec = expand_grid(aggfocus)
    assert len(spec) < len(grid)
    fewshot = expand_grid({"gen": ["kmeans", "all"], "k": [-1, 20], "fewshot": [5]}, "paper")
    assert sorted(zip(fewshot.gen, fewshot.k, strict=True)) == [("all", -1), ("kmeans", 5)]
    with pytest.raises(ValueError, match="rules='papers' is not valid"):
        expand_grid(aggfocus, rules="papers")
