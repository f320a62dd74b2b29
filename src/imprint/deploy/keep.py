"""The workflow's kept classifiers: one named method imprinted on the whole training set of one
(FM, data set, mapping, task), saved with its FM, and its test accuracy beside it."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from imprint.deploy.model_file import KeptModel, fm_entry, save_model
from imprint.fms.backbones import DEMO_INPUT_SIZE, load_fm
from imprint.fms.fm_spec import FMSpec
from imprint.io import atomic_path, git_commit
from imprint.method.classifier import ImprintingClassifier
from imprint.method.params import RUN_COLUMNS
from imprint.study.experiments import load_embeddings
from imprint.study.methods import NAMED_METHODS
from imprint.study.tasks import select_task

log = logging.getLogger(__name__)


def kept_params(method: str, seed: int, lambda_reg: float) -> dict[str, Any]:
    """The classifier parameters of a named method's run, as a methods experiment runs it on all
    training rows (so the accuracy equals that run's)."""
    params = {c: NAMED_METHODS[method][c] for c in RUN_COLUMNS}
    return {**params, "fewshot": -1, "seed": seed, "lambda_reg": lambda_reg}


def keep_classifier(
    entry: Mapping[str, Any],
    lambda_reg: float,
    train_files: list[str],
    test_files: list[str],
    spec: FMSpec,
    weights: str | os.PathLike | None,
    label_table: dict[int, int] | None,
    model_path: str | os.PathLike,
    info_path: str | os.PathLike,
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Fit ``entry``'s method (``fm``, ``dataset``, ``mapping``, ``task``, ``method``, ``seed``) on
    the task's training embeddings, score it on the test ones, save the model (with the FM read
    from ``weights``, unless ``spec`` is precomputed) and its ``info`` JSON. Returns the info.
    ``class_names`` (your own image folder's, by label) name the saved model's classes; the
    accuracy is the numbered classifier's, as the sweep ran it."""
    train = select_task(*load_embeddings(train_files), entry["mapping"], entry["task"], label_table)
    test = select_task(*load_embeddings(test_files), entry["mapping"], entry["task"], label_table)
    params = kept_params(entry["method"], entry["seed"], lambda_reg)
    clf = ImprintingClassifier(**params).fit(np.asarray(train[0]), train[1])
    accuracy = clf.score(np.asarray(test[0]), test[1]) * 100
    log.info(
        "%s on %s/%s/%s/%s: %d classes, %d training rows, test accuracy %.2f %%",
        entry["method"], entry["fm"], entry["dataset"], entry["mapping"], entry["task"],
        len(clf.classes_), len(train[1]), accuracy,
    )  # fmt: skip
    if class_names is not None:
        clf = clf.with_labels({c: class_names[c] for c in clf.classes_.tolist()})
    info = {
        **{key: entry[key] for key in ("fm", "dataset", "mapping", "task", "method", "seed")},
        "params": params,
        "classes": clf.classes_.tolist(),
        "n_train": len(train[1]),
        "n_test": len(test[1]),
        "test_accuracy": accuracy,
        "git_commit": git_commit(),
    }
    fm = None
    if spec.source != "precomputed":
        network, preprocessing = load_fm(spec, weights)
        size = DEMO_INPUT_SIZE if spec.source == "demo" else None
        fm = fm_entry(spec, network, preprocessing, size)
    save_model(model_path, KeptModel(clf.to_torch(), fm, clf.kept_state(), info))
    with atomic_path(info_path) as temporary:
        temporary.write_text(json.dumps(info, indent=2) + "\n")
    return info
