"""Class-incremental learning on frozen embeddings: classes come in steps (a base group, then
groups of ``increment``), each step's rows go to ``partial_fit``, and the classifier is tested on
every class seen so far, beside the same method fitted once on those classes (the joint bound).

``incremental_runs`` gives one row per step; ``summarize`` the field's numbers per method: the
average incremental accuracy (the mean over steps of the accuracy on the classes seen), the last
accuracy, forgetting (each earlier group's best accuracy at an earlier step minus its accuracy at
the last, averaged over groups: it counts confusion with later classes too) and the mean gap to
the joint fit.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from imprint.method.classifier import ImprintingClassifier


def class_order(classes: Sequence[Any], seed: int) -> np.ndarray:
    """The classes in a seeded random order (``numpy.random.default_rng(seed).permutation``)."""
    return np.random.default_rng(seed).permutation(np.sort(np.asarray(classes)))


def class_groups(order: np.ndarray, base: int, increment: int) -> list[np.ndarray]:
    """The classes of each step: the first ``base``, then ``increment`` at a time (the last group
    may be smaller)."""
    if increment < 1:
        raise ValueError(f"increment={increment} is not valid; add at least one class a step")
    if not 1 <= base <= len(order):
        raise ValueError(
            f"base={base} is not valid: the task has {len(order)} classes; start with 1 to "
            f"{len(order)} base classes"
        )
    cuts = range(base, len(order), increment)
    return [order[:base], *(order[cut : cut + increment] for cut in cuts)]


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


def _kept_bytes(clf: ImprintingClassifier) -> int:
    buffer = io.BytesIO()
    torch.save(clf.kept_state(), buffer)
    return buffer.getbuffer().nbytes


def incremental_runs(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    params: dict[str, Any],
    groups: list[np.ndarray],
    shots: int = -1,
    keep: str = "statistics",
    seed: int = 0,
) -> pd.DataFrame:
    """One row per step: the step's classes fed to ``partial_fit`` (the base step with all its
    rows, later steps with ``shots`` rows per class, -1: all), then accuracy (%) on the test rows
    of every class seen, of the earlier and the new groups' classes and of each group
    (``group_accuracy``), the joint fit's on the same rows (``joint_accuracy``) and the gap,
    the update's seconds and the bytes the classifier keeps."""
    x, y = train
    x_test, y_test = test
    clf = ImprintingClassifier(**params, keep=keep)
    fed: list[np.ndarray] = []
    rows = []
    for step, group in enumerate(groups):
        fed.append(_shots(y, group, -1 if step == 0 else shots, seed + step))
        start = time.perf_counter()
        clf.partial_fit(x[fed[-1]], y[fed[-1]])
        update_s = time.perf_counter() - start
        seen = np.concatenate(groups[: step + 1])
        tested = np.isin(y_test, seen)
        joint = ImprintingClassifier(**params).fit(x[np.concatenate(fed)], y[np.concatenate(fed)])
        predicted = clf.predict(x_test[tested])
        truth = y_test[tested]
        correct = predicted == truth
        new = np.isin(truth, group)
        by_group = [float(correct[np.isin(truth, g)].mean() * 100) for g in groups[: step + 1]]
        accuracy = float(correct.mean() * 100)
        joint_accuracy = float(joint.score(x_test[tested], truth) * 100)
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


def forgetting(group_accuracy: Sequence[Sequence[float]]) -> float:
    """The mean over every group but the last step's of its best accuracy before the last step
    minus its accuracy at the last step (``group_accuracy``: per step, per group seen); 0 for a
    single step."""
    last = group_accuracy[-1]
    drops = [
        max(step[g] for step in group_accuracy[:-1] if len(step) > g) - last[g]
        for g in range(len(last) - 1)
    ]
    return float(np.mean(drops)) if drops else 0.0


def summarize(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per ``by`` (e.g. method and class order): average incremental accuracy, last accuracy,
    forgetting and the mean gap to the joint fit, from ``incremental_runs``' rows (``step`` in
    order)."""

    def one(steps: pd.DataFrame) -> pd.Series:
        steps = steps.sort_values("step")
        return pd.Series(
            {
                "average_accuracy": steps["accuracy"].mean(),
                "last_accuracy": steps["accuracy"].iloc[-1],
                "forgetting": forgetting(steps["group_accuracy"].tolist()),
                "gap_to_joint": steps["gap_to_joint"].mean(),
            }
        )

    return runs.groupby(list(by), sort=True).apply(one, include_groups=False).reset_index()
