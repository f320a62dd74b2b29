"""Grid expansion: a sweep description (a list of values per parameter) to a table of runs.

The Cartesian product is reduced by SPEC §2's rules, so that no two rows compute the same thing
and no row is meaningless:

- ``max`` ignores m and weighting; ``max`` with a true distance is ``mnn`` with m = 1;
- ``mnn`` needs m >= 1 and a true distance, and m > 10·k is dropped (k = -1 has no bound);
- ``mean`` and ``ls`` have k = 1; ``all`` has k = -1, and k = -1 means ``all``;
- few-shot n < k sets k := n;
- NORMpre other than ``none`` needs NORMinf = NORMpre;
- λ matters only to ``ls`` and ``kls`` (the others take the first listed value);
- duplicates left after these rules collapse to one.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from imprint.params import DEFAULTS, RUN_COLUMNS, validate_params

SINGLE_PROXY_GENS = frozenset({"mean", "ls"})


def _canonical(p: dict[str, Any], first_lambda: float) -> dict[str, Any] | None:
    """The run a raw combination stands for, or None when the rules drop it."""
    p = dict(p)
    if p["norm_pre"] != "none" and p["norm_inf"] != p["norm_pre"]:
        return None
    if p["k"] == -1 or p["gen"] == "all":
        p["gen"], p["k"] = "all", -1
    elif p["gen"] in SINGLE_PROXY_GENS:
        p["k"] = 1
    if p["fewshot"] != -1 and p["k"] > p["fewshot"]:
        p["k"] = p["fewshot"]
    if p["gen"] not in ("ls", "kls"):
        p["lambda_reg"] = first_lambda
    if p["agg"] == "max":
        p["m"], p["weighting"] = 1, "uniform"
        if p["distance"] != "inner_product":
            p["agg"] = "mnn"
    elif p["distance"] == "inner_product" or p["m"] < 1:
        return None
    if p["agg"] == "mnn" and p["k"] != -1 and p["m"] > 10 * p["k"]:
        return None
    return validate_params(p)


def expand_grid(spec: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """All distinct runs of a sweep description, one row each, in a stable order.

    ``spec`` maps parameters (``RUN_COLUMNS`` and optionally ``weibull``) to lists of values; a
    parameter left out takes its default. Values are validated before expansion.
    """
    known = (*RUN_COLUMNS, "weibull")
    unknown = set(spec) - set(known)
    if unknown:
        raise ValueError(f"unknown grid key(s) {sorted(unknown)}; known: {list(known)}")
    axes = {name: list(spec.get(name, [DEFAULTS[name]])) for name in known}
    for name, values in axes.items():
        if not values:
            raise ValueError(f"grid key {name!r} has no values; give at least one")
    first_lambda = float(axes["lambda_reg"][0])
    rows: dict[tuple, dict[str, Any]] = {}
    for combination in itertools.product(*axes.values()):
        run = _canonical(dict(zip(known, combination, strict=True)), first_lambda)
        if run is not None:
            rows.setdefault(tuple(run[c] for c in known), run)
    table = pd.DataFrame(list(rows.values()), columns=list(known))
    if all(w is None for w in table["weibull"]):
        table = table.drop(columns="weibull")
    return table
