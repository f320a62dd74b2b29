"""Embeddings on disk: ``<name>.npy`` (float32, N × D, memory-mappable), ``<name>.labels.npy``
(int64, N) and ``<name>.manifest.json`` with both files' shapes, sizes and SHA-256 digests.

``open_embeddings`` checks all of it before anything is read, so a truncated or corrupted file
stops a job with a message that says how to regenerate it instead of giving wrong results."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from imprint.io import atomic_path, file_sha256

log = logging.getLogger(__name__)


class CorruptEmbeddingsError(ValueError):
    """An embeddings file, its labels or its manifest is missing, truncated or altered."""


def labels_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".labels.npy")


def manifest_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".manifest.json")


def _entry(path: Path, array: np.ndarray) -> dict:
    return {
        "file": path.name,
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
    }


def degenerate(embeddings: np.ndarray) -> str:
    """``"zero"`` or ``"identical"`` when two or more embeddings are all zero or all the same
    (nothing to tell classes apart by), else ``""``."""
    if len(embeddings) < 2 or np.any(embeddings != embeddings[0]):
        return ""
    return "identical" if np.any(embeddings) else "zero"


def save_embeddings(
    path: str | os.PathLike,
    embeddings: np.ndarray,
    labels: np.ndarray,
    precision: str = "32-true",
) -> None:
    """Write embeddings, labels and, last, the manifest that vouches for both (and records the
    ``precision`` the FM computed them in), each atomically."""
    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels)
    if embeddings.dtype != np.float32 or embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise ValueError(
            f"embeddings must be float32 (N, D) with N labels, got {embeddings.dtype} "
            f"{embeddings.shape} and {labels.shape} labels"
        )
    labels = labels.astype(np.int64)
    kind = degenerate(embeddings)
    if kind:
        log.warning(
            "all %d embeddings in %s are %s: a broken model or data? Imprinting on them gives "
            "chance accuracy, and NC1 = 0 would read as perfectly collapsed", len(embeddings),
            path, kind,
        )  # fmt: skip
    entries = {}
    for key, target, array in (
        ("embeddings", Path(path), embeddings),
        ("labels", labels_path(path), labels),
    ):
        with atomic_path(target) as temporary:
            np.save(temporary, array)
        entries[key] = _entry(target, array)
    entries["precision"] = precision
    with atomic_path(manifest_path(path)) as temporary:
        temporary.write_text(json.dumps(entries, indent=2) + "\n")


def _corrupt(path: str | os.PathLike, problem: str) -> CorruptEmbeddingsError:
    return CorruptEmbeddingsError(
        f"{problem}. Regenerate the embeddings with `snakemake --forcerun {path}` (or delete "
        f"{path}, its .labels.npy and .manifest.json and run snakemake again)."
    )


def embeddings_precision(path: str | os.PathLike) -> str:
    """The precision an embeddings file was computed in, from its manifest."""
    return json.loads(manifest_path(path).read_text()).get("precision", "unrecorded")


def open_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Memory-mapped embeddings and their labels, after checking sizes, SHA-256 digests, shapes
    and dtypes against the manifest; ``CorruptEmbeddingsError`` says what is wrong."""
    path = Path(path)
    try:
        manifest = json.loads(manifest_path(path).read_text())
    except FileNotFoundError:
        raise _corrupt(path, f"{manifest_path(path)} is missing") from None
    except json.JSONDecodeError as error:
        raise _corrupt(path, f"{manifest_path(path)} is not valid JSON ({error})") from None
    arrays = {}
    for key, target in (("embeddings", path), ("labels", labels_path(path))):
        entry = manifest.get(key)
        if not isinstance(entry, dict):
            raise _corrupt(path, f"{manifest_path(path)} has no '{key}' entry")
        if not target.exists():
            raise _corrupt(path, f"{target} is missing")
        size = target.stat().st_size
        if size != entry["bytes"]:
            raise _corrupt(path, f"{target} has {size} bytes, its manifest says {entry['bytes']}")
        if file_sha256(target) != entry["sha256"]:
            raise _corrupt(path, f"{target} does not match the SHA-256 digest in its manifest")
        array = np.load(target, mmap_mode="r" if key == "embeddings" else None)
        if list(array.shape) != entry["shape"] or str(array.dtype) != entry["dtype"]:
            raise _corrupt(
                path,
                f"{target} holds {array.dtype} {array.shape}, its manifest says "
                f"{entry['dtype']} {tuple(entry['shape'])}",
            )
        arrays[key] = array
    return arrays["embeddings"], arrays["labels"]


def load_embeddings(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Checked, memory-mapped embeddings files and their labels (``open_embeddings``); several
    files are concatenated with each file's labels shifted past the previous ones (CombiDigits:
    +10 per data set, so that ``mod10`` merges each digit's four data sets)."""
    xs, ys = [], []
    offset = 0
    for path in paths:
        x, y = open_embeddings(path)
        xs.append(x)
        ys.append(y + offset)
        offset += int(y.max()) + 1
    return (xs[0], ys[0]) if len(xs) == 1 else (np.concatenate(xs), np.concatenate(ys))
