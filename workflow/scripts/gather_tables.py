"""Concatenate tables (Parquet or CSV, by suffix) into one; with ``params.rows`` ({column:
value}), only the rows that hold those values; with ``params.order`` (``columns`` and ``rows``
of their values), rows in that order."""

import pandas as pd

from imprint.io import log_to, read_table, write_table

with log_to(snakemake.log[0]):
    table = pd.concat([read_table(path) for path in snakemake.input], ignore_index=True)
    if "rows" in snakemake.params.keys():
        for column, value in snakemake.params.rows.items():
            table = table[table[column] == value].reset_index(drop=True)
    if "order" in snakemake.params.keys():
        columns, rows = snakemake.params.order["columns"], snakemake.params.order["rows"]
        position = {tuple(row): i for i, row in enumerate(rows)}
        keys = table[columns].itertuples(index=False, name=None)
        table = table.assign(_order=[position[key] for key in keys])
        table = table.sort_values("_order", kind="stable", ignore_index=True).drop(columns="_order")
    write_table(table, snakemake.output[0])
    print(f"{len(table)} rows from {len(snakemake.input)} files")
