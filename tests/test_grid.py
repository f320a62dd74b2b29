"""Grid expansion against a plain enumeration of SPEC §2's rules."""

from __future__ import annotations

import itertools

import pytest

from imprint import expand_grid

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
