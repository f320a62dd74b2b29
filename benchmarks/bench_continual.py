"""Classes that keep coming: the time of each ``partial_fit`` step when 1,000 classes arrive 10
at a time (synthetic, 512-d), exemplar-free (``keep="statistics"``) and keeping rows, measured
in one process. A step's update should cost its new classes' work plus the coupled steps, not
the old classes' again: the goal is the last step within 1.5× the first for per-class GENs.
RanPAC (its projection to ``--ranpac-dimensions``, 10,000 in a study) and FeCAM run beside them.

    python benchmarks/bench_continual.py                       # 1,000 classes in 100 steps
    python benchmarks/bench_continual.py --classes 200 --per-class 20   # a quick look
    python benchmarks/bench_continual.py --only ranpac                  # one configuration
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from host import describe

from imprint import ImprintingClassifier
from imprint.method.cil_methods import FeCAM, RanPAC

CONFIGURATIONS = {
    "mean (ncm)": {"gen": "mean", "norm_post": "none"},
    "kmeans k=5, l2": {"gen": "kmeans", "k": 5, "norm_post": "l2"},
    "ls": {"gen": "ls", "norm_post": "l2"},
    "kmeans k=5, mahalanobis 5-NN": {
        "gen": "kmeans", "k": 5, "agg": "mnn", "m": 5, "distance": "mahalanobis",
    },
}  # fmt: skip


def make_classes(n_classes: int, per_class: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=2.0, size=(n_classes, dim))
    labels = np.repeat(np.arange(n_classes), per_class)
    x = centres[labels] + rng.normal(size=(len(labels), dim))
    return x.astype(np.float32), labels


def step_times(clf: Any, x: np.ndarray, y: np.ndarray, step: int) -> list[float]:
    """Seconds of each ``partial_fit`` call of the learner ``clf``, ``step`` new classes each."""
    times = []
    for first in range(0, int(y.max()) + 1, step):
        rows = (y >= first) & (y < first + step)
        start = time.perf_counter()
        clf.partial_fit(x[rows], y[rows])
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--step", type=int, default=10, help="new classes per partial_fit call")
    parser.add_argument("--ranpac-dimensions", type=int, default=2000)
    parser.add_argument("--only", default="", help="the configurations whose name holds this")
    args = parser.parse_args()
    x, y = make_classes(args.classes, args.per_class, args.dim)
    print(
        f"machine: {describe()}; {args.classes} classes x {args.per_class} rows x {args.dim}, "
        f"{args.step} classes a step",
        flush=True,
    )
    print(
        "| configuration | keep | first step (s) | last step (s) | last / first "
        "| steps after the first (s) |"
    )
    print("|---|---|---|---|---|---|")
    learners: dict[tuple[str, str], Callable[[], Any]] = {
        (name, keep): lambda params=params, keep=keep: ImprintingClassifier(**params, keep=keep)
        for name, params in CONFIGURATIONS.items()
        for keep in ("statistics", "rows")
    }
    learners[f"ranpac (M = {args.ranpac_dimensions:,})", "statistics"] = lambda: RanPAC(
        args.ranpac_dimensions
    )
    learners["fecam", "statistics"] = FeCAM
    for (name, keep), make in learners.items():
        if args.only not in name:
            continue
        times = step_times(make(), x, y, args.step)
        first = float(np.median(times[1:6]))  # the very first call also warms up
        last = float(np.median(times[-5:]))
        print(
            f"| {name} | {keep} | {first:.3f} | {last:.3f} | {last / first:.2f} | "
            f"{sum(times[1:]):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
