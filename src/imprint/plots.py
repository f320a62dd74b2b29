"""The paper's figures (PAPER.md §D.2–D.8), drawn with seaborn/matplotlib. Each function takes
the runs (or the NC1 table), draws the figure and returns a tidy table of exactly the numbers
it plots."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy.stats import linregress, pearsonr, spearmanr

from imprint.io import atomic_path
from imprint.tasks import classes_per_task_class

GEN_LABELS = {
    "kmeans": "k-means", "kmedoids": "k-medoids", "kmedoids_pam": "k-medoids (PAM)",
    "cov_max": "k-cov-max", "random": "k-random", "fps": "k-fps", "kls": "k-least-squares",
    "mean": "mean", "ls": "least-squares", "all": "all",
}  # fmt: skip
# The neural-collapse metrics of the collapse table that the collapse figure shows.
COLLAPSE_METRICS = [
    "nc1", "nc1_paper", "cdnv", "equinorm", "equiangularity", "max_equiangularity",
    "hyperspherical_energy",
]  # fmt: skip
# Fig. 10's colours per k (PAPER.md §D.3); the k = n curve is black and dotted.
SHOT_COLOURS = {
    1: (9 / 255, 1.0, 1.0),
    5: (137 / 255, 111 / 255, 251 / 255),
    20: (1.0, 0.0, 250 / 255),
}
FM_COLOURS = {
    "resnet18": "tab:olive",
    "resnet50": "tab:cyan",
    "vit_b_16": "tab:red",
    "swin_b": "tab:pink",
}
DATASET_COLOURS = ["tab:blue", "tab:purple", "tab:green", "tab:orange", "tab:brown", "tab:gray"]
Z95 = 1.96


def save_figure(figure: plt.Figure, path: str | os.PathLike) -> None:
    """Save as PDF (and a PNG beside it for the report), atomically."""
    for suffix in (".pdf", ".png"):
        target = Path(path).with_suffix(suffix)
        with atomic_path(target) as temporary:
            figure.savefig(temporary, format=suffix[1:], bbox_inches="tight", dpi=300)
    plt.close(figure)


def _fm_colour(fm: str, order: Sequence[str]) -> Any:
    return FM_COLOURS.get(fm, sns.color_palette("tab10")[list(order).index(fm) % 10])


def _pinned(runs: pd.DataFrame, **values: Any) -> pd.DataFrame:
    """Runs whose columns hold the given values (a value may be a list of allowed ones)."""
    keep = pd.Series(True, index=runs.index)
    for column, allowed in values.items():
        allowed = allowed if isinstance(allowed, list) else [allowed]
        keep &= runs[column].isin(allowed)
    return runs[keep]


def _l2_max(runs: pd.DataFrame, **values: Any) -> pd.DataFrame:
    """The figures' fixed pipeline: NORM l2/l2/l2, max over inner products, all samples."""
    return _pinned(
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


def mean_band(values: pd.core.groupby.SeriesGroupBy) -> pd.DataFrame:
    """Mean, 95% band (± 1.96 · std (ddof 1) / √n) and n of each group."""
    table = values.agg(["mean", "std", "size"])
    half = Z95 * table["std"].fillna(0) / np.sqrt(table["size"])
    return pd.DataFrame(
        {
            "value": table["mean"],
            "lower": table["mean"] - half,
            "upper": table["mean"] + half,
            "n": table["size"],
        }
    )


# --- Fig. 6 -------------------------------------------------------------------------------


def fig6_curves(runs: pd.DataFrame, gens: Sequence[str] | None = None) -> pd.DataFrame:
    """Seed-median accuracy per FM, data set, GEN and k ≤ 100 (task all, mapping none, NORM
    l2/l2/l2, max); each GEN's curve is forward-filled down k over the k any GEN ran; ``all``
    sits at k = −1."""
    runs = _l2_max(runs, task="all", mapping="none")
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


def _draw_fig6_panel(ax: plt.Axes, panel: pd.DataFrame) -> None:
    curves = panel[~panel["gen"].isin(["mean", "ls", "all"]) & (panel["k"] > 0)]
    at5 = curves[curves["k"] == 5].set_index("gen")["accuracy"]
    order = sorted(curves["gen"].unique(), key=lambda g: -at5.get(g, -np.inf))
    palette = dict(zip(order, sns.color_palette("tab10", len(order)), strict=True))
    for gen in order:
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
    the appendix grid of every FM × data set."""
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
    figure, ax = plt.subplots(figsize=(6.3, 3.15))
    _draw_fig6_panel(ax, chosen)
    ax.legend(loc="lower right", fontsize=8)
    save_figure(figure, path)
    fms, datasets = sorted(curves["fm"].unique()), sorted(curves["dataset"].unique())
    figure, axes = plt.subplots(
        len(fms), len(datasets), figsize=(4.2 * len(datasets), 3.2 * len(fms)), squeeze=False
    )
    for (i, fm), (j, dataset) in ((a, b) for a in enumerate(fms) for b in enumerate(datasets)):
        ax = axes[i, j]
        _draw_fig6_panel(ax, curves[(curves["fm"] == fm) & (curves["dataset"] == dataset)])
        ax.set_title(f"{fm}, {dataset}", fontsize=10)
    axes[0, 0].legend(loc="lower right", fontsize=7)
    save_figure(figure, grid_path)
    return curves.assign(
        main_panel=(curves["fm"] == panel["fm"]) & (curves["dataset"] == panel["dataset"])
    )


# --- Fig. 10 ------------------------------------------------------------------------------


def fig10_curves(runs: pd.DataFrame, shots: Sequence[int] | None = None) -> pd.DataFrame:
    """Per FM, data set, curve and shots n: the median over seeds and its 95% band
    (± 1.96 · std / √seeds). Curves: k-means with k = K at n ≥ K, and ``k = n`` (every shot a
    proxy, GEN all); K is one of the k that ran at the most shots (not a k clamped to n)."""
    runs = _pinned(
        runs,
        task="all",
        mapping="none",
        norm_pre="l2",
        norm_post="l2",
        norm_inf="l2",
        agg="max",
        distance="inner_product",
    )
    runs = runs[runs["fewshot"] > 0]
    if shots is not None:
        runs = runs[runs["fewshot"].isin(shots)]
    requested = runs.loc[runs["fewshot"] == runs["fewshot"].max(), "k"].unique()
    kmeans = runs[(runs["gen"] == "kmeans") & runs["k"].isin(requested)]
    kmeans = kmeans[kmeans["k"] <= kmeans["fewshot"]]
    chosen = pd.concat(
        [
            kmeans.assign(curve="k=" + kmeans["k"].astype(str)),
            runs[runs["gen"] == "all"].assign(curve="k=n"),
        ]
    )
    grouped = chosen.groupby(["fm", "dataset", "curve", "fewshot"], sort=False)["accuracy"]
    table = grouped.agg(median="median", std="std", seeds="size").reset_index()
    half = Z95 * table["std"].fillna(0) / np.sqrt(table["seeds"])
    table["lower"], table["upper"] = table["median"] - half, table["median"] + half
    return table.drop(columns="std").rename(columns={"fewshot": "shots"})


def fig10(runs: pd.DataFrame, path: str | os.PathLike, settings: Mapping[str, Any]) -> pd.DataFrame:
    """Fig. 10: few-shot accuracy against n, one panel per FM (rows) and data set (columns)."""
    curves = fig10_curves(runs, settings.get("shots"))
    fms, datasets = list(curves["fm"].unique()), list(curves["dataset"].unique())
    figure, axes = plt.subplots(
        len(fms),
        len(datasets),
        figsize=(1.4 * 6.3 / 3 * len(datasets), 2.8 * 4.72 / 4 * len(fms)),
        sharex=True,
        squeeze=False,
    )
    names = sorted(
        curves["curve"].unique(), key=lambda c: (c == "k=n", int(c[2:]) if c != "k=n" else 0)
    )
    extra = iter(sns.color_palette("tab10"))
    for (i, fm), (j, dataset) in ((a, b) for a in enumerate(fms) for b in enumerate(datasets)):
        ax = axes[i, j]
        for name in names:
            curve = curves[
                (curves["fm"] == fm) & (curves["dataset"] == dataset) & (curves["curve"] == name)
            ].sort_values("shots")
            if name == "k=n":
                colour, style, alpha = "black", ":", 0.1
            else:
                colour, style, alpha = SHOT_COLOURS.get(int(name[2:])) or next(extra), "-", 0.2
            ax.plot(curve["shots"], curve["median"], style, color=colour, label=name)
            ax.fill_between(
                curve["shots"], curve["lower"], curve["upper"], color=colour, alpha=alpha, lw=0
            )
        ax.set(xscale="log", title=f"{fm}, {dataset}")
        ax.grid(ls="--", alpha=0.5)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes[:, 0]:
        ax.set_ylabel("acc %")
    for ax in axes[-1]:
        ax.set_xlabel("shots per class $n$")
    figure.legend(handles, labels, loc="upper center", ncols=4, bbox_to_anchor=(0.5, 0.0))
    save_figure(figure, path)
    return curves


# --- Fig. 11a -----------------------------------------------------------------------------


def fig11a(collapse: pd.DataFrame, path: str | os.PathLike, metric: str = "nc1") -> pd.DataFrame:
    """Fig. 11a: NC1 against d for remapped data sets (mean over remaps, 95% band) above, and
    one strip per data set (dots jittered by FM, symlog) below."""
    collapse = with_d(collapse[collapse["task"] == "all"])
    remapped = remapped_datasets(collapse)
    curves = mean_band(
        collapse[collapse["dataset"].isin(remapped)].groupby(["dataset", "fm", "d"], sort=False)[
            metric
        ]
    ).reset_index()
    strips = collapse[~collapse["dataset"].isin(remapped) | (collapse["d"] == 1)]
    strips = strips[strips["split"] == "train"]
    strips = strips.assign(
        strip=strips["dataset"].where(
            strips["mapping"] == "none", strips["dataset"] + " (" + strips["mapping"] + ")"
        )
    )
    fms = list(collapse["fm"].unique())
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(0.7 * 6.3, 1.3 * 4.72), height_ratios=[3, 1]
    )
    for (dataset, fm), curve in curves.groupby(["dataset", "fm"], sort=False):
        colour = _fm_colour(fm, fms)
        label = fm if len(remapped) == 1 else f"{fm}, {dataset}"
        top.plot(curve["d"], curve["value"], color=colour, label=label)
        top.fill_between(curve["d"], curve["lower"], curve["upper"], color=colour, alpha=0.18, lw=0)
    top.set(
        ylabel=f"{metric} (d in 1)",
        ylim=(0, max(5, float(curves["upper"].max()) * 1.05) if len(curves) else 5),
    )
    top.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    top.xaxis.tick_top()
    top.xaxis.set_label_position("top")
    top.set_xlabel("$d$ original classes per task class")
    if len(curves):
        top.legend(ncols=2, loc="upper left", fontsize=8)
    names = list(dict.fromkeys(strips["strip"]))
    offsets = np.linspace(-0.18, 0.18, len(fms)) if len(fms) > 1 else [0.0]
    for x, name in enumerate(names):
        strip = strips[strips["strip"] == name]
        jitter = strip["fm"].map(dict(zip(fms, offsets, strict=True)))
        bottom.scatter(
            x + jitter, strip[metric], color=DATASET_COLOURS[x % len(DATASET_COLOURS)], s=18
        )
        bottom.text(
            x,
            -0.25,
            name,
            transform=bottom.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=9,
        )
        if x:
            bottom.axvline(x - 0.5, color="grey", alpha=0.2)
    bottom.axhline(1, ls="--", color="grey")
    bottom.set_yscale("symlog", linthresh=1)
    bottom.set(ylim=(0, 50), xlim=(-0.5, len(names) - 0.5), xticks=[], ylabel=metric)
    save_figure(figure, path)
    curves = curves.assign(panel="d curves").rename(columns={"n": "remaps"})
    strips = strips.rename(columns={metric: "value"}).assign(panel="strips")[
        ["panel", "dataset", "mapping", "fm", "d", "value"]
    ]
    return pd.concat([curves, strips], ignore_index=True)


def collapse_figure(collapse: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """Every neural-collapse metric per FM and data set (mapping, split and task in the label)."""
    collapse = collapse.assign(
        data=collapse["dataset"]
        + " "
        + collapse["mapping"]
        + " "
        + collapse["split"]
        + " "
        + collapse["task"]
    )
    width = max(4.0, 0.6 * collapse["data"].nunique())
    figure, axes = plt.subplots(
        len(COLLAPSE_METRICS), 1, figsize=(width, 2.2 * len(COLLAPSE_METRICS)), sharex=True
    )
    for ax, metric in zip(axes, COLLAPSE_METRICS, strict=True):
        sns.barplot(collapse, x="data", y=metric, hue="fm", ax=ax, legend=ax is axes[0])
        ax.set(xlabel="", ylabel=metric.replace("_", " "))
    axes[-1].tick_params(axis="x", rotation=30)
    save_figure(figure, path)
    return collapse[["fm", "dataset", "mapping", "split", "task", *COLLAPSE_METRICS]]


# --- Fig. 11b and Fig. A.8 ----------------------------------------------------------------


def remap_means(medians: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean over the remaps of each d of seed-median accuracies, with the 95% band."""
    return mean_band(medians.groupby(keys, sort=False)["accuracy"]).reset_index()


def fig11b_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Per FM: for remapped data sets, accuracy against k per d (mean over remaps of the seed
    medians, 95% band); for the others, the seed median against k per data set."""
    runs = with_d(_l2_max(runs, task="all", gen="kmeans"))
    medians = (
        runs.groupby(["fm", "dataset", "mapping", "d", "k"], sort=False)["accuracy"]
        .median()
        .reset_index()
    )
    remapped = remapped_datasets(medians)
    curves = remap_means(medians[medians["dataset"].isin(remapped)], ["fm", "dataset", "d", "k"])
    curves = curves.rename(columns={"n": "remaps"}).assign(kind="remapped")
    others = (
        medians[~medians["dataset"].isin(remapped)]
        .rename(columns={"accuracy": "value"})
        .assign(kind="dataset")
    )
    return pd.concat([curves, others], ignore_index=True)


def fig11b(
    runs: pd.DataFrame, path: str | os.PathLike, settings: Mapping[str, Any]
) -> pd.DataFrame:
    """Fig. 11b: accuracy against k, coloured by d for remapped data sets (a band over remaps),
    dashed for the other data sets; one panel per FM (2 columns). ``settings["ylims"]`` breaks
    the y axis into parts (top first), as the paper's 75–100 over 30–50."""
    curves = fig11b_curves(runs)
    fms = list(curves["fm"].unique())
    parts = settings.get("ylims") or [None]
    cols = min(2, len(fms))
    rows = int(np.ceil(len(fms) / cols))
    heights = [3, 1][: len(parts)] if len(parts) > 1 else [1]
    figure = plt.figure(figsize=(6.3 * cols / 2 + 1, 4.0 * rows))
    outer = figure.add_gridspec(rows, cols, hspace=0.35)
    d_max = max(2, int(curves["d"].max()))
    colormap = plt.get_cmap("autumn")
    datasets = list(curves.loc[curves["kind"] == "dataset", "dataset"].unique())
    for index, fm in enumerate(fms):
        inner = outer[index // cols, index % cols].subgridspec(
            len(parts), 1, height_ratios=heights, hspace=0.08
        )
        axes = [figure.add_subplot(inner[i]) for i in range(len(parts))]
        panel = curves[curves["fm"] == fm]
        for ax, limits in zip(axes, parts, strict=True):
            for (d,), curve in panel[panel["kind"] == "remapped"].groupby(["d"]):
                colour = colormap(0.95 * (d - 1) / (d_max - 1))
                ax.plot(
                    curve["k"], curve["value"], color=colour, lw=1.8, alpha=0.8, label=f"{d} in 1"
                )
                ax.fill_between(
                    curve["k"], curve["lower"], curve["upper"], color=colour, alpha=0.18, lw=0
                )
            for (dataset, mapping), curve in panel[panel["kind"] == "dataset"].groupby(
                ["dataset", "mapping"], sort=False
            ):
                colour = DATASET_COLOURS[datasets.index(dataset) % len(DATASET_COLOURS)]
                ax.plot(
                    curve["k"],
                    curve["value"],
                    "--",
                    lw=2.5,
                    color=colour,
                    label=dataset if mapping == "none" else f"{dataset} ({mapping})",
                )
            if limits is not None:
                ax.set_ylim(*limits)
        for upper, lower in itertools.pairwise(axes):
            upper.spines["bottom"].set_visible(False)
            lower.spines["top"].set_visible(False)
            upper.tick_params(labelbottom=False, bottom=False)
            for ax, y in ((upper, 0), (lower, 1)):
                ax.plot(
                    [0, 1],
                    [y, y],
                    transform=ax.transAxes,
                    marker=[(-1, -0.5), (1, 0.5)],
                    ms=10,
                    ls="none",
                    color="k",
                    mec="k",
                    clip_on=False,
                )
        axes[0].set_title(fm, fontsize=10)
        axes[-1].set_xlabel("number of proxies $k$")
        axes[0].set_ylabel("acc %")
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(
        dict(zip(labels, handles, strict=True)).values(),
        dict(zip(labels, handles, strict=True)).keys(),
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=8,
        title="$d$ in 1 / data set",
    )
    save_figure(figure, path)
    return curves


def figA8_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Per FM and d of the remapped data sets: mean (k-means k = 1), least squares (k-least-squares
    k = 1), and k-means / k-least-squares at their best k (highest remap-mean accuracy, ties to
    the smallest k), each the mean over remaps of seed medians with its 95% band."""
    kmeans = _l2_max(runs, task="all", gen="kmeans")
    kls = _pinned(
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


def figA8(runs: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """Fig. A.8: accuracy at the best k against d, one panel per FM."""
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
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    axes[0, 0].set_ylabel("acc % at the best $k$")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=4)
    save_figure(figure, path)
    return curves


# --- Fig. 12 ------------------------------------------------------------------------------


def fig12_points(runs: pd.DataFrame, collapse: pd.DataFrame, metric: str = "nc1") -> pd.DataFrame:
    """Per FM and data set (remapped data sets: per d): the gain acc(k = 5) − acc(k = 1) in
    points, joined per seed and averaged over seeds, beside the NC1 of the task ``all``;
    remapped data sets average both over the remaps of each d (PAPER.md §D.6)."""
    runs = _l2_max(runs, task="all", gen="kmeans", weighting="uniform", k=[1, 5])
    keys = ["fm", "dataset", "mapping"]
    wide = runs.pivot_table(index=[*keys, "seed"], columns="k", values="accuracy").dropna()
    gain = (wide[5] - wide[1]).groupby(level=keys).mean().rename("gain").reset_index()
    measured = collapse[collapse["task"] == "all"][[*keys, *COLLAPSE_METRICS]]
    points = with_d(gain.merge(measured, on=keys))
    remapped = points["dataset"].isin(remapped_datasets(points))
    averaged = (
        points[remapped]
        .groupby(["fm", "dataset", "d"], sort=False)[["gain", *COLLAPSE_METRICS]]
        .mean()
        .reset_index()
    )
    points = pd.concat(
        [
            averaged.assign(mapping="d in 1", remapped=True),
            points[~remapped].assign(remapped=False),
        ],
        ignore_index=True,
    )
    return points.assign(x=points[metric])


def fig12_statistics(points: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The fit and correlations Fig. 12 reports: R² of gain on log10(NC1), Spearman's ρ on
    log10(NC1) over all points and below/above NC1 = 1, Pearson's r on raw NC1, and Spearman's ρ
    of the gain with every other collapse metric."""
    rows = []
    x, gain = points[metric], points["gain"]
    fit = linregress(np.log10(x), gain)
    rows.append(
        {"name": "r2", "value": fit.rvalue**2, "p_value": fit.pvalue, "points": len(points)}
    )
    for suffix, keep in (("", x > 0), ("_below_1", x < 1), ("_above_1", x > 1)):
        if keep.sum() >= 3:
            rho = spearmanr(np.log10(x[keep]), gain[keep])
            r = pearsonr(x[keep], gain[keep])
            rows.append(
                {
                    "name": f"spearman_rho{suffix}",
                    "value": rho.statistic,
                    "p_value": rho.pvalue,
                    "points": int(keep.sum()),
                }
            )
            rows.append(
                {
                    "name": f"pearson_r{suffix}",
                    "value": r.statistic,
                    "p_value": r.pvalue,
                    "points": int(keep.sum()),
                }
            )
    for other in COLLAPSE_METRICS:
        rho = spearmanr(points[other], gain)
        rows.append(
            {
                "name": f"spearman_rho[{other}]",
                "value": rho.statistic,
                "p_value": rho.pvalue,
                "points": len(points),
            }
        )
    return pd.DataFrame(rows)


def fig12(
    runs: pd.DataFrame, collapse: pd.DataFrame, path: str | os.PathLike, metric: str = "nc1"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 12: the gain of k = 5 over k = 1 against NC1 (log x) with a regression line on
    log10(NC1) and its R²; returns the points and the statistics."""
    points = fig12_points(runs, collapse, metric)
    statistics = fig12_statistics(points, metric)
    fms = list(dict.fromkeys(points["fm"]))
    figure, ax = plt.subplots(figsize=(6.3, 4.72))
    for fm in fms:
        colour = _fm_colour(fm, fms)
        mine = points[points["fm"] == fm]
        filled, hollow = mine[mine["remapped"]], mine[~mine["remapped"]]
        ax.scatter(
            filled["x"],
            filled["gain"],
            s=60,
            color=colour,
            edgecolors="black",
            linewidths=0.5,
            label=fm,
        )
        ax.scatter(
            hollow["x"],
            hollow["gain"],
            s=60,
            facecolors="none",
            edgecolors=colour,
            linewidths=1.5,
            label=None if len(filled) else fm,
        )
    fit = linregress(np.log10(points["x"]), points["gain"])
    xs = np.geomspace(points["x"].min(), points["x"].max(), 50)
    ax.plot(xs, fit.intercept + fit.slope * np.log10(xs), "--", color="grey")
    r2 = statistics.set_index("name").at["r2", "value"]
    ax.text(0.03, 0.95, f"R²={r2:.2f}", transform=ax.transAxes, va="top")
    ax.set(
        xscale="log",
        xlabel=metric.replace("_", " ").upper() if metric == "nc1" else metric,
        ylabel="acc % increase (k=5 vs. k=1)",
    )
    ax.legend(loc="best", fontsize=8)
    save_figure(figure, path)
    return points.drop(columns="x"), statistics


# --- GEN time -----------------------------------------------------------------------------

# The GEN-time figure's methods (PAPER.md §D.8): (name, gen, k, NORMpre).
GEN_TIME_METHODS = [
    ("mean k1", "mean", 1, "l2"), ("kmeans k5", "kmeans", 5, "l2"),
    ("kmeans k20", "kmeans", 20, "l2"), ("kls k1", "kls", 1, "none"),
    ("kls k5", "kls", 5, "none"), ("kls k20", "kls", 20, "none"),
]  # fmt: skip


def gen_times(runs: pd.DataFrame) -> pd.DataFrame:
    """Median and std over seeds of the GEN time per method and group (FM, data set, mapping,
    task); least squares counts as k-least-squares with k = 1."""
    runs = _pinned(runs, agg="max", distance="inner_product", fewshot=-1)
    runs = runs.assign(gen=runs["gen"].where(runs["gen"] != "ls", "kls"))
    tables = []
    for name, gen, k, norm in GEN_TIME_METHODS:
        chosen = _pinned(runs, gen=gen, k=k, norm_pre=norm)
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
