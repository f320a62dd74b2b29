"""Your own data, read and checked before anything runs on it: image folders (``train/`` and
``test/``, one sub-folder per class, as torchvision's ``ImageFolder``), precomputed embedding
arrays (``.npz`` or ``.npy``) and label-mapping CSV files."""

from __future__ import annotations

import csv
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

# The images torchvision's ImageFolder takes (suffixes compared in lower case), read with Pillow.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def class_folders(folder: str | os.PathLike) -> list[Path]:
    """The class sub-folders of a split folder, in sorted order (their index is the label)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is not a folder; an image data set needs train/ and test/ folders, each "
            "with one sub-folder of images per class"
        )
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(
            f"{folder} has no class sub-folders; put each class's images in a sub-folder named "
            f"after the class ({folder}/<class>/<image>)"
        )
    return classes


def image_files(class_folder: Path) -> list[Path]:
    """The images of one class folder, sorted; an empty class is an error."""
    files = sorted(
        p
        for p in class_folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise ValueError(
            f"class folder {class_folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); add "
            "images or remove the folder from both train/ and test/"
        )
    return files


def image_folder(root: str | os.PathLike) -> tuple[list[str], dict[str, list[list[Path]]]]:
    """An image data set's class names and, per split, each class's image files. train/ and
    test/ must hold the same classes."""
    root = Path(root)
    names: dict[str, list[str]] = {}
    files: dict[str, list[list[Path]]] = {}
    for split in ("train", "test"):
        folders = class_folders(root / split)
        names[split] = [f.name for f in folders]
        files[split] = [image_files(f) for f in folders]
    if names["train"] != names["test"]:
        only = {
            s: sorted(set(names[s]) - set(names[o]))
            for s, o in (("train", "test"), ("test", "train"))
        }
        raise ValueError(
            f"{root}: train/ and test/ must hold the same class folders; only in train/: "
            f"{only['train']}, only in test/: {only['test']}"
        )
    return names["train"], files


def _npz_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's shape and dtype in an ``.npz`` file, from its headers only."""
    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as handle:
                version = np.lib.format.read_magic(handle)
                read = np.lib.format.read_array_header_1_0
                if version != (1, 0):
                    read = np.lib.format.read_array_header_2_0
                shape, _, dtype = read(handle)
            shapes[name.removesuffix(".npy")] = (shape, dtype)
    return shapes


def array_files(entry: str | Mapping[str, str]) -> tuple[Path, str | None, Path, str | None]:
    """Where a split's precomputed arrays are: (embeddings file, key in it, labels file, key)."""
    if isinstance(entry, str):
        path = Path(entry)
        if path.suffix != ".npz":
            raise ValueError(
                f"{entry}: give a split's precomputed embeddings as one .npz file (arrays "
                "'embeddings' and 'labels') or as {embeddings: <file>.npy, labels: <file>.npy}"
            )
        return path, "embeddings", path, "labels"
    return Path(entry["embeddings"]), None, Path(entry["labels"]), None


def _load(path: Path, key: str | None, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"precomputed embeddings: {path} does not exist")
    if key is None:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    with np.load(path, allow_pickle=False) as data:
        if key not in data.files:
            raise ValueError(
                f"{path} has no array {key!r} (it has {data.files}); save it with "
                "np.savez(path, embeddings=X, labels=y)"
            )
        return data[key]


def embeddings_shape(entry: str | Mapping[str, str]) -> tuple[int, ...]:
    """The shape of a split's precomputed embeddings, read from the file's header."""
    path, key, _, _ = array_files(entry)
    if key is None:
        return tuple(_load(path, None, mmap=True).shape)
    shapes = _npz_shapes(path)
    if key not in shapes:
        raise ValueError(f"{path} has no array {key!r} (it has {sorted(shapes)})")
    return tuple(shapes[key][0])


def read_labels(entry: str | Mapping[str, str]) -> np.ndarray:
    """A split's precomputed labels, checked: 1-d non-negative integers."""
    _, _, path, key = array_files(entry)
    labels = _load(path, key, mmap=False)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels in {path} must be a 1-d integer array (class indices), got "
            f"{labels.dtype} {labels.shape}"
        )
    if len(labels) and labels.min() < 0:
        raise ValueError(f"labels in {path} must be class indices >= 0, found {labels.min()}")
    return labels.astype(np.int64)


def read_embeddings(entry: str | Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """A split's precomputed embeddings as float32 (N, D) with their labels, after the checks
    ``imprint.fms.store`` applies to our own: 2-d floating values, all finite, one label per row."""
    path, key, _, _ = array_files(entry)
    x = _load(path, key, mmap=False)
    labels = read_labels(entry)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"embeddings in {path} must be a 2-d floating-point array (samples × dimensions), "
            f"got {x.dtype} {x.shape}"
        )
    if len(x) != len(labels):
        raise ValueError(f"{path}: {len(x)} embeddings but {len(labels)} labels")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad):
        raise ValueError(
            f"embeddings in {path} have non-finite values (NaN or inf) in {len(bad)} row(s), "
            f"the first at row {bad[0]}; recompute or drop those samples"
        )
    return x.astype(np.float32), labels


def label_table(path: str | os.PathLike, class_names: list[str]) -> dict[int, int]:
    """A label-mapping CSV (columns ``class`` and ``task``: an original class, by its folder
    name or index, and the task class it becomes, 0, 1, ...) as {original index: task class};
    classes it does not list are dropped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label mapping {path} does not exist")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"class", "task"} <= set(rows[0]):
        raise ValueError(
            f"{path} must be a CSV with a header 'class,task' and one row per original class"
        )
    index = {name: i for i, name in enumerate(class_names)}
    table: dict[int, int] = {}
    for line, row in enumerate(rows, start=2):
        original, task = row["class"].strip(), row["task"].strip()
        if original in index:
            key = index[original]
        elif original.isdigit() and int(original) < len(class_names):
            key = int(original)
        else:
            raise ValueError(
                f"{path}, line {line}: class {original!r} is neither a class name nor an index "
                f"of the data set's {len(class_names)} classes (e.g. {class_names[:3]})"
            )
        if not task.isdigit():
            raise ValueError(f"{path}, line {line}: task {task!r} must be an integer >= 0")
        if key in table and table[key] != int(task):
            raise ValueError(f"{path}, line {line}: class {original!r} is mapped twice")
        table[key] = int(task)
    return table
