"""What the workflow's steps inherit from the Snakemake process that plans them."""

from __future__ import annotations

import os
from pathlib import Path


def prepend_pythonpath(directory: str | os.PathLike) -> None:
    """Put ``directory`` first on ``PYTHONPATH`` (once, and only if it exists), so that steps in
    environments without the installed package (``--sdm conda``) import it from there."""
    directory = str(Path(directory).resolve())
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if os.path.isdir(directory) and directory not in entries:
        os.environ["PYTHONPATH"] = os.pathsep.join([directory, *entries])


def quiet_blas_threads() -> None:
    """Let NumPy's OpenBLAS threads sleep as soon as a product ends (``OPENBLAS_THREAD_TIMEOUT``,
    unless the environment sets it; read as OpenBLAS loads, so before NumPy is imported). By
    default they spin for a while on the cores PyTorch's threads need next: on 2 threads the
    linear probe's two bases (a NumPy covariance, then PyTorch's ``eigh``) took 371 ms, and
    191 ms with it set, the same bits."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # 2^4 cycles, OpenBLAS's least
