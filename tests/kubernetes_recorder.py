"""Snakemake with the Kubernetes executor, its API client replaced by a recorder (no cluster).

    python -m tests.kubernetes_recorder RECORD.jsonl ENDPOINT SNAKEMAKE-ARGS...

Every Kubernetes Job the executor submits is appended to RECORD.jsonl as the API would have
received it, and reported as succeeded; its outputs are left in the S3 storage at ENDPOINT, empty,
as if its pod had made them, so that the jobs after it are submitted too.
"""

from __future__ import annotations

import json
import sys
from unittest import mock

import boto3
import kubernetes
from kubernetes.client import V1Job, V1JobStatus, V1PodList
from snakemake.cli import main
from snakemake_executor_plugin_kubernetes import Executor


def run(record: str, endpoint: str, args: list[str]) -> int:
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    submit = Executor.run_job

    def create_job(api, namespace, body):
        with open(record, "a") as handle:
            handle.write(json.dumps(api.api_client.sanitize_for_serialization(body)) + "\n")
        return body

    def run_job(executor, job):
        submit(executor, job)
        for output in job.output:
            bucket, key = output.storage_object.query.removeprefix("s3://").split("/", 1)
            s3.put_object(Bucket=bucket, Key=key, Body=b"")

    def nothing(*args, **kwargs):
        return None

    core, batch = kubernetes.client.CoreV1Api, kubernetes.client.BatchV1Api
    patches = [
        mock.patch.object(kubernetes.config, "load_kube_config", nothing),
        mock.patch.object(core, "create_namespaced_secret", nothing),
        mock.patch.object(core, "delete_namespaced_secret", nothing),
        mock.patch.object(core, "list_namespaced_pod", lambda *a, **k: V1PodList(items=[])),
        mock.patch.object(batch, "create_namespaced_job", create_job),
        mock.patch.object(batch, "delete_namespaced_job", nothing),
        mock.patch.object(
            batch,
            "read_namespaced_job_status",
            lambda *a, **k: V1Job(status=V1JobStatus(succeeded=1)),
        ),
        mock.patch.object(Executor, "run_job", run_job),
    ]
    for patch in patches:
        patch.start()
    return main(args)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2], sys.argv[3:]))
