"""Job budgets: units of shared work, their prices, and shards split along them."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import yaml

from imprint.fms.data import digits
from imprint.fms.store import open_embeddings, save_embeddings
from imprint.method.classifier import ImprintingClassifier
from imprint.method.generators import GEN
from imprint.method.normalize import NORM_POST
from imprint.method.params import DISTANCES
from imprint.study.catalog import Catalog
from imprint.study.config import job_owner, job_spec, sweep_group
from imprint.study.cost import (
    LLOYD_REFERENCE,
    RATES,
    TaskSize,
    family_seconds,
    floor_rates,
    load_budget,
    operations,
    pack,
    part_seconds,
    split,
    unit_seconds,
    units,
)
from imprint.study.experiments import (
    experiment_packs,
    group_runs,
    pack_members,
    shard_keys,
    shard_runs,
)
from imprint.study.grid import expand_grid
from imprint.study.methods import NAMED_METHODS
from imprint.study.sweep_job import run_pack
from imprint.study.tasks import select_task
from tests.workflow_runs import ROOT

DEMO = yaml.safe_load((ROOT / "config/config.yaml").read_text())["experiments"]
PAPER = yaml.safe_load((ROOT / "config/paper.yaml").read_text())["experiments"]
RANDOM = {"random", "kmeans", "kmedoids_pam", "fps", "kls"}


def _shared_work(run: dict) -> tuple:
    """What a run shares with others, written out from the engine's rules: its presampled data
    (the seed only for few-shot draws) and its clustering (k-means and k-least-squares of one k
    and seed) or proxy set (the seed only for random GENs, λ only for ls and kls)."""
    data = (run["norm_pre"], run["fewshot"], run["seed"] if run["fewshot"] != -1 else None)
    if run["gen"] in ("kmeans", "kls"):
        return (*data, "clustering", run["k"], run["seed"])
    seed = run["seed"] if run["gen"] in RANDOM else None
    lam = run["lambda_reg"] if run["gen"] == "ls" else None
    return (*data, run["gen"], run["k"], lam, seed)


@pytest.mark.parametrize(
    "experiment", [DEMO["sec51"], DEMO["merged"], PAPER["subsec1_aggfocus"], PAPER["subsec2"]]
)
def test_units_hold_every_run_once_and_never_part_runs_that_share_work(experiment):
    runs = shard_runs(experiment, 1e-4)
    found = units(runs)
    held = np.concatenate([u.runs for u in found])
    assert sorted(held.tolist()) == list(range(len(runs)))
    unit_of = {i: j for j, u in enumerate(found) for i in u.runs}
    by_work = defaultdict(set)
    for i, run in enumerate(runs.to_dict("records")):
        by_work[_shared_work(run)].add(unit_of[i])
    assert all(len(owners) == 1 for owners in by_work.values())
    assert len(by_work) == len(found)  # and nothing more is merged


def test_split_packs_consecutive_units_greedily_under_the_budget():
    rng = np.random.default_rng(3)
    for _ in range(200):
        seconds = rng.exponential(10, size=rng.integers(1, 30)).tolist()
        budget = float(rng.uniform(5, 60))
        parts = split(seconds, budget)
        assert [i for part in parts for i in part] == list(range(len(seconds)))
        for j, part in enumerate(parts):
            load = sum(seconds[i] for i in part)
            assert load <= budget or len(part) == 1
            if j + 1 < len(parts):  # the next unit did not fit
                assert load + seconds[parts[j + 1][0]] > budget


def test_pack_shares_jobs_between_whole_shards_and_keeps_parts_alone():
    shards = [("a", [10.0]), ("b", [15.0]), ("c", [30.0, 20.0]), ("d", [5.0]), ("e", [40.0])]
    assert pack(shards, 30) == [
        [("a", 1, 1, 10.0), ("b", 1, 1, 15.0)],  # 25 s together; c's parts stand alone
        [("c", 1, 2, 30.0)],
        [("c", 2, 2, 20.0)],
        [("d", 1, 1, 5.0)],  # d and e do not fit together: 45 s > 30 s
        [("e", 1, 1, 40.0)],  # over the budget alone: a job of its own
    ]
    assert pack([("a", [1.0]), ("b", [2.0]), ("c", [3.0])], 60) == [
        [("a", 1, 1, 1.0), ("b", 1, 1, 2.0), ("c", 1, 1, 3.0)]
    ]
    assert pack([], 60) == []


def test_shards_pack_in_one_order_whatever_the_configs():
    one = {"fms": ["b", "a"], "datasets": ["x"], "mappings": ["mod5", "none", "mod10"],
           "tasks": ["short", "all"]}  # fmt: skip
    other = {"fms": ["a", "b"], "datasets": ["x"], "mappings": ["none", "mod10", "mod5"],
             "tasks": ["all", "short"]}  # fmt: skip
    keys = shard_keys(one)
    assert keys == shard_keys(other)
    assert keys[:3] == [("a", "x", "none", "all"), ("a", "x", "none", "short"),
                        ("a", "x", "mod5", "all")]  # fmt: skip
    assert [m for _, _, m, _ in keys[:6]] == ["none"] * 2 + ["mod5"] * 2 + ["mod10"] * 2
    assert [fm for fm, *_ in keys] == ["a"] * 6 + ["b"] * 6


def _digit_files(directory) -> dict[tuple[str, str], object]:
    """The digits' pixels as embeddings of two FMs, ``a`` and ``b`` (scaled differently)."""
    files = {}
    for fm, scale in (("a", 255), ("b", 16)):
        for split_name in ("train", "test"):
            images, labels = digits(split_name)
            files[fm, split_name] = directory / f"{fm}_{split_name}.npy"
            flat = images.reshape(len(images), -1).astype(np.float32) / scale
            save_embeddings(files[fm, split_name], flat, labels)
    return files


def test_a_pack_of_shards_gives_each_shards_runs_as_the_classifier_would(tmp_path):
    """``run_pack`` over shards of two FMs: each shard's runs in order (methods, then seeds),
    each with its FM's λ and the accuracy ``ImprintingClassifier`` gets on the shard's task."""
    files = _digit_files(tmp_path)
    experiment = {"methods": ["qi", "oracle"], "seeds": [1, 2]}
    shards = [("a", "even", 1e-4), ("a", "short", 1e-4), ("b", "even", 0.5)]
    members = [
        {"fm": fm, "lambda_reg": lam, "dataset": "digits", "mapping": "none", "task": task,
         "part": None, "label_table": None}
        for fm, task, lam in shards
    ]  # fmt: skip
    paths = {(fm, "digits"): ([str(files[fm, "train"])], [str(files[fm, "test"])]) for fm in "ab"}
    table = run_pack("e", experiment, members, paths)
    for fm, task, lam in shards:
        chosen = table[(table["fm"] == fm) & (table["task"] == task)]
        assert list(zip(chosen["method"], chosen["seed"], strict=True)) == [
            ("qi", 1), ("qi", 2), ("oracle", 1), ("oracle", 2)
        ]  # fmt: skip
        tr = select_task(*open_embeddings(files[fm, "train"]), "none", task)
        te = select_task(*open_embeddings(files[fm, "test"]), "none", task)
        for method, seed, accuracy in chosen[["method", "seed", "accuracy"]].itertuples(False):
            params = {**NAMED_METHODS[method], "lambda_reg": lam, "seed": seed}
            score = ImprintingClassifier(**params).fit(*tr).score(*te)
            assert accuracy == pytest.approx(100 * score, abs=1e-9), (fm, task, method)
        assert set(chosen["lambda_reg"]) == {lam}
    assert list(table["task"]) == ["even"] * 4 + ["short"] * 4 + ["even"] * 4
    assert set(table["experiment"]) == {"e"} and set(table["dataset"]) == {"digits"}


def test_experiments_that_share_jobs_get_their_own_rows_and_cluster_once(tmp_path, monkeypatch):
    """k-means and k-least-squares swept in one job: each experiment's rows are the ones it gets
    alone (but for timings), under its own provenance, and every (k, seed) is clustered once."""
    from imprint.method import generators

    files = _digit_files(tmp_path)
    paths = {("a", "digits"): ([str(files["a", "train"])], [str(files["a", "test"])])}
    member = {"fm": "a", "lambda_reg": 1e-3, "dataset": "digits", "mapping": "none",
              "task": "odd", "part": None, "label_table": None}  # fmt: skip
    grid = {"norm_pre": ["none"], "k": [1, 3], "norm_post": ["none"], "norm_inf": ["none"]}
    kmeans = {"grid": {**grid, "gen": ["kmeans"]}, "seeds": [1, 2]}
    kls = {"grid": {**grid, "gen": ["kls"]}, "seeds": [1, 2]}
    clustered = []
    original = generators.clustering.kmeans_together

    def counted(x, mask, ks, streams, *args):
        clustered.extend(ks)
        return original(x, mask, ks, streams, *args)

    monkeypatch.setattr(generators.clustering, "kmeans_together", counted)
    experiments = {"km": kmeans, "kl": {**kls, "share_jobs_with": "km"}}
    shared = run_pack("km", job_spec(experiments, "km"), [member], paths)
    assert sorted(clustered) == [1, 1, 3, 3]  # k = 1 and 3 under two seeds, once each
    alone = pd.concat([run_pack("km", kmeans, [member], paths),
                       run_pack("kl", kls, [member], paths)], ignore_index=True)  # fmt: skip
    assert len(clustered) == 4 + 2 * 4  # alone, each experiment clusters them again
    assert list(shared["experiment"]) == ["km"] * 4 + ["kl"] * 4
    assert list(shared.columns) == list(alone.columns)
    varying = ["gen_time_s", "time_s"]
    pd.testing.assert_frame_equal(shared.drop(columns=varying), alone.drop(columns=varying))


def test_a_unit_costs_its_operations_at_the_rates():
    """One mean run, L2 everywhere, max: grouping + the test rows + prepare + nearest class
    centres + mean + L2 post + one inner-product search + one vote, counted by hand for C = 4
    classes × n = 10 samples, N = 6 test rows, D = 3."""
    runs = expand_grid({"gen": ["mean"], "k": [1]})
    (unit,) = units(runs)
    size = TaskSize(n_classes=4, train_per_class=10, n_test=6, dim=3)
    families = ["prepare", "gen_mean", "post_l2", "search_max", "vote", "overhead", "ncc"]
    weights = {name: 10.0**i for i, name in enumerate(families)}
    expected = (
        4 * 10 * 3  # the training rows grouped by class
        + 6 * 3  # NORMpre of the test rows
        + 4 * 10 * 3  # NORMpre of the training rows
        + 4 * 10  # the draw (of every row)
        + 1_000_000 * (6 * 4 * 3)  # the test rows' nearest class centres
        + 10 * (4 * 10 * 3)  # the class means
        + 100 * (4 * 3)  # L2 of 4 proxies
        + 1000 * (6 * 4 * 3)  # 6 test rows against 4 proxies
        + 10_000 * (6 * 2)  # one vote of m = 1 per test row
        + 100_000 * 8  # eight steps
    )
    assert unit_seconds(unit, size, weights) == pytest.approx(expected)


def test_jobs_cover_every_run_once_and_stay_within_the_budget():
    budget, _ = load_budget(0.5, None, "cpu")
    for experiment in (DEMO["sec51"], PAPER["subsec1_aggfixed"]):
        runs = shard_runs(experiment, 1e-4)
        shard_units = units(runs)
        size = Catalog().task_size("resnet18", "cifar10", "none", "all")
        jobs = budget.jobs(shard_units, size)
        assert len(jobs) > 1
        held = np.concatenate([rows for rows, _ in jobs])
        assert sorted(held.tolist()) == list(range(len(runs)))
        for rows, seconds in jobs:
            held = [u for u in shard_units if set(u.runs) <= set(rows.tolist())]
            alone = sum(unit_seconds(u, size, budget.rates) for u in held)
            paid = set()  # a view's (and the shard's) shared steps once per job
            for unit in held:
                for step in unit.view_steps:
                    owner = (-1 if step[0] in ("group", "test") else unit.view), step
                    if owner in paid:
                        alone -= _step_seconds(step, unit.fewshot, size, budget.rates)
                    paid.add(owner)
            assert seconds == pytest.approx(budget.slowdown * alone)
            assert seconds <= budget.minutes * 60 or len(held) == 1


def _step_seconds(step, fewshot, size, rates):
    family, count = operations(step, fewshot, size)
    return count * rates[family] + rates["overhead"]


def test_a_views_shared_work_is_paid_once_and_retimed_gens_alone_per_seed():
    """Preparing a view, its Gram matrix (ls, kls) and k-medoids' distances are shared by every
    unit of the view; with ``time_every_seed`` a deterministic GEN is also run alone, shared
    steps included, for each further seed."""
    runs = expand_grid({"gen": ["ls", "kls", "kmedoids"], "k": [2, 3], "seed": [1, 2]})
    found = units(runs)
    assert len(found) == 1 + 4 + 2  # ls; kls per (k, seed); k-medoids per k
    gram, distances = ("gen", "gram", 0, None), ("gen", "kmedoids_distances", 0, None)
    assert {u.view for u in found} == {0}
    assert sum(gram in u.view_steps for u in found) == 5
    assert sum(distances in u.view_steps for u in found) == 2
    size = TaskSize(n_classes=4, train_per_class=100, n_test=50, dim=8)
    rates = dict.fromkeys(json.loads(RATES.read_text())["cpu"]["seconds_per_op"], 1e-9)
    rates.update(overhead=0.0, prepare=1.0, ncc=1.0, gen_gram=10.0, gen_kmedoids_distances=100.0)
    every_view = [("group", "", 0, None), ("test", "", 0, "none"), ("prepare", "", 0, None)]
    repeats = 1.0 * 6 * sum(operations(step, -1, size)[1] for step in every_view)
    repeats += 1.0 * 6 * operations(("ncc", "", 0, None), -1, size)[1]
    repeats += 10.0 * 4 * operations(gram, -1, size)[1]
    repeats += 100.0 * operations(distances, -1, size)[1]
    alone = sum(unit_seconds(u, size, rates) for u in found)
    assert sum(part_seconds(found, size, rates)) == pytest.approx(alone - repeats)
    timed = {u.steps[0][1]: u.steps for u in units(runs, time_every_seed=True)}
    assert timed["ls"].count(gram) == 1 and timed["ls"].count(("gen", "ls", 1, None)) == 2
    assert timed["kmedoids"].count(distances) == 1


def test_a_views_farthest_point_samplings_are_paid_once_per_seed_at_the_largest_k():
    """A sweep samples each seed's farthest points once, for the largest k of the view (the
    others are its first k); timing every seed samples each k alone."""
    runs = expand_grid({"gen": ["fps"], "k": [2, 5, 3], "seed": [1, 2], "norm_pre": ["none", "l2"]})
    size = TaskSize(n_classes=4, train_per_class=100, n_test=50, dim=8)
    rates = dict.fromkeys(json.loads(RATES.read_text())["cpu"]["seconds_per_op"], 0.0)
    rates.update(gen_fps=1.0)
    assert sum(part_seconds(units(runs), size, rates)) == 2 * 2 * (4 * 100 * 5 * 8)
    alone = sum(part_seconds(units(runs, time_every_seed=True), size, rates))
    assert alone == 2 * 2 * 4 * 100 * (2 + 5 + 3) * 8


def test_a_fewshot_view_prepares_its_drawn_rows_and_the_shard_its_rows_once():
    """Grouping the training rows and normalising the test rows (per NORMpre) are the shard's,
    paid once per job; each view normalises the rows its draw kept (every row under Weibull,
    which comes before the draw) and finds its test rows' nearest class centres."""
    grid = {"gen": ["mean"], "k": [1], "fewshot": [2, 5, -1], "weibull": [None, [0.1, 0.9]],
            "norm_pre": ["none", "l2"]}  # fmt: skip
    found = units(expand_grid(grid))
    assert len({u.view for u in found}) == 12
    size = TaskSize(n_classes=4, train_per_class=100, n_test=50, dim=8)
    rates = dict.fromkeys(json.loads(RATES.read_text())["cpu"]["seconds_per_op"], 0.0)
    rates.update(prepare=1.0, ncc=10.0)
    paid = part_seconds(found, size, rates)
    per_view = 4 * 100 + 10.0 * 50 * 4 * 8  # the draw's keys, the nearest class centres
    grouping, test_rows = 4 * 100 * 8, 50 * 8
    drawn = {2: 2, 5: 5, -1: 100}
    norms_seen: set[str] = set()
    for unit, seconds in zip(found, paid, strict=True):
        norm, weibull = unit.view_steps[1][3], unit.view_steps[2][3]
        rows = 100 if weibull == "weibull" else drawn[unit.fewshot]
        expected = 4 * rows * 8 + per_view + (grouping if unit is found[0] else 0)
        expected += test_rows if norm not in norms_seen else 0
        norms_seen.add(norm)
        assert seconds == pytest.approx(expected)
    assert norms_seen == {"none", "l2"}


def test_task_sizes_follow_the_data_sets_and_mappings():
    train, test = digits("train")[1], digits("test")[1]
    task_size = Catalog().task_size
    size = task_size("demo_cnn", "digits", "none", "all")
    assert size.n_classes == 10 and size.n_test == pytest.approx(len(test), rel=0.01)
    assert size.train_per_class * 10 == pytest.approx(len(train), rel=0.01)
    assert task_size("resnet18", "cifar10", "none", "even") == TaskSize(5, 5000, 5000, 512)
    assert task_size("vit_b_16", "cifar100", "none", "all") == TaskSize(100, 500, 10000, 768)
    assert task_size("resnet18", "cifar100", "mod10", "odd") == TaskSize(5, 5000, 5000, 512)
    merged = task_size("swin_b", "imagenet", "imagenet_merge_d3_r2", "all")
    assert (merged.n_classes, merged.train_per_class, merged.dim) == (10, 3 * 1281, 1024)
    combined = task_size("resnet50", "combidigits", "mod10", "short")
    assert combined.n_classes == 3 and combined.train_per_class == 6000 + 5900 + 729 + 7326
    with pytest.raises(ValueError, match=r"fms\.my_model: say where the FM comes from"):
        task_size("my_model", "cifar10", "none", "all")


def test_the_shipped_rates_price_every_step_on_both_devices(tmp_path):
    shipped = json.loads(RATES.read_text())
    wanted = {f"gen_{g}" for g in GEN} - {"gen_kls"}  # k-means plus the joint solve of ls
    wanted |= {f"post_{p}" for p in NORM_POST} | {f"search_{d}" for d in DISTANCES}
    wanted |= {"search_max", "prepare", "vote", "overhead", "gen_gram", "gen_kmedoids_distances"}
    for kind in ("cpu", "cuda"):
        rates = shipped[kind]["seconds_per_op"]
        assert wanted <= set(rates) and all(v >= 0 for v in rates.values()), kind
    budget, device = load_budget(30, None, "cuda", job_threads=1)
    assert (device, budget.slowdown) == ("cuda", 1.0)
    assert budget.rates == shipped["cuda"]["seconds_per_op"]
    cpu_only = tmp_path / "rates.json"  # where no GPU was measured, the CPU's rates stand in
    cpu_only.write_text(json.dumps({"cpu": {"threads": 4, "seconds_per_op": {"prepare": 1e-9}}}))
    budget, device = load_budget(30, cpu_only, "cuda", job_threads=1)
    assert (device, budget.slowdown) == ("cpu", 4.0)


def test_missing_rates_say_how_to_measure_them(tmp_path):
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"cpu": {"threads": 1, "seconds_per_op": {"prepare": 1e-9}}}))
    budget, _ = load_budget(30, path, "cpu")
    with pytest.raises(ValueError, match=r"bench_paper\.py --write-rates"):
        budget.jobs(units(expand_grid({"gen": ["mean"]})), TaskSize(2, 5, 5, 4))
    path.write_text(json.dumps({"cuda": {"seconds_per_op": {}}}))
    with pytest.raises(ValueError, match="no cpu rates"):
        load_budget(30, path, "cpu")


def test_the_floor_prices_each_step_at_its_least_arithmetic():
    """At 10^11 flop/s (float32) and 5·10^10 (float64), 20 Lloyd steps and 3 seeding candidates
    a step, 4 k-medoids rounds, 150 passes of the probe, counted by hand for C = 10 classes ×
    n = 1,000 samples, N = 500 test rows, D = 64."""
    rates = floor_rates(
        1e11, 5e10, 20, 3, kmedoids_rounds=4, probe_passes=150, lloyd_steps_exponent=0
    )
    size = TaskSize(n_classes=10, train_per_class=1000, n_test=500, dim=64)
    expected = {
        ("gen", "kmeans", 5, None): 10 * 1000 * 5 * 64 * (4 * 20 + 2 * 3) / 1e11,
        ("gen", "gram", 0, None): (10 * 1000 * 64 * 64 + 64**3) / 5e10,
        ("gen", "kmedoids", 5, None): 10 * 1000 * 1000 * 5 * 2 * 4 / 5e10,
        ("gen", "linear_probe", -1, None): 150 * 4 * (10 * 1000) * 64 * 10 / 5e10,
        # the scatter matrices of the 8,000 kept rows and the 2,000 held out (together all
        # rows'), two tridiagonal reductions (of the kept rows' covariance, of all rows')
        ("gen", "probe_bases", -1, None): (10_000 * 64 * 64 + 2 * 4 / 3 * 64**3) / 5e10,
        ("search", "kmeans", 5, "max"): 2 * 500 * (10 * 5) * 64 / 1e11,
        # two instructions a term (a minimum and a sum), each priced as a multiply-add's 2 flops
        ("search", "kmeans", 5, "manhattan"): 2 * 2 * 500 * (10 * 5) * 64 / 1e11,
        ("search", "kmeans", 5, "chebyshev"): 3 * 2 * 500 * (10 * 5) * 64 / 1e11,
    }
    for step, seconds in expected.items():
        family, count = operations(step, -1, size)
        assert count * rates[family] == pytest.approx(seconds)
    assert rates["overhead"] == 0 and rates["vote"] == 0


def test_a_probe_is_priced_as_its_bases_and_its_fits():
    """A linear probe's unit holds its bases (D² a row, and a decomposition of the held-out
    split's kept rows and one of all rows; one where a class has a single row) and its fits
    (D × classes a row); rates measured before the split, which hold the bases in the fits'
    rate, price the bases at 0."""
    (unit,) = units(expand_grid({"gen": ["linear_probe"], "k": [-1]}))
    assert [s[1] for s in unit.steps if s[0] == "gen"] == ["probe_bases", "linear_probe"]
    size = TaskSize(n_classes=3, train_per_class=10, n_test=5, dim=4)
    rates = dict.fromkeys(json.loads(RATES.read_text())["cpu"]["seconds_per_op"], 0.0)
    rates.update(gen_linear_probe=1.0, gen_probe_bases=1.0)
    expected = {"gen_probe_bases": 30 * 16 + 2 * 4 / 3 * 64, "gen_linear_probe": 30 * 4 * 3}
    priced = family_seconds([unit], size, rates)
    assert {f: priced[f] for f in expected} == pytest.approx(expected)
    one_row = operations(("gen", "probe_bases", -1, None), 1, size)[1]
    assert one_row == pytest.approx(3 * 16 + 4 / 3 * 64)
    del rates["gen_probe_bases"]
    assert family_seconds([unit], size, rates)["gen_probe_bases"] == 0.0


def test_k_means_steps_grow_with_the_samples_per_class_as_measured():
    """At an exponent of 0.5, four times the reference's samples per class take twice its Lloyd
    steps: 4 × 2 times the seconds; a few-shot draw of 1,250 (a quarter) half the steps."""
    runs = expand_grid({"gen": ["kmeans"], "k": [5], "fewshot": [-1]})
    rates = dict.fromkeys(json.loads(RATES.read_text())["cpu"]["seconds_per_op"], 0.0)
    rates.update(gen_kmeans=1e-9, lloyd_steps_exponent=0.5)

    def seconds(per_class: int, fewshot: int = -1) -> float:
        size = TaskSize(n_classes=2, train_per_class=per_class, n_test=10, dim=4)
        return sum(part_seconds(units(runs.assign(fewshot=fewshot)), size, rates))

    reference = 2 * LLOYD_REFERENCE * 5 * 4 * 1e-9
    assert seconds(LLOYD_REFERENCE) == pytest.approx(reference)
    assert seconds(4 * LLOYD_REFERENCE) == pytest.approx(8 * reference)
    assert seconds(4 * LLOYD_REFERENCE, LLOYD_REFERENCE // 4) == pytest.approx(reference / 8)
    del rates["lloyd_steps_exponent"]  # rates measured before the exponent: steps independent of n
    assert seconds(4 * LLOYD_REFERENCE) == pytest.approx(4 * reference)


# PAPER.md A.4: the paper's (FM, data set, mapping, task) groups per experiment, and its runs
# (the named methods, the GEN-time and subsec2_all experiments are ours: counted in their grids).
PAPER_GROUPS = {
    "fig6": (12, 1836), "subsec1_aggfixed": (48, 41472), "subsec1_aggfixed_kls": (48, 864),
    "subsec1_aggfocus": (48, 283392), "subsec1_aggfocus_kls": (48, 17136),
    "subsec2": (12, 2100), "subsec2_kls": (12, 2100), "subsec3_combidigits": (4, 360),
    "subsec3_combidigits_kls": (4, 180), "subsec3_imagenet": (400, 36000),
    "subsec3_imagenet_kls": (400, 18000), "subsec3_nonimagenet": (12, 1080),
    "subsec3_nonimagenet_kls": (12, 540),
}  # fmt: skip


# The experiments whose runs lie in another's sweep jobs (config/paper.yaml: share_jobs_with).
PAPER_SHARING = {
    "subsec1_aggfixed_kls": "subsec1_aggfixed", "subsec1_aggfocus_kls": "subsec1_aggfocus",
    "subsec3_combidigits_kls": "subsec3_combidigits", "subsec3_imagenet_kls": "subsec3_imagenet",
    "subsec3_nonimagenet_kls": "subsec3_nonimagenet",
}  # fmt: skip


def test_the_paper_configs_jobs_hold_each_of_its_groups_once():
    """Every group of every paper experiment lies in exactly one sweep job (its own, or those of
    the experiment it shares jobs with), whole or as all of its parts, and the groups and runs
    are the paper's (a pack that drops or repeats a group, or a grid that drifts, fails here)."""
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    experiments = config["experiments"]
    lambdas = {fm: spec["lambda_reg"] for fm, spec in config["fms"].items()}
    budget, _ = load_budget(30, None, "cpu")
    for name, (groups, runs) in PAPER_GROUPS.items():
        owner = PAPER_SHARING.get(name, name)
        assert job_owner(experiments, name) == owner
        group = sweep_group(experiments, owner)
        held = defaultdict(list)
        for job in experiment_packs(group, lambdas, budget):
            for key, part, of, _ in job:
                held[key].append((part, of))
        assert len(held) == groups, name
        for key, parts in held.items():
            assert sorted(parts) == [(i, parts[0][1]) for i in range(1, parts[0][1] + 1)], key
        per_fm = {fm: group_runs(group, lambdas[fm]) for fm in experiments[name]["fms"]}
        mine = {fm: int((r["experiment"] == name).sum()) for fm, r in per_fm.items()}
        assert sum(mine[key[0]] for key in held) == runs, name


def test_pack_members_say_where_a_jobs_runs_are():
    """A whole shard's member has no part; each part of a split shard names its place, the
    budget that split it and the shard's size, which run_shard splits again by."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    lambdas = {fm: spec["lambda_reg"] for fm, spec in config["fms"].items()}
    catalog = Catalog()
    for minutes, splits in ((30, False), (0.001, True)):
        budget, _ = load_budget(minutes, None, "cpu")
        jobs = experiment_packs({"sec51": config["experiments"]["sec51"]}, lambdas, budget, catalog)
        members = [m for job in jobs for m in pack_members(job, lambdas, budget, catalog)]
        assert {m["fm"] for m in members} == {"demo_cnn", "demo_narrow", "demo_wide"}
        assert all(
            m["lambda_reg"] == lambdas[m["fm"]] and m["label_table"] is None for m in members
        )
        if not splits:
            assert all(m["part"] is None for m in members)
            continue
        first = members[0]["part"]
        assert first["index"] == 1 and first["of"] > 1 and first["minutes"] == 0.001
        assert members[0]["task"] == "all"  # the demo digits: 1,257 training and 540 test rows
        assert first["size"] == {"n_classes": 10, "train_per_class": 126, "n_test": 540, "dim": 64}


def test_ranpac_and_fecam_are_priced_by_their_steps():
    """RanPAC (width M = k): rows projected, their Gram matrix, the solve and λ's
    eigen-decomposition, then M·(d + c) multiply-adds a test row; FeCAM: each class's outer
    products and pseudo-inverse, then a quadratic form per class."""
    size = TaskSize(2, 3, 4, 5)  # c, n per class, test rows, d
    assert operations(("gen", "ranpac", 7, None), -1, size) == (
        "gen_ranpac",
        6 * 7 * 12 + 343 + 216,
    )
    assert operations(("search", "ranpac", 7, "max"), -1, size) == ("search_max", 4 * 7 * 7)
    assert operations(("gen", "fecam", -1, None), -1, size) == ("gen_fecam", 2 * (3 * 25 + 125))
    assert operations(("search", "fecam", -1, "max"), -1, size) == ("search_max", 4 * 2 * 5 * 6)
