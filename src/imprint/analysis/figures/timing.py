"""The GEN-time figure (PAPER.md §D.8): how long each generator takes, per group and seed."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from imprint.analysis.figures.common import pinned, save_figure

# The GEN-time figure's methods (PAPER.md §D.8): (name, gen, k, NORMpre).
GEN_TIME_METHODS = [
    ("mean k1", "mean", 1, "l2"), ("kmeans k5", "kmeans", 5, "l2"),
    ("kmeans k20", "kmeans", 20, "l2"), ("kls k1", "kls", 1, "none"),
    ("kls k5", "kls", 5, "none"), ("kls k20", "kls", 20, "none"),
]  # fmt: skip


def gen_times(runs: pd.DataFrame) -> pd.DataFrame:
    """Median and std over seeds of the GEN time per method and group (FM, data set, mapping,
    task). "kls k1" is GEN ``kls`` with k = 1 (one k-means cluster, then least squares), as the
    paper timed it, not GEN ``ls``."""
    runs = pinned(runs, agg="max", distance="inner_product", fewshot=-1)
    tables = []
    for name, gen, k, norm in GEN_TIME_METHODS:
        chosen = pinned(runs, gen=gen, k=k, norm_pre=norm)
        per_seed = chosen.groupby(["fm", "dataset", "mapping", "task", "seed"])[
            "gen_time_s"
        ].first()
        grouped = per_seed.groupby(level=["fm", "dataset", "mapping", "task"])
        tables.append(grouped.agg(median_s="median", std_s="std").reset_index().assign(name=name))
    return pd.concat(tables, ignore_index=True)


def gen_time(runs: pd.DataFrame, path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The GEN-time figure: per method, the seed-median GEN time of every group (box with the
    mean as a white circle, and the points), and the std over seeds; returns the per-group values
    and the mean and median over groups per method."""
    times = gen_times(runs)
    order = [m[0] for m in GEN_TIME_METHODS if m[0] in set(times["name"])]
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 4.5), layout="constrained")
    sns.boxplot(
        times,
        x="name",
        y="median_s",
        order=order,
        showmeans=True,
        showfliers=False,
        meanprops={"marker": "o", "markerfacecolor": "white", "markeredgecolor": "black"},
        ax=left,
    )
    sns.stripplot(
        times, x="name", y="median_s", order=order, color="black", size=3, alpha=0.6, ax=left
    )
    left.set(xlabel="", ylabel="Median Generation Time (s)")
    sns.barplot(times, x="name", y="std_s", order=order, ax=right, errorbar=None, alpha=0.6)
    sns.stripplot(
        times, x="name", y="std_s", order=order, color="black", size=3, alpha=0.6, ax=right
    )
    right.set(xlabel="", ylabel="std of the GEN time over seeds (s)")
    for ax in (left, right):
        ax.tick_params(axis="x", rotation=20)
    save_figure(figure, path)
    summary = (
        times.groupby("name", sort=False)["median_s"]
        .agg(mean_s="mean", median_s="median", groups="size")
        .reset_index()
    )
    return times, summary
