"""Table 1: the named methods' components, average accuracy and average rank."""

import pandas as pd

from imprint.io import atomic_path, log_to, read_table, with_provenance, write_table
from imprint.plots import table1
from imprint.stats import median_table, summarise

with log_to(snakemake.log[0]):
    runs = pd.concat([read_table(path) for path in snakemake.input], ignore_index=True)
    summary, _ = summarise(median_table(runs))
    table = table1(summary, runs)
    print(table.to_string())
    write_table(with_provenance(table, {"table1": snakemake.input[0]}), snakemake.output.csv)
    for path, text in (
        (snakemake.output.md, table.to_markdown(index=False)),
        (snakemake.output.tex, table.to_latex(index=False)),
    ):
        with atomic_path(path) as temporary:
            temporary.write_text(text + "\n")
