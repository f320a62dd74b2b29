"""One class-incremental study of the config's ``continual`` section
(``imprint.study.continual.study_runs``): one row per FM, data set, class order, method and
step."""

from imprint.fms.store import load_embeddings
from imprint.io import log_to, with_provenance, write_table
from imprint.study.continual import study_runs

with log_to(snakemake.log[0]):
    study = snakemake.params.study
    runs = study_runs(
        study,
        lambda fm, dataset, split: load_embeddings(snakemake.input[f"{fm}.{dataset}.{split}"]),
        snakemake.params.lambda_regs,
    )
    write_table(with_provenance(runs, study), snakemake.output[0])
