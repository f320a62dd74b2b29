"""Imprint one kept classifier on its task's whole training set and save it with its FM and its
test accuracy (``imprint.deploy.keep``)."""

from imprint.deploy.keep import keep_classifier
from imprint.fms.fm_spec import FMSpec
from imprint.io import log_to

with log_to(snakemake.log[0]):
    keep_classifier(
        snakemake.params.entry,
        snakemake.params.lambda_reg,
        snakemake.input.train,
        snakemake.input.test,
        FMSpec(**snakemake.params.fm),
        snakemake.input.get("weights"),
        snakemake.params.label_table,
        snakemake.output.model,
        snakemake.output.info,
        snakemake.params.class_names,
    )
