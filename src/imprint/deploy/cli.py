"""The command line: ``python -m imprint predict MODEL IMAGES...`` and ``python -m imprint
add-classes MODEL FOLDER``, on model files the workflow keeps (results/models/)."""

from __future__ import annotations

import argparse
import csv
import io
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
    """Image files named, or found in the folders named (recursively, in sorted order)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if not found:
                raise ValueError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path} is neither an image file nor a folder")
    return files


def predict(args: argparse.Namespace) -> None:
    model = load_model(args.model).image_classifier()
    files = _images(args.images)
    with torch.no_grad():
        scores = model.head(embed_files(model, files, args.batch_size))
    best, index = scores.max(1)
    classes = model.classes[index.numpy()]
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t" if args.output is None else ",")
    writer.writerow(["path", "class", "score"])
    for path, label, score in zip(files, classes.tolist(), best.tolist(), strict=True):
        writer.writerow([str(path), label, f"{score:.6g}"])
    if args.output is None:
        sys.stdout.write(text.getvalue())
    else:
        with atomic_path(args.output) as temporary:
            temporary.write_text(text.getvalue())
        print(f"{len(files)} predictions written to {args.output}")


def _label(name: str, classes: np.ndarray) -> object:
    """A class folder's name as a label of the model's kind (numbers stay numbers)."""
    if classes.dtype.kind not in "iuf":
        return name
    try:
        return int(name) if classes.dtype.kind in "iu" else float(name)
    except ValueError:
        raise ValueError(
            f"class folder {name!r} is not a number, but this model's classes are numbers "
            f"({', '.join(map(str, classes.tolist()[:5]))}, ...); name the folder by a number"
        ) from None


def add_classes(args: argparse.Namespace) -> None:
    kept = load_model(args.model)
    model = kept.image_classifier()
    clf = kept.classifier()
    folders = class_folders(args.folder)
    labels = [_label(folder.name, clf.classes_) for folder in folders]
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
    clf.partial_fit(embed_files(model, files, args.batch_size).numpy(), np.array(y))
    updated = kept.with_classifier(clf)
    added = [{"class": label, "images": y.count(label)} for label in labels]
    updated.info = {**kept.info, "added": [*kept.info.get("added", []), *added]}
    output = args.output or args.model
    save_model(output, updated)
    names = ", ".join(f"{a['class']} ({a['images']} images)" for a in added)
    print(f"added {names}; {output} now knows {len(clf.classes_)} classes")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m imprint", description="Use a kept imprinted classifier on images."
    )
    commands = main.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "predict", help="classify images: one row per image (path, class, score)"
    )
    run.add_argument("model", help="a model file (results/models/<name>.pt)")
    run.add_argument("images", nargs="+", help="image files, or folders of them")
    run.add_argument("--output", help="write a CSV file instead of printing")
    run.add_argument("--batch-size", type=int, default=64)
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
    add.add_argument("--batch-size", type=int, default=64)
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
