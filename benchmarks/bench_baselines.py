"""The linear probe's logistic regression against scikit-learn's, at the same C, on one machine.

Both minimise scikit-learn's objective (C · Σ cross-entropy + ½ ‖W‖²) with L-BFGS to a gradient
tolerance of 1e-4 and at most the probe's iteration limit; reported: seconds, test accuracy and
the ratio. Data: a synthetic task (10 classes, 64-d, overlapping), or embeddings files.

    python benchmarks/bench_baselines.py
    python benchmarks/bench_baselines.py --embeddings results/embeddings/demo_cnn/digits
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from host import describe
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from imprint.fms.store import open_embeddings
from imprint.method.baselines import PROBE_MAX_ITER, fit_logistic


def _synthetic(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, 64)) * 1.5
    labels = rng.integers(0, 10, 3000)
    x = (centres[labels] + rng.normal(size=(3000, 64))).astype(np.float32)
    return x[:2000], labels[:2000], x[2000:], labels[2000:]


def _files(folder: Path) -> tuple[np.ndarray, ...]:
    train, test = (open_embeddings(folder / f"{split}.npy") for split in ("train", "test"))
    return np.asarray(train[0]), train[1], np.asarray(test[0]), test[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", type=Path, help="a folder with train.npy and test.npy")
    args = parser.parse_args()
    x, y, x_test, y_test = _files(args.embeddings) if args.embeddings else _synthetic()
    n_classes = int(y.max()) + 1
    print(f"machine: {describe()}")
    print(f"{len(x)} training rows, {x.shape[1]}-d, {n_classes} classes, "
          f"at most {PROBE_MAX_ITER} iterations")  # fmt: skip
    fit_logistic(torch.tensor(x), torch.tensor(y), n_classes, 1.0)  # warm-up: code paths load
    grid = (0.01, 1.0, 100.0)
    ours = {}  # all of ours first, then scikit-learn's: its idle OpenMP threads spin for a while
    for C in grid:  # after each call and would slow a torch call made right after it
        start = time.perf_counter()
        weight, bias, _ = fit_logistic(torch.tensor(x), torch.tensor(y), n_classes, C)
        hits = (torch.tensor(x_test).double() @ weight.T + bias).argmax(1).numpy() == y_test
        ours[C] = time.perf_counter() - start, hits.mean() * 100
    print("| C | ours (s) | scikit-learn (s) | ratio | ours acc % | scikit-learn acc % |")
    print("|---|---|---|---|---|---|")
    for C in grid:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reference = LogisticRegression(C=C, max_iter=PROBE_MAX_ITER).fit(x, y)
        theirs_s = time.perf_counter() - start
        theirs = reference.score(x_test, y_test) * 100
        ours_s, accuracy = ours[C]
        print(f"| {C:g} | {ours_s:.3f} | {theirs_s:.3f} | {theirs_s / ours_s:.1f}× | "
              f"{accuracy:.2f} | {theirs:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
