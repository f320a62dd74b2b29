"""A class-incremental study as the config states it: the methods it may name and how each
learns step by step, its class orders and steps, and the checks made before any job. No PyTorch
here, so that the workflow plans its jobs without importing it; ``imprint.study.continual`` runs
the studies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from imprint.method.params import refusal, validate_params
from imprint.study.methods import NAMED_METHODS

# The methods a class-incremental study may name, as the parameters of their joint fit: the
# field's nearest class mean (imprinting's `mean` GEN under a Euclidean 1-NN vote: Janson et
# al.'s method, named as the field names it), the published imprinting methods (exemplar-free),
# and the linear probe twice: retrained on every row seen (it keeps them: the joint bound) and
# fine-tuned on each step's rows only (exemplar-free; it forgets).
CONTINUAL_METHODS = {
    "ncm": NAMED_METHODS["janson"],
    **NAMED_METHODS,
    "linear_probe_finetuned": NAMED_METHODS["linear_probe"],
}
# The field's own exemplar-free learners (``imprint.study.continual.FIELD_LEARNERS``); each
# one's joint bound is the same learner given every row seen in one call.
FIELD_METHODS = ("ranpac", "fecam")
# How a method learns step by step, where not exemplar-free ``partial_fit`` ("statistics"):
# ``partial_fit`` keeping every row and fitting again ("rows"), ``FineTunedProbe``, or a learner
# of the field.
LEARNING = {
    "linear_probe": "rows",
    "linear_probe_finetuned": "finetune",
    **{method: method for method in FIELD_METHODS},
}


def check_continual(name: str, study: dict[str, Any], n_classes: Callable[[str, str], int]) -> None:
    """The config's study ``continual.<name>``, before any job: known methods that can run
    exemplar-free, at least one class a step, and base classes that every (FM, data set) has
    (``n_classes``). Raises ``ValueError`` naming the key."""
    key = f"continual.{name}"
    for method in study["methods"]:
        if method in FIELD_METHODS:
            continue
        if method not in CONTINUAL_METHODS:
            raise ValueError(
                f"{key}.methods: no method named {method!r}; choose from "
                f"{sorted([*CONTINUAL_METHODS, *FIELD_METHODS])}"
            )
        why = refusal(validate_params(CONTINUAL_METHODS[method]))
        if why and method not in LEARNING:
            raise ValueError(
                f"{key}.methods: {method} cannot learn classes exemplar-free ({why}); "
                "leave it out of the class-incremental study"
            )
    shots = study.get("shots", -1)
    if shots == 0 or shots < -1:
        raise ValueError(f"{key}.shots={shots} is not valid; use n >= 1 rows per class, or -1")
    for fm in study["fms"]:
        for dataset in study["datasets"]:
            try:
                class_groups(np.arange(n_classes(fm, dataset)), study["base"], study["increment"])
            except ValueError as error:
                raise ValueError(f"{key} ({fm} on {dataset}): {error}") from None


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
