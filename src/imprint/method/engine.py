"""The sweep engine, ``sweep``: many IMPRINT configurations on one task, each intermediate
computed once.

Runs are grouped so that NORMpre + presampling run once per (NORMpre, few-shot, Weibull, seed),
GEN once per (that, GEN, k, λ, seed) — the seed only where the step is random — NORMpost once
per proxy set, NORMinf once per option, and one neighbour search serves every (m, weighting) of
a distance, ``max`` with that distance (1-NN) included. Each step is the same function
``ImprintingClassifier`` calls, so a row's accuracy equals the classifier's for the same
parameters. A baseline GEN (``imprint.method.baselines``) is fitted once per (data, GEN, k,
seed) the same way and scores the test rows itself.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from imprint.method.aggregation import AGG, Variant
from imprint.method.baselines import fit_baseline
from imprint.method.batch import ClassBatch, ProxySet
from imprint.method.collapse import centred_class_means, nearest_class_centre, self_duality
from imprint.method.generators import (
    GEN,
    GenContext,
    cluster_together,
    medoids_together,
    sample_together,
)
from imprint.method.normalize import NORM, NORM_POST
from imprint.method.params import BASELINES, RUN_COLUMNS, validate_params
from imprint.method.pipeline import (
    as_embeddings,
    check_dimensions,
    distance_metric,
    encode_labels,
    index_labels,
    prepare_grouped,
)
from imprint.method.plan import plan_runs
from imprint.method.randomness import class_keys

log = logging.getLogger(__name__)

TIMING_COLUMNS = ("gen_time_s", "time_s")  # measured, so the only columns that vary by rerun
RESULT_COLUMNS = (
    "accuracy", "f1_per_class", "ncc_agreement", "self_duality", *TIMING_COLUMNS, "gen_time_seed",
)  # fmt: skip


def _variant(p: dict[str, Any]) -> Variant:
    return Variant(1) if p["agg"] == "max" else Variant(p["m"], p["weighting"])


def f1_per_class(truth: np.ndarray, prediction: np.ndarray, n_classes: int) -> list[float]:
    """One-vs-rest F1 of every class (0 where a class is neither present nor predicted)."""
    hit = truth == prediction
    tp = np.bincount(truth[hit], minlength=n_classes)
    predicted = np.bincount(prediction, minlength=n_classes)
    actual = np.bincount(truth, minlength=n_classes)
    denominator = predicted + actual
    return (2 * tp / np.maximum(denominator, 1)).tolist()


def sweep(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    configs: pd.DataFrame,
    device: str = "cpu",
    time_every_seed: bool = False,
) -> pd.DataFrame:
    """Run every row of ``configs`` (columns as ``RUN_COLUMNS``, optionally ``weibull``).

    Returns the rows with ``accuracy`` (percent), ``f1_per_class``, ``ncc_agreement`` (the share
    of test rows predicted as the nearest-class-centre rule on the run's NORMpre'd training data
    predicts them, NC4), ``self_duality`` (NC3 of the row's NORMpost'ed proxies, see
    ``imprint.method.collapse.self_duality``), ``gen_time_s`` (the GEN time of the row's proxy
    set, what it would take alone: results it reused are charged their time), ``gen_time_seed``
    (the seed whose GEN run ``gen_time_s`` measured) and ``time_s`` (that plus the row's share
    of NORMpost and AGG time). A deterministic GEN computes one proxy set for all seeds and is
    timed once, under its first seed, unless ``time_every_seed``: then it is run again alone,
    for its time only, for every further seed (as the paper timed every run, PAPER.md §D.8),
    and k-means clusterings are timed alone rather than computed together.
    """
    missing = [c for c in RUN_COLUMNS if c not in configs.columns]
    if missing:
        raise ValueError(f"configs lacks column(s) {missing}; a sweep needs {list(RUN_COLUMNS)}")
    columns = [c for c in configs.columns if c in (*RUN_COLUMNS, "weibull")]
    runs = [validate_params(r) for r in configs[columns].to_dict("records")]
    task = _Task.of(X_train, y_train, X_test, y_test, device)
    results = _Results(len(runs))
    plan = plan_runs(runs)
    n_sets, done = sum(len(gens) for gens in plan.values()), 0
    for data_key, gens in plan.items():
        view = _View.prepare(task, data_key, gens, time_every_seed)
        for gen_key, posts in gens.items():
            seconds = _sweep_proxy_set(task, view, gen_key, posts, runs, results, time_every_seed)
            done += 1
            log.info(
                "proxy set %d/%d: gen=%s k=%s norm_pre=%s fewshot=%s seed=%s (%.2fs)",
                done, n_sets, gen_key[0], gen_key[1], data_key[0], data_key[1], gen_key[3],
                seconds,
            )  # fmt: skip
    return results.table(configs)


@dataclass
class _Task:
    """A sweep's checked data: training rows and class indices (grouped by class once), test
    rows (under each NORM, made once) and their true class indices."""

    x_train: torch.Tensor
    labels: torch.Tensor
    keys: tuple[str, ...]
    x_test: torch.Tensor
    truth: np.ndarray
    device: str
    test_views: dict[tuple[str, bool], torch.Tensor] = field(default_factory=dict)

    @classmethod
    def of(cls, X_train: Any, y_train: Any, X_test: Any, y_test: Any, device: str) -> _Task:
        x_train = as_embeddings(X_train, "X_train", device)
        x_test = as_embeddings(X_test, "X_test", device)
        check_dimensions(x_train.shape[1], x_test, "X_test")
        classes, train_index = encode_labels(y_train, x_train.shape[0])
        truth = index_labels(classes, y_test, x_test.shape[0])
        labels = torch.as_tensor(train_index, device=x_train.device)
        return cls(x_train, labels, class_keys(classes), x_test, truth, device)

    @property
    def n_classes(self) -> int:
        return len(self.keys)

    @functools.cached_property
    def grouped(self) -> ClassBatch:
        """The training rows grouped by class as they are, for every view."""
        return ClassBatch.from_labels(self.x_train, self.labels, self.n_classes, self.keys)

    def test_view(self, norm: str, wide: bool = False) -> torch.Tensor:
        """The test rows after ``norm``; ``wide``: in float64 (for the nearest class centres)."""
        if (norm, wide) not in self.test_views:
            rows = self.test_view(norm).double() if wide else NORM[norm](self.x_test)
            self.test_views[norm, wide] = rows
        return self.test_views[norm, wide]


@dataclass
class _View:
    """One (NORMpre, few-shot, Weibull, seed) view of the training data, and what its proxy
    sets share: the nearest-class-centre predictions, the centred class means, the Mahalanobis
    whitening (made when first needed) and the GEN results every k and seed may reuse."""

    batch: ClassBatch
    ncc: np.ndarray
    centred_means: torch.Tensor
    reuse: dict = field(default_factory=dict)
    metric: torch.Tensor | None = None

    @classmethod
    def prepare(cls, task: _Task, data_key: Hashable, gens: dict, time_every_seed: bool) -> _View:
        norm_pre, fewshot, weibull, data_seed = data_key
        batch = prepare_grouped(task.grouped, norm_pre, fewshot, weibull, data_seed or 0)
        ncc = nearest_class_centre(task.test_view(norm_pre, wide=True), batch.means())
        ncc = ncc.cpu().numpy()
        view = cls(batch, ncc, centred_class_means(batch))
        if not time_every_seed:  # timed alone otherwise, as the paper timed them
            wanted = {(k, seed) for gen, k, _, seed in gens if gen in ("kmeans", "kls")}
            cluster_together(batch, view.reuse, wanted)
            sample_together(batch, view.reuse, {(k, seed) for g, k, _, seed in gens if g == "fps"})
            medoids_together(batch, view.reuse, {k for g, k, _, _ in gens if g == "kmedoids"})
        return view

    def whitening(self, distance: str) -> torch.Tensor | None:
        if distance == "mahalanobis" and self.metric is None:
            self.metric = distance_metric(self.batch, distance)
        return self.metric


class _Results:
    """The result columns of a sweep's runs, filled in run by run."""

    def __init__(self, n_runs: int) -> None:
        self.accuracy = np.zeros(n_runs)
        self.f1: list[list[float]] = [[] for _ in range(n_runs)]
        self.ncc_agreement = np.zeros(n_runs)
        self.self_duality = np.zeros(n_runs)
        self.gen_time_s = np.zeros(n_runs)
        self.gen_time_seed = np.zeros(n_runs, dtype=np.int64)
        self.time_s = np.zeros(n_runs)

    def record(
        self, i: int, prediction: np.ndarray, task: _Task, view: _View, duality: float
    ) -> None:
        self.accuracy[i] = np.mean(prediction == task.truth) * 100
        self.f1[i] = f1_per_class(task.truth, prediction, task.n_classes)
        self.ncc_agreement[i] = np.mean(prediction == view.ncc)
        self.self_duality[i] = duality

    def table(self, configs: pd.DataFrame) -> pd.DataFrame:
        out = configs.copy()
        out["accuracy"] = self.accuracy
        out["f1_per_class"] = self.f1
        out["ncc_agreement"] = self.ncc_agreement
        out["self_duality"] = self.self_duality
        out["gen_time_s"] = self.gen_time_s
        out["gen_time_seed"] = self.gen_time_seed
        out["time_s"] = self.time_s
        return out


def _sweep_proxy_set(
    task: _Task,
    view: _View,
    gen_key: tuple,
    posts: dict,
    runs: list[dict[str, Any]],
    results: _Results,
    time_every_seed: bool,
) -> float:
    """Fit one proxy set (or baseline) and score every run that uses it; its GEN seconds."""
    gen, k, lam, gen_seed = gen_key
    baseline = gen in BASELINES
    fit = (
        _baseline_fit(view.batch, gen, k, task.n_classes)
        if baseline
        else _gen_fit(view.batch, gen, k)
    )
    context = GenContext(gen_seed or 0, lam or 0.0, view.reuse)
    fitted, seconds_gen = _timed(task.device, fit, context)
    seconds_gen += context.reused_seconds
    seeds = sorted({runs[i]["seed"] for groups in posts.values() for i in _all(groups)})
    gen_seconds = {seeds[0]: seconds_gen}
    for seed in seeds[1:] if time_every_seed else ():  # each seed's GEN alone, anew
        _, gen_seconds[seed] = _timed(task.device, fit, GenContext(seed, lam or 0.0))
    for norm_post, groups in posts.items():
        if baseline:  # no proxies: no NORMpost, no self-duality
            normalised, seconds_post, duality = fitted, 0.0, math.nan
        else:
            normalised, seconds_post = _timed(task.device, NORM_POST[norm_post], fitted)
            seconds_post /= sum(len(members) for members in groups.values())
            duality = self_duality(normalised, view.centred_means)
        for scoring, members in groups.items():
            predictions, seconds_agg = _score(task, view, normalised, scoring, members, runs)
            for i, prediction in zip(members, predictions, strict=True):
                results.record(i, prediction.cpu().numpy(), task, view, duality)
                timed = runs[i]["seed"] if runs[i]["seed"] in gen_seconds else seeds[0]
                results.gen_time_seed[i] = timed
                results.gen_time_s[i] = gen_seconds[timed]
                share = seconds_agg / len(members)
                results.time_s[i] = gen_seconds[timed] + seconds_post + share
    return seconds_gen


def _score(
    task: _Task,
    view: _View,
    fitted: Any,
    scoring: tuple[str, str, str],
    members: list[int],
    runs: list[dict[str, Any]],
) -> tuple[list[torch.Tensor], float]:
    """The predictions of the ``members`` runs that score alike (NORMinf, AGG, distance) with
    proxies (or a baseline) ``fitted``, and the seconds of the scoring, all members together."""
    norm_inf, agg, distance = scoring
    if not isinstance(fitted, ProxySet):  # a baseline scores the test rows itself
        scores, seconds = _timed(task.device, fitted, task.test_view(norm_inf))
        return [scores.argmax(1)] * len(members), seconds * len(members)
    return _timed(
        task.device,
        AGG[agg],
        task.test_view(norm_inf),
        fitted,
        task.n_classes,
        distance,
        [_variant(runs[i]) for i in members],
        view.whitening(distance),
    )


def _gen_fit(batch: ClassBatch, gen: str, k: int) -> Callable[[GenContext], Any]:
    return lambda context: GEN[gen](batch, k, context)


def _baseline_fit(
    batch: ClassBatch, gen: str, k: int, n_classes: int
) -> Callable[[GenContext], Any]:
    """A baseline fitted on the batch's training rows: a function of test rows to scores."""
    rows, labels = batch.flat()
    return lambda context: fit_baseline(gen, rows, labels, n_classes, k, context.seed)


def _all(groups: dict[Hashable, list[int]]) -> list[int]:
    return [i for members in groups.values() for i in members]


def _timed(device: str, function: Any, *args: Any) -> tuple[Any, float]:
    """The function's result and its wall time in seconds (waiting for the GPU to finish)."""
    start = time.perf_counter()
    result = function(*args)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start
