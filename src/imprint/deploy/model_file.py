"""Model files: a kept classifier in one file that loads without the config that made it.

A file holds the head (``ImprintedHead``: settings and buffers), the FM when there is one (its
spec, preprocessing and embedding network's weights), what ``partial_fit`` keeps (so that classes
can be added later) and a small ``info`` record (where it came from, its test accuracy). It is a
``torch.save`` of tensors and plain values only, read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imprint.deploy.image_model import ImageClassifier
from imprint.fms.backbones import Preprocessing, embedding_network
from imprint.fms.fm_spec import FMSpec
from imprint.io import atomic_path
from imprint.method.classifier import ImprintingClassifier
from imprint.method.head import ImprintedHead
from imprint.method.novelty import Calibration

FORMAT = "imprint-model"
VERSION = 1


@dataclass
class KeptModel:
    """A loaded model file: the head, the FM entry (spec, preprocessing, weights, input size;
    None for a head over precomputed embeddings), the classifier's kept state and ``info``."""

    head: ImprintedHead
    fm: dict[str, Any] | None = None
    classifier_state: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def image_classifier(self) -> ImageClassifier:
        """The FM and head in one module (images in, scores out)."""
        if self.fm is None:
            raise ValueError(
                "this model has no FM (it was imprinted on precomputed embeddings): it scores "
                "embeddings, not images; use its head"
            )
        spec = FMSpec(**self.fm["spec"])
        network = embedding_network(spec, self.fm["state"])
        preprocessing = Preprocessing(**self.fm["preprocessing"])
        return ImageClassifier(network, preprocessing, self.head, self.fm["input_size"])

    def classifier(self) -> ImprintingClassifier:
        """The ``ImprintingClassifier`` as it was fitted (to add classes with ``partial_fit``)."""
        if self.classifier_state is None:
            raise ValueError("this model file keeps no training rows; classes cannot be added")
        return ImprintingClassifier.from_kept_state(self.classifier_state)

    def calibration(self) -> Calibration | None:
        """The confidence and "none of these" calibration (None where the model has none)."""
        state = (self.classifier_state or {}).get("calibration")
        return None if state is None else Calibration.from_state(state)

    def with_classifier(self, clf: ImprintingClassifier) -> KeptModel:
        """The same model (FM, info) with the head and state of ``clf``."""
        return dataclasses.replace(self, head=clf.to_torch(), classifier_state=clf.kept_state())


def fm_entry(
    spec: FMSpec,
    network: nn.Module,
    preprocessing: Preprocessing,
    input_size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The FM part of a model file."""
    return {
        "spec": dataclasses.asdict(spec),
        "preprocessing": dataclasses.asdict(preprocessing),
        "state": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        "input_size": None if input_size is None else list(input_size),
    }


def save_model(path: str | os.PathLike, model: KeptModel) -> None:
    """Write ``model`` to ``path`` atomically. ``info`` may hold NumPy scalars and arrays and
    paths (stored as plain numbers, lists and text); anything else there is refused before any
    file is touched, and a written file that would not load again never replaces ``path``."""
    content = {
        "format": FORMAT,
        "version": VERSION,
        "head": {"settings": model.head.settings, "state": model.head.state_dict()},
        "fm": model.fm,
        "classifier": model.classifier_state,
        "info": _plain(model.info, "info"),
    }
    _check_finite(content, Path(path))
    with atomic_path(path) as temporary:
        torch.save(content, temporary)
        try:
            torch.load(temporary, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError) as error:
            raise ValueError(
                f"the model for {path} holds values a model file cannot keep ({error}); "
                f"{path} was left as it was"
            ) from None


def _plain(value: Any, where: str) -> Any:
    """``value`` with NumPy scalars and arrays, paths and tuples made plain Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray | np.generic):
        return _plain(value.tolist(), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"{where} is a {type(value).__name__}; a model file keeps numbers, text, lists, dicts, "
        "NumPy values and paths there: convert it first"
    )


def _tensors(content: Any, where: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in a model file's content, with where it lies."""
    if isinstance(content, torch.Tensor):
        yield where, content
    elif isinstance(content, dict):
        for key, value in content.items():
            yield from _tensors(value, f"{where}.{key}" if where else str(key))


def _check_finite(content: dict, path: Path) -> None:
    for where, tensor in _tensors(content):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"model file {path}: {where} holds NaN or infinite values; the file is damaged "
                "(or the model was): make it again"
            )


def load_model(path: str | os.PathLike) -> KeptModel:
    """A model file written by ``save_model``; anything else raises saying what it is not. A
    damaged file (a part that fails the archive's checksum, non-finite values, missing parts) is
    refused, never used."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a model file; name the .pt file in it")
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    hint = "make one with the workflow's keep section (results/models/) or save_model"
    if not os.access(path, os.R_OK):
        raise ValueError(f"model file {path} cannot be read (permissions); make it readable")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an imprint model file (not a PyTorch file); {hint}")
    with zipfile.ZipFile(path) as archive:
        damaged = archive.testzip()
    if damaged is not None:
        raise ValueError(
            f"model file {path} is damaged: its part {damaged} fails the archive's checksum; "
            "restore it from a copy or make it again"
        )
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError):
        raise ValueError(
            f"{path} is not an imprint model file (damaged, or holding Python objects beyond "
            f"tensors and plain values); {hint}"
        ) from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ValueError(f"{path} is not an imprint model file (no {FORMAT!r} record); {hint}")
    if content.get("version") != VERSION:
        raise ValueError(
            f"{path} is an imprint model file of version {content.get('version')!r}; this "
            f"imprint reads version {VERSION!r} only: make it again with this version"
        )
    _check_finite(content, path)
    try:
        head = ImprintedHead(content["head"]["settings"], content["head"]["state"]).eval()
        return KeptModel(head, content["fm"], content["classifier"], content["info"])
    except (KeyError, TypeError, AttributeError, RuntimeError) as error:
        raise ValueError(
            f"model file {path} is damaged or was edited: {type(error).__name__} {error} "
            "reading its parts; make it again"
        ) from None
