"""Running the workflow from tests: a copy of it in a temporary directory, and snakemake there."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from imprint.method.engine import TIMING_COLUMNS

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


def copy_run(run: Path, directory: Path) -> Path:
    """A copy of the finished run ``run`` at ``directory``: its outputs, modification times and
    Snakemake metadata, so that Snakemake there sees what it saw in ``run``."""
    return Path(shutil.copytree(run, directory, symlinks=True))


def snakemake(directory: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``snakemake --cores 2 ARGS`` in ``directory`` (its default profile applies)."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=directory, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip


def planned_jobs(output: str) -> int:
    """The number of jobs a dry run's ``output`` plans (its job table's total)."""
    return int(re.search(r"^total\s+(\d+)$", output, re.MULTILINE)[1])


def without_timings(path: Path) -> pd.DataFrame:
    """A runs table minus its measured timing columns."""
    return pd.read_parquet(path).drop(columns=list(TIMING_COLUMNS))


# Sweep jobs under the default 30-minute job budget with the shipped rates: the paper
# configuration's on the CPU with ImageNet (benchmarks/README.md: the cost table's `jobs` column),
# on its own device (`sweep_device: cuda`, GPU rates: one job per experiment but the GEN-time ones'
# CPU jobs) without ImageNet, and the embedded default's (one pack per experiment). A changed
# packing, or a shard lost from a pack, changes them. The paper's `*_kls` experiments run in their
# k-means siblings' jobs.
PAPER_SWEEP_JOBS_ON_CPU = 37
PAPER_SWEEP_JOBS_WITHOUT_IMAGENET = 11
DEMO_SWEEP_JOBS = 6
# Every job of the embedded default's run from nothing (README: `make run`).
DEMO_JOBS = 45
