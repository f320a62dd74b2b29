"""One CD view: its methods' average ranks (over the slice's pool), the Friedman and post-hoc
tests, and the diagram."""

import pandas as pd

from imprint.analysis.cd_diagram import draw_cd_diagram
from imprint.analysis.figures.common import save_figure
from imprint.analysis.stats import critical_difference, view_medians, view_methods, voter_table
from imprint.io import log_to, read_table, with_provenance, write_table

with log_to(snakemake.log[0]):
    view, alpha = snakemake.params.view, snakemake.params.alpha
    runs = pd.concat([read_table(path) for path in snakemake.input], ignore_index=True)
    pool = view_medians(runs, view)
    methods = view_methods(pool, view)
    voters = voter_table(pool, methods)
    cd = critical_difference(voters, alpha, snakemake.params.posthoc)
    wins = (voters.rank(axis=1, ascending=False) == 1).sum()
    ranks = methods.assign(cd_rank=methods["name"].map(cd.ranks), wins=methods["name"].map(wins))
    ranks["friedman_chi2"], ranks["friedman_p"] = cd.friedman_statistic, cd.friedman_p
    print(f"pool: {pool['config'].nunique()} configurations over {len(voters)} shared groups")
    print(ranks[["name", "config", "average_rank", "average_accuracy", "cd_rank"]].to_string())
    print(cd.pairs.to_string())
    settings = {**view, "posthoc": snakemake.params.posthoc, "alpha": alpha}
    write_table(with_provenance(ranks, settings), snakemake.output.ranks)
    write_table(with_provenance(cd.pairs, settings), snakemake.output.pvalues)
    title = f"{snakemake.wildcards.view}: {snakemake.params.posthoc}, α = {alpha}"
    save_figure(draw_cd_diagram(cd, title), snakemake.output.figure)
