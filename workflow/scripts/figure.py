"""Draw one of the paper's figures and write the numbers it plots (rule name = figure name)."""

import pandas as pd

from imprint import plots
from imprint.io import log_to, read_table, with_provenance, write_table

with log_to(snakemake.log[0]):
    name = snakemake.wildcards.get("figure", snakemake.rule)
    settings = snakemake.params.settings
    output = snakemake.output
    if "runs" in snakemake.input.keys():
        runs = pd.concat([read_table(p) for p in snakemake.input.runs], ignore_index=True)
    if name == "fig6":
        tables = {"csv": plots.fig6(runs, output.pdf, output.grid, settings)}
    elif name in ("fig10", "fig11b"):
        tables = {"csv": getattr(plots, name)(runs, output.pdf, settings)}
    elif name == "figA8":
        tables = {"csv": plots.figA8(runs, output.pdf)}
    elif name == "fig11a":
        collapse = read_table(snakemake.input.collapse)
        tables = {"csv": plots.fig11a(collapse, output.pdf, settings["metric"])}
    elif name == "collapse_metrics":
        tables = {"csv": plots.collapse_figure(read_table(snakemake.input.collapse), output.pdf)}
    elif name == "fig12":
        collapse = read_table(snakemake.input.collapse)
        points, fit = plots.fig12(runs, collapse, output.pdf, settings["metric"])
        tables = {"csv": points, "fit": fit}
    elif name == "gen_time":
        times, summary = plots.gen_time(runs, output.pdf)
        tables = {"csv": times, "summary": summary}
    else:
        raise ValueError(f"no figure named {name!r}")
    for key, table in tables.items():
        print(f"{output[key]}:\n{table.to_string()}")
        write_table(with_provenance(table, {name: settings}), output[key])
