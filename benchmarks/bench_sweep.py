"""Speed of ``sweep()`` against a straightforward baseline, measured in one process.

The baseline computes every run on its own: ``ImprintingClassifier(**run).fit(...).score(...)``,
with k-means from scikit-learn's ``KMeans`` (n_init=1) class by class and scoring per run.
``sweep()`` shares presampling, proxies, normalisations and neighbour searches between runs and
batches k-means over classes. Both run on the same synthetic task: a 10-class Gaussian mixture
(3 modes per class, a shared offset far from the origin).

    python benchmarks/bench_sweep.py                      # the sizes of the issue, CPU
    python benchmarks/bench_sweep.py --device cuda --skip-baseline
    python benchmarks/bench_sweep.py --train-per-class 500 --test-per-class 100   # a quick look
"""

from __future__ import annotations

# isort: off
from imprint.environment import job_defaults

job_defaults()  # before NumPy and PyTorch load, as the workflow's sweep jobs have them
# isort: on

import argparse
import contextlib
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from host import describe
from sklearn.cluster import KMeans

from imprint import ImprintingClassifier, expand_grid, sweep
from imprint.method.batch import ClassBatch, ProxySet
from imprint.method.generators import GenContext, _select_per_class
from imprint.method.params import RUN_COLUMNS

SEEDS = [17121997, 123987, 12412312]

GRIDS = {
    # SPEC §6 Fig. 6: every GEN over k, L2 everywhere, max.
    "fig6": {
        "norm_pre": ["l2"],
        "gen": ["kmeans", "kmedoids", "cov_max", "random", "fps", "kls", "mean", "ls", "all"],
        "k": [1, 2, 3, 5, 10, 20, 50, 100],
        "norm_post": ["l2"],
        "norm_inf": ["l2"],
        "agg": ["max"],
        "seed": SEEDS,
    },
    # §5.1-style: the normalisations varied around a few generators and aggregations.
    "sec51": {
        "norm_pre": ["none", "l2"],
        "gen": ["mean", "kmeans", "cov_max"],
        "k": [5, 20],
        "norm_post": ["none", "l2", "quantile"],
        "norm_inf": ["none", "l2"],
        "agg": ["max", "mnn"],
        "distance": ["inner_product", "euclidean"],
        "m": [1, 5],
        "seed": SEEDS[:1],
    },
}


def make_task(
    per_class: int, sample_seed: int, n_classes: int = 10, dim: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Draws from one fixed mixture; ``sample_seed`` tells training and test draws apart."""
    mixture = np.random.default_rng(0)
    offset = mixture.normal(size=dim) * 10  # far from the origin, shared by all classes
    modes = mixture.normal(size=(n_classes, 3, dim))
    rng = np.random.default_rng(sample_seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    mode = rng.integers(0, 3, size=labels.size)
    x = offset + modes[labels, mode] + rng.normal(scale=0.8, size=(labels.size, dim))
    return x.astype(np.float32), labels


def _sklearn_kmeans(self: GenContext, batch: ClassBatch, k: int) -> ProxySet:
    """k-means class by class with scikit-learn, as a straightforward implementation would."""

    def choose(sub: ClassBatch) -> torch.Tensor:
        centres = []
        for x, mask in zip(sub.x, sub.mask, strict=True):
            rows = x[mask].cpu().numpy()  # scikit-learn runs on the CPU, wherever the batch is
            fitted = KMeans(k, n_init=1, random_state=self.seed % 2**32).fit(rows)
            centres.append(torch.tensor(fitted.cluster_centers_, dtype=x.dtype, device=x.device))
        return torch.stack(centres)

    return _select_per_class(batch, k, choose)


@contextlib.contextmanager
def sklearn_kmeans() -> Iterator[None]:
    original = GenContext.kmeans
    GenContext.kmeans = _sklearn_kmeans
    try:
        yield
    finally:
        GenContext.kmeans = original


def baseline(x, y, x_test, y_test, runs: pd.DataFrame, device: str) -> np.ndarray:
    accuracy = []
    with sklearn_kmeans():
        for row in runs.to_dict("records"):
            params = {c: row[c] for c in RUN_COLUMNS}
            clf = ImprintingClassifier(**params, device=device).fit(x, y)
            accuracy.append(clf.score(x_test, y_test) * 100)
    return np.array(accuracy)


def timed(function, *args):
    start = time.perf_counter()
    out = function(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-per-class", type=int, default=5000)
    parser.add_argument("--test-per-class", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--grid", choices=[*GRIDS, "all"], default="all")
    parser.add_argument("--skip-baseline", action="store_true", help="time sweep() alone")
    args = parser.parse_args()

    x, y = make_task(args.train_per_class, sample_seed=1, dim=args.dim)
    x_test, y_test = make_task(args.test_per_class, sample_seed=2, dim=args.dim)
    print(f"machine: {describe(args.device)}, device {args.device}")
    sizes = f"{args.train_per_class} train / {args.test_per_class} test"
    print(f"task: 10 classes, {sizes} per class, D={args.dim}")
    names = list(GRIDS) if args.grid == "all" else [args.grid]
    for name in names:
        runs = expand_grid(GRIDS[name])
        swept, sweep_s = timed(sweep, x, y, x_test, y_test, runs, args.device)
        line = (
            f"{name}: {len(runs)} runs | sweep {sweep_s:.1f} s ({len(runs) / sweep_s:.2f} runs/s)"
        )
        if not args.skip_baseline:
            reference, base_s = timed(baseline, x, y, x_test, y_test, runs, args.device)
            same = ~runs["gen"].isin(["kmeans", "kls"]).to_numpy()
            gap = np.abs(swept["accuracy"].to_numpy() - reference)
            line += (
                f" | baseline {base_s:.1f} s ({len(runs) / base_s:.2f} runs/s)"
                f" | speed-up {base_s / sweep_s:.1f}x"
                f" | max accuracy gap: {gap[same].max(initial=0):.3f} pt (same GEN),"
                f" {gap[~same].max(initial=0):.2f} pt (torch vs sklearn k-means)"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
