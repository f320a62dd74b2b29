"""Table 1: the named methods' components, average accuracy and average rank in their pool."""

import pandas as pd

from imprint.analysis.tables import table1, table1_markdown
from imprint.io import atomic_path, log_to, read_table, with_provenance, write_table

with log_to(snakemake.log[0]):
    runs = pd.concat([read_table(path) for path in snakemake.input], ignore_index=True)
    settings = snakemake.params.settings
    table = table1(runs, snakemake.params.view, settings.get("extra", []))
    print(table.to_string())
    write_table(with_provenance(table, settings), snakemake.output.csv)
    for path, text in (
        (snakemake.output.md, table1_markdown(table, snakemake.params.view)),
        (snakemake.output.tex, table.drop(columns=["in_paper", "pool"]).to_latex(index=False)),
    ):
        with atomic_path(path) as temporary:
            temporary.write_text(text + "\n")
