"""Draw one of the paper's figures and write the numbers it plots (rule name = figure name;
the figures by name: ``imprint.analysis.figures.registry``)."""

import pandas as pd

from imprint.analysis.figures.registry import Inputs, draw
from imprint.io import log_to, read_table, with_provenance, write_table

with log_to(snakemake.log[0]):
    name = snakemake.wildcards.get("figure", snakemake.rule)
    settings = snakemake.params.settings
    output = snakemake.output
    given = snakemake.input.keys()
    inputs = Inputs(
        runs=pd.concat([read_table(p) for p in snakemake.input.runs], ignore_index=True)
        if "runs" in given
        else None,
        collapse=read_table(snakemake.input.collapse) if "collapse" in given else None,
    )
    tables = draw(name, inputs, {key: output[key] for key in output.keys()}, settings)
    for key, table in tables.items():
        print(f"{output[key]}:\n{table.to_string()}")
        write_table(with_provenance(table, {name: settings}), output[key])
