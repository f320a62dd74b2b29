"""What the SLURM profile asks of a cluster, with `sbatch` replaced by a recorder (no cluster):
sweep shards on CUDA go to the GPU partition with one GPU per job, on the CPU to the CPU
partition with none, and a group of shards never multiplies GPUs or exceeds its memory pool."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.workflow_runs import copy_run

pytestmark = pytest.mark.e2e

# Stand-ins for the SLURM commands the executor calls: sbatch records its arguments and answers
# with a job id, the account look-ups name the account, status queries know no job.
FAKE_COMMANDS = {
    "sbatch": 'echo "$*" >> "$SBATCH_RECORD"; echo $((1000 + $(wc -l < "$SBATCH_RECORD")))',
    "sacctmgr": "echo imprint",
    "sshare": "echo imprint",
    "squeue": "true",
    "sacct": "true",
    "sinfo": "true",
    "scontrol": "true",
}
SWEEPS = 5  # the embedded default's sweep jobs: each experiment's shards packed into one
JOBS = -(-SWEEPS // 10)  # in groups of up to 10


@pytest.fixture
def finished(workflow_run, tmp_path) -> Path:
    """A copy of the finished embedded default, its partition placeholders filled in, and a
    folder of fake SLURM commands."""
    directory = copy_run(workflow_run, tmp_path / "run")
    partitions = directory / "workflow/profiles/slurm/partitions.yaml"
    text = partitions.read_text().replace("<cpu-partition>", "cpu")
    partitions.write_text(text.replace("<gpu-partition>", "gpu"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKE_COMMANDS.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return directory


def _sbatch_calls(directory: Path, *args: str) -> list[str]:
    """The sbatch calls of rerunning every sweep shard under the SLURM profile."""
    record = directory.parent / "sbatch.txt"
    record.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PATH": f"{directory.parent / 'bin'}:{os.environ['PATH']}",
        "SBATCH_RECORD": str(record),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--workflow-profile", "workflow/profiles/slurm",
         "--default-resources", "slurm_account=imprint", "--forcerun", "sweep_shard",
         "--rerun-triggers", "mtime", *args],
        cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if record.exists() and len(record.read_text().splitlines()) >= JOBS:
            break
        time.sleep(0.5)
    process.kill()
    output = process.communicate()[0]
    assert record.exists(), output[-3000:]
    return [line.split("--wrap")[0] for line in record.read_text().splitlines()]


def _option(call: str, name: str) -> str | None:
    match = re.search(rf"(?:^| ){re.escape(name)}[ =](\S+)", call)
    return match[1].strip("'") if match else None


def test_shards_on_cuda_go_to_the_gpu_partition_one_gpu_per_job(finished):
    calls = _sbatch_calls(finished, "--config", "sweep_device=cuda")
    assert len(calls) == JOBS
    for call in calls:
        assert "sweeps_sweep_shard" in call
        assert _option(call, "-p") == "gpu"
        assert _option(call, "--gpus") == "1"  # not one per shard of the group
        assert int(_option(call, "--mem")) == 16000  # one shard at a time on the GPU


def test_shards_on_cpu_go_to_the_cpu_partition_without_gpus(finished):
    calls = _sbatch_calls(finished)
    assert len(calls) == JOBS
    for call in calls:
        assert _option(call, "-p") == "cpu"
        assert _option(call, "--gpus") is None
        assert int(_option(call, "--mem")) <= 64000  # the per-job pool
        assert int(_option(call, "--cpus-per-task")) <= 4
    assert max(int(_option(call, "--mem")) for call in calls) == 64000  # 4 shards side by side
