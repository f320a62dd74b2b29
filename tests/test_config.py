"""The config schema and reference checks: bad configs stop before any job, with a clear message."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from imprint.method.aggregation import AGG
from imprint.method.generators import GEN
from imprint.method.normalize import NORM, NORM_POST
from imprint.method.params import (
    AGGS,
    BASELINES,
    DISTANCES,
    GENS,
    NORMS,
    NORMS_POST,
    WEIGHTINGS,
)
from imprint.study.config import (
    check_experiments,
    check_models,
    check_references,
    check_unique_keys,
    collapse_entries,
    figure_experiments,
    image_source,
    resolve_config,
)
from imprint.study.continual import FIELD_LEARNERS
from imprint.study.continual_spec import FIELD_METHODS
from imprint.study.methods import NAMED_METHODS
from tests.workflow_runs import DEMO_JOBS, copy_workflow, planned_jobs, snakemake

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")


def _config(name: str = "config.yaml") -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


def test_shipped_configs_are_valid():
    for path in sorted((ROOT / "config").glob("**/*.yaml")):
        config = yaml.safe_load(path.read_text())
        validate(config, SCHEMA)
        resolve_config(config)
        check_models(config)  # every model and weights tag exists in its library


@pytest.mark.e2e
def test_the_own_model_example_plans_offline(tmp_path):
    directory = copy_workflow(tmp_path)
    (directory / "models").mkdir()
    (directory / "models/resnet50_finetuned.pth").write_bytes(b"stand-in")
    result = snakemake(directory, "-n", "--configfile", "config/examples/own_model.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.MULTILINE))
    assert jobs["fm_weights"] == "3"  # convnext, femto, and the checked copy of yours
    assert jobs["embed"] == str(3 * 2)  # 3 FMs × 2 data sets, both splits in one job


@pytest.mark.e2e
def test_the_cifar100_class_incremental_example_plans_offline(tmp_path):
    """Its three studies (B0-Inc10, B50-Inc10, few-shot) each plan their runs, table and CD
    diagram, from one download of CIFAR-100 and one embedding job per FM."""
    directory = copy_workflow(tmp_path)
    example = "config/examples/continual_cifar100.yaml"
    result = snakemake(directory, "-n", "--configfile", example)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.MULTILINE))
    assert jobs["download_data"] == "1" and jobs["embed"] == "2"
    assert jobs["continual"] == jobs["continual_report"] == jobs["continual_cd"] == "3"
    for study in ("b0_inc10", "b50_inc10", "fewshot_5way_5shot"):
        assert f"results/tables/continual/{study}.md" in result.stdout


def test_the_planning_names_are_the_registries_keys():
    """Planning checks runs by the names in ``imprint.method.params`` (no PyTorch there); they
    are exactly the keys of the registries that hold the functions, in order."""
    assert tuple(NORM) == NORMS and tuple(NORM_POST) == NORMS_POST
    assert tuple(GEN) == GENS and tuple(AGG) == AGGS
    assert tuple(FIELD_LEARNERS) == FIELD_METHODS


@pytest.mark.e2e
def test_the_embedded_default_plans_without_pytorch(tmp_path):
    """A dry run of the embedded default imports no PyTorch (a ``torch`` that fails to import
    stands first on the path), so that every plan stays quick."""
    blocker = tmp_path / "blocker"
    (blocker / "torch").mkdir(parents=True)
    (blocker / "torch/__init__.py").write_text('raise ImportError("planning imported torch")\n')
    directory = copy_workflow(tmp_path / "workflow")
    path = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    result = snakemake(directory, "-n", env={**os.environ, "PYTHONPATH": path})
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result.stdout) == DEMO_JOBS


def test_schema_lists_exactly_the_registries():
    grid = yaml.safe_load(Path(SCHEMA).read_text())["$defs"]["experiment"]["properties"]["grid"][
        "properties"
    ]
    assert grid["gen"]["items"]["enum"] == [*GEN, *BASELINES]
    experiment = yaml.safe_load(Path(SCHEMA).read_text())["$defs"]["experiment"]["properties"]
    assert experiment["methods"]["items"]["enum"] == list(NAMED_METHODS)
    assert grid["norm_post"]["items"]["enum"] == list(NORM_POST)
    assert grid["norm_pre"]["items"]["enum"] == grid["norm_inf"]["items"]["enum"] == list(NORM)
    assert grid["agg"]["items"]["enum"] == list(AGG)
    assert grid["distance"]["items"]["enum"] == ["inner_product", *DISTANCES]
    assert grid["weighting"]["items"]["enum"] == list(WEIGHTINGS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(typo=1), "typo"),
        (lambda c: c["experiments"]["fig6"]["grid"].update(gen=["kmeanz"]), "kmeanz"),
        (lambda c: c["experiments"]["fig6"]["grid"].update(k=[0]), "0"),
        (lambda c: c["experiments"]["named"].update(tasks=["evens"]), "evens"),
        (lambda c: c["experiments"]["named"].update(mappings=["mod"]), "mod"),
        (lambda c: c["statistics"].update(posthoc="tukey"), "tukey"),
        (lambda c: c["experiments"]["named"].pop("seeds"), "seeds"),
        (lambda c: c["experiments"]["merged"].update(mappings=["mod1"]), "mod1"),
        (lambda c: c["experiments"]["sec51"]["grid"].update(m=[0, 5]), "0"),
        (lambda c: c["fms"]["demo_cnn"].update(lambda_reg=0), "lambda_reg"),
        (lambda c: c["keep"][0].update(method="best"), "best"),
        (lambda c: c["keep"][0].pop("fm"), "fm"),
    ],
)
def test_schema_rejects_bad_keys_and_values(change, message):
    config = copy.deepcopy(_config())
    change(config)
    with pytest.raises(WorkflowError, match=message):
        validate(config, SCHEMA)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["experiments"]["named"].update(fms=["resnet18"]),
            r"experiments.named.fms names undefined FM\(s\) \['resnet18'\]",
        ),
        (
            lambda c: c["figures"].update(fig6="nope"),
            r"figures.fig6 names undefined experiment\(s\) \['nope'\]",
        ),
        (
            lambda c: c["statistics"]["cd_diagrams"]["gen"].update(experiment="x"),
            "statistics.cd_diagrams.gen",
        ),
        (
            lambda c: c["keep"][0].update(fm="demo_big"),
            r"keep.ours_demo_big_digits_none_even.fms names undefined FM\(s\) \['demo_big'\]",
        ),
        (
            lambda c: c["keep"].append(dict(c["keep"][0])),
            "keep.1. is named 'ours_demo_cnn_digits_none_even' like an earlier entry",
        ),
    ],
)
def test_references_between_sections_are_checked(change, message):
    config = copy.deepcopy(_config())
    change(config)
    with pytest.raises(ValueError, match=message):
        check_references(config)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda e: e["merged"].update(share_jobs_with="nope"),
            r"experiments.merged.share_jobs_with names 'nope', not another experiment",
        ),
        (
            lambda e: e["merged"].update(share_jobs_with="merged"),
            "names 'merged', not another experiment",
        ),
        (
            lambda e: e.update(
                one={**e["fig6"], "share_jobs_with": "fig6"},
                two={**e["fig6"], "share_jobs_with": "one"},
            ),
            "experiments.two.share_jobs_with names 'one', which shares the jobs of 'fig6'",
        ),
        (
            lambda e: e["merged"].update(share_jobs_with="fig6"),
            r"merged and fig6 differ in mappings \(\['mod5', 'none'\] against \['none'\]\)",
        ),
        (
            lambda e: e["fewshot_baselines"].update(share_jobs_with="fewshot"),
            r"fewshot_baselines and fewshot differ in kind \(methods against grid\)",
        ),
        (
            lambda e: e["sec51"].update(tasks=["all"], share_jobs_with="fig6"),
            "sec51 and fig6 differ in time_every_seed",
        ),
    ],
)
def test_experiments_share_sweep_jobs_only_with_one_alike(change, message):
    config = copy.deepcopy(_config())
    change(config["experiments"])
    with pytest.raises(ValueError, match=message):
        resolve_config(config)


def test_imagenet_parts_are_skipped_without_imagenet_root_with_one_note():
    config = _config("paper.yaml")
    validate(config, SCHEMA)
    resolved, notes = resolve_config(config)
    assert not any("imagenet" in e["datasets"] for e in resolved["experiments"].values())
    assert not any("imagenet" in block["datasets"] for block in resolved["collapse"])
    fig11b = resolved["figures"]["fig11b"]["experiments"]
    assert fig11b == ["subsec3_nonimagenet", "subsec3_combidigits"]
    assert "figA8" not in resolved["figures"]
    assert len(notes) == 1
    assert "subsec3_imagenet, experiment subsec3_imagenet_kls, ImageNet NC1" in notes[0]
    assert "imagenet_root is not set" in notes[0]


def test_imagenet_parts_run_with_imagenet_root_nc1_on_val_over_all_remaps():
    resolved, notes = resolve_config({**_config("paper.yaml"), "imagenet_root": "/data/in1k"})
    assert notes == []
    (imagenet,) = [b for b in resolved["collapse"] if b["datasets"] == ["imagenet"]]
    assert imagenet["split"] == "test"  # the workflow's test split of ImageNet is val
    assert len(imagenet["mappings"]) == len(set(imagenet["mappings"])) == 100
    assert imagenet["mappings"][:2] == ["imagenet_merge_d1_r0", "imagenet_merge_d1_r1"]
    assert "subsec3_imagenet" in figure_experiments(resolved["figures"]["fig12"])
    assert "anchors" not in resolved


def test_a_mapping_pattern_that_matches_nothing_is_rejected():
    config = _config()
    config["experiments"]["named"]["datasets"] = ["imagenet"]
    config["experiments"]["named"]["mappings"] = ["imagenet_random*", "imagenet_merge_d*_r7"]
    resolved, _ = resolve_config({**config, "imagenet_root": "/data"})
    assert len(resolved["experiments"]["named"]["mappings"]) == 15
    config["experiments"]["named"]["mappings"] = ["imagenet_merge_d11*"]
    with pytest.raises(ValueError, match="matches no mapping"):
        resolve_config(config)


def _grid_only_mnn_inner_product(c):
    c["experiments"]["fig6"]["grid"].update(agg=["mnn"], distance=["inner_product"])


def _one_group(c):
    c["experiments"]["named"].update(tasks=["all"], fms=["demo_cnn"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["experiments"]["merged"].update(tasks=["upper"]),
            r"experiments.merged: task 'upper' keeps 0 class\(es\) \[\] of digits after mapping "
            "'mod5'",
        ),
        (
            lambda c: c["collapse"][0].update(tasks=["short", "upper"]),
            r"collapse\[0\]: task 'upper' keeps 0 class",
        ),
        (
            lambda c: c["keep"][0].update(mapping="mod5", task="upper"),
            r"keep.ours_demo_cnn_digits_mod5_upper: task 'upper' keeps 0 class",
        ),
        (_grid_only_mnn_inner_product, "experiments.fig6.grid expands to no run"),
        (_one_group, r"statistics.cd_diagrams.named compares 9 method\(s\) over 1 group"),
        (
            lambda c: c["experiments"]["named"].update(methods=["qi"]),
            r"compares 1 method\(s\) over 12 group",
        ),
        (
            lambda c: c["figures"].update(fig12=["named"]),
            r"figures.fig12 draws from \['named'\], which have no k-means at both k = 1 and k = 5",
        ),
        (
            lambda c: c["figures"].update(fig10="named"),
            "figures.fig10 .* no k-means at two or more shots n",
        ),
        (lambda c: c["figures"].update(fig6="named"), "figures.fig6 .* no GEN runs at two"),
        (
            lambda c: c["experiments"]["sec51"].pop("time_every_seed"),
            r"figures.gen_time .* \['sec51'\] do not set time_every_seed: true",
        ),
        (
            lambda c: c["collapse"][0].update(mappings=["none"]),
            r"figures.fig12 .* no NC1 of \(demo_cnn, digits, mod5, all\) on the train split",
        ),
        (  # Fig. 12 pairs a small data set's gain with NC1 of its training split
            lambda c: c["collapse"][0].update(split="test"),
            r"figures.fig12 .* no NC1 of \(demo_cnn, digits, none, all\) on the train split",
        ),
        (  # every class-incremental study is checked, and named
            lambda c: c["continual"].update(wide={**c["continual"]["digits"], "base": 11}),
            r"continual\.wide \(demo_cnn on digits\): base=11 is not valid",
        ),
    ],
)
def test_configs_that_would_fail_late_stop_at_planning(change, message):
    config = copy.deepcopy(_config())
    change(config)
    validate(config, SCHEMA)
    with pytest.raises(ValueError, match=message):
        check_experiments(resolve_config(config)[0])


@pytest.mark.e2e
def test_a_bad_config_stops_the_workflow_before_any_job(tmp_path):
    directory = copy_workflow(tmp_path)
    config = _config()
    _grid_only_mnn_inner_product(config)
    (directory / "config/bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(directory, "--configfile", "config/bad.yaml")
    assert result.returncode != 0
    assert "experiments.fig6.grid expands to no run" in result.stderr
    assert not (directory / "resources").exists()


@pytest.mark.e2e
def test_a_key_given_twice_stops_the_workflow(tmp_path):
    directory = copy_workflow(tmp_path)
    text = (directory / "config/config.yaml").read_text()
    twice = text.replace("experiments:\n", "experiments:\n  fig6:\n    methods: [qi]\n", 1)
    (directory / "config/twice.yaml").write_text(twice)
    with pytest.raises(ValueError, match=r"twice.yaml, line \d+: key 'fig6' is given twice"):
        check_unique_keys([str(directory / "config/twice.yaml")])
    result = snakemake(directory, "-n", "--configfile", "config/twice.yaml")
    assert result.returncode != 0
    assert "key 'fig6' is given twice in one mapping" in result.stdout + result.stderr


def test_collapse_entries_are_each_block_expanded_once_in_order_with_their_split():
    config = {
        "collapse": [
            {"fms": ["a", "b"], "datasets": ["digits"], "mappings": ["none"], "tasks": ["all"]},
            {"fms": ["b"], "datasets": ["digits", "x"], "mappings": ["none"], "tasks": ["all"],
             "split": ["train", "test"]},
        ]
    }  # fmt: skip
    assert collapse_entries(config) == [
        ("a", "digits", "train", "none", "all"),
        ("b", "digits", "train", "none", "all"),
        ("b", "digits", "test", "none", "all"),
        ("b", "x", "train", "none", "all"),
        ("b", "x", "test", "none", "all"),
    ]


def test_images_come_from_your_folder_imagenet_or_decoded_arrays():
    datasets = {"mine": {"folder": "photos"}, "arrays": {"embeddings": {}}}
    assert image_source("mine", datasets) == "folder"
    assert image_source("imagenet", datasets) == "imagenet"
    assert image_source("cifar10", datasets) == image_source("arrays", datasets) == "arrays"
