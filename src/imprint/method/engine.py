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

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pandas as pd
import torch

from imprint.method.aggregation import AGG, Variant
from imprint.method.baselines import BASELINES, SEEDED_BASELINES, fit_baseline
from imprint.method.batch import ClassBatch
from imprint.method.collapse import centred_class_means, nearest_class_centre, self_duality
from imprint.method.generators import GEN, RANDOM_GENS, GenContext, cluster_together
from imprint.method.normalize import NORM, NORM_POST
from imprint.method.params import RUN_COLUMNS, validate_params
from imprint.method.pipeline import (
    as_embeddings,
    check_dimensions,
    distance_metric,
    encode_labels,
    index_labels,
    prepare_classes,
)
from imprint.method.randomness import class_keys

log = logging.getLogger(__name__)

TIMING_COLUMNS = ("gen_time_s", "time_s")  # measured, so the only columns that vary by rerun
RESULT_COLUMNS = (
    "accuracy", "f1_per_class", "ncc_agreement", "self_duality", *TIMING_COLUMNS, "gen_time_seed",
)  # fmt: skip


def plan_runs(runs: list[dict[str, Any]]) -> dict[Hashable, Any]:
    """Nest run indices as data key -> GEN key -> NORMpost -> (NORMinf, AGG, distance) -> runs.

    Seeds and λ enter the keys only where they change the result."""
    tree: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for i, p in enumerate(runs):
        data_seed = p["seed"] if p["fewshot"] != -1 else None
        gen_seed = p["seed"] if p["gen"] in RANDOM_GENS | SEEDED_BASELINES else None
        lam = p["lambda_reg"] if p["gen"] in ("ls", "kls") else None
        data_key = (p["norm_pre"], p["fewshot"], p["weibull"], data_seed)
        gen_key = (p["gen"], p["k"], lam, gen_seed)
        scoring_key = (p["norm_inf"], _search(p), p["distance"])
        tree[data_key][gen_key][p["norm_post"]][scoring_key].append(i)
    return tree


def _search(p: dict[str, Any]) -> str:
    """The AGG that scores a run: ``max`` with a true distance is the 1-nearest-neighbour vote,
    so it shares the neighbour search of the ``mnn`` runs with that distance."""
    return "mnn" if p["agg"] == "max" and p["distance"] != "inner_product" else p["agg"]


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
    for its time only, for every further seed (as the paper timed every run, PAPER.md §D.8).
    """
    missing = [c for c in RUN_COLUMNS if c not in configs.columns]
    if missing:
        raise ValueError(f"configs lacks column(s) {missing}; a sweep needs {list(RUN_COLUMNS)}")
    columns = [c for c in configs.columns if c in (*RUN_COLUMNS, "weibull")]
    runs = [validate_params(r) for r in configs[columns].to_dict("records")]
    x_train = as_embeddings(X_train, "X_train", device)
    x_test = as_embeddings(X_test, "X_test", device)
    check_dimensions(x_train.shape[1], x_test)
    classes, train_index = encode_labels(y_train, x_train.shape[0])
    truth = index_labels(classes, y_test, x_test.shape[0])
    labels = torch.as_tensor(train_index, device=x_train.device)
    n_classes = len(classes)
    keys = class_keys(classes)

    accuracy = np.zeros(len(runs))
    f1: list[list[float]] = [[] for _ in runs]
    ncc_agreement = np.zeros(len(runs))
    duality = np.zeros(len(runs))
    gen_time = np.zeros(len(runs))
    gen_time_seed = np.zeros(len(runs), dtype=np.int64)
    total_time = np.zeros(len(runs))
    test_views: dict[str, torch.Tensor] = {}  # x_test under each NORM, made once

    def test_view(norm: str) -> torch.Tensor:
        if norm not in test_views:
            test_views[norm] = NORM[norm](x_test)
        return test_views[norm]

    plan = plan_runs(runs)
    n_sets = sum(len(gens) for gens in plan.values())
    done = 0
    for data_key, gens in plan.items():
        norm_pre, fewshot, weibull, data_seed = data_key
        batch: ClassBatch = prepare_classes(
            x_train, labels, n_classes, norm_pre, fewshot, weibull, data_seed or 0, keys
        )
        metric: torch.Tensor | None = None
        ncc = nearest_class_centre(test_view(norm_pre), batch.means()).cpu().numpy()
        centred_means = centred_class_means(batch)
        view: dict = {}  # GEN results of this batch that every k and seed may reuse
        if not time_every_seed:  # timed alone otherwise, as the paper timed them
            wanted = {(k, seed) for gen, k, _, seed in gens if gen in ("kmeans", "kls")}
            cluster_together(batch, view, wanted)
        for (gen, k, lam, gen_seed), posts in gens.items():
            baseline = gen in BASELINES
            fit = _baseline_fit(batch, gen, k, n_classes) if baseline else _gen_fit(batch, gen, k)
            context = GenContext(gen_seed or 0, lam or 0.0, view)
            fitted, seconds_gen = _timed(device, fit, context)
            seconds_gen += context.reused_seconds
            seeds = sorted({runs[i]["seed"] for groups in posts.values() for i in _all(groups)})
            gen_seconds = {seeds[0]: seconds_gen}
            for seed in seeds[1:] if time_every_seed else ():  # each seed's GEN alone, anew
                _, gen_seconds[seed] = _timed(device, fit, GenContext(seed, lam or 0.0))
            for norm_post, groups in posts.items():
                if baseline:  # no proxies: no NORMpost, no self-duality
                    normalised, seconds_post, set_duality = fitted, 0.0, math.nan
                else:
                    normalised, seconds_post = _timed(device, NORM_POST[norm_post], fitted)
                    seconds_post /= sum(len(members) for members in groups.values())
                    set_duality = self_duality(normalised, centred_means)
                for (norm_inf, agg, distance), members in groups.items():
                    if distance == "mahalanobis" and metric is None:
                        metric = distance_metric(batch, distance)
                    if baseline:
                        scores, seconds_agg = _timed(device, fitted, test_view(norm_inf))
                        predictions = [scores.argmax(1)] * len(members)
                        seconds_agg *= len(members)  # each member's share is the whole scoring
                    else:
                        predictions, seconds_agg = _timed(
                            device,
                            AGG[agg],
                            test_view(norm_inf),
                            normalised,
                            n_classes,
                            distance,
                            [_variant(runs[i]) for i in members],
                            metric,
                        )
                    for i, prediction in zip(members, predictions, strict=True):
                        prediction = prediction.cpu().numpy()
                        accuracy[i] = np.mean(prediction == truth) * 100
                        f1[i] = f1_per_class(truth, prediction, n_classes)
                        ncc_agreement[i] = np.mean(prediction == ncc)
                        duality[i] = set_duality
                        gen_time_seed[i] = (
                            runs[i]["seed"] if runs[i]["seed"] in gen_seconds else seeds[0]
                        )
                        gen_time[i] = gen_seconds[gen_time_seed[i]]
                        total_time[i] = gen_time[i] + seconds_post + seconds_agg / len(members)
            done += 1
            log.info(
                "proxy set %d/%d: gen=%s k=%s norm_pre=%s fewshot=%s seed=%s (%.2fs)",
                done, n_sets, gen, k, norm_pre, fewshot, gen_seed, seconds_gen,
            )  # fmt: skip
    out = configs.copy()
    out["accuracy"] = accuracy
    out["f1_per_class"] = f1
    out["ncc_agreement"] = ncc_agreement
    out["self_duality"] = duality
    out["gen_time_s"] = gen_time
    out["gen_time_seed"] = gen_time_seed
    out["time_s"] = total_time
    return out


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
