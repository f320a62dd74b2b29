"""The images the embedding step reads for one data set split, from where ``image_source`` says
they are."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L

from imprint.fms.backbones import Preprocessing
from imprint.fms.data import imagenet
from imprint.fms.embed import ImageArrayDataModule, ImageFolderDataModule
from imprint.study.config import image_source
from imprint.study.tasks import imagenet_classes


def split_images(
    dataset: str,
    split: str,
    datasets: Mapping[str, Any],
    preprocessing: Preprocessing,
    batch_size: int,
    workers: int,
    arrays: str | os.PathLike | None = None,
    imagenet_root: str | os.PathLike | None = None,
) -> tuple[L.LightningDataModule, Preprocessing]:
    """One split's images for ``embed_images`` and the preprocessing left to the device.
    Decoded arrays (``arrays``: the split's ``.npz``) go to the device whole; from a folder
    (your own, ``datasets[dataset]["folder"]``, or ImageNet's under ``imagenet_root``, only the
    classes a task uses), ``workers`` decode, resize and crop each image and the device only
    normalises. Your own images are all opened first, so that a file that is no image stops the
    job before any embedding, naming it."""
    source = image_source(dataset, datasets)
    if source == "arrays":
        return ImageArrayDataModule(arrays, batch_size), preprocessing
    if source == "imagenet":
        folder, classes = imagenet(imagenet_root, split), imagenet_classes()
    else:
        folder, classes = Path(datasets[dataset]["folder"]) / split, None
    data = ImageFolderDataModule(
        folder,
        classes,
        preprocessing.resize,
        preprocessing.crop,
        batch_size,
        num_workers=workers,
        interpolation=preprocessing.interpolation,
    )
    if source == "folder":
        data.setup()
        data.check()
    return data, replace(preprocessing, resize=None, crop=None)
