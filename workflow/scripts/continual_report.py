"""The class-incremental study's table and figure (``imprint.analysis.continual``)."""

from imprint.analysis.continual import continual_figure, continual_markdown, continual_table
from imprint.analysis.figures.common import save_figure
from imprint.io import atomic_path, log_to, read_table, with_provenance, write_table

with log_to(snakemake.log[0]):
    runs = read_table(snakemake.input[0])
    table = continual_table(runs)
    print(table.to_string())
    write_table(with_provenance(table, snakemake.params.study), snakemake.output.csv)
    with atomic_path(snakemake.output.md) as temporary:
        temporary.write_text(continual_markdown(table) + "\n")
    save_figure(continual_figure(runs), snakemake.output.pdf)
