"""The workflow's kept classifiers: one named method imprinted on the whole training set of one
(FM, data set, mapping, task), saved with its FM, and its test accuracy beside it."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from imprint.deploy.model_file import KeptModel, fm_entry, save_model
from imprint.fms.backbones import DEMO_INPUT_SIZE, load_fm
from imprint.fms.fm_spec import FMSpec
from imprint.fms.store import load_embeddings
from imprint.io import atomic_path, git_commit
from imprint.method.classifier import ImprintingClassifier
from imprint.method.params import RUN_COLUMNS
from imprint.study.methods import NAMED_METHODS
from imprint.study.tasks import select_task

log = logging.getLogger(__name__)


def kept_params(method: str, seed: int, lambda_reg: float) -> dict[str, Any]:
    """The classifier parameters of a named method's run, as a methods experiment runs it on all
    training rows (so the accuracy equals that run's)."""
    params = {c: NAMED_METHODS[method][c] for c in RUN_COLUMNS}
    return {**params, "fewshot": -1, "seed": seed, "lambda_reg": lambda_reg}


def unknown_detection(
    clf: ImprintingClassifier, known: np.ndarray, labels: np.ndarray, unknown: np.ndarray
) -> dict[str, Any]:
    """How well the calibrated ``clf`` tells test rows of its classes (``known``, with their
    ``labels``) from rows of classes it never saw (``unknown``; may be empty): the AUROC of its
    novelty score against that of the raw highest class score, the fractions flagged, and the
    confidence's expected calibration error (10 bins) on the known rows."""
    result: dict[str, Any] = {"false_rejection": clf.calibration_.false_rejection}
    flagged = clf.predict_unknown(known)
    result["known_flagged"] = float(flagged.mean())
    proba = clf.predict_proba(known)
    correct = clf.classes_[proba.argmax(1)] == labels
    result["confidence_ece"] = expected_calibration_error(proba.max(1), correct)
    if len(unknown):
        truth = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
        novelty = np.r_[clf.novelty(known), clf.novelty(unknown)]
        top = -np.r_[clf.decision_function(known).max(1), clf.decision_function(unknown).max(1)]
        result["unknown_flagged"] = float(clf.predict_unknown(unknown).mean())
        result["auroc"] = float(roc_auc_score(truth, novelty))
        result["auroc_max_score"] = float(roc_auc_score(truth, top))
    return result


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """The mean |accuracy - confidence| over equal-width confidence bins, weighted by their
    rows (Guo et al., 2017)."""
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    gaps = [
        abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
        for b in np.unique(which)
    ]
    return float(sum(gaps))


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
    The classifier is calibrated at the entry's ``false_rejection``, and ``info`` says how well it
    tells the data set's other classes (their test rows) from its own.
    ``class_names`` (your own image folder's, by label) name the saved model's classes; the
    accuracy is the numbered classifier's, as the sweep ran it."""
    train = select_task(*load_embeddings(train_files), entry["mapping"], entry["task"], label_table)
    test_rows = load_embeddings(test_files)
    test = select_task(*test_rows, entry["mapping"], entry["task"], label_table)
    params = kept_params(entry["method"], entry["seed"], lambda_reg)
    clf = ImprintingClassifier(**params).fit(np.asarray(train[0]), train[1])
    clf.calibrate(entry["false_rejection"])
    accuracy = clf.score(np.asarray(test[0]), test[1]) * 100
    others = select_task(*test_rows, entry["mapping"], "all", label_table)
    unseen = ~np.isin(others[1], clf.classes_)
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
        "unknown_detection": unknown_detection(
            clf, np.asarray(test[0]), test[1], np.asarray(others[0][unseen])
        ),
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
