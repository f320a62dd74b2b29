"""Shared fixtures: small synthetic tasks with a known structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.workflow_runs import copy_workflow, snakemake


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` are skipped where no CUDA GPU is available."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def make_task(
    n_classes: int = 4,
    per_class: int = 30,
    dim: int = 8,
    modes: int = 2,
    offset: float = 0.0,
    seed: int = 0,
    sample_seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian mixture: ``modes`` clusters per class, all shifted by a common ``offset``.

    ``seed`` fixes the mixture, ``sample_seed`` (default: ``seed``) the draws from it."""
    centres = np.random.default_rng(seed).normal(scale=3.0, size=(n_classes, modes, dim))
    rng = np.random.default_rng(seed if sample_seed is None else sample_seed + 7919)
    labels = np.repeat(np.arange(n_classes), per_class)
    mode = rng.integers(0, modes, size=labels.size)
    x = centres[labels, mode] + rng.normal(size=(labels.size, dim)) + offset
    return x.astype(np.float32), labels


@pytest.fixture
def task() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = make_task(seed=1)
    x_test, y_test = make_task(per_class=15, seed=1, sample_seed=2)
    return x, y, x_test, y_test


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory) -> Path:
    """The workflow run to completion on the embedded default, shared by the end-to-end tests
    (which must not change it: copy it first)."""
    directory = copy_workflow(tmp_path_factory.mktemp("workflow"))
    result = snakemake(directory)
    assert result.returncode == 0, result.stderr[-5000:]
    return directory
