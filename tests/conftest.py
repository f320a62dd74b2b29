"""Shared fixtures: small synthetic tasks with a known structure."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from xdist.scheduler import LoadScopeScheduling

from tests.workflow_runs import copy_workflow, snakemake

# Under pytest-xdist each test goes to the next free worker, but for these groups: a group's tests
# run in one worker, in order, and the groups go out first, in this order. The first makes the
# shared `workflow_run` and goes on with the tests that read it; the others hold a costly module
# fixture (SLURM and Kubernetes read the shared run as well: they come after the others, when it
# is made). Other workers wait for the run rather than make it twice (`workflow_run`).
GROUPS = {
    "demo_run": ("test_faults", "test_kept_models", "test_slurm_profile", "test_workflow"),
    "own_workflow": ("test_own_workflow",),
    "paper_config": ("test_paper_config",),
    "envs": ("test_envs",),
    "kubernetes": ("test_kubernetes",),
    "slurm": ("test_slurm",),
}
_GROUP_OF = {module: group for group, modules in GROUPS.items() for module in modules}
_RANK = {group: rank for rank, group in enumerate(GROUPS)}


def _group(nodeid: str) -> str | None:
    return _GROUP_OF.get(Path(nodeid.split("::")[0]).stem)


class GroupedScheduling(LoadScopeScheduling):
    """xdist's scheduling by work unit: a group (``GROUPS``) is one unit, any other test is its
    own; units go out in collection order (``pytest_collection_modifyitems`` puts the groups
    first)."""

    def __init__(self, config: pytest.Config, log=None) -> None:
        config.option.loadscopereorder = False
        super().__init__(config, log)

    def _split_scope(self, nodeid: str) -> str:
        return _group(nodeid) or nodeid


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker computes with its share of the cores, and its idle OpenMP
    threads (numba's pool keeps one a core) sleep instead of spinning: threads that outnumber the
    cores stall each other. Set before the workers start, so that their libraries read it as
    they load. Workflow jobs keep theirs: Snakemake sets a job's threads."""
    workers = getattr(config.option, "numprocesses", None)
    if workers and "PYTEST_XDIST_WORKER" not in os.environ:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, threads)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Twice as many workers as cores (``-n logical``, the default in ``pyproject.toml``): the
    end-to-end tests spend much of their time waiting (on Snakemake's status checks, on the
    SLURM daemons, on the shared run), so one worker a core leaves cores idle. On the 2-core VM
    the suite took 11 min 10 s with 2 workers, 8 min 57 s with 3 and 8 min 6 s with 4."""
    return 2 * (os.cpu_count() or 1)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> GroupedScheduling | None:
    """``GroupedScheduling`` for ``-n`` (xdist's ``load``); another ``--dist`` as asked."""
    return GroupedScheduling(config, log) if config.getvalue("dist") == "load" else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The groups' tests first, in ``GROUPS`` order; tests marked ``cuda`` are skipped where no
    CUDA GPU is available."""
    import torch

    items.sort(key=lambda item: _RANK.get(_group(item.nodeid), len(_RANK)))
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


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """PyTorch on ``n`` threads within the block, and on those it had again after it."""
    import torch  # here: tests of what a process imports load this module without it

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fresh_process(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``script`` (with ``args``) run by a new Python interpreter in the repository's root, its
    output captured: what a job's process computes, nothing loaded or set before it; fails the
    test if the script fails."""
    command = [sys.executable, "-c", script, *args]
    root = Path(__file__).parents[1]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, check=True)


def in_fresh_process(script: str, *args: str) -> str:
    """The standard output of ``fresh_process``."""
    return fresh_process(script, *args).stdout


@pytest.fixture
def task() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = make_task(seed=1)
    x_test, y_test = make_task(per_class=15, seed=1, sample_seed=2)
    return x, y, x_test, y_test


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory) -> Path:
    """The workflow run to completion on the embedded default, shared by the end-to-end tests
    (which must not change it: copy it first). Under pytest-xdist the first worker to ask makes
    it in the directory all workers share, the others wait for it and use it."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return _finished_run(tmp_path_factory.mktemp("workflow"))
    directory = tmp_path_factory.getbasetemp().parent / "workflow"
    finished = directory.with_name("workflow.finished")
    with FileLock(directory.with_name("workflow.lock")):
        if not finished.exists():
            shutil.rmtree(directory, ignore_errors=True)  # a run that failed in another worker
            directory.mkdir()
            _finished_run(directory)
            finished.touch()
    return directory


def _finished_run(directory: Path) -> Path:
    """The embedded default run in ``directory``, as many jobs at once as there are workers (at
    least 2): the end-to-end tests wait for it, so it takes a larger share of the cores than one
    worker's (the other workers' tests run beside it)."""
    copy_workflow(directory)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1))
    result = snakemake(directory, "--cores", str(max(2, workers)))
    assert result.returncode == 0, result.stderr[-5000:]
    return directory
