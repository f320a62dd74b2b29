"""Run every configuration of one sweep shard (or of one part of it) and write its tidy
Parquet table."""

import torch

from imprint.io import log_to, write_table
from imprint.study.experiments import run_shard

torch.set_num_threads(snakemake.threads)  # the CPUs the scheduler gave this job, no more
with log_to(snakemake.log[0]):
    w = snakemake.wildcards
    table = run_shard(
        w.experiment,
        snakemake.params.experiment,
        w.fm,
        snakemake.params.lambda_reg,
        w.dataset,
        w.mapping,
        w.task,
        train_files=snakemake.input.train,
        test_files=snakemake.input.test,
        device=snakemake.params.device,
        part=snakemake.params.part,
        label_table=snakemake.params.label_table,
    )
    write_table(table, snakemake.output[0])
