"""``python -m imprint predict`` and ``add-classes`` on a model file with a (seeded, untrained)
demo CNN: rows per image, classes added without touching the others, and clear errors."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import zipfile
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
    clf = ImprintingClassifier(k=5, seed=1).fit(x, labels[seen]).calibrate()
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
    printed = capsys.readouterr()
    rows = [line.split("\t") for line in printed.out.splitlines()]
    assert rows[0] == ["path", "class", "score", "confidence", "unknown"]
    assert [row[0] for row in rows[1:]] == [str(p) for p in paths]
    model = load_model(model_file).image_classifier()
    with torch.no_grad():
        scores = model(torch.from_numpy(images[:6][..., None]))
    assert [int(row[1]) for row in rows[1:]] == model.classes[scores.argmax(1)].tolist()
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], scores.amax(1), rtol=1e-5)
    clf = load_model(model_file).classifier()
    x = model.embed(torch.from_numpy(images[:6][..., None])).detach().numpy()
    np.testing.assert_allclose(
        [float(r[3]) for r in rows[1:]], clf.predict_proba(x).max(1), atol=6e-5
    )
    unknown = clf.predict_unknown(x)
    assert [r[4] for r in rows[1:]] == ["yes" if u else "no" for u in unknown]
    assert f"{unknown.sum()} of 6 image(s) look like none of the model's classes" in printed.err
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(model_file), str(paths[0]), "--output", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "path,class,score,confidence,unknown"


def test_a_model_kept_before_calibration_predicts_scores_and_says_so(model_file, tmp_path, capsys):
    kept = load_model(model_file)
    kept.classifier_state = {**kept.classifier_state, "calibration": None}
    save_model(tmp_path / "old.pt", kept)
    images, _ = digits("test")
    _write(tmp_path / "held", images[:2], ["a.png", "b.png"])
    assert main(["predict", str(tmp_path / "old.pt"), str(tmp_path / "held")]) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines()[0].split("\t") == ["path", "class", "score"]
    assert "is not calibrated" in printed.err and "keep it again" in printed.err


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
         "class folder 'seven' is not a whole number"),
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


def _member_data_offset(path: Path, name: str) -> int:
    """Where the stored (uncompressed) bytes of the zip member ``name`` begin."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", handle.read(4))
    return info.header_offset + 30 + name_length + extra_length


def test_a_damaged_or_edited_model_file_is_refused_never_used(
    model_file, tmp_path, capsys, monkeypatch
):
    """Four bytes overwritten inside the FM's weights (the archive's checksum fails), a NaN
    written in place of a weight, a part taken out, a version of another type: each is refused
    naming what is wrong."""
    with zipfile.ZipFile(model_file) as archive:
        largest = max(archive.infolist(), key=lambda info: info.file_size)
    damaged = tmp_path / "damaged.pt"
    data = bytearray(model_file.read_bytes())
    start = _member_data_offset(model_file, largest.filename) + largest.file_size // 2
    data[start : start + 4] = b"\xff\xff\xff\x7f"
    damaged.write_bytes(bytes(data))
    images, _ = digits("test")
    _write(tmp_path / "held", images[:2], ["a.png", "b.png"])
    assert main(["predict", str(damaged), str(tmp_path / "held")]) == 2
    assert re.search(r"damaged.pt is damaged: its part .* fails the archive's checksum",
                     capsys.readouterr().err)  # fmt: skip
    content = torch.load(model_file, weights_only=True)
    edits = {
        "nan.pt": lambda c: c["head"]["state"]["proxies"].view(-1)[:1].fill_(float("nan")),
        "partless.pt": lambda c: c["head"].pop("settings"),
        "version.pt": lambda c: c.update(version="1"),
    }
    messages = {
        "nan.pt": r"head.state.proxies holds NaN or infinite values",
        "partless.pt": r"is damaged or was edited: KeyError 'settings'",
        "version.pt": r"of version '1'; this imprint reads version 1 only",
    }
    for name, edit in edits.items():
        edited = torch.load(model_file, weights_only=True)
        edit(edited)
        torch.save(edited, tmp_path / name)
        with pytest.raises(ValueError, match=messages[name]):
            load_model(tmp_path / name)
    with pytest.raises(ValueError, match="is a folder, not a model file"):
        load_model(tmp_path)
    assert content["format"] == "imprint-model"
    monkeypatch.setattr("os.access", lambda *args, **kwargs: False)  # as for a user, not root
    with pytest.raises(ValueError, match=r"cannot be read \(permissions\); make it readable"):
        load_model(model_file)


def test_info_takes_numpy_values_and_paths_and_a_refused_save_leaves_the_file(model_file, tmp_path):
    kept = load_model(model_file)
    path = tmp_path / "k.pt"
    kept.info = {"accuracy": np.float32(0.5), "counts": np.arange(3), "where": Path("a/b")}
    save_model(path, kept)
    assert load_model(path).info == {"accuracy": 0.5, "counts": [0, 1, 2], "where": "a/b"}
    before = path.read_bytes()
    kept.info = {"bad": object()}
    with pytest.raises(TypeError, match=r"info\['bad'\] is a object"):
        save_model(path, kept)
    assert path.read_bytes() == before


def test_outputs_never_replace_inputs_and_unwritable_ones_stop_before_work(
    model_file, tmp_path, capsys
):
    model = tmp_path / "model.pt"
    model.write_bytes(model_file.read_bytes())
    images, labels = digits("train")
    held = _write(tmp_path / "held", images[:2], ["a.png", "b.png"])
    _write(tmp_path / "held", images[:1], ["._a.png"])  # macOS's hidden companion file
    _write(tmp_path / "new" / "7", images[labels == 7][:3], ["a.png", "b.png", "c.png"])
    (tmp_path / "plain").write_text("a file")
    cases = [
        (["predict", str(model), str(tmp_path / "held"), "--output", str(model)],
         "is one of the inputs"),
        (["predict", str(model), str(held[0]), "--output", str(held[0])], "is one of the inputs"),
        (["predict", str(model), str(held[0]), "--output", str(tmp_path)], "is a folder"),
        (["predict", str(model), str(held[0]), "--output", str(tmp_path / "no/p.csv")],
         "is no folder; create the folder first"),
        (["add-classes", str(model), str(tmp_path / "new"), "--output",
          str(tmp_path / "plain" / "m.pt")], "plain is no folder"),
    ]  # fmt: skip
    for argv, message in cases:
        assert main(argv) == 2
        assert re.search(message, capsys.readouterr().err)
    assert model.read_bytes() == model_file.read_bytes()
    assert main(["predict", str(model), str(tmp_path / "held")]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 hidden file(s)" in captured.err and "._a.png" not in captured.out
    link = tmp_path / "current.pt"
    link.symlink_to(model)
    assert main(["add-classes", str(link), str(tmp_path / "new")]) == 0
    assert link.is_symlink() and load_model(model).head.classes.tolist() == [0, 1, 2, 7]
    with pytest.raises(SystemExit):
        main(["predict", str(model), str(held[0]), "--batch-size", "0"])
    assert "'0' is not a whole number of 1 or more" in capsys.readouterr().err


def test_class_folders_that_name_one_class_twice_or_no_number_are_refused(
    model_file, tmp_path, capsys
):
    images, labels = digits("train")
    sevens = images[labels == 7][:2]
    _write(tmp_path / "twice" / "7", sevens, ["a.png", "b.png"])
    _write(tmp_path / "twice" / "07", sevens, ["c.png", "d.png"])
    for name in ("7.5", " 7", "\u0667"):  # a fraction, a leading space, an Arabic-Indic seven
        _write(tmp_path / f"odd{len(name)}{ord(name[-1])}" / name, sevens, ["a.png", "b.png"])
    cases = [("twice", r"class folders '0?7' and '0?7' both name class 7; merge them")]
    cases += [
        (folder.name, r"class folder .* is not a whole number \(in digits 0-9\)")
        for folder in tmp_path.glob("odd*")
    ]
    for folder, message in cases:
        assert main(["add-classes", str(model_file), str(tmp_path / folder)]) == 2
        assert re.search(message, capsys.readouterr().err)
    assert load_model(model_file).head.classes.tolist() == [0, 1, 2]
