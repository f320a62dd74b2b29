"""From the workflow's config to sweep shards and jobs: which runs a shard holds, how shards
are packed into jobs, and what a job needs to find its runs again. No PyTorch here, so that the
workflow plans its jobs without importing it; ``imprint.study.sweep_job`` runs them."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imprint.method.params import RUN_COLUMNS
from imprint.study.catalog import Catalog
from imprint.study.cost import Budget, pack, units
from imprint.study.grid import expand_grid
from imprint.study.methods import NAMED_METHODS
from imprint.study.tasks import expand_mappings


def shard_runs(experiment: Mapping[str, Any], lambda_reg: float) -> pd.DataFrame:
    """The deduplicated runs of one shard: named methods (at each of the experiment's
    ``fewshot`` values) or a grid (reduced by the experiment's ``rules``), over the experiment's
    seeds, with the FM's λ for ``ls`` and ``kls``."""
    seeds = list(experiment["seeds"])
    if "methods" in experiment:
        rows = []
        for name in experiment["methods"]:
            for shots in experiment.get("fewshot", [-1]):
                for seed in seeds:
                    params = {c: NAMED_METHODS[name][c] for c in RUN_COLUMNS}
                    rows.append(
                        {"method": name, **params, "fewshot": shots, "seed": seed,
                         "lambda_reg": lambda_reg}
                    )  # fmt: skip
        return pd.DataFrame(rows)
    grid = {**experiment["grid"], "seed": seeds, "lambda_reg": [lambda_reg]}
    return expand_grid(grid, rules=experiment.get("rules", "spec"))


def group_runs(group: Mapping[str, Mapping[str, Any]], lambda_reg: float) -> pd.DataFrame:
    """The runs of one shard of a sweep job's experiments (``group``: each one's spec by name,
    as ``imprint.study.config.sweep_group`` gives them): each experiment's ``shard_runs`` in
    turn, named in a first column ``experiment``."""
    tables = [shard_runs(e, lambda_reg) for e in group.values()]
    runs = pd.concat(tables, ignore_index=True)
    runs.insert(0, "experiment", np.repeat(list(group), [len(t) for t in tables]))
    return runs


def natural_key(name: str) -> list[Any]:
    """A sort key that orders the numbers inside names by value (d2 before d10)."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def shard_keys(experiment: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """The (FM, data set, mapping, task) of every shard of an experiment in a canonical order,
    whatever the order in the config: by FM, data set, mapping (the identity ``none`` first) and
    task, names in natural order. Sweep jobs pack shards, and gathered tables hold their rows, in
    this order."""
    keys = itertools.product(
        experiment["fms"],
        experiment["datasets"],
        expand_mappings(experiment["mappings"]),
        experiment["tasks"],
    )
    return sorted(
        keys, key=lambda k: (*map(natural_key, k[:2]), k[2] != "none", *map(natural_key, k[2:]))
    )


def experiment_jobs(
    group: Mapping[str, Mapping[str, Any]],
    lambdas: Mapping[str, float],
    budget: Budget,
    catalog: Catalog | None = None,
) -> Iterator[tuple[tuple[str, str, str, str], int, list[tuple[np.ndarray, float]]]]:
    """Every shard of the experiments that share sweep jobs (``group``, as
    ``imprint.study.config.sweep_group`` gives them; they have the same shards), mapping patterns
    expanded: its (FM, data set, mapping, task), its number of runs, and its jobs under
    ``budget`` (``lambdas``: each FM's λ; sizes from ``catalog``, by default the built-in FMs
    and data sets)."""
    catalog = catalog or Catalog()
    first = next(iter(group.values()))
    timing = first.get("time_every_seed", False)
    # FMs of one λ have the same runs and units: each λ's are expanded and counted once
    runs = {lam: group_runs(group, lam) for lam in {lambdas[fm] for fm in first["fms"]}}
    shard_units = {lam: units(r, timing) for lam, r in runs.items()}
    priced: dict[tuple, list[tuple[np.ndarray, float]]] = {}  # shards of one size price alike
    for fm, dataset, mapping, task in shard_keys(first):
        size, lam = catalog.task_size(fm, dataset, mapping, task), lambdas[fm]
        if (lam, size) not in priced:
            priced[lam, size] = budget.jobs(shard_units[lam], size)
        yield (fm, dataset, mapping, task), len(runs[lam]), priced[lam, size]


def experiment_packs(
    group: Mapping[str, Mapping[str, Any]],
    lambdas: Mapping[str, float],
    budget: Budget,
    catalog: Catalog | None = None,
) -> list[list[tuple]]:
    """The sweep jobs of experiments that share them (``group``; one experiment alone, or an
    owner and those that name it under ``share_jobs_with``): their shards packed under
    ``budget`` (``imprint.study.cost.pack``), each job a list of ((FM, data set, mapping, task),
    part, of, seconds)."""
    shards = experiment_jobs(group, lambdas, budget, catalog)
    return pack([(key, [s for _, s in jobs]) for key, _, jobs in shards], budget.minutes * 60)


def pack_members(
    job: Sequence[tuple], lambdas: Mapping[str, float], budget: Budget, catalog: Catalog
) -> list[dict[str, Any]]:
    """What a sweep job (one of ``experiment_packs``) needs to find its runs again, per shard, as
    ``imprint.study.sweep_job.run_pack`` takes them: FM and its λ, data set, mapping, task, your
    own mapping's label table, and for a part of a split shard its place and the budget
    (``run_shard``'s ``part``; None for a whole shard, so that changing the budget does not touch
    jobs whose shards stay whole)."""
    members = []
    for (fm, dataset, mapping, task), index, of, _ in job:
        part = None
        if of > 1:
            part = {
                "index": index,
                "of": of,
                "minutes": budget.minutes,
                "rates": dict(sorted(budget.rates.items())),
                "slowdown": budget.slowdown,
                "size": dataclasses.asdict(catalog.task_size(fm, dataset, mapping, task)),
            }
        members.append(
            {
                "fm": fm,
                "lambda_reg": lambdas[fm],
                "dataset": dataset,
                "mapping": mapping,
                "task": task,
                "part": part,
                "label_table": catalog.label_table(mapping, fm, dataset),
            }
        )
    return members
