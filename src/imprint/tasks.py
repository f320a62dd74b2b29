"""Tasks: label mappings (which original classes become which task class) and class splits.

A mapping sends original labels to task labels (-1 drops a sample); a split keeps the task
classes it lists. CombiDigits and the ImageNet remaps are mappings over embeddings, not new data.
"""

from __future__ import annotations

import fnmatch
import random
import re
from collections.abc import Callable, Iterable

import numpy as np

# Data sets made of others: their embeddings are concatenated (labels unchanged; CombiDigits'
# offsets by 10 per data set followed by mod 10 give back the digit labels).
COMPOSITE_DATASETS = {"combidigits": ["mnist", "mnistm", "usps", "svhn"]}

SPLITS: dict[str, list[int]] = {
    "all": list(range(10)),
    "even": [0, 2, 4, 6, 8],
    "odd": [1, 3, 5, 7, 9],
    "short": [0, 1, 2],
    "lower": [0, 1, 2, 3, 4],  # the demo FM's training classes
    "upper": [5, 6, 7, 8, 9],  # classes new to the demo FM
}


def imagenet_random_tasks() -> list[list[int]]:
    """Five random 10-class ImageNet tasks, drawn as the paper drew them."""
    random.seed(42)
    drawn = random.sample(range(1000), 50)
    return [drawn[10 * j : 10 * j + 10] for j in range(5)]


def imagenet_merge_tables() -> list[list[dict[int, int]]]:
    """For each of ten repetitions and each d = 1..10, the map sending B[10 j + i] to class j
    (i < d): ten 10-class tasks whose classes merge d ImageNet classes each."""
    random.seed(420)
    pool = random.sample(range(1000), 100)
    tables = []
    for _ in range(10):
        random.shuffle(pool)
        tables.append(
            [{pool[10 * j + i]: j for j in range(10) for i in range(d)} for d in range(1, 11)]
        )
    return tables


def imagenet_classes() -> list[int]:
    """Every ImageNet class any task uses (the union of A and B): only these need embedding."""
    used = {c for task in imagenet_random_tasks() for c in task}
    used |= {c for rep in imagenet_merge_tables() for table in rep for c in table}
    return sorted(used)


def _table_mapping(table: dict[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    lookup = np.full(max(table) + 1, -1)
    lookup[list(table)] = list(table.values())
    return lambda y: np.where(y < len(lookup), lookup[np.minimum(y, len(lookup) - 1)], -1)


def mapping(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The label mapping called ``name``:

    ``none``; ``mod{n}`` (y mod n: CombiDigits is ``mod10``, the demo's merged task ``mod5``);
    ``imagenet_random{j}`` (j = 0..4); ``imagenet_merge_d{d}_r{r}`` (d = 1..10, r = 0..9).
    """
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
        f"mapping={name!r} is not valid; use none, mod<n>, imagenet_random<0-4> "
        "or imagenet_merge_d<1-10>_r<0-9>"
    )


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


def select_task(
    x: np.ndarray, y: np.ndarray, mapping_name: str, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a task: labels mapped, then only the split's classes kept."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not valid; choose one of {list(SPLITS)}")
    labels = mapping(mapping_name)(np.asarray(y))
    keep = np.isin(labels, SPLITS[split])
    return x[keep], labels[keep]


def classes_per_task_class(mapping_name: str, dataset: str = "digits") -> int:
    """How many original classes each task class merges (1 when none): d for the ImageNet
    merges, and for ``mod<n>`` the data set's original classes over n (10 per digit data set)."""
    if match := re.fullmatch(r"imagenet_merge_d(\d+)_r\d", mapping_name):
        return int(match[1])
    if match := re.fullmatch(r"mod(\d+)", mapping_name):
        return max(1, 10 * len(member_datasets(dataset)) // int(match[1]))
    return 1


def task_classes(dataset: str, mapping_name: str, split: str) -> list[int]:
    """The task classes a (data set, mapping, split) keeps: the split's classes among the mapped
    original classes (10 per digit-like data set, 1,000 for ImageNet)."""
    n_original = 1000 if dataset == "imagenet" else 10 * len(member_datasets(dataset))
    mapped = set(mapping(mapping_name)(np.arange(n_original)).tolist())
    return sorted(mapped & set(SPLITS[split]))


def member_datasets(dataset: str) -> list[str]:
    """The data sets whose embeddings make up ``dataset``."""
    return COMPOSITE_DATASETS.get(dataset, [dataset])
