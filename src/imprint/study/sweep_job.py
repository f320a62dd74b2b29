"""One sweep job of the workflow: its shards' embeddings read once per (FM, data set), every
run of each shard swept (``imprint.method.engine.sweep``), and the tidy results table it
writes, each experiment's rows with their provenance."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from imprint.fms.store import embeddings_precision, load_embeddings
from imprint.io import with_provenance
from imprint.method.engine import sweep
from imprint.study.config import job_group
from imprint.study.cost import Budget, TaskSize, units
from imprint.study.experiments import group_runs
from imprint.study.tasks import select_task

log = logging.getLogger(__name__)


def run_pack(
    experiment_name: str,
    spec: Mapping[str, Any],
    members: list[Mapping[str, Any]],
    files: Mapping[tuple[str, str], tuple[list[str], list[str]]],
    device: str = "cpu",
) -> pd.DataFrame:
    """Every run of a sweep job of an experiment (``spec``: the job's params,
    ``imprint.study.config.job_spec``: its shard spec, with those of the experiments that share
    its jobs): its shards (``members``: ``fm``, ``lambda_reg``, ``dataset``, ``mapping``,
    ``task``, ``part`` and ``label_table`` each, as ``run_shard`` takes them) one after the
    other, each FM's data set embeddings (``files``: its train and test embeddings files per
    (FM, data set)) read once; the rows in the members' order."""
    group = job_group(experiment_name, spec)
    loaded: dict[tuple[str, str], tuple] = {}
    tables = []
    for m in members:
        key = (m["fm"], m["dataset"])
        if key not in loaded:
            train_files, test_files = files[key]
            precision = embeddings_precision(train_files[0])
            loaded[key] = load_embeddings(train_files), load_embeddings(test_files), precision
        shard = (group, m["fm"], m["lambda_reg"], m["dataset"])
        shard += (m["mapping"], m["task"], *loaded[key], device, m["part"], m["label_table"])
        tables.append(run_shard(*shard))
    return pd.concat(tables, ignore_index=True)


def run_shard(
    group: Mapping[str, Mapping[str, Any]],
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
    """Every run of one (FM, data set, mapping, task) of the experiments ``group`` (each one's
    shard spec by name), in one ``sweep``, so that they compute what they share once, on the
    data set's embeddings and labels per split (``load_embeddings``) of the given
    ``precision``: a tidy table, each experiment's rows with its provenance. ``part``
    (``index`` of ``of``, the ``minutes``, ``rates`` and ``slowdown`` of an
    ``imprint.study.cost.Budget`` and the shard's ``size`` as planned) keeps one job's runs;
    ``label_table`` is your own mapping's."""
    train = select_task(*train, mapping, task, label_table)
    test = select_task(*test, mapping, task, label_table)
    runs = group_runs(group, lambda_reg)
    timing = next(iter(group.values())).get("time_every_seed", False)
    which = ""
    if part:
        budget = Budget(part["minutes"], part["rates"], part["slowdown"])
        jobs = budget.jobs(units(runs, timing), TaskSize(**part["size"]))
        if len(jobs) != part["of"]:
            raise ValueError(
                f"the budget splits this shard into {len(jobs)} parts, not {part['of']}; "
                "plan the workflow again"
            )
        runs = runs.iloc[jobs[part["index"] - 1][0]].reset_index(drop=True)
        which = f" (part {part['index']} of {part['of']})"
    log.info(
        "%s/%s/%s/%s/%s%s: %d runs, %d train and %d test samples",
        "+".join(group), fm, dataset, mapping, task, which, len(runs), len(train[1]),
        len(test[1]),
    )  # fmt: skip
    result = sweep(*train, *test, runs, device=device, time_every_seed=timing)
    result.insert(1, "fm", fm)
    result.insert(2, "dataset", dataset)
    result.insert(3, "mapping", mapping)
    result.insert(4, "task", task)
    result["embedding_precision"] = precision
    tables = []
    for name, experiment in group.items():
        rows = result[result["experiment"] == name]
        slice_ = {"experiment": dict(experiment), "lambda_reg": lambda_reg}
        if label_table is not None:
            slice_["label_table"] = label_table
        tables.append(with_provenance(rows, slice_))
    return pd.concat(tables, ignore_index=True)
