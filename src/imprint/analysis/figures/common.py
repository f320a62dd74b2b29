"""What the figures share: selecting runs, the d of a remapping, means with 95% bands, and
saving a figure as PDF and PNG."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from imprint.analysis.stats import in_slice
from imprint.io import atomic_path
from imprint.study.tasks import classes_per_task_class

Z95 = 1.96


def save_figure(figure: plt.Figure, path: str | os.PathLike) -> None:
    """Save as PDF (and a PNG beside it for the report), atomically."""
    for suffix in (".pdf", ".png"):
        target = Path(path).with_suffix(suffix)
        with atomic_path(target) as temporary:
            figure.savefig(temporary, format=suffix[1:], bbox_inches="tight", dpi=300)
    plt.close(figure)


def pinned(runs: pd.DataFrame, **values: Any) -> pd.DataFrame:
    """Runs whose columns hold the given values (a value may be a list of allowed ones), as
    ``imprint.analysis.stats.in_slice`` selects them."""
    allowed = {c: v if isinstance(v, list) else [v] for c, v in values.items()}
    return runs[in_slice(runs, allowed)]


def l2_max(runs: pd.DataFrame, **values: Any) -> pd.DataFrame:
    """The figures' fixed pipeline: NORM l2/l2/l2, max over inner products, all samples."""
    return pinned(
        runs, norm_pre="l2", norm_post="l2", norm_inf="l2", agg="max",
        distance="inner_product", fewshot=-1, **values,
    )  # fmt: skip


def with_d(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``d``, the original classes merged into each task class by its mapping."""
    d = [
        classes_per_task_class(m, s)
        for m, s in zip(frame["mapping"], frame["dataset"], strict=True)
    ]
    return frame.assign(d=d)


def remapped_datasets(frame: pd.DataFrame) -> list[str]:
    """Data sets seen under mappings of two or more d (ImageNet's d-in-1 remaps): drawn as
    curves over d, averaged over the remaps of each d."""
    spread = with_d(frame).groupby("dataset")["d"].nunique()
    return sorted(spread[spread >= 2].index)


def band(values: pd.core.groupby.SeriesGroupBy, centre: str = "mean") -> pd.DataFrame:
    """Each group's ``centre`` (``mean`` or ``median``) with a 95% band around it (± 1.96 · std
    (ddof 1) / √n) and n."""
    table = values.agg([centre, "std", "size"])
    half = Z95 * table["std"].fillna(0) / np.sqrt(table["size"])
    return pd.DataFrame(
        {
            "value": table[centre],
            "lower": table[centre] - half,
            "upper": table[centre] + half,
            "n": table["size"],
        }
    )


def remap_means(medians: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean over the remaps of each d of seed-median accuracies, with the 95% band."""
    return band(medians.groupby(keys, sort=False)["accuracy"]).reset_index()
