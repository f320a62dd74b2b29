"""Faults: killed writes, jobs and workflows, and damaged embeddings, on copies of a finished run
(a failing download: test_data.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from imprint.io import atomic_path
from tests.workflow_runs import (
    copy_run,
    snakemake,
    without_timings,
)

SHARD = "results/runs/fig6/pack1.parquet"  # fig6 of every demo FM: one job


@pytest.fixture
def finished(workflow_run: Path, tmp_path: Path) -> Path:
    """A private copy of the finished embedded-default run."""
    return copy_run(workflow_run, tmp_path / "run")


def test_a_write_killed_midway_leaves_the_old_file_or_none(tmp_path):
    target = tmp_path / "table.parquet"
    target.write_bytes(b"complete")
    code = (
        "import os, signal, sys\n"
        "from imprint.io import atomic_path\n"
        "with atomic_path(sys.argv[1]) as temporary:\n"
        "    temporary.write_bytes(b'half of a')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    for path, before in ((target, b"complete"), (tmp_path / "new.parquet", None)):
        killed = subprocess.run([sys.executable, "-c", code, str(path)], check=False)
        assert killed.returncode == -signal.SIGKILL
        assert (path.read_bytes() if path.exists() else None) == before
    assert len(list(tmp_path.glob(".table.parquet.*"))) == 1  # the killed write's temporary
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"rewritten")
    assert target.read_bytes() == b"rewritten"
    assert not list(tmp_path.glob(".table.parquet.*"))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="watches processes in /proc")
def test_a_job_started_without_its_snakemake_stops_and_other_programs_go_on(tmp_path):
    code = "from imprint.io import stop_with_snakemake\nstop_with_snakemake()\nprint('went on')\n"
    for folder, stops in ((tmp_path / ".snakemake/scripts", True), (tmp_path / "plain", False)):
        folder.mkdir(parents=True)
        (folder / "job.py").write_text(code)
        result = subprocess.run(
            [sys.executable, str(folder / "job.py")], capture_output=True, text=True, check=False
        )
        assert (result.returncode, "went on" in result.stdout) == (
            (1, False) if stops else (0, True)
        )


def _script_processes(directory: Path, script: str) -> list[int]:
    """PIDs of the job processes running ``script`` in ``directory``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            cwd = os.readlink(proc / "cwd")
        except (OSError, ValueError):
            continue
        if script.encode() in cmdline and Path(cwd) == directory:
            pids.append(int(proc.name))
    return pids


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the job's process in /proc")
def test_a_killed_job_leaves_no_output_and_rerunning_it_gives_the_same_table(finished):
    """A sweep job killed midway leaves nothing accepted; rerunning it gives the shared run's
    table, all but the timings. That every GEN, NORM, AGG and baseline sweeps the same in a
    fresh process is tested on its own (``tests/test_sweep.py``); the S3 and SLURM runs make
    fewshot's table again."""
    expected = without_timings(finished / SHARD)
    driver = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", SHARD, "--forcerun", SHARD],
        cwd=finished, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (pids := _script_processes(finished, "sweep_shard.py")):
        assert driver.poll() is None and time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode != 0
    assert "Error in rule sweep_shard" in output
    assert not (finished / SHARD).exists()

    rerun = snakemake(finished, SHARD)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stderr.count("rule sweep_shard:") == 1  # the killed job only
    pd.testing.assert_frame_equal(without_timings(finished / SHARD), expected, check_exact=True)


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the job's process in /proc")
def test_a_killed_workflow_leaves_no_job_running_and_a_rerun_completes(finished):
    embeddings = "results/embeddings/demo_cnn/digits/train.npy"
    expected = (finished / embeddings).read_bytes()
    driver = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", embeddings, "--forcerun", embeddings],
        cwd=finished, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not _script_processes(finished, "embed.py"):
        assert driver.poll() is None and time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    driver.kill()  # Snakemake itself, as a closed terminal or an OOM killer would
    driver.wait()
    # The job notices once its script has imported torch and Lightning (about 12 s alone, over
    # 30 s on two cores shared with the suite's other workers) and stops before it writes.
    deadline = time.monotonic() + 120
    while _script_processes(finished, "embed.py"):
        assert time.monotonic() < deadline, "the job outlived the workflow"
        time.sleep(0.2)
    assert not (finished / embeddings).exists()  # stopped before it wrote anything

    assert snakemake(finished, "--unlock").returncode == 0
    rerun = snakemake(finished, embeddings)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (finished / embeddings).read_bytes() == expected


@pytest.mark.e2e
def test_damaged_embeddings_stop_the_shard_and_the_advice_regenerates_them(finished):
    expected = without_timings(finished / SHARD)
    embeddings = "results/embeddings/demo_cnn/digits/test.npy"
    data = bytearray((finished / embeddings).read_bytes())
    data[-5] ^= 0xFF
    (finished / embeddings).write_bytes(bytes(data))

    failed = snakemake(finished, SHARD)
    assert failed.returncode != 0
    log = (finished / "logs/imprint/fig6/pack1.log").read_text()
    assert "does not match the SHA-256 digest in its manifest" in log
    advice = f"snakemake --forcerun {embeddings}"
    assert advice in log

    fixed = snakemake(finished, SHARD, "--forcerun", embeddings)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    pd.testing.assert_frame_equal(without_timings(finished / SHARD), expected)
