"""Small files of 'your own' data for the tests: an image folder and embedding arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("cat", "dog", "owl", "yak")


def image_folder(root: Path, classes=CLASSES, train: int = 6, test: int = 3, size=(40, 48)) -> Path:
    """PNG images in ``root/{train,test}/<class>/``: each class its own mean colour plus noise
    (and sizes that vary, as real photos do)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            colour = rng.integers(0, 256, size=3)
            for i in range(n):
                h, w = size[0] + 4 * (i % 3), size[1]
                noise = rng.normal(0, 30, size=(h, w, 3))
                image = np.clip(colour + noise, 0, 255).astype(np.uint8)
                Image.fromarray(image).save(folder / f"{c}_{i}.png")
    return root


def embedding_arrays(path: Path, n: int = 30, dim: int = 8, classes: int = 3, seed: int = 0):
    """An .npz of Gaussian class clusters (embeddings float32, labels int64)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.normal(0, 3, size=(classes, dim))
    x = (centres[labels] + rng.normal(size=(n, dim))).astype(np.float32)
    np.savez(path, embeddings=x, labels=labels)
    return x, labels
