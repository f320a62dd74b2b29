"""Fig. 10: few-shot accuracy against shots per class (PAPER.md §D.3)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from imprint.analysis.figures.common import band, pinned, save_figure

# Fig. 10's colours per k (PAPER.md §D.3); the k = n curve is black and dotted.
SHOT_COLOURS = {
    1: (9 / 255, 1.0, 1.0),
    5: (137 / 255, 111 / 255, 251 / 255),
    20: (1.0, 0.0, 250 / 255),
}


# Fig. 10's reference curves (not in the paper): the named baselines, grey and dashed.
REFERENCES = {"linear_probe": ("linear probe", "dimgrey"), "knn": ("k-NN", "darkgrey")}


def fig10_curves(runs: pd.DataFrame, shots: Sequence[int] | None = None) -> pd.DataFrame:
    """Per FM, data set, curve and shots n: the median over seeds and its 95% band
    (± 1.96 · std / √seeds). Curves: k-means with k = K at n ≥ K, and ``k = n`` (every shot a
    proxy, GEN all); K is one of the k that ran at the most shots (not a k clamped to n); and
    the named linear probe and k-NN (runs of ``methods`` experiments), where they ran."""
    named = runs["method"] if "method" in runs else pd.Series(None, index=runs.index)
    references = runs[named.isin(list(REFERENCES))]
    references = references.assign(curve=named[references.index].map(lambda m: REFERENCES[m][0]))
    runs = pinned(
        runs,
        task="all",
        mapping="none",
        norm_pre="l2",
        norm_post="l2",
        norm_inf="l2",
        agg="max",
        distance="inner_product",
    )
    references = pinned(references, task="all", mapping="none")
    runs, references = (r[r["fewshot"] > 0] for r in (runs, references))
    if shots is not None:
        runs, references = (r[r["fewshot"].isin(shots)] for r in (runs, references))
    requested = runs.loc[runs["fewshot"] == runs["fewshot"].max(), "k"].unique()
    kmeans = runs[(runs["gen"] == "kmeans") & runs["k"].isin(requested)]
    kmeans = kmeans[kmeans["k"] <= kmeans["fewshot"]]
    chosen = pd.concat(
        [
            kmeans.assign(curve="k=" + kmeans["k"].astype(str)),
            runs[runs["gen"] == "all"].assign(curve="k=n"),
            references,
        ]
    )
    grouped = chosen.groupby(["fm", "dataset", "curve", "fewshot"], sort=False)["accuracy"]
    table = band(grouped, centre="median").reset_index()
    table = table.rename(columns={"value": "median", "n": "seeds", "fewshot": "shots"})
    return table[["fm", "dataset", "curve", "shots", "median", "seeds", "lower", "upper"]]


def fig10(runs: pd.DataFrame, path: str | os.PathLike, settings: Mapping[str, Any]) -> pd.DataFrame:
    """Fig. 10: few-shot accuracy against n, one panel per FM (rows) and data set (columns)."""
    curves = fig10_curves(runs, settings.get("shots"))
    fms, datasets = list(curves["fm"].unique()), list(curves["dataset"].unique())
    figure, axes = plt.subplots(
        len(fms),
        len(datasets),
        figsize=(1.4 * 6.3 / 3 * len(datasets) + 1.0, 2.8 * 4.72 / 4 * len(fms)),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    labels = {label: colour for label, colour in REFERENCES.values()}
    names = sorted(
        curves["curve"].unique(),
        key=lambda c: (c in labels, c == "k=n", int(c[2:]) if c[:2] == "k=" and c != "k=n" else 0),
    )
    extra = iter(sns.color_palette("tab10"))
    for (i, fm), (j, dataset) in ((a, b) for a in enumerate(fms) for b in enumerate(datasets)):
        ax = axes[i, j]
        for name in names:
            curve = curves[
                (curves["fm"] == fm) & (curves["dataset"] == dataset) & (curves["curve"] == name)
            ].sort_values("shots")
            if name in labels:
                colour, style, alpha = labels[name], "--", 0.1
            elif name == "k=n":
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
    figure.legend(handles, labels, loc="outside right center")
    save_figure(figure, path)
    return curves
