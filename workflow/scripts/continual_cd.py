"""The class-incremental study's CD diagram: its methods ranked by average incremental accuracy
within each (data set, FM, class order), the Friedman and post-hoc tests
(``imprint.analysis.continual.continual_voters``, ``imprint.analysis.stats``)."""

from imprint.analysis.cd_diagram import draw_cd_diagram
from imprint.analysis.continual import continual_voters
from imprint.analysis.figures.common import save_figure
from imprint.analysis.stats import critical_difference
from imprint.io import log_to, read_table, with_provenance, write_table

with log_to(snakemake.log[0]):
    alpha, posthoc = snakemake.params.alpha, snakemake.params.posthoc
    voters = continual_voters(read_table(snakemake.input[0]))
    cd = critical_difference(voters, alpha, posthoc)
    print(voters.to_string())
    print(cd.ranks.to_string())
    print(cd.pairs.to_string())
    settings = {"study": snakemake.params.study, "posthoc": posthoc, "alpha": alpha}
    write_table(with_provenance(cd.pairs, settings), snakemake.output.pvalues)
    title = f"class-incremental, average incremental accuracy: {posthoc}, α = {alpha}"
    save_figure(draw_cd_diagram(cd, title), snakemake.output.figure)
