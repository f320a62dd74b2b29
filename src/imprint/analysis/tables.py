"""Table 1 (PAPER.md §D.1, §F.4) and the published numbers beside the reproduced ones (§F.7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from imprint.analysis.stats import in_slice, rank_pool, seed_medians, view_methods

# The methods of the paper's Table 1; the others are marked "not in the paper" where shown.
PAPER_METHODS = frozenset({"qi", "hosoda", "janson", "ours", "oracle"})


def _components(row: pd.Series) -> dict[str, str]:
    plain = row["gen"] in ("mean", "ls", "all", "linear_probe", "cache")
    gen = row["gen"] if plain else f"{row['gen']} (k={row['k']})"
    if row["gen"] in ("linear_probe", "knn", "cache"):  # baselines score the classes themselves
        agg = "its own"
    elif row["agg"] == "max":
        agg = "max" if row["distance"] == "inner_product" else f"max ({row['distance']})"
    else:
        weighted = ", weighted" if row["weighting"] != "uniform" else ""
        agg = f"{row['m']}-nn ({row['distance']}{weighted})"
    return {
        "NORMpre": row["norm_pre"],
        "GEN": gen,
        "NORMpost": row["norm_post"],
        "NORMinf": row["norm_inf"],
        "AGG": agg,
    }


def table1(runs: pd.DataFrame, view: Mapping[str, Any], extra: Sequence[str] = ()) -> pd.DataFrame:
    """The named methods of ``view`` with their components, average accuracy (mean over groups
    of the seed medians) and average rank among every configuration of the view's slice (their
    number in ``pool``); each ``extra`` method (outside the slice) is ranked in that pool plus
    itself. ``in_paper`` marks the paper's own methods."""
    medians = seed_medians(runs)
    pool = medians[in_slice(medians, view.get("slice"))]
    rows = view_methods(pool, view).assign(pool=pool["config"].nunique())
    for name in extra:
        own = medians[medians["method"] == name]
        if own.empty:
            raise ValueError(f"Table 1's extra method {name!r} has no runs")
        ranked = rank_pool(pd.concat([pool[pool["config"] != own["config"].iloc[0]], own]))
        row = ranked[ranked["method"] == name].assign(name=name, pool=ranked["config"].nunique())
        rows = pd.concat([rows, row], ignore_index=True)
    table = pd.DataFrame([_components(row) for _, row in rows.iterrows()])
    table.insert(0, "name", rows["name"].to_numpy())
    table["in_paper"] = rows["name"].isin(PAPER_METHODS).to_numpy()
    for column in (
        "average_accuracy", "std_accuracy", "stderr_accuracy", "average_rank", "std_rank",
        "stderr_rank",
    ):  # fmt: skip
        table[column] = rows[column].round(4).to_numpy()
    table["groups"] = rows["groups"].to_numpy()
    table["pool"] = rows["pool"].to_numpy()
    return table


def table1_markdown(table: pd.DataFrame, view: Mapping[str, Any]) -> str:
    """Table 1 as the paper prints it (components, average accuracy %, average rank), with rows
    not in the paper marked and a line saying which pool the ranks come from."""
    shown = table.assign(
        method=table["name"] + table["in_paper"].map({True: "", False: " (not in the paper)"}),
        **{
            "avg acc %": table["average_accuracy"].round(2),
            "avg rank": table["average_rank"].round(2),
        },
    )
    columns = ["method", "NORMpre", "GEN", "NORMpost", "NORMinf", "AGG", "avg acc %", "avg rank"]
    named = view["experiment"]
    experiments = named if isinstance(named, str) else ", ".join(named)
    chosen = "; ".join(f"{k} in {list(v)}" for k, v in (view.get("slice") or {}).items())
    pool = (
        f"Ranks among the {table['pool'].iloc[0]} configurations of experiment(s) {experiments} "
        f"({chosen or 'all of their runs'}), over {table['groups'].iloc[0]} groups."
    )
    return shown[columns].to_markdown(index=False) + "\n\n" + pool


def paper_comparison(
    published: Mapping[str, Mapping[str, Mapping[str, float]]],
    tables: Mapping[str, pd.DataFrame],
) -> pd.DataFrame:
    """Every published number beside the reproduced one: ``published[table][column][name]`` is
    compared with the row ``name`` (column ``name``) of ``tables[table]``'s ``column``."""
    rows = []
    for source, columns in published.items():
        table = tables[source].set_index("name")
        for column, values in columns.items():
            for name, value in values.items():
                found = name in table.index and column in table.columns
                reproduced = float(table.at[name, column]) if found else float("nan")
                rows.append(
                    {
                        "table": source,
                        "quantity": column,
                        "name": name,
                        "published": value,
                        "reproduced": reproduced,
                        "difference": reproduced - value,
                    }
                )
    return pd.DataFrame(rows)
