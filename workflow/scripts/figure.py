"""Draw one of the paper's figures and write the numbers it plots (rule name = figure name)."""

import pandas as pd

from imprint.analysis.figures import collapse, fewshot, k_sweep, timing
from imprint.io import log_to, read_table, with_provenance, write_table

with log_to(snakemake.log[0]):
    name = snakemake.wildcards.get("figure", snakemake.rule)
    settings = snakemake.params.settings
    output = snakemake.output
    if "runs" in snakemake.input.keys():
        runs = pd.concat([read_table(p) for p in snakemake.input.runs], ignore_index=True)
    if name == "fig6":
        tables = {"csv": k_sweep.fig6(runs, output.pdf, output.grid, settings)}
    elif name == "fig10":
        tables = {"csv": fewshot.fig10(runs, output.pdf, settings)}
    elif name == "fig11b":
        tables = {"csv": collapse.fig11b(runs, output.pdf, settings)}
    elif name == "figA8":
        tables = {"csv": k_sweep.figA8(runs, output.pdf, settings)}
    elif name == "fig11a":
        nc = read_table(snakemake.input.collapse)
        tables = {"csv": collapse.fig11a(nc, output.pdf, settings["metric"])}
    elif name == "collapse_metrics":
        tables = {"csv": collapse.collapse_figure(read_table(snakemake.input.collapse), output.pdf)}
    elif name == "fig12":
        nc = read_table(snakemake.input.collapse)
        points, fit = collapse.fig12(runs, nc, output.pdf, settings["metric"])
        tables = {"csv": points, "fit": fit}
    elif name == "gen_time":
        times, summary = timing.gen_time(runs, output.pdf)
        tables = {"csv": times, "summary": summary}
    else:
        raise ValueError(f"no figure named {name!r}")
    for key, table in tables.items():
        print(f"{output[key]}:\n{table.to_string()}")
        write_table(with_provenance(table, {name: settings}), output[key])
