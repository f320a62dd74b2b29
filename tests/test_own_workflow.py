"""The workflow on your own model and data, end to end and offline: a timm and a torchvision FM
(random weights) embed generated image folders through the embed rule's Lightning path, a
label-mapping CSV makes a task, the same embeddings given as precomputed arrays give the same
runs table, and a changed image folder reruns exactly its embeddings. Both tests start from
copies of one shared run."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from imprint.deploy.cli import main
from imprint.deploy.model_file import load_model
from imprint.fms.store import embeddings_precision, open_embeddings
from imprint.method.engine import TIMING_COLUMNS
from tests.own_files import image_folder
from tests.workflow_runs import copy_run, copy_workflow, snakemake

pytestmark = pytest.mark.e2e

CONFIG = {
    "fms": {
        "vit": {"source": "timm", "model": "test_vit", "weights": "random", "lambda_reg": 1e-3,
                "batch_size": 8},
        "mobile": {"source": "torchvision", "model": "mobilenet_v3_small", "weights": "random",
                   "lambda_reg": 1e-3, "batch_size": 8},
    },
    "datasets": {
        "pets": {"folder": "data/pets"}, "birds": {"folder": "data/birds"},
        "fish": {"folder": "data/fish"},
    },
    "mappings": {"pairs": "data/pairs.csv"},
    "experiments": {
        "own": {"methods": ["qi", "ours"], "fms": ["vit", "mobile"], "datasets": ["pets"],
                "mappings": ["none", "pairs"], "tasks": ["all"], "seeds": [1]},
        "more": {"methods": ["janson"], "fms": ["vit", "mobile"], "datasets": ["pets"],
                 "mappings": ["none", "pairs"], "tasks": ["all"], "seeds": [1],
                 "share_jobs_with": "own"},
    },
    "collapse": [{"fms": ["vit"], "datasets": ["pets"], "mappings": ["pairs"], "tasks": ["all"]}],
    "keep": [{"fm": "mobile", "dataset": "pets", "method": "ours", "seed": 1}],
    "statistics": {},
    "figures": {},
}  # fmt: skip
MODEL = "results/models/ours_mobile_pets_none_all"
PROVENANCE = ["experiment", "fm", "embedding_precision", "config_hash", "git_commit"]


def _comparable(path) -> pd.DataFrame:
    table = pd.read_parquet(path)
    table = table.drop(columns=[*PROVENANCE, *TIMING_COLUMNS])
    table = table.drop(columns=[c for c in table if c.startswith("version_")])
    return table.sort_values(list(table.columns[:8])).reset_index(drop=True)


# The data sets besides pets and their classes (vit embeds them; the image-change test uses them).
SMALL_DATASETS = {"birds": ("emu", "kea"), "fish": ("cod", "eel")}
EMBEDDINGS = [f"results/embeddings/vit/{name}/train.npy" for name in ("pets", *SMALL_DATASETS)]


@pytest.fixture(scope="module")
def own_run(tmp_path_factory) -> Path:
    """The workflow on the own-model config: pets' runs, NC1 and kept model with both FMs, and
    the vit embeddings of the small data sets (tests copy it before they change it)."""
    directory = copy_workflow(tmp_path_factory.mktemp("own"))
    image_folder(directory / "data/pets", train=5, test=3)
    for name, classes in SMALL_DATASETS.items():
        image_folder(directory / f"data/{name}", classes=classes, train=3, test=2)
    (directory / "data/pairs.csv").write_text("class,task\ncat,0\ndog,0\n2,1\nyak,1\n")
    (directory / "config/own.yaml").write_text(yaml.safe_dump(CONFIG))
    targets = ["results/runs/own.parquet", "results/collapse/vit/pets/train.csv", f"{MODEL}.pt"]
    targets += ["results/runs/more.parquet", *EMBEDDINGS]
    result = snakemake(directory, *targets, "--configfile", "config/own.yaml")
    assert result.returncode == 0, result.stderr[-4000:]
    return directory


def test_own_models_folders_mappings_and_precomputed_embeddings(own_run, tmp_path):
    directory = copy_run(own_run, tmp_path / "run")
    _check_kept_model(directory)
    # `more` shares own's sweep jobs: no jobs of its own, its rows only in its table
    assert not (directory / "results/runs/more").exists()
    more = pd.read_parquet(directory / "results/runs/more.parquet")
    assert set(more["experiment"]) == {"more"} and set(more["method"]) == {"janson"}
    assert len(more) == 2 * 2  # two FMs, two mappings

    for fm, dim in (("vit", 64), ("mobile", 1024)):
        x, y = open_embeddings(directory / f"results/embeddings/{fm}/pets/train.npy")
        assert x.shape == (20, dim) and np.bincount(y).tolist() == [5, 5, 5, 5]
        assert embeddings_precision(directory / f"results/embeddings/{fm}/pets/test.npy") == (
            "32-true"
        )
    runs = pd.read_parquet(directory / "results/runs/own.parquet")
    assert set(runs["fm"]) == {"vit", "mobile"} and set(runs["mapping"]) == {"none", "pairs"}
    assert set(runs["experiment"]) == {"own"} and set(runs["method"]) == {"qi", "ours"}
    nc1 = pd.read_csv(directory / "results/collapse/vit/pets/train.csv")
    assert nc1[["mapping", "task"]].values.tolist() == [["pairs", "all"]]
    assert np.isfinite(nc1["nc1"]).all() and nc1["warning"].isna().all()

    # The same embeddings, given as precomputed arrays, run as they are.
    # A broken model's all-zero embeddings are flagged in the NC1 table.
    for split in ("train", "test"):
        x, y = open_embeddings(directory / f"results/embeddings/vit/pets/{split}.npy")
        np.savez(directory / f"data/vit_{split}.npz", embeddings=np.asarray(x), labels=y)
        np.savez(directory / f"data/flat_{split}.npz", embeddings=np.zeros_like(x), labels=y)
    config = yaml.safe_load((directory / "config/own.yaml").read_text())
    for name in ("vit", "flat"):
        files = {split: f"data/{name}_{split}.npz" for split in ("train", "test")}
        config["fms"]["pre" if name == "vit" else name] = {
            "lambda_reg": 1e-3, "embeddings": {"pets": files}
        }  # fmt: skip
    del config["experiments"]["more"]
    config["experiments"]["pre"] = {**config["experiments"]["own"], "fms": ["pre"]}
    config["experiments"]["own"]["fms"] = ["vit"]
    config["collapse"].append({"fms": ["flat"], "datasets": ["pets"], "mappings": ["none"],
                               "tasks": ["all"]})  # fmt: skip
    (directory / "config/pre.yaml").write_text(yaml.safe_dump(config))
    targets = ["results/runs/own.parquet", "results/runs/pre.parquet"]
    targets.append("results/collapse/flat/pets/train.csv")
    result = snakemake(directory, *targets, "--configfile", "config/pre.yaml")
    assert result.returncode == 0, result.stderr[-4000:]
    flat = pd.read_csv(directory / "results/collapse/flat/pets/train.csv")
    assert flat["warning"].tolist() == ["all 20 embeddings are zero: NC1 means nothing here"]
    assert embeddings_precision(directory / "results/embeddings/pre/pets/train.npy") == (
        "precomputed"
    )
    own = _comparable(directory / "results/runs/own.parquet")
    pre = _comparable(directory / "results/runs/pre.parquet")
    assert len(own) == len(pre) == 2 * 2  # two methods, two mappings, one seed
    pd.testing.assert_frame_equal(own, pre)


def _check_kept_model(directory):
    """The kept model on your own images: classes named after the folders, the runs table's
    accuracy, and a class added from a folder by the command line."""
    info = json.loads((directory / f"{MODEL}.json").read_text())
    assert info["classes"] == ["cat", "dog", "owl", "yak"]
    runs = pd.read_parquet(directory / "results/runs/own.parquet")
    row = runs[(runs["method"] == "ours") & (runs["fm"] == "mobile") & (runs["mapping"] == "none")]
    assert info["test_accuracy"] == pytest.approx(float(row["accuracy"].iloc[0]), abs=1e-9)
    image_folder(directory / "data/new", classes=("emu",), train=3, test=0)
    assert (
        main(["add-classes", str(directory / f"{MODEL}.pt"), str(directory / "data/new/train")])
        == 0
    )
    assert load_model(directory / f"{MODEL}.pt").head.classes.tolist() == [
        "cat", "dog", "emu", "owl", "yak"
    ]  # fmt: skip


def _planned_embeddings(directory, config: str) -> set[str]:
    """The embedding jobs a dry run of the vit embeddings plans (by FM and data set)."""
    result = snakemake(directory, "-n", *EMBEDDINGS, "--configfile", config)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [job for job in result.stdout.split("\nrule ")[1:] if job.startswith("embed:")]
    return {re.search(r"output: results/embeddings/(\w+/\w+)/", job)[1] for job in jobs}


# Two rounds of changes to the image folders, each round two data sets and not the third, so
# that every change is seen to rerun its data set's embeddings and no other.
ROUNDS = ({"edited": "pets", "added": "birds"}, {"removed": "fish", "moved": "birds"})


def test_changed_moved_added_or_removed_images_rerun_exactly_their_embeddings(own_run, tmp_path):
    directory = copy_run(own_run, tmp_path / "run")
    images = directory / "data"
    cat, dog = images / "pets/train/cat/0_0.png", images / "pets/train/dog/1_0.png"
    emu, moved = images / "birds/train/emu/0_0.png", images / "birds/train/kea/moved.png"
    added, removed = images / "birds/test/kea/new.png", images / "fish/test/eel/1_1.png"
    kept = {path: (path.read_bytes(), path.stat().st_mtime) for path in (cat, emu, removed)}

    def restore(path, source=None):
        """``path`` as it was, its old modification time included (so nothing is newer)."""
        if source is not None:
            source.unlink()
        data, mtime = kept[path]
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))

    changes = {
        "edited": (lambda: cat.write_bytes(dog.read_bytes()), lambda: restore(cat)),
        "added": (lambda: added.write_bytes(emu.read_bytes()), added.unlink),
        "removed": (removed.unlink, lambda: restore(removed)),
        "moved": (lambda: emu.rename(moved), lambda: restore(emu, moved)),
    }  # fmt: skip
    for changed in ROUNDS:
        time.sleep(1.1)  # a new modification time
        for name in changed:
            changes[name][0]()
        planned = {f"vit/{dataset}" for dataset in changed.values()}
        assert _planned_embeddings(directory, "config/own.yaml") == planned, changed
        for name in changed:
            changes[name][1]()
    assert _planned_embeddings(directory, "config/own.yaml") == set()
    changes["moved"][0]()
    result = snakemake(directory, *EMBEDDINGS, "--configfile", "config/own.yaml")
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stderr.count("rule embed:") == 1
    _, labels = open_embeddings(directory / "results/embeddings/vit/birds/train.npy")
    assert np.bincount(labels).tolist() == [2, 4]  # one emu image moved to kea
