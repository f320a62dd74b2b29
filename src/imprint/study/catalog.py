"""What the workflow knows of every FM and data set a config names, before any job runs.

The built-in ones come from tables; your own (the config's ``fms`` with a ``source`` or
``embeddings``, ``datasets`` and ``mappings``) from their files: class names and samples per
class, the embedding dimension, label tables. From these follow the classes a task keeps and the
sizes that price a shard (``imprint.study.cost``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imprint.fms import own_data
from imprint.fms.fm_spec import FMSpec, fm_spec
from imprint.study.tasks import member_datasets, task_labels

if TYPE_CHECKING:
    from imprint.study.cost import TaskSize

# Training and test samples per original class of the built-in data sets (rounded from each
# data set's split sizes; the bundled digits as ``imprint.fms.data.digits`` splits them).
SAMPLES_PER_CLASS: dict[str, tuple[int, int]] = {
    "digits": (126, 54),
    "mnist": (6000, 1000),
    "fashionmnist": (6000, 1000),
    "cifar10": (5000, 1000),
    "cifar100": (500, 100),
    "mnistm": (5900, 900),
    "usps": (729, 201),
    "svhn": (7326, 2603),
    "imagenet": (1281, 50),
}
ORIGINAL_CLASSES = {"cifar100": 100, "imagenet": 1000}  # the others: 10
BUILTIN_DATASETS = (*SAMPLES_PER_CLASS, "combidigits")

# Embedding dimension of the paper's FMs (with their own weights) and of the demo CNNs.
PAPER_DIMS: dict[str, int] = {"resnet18": 512, "resnet50": 2048, "vit_b_16": 768, "swin_b": 1024}
DEMO_DIM = 64


@dataclass(frozen=True)
class Classes:
    """A data set's original classes (label order) and their training and test samples."""

    names: tuple[str, ...]
    train: np.ndarray
    test: np.ndarray


class Catalog:
    """The FMs, data sets and label mappings of a config (None: the built-in ones only); files
    are read once, when first asked about."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        config = config or {}
        self.fm_entries: Mapping[str, Any] = config.get("fms", {})
        self.datasets: Mapping[str, Any] = config.get("datasets", {})
        self.mappings: Mapping[str, str] = config.get("mappings", {})
        self._memo: dict[tuple, Any] = {}

    def _once(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def fm(self, name: str) -> FMSpec:
        return fm_spec(name, self.fm_entries.get(name, {}))

    def arrays(self, fm: str, dataset: str) -> Mapping[str, Any]:
        """A precomputed FM's arrays of a data set, per split."""
        embeddings = self.fm_entries[fm]["embeddings"]
        if dataset not in embeddings:
            raise ValueError(
                f"FM {fm} is precomputed and has no embeddings of data set {dataset!r} (only "
                f"{sorted(embeddings)}); add them under fms.{fm}.embeddings or drop the pair"
            )
        return embeddings[dataset]

    def dim(self, fm: str, dataset: str | None = None) -> int:
        """The FM's embedding dimension (of ``dataset``'s arrays for a precomputed FM, by
        default its first data set's): from the tables, the arrays, or the model itself."""
        spec = self.fm(fm)
        if spec.source == "demo":
            return DEMO_DIM
        if spec.source == "precomputed":
            return self._arrays_dim(fm, dataset or next(iter(self.fm_entries[fm]["embeddings"])))
        if spec.name in PAPER_DIMS and spec.model == spec.name:
            return PAPER_DIMS[spec.name]
        from imprint.fms.backbones import embedding_dim

        return self._once(("dim", fm), lambda: embedding_dim(spec))

    def _arrays_dim(self, fm: str, dataset: str) -> int:
        def read() -> int:
            entries = self.arrays(fm, dataset)
            shapes = {split: own_data.embeddings_shape(entries[split]) for split in entries}
            if any(len(shape) != 2 for shape in shapes.values()):
                raise ValueError(
                    f"fms.{fm}.embeddings.{dataset}: embeddings must be 2-d (samples × "
                    f"dimensions), got shapes {shapes}"
                )
            if shapes["train"][1] != shapes["test"][1]:
                raise ValueError(
                    f"fms.{fm}.embeddings.{dataset}: train embeddings have {shapes['train'][1]} "
                    f"dimensions, test embeddings {shapes['test'][1]}; both splits must come "
                    "from the same model"
                )
            return shapes["train"][1]

        return self._once(("arrays_dim", fm, dataset), read)

    def classes(self, fm: str, dataset: str) -> Classes:
        """The original classes of a data set as an FM sees it, with samples per class."""
        return self._once(("classes", fm, dataset), lambda: self._classes(fm, dataset))

    def _classes(self, fm: str, dataset: str) -> Classes:
        if self.fm(fm).source == "precomputed":
            self._arrays_dim(fm, dataset)
            labels = {s: own_data.read_labels(e) for s, e in self.arrays(fm, dataset).items()}
            n = int(max(y.max(initial=-1) for y in labels.values())) + 1
            train, test = (np.bincount(labels[s], minlength=n) for s in ("train", "test"))
            missing = np.flatnonzero((test > 0) & (train == 0))
            if len(missing):
                raise ValueError(
                    f"fms.{fm}.embeddings.{dataset}: test labels {missing.tolist()} have no "
                    "training samples; every test class needs training samples to imprint"
                )
            names = tuple(map(str, range(n)))
            if dataset in self.datasets:  # embeddings of your image folder: its class names
                names = tuple(self.image_folder(dataset)[0])
                if n > len(names):
                    raise ValueError(
                        f"fms.{fm}.embeddings.{dataset}: labels go up to {n - 1}, but the "
                        f"folder of {dataset} has {len(names)} classes"
                    )
                train, test = (np.pad(c, (0, len(names) - n)) for c in (train, test))
            return Classes(names, train, test)
        if dataset in self.datasets:
            names, files = self.image_folder(dataset)
            counts = {s: np.array([len(f) for f in files[s]]) for s in files}
            return Classes(tuple(names), counts["train"], counts["test"])
        if any(dataset in e.get("embeddings", {}) for e in self.fm_entries.values()):
            raise ValueError(
                f"data set {dataset!r} exists only as precomputed embeddings, which FM {fm} "
                "cannot embed; pair it with its precomputed FM only"
            )
        members = member_datasets(dataset)
        if any(m not in SAMPLES_PER_CLASS for m in members):
            raise ValueError(
                f"data set {dataset!r} is not defined; use a built-in one "
                f"{list(BUILTIN_DATASETS)} or define it under datasets (an image folder)"
            )
        counts = np.concatenate(
            [np.tile(SAMPLES_PER_CLASS[m], (ORIGINAL_CLASSES.get(m, 10), 1)) for m in members]
        )
        return Classes(tuple(map(str, range(len(counts)))), counts[:, 0], counts[:, 1])

    def image_folder(self, dataset: str) -> tuple[list[str], dict[str, list[list[Path]]]]:
        """Your own image data set's class names and, per split, each class's image files
        (``imprint.fms.own_data.image_folder``), read once."""
        folder = self.datasets[dataset]["folder"]
        return self._once(("folder", dataset), lambda: own_data.image_folder(folder))

    def label_table(self, mapping: str, fm: str, dataset: str) -> dict[int, int] | None:
        """Your own mapping's {original class: task class} for a data set; None for built-ins."""
        if mapping not in self.mappings:
            return None
        names = list(self.classes(fm, dataset).names)
        return self._once(
            ("table", mapping, fm, dataset),
            lambda: own_data.label_table(self.mappings[mapping], names),
        )

    def _task_labels(self, fm: str, dataset: str, mapping: str, task: str) -> np.ndarray:
        """Each original class's task class; -1 if the task drops it or it has no samples."""
        classes = self.classes(fm, dataset)
        labels = task_labels(
            len(classes.names), mapping, task, self.label_table(mapping, fm, dataset)
        )
        return np.where(classes.train > 0, labels, -1)

    def task_classes(self, fm: str, dataset: str, mapping: str, task: str) -> list[int]:
        """The task classes a (data set, mapping, task) keeps."""
        labels = self._task_labels(fm, dataset, mapping, task)
        return sorted(set(labels[labels >= 0].tolist()))

    def task_size(self, fm: str, dataset: str, mapping: str, task: str) -> TaskSize:
        """The sizes that price a shard."""
        from imprint.study.cost import TaskSize

        counts = self.classes(fm, dataset)
        labels = self._task_labels(fm, dataset, mapping, task)
        kept = labels >= 0
        n_classes = max(len(np.unique(labels[kept])), 1)
        train_per_class = float(counts.train[kept].sum() / n_classes)
        n_test = int(counts.test[kept].sum())
        return TaskSize(n_classes, train_per_class, n_test, self.dim(fm, dataset))
