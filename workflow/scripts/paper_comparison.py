"""The published numbers (config `published`) beside the reproduced ones."""

from pathlib import Path

from imprint.analysis.tables import paper_comparison
from imprint.io import atomic_path, log_to, read_table, write_table

with log_to(snakemake.log[0]):
    tables = {Path(path).stem: read_table(path) for path in snakemake.input}
    comparison = paper_comparison(snakemake.params.published, tables)
    print(comparison.to_string())
    write_table(comparison, snakemake.output.csv)
    with atomic_path(snakemake.output.md) as temporary:
        temporary.write_text(comparison.round(4).to_markdown(index=False) + "\n")
