"""Concatenate tables (Parquet or CSV, by suffix) into one."""

import pandas as pd

from imprint.io import log_to, read_table, write_table

with log_to(snakemake.log[0]):
    table = pd.concat([read_table(path) for path in snakemake.input], ignore_index=True)
    write_table(table, snakemake.output[0])
    print(f"{len(table)} rows from {len(snakemake.input)} files")
