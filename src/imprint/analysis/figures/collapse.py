"""Neural collapse and what it predicts: Fig. 11a (NC1 per FM and data set), Fig. 11b (accuracy
against k on d-merged tasks), Fig. 12 (the gain of k = 5 against NC1) and every collapse metric
(PAPER.md §D.4–D.6)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.lines import Line2D
from scipy.stats import linregress, pearsonr, spearmanr

from imprint.analysis.figures.common import (
    band,
    l2_max,
    remap_means,
    remapped_datasets,
    save_figure,
    with_d,
)
from imprint.study.config import fig12_split

# The neural-collapse metrics of the collapse table that the collapse figure shows.
COLLAPSE_METRICS = [
    "nc1", "nc1_paper", "cdnv", "equinorm", "equiangularity", "max_equiangularity",
    "hyperspherical_energy",
]  # fmt: skip
FM_COLOURS = {
    "resnet18": "tab:olive",
    "resnet50": "tab:cyan",
    "vit_b_16": "tab:red",
    "swin_b": "tab:pink",
}
DATASET_COLOURS = ["tab:blue", "tab:purple", "tab:green", "tab:orange", "tab:brown", "tab:gray"]


def fm_colour(fm: str, order: Sequence[str]) -> Any:
    return FM_COLOURS.get(fm, sns.color_palette("tab10")[list(order).index(fm) % 10])


def fig11a(collapse: pd.DataFrame, path: str | os.PathLike, metric: str = "nc1") -> pd.DataFrame:
    """Fig. 11a: NC1 (``metric``: ``nc1`` or the reference's ``nc1_paper``) against d for
    remapped data sets (mean over remaps, 95% band; the paper's axis, 0 to 5, with a note of
    the means above it) above, and one strip per data set (dots jittered by FM, symlog) below."""
    collapse = with_d(collapse[collapse["task"] == "all"])
    remapped = remapped_datasets(collapse)
    curves = band(
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
    _d_curves(top, curves, fms, single_dataset=len(remapped) == 1)
    _strips(bottom, strips, fms, metric)
    save_figure(figure, path)
    curves = curves.assign(panel="d curves").rename(columns={"n": "remaps"})
    strips = strips.rename(columns={metric: "value"}).assign(panel="strips")[
        ["panel", "dataset", "mapping", "fm", "d", "value"]
    ]
    return pd.concat([curves, strips], ignore_index=True)


def _d_curves(ax: plt.Axes, curves: pd.DataFrame, fms: list[str], single_dataset: bool) -> None:
    """Fig. 11a's upper panel: NC1 against d per (data set, FM), on the paper's axis (0 to 5)."""
    for (dataset, fm), curve in curves.groupby(["dataset", "fm"], sort=False):
        colour = fm_colour(fm, fms)
        label = fm if single_dataset else f"{fm}, {dataset}"
        ax.plot(curve["d"], curve["value"], color=colour, label=label)
        ax.fill_between(curve["d"], curve["lower"], curve["upper"], color=colour, alpha=0.18, lw=0)
    ax.set(ylabel="NC1 ($d$ in 1)", ylim=(0, 5))
    above = int((curves["value"] > 5).sum())
    if above:  # the paper's axis stops at 5: say what it leaves out
        ax.text(
            0.98, 0.97, f"{above} mean(s) above 5 not shown", transform=ax.transAxes,
            ha="right", va="top", fontsize=8,
        )  # fmt: skip
    ax.set_xticks([d for d in (1, 5, 10) if d <= max(curves["d"].max(), 1)] if len(curves) else [])
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("$d$ original classes per task class")
    if len(curves):
        ax.legend(ncols=2, loc="upper left", fontsize=8)


def _strips(ax: plt.Axes, strips: pd.DataFrame, fms: list[str], metric: str) -> None:
    """Fig. 11a's lower panel: one strip of NC1 per data set, dots jittered by FM (symlog)."""
    names = list(dict.fromkeys(strips["strip"]))
    offsets = np.linspace(-0.18, 0.18, len(fms)) if len(fms) > 1 else [0.0]
    for x, name in enumerate(names):
        strip = strips[strips["strip"] == name]
        jitter = strip["fm"].map(dict(zip(fms, offsets, strict=True)))
        ax.scatter(x + jitter, strip[metric], color=DATASET_COLOURS[x % len(DATASET_COLOURS)], s=18)
        ax.text(
            x, -0.25, name, transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=9
        )
        if x:
            ax.axvline(x - 0.5, color="grey", alpha=0.2)
    ax.axhline(1, ls="--", color="grey")
    ax.set_yscale("symlog", linthresh=1)
    ax.set(ylim=(0, 50), xlim=(-0.5, len(names) - 0.5), xticks=[], ylabel="NC1")


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


def fig11b_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Per FM: for remapped data sets, accuracy against k per d (mean over remaps of the seed
    medians, 95% band); for the others, the seed median against k per data set."""
    runs = with_d(l2_max(runs, task="all", gen="kmeans"))
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
    """Fig. 11b: accuracy against k, coloured by d for remapped data sets (a band over remaps;
    a discrete colour bar for d), dashed for the other data sets; one panel per FM (2 columns).
    ``settings["ylims"]`` breaks the y axis into parts (top first), as the paper's 75–100 over
    30–50; the remapped curves are drawn in the top part only."""
    curves = fig11b_curves(runs)
    fms = list(curves["fm"].unique())
    parts = settings.get("ylims") or [None]
    cols = min(2, len(fms))
    rows = int(np.ceil(len(fms) / cols))
    heights = [3, 1][: len(parts)] if len(parts) > 1 else [1]
    figure = plt.figure(figsize=(6.3 * cols / 2 + 1.5, 4.0 * rows))
    outer = figure.add_gridspec(
        rows, cols + 1, width_ratios=[1] * cols + [0.04], hspace=0.35, wspace=0.3
    )
    d_values = sorted(int(d) for d in curves.loc[curves["kind"] == "remapped", "d"].unique())
    d_max = max(2, *d_values) if d_values else 2
    colormap = plt.get_cmap("autumn")
    d_colours = {d: colormap(0.95 * (d - 1) / (d_max - 1)) for d in range(1, d_max + 1)}
    datasets = list(curves.loc[curves["kind"] == "dataset", "dataset"].unique())
    for index, fm in enumerate(fms):
        inner = outer[index // cols, index % cols].subgridspec(
            len(parts), 1, height_ratios=heights, hspace=0.08
        )
        axes = [figure.add_subplot(inner[0])]
        axes += [figure.add_subplot(inner[i], sharex=axes[0]) for i in range(1, len(parts))]
        _accuracy_panel(axes, curves[curves["fm"] == fm], parts, d_colours, datasets)
        axes[0].set_title(fm, fontsize=10)
        if index + cols >= len(fms):  # no panel below this one
            axes[-1].set_xlabel("number of proxies $k$")
        axes[0].set_ylabel("acc %")
    if d_values:
        bounds = np.arange(0.5, d_max + 1)
        colour_bar = figure.colorbar(
            ScalarMappable(
                BoundaryNorm(bounds, d_max), ListedColormap([d_colours[d] for d in d_colours])
            ),
            cax=figure.add_subplot(outer[:, -1]),
            ticks=range(1, d_max + 1),
        )
        colour_bar.set_label("$d$ original classes per task class")
    handles = dict(zip(*reversed(figure.axes[0].get_legend_handles_labels()), strict=True))
    if handles:
        figure.legend(
            handles.values(), handles.keys(), loc="upper center", bbox_to_anchor=(0.5, 0.02),
            ncols=4, fontsize=8,
        )  # fmt: skip
    save_figure(figure, path)
    return curves


def _accuracy_panel(
    axes: list[plt.Axes],
    panel: pd.DataFrame,
    parts: Sequence[Any],
    d_colours: Mapping[int, Any],
    datasets: list[str],
) -> None:
    """One FM's panel of Fig. 11b, its y axis broken into ``axes`` (top first): the remapped
    curves per d in the top part, the other data sets dashed in every part."""
    for (d,), curve in panel[panel["kind"] == "remapped"].groupby(["d"]):
        colour = d_colours[int(d)]
        axes[0].plot(curve["k"], curve["value"], color=colour, lw=1.8, alpha=0.8)
        axes[0].fill_between(
            curve["k"], curve["lower"], curve["upper"], color=colour, alpha=0.18, lw=0
        )
    for ax, limits in zip(axes, parts, strict=True):
        for (dataset, mapping), curve in panel[panel["kind"] == "dataset"].groupby(
            ["dataset", "mapping"], sort=False
        ):
            colour = DATASET_COLOURS[datasets.index(dataset) % len(DATASET_COLOURS)]
            label = dataset if mapping == "none" else f"{dataset} ({mapping})"
            ax.plot(curve["k"], curve["value"], "--", lw=2.5, color=colour, label=label)
        if limits is not None:
            ax.set_ylim(*limits)
    for upper, lower in itertools.pairwise(axes):  # the break: hidden spines, diagonal marks
        upper.spines["bottom"].set_visible(False)
        lower.spines["top"].set_visible(False)
        upper.tick_params(labelbottom=False, bottom=False)
        for ax, y in ((upper, 0), (lower, 1)):
            ax.plot(
                [0, 1], [y, y], transform=ax.transAxes, marker=[(-1, -0.5), (1, 0.5)], ms=10,
                ls="none", color="k", mec="k", clip_on=False,
            )  # fmt: skip


def fig12_points(runs: pd.DataFrame, collapse: pd.DataFrame, metric: str = "nc1") -> pd.DataFrame:
    """Per FM and data set (remapped data sets: per d): the gain acc(k = 5) − acc(k = 1) in
    points, joined per seed and averaged over seeds, beside the NC1 of the task ``all`` on the
    split ``fig12_split`` names;
    remapped data sets average both over the remaps of each d (PAPER.md §D.6)."""
    runs = l2_max(runs, task="all", gen="kmeans", weighting="uniform", k=[1, 5])
    keys = ["fm", "dataset", "mapping"]
    wide = runs.pivot_table(index=[*keys, "seed"], columns="k", values="accuracy").dropna()
    gain = (wide[5] - wide[1]).groupby(level=keys).mean().rename("gain").reset_index()
    wanted = (collapse["task"] == "all") & (
        collapse["split"] == collapse["dataset"].map(fig12_split)
    )
    measured = collapse[wanted][[*keys, *COLLAPSE_METRICS]]
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
        colour = fm_colour(fm, fms)
        mine = points[points["fm"] == fm]
        filled, hollow = mine[mine["remapped"]], mine[~mine["remapped"]]
        ax.scatter(
            filled["x"], filled["gain"], s=60, color=colour, edgecolors="black", linewidths=0.5
        )
        ax.scatter(
            hollow["x"], hollow["gain"], s=60, facecolors="none", edgecolors=colour, linewidths=1.5
        )
    marker = dict(marker="o", ls="none", ms=8)
    by_fm = [Line2D([], [], color=fm_colour(fm, fms), label=fm, **marker) for fm in fms]
    remapped = list(dict.fromkeys(points.loc[points["remapped"], "dataset"]))
    by_kind = []
    if remapped:
        label = f"{', '.join(remapped)} ($d$ in 1, mean over remaps)"
        by_kind.append(Line2D([], [], color="grey", mec="black", label=label, **marker))
    if not points["remapped"].all():
        by_kind.append(Line2D([], [], color="grey", mfc="none", label="other data sets", **marker))
    outside = dict(loc="upper left", fontsize=8, borderaxespad=0)
    ax.add_artist(ax.legend(handles=by_fm, title="FM", bbox_to_anchor=(1.02, 1), **outside))
    ax.legend(handles=by_kind, bbox_to_anchor=(1.02, 0.45), **outside)
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
    save_figure(figure, path)
    return points.drop(columns="x"), statistics
