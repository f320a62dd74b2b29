"""Run every configuration of a pack of sweep shards (whole shards, or one part of a split
one) and write their tidy Parquet table."""

import os

# A one-thread job's idle OpenMP threads (numba's kernels keep a pool) sleep instead of spinning:
# spinning, they took the CPU of the job beside it (the demo's `named` probes 3× slower next to
# `sec51`). Set before PyTorch and numba load their OpenMP runtimes.
if snakemake.threads == 1:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from imprint.io import log_to, write_table
from imprint.study.sweep_job import run_pack

torch.set_num_threads(snakemake.threads)  # the CPUs the scheduler gave this job, no more
with log_to(snakemake.log[0]):
    files = {
        (m["fm"], m["dataset"]): tuple(
            snakemake.input[f"{split}_{m['fm']}_{m['dataset']}"] for split in ("train", "test")
        )
        for m in snakemake.params.members
    }
    table = run_pack(
        snakemake.wildcards.experiment,
        snakemake.params.experiment,
        snakemake.params.members,
        files,
        device=snakemake.params.device,
    )
    write_table(table, snakemake.output[0])
