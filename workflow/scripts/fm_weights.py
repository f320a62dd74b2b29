"""Fetch an FM's library weights once, so compute nodes need no internet."""

from imprint.fms.backbones import fetch_weights
from imprint.fms.fm_spec import FMSpec
from imprint.io import log_to

with log_to(snakemake.log[0]):
    spec = FMSpec(**snakemake.params.fm)
    print(f"storing {spec.source} weights {spec.weights} of {spec.model}")
    fetch_weights(spec, snakemake.output[0])
