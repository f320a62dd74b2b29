"""The Kubernetes path, checked offline: the profile and the Containerfile, a dry run with the
profile, and the whole workflow on S3-compatible default storage (a loopback moto server)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml
from moto.server import ThreadedMotoServer

from tests.workflow_runs import (
    DEMO_JOBS,
    PAPER_SWEEP_JOBS_WITHOUT_IMAGENET,
    ROOT,
    SUBSET,
    SUBSET_EXPERIMENTS,
    SUBSET_FIGURES,
    copy_workflow,
    planned_jobs,
    snakemake,
    without_timings,
)

pytestmark = pytest.mark.e2e

PROFILE = ROOT / "workflow/profiles/kubernetes/config.yaml"
BUCKET, PREFIX = "imprint-ci", "run"
SEEDED = "seeded"  # the prefix of the run seeded with the shared run's files
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3():
    """A loopback S3 server with an empty bucket; yields (endpoint URL, boto3 client)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


def _storage_args(endpoint: str, prefix: str = PREFIX) -> list[str]:
    return [
        "--default-storage-prefix", f"s3://{BUCKET}/{prefix}",
        "--storage-s3-endpoint-url", endpoint,
        "--storage-s3-access-key", KEYS["aws_access_key_id"],
        "--storage-s3-secret-key", KEYS["aws_secret_access_key"],
    ]  # fmt: skip


def test_the_profile_names_namespace_image_and_s3_storage():
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "kubernetes"
    assert profile["default-storage-provider"] == "s3"
    assert profile["default-storage-prefix"].startswith("s3://")
    assert profile["kubernetes-namespace"] and profile["container-image"].endswith(":0.1.0")
    assert profile["retries"] >= 1


def test_the_image_holds_the_package_its_pins_and_the_workflow():
    containerfile = (ROOT / "Containerfile").read_text()
    assert re.search(r"^FROM \S*python:3\.11", containerfile, re.MULTILINE)
    copied = re.findall(r"^COPY (.+) \S+$", containerfile, re.MULTILINE)
    sources = {s.rstrip("/") for line in copied for s in line.split()}
    assert {"pyproject.toml", "src", "workflow", "config", "envs"} <= sources
    assert 'pip install ".[workflow]"' in containerfile  # the pins of pyproject.toml


def test_the_kubernetes_profile_plans_the_whole_workflow_on_s3(tmp_path, s3):
    endpoint, _ = s3
    directory = copy_workflow(tmp_path)
    planned = snakemake(
        directory, "--workflow-profile", "workflow/profiles/kubernetes", "-n",
        *_storage_args(endpoint),
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert planned_jobs(planned.stdout) == DEMO_JOBS
    assert f"s3://{BUCKET}/{PREFIX}/results/tables/table1.csv" in planned.stdout


def _seed(client, workflow_run: Path, prefix: str, *missing: str) -> None:
    """The shared run's data, models and embeddings (but ``missing``) put in the bucket, each
    stage a second after the one it is made from (so that nothing looks newer than its
    outputs)."""
    for stage in ("resources/data", "resources/models", "results/embeddings"):
        for path in sorted((workflow_run / stage).rglob("*")):
            name = path.relative_to(workflow_run).as_posix()
            if path.is_file() and not name.startswith(missing):
                client.upload_file(str(path), BUCKET, f"{prefix}/{name}")
        time.sleep(1.1)


def _submitted(directory: Path, endpoint: str, record: Path, *args: str) -> list[dict]:
    """The Kubernetes Jobs the executor builds for a run of the paper config, from a recorder in
    place of the API (``tests.kubernetes_recorder``); each job's rule and its container."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.kubernetes_recorder", str(record), endpoint,
         "--workflow-profile", "workflow/profiles/kubernetes", "--configfile", "config/paper.yaml",
         *_storage_args(endpoint, "pods"), "--seconds-between-status-checks", "0", *args],
        cwd=directory, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = []
    for line in record.read_text().splitlines():
        pod = json.loads(line)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        target = re.search(r"--target-jobs '(\w+):([^']*)'", container["args"][1])
        jobs.append({"rule": target[1], "wildcards": target[2], "container": container,
                     "tolerations": pod.get("tolerations")})  # fmt: skip
    record.unlink()
    return jobs


def _made(client, paths: list[str]) -> None:
    """Empty stand-ins for outputs, as if their jobs had run."""
    for path in paths:
        client.put_object(Bucket=BUCKET, Key=f"pods/{path}", Body=b"")
    time.sleep(1.1)  # the jobs after them see them as older than their own outputs


def test_pod_specs_of_every_job_of_the_paper_config(tmp_path, s3):
    """GPU jobs ask for nvidia.com/gpu and tolerate GPU nodes, CPU jobs neither; every pod asks
    for its rule's memory and CPUs."""
    endpoint, client = s3
    directory = copy_workflow(tmp_path / "workflow")
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    datasets = ["mnist", "fashionmnist", "cifar10", "mnistm", "usps", "svhn"]
    _made(client, [f"resources/data/{d}/{s}.npz" for d in datasets for s in ("train", "test")])
    _made(client, [f"resources/models/{fm}.pth" for fm in config["fms"]])
    record = tmp_path / "jobs.jsonl"
    compute = _submitted(directory, endpoint, record, "--until", "sweep_shard", "nc1")
    experiments = [
        e for e, spec in config["experiments"].items() if "imagenet" not in spec["datasets"]
    ]
    assert Counter(j["rule"] for j in compute) == {
        "embed": 24, "sweep_shard": PAPER_SWEEP_JOBS_WITHOUT_IMAGENET, "nc1": 16
    }  # fmt: skip
    _made(client, [f"results/runs/{e}.parquet" for e in experiments] + ["results/tables/nc1.csv"])
    report = _submitted(directory, endpoint, record)
    assert Counter(j["rule"] for j in report) == {
        "cd_diagram": 5, "figure": 2, "fig6": 1, "collapse_figure": 2, "fig12": 1, "table1": 1,
        "gen_time": 1, "paper_comparison": 1,
    }  # fmt: skip
    # The GEN-time experiments' sweeps run on the CPU (as the paper timed them): CPU sweep pods.
    assert any("experiment=gen_time_" in j["wildcards"] for j in compute)
    for job in compute + report:
        requests = job["container"]["resources"]["requests"]
        timed = "experiment=gen_time_" in job["wildcards"]
        gpu = job in compute and job["rule"] in ("embed", "sweep_shard") and not timed
        assert ("nvidia.com/gpu" in requests) == gpu, job["rule"]
        if gpu:
            assert requests["nvidia.com/gpu"] == "1"
            assert [t["key"] for t in job["tolerations"]] == ["nvidia.com/gpu"]
        else:
            assert not job["tolerations"], job["rule"]
        memory = {"embed": "32000M", "sweep_shard": "16000M"}.get(job["rule"])
        assert requests["memory"] == memory or (memory is None and requests["memory"]), job
        if timed:  # 8 threads, of which the executor requests 95 %
            cpu = requests["cpu"]
            assert (float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)) >= 7.5, job


# Last in the module: it reads the shared demo run, which another pytest-xdist worker may still be
# making when the module starts (tests/conftest.py's GROUPS).
def test_the_workflow_on_s3_storage_gives_the_results_of_a_local_run(
    tmp_path, s3, workflow_run: Path
):
    """From the shared run's files in the bucket, one FM's embeddings missing: its embedding,
    every NC1, the subset's sweeps and figures run on S3 storage."""
    endpoint, client = s3
    _seed(client, workflow_run, SEEDED, "results/embeddings/demo_narrow/")
    directory = copy_workflow(tmp_path / "run")
    # The targets first: each --storage-s3-* option takes every value after it.
    result = snakemake(
        directory, *SUBSET, "--default-storage-provider", "s3", *_storage_args(endpoint, SEEDED)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ran = re.findall(r"^(?:local)?rule (\w+):", result.stderr, re.MULTILINE)
    assert Counter(ran) == {"embed": 1, "nc1": 3, "sweep_shard": 2, "gather_runs": 2,
                            "nc1_table": 1, "collapse_figure": 1, "fig6": 1}  # fmt: skip
    assert not (directory / "results").exists()  # every output went to the bucket
    for name in SUBSET_EXPERIMENTS:
        fetched = tmp_path / f"{name}.parquet"
        client.download_file(BUCKET, f"{SEEDED}/results/runs/{name}.parquet", str(fetched))
        local = workflow_run / f"results/runs/{name}.parquet"
        pd.testing.assert_frame_equal(without_timings(fetched), without_timings(local))
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{SEEDED}/results/figures/")
    figures = {Path(o["Key"]).name for o in listed["Contents"]}
    assert {f"{name}.pdf" for name in SUBSET_FIGURES} <= figures
