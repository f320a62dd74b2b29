"""The paper's figures and Table 1 from tidy results tables, drawn with seaborn/matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scikit_posthocs as sp
import seaborn as sns
from scipy.stats import spearmanr

from imprint.io import atomic_path
from imprint.tasks import classes_per_task_class

GEN_LABELS = {
    "kmeans": "k-means",
    "kmedoids": "k-medoids",
    "kmedoids_pam": "k-medoids (PAM)",
    "cov_max": "k-cov-max",
    "random": "k-random",
    "fps": "k-fps",
    "kls": "k-least-squares",
    "mean": "mean",
    "ls": "least-squares",
    "all": "all",
}


def save_figure(figure: plt.Figure, path: str | os.PathLike) -> None:
    """Save as PDF (and a PNG beside it for the report), atomically."""
    for suffix in (".pdf", ".png"):
        target = Path(path).with_suffix(suffix)
        with atomic_path(target) as temporary:
            figure.savefig(temporary, format=suffix[1:], bbox_inches="tight", dpi=150)
    plt.close(figure)


def _seed_medians(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return runs.groupby(keys, as_index=False)["accuracy"].median()


def _panels(frame: pd.DataFrame, columns: list[str]) -> tuple[plt.Figure, list, list[tuple]]:
    keys = list(frame.groupby(columns).groups)
    keys = [k if isinstance(k, tuple) else (k,) for k in keys]
    n = len(keys)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    figure, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return figure, list(axes.flat[:n]), keys


def fig6(runs: pd.DataFrame, path: str | os.PathLike) -> None:
    """Accuracy against the number of proxies k per GEN; one panel per FM × data set."""
    runs = runs[(runs["mapping"] == "none") & (runs["task"] == "all")]
    medians = _seed_medians(runs, ["fm", "dataset", "gen", "k"])
    figure, axes, keys = _panels(medians, ["fm", "dataset"])
    palette = dict(zip(GEN_LABELS, sns.color_palette("tab10", len(GEN_LABELS)), strict=True))
    for ax, (fm, dataset) in zip(axes, keys, strict=True):
        panel = medians[(medians["fm"] == fm) & (medians["dataset"] == dataset)]
        for gen, curve in panel.groupby("gen"):
            colour = palette[gen]
            if gen == "all":
                ax.axhline(curve["accuracy"].iloc[0], ls="--", color=colour, label=GEN_LABELS[gen])
            elif gen in ("mean", "ls"):
                ax.scatter(
                    [1],
                    curve["accuracy"],
                    color=colour,
                    marker="*",
                    s=90,
                    zorder=3,
                    label=GEN_LABELS[gen],
                )
            else:
                ax.plot(
                    curve["k"],
                    curve["accuracy"],
                    marker="o",
                    ms=3,
                    color=colour,
                    label=GEN_LABELS[gen],
                )
        ax.set(
            xscale="log",
            xlabel="proxies per class k",
            ylabel="accuracy (%)",
            title=f"{fm} · {dataset}",
        )
    axes[0].legend(fontsize=7, ncols=2)
    save_figure(figure, path)


def shots_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per FM, data set, proxies (k-means k = K, or all) and shots n. The sweep turns
    k > n into k = n, so the curve for K reads the run with k = min(K, n)."""
    medians = _seed_medians(runs, ["fm", "dataset", "gen", "k", "fewshot"])
    requested = sorted(
        medians.loc[(medians["gen"] == "kmeans") & (medians["fewshot"] == -1), "k"].unique()
    )
    rows = []
    for (fm, dataset, n), at_n in medians.groupby(["fm", "dataset", "fewshot"]):
        curves = {
            f"k={K}": at_n[(at_n["gen"] == "kmeans") & (at_n["k"] == (K if n == -1 else min(K, n)))]
            for K in requested
        }
        curves["all"] = at_n[at_n["gen"] == "all"]
        for proxies, match in curves.items():
            if len(match):
                rows.append(
                    {
                        "fm": fm,
                        "dataset": dataset,
                        "fewshot": n,
                        "proxies": proxies,
                        "accuracy": match["accuracy"].iloc[0],
                    }
                )
    return pd.DataFrame(rows)


def fig10(runs: pd.DataFrame, path: str | os.PathLike) -> None:
    """Accuracy against shots per class n for k-means with several k, and all shots as proxies."""
    curves = shots_curves(runs[(runs["mapping"] == "none") & (runs["task"] == "all")])
    full = int(curves["fewshot"].max()) * 2 if (curves["fewshot"] > 0).any() else 1
    curves["shots"] = curves["fewshot"].where(curves["fewshot"] > 0, full)
    order = sorted(
        curves["proxies"].unique(), key=lambda p: (p == "all", int(p[2:]) if p != "all" else 0)
    )
    figure, axes, keys = _panels(curves, ["fm", "dataset"])
    for ax, (fm, dataset) in zip(axes, keys, strict=True):
        panel = curves[(curves["fm"] == fm) & (curves["dataset"] == dataset)]
        sns.lineplot(
            panel, x="shots", y="accuracy", hue="proxies", hue_order=order, marker="o", ax=ax
        )
        ax.set(
            xscale="log",
            xlabel="shots per class n (rightmost: all)",
            ylabel="accuracy (%)",
            title=f"{fm} · {dataset}",
        )
    save_figure(figure, path)


def fig11a(collapse: pd.DataFrame, path: str | os.PathLike) -> None:
    """NC1 per FM and data set (mapping, classes)."""
    collapse = collapse.assign(
        data=collapse["dataset"] + " " + collapse["mapping"] + " " + collapse["task"]
    )
    figure, ax = plt.subplots(figsize=(max(4, 0.8 * len(collapse)), 3.4))
    sns.barplot(collapse, x="data", y="nc1", hue="fm", ax=ax)
    ax.set(yscale="log", xlabel="", ylabel="NC1 (lower: more collapsed)")
    ax.tick_params(axis="x", rotation=30)
    save_figure(figure, path)


def fig11b(runs: pd.DataFrame, path: str | os.PathLike) -> None:
    """Accuracy against k on tasks whose classes merge d original classes; the peak is at k = d."""
    runs = runs.assign(
        d=[
            classes_per_task_class(m, d)
            for m, d in zip(runs["mapping"], runs["dataset"], strict=True)
        ]
    )
    medians = _seed_medians(runs, ["fm", "dataset", "d", "k"])
    figure, axes, keys = _panels(medians, ["fm", "dataset"])
    for ax, (fm, dataset) in zip(axes, keys, strict=True):
        panel = medians[(medians["fm"] == fm) & (medians["dataset"] == dataset)]
        sns.lineplot(panel, x="k", y="accuracy", hue="d", marker="o", palette="viridis", ax=ax)
        for d in panel["d"].unique():
            ax.axvline(d, ls=":", color="grey", lw=0.8)
        ax.set(
            xlabel="proxies per class k",
            ylabel="accuracy (%)",
            title=f"{fm} · {dataset} (d merged)",
        )
    save_figure(figure, path)


def multi_proxy_gain(runs: pd.DataFrame) -> pd.DataFrame:
    """Per FM, data set and mapping: the best k-means accuracy with k > 1 minus that with k = 1."""
    kmeans = _seed_medians(
        runs[(runs["gen"] == "kmeans") & (runs["task"] == "all")], ["fm", "dataset", "mapping", "k"]
    )
    single = kmeans[kmeans["k"] == 1].set_index(["fm", "dataset", "mapping"])["accuracy"]
    multi = kmeans[kmeans["k"] > 1].groupby(["fm", "dataset", "mapping"])["accuracy"].max()
    return (multi - single).rename("gain").reset_index()


# The neural-collapse metrics of the collapse table that figures and correlations show.
COLLAPSE_METRICS = [
    "nc1", "nc1_paper", "cdnv", "equinorm", "equiangularity", "max_equiangularity",
    "hyperspherical_energy",
]  # fmt: skip


def gain_correlations(points: pd.DataFrame) -> pd.DataFrame:
    """Spearman's ρ (and its p-value) between the gain and each collapse metric, over points."""
    rows = []
    for metric in COLLAPSE_METRICS:
        rho, p_value = spearmanr(points[metric], points["gain"])
        rows.append(
            {"metric": metric, "spearman_rho": rho, "p_value": p_value, "points": len(points)}
        )
    return pd.DataFrame(rows)


def collapse_figure(collapse: pd.DataFrame, path: str | os.PathLike) -> None:
    """Every neural-collapse metric per FM and data set (mapping, split and task in the label)."""
    collapse = collapse.assign(
        data=collapse["dataset"] + " " + collapse["mapping"] + " " + collapse["task"]
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


def fig12(runs: pd.DataFrame, collapse: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """Gain of several proxies over one against NC1; returns the gain's Spearman correlation
    with every collapse metric over the plotted points."""
    gain = multi_proxy_gain(runs)
    points = gain.merge(collapse[collapse["task"] == "all"], on=["fm", "dataset", "mapping"])
    figure, ax = plt.subplots(figsize=(4.5, 3.6))
    sns.scatterplot(points, x="nc1", y="gain", hue="dataset", style="fm", s=70, ax=ax)
    for _, row in points.iterrows():
        ax.annotate(
            row["mapping"],
            (row["nc1"], row["gain"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set(xscale="log", xlabel="NC1", ylabel="accuracy gain of k > 1 over k = 1 (points)")
    save_figure(figure, path)
    return gain_correlations(points)


def cd_diagram(
    summary: pd.DataFrame, pvalues: pd.DataFrame, title: str, path: str | os.PathLike, alpha: float
) -> None:
    """A critical-difference diagram: average ranks, with bars joining configurations that the
    post-hoc test does not tell apart at ``alpha``."""
    ranks = summary.set_index("config")["average_rank"]
    figure, ax = plt.subplots(figsize=(8, 0.5 + 0.35 * len(ranks)))
    sp.critical_difference_diagram(ranks, pvalues, alpha=alpha, ax=ax, label_props={"fontsize": 7})
    ax.set_title(title, fontsize=9)
    save_figure(figure, path)


def table1(summary: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The named methods with their components (as ``runs`` ran them), average accuracy and
    average rank."""
    components = runs.drop_duplicates("method").set_index("method")
    rows = []
    for _, row in summary.iterrows():
        method = components.loc[row["config"]]
        agg = "max" if method["agg"] == "max" else f"{method['m']}-nn ({method['distance']})"
        gen = (
            method["gen"]
            if method["gen"] in ("mean", "ls")
            else f"{method['gen']} (k={method['k']})"
        )
        rows.append(
            {
                "method": row["config"],
                "NORMpre": method["norm_pre"],
                "GEN": gen,
                "NORMpost": method["norm_post"],
                "NORMinf": method["norm_inf"],
                "AGG": agg,
                "avg accuracy (%)": round(row["average_accuracy"], 2),
                "avg rank": round(row["average_rank"], 2),
                "groups": int(row["groups"]),
            }
        )
    return pd.DataFrame(rows)
