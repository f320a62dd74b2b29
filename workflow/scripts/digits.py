"""Write one split of scikit-learn's bundled digits as uint8 images."""

from imprint.fms.data import digits, save_images
from imprint.io import log_to

with log_to(snakemake.log[0]):
    images, labels = digits(snakemake.wildcards.split)
    save_images(snakemake.output[0], images, labels)
    print(f"{len(labels)} images of shape {images.shape[1:]}")
