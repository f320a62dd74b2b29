"""The parameters of one imprinting run: their defaults, allowed values and checks.

The classifier, the sweep and the grid expansion all read these, so a value is valid in one
exactly when it is valid in the others. No PyTorch here: the workflow's planning checks runs
with these names, and the registries that hold the functions (``NORM``, ``NORM_POST``, ``GEN``,
``AGG``) have exactly them as keys (``tests/test_config.py``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

NORMS = ("none", "l2")  # NORMpre and NORMinf: row-wise maps
NORMS_POST = ("none", "l2", "quantile", "quantile_sequential")  # maps of a whole proxy set
GENS = (
    "all", "mean", "random", "kmeans", "kmedoids", "kmedoids_pam", "fps", "cov_max", "ls", "kls",
)  # fmt: skip
# GENs whose proxies of one class depend on the other classes' samples (a joint solve).
COUPLED_GENS = frozenset({"ls", "kls"})
# GENs whose proxies depend on the seed (the others are deterministic functions of the data).
RANDOM_GENS = frozenset({"random", "kmeans", "kmedoids_pam", "fps", "kls"})
# The field's baselines (``imprint.method.baselines``), which a run names as its GEN.
BASELINES = ("linear_probe", "knn", "cache", "ranpac", "fecam")
# the probe's and RanPAC's held-out splits are drawn, and RanPAC's projection
SEEDED_BASELINES = frozenset({"linear_probe", "ranpac"})
RANPAC_DIMENSIONS = 10_000  # RanPAC's random projection's width (its authors' M)
AGGS = ("max", "mnn")
DISTANCES = ("cosine", "euclidean", "manhattan", "chebyshev", "mahalanobis")
WEIGHTINGS = ("uniform", "weighted_by_distance")

# Defaults are the paper's best method ("Ours": L2, k-means k = 20, L2, L2, max).
DEFAULTS: dict[str, Any] = {
    "norm_pre": "l2",
    "gen": "kmeans",
    "k": 20,
    "norm_post": "l2",
    "norm_inf": "l2",
    "agg": "max",
    "distance": "inner_product",
    "weighting": "uniform",
    "m": 1,
    "fewshot": -1,
    "lambda_reg": 1e-4,
    "seed": 0,
    "weibull": None,
}

CHOICES: dict[str, tuple[str, ...]] = {
    "norm_pre": NORMS,
    "gen": (*GENS, *BASELINES),
    "norm_post": NORMS_POST,
    "norm_inf": NORMS,
    "agg": AGGS,
    "distance": ("inner_product", *DISTANCES),
    "weighting": WEIGHTINGS,
}

# The columns a sweep table must have (SPEC §8); ``weibull`` is optional.
RUN_COLUMNS = (
    "norm_pre", "gen", "k", "norm_post", "norm_inf", "agg",
    "distance", "weighting", "m", "fewshot", "lambda_reg", "seed",
)  # fmt: skip


def _integer(name: str, value: Any) -> int:
    """An integer parameter: an integer, or a float that holds one exactly (|x| <= 2**53: above
    that, floats skip integers); NaN, infinity and fractions are rejected naming ``name``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    raise ValueError(f"{name}={value!r} is not valid; it must be an integer")


def _weibull(value: Any) -> tuple[float, float] | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    try:
        lower, upper = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"weibull={value!r} is not valid; give None or [a, b]") from None
    if not 0 <= lower < upper <= 1:
        raise ValueError(f"weibull={value!r} is not valid; need 0 <= a < b <= 1")
    return lower, upper


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check one run's parameters and return them with defaults filled in and types normalised.

    Raises ``ValueError`` naming the parameter and its allowed values."""
    unknown = set(params) - set(DEFAULTS) - {"device"}
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **{key: params[key] for key in params if key != "device"}}
    for name, allowed in CHOICES.items():
        if p[name] not in allowed:
            raise ValueError(f"{name}={p[name]!r} is not valid; choose one of {list(allowed)}")
    for name in ("k", "m", "fewshot", "seed"):
        p[name] = _integer(name, p[name])
    if p["k"] != -1 and p["k"] < 1:
        raise ValueError(f"k={p['k']} is not valid; use k >= 1, or k = -1 for all samples")
    if p["fewshot"] != -1 and p["fewshot"] < 1:
        raise ValueError(f"fewshot={p['fewshot']} is not valid; use n >= 1, or -1 for all samples")
    if p["gen"] == "fecam" and p["fewshot"] == 1:
        raise ValueError(
            "gen='fecam' needs at least two rows a class (a covariance each); fewshot=1 gives "
            "one: use fewshot >= 2"
        )
    if p["agg"] == "mnn":
        if p["m"] < 1:
            raise ValueError(f"m={p['m']} is not valid for agg='mnn'; use m >= 1")
        if p["distance"] == "inner_product":
            raise ValueError(
                "distance='inner_product' is not valid for agg='mnn'; "
                f"choose one of {list(DISTANCES)}"
            )
    try:
        p["lambda_reg"] = float(p["lambda_reg"])
    except (TypeError, ValueError):
        raise ValueError(
            f"lambda_reg={p['lambda_reg']!r} is not valid; it must be a number"
        ) from None
    if not 0 < p["lambda_reg"] < math.inf:
        raise ValueError(
            f"lambda_reg={p['lambda_reg']} is not valid; it must be a finite number > 0 (the "
            "ridge of ls/kls: with 0, a constant embedding dimension makes the problem singular)"
        )
    p["weibull"] = _weibull(p["weibull"])
    return p


def refusal(p: dict[str, Any]) -> str | None:
    """Why the configuration ``p`` cannot run exemplar-free, or None where it can."""
    if p["gen"] == "linear_probe":
        return "the linear probe refits on every row seen so far"
    if p["gen"] in ("ranpac", "fecam"):
        return (
            f"{p['gen']} is fitted on all its rows here; its exemplar-free form, which keeps "
            "sums only, is imprint.method.cil_methods' (the continual experiments run it)"
        )
    if p["gen"] in BASELINES:
        return f"{p['gen']} scores test rows against every training row: its model is the rows"
    return None
