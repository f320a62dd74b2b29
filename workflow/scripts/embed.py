"""Embed both splits of a data set with a frozen FM through Lightning's Trainer.predict (the
model loaded once)."""

from dataclasses import replace
from pathlib import Path

from imprint.fms.backbones import load_fm
from imprint.fms.data import imagenet
from imprint.fms.embed import ImageArrayDataModule, ImageFolderDataModule, embed_images
from imprint.fms.fm_spec import FMSpec
from imprint.io import log_to
from imprint.study.tasks import imagenet_classes

with log_to(snakemake.log[0]):
    dataset = snakemake.wildcards.dataset
    spec = FMSpec(**snakemake.params.fm)
    backbone, preprocessing = load_fm(spec, snakemake.input.weights)
    batch_size = snakemake.params.batch_size
    splits = {}
    for split in ("train", "test"):
        if dataset == "imagenet" or f"own_{split}" in snakemake.input.keys():
            # Workers decode, resize and crop each image; the device only normalises.
            if dataset == "imagenet":
                folder = imagenet(snakemake.params.imagenet_root, split)
                classes = imagenet_classes()
            else:
                folder, classes = Path(snakemake.params.folder) / split, None
            data = ImageFolderDataModule(
                folder,
                classes,
                preprocessing.resize,
                preprocessing.crop,
                batch_size,
                num_workers=snakemake.threads,
                interpolation=preprocessing.interpolation,
            )
            on_device = replace(preprocessing, resize=None, crop=None)
            if dataset != "imagenet":  # your own images: all readable before any is embedded
                data.setup()
                data.check()
        else:
            data = ImageArrayDataModule(snakemake.input[f"images_{split}"], batch_size)
            on_device = preprocessing
        splits[split] = data, on_device
    for split, (data, on_device) in splits.items():
        print(f"{split}:")
        embed_images(
            backbone, on_device, data, snakemake.output[split], precision=snakemake.params.precision
        )
