"""What a shard costs before it runs, and shards split into jobs that fit a time budget.

A shard's runs fall into *units*: the runs that share a proxy set — and, for k-means and
k-least-squares, the clustering both reuse — as ``sweep`` groups them. A unit's work is counted
per step family (one GEN, one NORMpost, one search, the votes) in operations of the task's sizes
(classes C, training samples per class n, test rows N, dimension D) and priced at seconds per
operation measured by ``benchmarks/bench_paper.py`` (``RATES``, shipped with the package), with
how k-means' Lloyd steps grow with the samples per class (``lloyd_scale``).
Work a *view* (one NORMpre, few-shot draw and Weibull presampling of the data) does once for all
its units — preparing the data, the Gram matrix and its factors for ``ls``/``kls``, k-medoids'
distance matrices — is priced once per view in each job that holds units of it.
A shard whose units cost more than the budget is split into parts along unit boundaries.
"""

from __future__ import annotations

import importlib.resources
import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imprint.method.params import RANDOM_GENS, RANPAC_DIMENSIONS, validate_params
from imprint.method.plan import KMEDOIDS_CACHE_ENTRIES, plan_runs

# The two GEN families that k-least-squares combines: its clustering and its joint solve.
_CLUSTERING = {"kmeans", "kls"}
_ALL_ROWS = {"all", "knn", "cache"}
Step = tuple[str, str, int, Any]  # (family, GEN, k, option)
_PER_JOB = {"group", "test"}  # view steps done once per job (per NORMpre), whatever the view


@dataclass(frozen=True)
class TaskSize:
    """The sizes a shard's cost depends on (``imprint.study.catalog.Catalog.task_size``)."""

    n_classes: int
    train_per_class: float
    n_test: int
    dim: int


def _preparing(norm_pre: str, every_row: str | None) -> list[Step]:
    """What every view needs: the shard's rows grouped by class and its test rows after
    NORMpre (both once per job), the view's own draw and NORMpre, its nearest class centres."""
    return [
        ("group", "", 0, None),
        ("test", "", 0, norm_pre),
        ("prepare", "", 0, every_row),
        ("ncc", "", 0, None),
    ]


@dataclass(frozen=True)
class Unit:
    """Runs that share work, that work as steps, and the steps of its view (``view``: the
    view's index in the shard) it needs, which the view's units share."""

    runs: tuple[int, ...]
    fewshot: int
    steps: tuple[Step, ...]
    view: int = 0
    view_steps: tuple[Step, ...] = tuple(_preparing("none", None))


def _gen_steps(gen: str, k: int) -> list[Step]:
    """A GEN's own steps, given its view's shared results (the linear probe's: its bases, then
    its fits)."""
    if gen in _CLUSTERING:
        return [("gen", "kmeans", k, None)] + ([("gen", "ls", k, None)] if gen == "kls" else [])
    if gen == "linear_probe":
        return [("gen", "probe_bases", k, None), ("gen", gen, k, None)]
    return [("gen", gen, k, None)]


def _view_steps(gen: str) -> list[Step]:
    """The view's shared results a GEN uses."""
    return {
        "ls": [("gen", "gram", 0, None)],
        "kls": [("gen", "gram", 0, None)],
        "kmedoids": [("gen", "kmedoids_distances", 0, None)],
    }.get(gen, [])


def _longest_samplings(gens: dict, time_every_seed: bool) -> dict[int, int]:
    """The largest k of the view's farthest-point samplings per seed: the one sampling the
    sweep computes for them all (``imprint.method.generators.sample_together``); none when every
    seed is timed alone."""
    longest: dict[int, int] = {}
    for gen, k, _, seed in () if time_every_seed else gens:
        if gen == "fps" and k > 0:
            longest[seed] = max(k, longest.get(seed, 0))
    return longest


def units(runs: pd.DataFrame, time_every_seed: bool = False) -> list[Unit]:
    """The shard's units in the order ``sweep`` computes them. With ``time_every_seed`` a
    deterministic GEN is run again alone (its view's shared steps included) for every further
    seed, as ``sweep`` does."""
    records = [
        validate_params(r)
        for r in runs.drop(columns=["experiment", "method"], errors="ignore").to_dict("records")
    ]
    out: dict[tuple, tuple[list[int], int, list, int, list]] = {}
    for view, (data_key, gens) in enumerate(plan_runs(records).items()):
        fewshot, every_row = data_key[1], "weibull" if data_key[2] is not None else None
        longest = _longest_samplings(gens, time_every_seed)
        for gen_key, posts in gens.items():
            gen, k, _, seed = gen_key
            key = (data_key, "clustering", k, seed) if gen in _CLUSTERING else (data_key, gen_key)
            members, _, steps, _, shared = out.setdefault(
                key, ([], fewshot, [], view, _preparing(data_key[0], every_row))
            )
            own, of_view = _gen_steps(gen, k), _view_steps(gen)
            if gen == "fps" and seed in longest and k > 0:
                own, of_view = [], [("gen", "fps", longest[seed], seed)]
            steps.extend(s for s in own if s not in steps)
            shared.extend(s for s in of_view if s not in shared)
            seeds = {records[i]["seed"] for g in posts.values() for m in g.values() for i in m}
            if time_every_seed and gen not in RANDOM_GENS:
                steps.extend((len(seeds) - 1) * (_view_steps(gen) + _gen_steps(gen, k)))
            for norm_post, groups in posts.items():
                steps.append(("post", gen, k, norm_post))
                for (_, search, distance), indices in groups.items():
                    steps.append(("search", gen, k, "max" if search == "max" else distance))
                    for i in indices:
                        members.append(i)
                        m = records[i]["m"] if records[i]["agg"] == "mnn" else 1
                        steps.append(("vote", gen, k, m))
    return [
        Unit(tuple(sorted(m)), f, tuple(s), v, tuple(shared)) for m, f, s, v, shared in out.values()
    ]


def _drawn(fewshot: int, size: TaskSize) -> float:
    """The training samples per class of a view: all of them (``fewshot`` -1), or its draw."""
    return size.train_per_class if fewshot == -1 else min(fewshot, size.train_per_class)


# Families rates measured before them lack: their work was in another family's rate (the
# probe's bases in its fits'), so they cost nothing at such rates.
_LATER_FAMILIES = ("gen_probe_bases",)


def operations(step: Step, fewshot: int, size: TaskSize) -> tuple[str, float]:
    """The rate family of one step and its operation count."""
    family, gen, k, option = step
    c, d, n_test = size.n_classes, size.dim, size.n_test
    n = _drawn(fewshot, size)
    kept = n if k == -1 else min(k, n)
    M = RANPAC_DIMENSIONS if k == -1 else k  # RanPAC's width
    # A baseline's search compares with every training row (k-NN, cache) or class (probe).
    per_class = 1 if gen in ("mean", "ls", "linear_probe") else (n if gen in _ALL_ROWS else kept)
    proxies = c * per_class
    if family == "group":  # the shard's training rows grouped by class, once per job
        return "prepare", c * size.train_per_class * d
    if family == "test":  # the test rows after one NORMpre (and widened), once per job
        return "prepare", n_test * d
    if family == "prepare":  # the draw, NORMpre of what it kept (of every row under Weibull,
        # which comes first)
        rows = size.train_per_class if option == "weibull" else n
        return "prepare", c * rows * d + c * size.train_per_class
    if family == "ncc":  # the test rows' nearest class centres, one product
        return "ncc", n_test * c * d
    if family == "post":
        return f"post_{option}", 0.0 if option == "none" else proxies * d
    if family == "search":
        return f"search_{option}", n_test * _compared(gen, proxies, c, d, M)
    if family == "vote":
        return "vote", n_test * (option + 1)
    distances = c * n * n * d
    work = {
        "all": c * n * d,
        "mean": c * n * d,
        "cov_max": c * n * d,
        "random": c * kept * d,
        "fps": c * n * kept * d,
        "kmeans": c * n * kept * d,
        # the alternate steps; the distances once per view, or for every k past the cache
        "kmedoids": c * n * n * kept + (distances if c * n * n > KMEDOIDS_CACHE_ENTRIES else 0),
        "kmedoids_distances": distances if c * n * n <= KMEDOIDS_CACHE_ENTRIES else 0,
        "kmedoids_pam": distances,
        "gram": c * n * d * d + d**3,  # X^T X and its LU factors
        "ls": d * d * c * kept,  # the solve for C·k targets
        "knn": c * n * d,
        "cache": c * n * d,
        "linear_probe": c * n * d * c,  # one logistic-loss evaluation; the rate holds the fits
        # the rows' scatter matrices, symmetric halves (the held-out split's kept rows' and the
        # held-out rows', which together give all rows'), and the eigen-decompositions
        # (tridiagonal reduction) of the kept and of all rows' (no split: one of all rows)
        "probe_bases": c * n * d * d + (2 if n > 1 else 1) * (4 / 3) * d**3,
        # the rows projected, their Gram matrix, the solve, and λ's eigen-decomposition (of G,
        # or of the kernel matrix of the fitted rows where they are fewer)
        "ranpac": c * n * M * (d + M) + M**3 + min(c * n, M) ** 3,
        "fecam": c * (n * d * d + d**3),  # the outer products and pseudo-inverse of each class
    }
    return f"gen_{gen}", work[gen]


def _compared(gen: str, proxies: int, c: int, d: int, width: int) -> int:
    """The multiply-adds of a search per test row: ``d`` per proxy (a baseline's training row or
    class), RanPAC's projection to ``width`` and its weights, FeCAM's quadratic form per class."""
    if gen == "ranpac":
        return width * (d + c)
    if gen == "fecam":
        return c * d * (d + 1)
    return proxies * d


# The samples per class at which k-means' rate is measured (CIFAR-10's): its Lloyd steps grow
# with the samples per class, as ``lloyd_scale`` prices them.
LLOYD_REFERENCE = 5000

# The least floating-point work behind one operation of each family as ``operations`` counts
# them, and whether it runs at the float64 rate: what any implementation must do for that
# result, priced at the machine's GEMM rate (``floor_rates``). k-means' depends on the Lloyd
# steps (4 flops per step: distances and update) and seeding (2 per candidate, 2 + ln k a step),
# k-medoids' on its alternate rounds (2 flops each: the members' total distances), the linear
# probe's on its passes over the rows (4 flops each: its logits and their gradient). The GEMM
# rate counts a multiply-add as 2 flops done by one instruction; a distance with no product form
# spends an instruction on each of its operations a term, priced as 2 flops each.
FLOOR_FLOPS: dict[str, tuple[float, bool]] = {
    "prepare": (2, False),
    "ncc": (2, True),
    "gen_all": (1, False),
    "gen_mean": (1, False),
    "gen_random": (1, False),
    "gen_cov_max": (2, False),
    "gen_fps": (2, False),
    "gen_knn": (1, False),
    "gen_cache": (1, False),
    # one pass; floor_rates counts the passes. float64, as scikit-learn fits it for CLIP's protocol
    "gen_linear_probe": (4, True),
    "gen_probe_bases": (1, True),  # as the Gram matrix: the symmetric half of X^T X
    "gen_ranpac": (2, True),
    "gen_fecam": (2, True),
    "gen_gram": (1, True),  # the symmetric X^T X and an LU of (2/3) D^3
    "gen_ls": (2, True),
    "gen_kmedoids_distances": (2, True),
    "gen_kmedoids": (2, True),  # one alternate round; floor_rates counts the rounds
    "gen_kmedoids_pam": (2, True),
    "search_max": (2, False),
    "search_cosine": (2, False),
    "search_euclidean": (2, False),
    "search_mahalanobis": (2, False),
    # minimum and sum (|a - b| = a + b - 2 min(a, b), the row sums known): two instructions
    "search_manhattan": (4, False),
    "search_chebyshev": (6, False),  # difference, |.| (a sign bit cleared) and maximum
    "post_none": (0, False),
    "post_l2": (3, False),
    "post_quantile": (10, False),
    "post_quantile_sequential": (10, False),
    "vote": (0, False),
}


def floor_rates(
    gemm32: float,
    gemm64: float,
    lloyd_steps: float,
    trials: float,
    kmedoids_rounds: float,
    probe_passes: float,
    lloyd_steps_exponent: float,
) -> dict:
    """Seconds per operation of every family at the arithmetic floor: ``FLOOR_FLOPS`` at
    ``gemm32`` / ``gemm64`` flop/s; k-means with ``lloyd_steps`` Lloyd steps and ``trials``
    seeding candidates per step, k-medoids with ``kmedoids_rounds`` alternate rounds, the linear
    probe with ``probe_passes`` evaluations over all its rows (C search included; all measured);
    no fixed cost per step. k-means' steps are those at ``LLOYD_REFERENCE`` samples per class,
    scaled to other sizes by ``lloyd_steps_exponent`` as the projection is (seeding included)."""
    rates = {f: flops / (gemm64 if wide else gemm32) for f, (flops, wide) in FLOOR_FLOPS.items()}
    rates["gen_kmeans"] = (4 * lloyd_steps + 2 * trials) / gemm32
    rates["lloyd_steps_exponent"] = lloyd_steps_exponent
    rates["gen_kmedoids"] *= kmedoids_rounds
    rates["gen_linear_probe"] *= probe_passes
    rates["overhead"] = 0.0
    return rates


def _priced(
    steps: Sequence[Step], fewshot: int, size: TaskSize, rates: Mapping[str, float]
) -> Iterator[tuple[str, float]]:
    """Each step's rate family and seconds at ``rates``, its fixed cost as ``overhead``."""
    for step in steps:
        yield _step_work(step, fewshot, size, rates)
        yield "overhead", rates.get("overhead", 0.0)


def _step_work(
    step: Step, fewshot: int, size: TaskSize, rates: Mapping[str, float]
) -> tuple[str, float]:
    """A step's rate family and the seconds of its work at ``rates``."""
    family, count = operations(step, fewshot, size)
    if family not in rates and family in _LATER_FAMILIES:
        return family, 0.0
    if family not in rates:
        raise ValueError(
            f"the rates have no {family!r}; rerun benchmarks/bench_paper.py --write-rates"
        )
    if family == "gen_kmeans":
        count *= lloyd_scale(_drawn(fewshot, size), rates)
    return family, count * rates[family]


def lloyd_scale(per_class: float, rates: Mapping[str, float]) -> float:
    """k-means' Lloyd steps at ``per_class`` samples per class over its steps at
    ``LLOYD_REFERENCE`` (where its rate is measured): ``(n / LLOYD_REFERENCE) ** exponent``, the
    exponent measured with the rates (``lloyd_steps_exponent``; none: steps independent of n)."""
    return (per_class / LLOYD_REFERENCE) ** rates.get("lloyd_steps_exponent", 0.0)


def _steps_seconds(
    steps: Sequence[Step], fewshot: int, size: TaskSize, rates: Mapping[str, float]
) -> float:
    """The seconds of ``steps``, each distinct step priced once (a unit repeats its votes)."""
    fixed = rates.get("overhead", 0.0)
    return sum(
        times * (_step_work(step, fewshot, size, rates)[1] + fixed)
        for step, times in Counter(steps).items()
    )


def unit_seconds(unit: Unit, size: TaskSize, rates: Mapping[str, float]) -> float:
    """The unit's projected seconds alone, its view's shared steps included, at ``rates``
    (seconds per operation of each family, and ``overhead``, the fixed seconds of a step)."""
    return _steps_seconds(unit.steps + unit.view_steps, unit.fewshot, size, rates)


def _marginal(
    unit: Unit, paid: set[tuple[int, Step]], size: TaskSize, rates: Mapping[str, float]
) -> float:
    """The unit's seconds after the units whose view steps are ``paid`` (updated): its own
    steps and the shared steps of its view not yet paid."""
    return _steps_seconds(_unpaid_steps(unit, paid), unit.fewshot, size, rates)


def _unpaid_steps(unit: Unit, paid: set[tuple[int, Step]]) -> tuple[Step, ...]:
    """A unit's steps, and the shared ones not yet paid: its view's, and the shard's (``group``
    and ``test``, view -1)."""
    new = tuple(s for s in unit.view_steps if _owner(unit, s) not in paid)
    paid.update(_owner(unit, s) for s in new)
    return unit.steps + new


def _owner(unit: Unit, step: Step) -> tuple[int, Step]:
    return (-1 if step[0] in _PER_JOB else unit.view), step


def family_seconds(
    shard_units: Sequence[Unit], size: TaskSize, rates: Mapping[str, float]
) -> dict[str, float]:
    """The seconds of the units run in one job, per rate family (``overhead``: the fixed cost
    of every step)."""
    paid: set[tuple[int, Step]] = set()
    out: dict[str, float] = {}
    for unit in shard_units:
        for family, seconds in _priced(_unpaid_steps(unit, paid), unit.fewshot, size, rates):
            out[family] = out.get(family, 0.0) + seconds
    return out


def part_seconds(
    shard_units: Sequence[Unit], size: TaskSize, rates: Mapping[str, float]
) -> list[float]:
    """Each unit's seconds after the ones before it in one job: its own steps and the shared
    steps of its view that no earlier unit of the job needed."""
    paid: set[tuple[int, Step]] = set()
    return [_marginal(unit, paid, size, rates) for unit in shard_units]


def split(seconds: Sequence[float], budget_s: float) -> list[list[int]]:
    """Consecutive items packed into parts of at most ``budget_s`` seconds (an item over the
    budget is a part of its own): the indices of each part's items."""
    parts: list[list[int]] = [[]]
    load = 0.0
    for i, s in enumerate(seconds):
        if parts[-1] and load + s > budget_s:
            parts.append([])
            load = 0.0
        parts[-1].append(i)
        load += s
    return parts


def pack(shards: Sequence[tuple[Any, Sequence[float]]], budget_s: float) -> list[list[tuple]]:
    """Jobs of several shards: consecutive whole shards (one job each, its projected seconds)
    share a job while their seconds stay within ``budget_s``; a shard split into parts keeps a
    job per part. Each job lists its (key, part, of, seconds), part 1 of 1 for a whole shard."""
    jobs: list[list[tuple]] = []
    whole: list[tuple] = []

    def flush() -> None:
        if not whole:
            return
        seconds = [s for *_, s in whole]
        jobs.extend([whole[i] for i in part] for part in split(seconds, budget_s))
        whole.clear()

    for key, parts in shards:
        if len(parts) == 1:
            whole.append((key, 1, 1, parts[0]))
            continue
        flush()
        jobs.extend([(key, i, len(parts), s)] for i, s in enumerate(parts, 1))
    flush()
    return jobs


@dataclass(frozen=True)
class Budget:
    """Jobs of at most ``minutes`` each, priced at ``rates`` (seconds per operation) times
    ``slowdown`` (the measuring machine's threads over a job's)."""

    minutes: float
    rates: Mapping[str, float]
    slowdown: float = 1.0

    def jobs(self, shard_units: Sequence[Unit], size: TaskSize) -> list[tuple[np.ndarray, float]]:
        """Each job of a shard, consecutive units packed greedily within the budget (a unit over
        it alone is a job of its own): the row positions of the runs it holds (in order) and
        its projected seconds, a view's shared steps paid once in each job that needs them."""
        jobs: list[tuple[list[Unit], float]] = []
        paid: set[tuple[int, Step]] = set()
        for unit in shard_units:
            seconds = self.slowdown * _marginal(unit, trial := set(paid), size, self.rates)
            if not jobs or jobs[-1][1] + seconds > self.minutes * 60:
                jobs.append(([], 0.0))
                seconds = self.slowdown * _marginal(unit, trial := set(), size, self.rates)
            paid = trial
            held, load = jobs[-1]
            jobs[-1] = ([*held, unit], load + seconds)
        return [(np.sort(np.concatenate([u.runs for u in held])), s) for held, s in jobs]


RATES = importlib.resources.files("imprint.study") / "rates.json"


def load_budget(
    minutes: float, path: str | os.PathLike | None, device: str, job_threads: int = 1
) -> tuple[Budget, str]:
    """The budget at the rates measured for ``device`` (``cpu`` or ``cuda``) in a rates file
    (``bench_paper.py --write-rates``; None: the shipped ``RATES``), and the device they come
    from: CPU rates stand in where no GPU was measured, scaled from the measuring machine's
    threads to ``job_threads``."""
    source = RATES if path is None else Path(path)
    measured = json.loads(source.read_text())
    kind = "cuda" if device.startswith("cuda") and "cuda" in measured else "cpu"
    if kind not in measured:
        raise ValueError(
            f"{source} holds no {kind} rates; run benchmarks/bench_paper.py --write-rates PATH"
        )
    entry = measured[kind]
    slowdown = entry["threads"] / job_threads if kind == "cpu" else 1.0
    return Budget(minutes, dict(entry["seconds_per_op"]), slowdown), kind
