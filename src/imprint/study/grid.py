"""Grid expansion: a sweep description (a list of values per parameter) to a table of runs.

Two rule sets reduce the Cartesian product, by name:

``spec`` (the default, SPEC §2): no two rows compute the same thing and no row is meaningless —

- ``max`` ignores m and weighting; ``max`` with a true distance is ``mnn`` with m = 1;
- ``mnn`` needs m >= 1 and a true distance, and m > 10·k is dropped (k = -1 has no bound);
- ``mean`` and ``ls`` have k = 1; ``all`` has k = -1, and k = -1 means ``all``;
- few-shot n < k sets k := n;
- NORMpre other than ``none`` needs NORMinf = NORMpre;
- duplicates left after these rules collapse to one.

A baseline (``linear_probe``, ``knn``, ``cache``: ``imprint.method.baselines``) has no NORMpost
and no AGG (``none``, ``max``); ``knn`` and ``cache`` compare by cosine, so their NORMpre and
NORMinf are ``l2``, and the linear probe's NORMinf is its NORMpre; ``k`` is the k-NN's
neighbours and −1 for the others; in both rule sets.

``paper`` (PAPER.md §A.3): the reference's ``filter_combinations``, its twelve rules in their
order, so that every experiment has exactly the published configurations (PAPER.md §A.4). It keeps
rows the ``spec`` rules merge: ``max`` keeps its distance (run as 1-NN), m = -1 marks ``max``,
and the m > 10·k rule sees the raw grid k, before ``mean``/``ls``/``all`` get theirs.

In both, λ matters only to ``ls`` and ``kls`` (the others take the first listed value).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from imprint.method.params import BASELINES, DEFAULTS, RUN_COLUMNS, validate_params

SINGLE_PROXY_GENS = frozenset({"mean", "ls"})
LAMBDA_GENS = frozenset({"ls", "kls"})


def _baseline_rules(p: dict[str, Any]) -> dict[str, Any] | None:
    """A baseline's run in canonical form (what it ignores at its default), or None for a
    linear probe whose NORMinf is not its NORMpre."""
    p.update(norm_post="none", agg="max", distance="inner_product", weighting="uniform", m=1)
    if p["gen"] in ("knn", "cache"):
        p["norm_pre"] = p["norm_inf"] = "l2"
    elif p["norm_inf"] != p["norm_pre"]:
        return None
    if p["gen"] not in ("knn", "ranpac"):  # k: the k-NN's neighbours, RanPAC's width M
        p["k"] = -1
    return p


def _spec_rules(p: dict[str, Any]) -> dict[str, Any] | None:
    """SPEC §2: the run a raw combination stands for, or None when the rules drop it."""
    if p["gen"] in BASELINES:
        return _baseline_rules(p)
    if p["norm_pre"] != "none" and p["norm_inf"] != p["norm_pre"]:
        return None
    if p["k"] == -1 or p["gen"] == "all":
        p["gen"], p["k"] = "all", -1
    elif p["gen"] in SINGLE_PROXY_GENS:
        p["k"] = 1
    if p["fewshot"] != -1 and p["k"] > p["fewshot"]:
        p["k"] = p["fewshot"]
    if p["agg"] == "max":
        p["m"], p["weighting"] = 1, "uniform"
        if p["distance"] != "inner_product":
            p["agg"] = "mnn"
    elif p["distance"] == "inner_product" or p["m"] < 1:
        return None
    if p["agg"] == "mnn" and p["k"] != -1 and p["m"] > 10 * p["k"]:
        return None
    return p


def _paper_rules(p: dict[str, Any]) -> dict[str, Any] | None:
    """PAPER.md §A.3, rules 1-11 in their order (rule 12, deduplication, is the caller's).

    Rules 5 and 6 (presampling quantiles) have nothing to do here: ``weibull`` None is the
    reference's presampling ``all`` with quantiles (0, 1). Baselines (not in the paper) take
    their own rules."""
    if p["gen"] in BASELINES:
        return _baseline_rules(p)
    if p["agg"] == "max":  # 1
        p["m"], p["weighting"] = -1, "uniform"
    if p["agg"] == "mnn" and p["m"] == -1:  # 2
        return None
    if p["agg"] == "mnn" and p["distance"] == "inner_product":  # 3
        return None
    if p["m"] > 10 * p["k"] and p["k"] > 0:  # 4: the raw grid k
        return None
    if p["gen"] in SINGLE_PROXY_GENS:  # 7
        p["k"] = 1
    if p["k"] == -1 and p["gen"] != "all":  # 8
        return None
    if p["gen"] == "all":  # 9
        p["k"] = -1
    if p["norm_pre"] != "none" and p["norm_inf"] != p["norm_pre"]:  # 10
        return None
    if p["fewshot"] != -1 and p["fewshot"] < p["k"]:  # 11
        p["k"] = p["fewshot"]
    return p


RULES: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "spec": _spec_rules,
    "paper": _paper_rules,
}


def expand_grid(spec: Mapping[str, Sequence[Any]], rules: str = "spec") -> pd.DataFrame:
    """All distinct runs of a sweep description, one row each, in a stable order.

    ``spec`` maps parameters (``RUN_COLUMNS`` and optionally ``weibull``) to lists of values; a
    parameter left out takes its default. ``rules`` names the reduction (``spec`` or ``paper``,
    see the module docstring). Values are validated before expansion.
    """
    if rules not in RULES:
        raise ValueError(f"rules={rules!r} is not valid; choose one of {list(RULES)}")
    known = (*RUN_COLUMNS, "weibull")
    unknown = set(spec) - set(known)
    if unknown:
        raise ValueError(f"unknown grid key(s) {sorted(unknown)}; known: {list(known)}")
    axes = {name: list(spec.get(name, [DEFAULTS[name]])) for name in known}
    for name, values in axes.items():
        if not values:
            raise ValueError(f"grid key {name!r} has no values; give at least one")
    first_lambda = float(axes["lambda_reg"][0])
    reduce = RULES[rules]
    rows: dict[tuple, dict[str, Any]] = {}
    reduced: set[str] = set()  # the rules map many combinations to one run: validate it once
    for combination in itertools.product(*axes.values()):
        run = reduce(dict(zip(known, combination, strict=True)))
        if run is None:
            continue
        if run["gen"] not in LAMBDA_GENS:
            run["lambda_reg"] = first_lambda
        if (key := repr(tuple(run.values()))) in reduced:
            continue
        reduced.add(key)
        run = validate_params(run)
        rows.setdefault(tuple(run[c] for c in known), run)
    table = pd.DataFrame(list(rows.values()), columns=list(known))
    if all(w is None for w in table["weibull"]):
        table = table.drop(columns="weibull")
    return table
