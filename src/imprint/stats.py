"""Statistics over many runs (SPEC §5): median over seeds, ranks within groups, Friedman test,
post-hoc tests and the configurations a critical-difference diagram compares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy.stats import friedmanchisquare

GROUP_COLUMNS = ["fm", "dataset", "mapping", "task"]
POSTHOC_TESTS = ("wilcoxon", "nemenyi", "conover")
# Every parameter that can distinguish two runs of one group, bar the seed.
CONFIG_COLUMNS = [
    "norm_pre", "gen", "k", "norm_post", "norm_inf", "agg", "distance", "weighting", "m",
    "fewshot", "lambda_reg", "weibull",
]  # fmt: skip


def _readable_label(row: pd.Series) -> str:
    """A short name of one configuration, e.g. ``l2 | kmeans k=20 | l2 | l2 | max``."""
    if isinstance(row.get("method"), str):
        return row["method"]
    gen = row["gen"] if row["gen"] in ("mean", "ls", "all") else f"{row['gen']} k={row['k']}"
    if row["agg"] == "max":
        agg = "max" if row["distance"] == "inner_product" else f"max {row['distance']}"
    else:
        agg = f"{row['m']}-nn {row['distance']}" + (" w" if row["weighting"] != "uniform" else "")
    shots = "" if row["fewshot"] == -1 else f" | {row['fewshot']}-shot"
    return f"{row['norm_pre']} | {gen} | {row['norm_post']} | {row['norm_inf']} | {agg}{shots}"


def _effective(runs: pd.DataFrame) -> pd.DataFrame:
    """The parameters that matter to each run, as text: ``max`` ignores m and weighting, and λ
    matters only to ``ls`` and ``kls``."""
    columns = [c for c in CONFIG_COLUMNS if c in runs.columns]
    params = runs[columns].astype(str)
    is_max = runs["agg"] == "max"
    params.loc[is_max, ["m", "weighting"]] = ""
    if "lambda_reg" in params:
        params.loc[~runs["gen"].isin(["ls", "kls"]), "lambda_reg"] = ""
    return params


def config_labels(runs: pd.DataFrame) -> pd.Series:
    """A readable name for each run's configuration, one name per distinct configuration within
    a group: where the short name would merge runs of a group that differ in a parameter
    (λ, the Weibull range, ...), that parameter is appended, ``key=value``."""
    labels = runs.apply(_readable_label, axis=1)
    if "method" in runs.columns and runs["method"].notna().all():
        return labels
    params = _effective(runs)
    keys = [runs[c].astype(str) for c in GROUP_COLUMNS if c in runs.columns]
    for column in params.columns:
        varies = params[column].groupby([*keys, labels]).transform("nunique") > 1
        ambiguous = labels.isin(set(labels[varies]))
        labels = labels.where(~ambiguous, labels + f" | {column}=" + params[column])
    return labels


def component_value(row: pd.Series, component: str) -> str:
    """The value of one component of a configuration: ``gen``, ``agg`` or the ``norm`` triple."""
    if component == "norm":
        return f"{row['norm_pre']}/{row['norm_post']}/{row['norm_inf']}"
    if component == "agg":
        return "max" if row["agg"] == "max" else f"mnn {row['distance']}"
    return str(row[component])


def median_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Median accuracy over seeds: one row per group, one column per configuration."""
    runs = runs.assign(config=config_labels(runs))
    medians = runs.groupby([*GROUP_COLUMNS, "config"], sort=True)["accuracy"].median()
    return medians.unstack("config")


def rank_table(medians: pd.DataFrame) -> pd.DataFrame:
    """Ranks of the configurations within each group (1 = best, ties averaged)."""
    return medians.rank(axis=1, ascending=False, method="average")


def friedman(medians: pd.DataFrame) -> tuple[float, float]:
    """Friedman's χ² and p-value over groups (blocks) and configurations (treatments)."""
    if medians.shape[1] < 3 or medians.shape[0] < 2:
        return float("nan"), float("nan")
    result = friedmanchisquare(*(medians[c].to_numpy() for c in medians.columns))
    return float(result.statistic), float(result.pvalue)


def posthoc(medians: pd.DataFrame, test: str = "wilcoxon") -> pd.DataFrame:
    """Pairwise p-values between configurations: Wilcoxon signed-rank with Holm correction (as the
    paper), or the Nemenyi or Conover tests after Friedman."""
    if test == "wilcoxon":
        long = medians.reset_index(drop=True).melt(
            var_name="config", value_name="accuracy", ignore_index=False
        )
        long = long.rename_axis("block").reset_index().sort_values(["config", "block"])
        with np.errstate(invalid="ignore", divide="ignore"):
            p = sp.posthoc_wilcoxon(
                long, val_col="accuracy", group_col="config", p_adjust="holm", zero_method="zsplit"
            )
    elif test == "nemenyi":
        p = sp.posthoc_nemenyi_friedman(medians.to_numpy())
        p.index = p.columns = medians.columns
    elif test == "conover":
        p = sp.posthoc_conover_friedman(medians.to_numpy(), p_adjust="holm")
        p.index = p.columns = medians.columns
    else:
        raise ValueError(f"posthoc={test!r} is not valid; choose one of {list(POSTHOC_TESTS)}")
    return p.fillna(1.0).loc[medians.columns, medians.columns]


def best_per_component(runs: pd.DataFrame, component: str) -> pd.DataFrame:
    """Median table of the best configuration (by average rank) for each value of ``component``,
    with columns named ``<value>: <configuration>``."""
    medians = median_table(runs)
    average = rank_table(medians).mean()
    labelled = runs.assign(config=config_labels(runs))
    values = (
        labelled.drop_duplicates("config")
        .set_index("config")
        .apply(lambda row: component_value(row, component), axis=1)
    )
    best = average.groupby(values.reindex(average.index)).idxmin()
    return medians[best.to_numpy()].set_axis([f"{v}: {c}" for v, c in best.items()], axis=1)


def summarise(medians: pd.DataFrame, test: str = "wilcoxon") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Average rank and accuracy per configuration (best first, with the Friedman test) and the
    post-hoc p-value matrix."""
    statistic, p_value = friedman(medians)
    summary = pd.DataFrame(
        {
            "config": medians.columns,
            "average_rank": rank_table(medians).mean().to_numpy(),
            "average_accuracy": medians.mean().to_numpy(),
            "groups": medians.notna().sum().to_numpy(),
        }
    ).sort_values("average_rank")
    summary["friedman_chi2"] = statistic
    summary["friedman_p"] = p_value
    return summary, posthoc(medians, test)
