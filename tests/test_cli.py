"""``python -m imprint predict`` and ``add-classes`` on a model file with a (seeded, untrained)
demo CNN: rows per image, classes added without touching the others, and clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imprint import ImprintingClassifier
from imprint.deploy.cli import main
from imprint.deploy.image_model import ImageClassifier
from imprint.deploy.model_file import KeptModel, fm_entry, load_model, save_model
from imprint.fms.backbones import DEMO_INPUT_SIZE, DEMO_PREPROCESSING, DemoCNN
from imprint.fms.data import digits
from imprint.fms.fm_spec import FMSpec


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """``ours`` on digits 0, 1 and 2 of a seeded demo CNN's embeddings."""
    torch.manual_seed(0)
    network = DemoCNN().features.eval()
    images, labels = digits("train")
    model = ImageClassifier(network, DEMO_PREPROCESSING, torch.nn.Identity())
    seen = labels < 3
    with torch.no_grad():
        x = model.embed(torch.from_numpy(images[seen][..., None])).numpy()
    clf = ImprintingClassifier(k=5, seed=1).fit(x, labels[seen])
    fm = fm_entry(FMSpec("demo_cnn", "demo"), network, DEMO_PREPROCESSING, DEMO_INPUT_SIZE)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(path, KeptModel(clf.to_torch(), fm, clf.kept_state(), {"task": "lower"}))
    return path


def _write(folder: Path, images: np.ndarray, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in names]
    for image, path in zip(images, paths, strict=True):
        Image.fromarray(image).save(path)
    return paths


def test_predict_prints_a_row_per_image_as_the_model_predicts(model_file, tmp_path, capsys):
    images, _ = digits("test")
    paths = _write(tmp_path / "held", images[:6], [f"{i}.png" for i in range(6)])
    assert main(["predict", str(model_file), str(tmp_path / "held")]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["path", "class", "score"]
    assert [row[0] for row in rows[1:]] == [str(p) for p in paths]
    model = load_model(model_file).image_classifier()
    with torch.no_grad():
        scores = model(torch.from_numpy(images[:6][..., None]))
    assert [int(row[1]) for row in rows[1:]] == model.classes[scores.argmax(1)].tolist()
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], scores.amax(1), rtol=1e-5)
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(model_file), str(paths[0]), "--output", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "path,class,score"


def test_add_classes_imprints_new_classes_and_leaves_the_others(model_file, tmp_path):
    images, labels = digits("train")
    for digit in (7, 9):
        chosen = images[labels == digit][:5]
        _write(tmp_path / "new" / str(digit), chosen, [f"{i}.png" for i in range(5)])
    output = tmp_path / "bigger.pt"
    done = subprocess.run(
        [sys.executable, "-m", "imprint", "add-classes", str(model_file), str(tmp_path / "new"),
         "--output", str(output)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "added 7 (5 images), 9 (5 images)" in done.stdout
    before, after = load_model(model_file), load_model(output)
    assert after.head.classes.tolist() == [0, 1, 2, 7, 9]
    assert after.info["added"] == [{"class": 7, "images": 5}, {"class": 9, "images": 5}]
    old = before.head.proxy_labels < 3
    assert torch.equal(after.head.proxies[after.head.proxy_labels < 3], before.head.proxies[old])
    assert (after.head.proxy_labels == 3).sum() == 5  # five images of 7: five proxies


def test_bad_inputs_give_clear_errors(model_file, tmp_path, capsys):
    images, _ = digits("train")
    _write(tmp_path / "known" / "1", images[:2], ["a.png", "b.png"])
    _write(tmp_path / "words" / "seven", images[:2], ["a.png", "b.png"])
    (tmp_path / "broken.png").write_bytes(b"not an image")
    big = np.zeros((16, 16), dtype=np.uint8)
    _write(tmp_path, big[None], ["big.png"])
    cases = [
        (["predict", str(model_file), str(tmp_path / "broken.png")],
         "cannot read image .*broken.png"),
        (["predict", str(model_file), str(tmp_path / "nowhere")],
         "nowhere is neither an image file nor a folder"),
        (["predict", str(tmp_path / "broken.png"), str(tmp_path / "big.png")],
         "broken.png is not an imprint model file"),
        (["predict", str(model_file), str(tmp_path / "big.png")],
         "takes 8x8 images .* got 16x16"),
        (["add-classes", str(model_file), str(tmp_path / "known")],
         "class.es. 1 exist in the model already; pass --add-samples"),
        (["add-classes", str(model_file), str(tmp_path / "words")],
         "class folder 'seven' is not a number"),
    ]  # fmt: skip
    for argv, message in cases:
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"imprint {argv[0]}: error: ")
        assert re.search(message, error), error
    output = tmp_path / "more.pt"
    argv = ["add-classes", str(model_file), str(tmp_path / "known"), "--add-samples"]
    assert main([*argv, "--output", str(output)]) == 0
    assert load_model(output).head.classes.tolist() == [0, 1, 2]
