"""Download an FM's ImageNet-1k V1 weights once, so compute nodes need no internet."""

from imprint.backbones import download_weights, weights_url
from imprint.io import log_to

with log_to(snakemake.log[0]):
    url = weights_url(snakemake.wildcards.fm)
    print(f"downloading {url}")
    download_weights(url, snakemake.output[0])
