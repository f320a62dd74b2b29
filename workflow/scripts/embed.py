"""Embed one data set split with a frozen FM through Lightning's Trainer.predict."""

from dataclasses import replace

from imprint.fms.backbones import load_fm
from imprint.fms.data import imagenet
from imprint.fms.embed import ImageArrayDataModule, ImageFolderDataModule, embed_images
from imprint.fms.fm_spec import FMSpec
from imprint.io import log_to
from imprint.study.tasks import imagenet_classes

with log_to(snakemake.log[0]):
    w = snakemake.wildcards
    spec = FMSpec(**snakemake.params.fm)
    backbone, preprocessing = load_fm(spec, snakemake.input.weights)
    batch_size = snakemake.params.batch_size
    if w.dataset == "imagenet" or "folder" in snakemake.input.keys():
        # Workers decode, resize and crop each image; the device only normalises.
        if w.dataset == "imagenet":
            folder = imagenet(snakemake.params.imagenet_root, w.split)
            classes = imagenet_classes()
        else:
            folder, classes = snakemake.input.folder, None
        data = ImageFolderDataModule(
            folder,
            classes,
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
