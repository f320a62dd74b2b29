"""``ImageClassifier``: an FM and an imprinted head in one module, uint8 images in, class scores
out; and reading image files the way the FM wants them."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from imprint.fms.backbones import Preprocessing
from imprint.fms.own_data import read_rgb
from imprint.method.head import ImprintedHead


class ImageClassifier(nn.Module):
    """uint8 images (B, H, W, C) to class scores (B, classes): the FM's own preprocessing
    (resize, crop, normalisation), its frozen embedding network, then ``head``.
    ``input_size`` (H, W) is the one image size an FM without resizing takes (the demo CNN's
    8 x 8), None where any size is resized."""

    def __init__(
        self,
        fm: nn.Module,
        preprocessing: Preprocessing,
        head: ImprintedHead,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.fm = fm.eval().requires_grad_(False)
        self.head = head
        self.preprocessing = preprocessing
        self.input_size = None if input_size is None else tuple(input_size)

    @property
    def classes(self) -> np.ndarray:
        return self.head.classes

    def embed(self, images: Tensor) -> Tensor:
        """The FM's embeddings (B, D) of uint8 images (B, H, W, C)."""
        if self.input_size is not None and tuple(images.shape[1:3]) != self.input_size:
            height, width = self.input_size
            raise ValueError(
                f"this model's FM takes {height}x{width} images (it does not resize), got "
                f"{images.shape[1]}x{images.shape[2]}; resize the images first"
            )
        return self.fm(self.preprocessing(images)).flatten(1).float()

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.embed(images))


def read_image(path: str | os.PathLike, channels: int) -> np.ndarray:
    """One image file as uint8 (H, W, ``channels``): RGB, or grey (ITU-R 601 luma) for a
    one-channel FM. A file that is not an image raises naming it."""
    pixels = read_rgb(path)
    if channels == 1:
        luma = pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        return np.rint(luma).clip(0, 255).astype(np.uint8)[..., None]
    return pixels


def embed_files(
    model: ImageClassifier, paths: Sequence[str | os.PathLike], batch_size: int = 64
) -> Tensor:
    """Embeddings (N, D) of image files, batched by image size (one image at a time where
    sizes differ), in the files' order."""
    channels = model.preprocessing.channels
    images = [read_image(path, channels) for path in paths]
    out: list[Tensor | None] = [None] * len(images)
    by_size: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault(image.shape, []).append(i)
    with torch.no_grad():
        for members in by_size.values():
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                batch = torch.from_numpy(np.stack([images[i] for i in chunk]))
                for i, row in zip(chunk, model.embed(batch), strict=True):
                    out[i] = row
    return torch.stack(out)  # type: ignore[arg-type]
