"""From the workflow's config to sweep shards: which runs a shard holds and which embeddings
it reads, and the tidy results table it writes."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from imprint.fms.store import embeddings_precision, open_embeddings
from imprint.io import with_provenance
from imprint.method.engine import sweep
from imprint.method.params import RUN_COLUMNS
from imprint.study.catalog import Catalog
from imprint.study.cost import Budget, TaskSize, pack, units
from imprint.study.grid import expand_grid
from imprint.study.methods import NAMED_METHODS
from imprint.study.tasks import expand_mappings, select_task

log = logging.getLogger(__name__)


def load_embeddings(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Checked, memory-mapped embeddings files and their labels (``imprint.fms.store``); several
    files are concatenated with each file's labels shifted past the previous ones (CombiDigits:
    +10 per data set, so that ``mod10`` merges each digit's four data sets)."""
    xs, ys = [], []
    offset = 0
    for path in paths:
        x, y = open_embeddings(path)
        xs.append(x)
        ys.append(y + offset)
        offset += int(y.max()) + 1
    return (xs[0], ys[0]) if len(xs) == 1 else (np.concatenate(xs), np.concatenate(ys))


def shard_runs(experiment: Mapping[str, Any], lambda_reg: float) -> pd.DataFrame:
    """The deduplicated runs of one shard: named methods or a grid (reduced by the experiment's
    ``rules``), over the experiment's seeds, with the FM's λ for ``ls`` and ``kls``."""
    seeds = list(experiment["seeds"])
    if "methods" in experiment:
        rows = []
        for name in experiment["methods"]:
            for seed in seeds:
                params = {c: NAMED_METHODS[name][c] for c in RUN_COLUMNS}
                rows.append({"method": name, **params, "seed": seed, "lambda_reg": lambda_reg})
        return pd.DataFrame(rows)
    grid = {**experiment["grid"], "seed": seeds, "lambda_reg": [lambda_reg]}
    return expand_grid(grid, rules=experiment.get("rules", "spec"))


def shard_keys(experiment: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (mapping, task) of every shard of an experiment's FM and data set in a canonical order,
    whatever the order in the config: the identity mapping ``none`` first, then mappings and
    tasks in natural order (d2 before d10). Sweep jobs pack shards, and gathered tables hold
    their rows, in this order."""

    def natural(name: str) -> list[Any]:
        return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]

    keys = itertools.product(expand_mappings(experiment["mappings"]), experiment["tasks"])
    return sorted(keys, key=lambda k: (k[0] != "none", natural(k[0]), natural(k[1])))


def experiment_jobs(
    experiment: Mapping[str, Any],
    lambdas: Mapping[str, float],
    budget: Budget,
    catalog: Catalog | None = None,
) -> Iterator[tuple[tuple[str, str, str, str], int, list[tuple[np.ndarray, float]]]]:
    """Every shard of an experiment, mapping patterns expanded: its (FM, data set, mapping,
    task), its number of runs, and its jobs under ``budget`` (``lambdas``: each FM's λ; sizes
    from ``catalog``, by default the built-in FMs and data sets)."""
    catalog = catalog or Catalog()
    for fm in experiment["fms"]:
        runs = shard_runs(experiment, lambdas[fm])
        shard_units = units(runs)
        for dataset in experiment["datasets"]:
            for mapping, task in shard_keys(experiment):
                jobs = budget.jobs(shard_units, catalog.task_size(fm, dataset, mapping, task))
                yield (fm, dataset, mapping, task), len(runs), jobs


def experiment_packs(
    experiment: Mapping[str, Any],
    lambdas: Mapping[str, float],
    budget: Budget,
    catalog: Catalog | None = None,
) -> Iterator[tuple[tuple[str, str], list[list[tuple]]]]:
    """Every (FM, data set) of an experiment and its sweep jobs: its shards packed under
    ``budget`` (``imprint.study.cost.pack``), each job a list of ((mapping, task), part, of,
    seconds)."""
    shards = experiment_jobs(experiment, lambdas, budget, catalog)
    for key, group in itertools.groupby(shards, key=lambda shard: shard[0][:2]):
        parts = [(shard[2:], [s for _, s in jobs]) for shard, _, jobs in group]
        yield key, pack(parts, budget.minutes * 60)


def run_pack(
    experiment_name: str,
    experiment: Mapping[str, Any],
    fm: str,
    lambda_reg: float,
    dataset: str,
    members: list[Mapping[str, Any]],
    train_files: list[str],
    test_files: list[str],
    device: str = "cpu",
) -> pd.DataFrame:
    """Every run of a sweep job: its shards (``members``: ``mapping``, ``task``, ``part`` and
    ``label_table`` each, as ``run_shard`` takes them) one after the other, on embeddings read
    once; the rows in the members' order."""
    train, test = load_embeddings(train_files), load_embeddings(test_files)
    precision = embeddings_precision(train_files[0])
    tables = []
    for member in members:
        mapping, task, part = member["mapping"], member["task"], member["part"]
        shard = (experiment_name, experiment, fm, lambda_reg, dataset, mapping, task)
        tables.append(
            run_shard(*shard, train, test, precision, device, part, member["label_table"])
        )
    return pd.concat(tables, ignore_index=True)


def run_shard(
    experiment_name: str,
    experiment: Mapping[str, Any],
    fm: str,
    lambda_reg: float,
    dataset: str,
    mapping: str,
    task: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    precision: str,
    device: str = "cpu",
    part: Mapping[str, Any] | None = None,
    label_table: dict[int, int] | None = None,
) -> pd.DataFrame:
    """Every run of one (experiment, FM, data set, mapping, task) on the data set's embeddings
    and labels per split (``load_embeddings``) of the given ``precision``: a tidy table with
    provenance. ``part`` (``index`` of ``of``, the ``minutes``, ``rates`` and ``slowdown`` of an
    ``imprint.study.cost.Budget`` and the shard's ``size`` as planned) keeps one job's runs;
    ``label_table`` is your own mapping's."""
    train = select_task(*train, mapping, task, label_table)
    test = select_task(*test, mapping, task, label_table)
    runs = shard_runs(experiment, lambda_reg)
    which = ""
    if part:
        budget = Budget(part["minutes"], part["rates"], part["slowdown"])
        jobs = budget.jobs(units(runs), TaskSize(**part["size"]))
        if len(jobs) != part["of"]:
            raise ValueError(
                f"the budget splits this shard into {len(jobs)} parts, not {part['of']}; "
                "plan the workflow again"
            )
        runs = runs.iloc[jobs[part["index"] - 1][0]].reset_index(drop=True)
        which = f" (part {part['index']} of {part['of']})"
    log.info(
        "%s/%s/%s/%s/%s%s: %d runs, %d train and %d test samples",
        experiment_name, fm, dataset, mapping, task, which, len(runs), len(train[1]),
        len(test[1]),
    )  # fmt: skip
    result = sweep(*train, *test, runs, device=device)
    result.insert(0, "experiment", experiment_name)
    result.insert(1, "fm", fm)
    result.insert(2, "dataset", dataset)
    result.insert(3, "mapping", mapping)
    result.insert(4, "task", task)
    result["embedding_precision"] = precision
    slice_ = {"experiment": dict(experiment), "lambda_reg": lambda_reg}
    if label_table is not None:
        slice_["label_table"] = label_table
    return with_provenance(result, slice_)
