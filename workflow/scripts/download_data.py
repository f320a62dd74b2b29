"""Download (MD5-checked) and decode both splits of a data set."""

from imprint.fms.data import SPLITS, download, save_images
from imprint.io import log_to

with log_to(snakemake.log[0]):
    for split in SPLITS:
        images, labels = download(snakemake.wildcards.dataset, split, snakemake.params.root)
        save_images(snakemake.output[split], images, labels)
        print(f"{split}: {len(labels)} images of shape {images.shape[1:]}")
