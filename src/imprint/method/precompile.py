"""Compile the sweep's numba kernels once, into numba's cache beside the sources:
``python -m imprint.method.precompile`` (``make`` runs it after building ``.venv``).

Numba compiles a kernel in the first process that calls it and caches it there; processes that
start before the cache is written compile it again. A workflow run or the test suite starts many
sweep processes at once, so on a fresh checkout each of them paid the compilation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imprint.method.engine import sweep
from imprint.method.params import DEFAULTS, RUN_COLUMNS

# Runs whose CPU paths call every kernel: k-means' nearest centres, k-medoids' distances,
# farthest-point sampling, the m-NN selection over a large distance matrix (at least
# aggregation._KERNEL_ENTRIES entries) with Euclidean and with Manhattan distances, and the
# linear probe's passes over its rows.
RUNS = [
    {"gen": "kmeans", "k": 2},
    {"gen": "kmedoids", "k": 2},
    {"gen": "fps", "k": 2},
    {"gen": "all", "k": -1, "agg": "mnn", "distance": "euclidean", "m": 5},
    {"gen": "all", "k": -1, "agg": "mnn", "distance": "manhattan", "m": 5},
    {"gen": "linear_probe", "k": -1},
]


def precompile() -> None:
    """Sweep ``RUNS`` on small random embeddings (600 training rows, 500 test rows, 8
    dimensions, 2 classes): every kernel as sweeps call it."""
    configs = pd.DataFrame([{**DEFAULTS, **run} for run in RUNS])[list(RUN_COLUMNS)]
    x = np.random.default_rng(0).normal(size=(600, 8)).astype(np.float32)
    labels = np.repeat(np.arange(2), 300)
    sweep(x, labels, x[:500], labels[:500], configs)


if __name__ == "__main__":
    precompile()
