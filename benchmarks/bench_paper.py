"""The bill of config/paper.yaml before it runs, measured on this machine.

1. calibrate: every step family ``imprint.study.cost`` prices (prepare, each GEN, each
   NORMpost, each search, the votes) is timed on synthetic embeddings at the paper's sizes,
   giving seconds per operation and a fixed cost per step;
2. check: sampled units of real-sized shards (one per GEN of every sweep job, CIFAR-10 and
   ResNet-18 sizes, test rows capped) are swept and their time compared with the projection;
3. search floor: the ``all`` rows of a CIFAR-sized shard of the default config's ``sec51`` grid
   against one distance matrix + top-50 per distinct search (the least any nearest-proxy search
   can do);
4. project: every shard of the paper configuration priced at those rates: core-hours (CPU) or
   GPU-hours per experiment and in total, and the jobs a budget splits them into;
5. floor: the same shards priced at their arithmetic floor (``imprint.study.cost.floor_rates``:
   each distinct result once, its least floating-point work at the GEMM rates measured here),
   per experiment and per step family, beside the projection.

    python benchmarks/bench_paper.py                       # CPU, one thread, 5-19 minutes
    python benchmarks/bench_paper.py --device cuda         # GPU rates, plus the GPU targets
    python benchmarks/bench_paper.py --write-rates src/imprint/study/rates.json  # shipped rates
"""

from __future__ import annotations

# isort: off
import os

from imprint.environment import job_defaults

job_defaults()  # before NumPy and PyTorch load, as the workflow's sweep jobs inherit them
# On one thread, as the workflow's sweep jobs run (`sweep_threads`, 1 unless an experiment says
# otherwise; Snakemake gives a job's threads to OpenMP and the BLAS libraries, and a one-thread
# job's idle OpenMP threads sleep): the rates price one job's core. OMP_NUM_THREADS=N measures on
# N threads instead (rates.json records the threads, and jobs' budgets scale by them).
os.environ.setdefault("OMP_NUM_THREADS", "1")
if os.environ["OMP_NUM_THREADS"] == "1":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# isort: on

import argparse
import datetime
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from bench_jobs import ROOT, in_process, script_imports, snakemake_job, wall
from bench_sweep import make_task
from host import describe

from imprint import expand_grid, sweep
from imprint.method.aggregation import AGG, Variant, vote
from imprint.method.baselines import fit_baseline, fit_linear_probe, probe_bases
from imprint.method.batch import ClassBatch
from imprint.method.clustering import kmeans_together, kmedoids_together, reference_distances
from imprint.method.collapse import nearest_class_centre
from imprint.method.generators import (
    GEN,
    GenContext,
    covariance_column_sums,
    gram_matrix,
    least_squares_weights,
    ridge_factor,
)
from imprint.method.normalize import NORM, NORM_POST
from imprint.method.params import BASELINES, validate_params
from imprint.method.pipeline import distance_metric, prepare_classes
from imprint.method.plan import plan_runs
from imprint.method.randomness import ClassStreams
from imprint.study.catalog import Catalog
from imprint.study.config import job_owner, sweep_group
from imprint.study.cost import (
    LLOYD_REFERENCE,
    Budget,
    TaskSize,
    family_seconds,
    floor_rates,
    operations,
    part_seconds,
    units,
)
from imprint.study.experiments import (
    experiment_jobs,
    experiment_packs,
    group_runs,
    shard_keys,
    shard_runs,
)
from imprint.study.tasks import expand_mappings

DISTANCES = ("euclidean", "cosine", "manhattan", "chebyshev", "mahalanobis")


SWEEP_SCRIPT = ROOT / "workflow/scripts/sweep_shard.py"
CUDA_CONTEXT = "import torch\nstart = time.perf_counter()\ntorch.zeros(1, device='cuda')"


def _clock(
    device: str, function: Callable, *args, repeats: int = 3, within_s: float = 3.0
) -> float:
    """Seconds of one call, waiting for the GPU: after one warm-up call, the median of
    ``repeats`` calls, or of as many as fit in ``within_s`` seconds (at least one). A single
    call of a few milliseconds moves severalfold on a shared VM (the first calls of a process
    map fresh memory), and one of a second up to twofold (a search timed 0.6 and 1.3 s seconds
    apart), so calls up to a second still get three."""
    function(*args)
    seconds: list[float] = []
    while len(seconds) < repeats and sum(seconds) < within_s:
        start = time.perf_counter()
        function(*args)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def _tensors(per_class: int, n_classes: int, dim: int, seed: int, device: str):
    x, y = make_task(per_class, seed, n_classes=n_classes, dim=dim)
    return torch.tensor(x, device=device), torch.tensor(y, device=device)


def _step_overhead(device: str) -> float:
    """The fixed cost of a step: a sweep of a tiny task divided by the steps it takes."""
    tiny = TaskSize(10, 20, 50, 8)
    tiny_runs = expand_grid({"gen": ["mean", "kmeans"], "k": [1, 2], "norm_post": ["none", "l2"]})
    xs, ys = _tensors(tiny.train_per_class, tiny.n_classes, tiny.dim, 1, device)
    xs_test, ys_test = _tensors(tiny.n_test // tiny.n_classes, tiny.n_classes, tiny.dim, 2, device)
    steps = sum(len(u.steps) for u in units(tiny_runs))
    return _clock(device, sweep, xs, ys, xs_test, ys_test, tiny_runs, device) / steps


class _Calibration:
    """The calibration's task on ``device`` (10 classes × 2,000 rows, 512-d, 2,000 test rows;
    k = 20 where a family needs one), and the seconds per operation measured on it so far
    (``rates``; ``overhead``, the fixed seconds of one step, first)."""

    c, n, dim, k, n_test = 10, 2000, 512, 20, 2000

    def __init__(self, device: str) -> None:
        self.device = device
        self.x, self.y = _tensors(self.n, self.c, self.dim, 1, device)
        self.x_test, _ = _tensors(self.n_test // self.c, self.c, self.dim, 2, device)
        self.size = TaskSize(self.c, self.n, self.n_test, self.dim)
        self.rates: dict[str, float] = {"overhead": _step_overhead(device)}
        self.batch = ClassBatch.from_labels(self.x, self.y, self.c)

    def count(self, family: str, gen: str = "", k: int = 0, option: object = None) -> float:
        """The operations ``imprint.study.cost`` counts for a step of the task."""
        return operations((family, gen, k, option), -1, self.size)[1]

    def rate(self, family: str, ops: float, function: Callable, *args) -> float:
        """Time ``function(*args)`` (``_clock``) as ``ops`` operations of ``family``, net of
        the step's overhead; its seconds."""
        seconds = _clock(self.device, function, *args)
        self.rates[family] = max(seconds - self.rates["overhead"], 0.0) / ops
        return seconds


def _calibrate_steps(cal: _Calibration) -> None:
    """``prepare``, the nearest-class-centre agreement, every GEN but the clusterings
    (``kmeans_at_size``, ``kmedoids_at_size``), and the view's shared steps each alone."""
    x, y, batch, c, k = cal.x, cal.y, cal.batch, cal.c, cal.k

    def prepare() -> None:  # the rows grouped and normalised, the test rows normalised, widened
        prepare_classes(x, y, c, "l2", -1, None, 0)
        NORM["l2"](cal.x_test).double()

    cal.rate("prepare", cal.count("group") + cal.count("test") + cal.count("prepare"), prepare)
    cal.rate("ncc", cal.count("ncc"), nearest_class_centre, cal.x_test.double(), batch.means())
    # What a sweep computes once per view for every k and seed and prices with the first k
    # (cov_max's sums). Each call gets a copy, so that nothing a call computes for its own k and
    # seed (a farthest-point sampling, a ridge factor) is reused by the timed call after the
    # warm-up.
    view = {"covariance_sums": (covariance_column_sums(batch.x.double(), batch.mask), 0.0)}
    for gen in GEN:
        if gen in ("kls", "kmeans", "kmedoids"):
            continue  # k-means and k-medoids: *_at_size; kls: k-means plus the solve of ls
        run = lambda gen=gen: GEN[gen](batch, k, GenContext(0, 1e-4, view=dict(view)))  # noqa: E731
        cal.rate(f"gen_{gen}", cal.count("gen", gen, k), run)
    # the view's shared steps, each alone: the Gram matrix with its factors, the distances
    gram = lambda: ridge_factor(*gram_matrix(batch), 1e-4)  # noqa: E731
    cal.rate("gen_gram", cal.count("gen", "gram"), gram)
    targets = torch.randn(c * k, cal.dim, device=cal.device)
    cal.rate("gen_ls", cal.count("gen", "ls", k), least_squares_weights, gram(), targets)
    count = cal.count("gen", "kmedoids_distances")
    cal.rate("gen_kmedoids_distances", count, reference_distances, batch.x, batch.mask)


def _calibrate_baselines(cal: _Calibration) -> None:
    """Every baseline's fit on the whole task (their scoring is priced as a search), the
    probe's bases apart from its fits, and RanPAC on 100 rows a class."""
    c, k = cal.c, cal.k
    rows, index = cal.batch.flat()
    for name in BASELINES:
        if name != "ranpac":
            cal.rate(
                f"gen_{name}", cal.count("gen", name, k), fit_baseline, name, rows, index, c, k, 0
            )
    # the probe's bases (of the held-out split's kept rows; of all rows, joined from the kept
    # and the held-out rows') apart from its fits: they grow with D² where the fits grow with D
    # times the classes
    seconds = cal.rate(
        "gen_probe_bases", cal.count("gen", "probe_bases", k), probe_bases, rows, index, c, 0
    )
    probe = cal.rates["gen_linear_probe"] - seconds / cal.count("gen", "linear_probe", k)
    cal.rates["gen_linear_probe"] = max(probe, 0.0)
    # RanPAC on 100 rows a class: its steps of M × M (M = 10,000) dominate at any size
    few = torch.arange(len(cal.y), device=cal.device) % cal.n < 100
    work = operations(("gen", "ranpac", -1, None), -1, TaskSize(c, 100, cal.n_test, cal.dim))[1]
    cal.rate("gen_ranpac", work, fit_baseline, "ranpac", cal.x[few], cal.y[few], c, -1, 0)


def _calibrate_searches(cal: _Calibration) -> None:
    """Every NORMpost, the max search and every distance's m-NN search over the task's C·n
    proxies (the searches' worst case), and the votes."""
    c, x_test = cal.c, cal.x_test
    proxies = GEN["all"](cal.batch, -1, GenContext(0))
    for norm_post in NORM_POST:
        if norm_post != "none":
            count = cal.count("post", "all", -1, norm_post)
            cal.rate(f"post_{norm_post}", count, NORM_POST[norm_post], proxies)
    cal.rates["post_none"] = 0.0
    count = cal.count("search", "all", -1, "max")
    cal.rate("search_max", count, AGG["max"], x_test, proxies, c, "inner_product", [Variant()])
    for distance in DISTANCES:
        metric = distance_metric(cal.batch, distance)
        run = lambda d=distance, w=metric: AGG["mnn"](x_test, proxies, c, d, [Variant(20)], w)  # noqa: E731
        cal.rate(f"search_{distance}", cal.count("search", "all", -1, distance), run)
    dists = torch.rand(cal.n_test, 20, device=cal.device).sort(1).values
    labels = torch.randint(0, c, (cal.n_test, 20), device=cal.device)
    cal.rate("vote", cal.count("vote", "", 0, 20), vote, dists, labels, c, "uniform")


def calibrate(device: str) -> dict[str, float]:
    """Seconds per operation of every family (operations as ``imprint.study.cost`` counts them) and
    ``overhead``, the fixed seconds of one step."""
    cal = _Calibration(device)
    _calibrate_steps(cal)
    _calibrate_baselines(cal)
    _calibrate_searches(cal)
    return cal.rates


# GENs a sweep computes for every k of a view together (with the seed, for k-means), unless it
# times every seed alone: ``imprint.method.generators.cluster_together`` and
# ``medoids_together``.
_TOGETHER = ({"kmeans", "kls"}, {"kmedoids"})


def _sampled_runs(runs: pd.DataFrame, time_every_seed: bool) -> pd.DataFrame:
    """The runs of the first unit of every GEN of a shard; for the GENs of ``_TOGETHER``, also
    the first run of every other unit of theirs of that unit's view (each k and, for k-means,
    each seed: a sweep stacks them all, and one seed's clusterings alone run at half the rate)."""
    shard_units = units(runs, time_every_seed)
    picked: list[int] = []
    seen: set[str] = set()
    for unit in shard_units:
        gens = set(runs.iloc[list(unit.runs)]["gen"])
        if gens <= seen:
            continue
        seen |= gens
        picked.extend(unit.runs)
        family = next((f for f in _TOGETHER if gens <= f), None)
        if time_every_seed or family is None:
            continue
        picked.extend(
            u.runs[0]
            for u in shard_units
            if u.view == unit.view
            and u is not unit
            and set(runs.iloc[list(u.runs)]["gen"]) <= family
        )
    return runs.iloc[sorted(set(picked))].reset_index(drop=True)


def check(config: dict, rates: dict[str, float], device: str, test_rows: int) -> pd.DataFrame:
    """Sweep one unit per GEN of every sweep job's ResNet-18 shard (CIFAR-10, or the first data
    set; experiments that share jobs together, as they run) at real training sizes and
    ``test_rows`` test rows — for k-means and k-least-squares with the other k and seeds of its
    view, for k-medoids with its other k (``_sampled_runs``) — measured against projected
    seconds."""
    rows = []
    for label, group in job_groups(config).items():
        owner = next(iter(group.values()))
        dataset = "cifar10" if "cifar10" in owner["datasets"] else owner["datasets"][0]
        if dataset == "imagenet":
            continue  # the same grids as the other §5.3 experiments
        mapping = expand_mappings(owner["mappings"])[0]
        size = Catalog().task_size("resnet18", dataset, mapping, owner["tasks"][0])
        size = TaskSize(size.n_classes, size.train_per_class, test_rows, size.dim)
        runs = group_runs(group, config["fms"]["resnet18"]["lambda_reg"])
        timing = owner.get("time_every_seed", False)
        sample = _sampled_runs(runs, timing)
        n = round(size.train_per_class)
        x, y = make_task(n, 1, n_classes=size.n_classes, dim=size.dim)
        x_test, y_test = make_task(test_rows // size.n_classes, 2, size.n_classes, size.dim)
        start = time.perf_counter()
        sweep(x, y, x_test, y_test, sample, device, time_every_seed=timing)
        measured = time.perf_counter() - start
        projected = sum(part_seconds(units(sample, timing), size, rates))
        rows.append(
            {
                "experiment": label,
                "size": f"{size.n_classes}×{n} train, {test_rows} test, D={size.dim}",
                "runs": len(sample),
                "measured_s": measured,
                "projected_s": projected,
                "ratio": measured / projected,
            }
        )
        print(f"  {label}: {rows[-1]['ratio']:.2f}× ({measured:.1f} s measured)", flush=True)
    return pd.DataFrame(rows)


def search_floor(device: str, test_per_class: int) -> tuple[int, int, float, float]:
    """The ``all`` rows of the default config's ``sec51`` grid on a CIFAR-sized task: sweep
    seconds against one distance matrix + top-50 per distinct search."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    runs = shard_runs(config["experiments"]["sec51"], 1e-4)
    runs = runs[runs["gen"] == "all"].reset_index(drop=True)
    x, y = make_task(5000, 1)
    x_test, y_test = make_task(test_per_class, 2)
    start = time.perf_counter()
    sweep(x, y, x_test, y_test, runs, device)
    swept = time.perf_counter() - start
    records = [validate_params(r) for r in runs.to_dict("records")]
    searches = [
        "max" if agg == "max" else distance
        for gens in plan_runs(records).values()
        for posts in gens.values()
        for groups in posts.values()
        for _, agg, distance in groups
    ]
    train = torch.tensor(x, device=device)
    test = torch.tensor(x_test, device=device)
    rows = max(1, 2**24 // len(train))
    start = time.perf_counter()
    for kind in searches:
        for i in range(0, len(test), rows):
            block = test[i : i + rows]
            scores = block @ train.T if kind in ("max", "cosine") else torch.cdist(block, train)
            torch.topk(scores, 50, dim=1, largest=kind == "max")
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return len(runs), len(searches), swept, time.perf_counter() - start


def gpu_targets(paper: dict, device: str) -> None:
    """The GPU goals: the paper's Fig. 6 shard and a whole ``sec51`` shard of the default config,
    both at CIFAR-10 size (10 × 5,000 training and 1,000 test samples per class, 512-d)."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    x, y = make_task(5000, 1)
    x_test, y_test = make_task(1000, 2)
    grids = {
        "Fig. 6 shard (goal < 10 s)": shard_runs(paper["experiments"]["fig6"], 1e-4),
        "sec51 shard (goal < 120 s)": shard_runs(config["experiments"]["sec51"], 1e-4),
    }
    for name, runs in grids.items():
        start = time.perf_counter()
        sweep(x, y, x_test, y_test, runs, device)
        torch.cuda.synchronize()
        print(f"   {name}: {len(runs)} runs in {time.perf_counter() - start:.1f} s", flush=True)


def job_groups(config: dict) -> dict[str, dict]:
    """The experiments that share sweep jobs, by a label naming them all (``a + b``)."""
    experiments = config["experiments"]
    owners = [name for name in experiments if job_owner(experiments, name) == name]
    groups = [sweep_group(experiments, owner) for owner in owners]
    return {" + ".join(group): group for group in groups}


def project(config: dict, budget: Budget) -> pd.DataFrame:
    """Projected work and jobs of every experiment of ``config`` (ImageNet included; those that
    share sweep jobs together), for jobs as the workflow plans them (small shards packed, large
    ones in parts)."""
    lambdas = {fm: spec["lambda_reg"] for fm, spec in config["fms"].items()}
    rows = []
    for label, group in job_groups(config).items():
        counts = [count for _, count, _ in experiment_jobs(group, lambdas, budget)]
        shards, n_runs = len(counts), sum(counts)
        jobs = [sum(s for *_, s in job) for job in experiment_packs(group, lambdas, budget)]
        rows.append(
            {
                "experiment": label,
                "shards": shards,
                "runs": n_runs,
                "jobs": len(jobs),
                "hours": sum(jobs) / 3600,
                "longest_job_min": max(jobs) / 60,
            }
        )
    table = pd.DataFrame(rows)
    total = {"experiment": "total", **table.drop(columns="experiment").sum().to_dict()}
    total["longest_job_min"] = table["longest_job_min"].max()
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table.astype({"shards": int, "runs": int, "jobs": int})


def gemm_rates(device: str, size: int = 2048, repeats: int = 5) -> tuple[float, float]:
    """Flop/s of a square matrix product in float32 and float64 on ``device``: the median of
    ``repeats`` products after one more (a shared machine's rate moves from one call to the
    next; ``main`` also measures it before, between and after the calibration's steps)."""
    rates = []
    for dtype in (torch.float32, torch.float64):
        a = torch.randn(size, size, device=device, dtype=dtype)
        seconds = _clock(device, torch.mm, a, a, repeats=repeats, within_s=math.inf)
        rates.append(2 * size**3 / seconds)
    return rates[0], rates[1]


def kmeans_at_size(
    device: str, ks: tuple[int, ...] = (1, 2, 3, 5, 10, 15, 20), seeds: int = 3
) -> tuple[float, float, float, float]:
    """k-means as a sweep runs it, every clustering of a view together (the paper's k × 3
    seeds), on a CIFAR-10-sized task (10 classes × ``LLOYD_REFERENCE`` samples, 512-d): seconds
    per operation (as ``imprint.study.cost`` counts them), its Lloyd steps (each class's own,
    averaged over the classes) and seeding candidates per step, weighted by k as its work is,
    and how the steps grow with the samples per class (the exponent from the same clusterings
    on twice the samples)."""
    # the clusterings on twice the samples first: besides their steps, they pay for memory the
    # process has not used yet, as a sweep job does for its first view only (timed after them,
    # the reference's take what they take after a warm-up of their own size)
    _, doubled = _kmeans_steps(device, 2 * LLOYD_REFERENCE, ks, seeds)
    seconds, steps = _kmeans_steps(device, LLOYD_REFERENCE, ks, seeds)
    trials = np.average([2 + int(np.log(k)) for k in ks], weights=ks)
    rate = seconds / (10 * LLOYD_REFERENCE * 512 * sum(ks) * seeds)
    return rate, steps, trials, float(np.log2(doubled / steps))


def _kmeans_steps(
    device: str, per_class: int, ks: tuple[int, ...], seeds: int
) -> tuple[float, float]:
    """The seconds of every (k, seed) clustering of a 10-class, 512-d task together, and their
    Lloyd steps (the mean over the classes) weighted by k."""
    x, y = _tensors(per_class, 10, 512, 1, device)
    batch = ClassBatch.from_labels(x, y, 10)
    todo = [k for _ in range(seeds) for k in ks]
    streams = [ClassStreams.keyed(s, "gen", batch.keys) for s in range(seeds) for _ in ks]
    start = time.perf_counter()
    _, steps = kmeans_together(batch.x, batch.mask, todo, streams)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, float(np.average(steps, weights=todo))


def kmedoids_at_size(
    device: str, ks: tuple[int, ...] = (1, 2, 3, 5, 10, 15, 20)
) -> tuple[float, float]:
    """The reference k-medoids as a sweep runs it, every k of a view together, on a
    CIFAR-10-sized task (10 classes × 5,000 samples, 512-d), given the view's distances:
    seconds per operation (as ``imprint.study.cost`` counts them) and its alternate rounds,
    weighted by k as its work is."""
    c, n = 10, 5000
    x, y = _tensors(n, c, 512, 1, device)
    batch = ClassBatch.from_labels(x, y, c)
    distances = reference_distances(batch.x, batch.mask)
    start = time.perf_counter()
    _, rounds = kmedoids_together(batch.x, batch.mask, ks, distances)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return seconds / (c * n * n * sum(ks)), float(np.average(rounds, weights=ks))


def probe_passes(device: str) -> float:
    """The linear probe's passes over its rows (CLIP's C search and refit) on the calibration's
    task (10 classes × 2,000 samples, 512-d)."""
    x, y = _tensors(2000, 10, 512, 1, device)
    return fit_linear_probe(x, y, 10, seed=0).passes


def family_hours(config: dict, rates: dict[str, float], slowdown: float) -> pd.DataFrame:
    """Hours per experiment (rows; those that share sweep jobs together) and step family
    (columns) of every shard of ``config`` at ``rates`` times ``slowdown``, each shard's view
    work once (as one job)."""
    lambdas = {fm: spec["lambda_reg"] for fm, spec in config["fms"].items()}
    catalog, rows = Catalog(), {}
    for label, group in job_groups(config).items():
        experiment = next(iter(group.values()))
        timing = experiment.get("time_every_seed", False)
        shard_units = {
            fm: units(group_runs(group, lambdas[fm]), timing) for fm in experiment["fms"]
        }
        total: dict[str, float] = {}
        for fm, dataset, mapping, task in shard_keys(experiment):
            size = catalog.task_size(fm, dataset, mapping, task)
            for family, s in family_seconds(shard_units[fm], size, rates).items():
                total[family] = total.get(family, 0.0) + s * slowdown / 3600
        rows[label] = total
    return pd.DataFrame(rows).T.fillna(0.0)


def arithmetic_floor(
    config: dict,
    rates: dict[str, float],
    device: str,
    threads: int,
    gemm: list[tuple[float, float]],
    steps: float,
    trials: float,
    rounds: float,
) -> None:
    """Print the projection beside its floor, per experiment and per step family: each
    distinct result once, its least arithmetic at this machine's GEMM rates (k-means at
    ``steps`` Lloyd steps and ``trials`` seeding candidates a step at ``LLOYD_REFERENCE`` samples
    per class, scaled as the projection scales them, k-medoids at the rounds ``rounds`` of
    ``kmedoids_at_size``, the probe at ``probe_passes``). The GEMM rates are the medians of
    ``gemm``, measured around the calibration, and once more here: a shared machine's speed moves
    over minutes, and the floor should see the machine the rates saw."""
    gemm.append(gemm_rates(device))
    gemm32, gemm64 = (float(np.median(r)) for r in zip(*gemm, strict=True))
    passes = probe_passes(device)
    spread = ", ".join(f"{r32 / 1e9:.0f}/{r64 / 1e9:.0f}" for r32, r64 in gemm)
    print(
        f"   GEMM {gemm32 / 1e9:.0f} GFLOP/s (float32), {gemm64 / 1e9:.0f} GFLOP/s (float64), "
        f"medians of {len(gemm)} measurements ({spread}); "
        f"k-means {steps:.1f} Lloyd steps at {LLOYD_REFERENCE} samples per class (× n^"
        f"{rates['lloyd_steps_exponent']:.2f} elsewhere), {trials:.1f} seeding candidates a "
        f"step, k-medoids {rounds:.1f} rounds (k-weighted), the linear probe {passes:.0f} passes "
        "over its rows"
    )
    slowdown = 1.0 if device.startswith("cuda") else threads
    projected = family_hours(config, rates, slowdown)
    least = family_hours(
        config,
        floor_rates(gemm32, gemm64, steps, trials, rounds, passes, rates["lloyd_steps_exponent"]),
        slowdown,
    )
    for title, axis in (("experiment", 1), ("family", 0)):
        table = pd.DataFrame(
            {"projected_h": projected.sum(axis=axis), "floor_h": least.sum(axis=axis)}
        )
        if title == "family":
            table = table[table["projected_h"] >= 0.05].sort_values("projected_h")[::-1]
        table.loc["total"] = table.sum()
        table["times_floor"] = table["projected_h"] / table["floor_h"]
        print(table.rename_axis(title).to_markdown(floatfmt=".2f"))


def wall_hours(work_h: float, jobs: int, fixed_s: float, gpu: bool, at_once: int) -> float:
    """Hours a user waits for ``jobs`` sweep jobs of ``work_h`` hours of work, each paying
    ``fixed_s`` seconds of start-up, ``at_once`` at a time: on CPU cores everything shares the
    cores; on one GPU start-ups overlap each other and the GPU's work, which runs one at a time."""
    total = work_h + jobs * fixed_s / 3600
    return max(work_h, total / at_once) if gpu else total / at_once


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--config", default=str(ROOT / "config/paper.yaml"))
    parser.add_argument("--budget-minutes", type=float, default=30.0)
    parser.add_argument("--check-test-rows", type=int, default=1000)
    parser.add_argument("--floor-test-per-class", type=int, default=200)
    parser.add_argument("--write-rates", metavar="PATH", help="store the measured rates there")
    parser.add_argument(
        "--gpu-share", type=int, default=8, help="sweep jobs at once on one GPU (the profile's)"
    )
    return parser.parse_args()


def measure(device: str) -> tuple[dict[str, float], list[tuple[float, float]], float, float, float]:
    """Step 1: the rates (``calibrate``, then k-means' and k-medoids' at real sizes), the GEMM
    rates measured before, between and after them, and k-means' Lloyd steps and seeding
    candidates and k-medoids' rounds at those sizes."""
    start = time.perf_counter()
    gemm = [gemm_rates(device)]
    rates = calibrate(device)
    gemm.append(gemm_rates(device))
    rates["gen_kmeans"], steps, trials, rates["lloyd_steps_exponent"] = kmeans_at_size(device)
    rates["gen_kmedoids"], rounds = kmedoids_at_size(device)
    gemm.append(gemm_rates(device))
    families = len(rates) - 1  # all but k-means' step exponent
    print(f"1. calibrated {families} families in {time.perf_counter() - start:.0f} s", flush=True)
    return rates, gemm, steps, trials, rounds


def report_projection(
    config: dict, rates: dict[str, float], args: argparse.Namespace, threads: int
) -> None:
    """Step 4: every shard priced, in jobs as the workflow plans them (on a GPU, or on one CPU
    core each: rates measured on ``threads`` cores, scaled as
    ``imprint.study.cost.load_budget`` scales them), with their start-up and the wall time."""
    gpu = args.device.startswith("cuda")
    table = project(config, Budget(args.budget_minutes, rates, 1.0 if gpu else threads))
    imports = wall([sys.executable, "-c", script_imports(SWEEP_SCRIPT)], 3, cwd=ROOT)
    fixed = snakemake_job(3) + imports + (in_process(CUDA_CONTEXT, 3) if gpu else 0.0)
    table["start_up_h"] = table["jobs"] * fixed / 3600
    hours = "GPU-hours" if gpu else "core-hours"
    table = table.rename(columns={"hours": hours})
    print(f"4. projection of {args.config} ({args.budget_minutes:g}-minute jobs):")
    print(table.to_markdown(index=False, floatfmt=".1f"))
    at_once = args.gpu_share if gpu else max(1, (os.cpu_count() or 1) // threads)
    total = table.iloc[-1]
    waited = wall_hours(total[hours], int(total["jobs"]), fixed, gpu, at_once)
    print(
        f"   start-up {fixed:.2f} s per sweep job; with {at_once} jobs at once on "
        f"{'one GPU' if gpu else f'{os.cpu_count()} cores'}: {waited:.1f} hours of wall time"
    )


def write_rates(path: Path, device: str, machine: str, threads: int, rates: dict) -> None:
    """Store ``rates`` as the device's entry of the rates file at ``path`` (others kept)."""
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored["cuda" if device.startswith("cuda") else "cpu"] = {
        "machine": machine,
        "measured": datetime.date.today().isoformat(),
        "threads": threads,
        "seconds_per_op": rates,
    }
    path.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    print(f"rates written to {path}")


def main() -> None:
    args = _arguments()
    device, threads = args.device, torch.get_num_threads()
    machine = describe(device, threads)
    print(f"machine: {machine}, device {device}", flush=True)
    config = yaml.safe_load(Path(args.config).read_text())
    rates, gemm, steps, trials, rounds = measure(device)
    print("2. projected vs measured on sampled units:", flush=True)
    checked = check(config, rates, device, args.check_test_rows)
    ratio = checked["measured_s"].sum() / checked["projected_s"].sum()
    print(f"   all sampled units: measured / projected = {ratio:.2f}", flush=True)
    n_runs, n_searches, swept, least = search_floor(device, args.floor_test_per_class)
    print(
        f"3. `all` rows of sec51 (CIFAR-sized, {n_runs} runs, {n_searches} searches): sweep "
        f"{swept:.1f} s, floor {least:.1f} s, {swept / least:.2f}× the floor",
        flush=True,
    )
    report_projection(config, rates, args, threads)
    print("5. the projection and its arithmetic floor:", flush=True)
    gpu = device.startswith("cuda")
    arithmetic_floor(config, rates, device, 1 if gpu else threads, gemm, steps, trials, rounds)
    if gpu:
        print("6. GPU goals:", flush=True)
        gpu_targets(config, device)
    if args.write_rates:
        write_rates(Path(args.write_rates), device, machine, threads, rates)


if __name__ == "__main__":
    main()
