"""Draw one of the paper's figures from the results tables."""

from pathlib import Path

import pandas as pd

from imprint import plots
from imprint.io import log_to, read_table

with log_to(snakemake.log[0]):
    name = Path(snakemake.output[0]).stem
    if name == "fig11a":
        plots.fig11a(read_table(snakemake.input[0]), snakemake.output[0])
    else:
        runs = pd.concat([read_table(p) for p in snakemake.input.runs], ignore_index=True)
        if name == "fig12":
            plots.fig12(runs, read_table(snakemake.input.collapse), snakemake.output[0])
        else:
            getattr(plots, name)(runs, snakemake.output[0])
