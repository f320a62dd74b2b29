"""Image data sets as uint8 arrays (N, H, W, C) with integer labels, stored as ``.npz``.

Every source is decoded once into ``resources/data/<dataset>/<split>.npz``; embedding reads those
arrays and resizes and normalises on the device. Downloads go through torchvision, which checks
each file's MD5 sum.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from imprint.io import atomic_path

SPLITS = ("train", "test")

# torchvision class and how it names its training and test splits.
TORCHVISION_DATASETS = {
    "mnist": ("MNIST", {"train": {"train": True}, "test": {"train": False}}),
    "fashionmnist": ("FashionMNIST", {"train": {"train": True}, "test": {"train": False}}),
    "cifar10": ("CIFAR10", {"train": {"train": True}, "test": {"train": False}}),
    "cifar100": ("CIFAR100", {"train": {"train": True}, "test": {"train": False}}),
    "usps": ("USPS", {"train": {"train": True}, "test": {"train": False}}),
    "svhn": ("SVHN", {"train": {"split": "train"}, "test": {"split": "test"}}),
}


def save_images(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images (N, H, W, C) uint8 and labels (N,) atomically, after checking them."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, images=images, labels=np.asarray(labels, dtype=np.int64))


def load_images(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["images"], data["labels"]


def digits(split: str, test_size: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits (values 0..16 scaled to 0..255), split
    train/test stratified by class with a fixed seed."""
    bunch = load_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)
    parts = train_test_split(
        images, bunch.target, test_size=test_size, stratify=bunch.target, random_state=seed
    )
    train_x, test_x, train_y, test_y = parts
    return (train_x, train_y) if split == "train" else (test_x, test_y)


def source_urls(cls: type, split: str) -> list[str]:
    """Where a torchvision data set class downloads a split from (for error messages)."""
    if hasattr(cls, "mirrors"):  # MNIST and FashionMNIST: every file from the first mirror
        return [cls.mirrors[0] + file for file, _ in cls.resources]
    if hasattr(cls, "split_list"):  # USPS and SVHN: one file per split
        return [cls.split_list[split][0]]
    return [cls.url]  # CIFAR-10 and CIFAR-100: one archive


def torchvision_dataset(
    name: str, split: str, root: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Download (once; torchvision checks MD5 sums) and decode one split of a data set."""
    import torchvision.datasets as tvd

    if name not in TORCHVISION_DATASETS:
        raise ValueError(
            f"dataset={name!r} is not valid; choose one of {list(TORCHVISION_DATASETS)}"
        )
    class_name, split_kwargs = TORCHVISION_DATASETS[name]
    cls = getattr(tvd, class_name)
    try:
        dataset = cls(root=str(root), download=True, **split_kwargs[split])
    except Exception as error:
        urls = ", ".join(source_urls(cls, split))
        raise RuntimeError(f"downloading {name} ({split}) from {urls} failed: {error}") from error
    images = [np.asarray(image, dtype=np.uint8) for image, _ in dataset]
    labels = np.array([int(label) for _, label in dataset])
    return np.stack(images), labels


# MNIST-M (Ganin et al.) as tensors from its public torch-format release, with MD5 sums.
MNISTM_RELEASE = "https://github.com/liyxi/mnist-m/releases/download/data"
MNISTM_FILES = {
    "train": ("mnist_m_train.pt", "191ed53db9933bd85cc9700558847391"),
    "test": ("mnist_m_test.pt", "e11cb4d7fff76d7ec588b1134907db59"),
}


def mnistm(split: str, root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Download (once, MD5-checked) and decode one split of MNIST-M: 28x28 RGB digits."""
    import torch
    from torchvision.datasets.utils import download_and_extract_archive

    name, md5 = MNISTM_FILES[split]
    root = Path(root)
    if not (root / name).exists():
        url = f"{MNISTM_RELEASE}/{name}.tar.gz"
        try:
            download_and_extract_archive(url, str(root), md5=md5)
        except Exception as error:
            raise RuntimeError(f"downloading MNIST-M from {url} failed: {error}") from error
    images, labels = torch.load(root / name, weights_only=True)
    return np.asarray(images, dtype=np.uint8), np.asarray(labels, dtype=np.int64)


def download(name: str, split: str, root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One split of a downloadable data set: torchvision's or MNIST-M."""
    if name == "mnistm":
        return mnistm(split, root)
    return torchvision_dataset(name, split, root)


def imagenet(root: str | os.PathLike | None, split: str) -> Path:
    """The folder of an ImageNet split under the user's ``root`` (licence: no download)."""
    folder = Path(root or "") / ("train" if split == "train" else "val")
    if not root or not folder.is_dir():
        raise FileNotFoundError(
            f"ImageNet {split} images not found at {folder!s}; set `imagenet_root` in the config "
            "to a folder holding train/ and val/ with one sub-folder per class (ILSVRC2012 layout)"
        )
    return folder
