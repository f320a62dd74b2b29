"""Your own data, read and checked before anything runs on it: image folders (``train/`` and
``test/``, one sub-folder per class, as torchvision's ``ImageFolder``), precomputed embedding
arrays (``.npz`` or ``.npy``) and label-mapping CSV files."""

from __future__ import annotations

import csv
import logging
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
# The images torchvision's ImageFolder takes (suffixes compared in lower case), read with Pillow.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# Class indices of precomputed labels stop here: larger ones are not indices (and would make
# per-class tables of that size).
MAX_CLASS_INDEX = 1_000_000


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
    """The images of one class folder and of its sub-folders, as torchvision's ImageFolder finds
    them (links followed, folders then names in sorted order), hidden files and folders left
    out. Other files (another format, a broken link) are named in a warning; an empty class or
    an empty (0-byte) image is an error."""
    files, skipped = [], []
    for root, _, names in sorted(os.walk(class_folder, followlinks=True)):
        if any(part.startswith(".") for part in Path(root).relative_to(class_folder).parts):
            continue
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith("."):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                files.append(path)
            else:
                skipped.append(path)
    if skipped:
        log.warning(
            "%s: %d file(s) skipped, neither images (%s) nor readable: %s%s", class_folder,
            len(skipped), " ".join(IMAGE_SUFFIXES), ", ".join(p.name for p in skipped[:3]),
            ", ..." if len(skipped) > 3 else "",
        )  # fmt: skip
    if not files:
        raise ValueError(
            f"class folder {class_folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); add "
            "images or remove the folder from both train/ and test/"
        )
    for path in files:
        if path.stat().st_size == 0:
            raise ValueError(f"image {path} is empty (0 bytes); replace it or remove it")
    return files


def rgb_pixels(image: Any) -> np.ndarray:
    """A Pillow image as (H, W, 3) uint8 RGB. 16-bit images (and 32-bit integer ones within
    0..65535) are scaled from 0..65535 to 0..255, not clipped (Pillow's conversion clips them to
    white); floating-point images are refused."""
    name = getattr(image, "filename", "") or "image"
    fix = "save it with 8 or 16 bits per channel"
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"{name}: {image.mode} values outside 0..65535; {fix}")
        grey = ((values * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode == "F":
        raise ValueError(f"{name}: floating-point pixels; {fix}")
    return np.asarray(image.convert("RGB"))


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image file's pixels (``rgb_pixels``); a file that cannot be read raises naming it."""
    return _opened(path, rgb_pixels)


def check_image(path: str | os.PathLike) -> None:
    """Open an image file's header only; a file that is no image raises naming it."""
    _opened(path, lambda image: None)


def _opened(path: str | os.PathLike, read: Callable[[Any], Any]) -> Any:
    """``read`` of the opened image; any failure raises one message naming the file and the fix."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return read(image)
    except Exception as error:
        raise ValueError(
            f"cannot read image {path} ({error}); re-save it (JPEG or PNG) or remove it"
        ) from None


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


def _not_npz(path: Path) -> ValueError:
    return ValueError(
        f"{path} is not an .npz file (a zip archive of arrays); save it with "
        "np.savez(path, embeddings=X, labels=y)"
    )


def _npz_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's shape and dtype in an ``.npz`` file, from its headers only."""
    shapes = {}
    if not zipfile.is_zipfile(path):
        raise _not_npz(path)
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
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{path} is not a .npy array file ({error})") from None
    if not zipfile.is_zipfile(path):
        raise _not_npz(path)
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
    if not len(labels):
        raise ValueError(f"{path}: no samples (an empty split); every split needs embeddings")
    if labels.min() < 0 or labels.max() > MAX_CLASS_INDEX:
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(
            f"labels in {path} must be class indices 0..{MAX_CLASS_INDEX}, found {bad}; "
            "number the classes 0, 1, ..."
        )
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
    try:  # UTF-8, with or without the byte-order mark spreadsheets write
        with open(path, newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text; save it as CSV (UTF-8)") from None
    header = [name.strip().lower() for name in lines[0]] if lines else []
    rows = [(n, cells) for n, cells in enumerate(lines[1:], 2) if any(c.strip() for c in cells)]
    if not rows or not {"class", "task"} <= set(header):
        raise ValueError(
            f"{path} must be a CSV with a header 'class,task' and one row per original class"
        )
    index = {name: i for i, name in enumerate(class_names)}
    table: dict[int, int] = {}
    for line, cells in rows:
        row = dict(zip(header, cells, strict=False))
        if "task" not in row:
            raise ValueError(f"{path}, line {line}: no task given for class {row['class']!r}")
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
