"""Average ranks, Friedman and post-hoc tests, and the CD diagram of one view of an experiment."""

import pandas as pd

from imprint.config import as_list
from imprint.io import log_to, read_table, with_provenance, write_table
from imprint.plots import cd_diagram
from imprint.stats import best_per_component, median_table, summarise

with log_to(snakemake.log[0]):
    view = snakemake.params.view
    runs = pd.concat([read_table(path) for path in snakemake.input], ignore_index=True)
    component = view.get("component")
    medians = best_per_component(runs, component) if component else median_table(runs)
    summary, pvalues = summarise(medians, snakemake.params.posthoc)
    print(summary.to_string())
    settings = {**view, "posthoc": snakemake.params.posthoc}
    write_table(with_provenance(summary, settings), snakemake.output.ranks)
    write_table(
        with_provenance(pvalues.reset_index(names="config"), settings), snakemake.output.pvalues
    )
    title = ", ".join(as_list(view["experiment"]))
    title += f": best per {component}" if component else ": all"
    title += f" ({snakemake.params.posthoc}, α = {snakemake.params.alpha}, {len(medians)} groups)"
    cd_diagram(summary, pvalues, title, snakemake.output.figure, snakemake.params.alpha)
