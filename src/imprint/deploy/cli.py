"""The command line: ``python -m imprint predict MODEL IMAGES...`` and ``python -m imprint
add-classes MODEL FOLDER``, on model files the workflow keeps (results/models/)."""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from imprint.deploy.image_model import embed_files
from imprint.deploy.model_file import load_model, save_model
from imprint.fms.own_data import IMAGE_SUFFIXES, class_folders, image_files
from imprint.io import atomic_path


def _images(paths: Sequence[str]) -> list[Path]:
    """Image files named, or found in the folders named (recursively, in sorted order, hidden
    files such as macOS's ``._x.png`` left out with a note)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            hidden = [
                p for p in found if any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
            if hidden:
                print(
                    f"skipped {len(hidden)} hidden file(s) in {path}, e.g. {hidden[0]}",
                    file=sys.stderr,
                )
            found = [p for p in found if p not in set(hidden)]
            if not found:
                raise ValueError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path} is neither an image file nor a folder")
    return files


def _check_output(output: str, inputs: Sequence[str | Path]) -> None:
    """Refuse, before any work, an output that would replace one of ``inputs`` or cannot be
    written."""
    target = Path(os.path.realpath(output))
    if any(target == Path(os.path.realpath(path)) for path in inputs):
        raise ValueError(f"--output {output} is one of the inputs; name another file")
    if target.is_dir():
        raise ValueError(f"--output {output} is a folder; name a file (in it)")
    if not target.parent.is_dir():
        raise ValueError(
            f"--output {output}: {target.parent} is no folder; create the folder first"
        )
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise ValueError(f"--output {output}: folder {target.parent} is not writable")


def predict(args: argparse.Namespace) -> None:
    kept = load_model(args.model)
    model = kept.image_classifier()
    calibration = kept.calibration()
    files = _images(args.images)
    if args.output is not None:
        _check_output(args.output, [args.model, *files])
    with torch.no_grad():
        embeddings = embed_files(model, files, args.batch_size)
        scores = model.head(embeddings)
    best, index = scores.max(1)
    columns = {"path": [str(p) for p in files], "class": model.classes[index.numpy()].tolist()}
    columns["score"] = [f"{s:.6g}" for s in best.tolist()]
    if calibration is None:
        print(
            f"{args.model} is not calibrated (kept before imprint calibrated models): scores "
            "only, no confidence or unknown flag; keep it again to have them",
            file=sys.stderr,
        )
    else:
        confidence = calibration.confidence(scores).amax(1)
        columns["confidence"] = [f"{c:.4f}" for c in confidence.tolist()]
        columns["unknown"] = ["yes" if u else "no" for u in calibration.unknown(embeddings)]
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t" if args.output is None else ",")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values(), strict=True))
    if args.output is None:
        sys.stdout.write(text.getvalue())
    else:
        with atomic_path(args.output) as temporary:
            temporary.write_text(text.getvalue())
        print(f"{len(files)} predictions written to {args.output}")
    if calibration is not None:
        flagged = columns["unknown"].count("yes")
        print(
            f"{flagged} of {len(files)} image(s) look like none of the model's classes (unknown: "
            f"yes; about {calibration.false_rejection:.0%} of images of known classes are "
            "flagged too)",
            file=sys.stderr,
        )


def _label(name: str, classes: np.ndarray) -> object:
    """A class folder's name as a label of the model's kind (numbers stay numbers)."""
    if classes.dtype.kind not in "iuf":
        return name
    whole = classes.dtype.kind in "iu"
    pattern = r"-?[0-9]+" if whole else r"-?[0-9]+(\.[0-9]+)?"
    if not re.fullmatch(pattern, name):
        kind = "a whole number" if whole else "a number"
        raise ValueError(
            f"class folder {name!r} is not {kind} (in digits 0-9), but this model's classes are "
            f"({', '.join(map(str, classes.tolist()[:5]))}, ...); rename the folder"
        )
    return classes.dtype.type(int(name) if whole else float(name))


def _distinct(folders: Sequence[Path], labels: Sequence[object]) -> None:
    """Refuse folders whose names stand for the same label (7 and 07)."""
    first: dict[object, Path] = {}
    for folder, label in zip(folders, labels, strict=True):
        if label in first:
            raise ValueError(
                f"class folders {first[label].name!r} and {folder.name!r} both name class "
                f"{label}; merge them into one folder or rename one"
            )
        first[label] = folder


def add_classes(args: argparse.Namespace) -> None:
    kept = load_model(args.model)
    model = kept.image_classifier()
    clf = kept.classifier()
    folders = class_folders(args.folder)
    labels = [_label(folder.name, clf.classes_) for folder in folders]
    _distinct(folders, labels)
    known = [str(label) for label in labels if label in set(clf.classes_.tolist())]
    if known and not args.add_samples:
        raise ValueError(
            f"class(es) {', '.join(known)} exist in the model already; pass --add-samples to add "
            "these images to them, or rename the folders"
        )
    files, y = [], []
    for folder, label in zip(folders, labels, strict=True):
        images = image_files(folder)
        files += images
        y += [label] * len(images)
    _check_output(args.output or args.model, files)
    clf.partial_fit(embed_files(model, files, args.batch_size).numpy(), np.array(y))
    updated = kept.with_classifier(clf)
    added = [{"class": label, "images": y.count(label)} for label in labels]
    updated.info = {**kept.info, "added": [*kept.info.get("added", []), *added]}
    output = args.output or args.model
    save_model(output, updated)
    names = ", ".join(f"{a['class']} ({a['images']} images)" for a in added)
    print(f"added {names}; {output} now knows {len(clf.classes_)} classes")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m imprint", description="Use a kept imprinted classifier on images."
    )
    commands = main.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "predict",
        help="classify images: one row per image (path, class, score, and for a calibrated "
        "model the confidence and whether it looks like none of the classes)",
    )
    run.add_argument("model", help="a model file (results/models/<name>.pt)")
    run.add_argument("images", nargs="+", help="image files, or folders of them")
    run.add_argument("--output", help="write a CSV file instead of printing")
    run.add_argument("--batch-size", type=_positive, default=64)
    run.set_defaults(action=predict)
    add = commands.add_parser(
        "add-classes", help="imprint the classes of a folder (one sub-folder per class)"
    )
    add.add_argument("model", help="a model file (results/models/<name>.pt)")
    add.add_argument("folder", help="a folder with one sub-folder of images per new class")
    add.add_argument("--output", help="write the new model here (default: replace MODEL)")
    add.add_argument(
        "--add-samples",
        action="store_true",
        help="a folder named after a known class adds its images to that class",
    )
    add.add_argument("--batch-size", type=_positive, default=64)
    add.set_defaults(action=add_classes)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.action(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"imprint {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
