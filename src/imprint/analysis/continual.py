"""The class-incremental study's numbers as the field reports them, and its figure: per method,
the average incremental accuracy (the mean over steps of the accuracy on the classes seen), the
last accuracy, forgetting (each earlier group's best accuracy at an earlier step minus its
accuracy at the last, averaged over groups: it counts confusion with later classes too) and the
mean gap to the joint fit; mean ± standard deviation over (data set, FM, class order)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

METRICS = ["average_accuracy", "last_accuracy", "forgetting", "gap_to_joint"]


def forgetting(group_accuracy: Sequence[Sequence[float]]) -> float:
    """The mean over every group but the last step's of its best accuracy before the last step
    minus its accuracy at the last step (``group_accuracy``: per step, per group seen); 0 for a
    single step."""
    last = group_accuracy[-1]
    drops = [
        max(step[g] for step in group_accuracy[:-1] if len(step) > g) - last[g]
        for g in range(len(last) - 1)
    ]
    return float(np.mean(drops)) if drops else 0.0


def summarize(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per ``by`` (e.g. method and class order): the ``METRICS`` from
    ``imprint.study.continual.incremental_runs``' rows."""

    def one(steps: pd.DataFrame) -> pd.Series:
        steps = steps.sort_values("step")
        return pd.Series(
            {
                "average_accuracy": steps["accuracy"].mean(),
                "last_accuracy": steps["accuracy"].iloc[-1],
                "forgetting": forgetting(steps["group_accuracy"].tolist()),
                "gap_to_joint": steps["gap_to_joint"].mean(),
            }
        )

    return runs.groupby(list(by), sort=True).apply(one, include_groups=False).reset_index()


def continual_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method: each metric's mean and standard deviation over (data set, FM, order)."""
    per_run = summarize(runs, ["method", "dataset", "fm", "order"])
    table = per_run.groupby("method")[METRICS].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    return table.reset_index()


def continual_voters(runs: pd.DataFrame, metric: str = "average_accuracy") -> pd.DataFrame:
    """The CD diagram's voters: per (data set, FM, order), each method's ``metric``."""
    per_run = summarize(runs, ["method", "dataset", "fm", "order"])
    return per_run.pivot_table(index=["dataset", "fm", "order"], columns="method", values=metric)


def continual_markdown(table: pd.DataFrame) -> str:
    """The table as Markdown, mean ± standard deviation per cell (the mean alone where a
    method ran in one group, whose spread is undefined)."""
    header = ["method", "average accuracy", "last accuracy", "forgetting", "gap to joint"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [
            f"{row[f'{m}_mean']:.2f}" + ("" if pd.isna(s := row[f"{m}_std"]) else f" ± {s:.2f}")
            for m in METRICS
        ]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def continual_figure(runs: pd.DataFrame) -> plt.Figure:
    """Accuracy on the classes seen against their number, one line per method (the mean over
    data sets, FMs and orders) with a band of ± one standard deviation, one panel per data set."""
    datasets = sorted(runs["dataset"].unique())
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.5), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        sns.lineplot(
            data=runs[runs["dataset"] == dataset], x="classes_seen", y="accuracy", hue="method",
            errorbar="sd", marker="o", ax=ax,
        )  # fmt: skip
        ax.set(title=dataset, xlabel="classes seen", ylabel="accuracy on the classes seen (%)")
        ax.set_ylim(top=min(ax.get_ylim()[1], 100.5))  # a band of ± 1 sd may pass 100 %
    figure.tight_layout()
    return figure
