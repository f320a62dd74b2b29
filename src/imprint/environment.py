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


def job_defaults() -> None:
    """What the workflow's jobs (and ``bench_paper.py``, which prices them) set before NumPy and
    PyTorch load, each unless the environment sets it:

    - ``OPENBLAS_THREAD_TIMEOUT=4`` (OpenBLAS's least, 2^4 cycles): NumPy's OpenBLAS threads
      sleep as soon as a product ends instead of spinning on the cores PyTorch's threads need
      next (on 2 threads the linear probe's two bases, a NumPy covariance and then PyTorch's
      ``eigh``, took 371 ms, and 191 ms with it set, the same bits);
    - ``THP_MEM_ALLOC_ENABLE=1``: PyTorch backs its large CPU tensors with transparent huge
      pages. glibc maps every allocation over 32 MB anew, and the operating system pages it in
      on first use, 4 KB at a time: a probe's float64 copy of 20,000 × 512 rows took 38.6 ms
      (20,001 page faults), and 12.3 ms (583) with 2 MB pages, the same bits. Kernels whose huge
      pages are ``never`` ignore it; NumPy asks for them by itself."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
