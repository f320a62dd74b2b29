"""Download (MD5-checked) and decode one split of a data set."""

from imprint.data import download, save_images
from imprint.io import log_to

with log_to(snakemake.log[0]):
    images, labels = download(
        snakemake.wildcards.dataset, snakemake.wildcards.split, snakemake.params.root
    )
    save_images(snakemake.output[0], images, labels)
    print(f"{len(labels)} images of shape {images.shape[1:]}")
