"""Statistics over many runs, as the paper computes them (PAPER.md §C, §F.5): the median over
seeds, ranks within groups over a slice's whole pool, the best configuration per method, and the
Friedman → Wilcoxon (Holm) → dense-rank critical-difference computation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

GROUP_COLUMNS = ["fm", "dataset", "mapping", "task"]
POSTHOC_TESTS = ("wilcoxon", "nemenyi", "conover")
# Every parameter that can distinguish two runs of one group, bar the seed.
CONFIG_COLUMNS = [
    "norm_pre", "gen", "k", "norm_post", "norm_inf", "agg", "distance", "weighting", "m",
    "fewshot", "lambda_reg", "weibull",
]  # fmt: skip
# Display names of component values in method labels (PAPER.md §C.3).
DISPLAY = {
    "fps": "k-fps", "kmedoids": "k-medoids", "kmedoids_pam": "k-medoids (PAM)",
    "kmeans": "k-means", "random": "k-random", "cov_max": "k-cov-max", "kls": "k-ls",
    "l2": "L2",
}  # fmt: skip


def _readable_labels(runs: pd.DataFrame) -> pd.Series:
    """A short name of each run's configuration, e.g. ``l2 | kmeans k=20 | l2 | l2 | max``."""
    text = {c: runs[c].astype(str) for c in ("gen", "k", "distance", "m", "fewshot")}
    single = runs["gen"].isin(["mean", "ls", "all"])
    gen = text["gen"].where(single, text["gen"] + " k=" + text["k"])
    agg_max = "max" + (" " + text["distance"]).where(runs["distance"] != "inner_product", "")
    weighted = (runs["weighting"] != "uniform").map({True: " w", False: ""})
    agg = agg_max.where(runs["agg"] == "max", text["m"] + "-nn " + text["distance"] + weighted)
    shots = (" | " + text["fewshot"] + "-shot").where(runs["fewshot"] != -1, "")
    parts = [runs["norm_pre"], gen, runs["norm_post"], runs["norm_inf"], agg]
    return parts[0].str.cat(parts[1:], sep=" | ") + shots


def canonical_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs with the parameters that do not change a result made equal: ``max`` ignores m and
    weighting (m := −1, uniform, as the paper's runs record them) and λ matters only to ``ls``
    and ``kls``. A named method's runs that repeat a grid configuration (least squares being
    ``kls`` with k = 1, as the paper's oracle) are dropped, and that configuration takes the
    method's name; a run that two experiments both ran (same group, configuration and seed) is
    kept once."""
    runs = runs.copy()
    is_max = runs["agg"] == "max"
    runs.loc[is_max, "m"] = -1
    runs.loc[is_max, "weighting"] = "uniform"
    if "lambda_reg" in runs:
        runs["lambda_reg"] = runs["lambda_reg"].where(runs["gen"].isin(["ls", "kls"]))
    if "method" not in runs:
        runs["method"] = None
    named = runs["method"].notna()
    same = _config_key(runs.assign(gen=runs["gen"].replace("ls", "kls")))
    repeated = named & same.isin(set(same[~named]))
    names = runs[named].groupby(same[named])["method"].first()
    runs.loc[~named, "method"] = same[~named].map(names)
    runs = runs[~repeated]
    twice = runs.assign(_key=_config_key(runs)).duplicated([*GROUP_COLUMNS, "seed", "_key"])
    return runs[~twice]


def _config_key(runs: pd.DataFrame) -> pd.Series:
    """An integer per distinct configuration (the parameters' text, so 20 and 20.0 differ as
    the tables store them)."""
    columns = [c for c in CONFIG_COLUMNS if c in runs.columns]
    return runs[columns].astype(str).fillna("nan").groupby(columns, sort=False).ngroup()


def config_labels(runs: pd.DataFrame) -> pd.Series:
    """A readable name for each run's configuration, one name per distinct configuration within
    a group: where the short name would merge runs of a group that differ in a parameter
    (λ, the Weibull range, ...), that parameter is appended, ``key=value``."""
    labels = _readable_labels(runs)
    params = runs[[c for c in CONFIG_COLUMNS if c in runs.columns]].astype(str).fillna("nan")
    keys = [runs[c].astype(str) for c in GROUP_COLUMNS if c in runs.columns]
    for column in params.columns:
        varies = params[column].groupby([*keys, labels]).transform("nunique") > 1
        ambiguous = labels.isin(set(labels[varies]))
        labels = labels.where(~ambiguous, labels + f" | {column}=" + params[column])
    return labels


def seed_medians(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, configuration): the parameters, the method name where one is known,
    a readable ``config`` label, the median accuracy over seeds and the number of seeds."""
    runs = canonical_runs(runs)
    runs = runs.assign(config=config_labels(runs))
    columns = [c for c in CONFIG_COLUMNS if c in runs.columns]
    keys = [*GROUP_COLUMNS, "config"]
    medians = runs.groupby(keys, sort=True).agg(
        accuracy=("accuracy", "median"), seeds=("seed", "nunique")
    )
    first = runs.groupby(keys, sort=True)[[*columns, "method"]].first()
    return medians.join(first).reset_index()


def in_slice(frame: pd.DataFrame, allowed: Mapping[str, Sequence[Any]] | None) -> pd.Series:
    """Whether each row is in a slice: for every listed column the value is one of those given;
    unlisted columns are not filtered (PAPER.md §C.2)."""
    keep = pd.Series(True, index=frame.index)
    for column, values in (allowed or {}).items():
        if column not in frame:
            raise ValueError(f"slice column {column!r} is not a column of the runs")
        keep &= frame[column].astype(str).isin([str(v) for v in values])
    return keep


def rank_pool(medians: pd.DataFrame) -> pd.DataFrame:
    """Average rank and accuracy of every configuration of a pool of seed medians: within each
    group, configurations are ranked by accuracy (1 = best, ties averaged), then rank and
    accuracy are averaged over the groups each appears in (with std, ddof 1, and standard error).
    Sorted by average rank; equal average ranks keep the order of the config labels."""
    ranked = medians.assign(
        rank=medians.groupby(GROUP_COLUMNS)["accuracy"].rank(ascending=False, method="average")
    )
    stats = ranked.groupby("config").agg(
        average_rank=("rank", "mean"),
        std_rank=("rank", "std"),
        average_accuracy=("accuracy", "mean"),
        std_accuracy=("accuracy", "std"),
        groups=("rank", "size"),
    )
    stats["stderr_rank"] = stats["std_rank"] / np.sqrt(stats["groups"])
    stats["stderr_accuracy"] = stats["std_accuracy"] / np.sqrt(stats["groups"])
    columns = [c for c in [*CONFIG_COLUMNS, "method"] if c in medians.columns]
    params = medians.groupby("config")[columns].first()
    table = stats.join(params).reset_index()
    return table.sort_values(["average_rank", "config"], kind="stable", ignore_index=True)


def method_names(table: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Each row's method name: its values of ``columns`` joined by "  &  " in display form
    (k-means, L2, ...); (agg, m) reads ``max`` or ``3-nn``."""
    if list(columns) == ["agg", "m"]:
        return table["agg"].where(table["agg"] == "max", table["m"].astype(str) + "-nn")
    return table[list(columns)].astype(str).replace(DISPLAY).agg("  &  ".join, axis=1)


def best_per_method(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The first row (lowest average rank) of ``rank_pool``'s table per method, a method being
    the values of ``columns`` (PAPER.md §C.3); rows without a value (no named method) are none.
    A ``name`` column holds the method's display name."""
    columns = list(columns)
    named = table.dropna(subset=columns)
    best = named.drop_duplicates(columns, keep="first")
    name = best["method"] if columns == ["method"] else method_names(best, columns)
    return best.assign(name=name.to_numpy()).reset_index(drop=True)


def voter_table(medians: pd.DataFrame, shown: pd.DataFrame) -> pd.DataFrame:
    """Seed-median accuracy of each shown method (columns, by name) per voter (rows: groups);
    only voters that every method has are kept (PAPER.md §C.4)."""
    chosen = medians[medians["config"].isin(shown["config"])]
    table = chosen.pivot_table(index=GROUP_COLUMNS, columns="config", values="accuracy")
    table = table.reindex(columns=shown["config"]).dropna()
    return table.set_axis(shown["name"].to_list(), axis=1)


def holm(p_values: Sequence[float], alpha: float) -> np.ndarray:
    """Holm's step-down procedure: sort ascending, reject the i-th (from 0) while
    p ≤ α / (K − i), stop at the first failure. Returns a significance flag per input."""
    p = np.asarray(p_values, dtype=float)
    significant = np.zeros(len(p), dtype=bool)
    for i, index in enumerate(np.argsort(p, kind="stable")):
        if not p[index] <= alpha / (len(p) - i):
            break
        significant[index] = True
    return significant


def wilcoxon_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired values (``zero_method="pratt"``, no
    continuity correction) by the method SciPy 1.14's ``"auto"`` chose, as the paper ran it
    (PAPER.md §C.4): the exact null distribution when n ≤ 50 and no difference is zero (ties
    allowed; a non-integral statistic is rounded conservatively), else the normal
    approximation. Newer SciPy picks a permutation test on ties; this does not depend on it."""
    from scipy.stats import wilcoxon  # SciPy's stats take a second to import: only for tests

    d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    method = "exact" if len(d) <= 50 and not np.any(d == 0) else "asymptotic"
    return float(wilcoxon(d, zero_method="pratt", method=method).pvalue)


def wilcoxon_pairs(voters: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Every pair of methods: Wilcoxon signed-rank over voters (``wilcoxon_p``), then Holm at
    ``alpha``. Identical methods are not different: p = 1 (the paper marked them significant;
    PAPER.md §F.5)."""
    rows = []
    names = list(voters.columns)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            x, y = voters[a].to_numpy(), voters[b].to_numpy()
            p = 1.0 if np.array_equal(x, y) else wilcoxon_p(x, y)
            rows.append({"a": a, "b": b, "p_value": p})
    pairs = pd.DataFrame(rows, columns=["a", "b", "p_value"])
    pairs["significant"] = holm(pairs["p_value"], alpha)
    return pairs


def friedman_posthoc_pairs(voters: pd.DataFrame, test: str, alpha: float) -> pd.DataFrame:
    """Every pair of methods by the Nemenyi or Conover (Holm-adjusted) test after Friedman, from
    scikit-posthocs; significant where the adjusted p-value is ≤ ``alpha``."""
    import scikit_posthocs as sp

    if test == "nemenyi":
        matrix = sp.posthoc_nemenyi_friedman(voters.to_numpy())
    elif test == "conover":
        matrix = sp.posthoc_conover_friedman(voters.to_numpy(), p_adjust="holm")
    else:
        raise ValueError(f"posthoc={test!r} is not valid; choose one of {list(POSTHOC_TESTS)}")
    names = list(voters.columns)
    rows = [
        {"a": a, "b": b, "p_value": float(matrix.iloc[i, j])}
        for i, a in enumerate(names)
        for j, b in enumerate(names)
        if i < j
    ]
    pairs = pd.DataFrame(rows, columns=["a", "b", "p_value"])
    pairs["significant"] = pairs["p_value"] <= alpha
    return pairs


def dense_ranks(voters: pd.DataFrame) -> pd.Series:
    """Each method's CD position: its dense rank (best = 1, ties share a rank, no rank skipped)
    within every voter, averaged over voters; sorted descending (worst first)."""
    ranks = voters.rank(axis=1, ascending=False, method="dense").mean()
    return ranks.sort_values(ascending=False, kind="stable")


def cliques(pairs: pd.DataFrame, order: Sequence[str]) -> list[tuple[int, int]]:
    """Bars of a CD diagram: for each maximal clique (of two or more) of the graph whose edges
    are the pairs not significantly different, the lowest and highest position in ``order``."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(order)
    graph.add_edges_from(pairs.loc[~pairs["significant"], ["a", "b"]].itertuples(index=False))
    position = {name: i for i, name in enumerate(order)}
    spans = {
        (min(position[n] for n in clique), max(position[n] for n in clique))
        for clique in nx.find_cliques(graph)
        if len(clique) >= 2
    }
    return sorted(spans)


@dataclass
class CriticalDifference:
    """The result behind one CD diagram."""

    ranks: pd.Series  # CD position per method, worst first
    pairs: pd.DataFrame  # a, b, p_value, significant
    bars: list[tuple[int, int]]  # spans of positions in ``ranks``' order
    friedman_statistic: float
    friedman_p: float
    alpha: float
    voters: int

    @property
    def tested(self) -> bool:
        """Whether the pairwise tests ran (Friedman rejected, or too few methods for it)."""
        return not self.friedman_p >= self.alpha


def critical_difference(
    voters: pd.DataFrame, alpha: float = 0.05, posthoc: str = "wilcoxon"
) -> CriticalDifference:
    """Friedman over the methods' per-voter values; where it rejects at ``alpha``, every pair by
    the post-hoc test (PAPER.md §C.4, §F.5); CD positions are dense ranks among the methods."""
    if voters.shape[0] < 2 or voters.shape[1] < 2:
        raise ValueError(
            f"a CD diagram needs at least two methods over two shared groups; got "
            f"{voters.shape[1]} method(s) over {voters.shape[0]} group(s)"
        )
    from scipy.stats import friedmanchisquare

    statistic = p_value = float("nan")
    if voters.shape[1] >= 3:
        result = friedmanchisquare(*(voters[c].to_numpy() for c in voters.columns))
        statistic, p_value = float(result.statistic), float(result.pvalue)
    ranks = dense_ranks(voters)
    if p_value >= alpha:
        pairs = pd.DataFrame(columns=["a", "b", "p_value", "significant"])
        bars: list[tuple[int, int]] = []
    else:
        if posthoc == "wilcoxon":
            pairs = wilcoxon_pairs(voters, alpha)
        else:
            pairs = friedman_posthoc_pairs(voters, posthoc, alpha)
        bars = cliques(pairs, list(ranks.index))
    return CriticalDifference(ranks, pairs, bars, statistic, p_value, alpha, len(voters))


def view_medians(runs: pd.DataFrame, view: Mapping[str, Any]) -> pd.DataFrame:
    """The seed medians of a view's slice (its pool)."""
    medians = seed_medians(runs)
    return medians[in_slice(medians, view.get("slice"))].reset_index(drop=True)


def view_methods(pool: pd.DataFrame, view: Mapping[str, Any]) -> pd.DataFrame:
    """The rank table of a view's pool, reduced to its methods (in the view's ``methods`` order
    where it lists them, else best first)."""
    table = best_per_method(rank_pool(pool), view["method"])
    if view.get("methods"):
        missing = sorted(set(view["methods"]) - set(table["name"]))
        if missing:
            raise ValueError(f"methods {missing} have no runs in the view's slice")
        table = table.set_index("name").loc[list(view["methods"])].reset_index()
    return table
