"""Embed both splits of a data set with a frozen FM through Lightning's Trainer.predict (the
model loaded once)."""

from imprint.fms.backbones import load_fm
from imprint.fms.embed import embed_images
from imprint.fms.fm_spec import FMSpec
from imprint.io import log_to
from imprint.study.images import split_images

with log_to(snakemake.log[0]):
    spec = FMSpec(**snakemake.params.fm)
    backbone, preprocessing = load_fm(spec, snakemake.input.weights)
    splits = {  # every split's images checked before any is embedded
        split: split_images(
            snakemake.wildcards.dataset,
            split,
            snakemake.config["datasets"],
            preprocessing,
            snakemake.params.batch_size,
            snakemake.threads,
            arrays=snakemake.input.get(f"images_{split}"),
            imagenet_root=snakemake.params.imagenet_root,
        )
        for split in ("train", "test")
    }
    for split, (data, on_device) in splits.items():
        print(f"{split}:")
        embed_images(
            backbone, on_device, data, snakemake.output[split], precision=snakemake.params.precision
        )
