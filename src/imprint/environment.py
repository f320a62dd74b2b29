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
