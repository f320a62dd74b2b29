"""Draw one of the paper's figures from the results tables."""

from pathlib import Path

import pandas as pd

from imprint import plots
from imprint.io import log_to, read_table, with_provenance, write_table

with log_to(snakemake.log[0]):
    name = Path(snakemake.output[0]).stem
    if name in ("fig11a", "collapse_metrics"):
        draw = plots.fig11a if name == "fig11a" else plots.collapse_figure
        draw(read_table(snakemake.input[0]), snakemake.output[0])
    else:
        runs = pd.concat([read_table(p) for p in snakemake.input.runs], ignore_index=True)
        if name == "fig12":
            collapse = read_table(snakemake.input.collapse)
            correlations = plots.fig12(runs, collapse, snakemake.output[0])
            print(correlations.to_string())
            settings = {"fig12": list(snakemake.input.runs)}
            write_table(with_provenance(correlations, settings), snakemake.output.correlations)
        else:
            getattr(plots, name)(runs, snakemake.output[0])
