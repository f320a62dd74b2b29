"""Accuracy against the number of proxies k: Fig. 6 (per GEN, PAPER.md §D.2) and Fig. A.8 (at
the best k against d, §D.7)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from imprint.analysis.figures.common import (
    l2_max,
    pinned,
    remap_means,
    remapped_datasets,
    save_figure,
    with_d,
)

GEN_LABELS = {
    "kmeans": "k-means", "kmedoids": "k-medoids", "kmedoids_pam": "k-medoids (PAM)",
    "cov_max": "k-cov-max", "random": "k-random", "fps": "k-fps", "kls": "k-least-squares",
    "mean": "mean", "ls": "least-squares", "all": "all",
}  # fmt: skip


def fig6_curves(runs: pd.DataFrame, gens: Sequence[str] | None = None) -> pd.DataFrame:
    """Seed-median accuracy per FM, data set, GEN and k ≤ 100 (task all, mapping none, NORM
    l2/l2/l2, max); each GEN's curve is forward-filled down k over the k any GEN ran; ``all``
    sits at k = −1."""
    runs = l2_max(runs, task="all", mapping="none")
    if gens is not None:
        runs = runs[runs["gen"].isin(gens)]
    medians = runs.groupby(["fm", "dataset", "gen", "k"])["accuracy"].median().reset_index()
    medians = medians[medians["k"] <= 100]
    tables = []
    for (fm, dataset), panel in medians.groupby(["fm", "dataset"], sort=False):
        wide = panel.pivot(index="k", columns="gen", values="accuracy").sort_index()
        swept = [g for g in wide.columns if g not in ("mean", "ls", "all")]
        wide.loc[wide.index > 0, swept] = wide.loc[wide.index > 0, swept].ffill()
        long = wide.stack().dropna().rename("accuracy").reset_index()
        tables.append(long.assign(fm=fm, dataset=dataset))
    return pd.concat(tables, ignore_index=True)[["fm", "dataset", "gen", "k", "accuracy"]]


def _swept(panel: pd.DataFrame) -> pd.DataFrame:
    return panel[~panel["gen"].isin(["mean", "ls", "all"]) & (panel["k"] > 0)]


def fig6_palette(panel: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
    """One colour per swept GEN, in the order of the main panel's accuracy at k = 5 (the
    paper's curve and legend order); GENs the main panel lacks follow."""
    swept = _swept(panel)
    at5 = swept[swept["k"] == 5].set_index("gen")["accuracy"]
    order = sorted(swept["gen"].unique(), key=lambda g: -at5.get(g, -np.inf))
    order += sorted(set(_swept(curves)["gen"]) - set(order))
    return dict(zip(order, sns.color_palette("tab10", len(order)), strict=True))


def _draw_fig6_panel(ax: plt.Axes, panel: pd.DataFrame, palette: Mapping[str, Any]) -> None:
    curves = _swept(panel)
    for gen in [g for g in palette if g in set(curves["gen"])]:
        curve = curves[curves["gen"] == gen]
        ax.plot(
            curve["k"],
            curve["accuracy"],
            "-o",
            lw=1.5,
            ms=5,
            color=palette[gen],
            label=GEN_LABELS.get(gen, gen),
        )
    for gen, colour, marker in (("mean", "magenta", "o"), ("ls", "darkorange", "s")):
        point = panel[panel["gen"] == gen]
        if len(point):
            ax.plot(
                [1],
                point["accuracy"].iloc[:1],
                marker,
                ms=7,
                mfc="none",
                mew=2,
                color=colour,
                label=GEN_LABELS[gen],
            )
    every = panel[panel["gen"] == "all"]
    if len(every):
        ax.hlines(every["accuracy"].iloc[0], -1, 100, colors="black", linestyles="--", label="all")
    ax.set(xlabel="number of proxies $k$", ylabel="acc %")


def fig6(
    runs: pd.DataFrame,
    path: str | os.PathLike,
    grid_path: str | os.PathLike,
    settings: Mapping[str, Any],
) -> pd.DataFrame:
    """Fig. 6: accuracy against k per GEN on one panel (the paper's resnet18 × CIFAR-10), and
    the appendix grid of every FM × data set, each GEN in one colour throughout."""
    curves = fig6_curves(runs, settings.get("gens"))
    panel = settings.get("panel") or {
        "fm": curves["fm"].iloc[0],
        "dataset": curves["dataset"].iloc[0],
    }
    chosen = curves[(curves["fm"] == panel["fm"]) & (curves["dataset"] == panel["dataset"])]
    if chosen.empty:
        raise ValueError(
            f"figures.fig6.panel {dict(panel)} has no runs; choose an FM and data set that "
            "the experiments ran"
        )
    palette = fig6_palette(chosen, curves)
    figure, ax = plt.subplots(figsize=(6.3, 3.15))
    _draw_fig6_panel(ax, chosen, palette)
    ax.legend(loc="lower right", fontsize=8)
    save_figure(figure, path)
    fms, datasets = sorted(curves["fm"].unique()), sorted(curves["dataset"].unique())
    figure, axes = plt.subplots(
        len(fms),
        len(datasets),
        figsize=(4.2 * len(datasets) + 1.6, 3.0 * len(fms)),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    legend: dict[str, Any] = {}
    for (i, fm), (j, dataset) in ((a, b) for a in enumerate(fms) for b in enumerate(datasets)):
        ax = axes[i, j]
        _draw_fig6_panel(ax, curves[(curves["fm"] == fm) & (curves["dataset"] == dataset)], palette)
        ax.set_title(f"{fm}, {dataset}", fontsize=10)
        if i < len(fms) - 1:
            ax.set_xlabel("")
        legend.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    figure.legend(legend.values(), legend.keys(), loc="outside right center", fontsize=8)
    save_figure(figure, grid_path)
    return curves.assign(
        main_panel=(curves["fm"] == panel["fm"]) & (curves["dataset"] == panel["dataset"])
    )


def figA8_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Per FM and d of the remapped data sets: mean (k-means k = 1), least squares (k-least-squares
    k = 1), and k-means / k-least-squares at their best k (highest remap-mean accuracy, ties to
    the smallest k), each the mean over remaps of seed medians with its 95% band."""
    kmeans = l2_max(runs, task="all", gen="kmeans")
    kls = pinned(
        runs,
        task="all",
        gen=["kls", "ls"],
        norm_pre="none",
        norm_post="none",
        norm_inf="none",
        agg="max",
        distance="inner_product",
        fewshot=-1,
    )
    rows = []
    for gen, chosen in (("kmeans", kmeans), ("kls", kls)):
        chosen = with_d(chosen)
        medians = (
            chosen.groupby(["fm", "dataset", "mapping", "d", "k"], sort=False)["accuracy"]
            .median()
            .reset_index()
        )
        medians = medians[medians["dataset"].isin(remapped_datasets(medians))]
        means = remap_means(medians, ["fm", "dataset", "d", "k"])
        single = means[means["k"] == 1].assign(curve="mean" if gen == "kmeans" else "least-squares")
        best = means.sort_values(
            ["value", "k"], ascending=[False, True], kind="stable"
        ).drop_duplicates(["fm", "dataset", "d"])
        rows += [single, best.assign(curve=GEN_LABELS[gen])]
    return (
        pd.concat(rows, ignore_index=True)
        .rename(columns={"n": "remaps"})
        .sort_values(["fm", "dataset", "curve", "d"], ignore_index=True)
    )


def figA8(
    runs: pd.DataFrame, path: str | os.PathLike, settings: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Fig. A.8: accuracy at the best k against d, one panel per FM; ``settings["fm_ylims"]``
    fixes the y limits of the panels it names, as the paper drew them."""
    limits = (settings or {}).get("fm_ylims", {})
    curves = figA8_curves(runs)
    fms = list(dict.fromkeys(runs["fm"]))
    fms = [fm for fm in fms if fm in set(curves["fm"])]
    figure, axes = plt.subplots(
        1, len(fms), figsize=(3.2 * len(fms), 3.2), squeeze=False, layout="constrained"
    )
    styles = {
        "mean": ("magenta", "-"),
        "least-squares": ("orange", "-"),
        "k-means": ("tab:blue", "--"),
        "k-least-squares": ("tab:green", "--"),
    }
    for ax, fm in zip(axes[0], fms, strict=True):
        for curve_name, (colour, style) in styles.items():
            curve = curves[(curves["fm"] == fm) & (curves["curve"] == curve_name)]
            ax.plot(
                curve["d"], curve["value"], style, color=colour, lw=2, alpha=0.8, label=curve_name
            )
            ax.fill_between(
                curve["d"], curve["lower"], curve["upper"], color=colour, alpha=0.2, lw=0
            )
        ax.set(title=fm, xlabel="$d$")
        if fm in limits:
            ax.set_ylim(*limits[fm])
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    axes[0, 0].set_ylabel("acc % at the best $k$")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=4)
    save_figure(figure, path)
    return curves
