"""Running the workflow from tests: a copy of it in a temporary directory, and snakemake there."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from imprint.method.engine import TIMING_COLUMNS
from imprint.study.config import sweep_setup
from imprint.study.cost import load_budget
from imprint.study.experiments import experiment_packs

ROOT = Path(__file__).resolve().parents[1]

# A part of the demo that crosses every stage (data, training, embedding, sweeps, NC1, figures)
# without its slowest jobs (the baselines' sweeps: the same rule, minutes of linear probes):
# what the runs on a cluster and on remote storage make and compare.
SUBSET_EXPERIMENTS = ("fig6", "fewshot")
SUBSET_FIGURES = ("fig6", "fig11a")
SUBSET = [
    *(f"results/runs/{name}.parquet" for name in SUBSET_EXPERIMENTS),
    *(f"results/figures/{name}.pdf" for name in SUBSET_FIGURES),
    "results/tables/nc1.csv",
]


def copy_workflow(directory: Path) -> Path:
    """The workflow, its configs and env files, copied into ``directory``."""
    for part in ("workflow", "config", "envs"):
        shutil.copytree(ROOT / part, directory / part)
    return directory


def snakemake(directory: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``snakemake --cores 2 ARGS`` in ``directory`` (its default profile applies)."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=directory, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip


def without_timings(path: Path) -> pd.DataFrame:
    """A runs table minus its measured timing columns."""
    return pd.read_parquet(path).drop(columns=list(TIMING_COLUMNS))


def results_without_timings(directory: Path) -> dict[str, pd.DataFrame]:
    """Every runs table of a finished workflow, keyed by experiment, minus the timing columns."""
    return {
        path.stem: without_timings(path)
        for path in sorted((directory / "results/runs").glob("*.parquet"))
    }


def sweep_jobs(config: dict, experiments: list[str]) -> int:
    """The sweep jobs planned for ``experiments`` of ``config`` under the default job budget:
    packs of whole shards and every part of a split one (``imprint.study.cost``), at each
    experiment's device and threads."""
    lambdas = {fm: spec["lambda_reg"] for fm, spec in config["fms"].items()}
    return sum(
        len(
            experiment_packs(
                config["experiments"][name],
                lambdas,
                load_budget(30, None, *sweep_setup(config, name))[0],
            )
        )
        for name in experiments
    )
