"""Class-incremental learning on frozen embeddings: classes come in steps (a base group, then
groups of ``increment``), each step's rows go to ``partial_fit``, and the classifier is tested on
every class seen so far, beside the same method fitted once on those classes (the joint bound).
``incremental_runs`` gives one row per step; ``imprint.analysis.continual`` summarises them as
the field does.
"""

from __future__ import annotations

import io
import itertools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from imprint.method import cil_methods
from imprint.method.baselines import FineTunedProbe
from imprint.method.cil_methods import ClassLearner
from imprint.study.continual_spec import CONTINUAL_METHODS, LEARNING, class_groups, class_order

log = logging.getLogger(__name__)

# The field's own exemplar-free learners (imprint.method.cil_methods) by ``FIELD_METHODS`` name,
# each made for a class order's seed.
FIELD_LEARNERS: dict[str, Callable[[int], ClassLearner]] = {
    "ranpac": lambda seed: cil_methods.RanPAC(cil_methods.RANPAC_DIMENSIONS, seed),
    "fecam": lambda seed: cil_methods.FeCAM(),
}
if TYPE_CHECKING:  # the classifier brings scikit-learn: a second of the workflow's planning
    from imprint.method.classifier import ImprintingClassifier

    Learner = ImprintingClassifier | ClassLearner


def _shots(labels: np.ndarray, classes: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Positions of the rows of ``classes``: all of them (``shots`` -1), or ``shots`` per class
    drawn without replacement (seeded)."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in classes:
        rows = np.flatnonzero(labels == c)
        picked.append(
            rows if shots == -1 else np.sort(rng.choice(rows, min(shots, len(rows)), replace=False))
        )
    return np.concatenate(picked)


def _kept_bytes(learner: Learner) -> int:
    buffer = io.BytesIO()
    torch.save(learner.kept_state(), buffer)
    return buffer.getbuffer().nbytes


def _learner(params: dict[str, Any], learning: str, seed: int) -> Learner:
    """What learns the steps: ``FineTunedProbe`` ("finetune"), a learner of the field (made for
    ``seed``), or the classifier keeping ``learning`` ("statistics", "rows")."""
    if learning == "finetune":
        return FineTunedProbe(seed=params.get("seed", 0))
    if learning in FIELD_LEARNERS:
        return FIELD_LEARNERS[learning](seed)
    return _imprinting(**params, keep=learning)


def _joint(params: dict[str, Any], learning: str, seed: int, x: np.ndarray, y: np.ndarray):
    """The joint bound of a step: a learner of the field given every row at once, else
    ``params`` fitted once (the fine-tuned probe's: the probe retrained on every row)."""
    if learning in FIELD_LEARNERS:
        return _learner(params, learning, seed).partial_fit(x, y)
    return _imprinting(**params).fit(x, y)


def _imprinting(**params: Any) -> ImprintingClassifier:
    """``ImprintingClassifier(**params)``, imported at first use (the study's checks, which the
    workflow's planning runs, do without scikit-learn)."""
    from imprint.method.classifier import ImprintingClassifier

    return ImprintingClassifier(**params)


def incremental_runs(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    params: dict[str, Any],
    groups: list[np.ndarray],
    shots: int = -1,
    learning: str = "statistics",
    seed: int = 0,
) -> pd.DataFrame:
    """One row per step: the step's classes fed to ``partial_fit`` of the ``learning`` learner
    (``_learner``; the base step with all its rows, later steps with ``shots`` rows per class,
    -1: all), then accuracy (%) on the test rows of every class seen, of the earlier and the new
    groups' classes and of each group (``group_accuracy``), the joint fit's on the same rows
    (``joint_accuracy``: ``params`` fitted once on every row fed so far) and the gap, the
    update's seconds and the bytes the learner keeps."""
    x, y = train
    x_test, y_test = test
    clf = _learner(params, learning, seed)
    fed: list[np.ndarray] = []
    rows = []
    for step, group in enumerate(groups):
        fed.append(_shots(y, group, -1 if step == 0 else shots, seed + step))
        start = time.perf_counter()
        clf.partial_fit(x[fed[-1]], y[fed[-1]])
        update_s = time.perf_counter() - start
        seen = np.concatenate(groups[: step + 1])
        tested = np.isin(y_test, seen)
        predicted = clf.predict(x_test[tested])
        truth = y_test[tested]
        correct = predicted == truth
        new = np.isin(truth, group)
        by_group = [float(correct[np.isin(truth, g)].mean() * 100) for g in groups[: step + 1]]
        accuracy = float(correct.mean() * 100)
        every = np.concatenate(fed)
        joint = _joint(params, learning, seed, x[every], y[every])
        joint_accuracy = float((joint.predict(x_test[tested]) == truth).mean() * 100)
        rows.append(
            {
                "step": step,
                "classes_seen": len(seen),
                "accuracy": accuracy,
                "accuracy_old": float(correct[~new].mean() * 100) if step else np.nan,
                "accuracy_new": float(correct[new].mean() * 100),
                "group_accuracy": by_group,
                "joint_accuracy": joint_accuracy,
                "gap_to_joint": joint_accuracy - accuracy,
                "update_s": update_s,
                "kept_bytes": _kept_bytes(clf),
            }
        )
    return pd.DataFrame(rows)


def study_runs(
    study: dict[str, Any],
    load: Callable[[str, str, str], tuple[np.ndarray, np.ndarray]],
    lambda_regs: dict[str, float],
) -> pd.DataFrame:
    """``incremental_runs`` of every FM, data set, class order and method of a ``continual``
    config section (``load(fm, dataset, split)``: embeddings and labels; ``lambda_regs``: each
    FM's λ), with those four as columns."""
    tables = []
    for fm, dataset in itertools.product(study["fms"], study["datasets"]):
        train, test = load(fm, dataset, "train"), load(fm, dataset, "test")
        for order, method in itertools.product(study["orders"], study["methods"]):
            groups = class_groups(
                class_order(np.unique(train[1]), order), study["base"], study["increment"]
            )
            params = {**CONTINUAL_METHODS.get(method, {}), "lambda_reg": lambda_regs[fm]}
            learning = LEARNING.get(method, "statistics")
            runs = incremental_runs(
                train, test, params, groups, study.get("shots", -1), learning, seed=order
            )
            log.info(
                "%s on %s, order %d, %s: %d steps, last accuracy %.2f %%, gap to joint %.2f",
                fm, dataset, order, method, len(runs), runs["accuracy"].iloc[-1],
                runs["gap_to_joint"].iloc[-1],
            )  # fmt: skip
            tables.append(runs.assign(fm=fm, dataset=dataset, order=order, method=method))
    return pd.concat(tables, ignore_index=True)
