"""The workflow on a real single-node SLURM cluster, started by the repository's own script:
the same results as a local run, and a failed job that is reported and retried."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.workflow_runs import (
    ROOT,
    SUBSET,
    SUBSET_EXPERIMENTS,
    SUBSET_FIGURES,
    copy_run,
    snakemake,
    without_timings,
)

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

CLUSTER_SCRIPT = ROOT / "workflow/profiles/slurm/local-cluster.sh"
PACKAGES_UNAVAILABLE = 3  # the script's exit status when apt cannot install SLURM
SHARD = "results/runs/fig6/pack1.parquet"

# The profile's placeholders filled in for the local cluster (partition `main`, account
# `imprint`), jobs small enough for one node of 2 CPUs (`--cores 2` caps a shard group's width),
# and quick status checks for a small workflow.
SLURM = [
    "--workflow-profile", "workflow/profiles/slurm", "--jobs", "4",
    "--default-resources", "slurm_partition=main", "slurm_account=imprint", "runtime=30",
    "mem_mb=2000", "cpus_per_task=1",
    "--set-resources", "embed:slurm_partition=main", "embed:mem_mb=3000",
    "sweep_shard:mem_mb=3000", "nc1:mem_mb=3000",
    "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
    "--latency-wait", "5",
]  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> None:
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root: its script installs packages and daemons")
    started = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    if started.returncode == PACKAGES_UNAVAILABLE:
        pytest.skip(f"SLURM could not be installed here: {started.stderr.strip()[-500:]}")
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]


# The FM the cluster trains and embeds again; the shared run's other FMs' embeddings stand.
REMADE_FM = "demo_narrow"
# The subset's jobs that run under SLURM (not local rules) once that FM's model is gone: its
# training, embedding and NC1, the subset's two sweep packs (one group job), its two figures.
SLURM_JOBS = 6


@pytest.fixture(scope="module")
def slurm_run(cluster, workflow_run, tmp_path_factory) -> Path:
    """The shared run, copied, remade under SLURM from one FM's training on: every stage that
    is not a local rule (training, embedding, NC1, sweeps, figures) runs on the cluster."""
    directory = tmp_path_factory.mktemp("slurm") / "run"
    copy_run(workflow_run, directory)
    remade = [*SUBSET, f"resources/models/{REMADE_FM}.pt", f"results/embeddings/{REMADE_FM}"]
    for name in [*remade, *(f"results/runs/{e}" for e in SUBSET_EXPERIMENTS)]:
        path = directory / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    result = snakemake(directory, *SLURM, *SUBSET)
    assert result.returncode == 0, result.stderr[-5000:]
    return directory


def _jobs(directory: Path, *states: str, live: bool = False) -> list[str]:
    """SLURM job ids of the jobs submitted from ``directory`` (optionally in these states), from
    accounting, or with ``live`` from the controller's queue (no accounting delay)."""
    if live:
        args = ["squeue", "-h", "-t", "all", "-o", "%i|%T|%Z"]
    else:
        args = ["sacct", "-X", "-n", "-P", "-S", "now-1days", "-o", "JobID,State,WorkDir"]
    rows = subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()
    fields = [row.split("|") for row in rows]
    return [
        job for job, state, workdir in fields
        if Path(workdir) == directory and (not states or state.split()[0] in states)
    ]  # fmt: skip


def test_every_job_ran_under_slurm_and_results_equal_a_local_run(slurm_run, workflow_run):
    assert len(_jobs(slurm_run, "COMPLETED")) == SLURM_JOBS
    for name in SUBSET_EXPERIMENTS:
        pd.testing.assert_frame_equal(
            without_timings(slurm_run / f"results/runs/{name}.parquet"),
            without_timings(workflow_run / f"results/runs/{name}.parquet"),
            check_exact=True,
        )
    pd.testing.assert_frame_equal(
        pd.read_csv(slurm_run / "results/tables/nc1.csv"),
        pd.read_csv(workflow_run / "results/tables/nc1.csv"),
    )
    for figure in SUBSET_FIGURES:
        assert (slurm_run / f"results/figures/{figure}.pdf").stat().st_size > 1000


def test_a_cancelled_job_is_reported_and_retried(slurm_run):
    expected = without_timings(slurm_run / SHARD)
    before = set(_jobs(slurm_run))
    cancelled: list[str] = []

    def cancel_the_first_running_job() -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            running = set(_jobs(slurm_run, "RUNNING", live=True)) - before
            if running:
                cancelled.extend(sorted(running))
                subprocess.run(["scancel", *cancelled], check=True)
                return
            time.sleep(0.2)

    canceller = threading.Thread(target=cancel_the_first_running_job)
    canceller.start()
    # squeue, not sacct: the plugin (2.8.0) reads sacct's "CANCELLED by <uid>" as still running.
    status = ["--slurm-status-command", "squeue"]
    result = snakemake(slurm_run, *SLURM, *status, SHARD, "--forcerun", SHARD)
    canceller.join()
    assert cancelled, "the shard's SLURM job never ran"
    assert result.returncode == 0, result.stderr[-5000:]
    log = result.stdout + result.stderr
    assert "Error in rule sweep_shard" in log and "Trying to restart job" in log
    kept = next((slurm_run / ".snakemake/slurm_logs").rglob(f"{cancelled[0]}.log"))
    assert f"JOB {cancelled[0]} ON" in kept.read_text() and "CANCELLED" in kept.read_text()
    retried = set(_jobs(slurm_run, "COMPLETED")) - before
    assert len(retried) == 1 and retried.isdisjoint(cancelled)
    pd.testing.assert_frame_equal(without_timings(slurm_run / SHARD), expected)


def test_the_cluster_script_is_idempotent(cluster):
    def daemons() -> str:
        return subprocess.run(
            ["pgrep", "-l", "-x", "munged|mariadbd|slurmdbd|slurmctld|slurmd"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    before = daemons()
    again = subprocess.run(["bash", str(CLUSTER_SCRIPT)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert daemons() == before
    assert " idle " in again.stdout
