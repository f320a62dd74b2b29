"""Embeddings with Lightning: a DataModule of uint8 images, a frozen FM as a LightningModule,
and a prediction writer that stores each device's shard with its sample indices.

``embed_images`` runs ``Trainer.predict`` (accelerator and devices ``auto``, the FM's
precision), then merges the shards by index into one float32 ``.npy`` file, so several GPUs keep
the order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor, nn
from torch.utils.data import DataLoader

from imprint.fms.backbones import Preprocessing
from imprint.fms.data import load_images
from imprint.fms.own_data import check_image, class_folders, image_files, read_rgb
from imprint.fms.store import save_embeddings
from imprint.progress import LogProgress


class ImageArrayDataModule(L.LightningDataModule):
    """Batches of (uint8 images (B, H, W, C), sample indices) from an ``.npz`` image file."""

    def __init__(
        self, path: str | os.PathLike, batch_size: int = 256, num_workers: int = 0
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.batch_size = batch_size
        self.num_workers = num_workers

    def setup(self, stage: str | None = None) -> None:
        images, labels = load_images(self.path)
        self.labels = labels
        self.dataset = _Batches(torch.from_numpy(images))

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            collate_fn=_as_collated,
        )


class _Batches(torch.utils.data.Dataset):
    """Decoded images fetched a batch at a time: one gather per batch (``__getitems__``), not a
    Python call and a stack per image."""

    def __init__(self, images: Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.images[i], i

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices)
        return self.images[index], index


def _as_collated(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """``_Batches`` hands over whole batches: nothing left to collate."""
    return batch


class ImageFolderDataModule(L.LightningDataModule):
    """Batches of (uint8 images (B, crop, crop, 3), sample indices) from a folder with one
    sub-folder per class (classes numbered in sorted folder order; ``classes``: only these, None:
    all), for images too many or too varied to keep decoded: workers decode each image and
    resize and crop it as the FM's preprocessing does."""

    def __init__(
        self,
        folder: str | os.PathLike,
        classes: list[int] | None,
        resize: int,
        crop: int,
        batch_size: int = 256,
        num_workers: int = 4,
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.classes = classes
        self.resize, self.crop, self.interpolation = resize, crop, interpolation
        self.batch_size = batch_size
        self.num_workers = num_workers

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "files"):  # listed already (the embed step checks images first)
            return
        folders = class_folders(self.folder)
        files, labels = [], []
        for index in range(len(folders)) if self.classes is None else self.classes:
            images = image_files(folders[index])
            files += images
            labels += [index] * len(images)
        self.files, self.labels = files, np.array(labels, dtype=np.int64)

    def check(self) -> None:
        """Open every image's header (after ``setup``), so that a file that is no image stops
        the job before any embedding, naming it."""
        for path in self.files:
            check_image(path)

    def _load(self, i: int) -> tuple[Tensor, int]:
        from torchvision.transforms.v2 import functional as TF

        image = torch.from_numpy(read_rgb(self.files[i]).copy()).permute(2, 0, 1)
        mode = TF.InterpolationMode(self.interpolation)
        image = TF.center_crop(
            TF.resize(image, [self.resize], interpolation=mode, antialias=True), [self.crop]
        )
        return image.permute(1, 2, 0).contiguous(), i

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            _Indexed(self._load, len(self.files)),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
        )


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, load: Any, length: int) -> None:
        self.load, self.length = load, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.load(i)


class FrozenEmbedder(L.LightningModule):
    """A frozen FM: ``predict_step`` prepares the uint8 batch on the device and returns float32
    embeddings with their sample indices."""

    def __init__(self, backbone: nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        self.preprocessing = preprocessing

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> tuple[Tensor, Tensor]:
        images, index = batch
        embeddings = self.backbone(self.preprocessing(images))
        return index, embeddings.flatten(1).float()  # autocast gives bf16: store float32


class ShardWriter(BasePredictionWriter):
    """Writes each device's predictions, with their sample indices, to ``rank<r>.pt``; on a
    single device it keeps them (``shard``) instead, as there is nothing to merge across."""

    def __init__(self, directory: str | os.PathLike) -> None:
        super().__init__(write_interval="epoch")
        self.directory = Path(directory)
        self.shard: dict[str, Tensor] | None = None

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: Any, predictions: Any, batch_indices: Any
    ) -> None:
        index = torch.cat([i for i, _ in predictions]).cpu()
        embeddings = torch.cat([e for _, e in predictions]).cpu()
        shard = {"index": index, "embeddings": embeddings}
        if trainer.world_size == 1:
            self.shard = shard
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        torch.save(shard, self.directory / f"rank{trainer.global_rank}.pt")


def merge_shards(directory: str | os.PathLike, n_samples: int) -> np.ndarray:
    """Embeddings of all shards written to ``directory``, in sample order (``merge``)."""
    paths = sorted(Path(directory).glob("rank*.pt"))
    return merge([torch.load(p, weights_only=True) for p in paths], n_samples, directory)


def merge(shards: list[dict[str, Tensor]], n_samples: int, source: Any) -> np.ndarray:
    """Embeddings of all shards in sample order; every sample must appear exactly once."""
    index = torch.cat([s["index"] for s in shards])
    embeddings = torch.cat([s["embeddings"] for s in shards])
    # DistributedSampler pads with repeats; keep the first copy of each index.
    order = torch.argsort(index, stable=True)
    index, embeddings = index[order], embeddings[order]
    first = torch.ones_like(index, dtype=torch.bool)
    first[1:] = index[1:] != index[:-1]
    index, embeddings = index[first], embeddings[first]
    if not torch.equal(index, torch.arange(n_samples)):
        raise RuntimeError(
            f"prediction shards in {source} cover {len(index)} of {n_samples} samples"
        )
    return embeddings.numpy()


def embed_images(
    backbone: nn.Module,
    preprocessing: Preprocessing,
    data: L.LightningDataModule,
    path: str | os.PathLike,
    accelerator: str = "auto",
    devices: str | int = "auto",
    precision: str = "32-true",
) -> None:
    """Embed every image of ``data`` (which has ``labels`` after ``setup``) with the frozen FM
    into the embeddings file ``path`` (float32 N × D, labels and manifest beside it; see
    ``imprint.fms.store``). ``precision`` is Lightning's: ``32-true`` (the paper's) or
    ``bf16-mixed`` (autocast, faster on GPUs); the manifest records it."""
    shard_dir = Path(str(path) + ".shards")
    writer = ShardWriter(shard_dir)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        precision=precision,
        callbacks=[writer, LogProgress()],
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    trainer.predict(
        FrozenEmbedder(backbone, preprocessing), datamodule=data, return_predictions=False
    )
    trainer.strategy.barrier()  # every rank's shard is on disk before rank 0 merges
    if trainer.global_rank != 0:
        return
    if writer.shard is not None:
        embeddings = merge([writer.shard], len(data.labels), "memory")
    else:
        embeddings = merge_shards(shard_dir, len(data.labels))
        for shard in shard_dir.glob("rank*.pt"):
            shard.unlink()
        shard_dir.rmdir()
    save_embeddings(path, embeddings, data.labels, precision)
