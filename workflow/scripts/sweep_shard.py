"""Run every configuration of a pack of sweep shards (whole shards, or one part of a split
one) and write their tidy Parquet table."""

import torch

from imprint.io import log_to, write_table
from imprint.study.experiments import run_pack

torch.set_num_threads(snakemake.threads)  # the CPUs the scheduler gave this job, no more
with log_to(snakemake.log[0]):
    w = snakemake.wildcards
    table = run_pack(
        w.experiment,
        snakemake.params.experiment,
        w.fm,
        snakemake.params.lambda_reg,
        w.dataset,
        snakemake.params.members,
        train_files=snakemake.input.train,
        test_files=snakemake.input.test,
        device=snakemake.params.device,
    )
    write_table(table, snakemake.output[0])
