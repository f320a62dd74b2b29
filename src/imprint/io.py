"""Atomic file writes and the provenance recorded with every results table."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from imprint import __version__

PACKAGES = ("torch", "torchvision", "lightning", "numpy", "scikit-learn", "pandas")


# The mark of this module's temporary files, between the target's name and a random part.
_TEMPORARY = ".imprint-tmp-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it only when the block succeeds, so a killed
    job never leaves a half-written file under the final name (its temporary is removed by the
    next write of the same file; no other file is). A symbolic link is followed: its target is
    replaced, keeping its permissions."""
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}{_TEMPORARY}"
    for stale in target.parent.glob(f"{glob.escape(prefix)}*{glob.escape(target.suffix)}"):
        if re.fullmatch(
            r"[a-z0-9_]{8}", stale.name[len(prefix) : len(stale.name) - len(target.suffix)]
        ):
            stale.unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=target.suffix)
    os.close(handle)
    if target.exists():
        mode = stat.S_IMODE(target.stat().st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask  # mkstemp makes 0600 files; results are shared
    os.chmod(temporary, mode)
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def git_commit() -> str:
    """The working tree's commit (``-dirty`` with changes); ``unknown`` outside a repository."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def versions() -> dict[str, str]:
    """imprint's version (also when it is imported from a checkout) and those of its main
    dependencies that this environment has (a step's env may hold only what the step needs)."""
    found = {"imprint": __version__}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 digest of a file's bytes, in hex."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def config_hash(config: Any) -> str:
    """A short hash of a JSON-serialisable config slice."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_provenance(table: pd.DataFrame, config: Any) -> pd.DataFrame:
    """The table with columns for package versions, git commit and the config slice's hash."""
    table = table.copy()
    for name, version in versions().items():
        table[f"version_{name.replace('-', '_')}"] = version
    table["git_commit"] = git_commit()
    table["config_hash"] = config_hash(config)
    return table


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write Parquet or CSV (by suffix) atomically."""
    with atomic_path(path) as temporary:
        if Path(path).suffix == ".parquet":
            table.to_parquet(temporary, index=False)
        else:
            table.to_csv(temporary, index=False)


def _process(pid: int) -> tuple[int, str, list[str]] | None:
    """A running process's parent, state and command line, from /proc (None: gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    state, parent = stat[stat.rindex(")") + 2 :].split()[:2]  # the name may hold spaces
    return int(parent), state, argv


def snakemake_ancestor() -> int | None:
    """The PID of the Snakemake process this process runs under (its nearest ancestor whose
    command is ``snakemake``, ``python …/snakemake`` or ``python -m snakemake``), or None (also
    where there is no /proc)."""
    pid = os.getppid()
    while pid > 1 and (found := _process(pid)) is not None:
        parent, _, argv = found
        if "snakemake" in (Path(a).name for a in argv[:2]) or argv[1:3] == ["-m", "snakemake"]:
            return pid
        pid = parent
    return None


def stop_with_snakemake(interval_s: float = 1.0) -> None:
    """End this process, from a watching thread, once the Snakemake process it runs under is
    gone (killed, or a zombie): a killed workflow leaves no job writing into results behind it,
    for a rerun to race. Does nothing outside Snakemake, nor where there is no /proc."""
    import threading
    import time

    if not Path("/proc/self/stat").exists():  # no /proc to watch processes in (macOS, Windows)
        return
    ancestor = snakemake_ancestor()
    if ancestor is None:
        if f"{os.sep}.snakemake{os.sep}scripts{os.sep}" in sys.argv[0]:  # a job, orphaned already
            print("the Snakemake process that started this job is gone: stopping", flush=True)
            os._exit(1)
        return

    def watch() -> None:
        while (found := _process(ancestor)) is not None and found[1] not in "ZX":
            time.sleep(interval_s)
        print(f"the Snakemake process {ancestor} is gone: stopping this job", flush=True)
        os._exit(1)

    threading.Thread(target=watch, name="stop-with-snakemake", daemon=True).start()


@contextlib.contextmanager
def log_to(path: str | os.PathLike) -> Iterator[None]:
    """Send logging, stdout and stderr (progress bars included) to ``path`` for the block; a
    workflow job also ends when Snakemake does (``stop_with_snakemake``)."""
    import logging

    stop_with_snakemake()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as handle:
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
            try:
                yield
            except BaseException:
                logging.getLogger("imprint").exception("step failed")
                raise
            finally:
                root.removeHandler(handler)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by ``write_table``."""
    return pd.read_parquet(path) if Path(path).suffix == ".parquet" else pd.read_csv(path)
