"""Embed one data set split with a frozen FM through Lightning's Trainer.predict."""

from dataclasses import replace

from imprint.backbones import load_fm
from imprint.data import imagenet
from imprint.embed import ImageArrayDataModule, ImageFolderDataModule, embed_images
from imprint.io import log_to
from imprint.tasks import imagenet_classes

with log_to(snakemake.log[0]):
    backbone, preprocessing = load_fm(snakemake.wildcards.fm, snakemake.input.weights)
    batch_size = snakemake.params.batch_size
    if snakemake.wildcards.dataset == "imagenet":
        # Workers decode, resize and crop each JPEG; the device only normalises.
        folder = imagenet(snakemake.params.imagenet_root, snakemake.wildcards.split)
        data = ImageFolderDataModule(
            folder,
            imagenet_classes(),
            preprocessing.resize,
            preprocessing.crop,
            batch_size,
            num_workers=snakemake.threads,
            interpolation=preprocessing.interpolation,
        )
        preprocessing = replace(preprocessing, resize=None, crop=None)
    else:
        data = ImageArrayDataModule(snakemake.input.images, batch_size)
    embed_images(
        backbone,
        preprocessing,
        data,
        snakemake.output.embeddings,
        precision=snakemake.params.precision,
    )
