"""The paper configuration plans every experiment, with and without ImageNet."""

from __future__ import annotations

import re
import subprocess

import pytest
import torch
import yaml

from tests.workflow_runs import (
    DEMO_SWEEP_JOBS,
    PAPER_SWEEP_JOBS_ON_CPU,
    PAPER_SWEEP_JOBS_WITHOUT_IMAGENET,
    ROOT,
    copy_workflow,
    snakemake,
)

pytestmark = pytest.mark.e2e  # every test plans the workflow with Snakemake


def _planned(output: str) -> dict[str, int]:
    """Job counts from a dry run's job stats table."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory) -> subprocess.CompletedProcess:
    """A dry run of the paper configuration without ImageNet, on 16 cores."""
    directory = copy_workflow(tmp_path_factory.mktemp("paper"))
    result = snakemake(directory, "-n", "--configfile", "config/paper.yaml", "--cores", "16")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize("imagenet", [False, True])
def test_dry_run_plans_every_experiment(tmp_path, imagenet, request):
    if imagenet:
        (tmp_path / "imagenet/train").mkdir(parents=True)
        (tmp_path / "imagenet/val").mkdir()
        imagenet_root = f"imagenet_root={tmp_path / 'imagenet'}"
        on_cpu = "sweep_device=cpu"  # the CPU's many jobs: a shard lost from a pack shows
        args = ["-n", "--configfile", "config/paper.yaml", "--config", imagenet_root, on_cpu]
        result = snakemake(copy_workflow(tmp_path), *args)
        assert result.returncode == 0, result.stderr[-3000:]
    else:
        result = request.getfixturevalue("paper_plan")
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    experiments = {
        name: e
        for name, e in config["experiments"].items()
        if imagenet or "imagenet" not in e["datasets"]
    }
    remaps = 100  # the one pattern imagenet_merge_d*_r* stands for 100 mappings
    shards = sum(
        len(e["fms"])
        * len(e["datasets"])
        * len(e["tasks"])
        * len(e["mappings"])
        * (remaps if "imagenet" in e["datasets"] else 1)
        for e in experiments.values()
    )
    planned = _planned(result.stdout)
    assert planned["download_data"] == 6  # one job per data set: its splits share files
    assert planned["gather_runs"] == len(experiments)
    # Small shards packed into jobs, the largest split into parts (imprint.study.cost).
    jobs = PAPER_SWEEP_JOBS_ON_CPU if imagenet else PAPER_SWEEP_JOBS_WITHOUT_IMAGENET
    assert planned["sweep_shard"] == jobs
    assert planned["sweep_shard"] < shards
    assert planned["nc1"] == 16 + (4 if imagenet else 0)  # one per FM, data set and split
    skipped = "ImageNet skipped" in result.stdout + result.stderr
    assert skipped != imagenet
    for name in experiments:
        assert f"results/runs/{name}.parquet" in result.stdout  # a final target each
        shares = "share_jobs_with" in experiments[name]  # its runs in the other's jobs
        assert (f"results/runs/{name}/pack1.parquet" in result.stdout) != shares, name
    figures = set(re.findall(r"results/figures/(\w+)\.pdf", result.stdout))
    assert len(figures) >= 9
    for figure in figures:  # declared, so a failed job leaves neither behind
        assert f"results/figures/{figure}.png" in result.stdout


def test_rule_graph_stays_readable(tmp_path):
    result = snakemake(copy_workflow(tmp_path), "--rulegraph", "--configfile", "config/paper.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    rules = set(re.findall(r'label = "(\w+)"', result.stdout))
    assert {"download_data", "embed", "sweep_shard", "gather_runs", "nc1", "figure"} <= rules
    assert len(rules) <= 16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a CUDA GPU")
def test_sweeps_on_cuda_without_a_gpu_stop_before_any_job(tmp_path):
    directory = copy_workflow(tmp_path)  # the paper's sweep_device, on the demo (quicker to plan)
    result = snakemake(directory, "--config", "sweep_device=cuda")
    assert result.returncode != 0
    assert "sweep_device is cuda, but PyTorch finds no CUDA GPU on this machine" in result.stderr
    assert "--config sweep_device=cpu" in result.stderr
    assert not (directory / "resources").exists() and not (directory / "results").exists()


def test_local_sweeps_on_cuda_share_one_gpu_and_cluster_sweeps_ask_for_one(tmp_path):
    """Here, sweep jobs take a `gpu_share` slot of the default profile (8 at once on one GPU)
    rather than the whole `gpu`; the SLURM and Kubernetes tests check the whole GPU there."""
    directory = copy_workflow(tmp_path)
    profile = yaml.safe_load((directory / "workflow/profiles/default/config.yaml").read_text())
    assert profile["resources"] == {"gpu": 1, "gpu_share": 8}
    result = snakemake(directory, "-n", "--config", "sweep_device=cuda")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = result.stdout.split("\nrule ")[1:]
    sweeps = [job for job in jobs if job.startswith("sweep_shard:")]
    assert len(sweeps) == DEMO_SWEEP_JOBS
    for job in sweeps:
        resources = re.search(r"resources: (.*)", job).group(1)
        assert "gpu_share=1" in resources and "gpu=" not in resources


def test_gen_time_runs_are_timed_on_the_cpu_with_eight_threads(paper_plan):
    """PAPER.md §D.8: the published GEN times come from CPU jobs with 8 torch threads; the paper
    configuration's gen_time experiments run so while its other sweeps stay on CUDA."""
    sweeps = [j for j in paper_plan.stdout.split("\nrule ")[1:] if j.startswith("sweep_shard:")]
    timed = [j for j in sweeps if "results/runs/gen_time_" in j]
    assert timed and len(timed) < len(sweeps)
    for job in sweeps:
        resources = re.search(r"resources: (.*)", job).group(1)
        threads = re.search(r"threads: (\d+)", job)
        if job in timed:
            assert threads and threads.group(1) == "8"
            assert "gpu" not in resources
        else:
            assert threads is None and "gpu_share=1" in resources
