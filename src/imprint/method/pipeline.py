"""The steps of one imprinting run, shared by ``ImprintingClassifier`` and ``sweep``.

fit:     embeddings -> NORMpre -> presampling -> GEN -> NORMpost
         (``prepare_classes``, ``GEN``, ``NORM_POST``)
predict: embeddings -> NORMinf -> AGG  (``NORM``, ``AGG``)
"""

from __future__ import annotations

import dataclasses
import numbers
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from imprint.method.aggregation import whitening
from imprint.method.batch import ClassBatch
from imprint.method.normalize import NORM
from imprint.method.presample import fewshot as sample_fewshot
from imprint.method.presample import weibull as sample_weibull


def _is_sparse(x: Any) -> bool:
    """Whether ``x`` is a SciPy sparse matrix or array; without importing SciPy (a second of a
    sweep job's start-up), as a sparse object can only exist once SciPy's module is loaded."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(x)


def as_embeddings(
    x: Any, name: str, device: str | torch.device, dtype: torch.dtype = torch.float32
) -> Tensor:
    """An (N, D) tensor of ``dtype`` on ``device``; rejects other shapes, NaN and infinity. A
    tensor's values only: imprinting is not differentiated (rows that require grad are
    detached)."""
    if isinstance(x, Tensor):
        tensor = x.detach()
    else:
        if _is_sparse(x):
            raise TypeError(
                f"{name} is a sparse matrix; sparse input is not supported: pass {name}.toarray()"
            )
        array = np.asarray(x)
        if array.dtype.kind == "O":  # numbers held as Python objects; anything else raises
            array = array.astype(np.float64)
        if array.dtype.kind == "c":
            raise ValueError(f"{name} is {array.dtype}: Complex data not supported; pass real rows")
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{name} must hold real numbers, got an array of {array.dtype}")
        tensor = torch.from_numpy(array) if array.flags.writeable else torch.tensor(array)
    shape = tuple(tensor.shape)
    if tensor.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (samples x features), got shape {shape}. Reshape your "
            f"data: {name}.reshape(-1, 1) if it holds one feature, {name}.reshape(1, -1) if one "
            "sample"
        )
    for axis, what in enumerate(("sample(s)", "feature(s)")):
        if shape[axis] == 0:
            raise ValueError(
                f"{name} has 0 {what} (shape={shape}) while a minimum of 1 is required."
            )
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} contains NaN or infinite values; clean or drop those rows first")
    converted = tensor.to(device=device, dtype=dtype)
    if not bool(torch.isfinite(converted).all()):
        raise ValueError(
            f"{name} holds values beyond {dtype}'s range (largest magnitude "
            f"{float(tensor.abs().max()):.3g}); scale the embeddings down first"
        )
    return converted


def _labels_array(y: Any, name: str, n_rows: int) -> np.ndarray:
    """Labels as a 1-D array, one per row; NaN or missing labels are rejected (NaN is no class:
    it would be a class of its own in training and never equal itself in testing)."""
    if y is None:
        raise ValueError(f"this classifier requires {name} to be passed, but the target y is None")
    labels = y.cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if labels.shape == (n_rows, 1):
        from sklearn.exceptions import DataConversionWarning

        warnings.warn(
            f"A column-vector y was passed when a 1d array was expected ({name} of shape "
            f"{labels.shape}): it is read as 1-D labels; pass {name}.ravel()",
            DataConversionWarning,
            stacklevel=4,
        )
        labels = labels.ravel()
    if labels.ndim != 1 or len(labels) != n_rows:
        raise ValueError(
            f"{name} must be 1-D with one label per row of X ({n_rows}), got shape {labels.shape}"
        )
    missing = [v is None or (isinstance(v, float) and v != v) for v in labels.tolist()]
    if any(missing):
        raise ValueError(
            f"{name} has {sum(missing)} missing (NaN or None) label(s), the first at row "
            f"{missing.index(True)}; drop those rows or give them a class"
        )
    return labels


def _label_kind(labels: np.ndarray) -> str:
    """``booleans``, ``numbers`` or ``text``: labels of one kind never stand for another's (True
    is no class 1)."""
    values = labels.tolist() if labels.dtype.kind == "O" else []
    if labels.dtype.kind == "b" or (values and all(isinstance(v, bool) for v in values)):
        return "booleans"
    if labels.dtype.kind in "iuf":
        return "numbers"
    if values and all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in values):
        return "numbers"
    return "text"


def encode_labels(y: Any, n_rows: int, min_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct labels and each label's index among them (labels need not be 0..C-1;
    floats must be whole numbers: fractional ones are a regression target)."""
    labels = _labels_array(y, "y", n_rows)
    if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
        raise ValueError(
            "y holds continuous values (Unknown label type: continuous), e.g. "
            f"{labels[labels != np.round(labels)][0]}; a classifier needs class labels: "
            "integers or names"
        )
    try:
        classes, index = np.unique(labels, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in labels.tolist()})
        raise ValueError(
            f"y mixes labels of types {kinds} that cannot be ordered; give every label one "
            "kind (all text, or all numbers)"
        ) from None
    if len(classes) < min_classes:
        raise ValueError(
            f"y must hold at least {min_classes} classes, got {len(classes)} "
            f"class{'' if len(classes) == 1 else 'es'}: {classes.tolist()}"
        )
    return classes, index


def label_record(classes: np.ndarray) -> dict[str, Any]:
    """Labels as plain values with their NumPy type (``labels_from``)."""
    return {"dtype": classes.dtype.str, "values": classes.tolist()}


def labels_from(record: dict[str, Any] | list) -> np.ndarray:
    """The labels of a ``label_record`` (or a plain list, as files of version 1 kept them)."""
    if isinstance(record, list):
        return np.array(record)
    return np.array(record["values"], dtype=np.dtype(record["dtype"]))


def check_label_kind(labels: np.ndarray, classes: np.ndarray, name: str) -> None:
    """Reject labels of another kind (text against numbers) than the fitted ``classes``."""
    if _label_kind(labels) != _label_kind(classes):
        raise ValueError(
            f"{name} holds {_label_kind(labels)} ({labels.dtype}) but the training labels are "
            f"{_label_kind(classes)} ({classes.dtype}); give both the same kind of labels"
        )


def index_labels(classes: np.ndarray, y: Any, n_rows: int) -> np.ndarray:
    """Indices of test labels among the training ``classes``. Test labels of another kind than
    the training labels (text against numbers) or of a class unseen in training are rejected:
    no prediction could match them, so the accuracy would be silently wrong."""
    labels = _labels_array(y, "y_test", n_rows)
    check_label_kind(labels, classes, "y_test")
    position = np.clip(np.searchsorted(classes, labels), 0, len(classes) - 1)
    unseen = classes[position] != labels
    if unseen.any():
        missing = sorted(set(labels[unseen].tolist()))
        raise ValueError(
            f"y_test holds {len(missing)} label(s) never seen in training, e.g. {missing[:5]}; "
            "drop those test rows or add training samples of those classes"
        )
    return position


def check_dimensions(n_train: int, x: Tensor, name: str = "X") -> None:
    """``x`` (rows to score) has the training rows' ``n_train`` features."""
    if x.shape[1] != n_train:
        raise ValueError(
            f"{name} has {x.shape[1]} features, but ImprintingClassifier is expecting {n_train} "
            "features as input (the training embeddings' dimension); use embeddings from the "
            "same backbone for training and test"
        )


def prepare_classes(
    x: Tensor,
    labels: Tensor,
    n_classes: int,
    norm_pre: str,
    fewshot: int,
    weibull: tuple[float, float] | None,
    seed: int,
    keys: Sequence[str] | None = None,
) -> ClassBatch:
    """NORMpre, then grouping by class, Weibull presampling and few-shot sampling (the
    reference's order). ``keys`` name the classes' random streams (``class_keys`` of the
    labels; default the class indices)."""
    grouped = ClassBatch.from_labels(x, labels, n_classes, keys)
    return prepare_grouped(grouped, norm_pre, fewshot, weibull, seed)


def prepare_grouped(
    grouped: ClassBatch, norm_pre: str, fewshot: int, weibull: tuple[float, float] | None, seed: int
) -> ClassBatch:
    """``prepare_classes`` of training rows grouped by class as they are (before NORMpre), the
    same to the bit. NORMpre works row by row, so it commutes with grouping, and with few-shot
    sampling, which draws by position alone: without a Weibull step (which needs every row
    normalised) only the drawn rows are normalised."""
    if weibull is None:
        drawn = sample_fewshot(grouped, fewshot, seed)
        return dataclasses.replace(drawn, x=NORM[norm_pre](drawn.x))
    batch = dataclasses.replace(grouped, x=NORM[norm_pre](grouped.x))
    return sample_fewshot(sample_weibull(batch, *weibull), fewshot, seed)


def distance_metric(batch: ClassBatch, distance: str) -> Tensor | None:
    """The whitening map for ``mahalanobis`` (Ledoit–Wolf on the training embeddings), else None."""
    return whitening(batch.flat()[0]) if distance == "mahalanobis" else None
