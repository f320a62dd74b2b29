"""The classifier the embedded default keeps: its accuracy is the runs table's, its images path
equals the embeddings path, it tells digits it never saw from its own, and the command line
teaches it a new digit from five images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from imprint.deploy.cli import main
from imprint.deploy.model_file import load_model
from imprint.fms.data import load_images
from imprint.io import read_table

pytestmark = pytest.mark.e2e

NAME = "results/models/ours_demo_cnn_digits_none_even"


def test_the_kept_accuracy_is_the_runs_tables_and_the_images_path_agrees(workflow_run):
    info = json.loads((workflow_run / f"{NAME}.json").read_text())
    runs = read_table(workflow_run / "results/runs/named.parquet")
    row = runs[
        (runs["method"] == "ours") & (runs["fm"] == "demo_cnn") & (runs["task"] == "even")
        & (runs["mapping"] == "none") & (runs["seed"] == info["seed"])
    ]  # fmt: skip
    assert len(row) == 1
    assert info["test_accuracy"] == pytest.approx(float(row["accuracy"].iloc[0]), abs=1e-9)
    model = load_model(workflow_run / f"{NAME}.pt").image_classifier()
    images, labels = load_images(workflow_run / "resources/data/digits/test.npz")
    even = labels % 2 == 0
    with torch.no_grad():
        predicted = model.classes[model(torch.from_numpy(images[even])).argmax(1).numpy()]
    assert np.mean(predicted == labels[even]) * 100 == pytest.approx(info["test_accuracy"])


def test_the_kept_model_tells_odd_digits_from_its_own_better_than_its_scores_do(workflow_run):
    detection = json.loads((workflow_run / f"{NAME}.json").read_text())["unknown_detection"]
    assert detection["false_rejection"] == 0.05
    assert detection["known_flagged"] < 0.1  # 267 held-out even digits against the stated 5 %
    assert detection["auroc"] > detection["auroc_max_score"]
    assert detection["auroc"] > 0.9 and detection["unknown_flagged"] > 0.75
    assert detection["confidence_ece"] < 0.05


def test_the_command_line_adds_a_digit_from_five_images(workflow_run, tmp_path, capsys):
    train, train_labels = load_images(workflow_run / "resources/data/digits/train.npz")
    test, test_labels = load_images(workflow_run / "resources/data/digits/test.npz")
    (tmp_path / "new" / "7").mkdir(parents=True)
    for i, image in enumerate(train[train_labels == 7][:5]):
        Image.fromarray(image[..., 0]).save(tmp_path / "new" / "7" / f"{i}.png")
    (tmp_path / "held").mkdir()
    held = np.flatnonzero(np.isin(test_labels, [0, 2, 4, 6, 7, 8]))
    for i in held:
        Image.fromarray(test[i][..., 0]).save(tmp_path / "held" / f"{i:04d}.png")
    model = tmp_path / "model.pt"
    new = ["add-classes", str(workflow_run / f"{NAME}.pt"), str(tmp_path / "new")]
    assert main([*new, "--output", str(model)]) == 0
    assert main(["predict", str(model), str(tmp_path / "held")]) == 0
    out = capsys.readouterr().out.splitlines()[2:]  # after add-classes' line and the header
    rows = [line.split("\t") for line in out]
    predicted = np.array([int(row[1]) for row in rows])
    truth = test_labels[held]
    sevens = truth == 7
    # The README's walk-through: 24 of the 54 held-out 7s, 52 of the 53 held-out 2s (one row
    # either way for another CPU's rounding)
    assert abs(int((predicted[sevens] == 7).sum()) - 24) <= 1 and sevens.sum() == 54
    twos = truth == 2
    assert abs(int((predicted[twos] == 2).sum()) - 52) <= 1 and twos.sum() == 53
    unknown = np.array([row[4] == "yes" for row in rows])
    assert unknown[~sevens].mean() < 0.15  # the calibration was fitted again with the 7s
