"""Tasks: label mappings (which original classes become which task class) and class splits.

A mapping sends original labels to task labels (-1 drops a sample); a split keeps the task
classes it lists. CombiDigits and the ImageNet remaps are mappings over embeddings, not new data.
"""

from __future__ import annotations

import fnmatch
import functools
import random
import re
from collections.abc import Callable, Iterable

import numpy as np

# Data sets made of others: their embeddings are concatenated (labels unchanged; CombiDigits'
# offsets by 10 per data set followed by mod 10 give back the digit labels).
COMPOSITE_DATASETS = {"combidigits": ["mnist", "mnistm", "usps", "svhn"]}

# Which task classes a split keeps: every, the even or the odd ones of any number of classes, or
# fixed lists (the first three; the demo FM's training classes 0-4 and the classes 5-9 new to it).
SPLITS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "all": lambda c: c >= 0,
    "even": lambda c: c % 2 == 0,
    "odd": lambda c: c % 2 == 1,
    "short": lambda c: c < 3,
    "lower": lambda c: c < 5,
    "upper": lambda c: (c >= 5) & (c < 10),
}


@functools.cache
def imagenet_random_tasks() -> tuple[tuple[int, ...], ...]:
    """Five random 10-class ImageNet tasks, drawn as the paper drew them (Python's generator
    seeded with 42)."""
    drawn = random.Random(42).sample(range(1000), 50)
    return tuple(tuple(drawn[10 * j : 10 * j + 10]) for j in range(5))


@functools.cache
def imagenet_merge_tables() -> tuple[tuple[dict[int, int], ...], ...]:
    """For each of ten repetitions and each d = 1..10, the map sending B[10 j + i] to class j
    (i < d): ten 10-class tasks whose classes merge d ImageNet classes each (Python's generator
    seeded with 420, as the paper drew them). Drawn once; read, do not change."""
    rng = random.Random(420)
    pool = rng.sample(range(1000), 100)
    tables = []
    for _ in range(10):
        rng.shuffle(pool)
        tables.append(
            tuple({pool[10 * j + i]: j for j in range(10) for i in range(d)} for d in range(1, 11))
        )
    return tuple(tables)


def imagenet_classes() -> list[int]:
    """Every ImageNet class any task uses (the union of A and B): only these need embedding."""
    used = {c for task in imagenet_random_tasks() for c in task}
    used |= {c for rep in imagenet_merge_tables() for table in rep for c in table}
    return sorted(used)


def _table_mapping(table: dict[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    lookup = np.full(max(table) + 1, -1)
    lookup[list(table)] = list(table.values())
    return lambda y: np.where(y < len(lookup), lookup[np.minimum(y, len(lookup) - 1)], -1)


def mapping(name: str, table: dict[int, int] | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The label mapping called ``name``:

    ``none``; ``mod{n}`` (y mod n: CombiDigits is ``mod10``, the demo's merged task ``mod5``);
    ``imagenet_random{j}`` (j = 0..4); ``imagenet_merge_d{d}_r{r}`` (d = 1..10, r = 0..9); or,
    given its ``table`` (original class -> task class, from the config's label-mapping CSV), a
    mapping of your own.
    """
    if table is not None:
        return _table_mapping(table)
    if name == "none":
        return lambda y: y
    if match := re.fullmatch(r"mod(\d+)", name):
        if int(match[1]) < 2:
            raise ValueError(f"mapping={name!r} is not valid; mod<n> needs n >= 2")
        return lambda y, n=int(match[1]): y % n
    if match := re.fullmatch(r"imagenet_random([0-4])", name):
        task = imagenet_random_tasks()[int(match[1])]
        return _table_mapping({c: j for j, c in enumerate(task)})
    if match := re.fullmatch(r"imagenet_merge_d(10|[1-9])_r([0-9])", name):
        return _table_mapping(imagenet_merge_tables()[int(match[2])][int(match[1]) - 1])
    raise ValueError(
        f"mapping={name!r} is not valid; use none, mod<n>, imagenet_random<0-4>, "
        "imagenet_merge_d<1-10>_r<0-9>, or define it (a CSV file) under mappings"
    )


def is_builtin_mapping(name: str) -> bool:
    """Whether ``name`` (or pattern) is one of the mappings above rather than one of yours."""
    return name == "none" or name.startswith(("mod", "imagenet_"))


# The mapping names a ``*`` pattern can stand for, in order (``mod<n>`` takes any n instead).
IMAGENET_MAPPINGS = [f"imagenet_random{j}" for j in range(5)] + [
    f"imagenet_merge_d{d}_r{r}" for d in range(1, 11) for r in range(10)
]


def expand_mappings(names: Iterable[str]) -> list[str]:
    """Mapping names with each ``*`` pattern replaced by the ImageNet mappings it matches, in
    order (``imagenet_merge_d*_r*``: all 100 remaps; ``imagenet_merge_d*_r0``: d = 1..10)."""
    expanded: list[str] = []
    for name in names:
        if "*" not in name:
            expanded.append(name)
            continue
        matches = fnmatch.filter(IMAGENET_MAPPINGS, name)
        if not matches:
            raise ValueError(
                f"mapping pattern {name!r} matches no mapping; patterns stand for "
                "imagenet_random<0-4> and imagenet_merge_d<1-10>_r<0-9>"
            )
        expanded += matches
    return list(dict.fromkeys(expanded))


def _kept(labels: np.ndarray, split: str) -> np.ndarray:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not valid; choose one of {list(SPLITS)}")
    return (labels >= 0) & SPLITS[split](labels)


def select_task(
    x: np.ndarray,
    y: np.ndarray,
    mapping_name: str,
    split: str,
    table: dict[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a task: labels mapped (by ``table`` when the mapping is your own), then only
    the split's classes kept."""
    labels = mapping(mapping_name, table)(np.asarray(y))
    keep = _kept(labels, split)
    return x[keep], labels[keep]


def classes_per_task_class(mapping_name: str, dataset: str = "digits") -> int:
    """How many original classes each task class merges (1 when none): d for the ImageNet
    merges, and for ``mod<n>`` the data set's original classes over n (10 per digit data set)."""
    if match := re.fullmatch(r"imagenet_merge_d(\d+)_r\d", mapping_name):
        return int(match[1])
    if match := re.fullmatch(r"mod(\d+)", mapping_name):
        return max(1, 10 * len(member_datasets(dataset)) // int(match[1]))
    return 1


def task_labels(
    n_original: int, mapping_name: str, split: str, table: dict[int, int] | None = None
) -> np.ndarray:
    """Each of ``n_original`` classes' task class, -1 where the task drops it."""
    labels = np.asarray(mapping(mapping_name, table)(np.arange(n_original)))
    return np.where(_kept(labels, split), labels, -1)


def task_classes(
    n_original: int, mapping_name: str, split: str, table: dict[int, int] | None = None
) -> list[int]:
    """The task classes a mapping and split keep of a data set's ``n_original`` classes."""
    labels = task_labels(n_original, mapping_name, split, table)
    return sorted(set(labels[labels >= 0].tolist()))


def member_datasets(dataset: str) -> list[str]:
    """The data sets whose embeddings make up ``dataset``."""
    return COMPOSITE_DATASETS.get(dataset, [dataset])
