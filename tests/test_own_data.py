"""Your own data: image folders, precomputed embedding arrays and label-mapping CSVs, read and
checked before any job runs (or at the step that finds the problem), with errors that help."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from imprint.fms.backbones import Preprocessing
from imprint.fms.embed import ImageArrayDataModule, ImageFolderDataModule, embed_images
from imprint.fms.own_data import (
    embeddings_shape,
    image_folder,
    label_table,
    read_embeddings,
    rgb_pixels,
)
from imprint.fms.store import open_embeddings
from imprint.study.catalog import Catalog
from imprint.study.config import check_experiments, check_references, resolve_config
from imprint.study.images import split_images
from imprint.study.tasks import imagenet_classes
from tests.own_files import CLASSES, embedding_arrays
from tests.own_files import image_folder as make_image_folder
from tests.workflow_runs import ROOT

SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")


def test_an_image_folder_gives_sorted_classes_and_their_files(tmp_path):
    make_image_folder(tmp_path / "pets", classes=("owl", "cat", "dog"), train=4, test=2)
    (tmp_path / "pets/train/cat/notes.txt").write_text("not an image")
    (tmp_path / "pets/train/cat/.hidden.png").write_bytes(b"")
    names, files = image_folder(tmp_path / "pets")
    assert names == ["cat", "dog", "owl"]
    assert [len(f) for f in files["train"]] == [4, 4, 4]
    assert [len(f) for f in files["test"]] == [2, 2, 2]
    assert all(p.parent.name == "dog" for p in files["test"][1])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "pets/train").rename(r / "pets/training"), r"pets/train is not a folder"),
        (lambda r: _flatten(r / "pets/test"), r"pets/test has no class sub-folders"),
        (lambda r: _empty(r / "pets/train/dog"), r"class folder .*pets/train/dog holds no images"),
        (
            lambda r: (r / "pets/test/emu").mkdir() or _copy_one(r, "test/emu"),
            r"only in train/: \[\], only in test/: \['emu'\]",
        ),
    ],
)
def test_bad_image_folders_are_named_with_the_fix(tmp_path, damage, message):
    make_image_folder(tmp_path / "pets", classes=("cat", "dog"), train=2, test=2)
    image_folder(tmp_path / "pets")
    damage(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        image_folder(tmp_path / "pets")


def _flatten(folder):
    for class_folder in list(folder.iterdir()):
        for image in class_folder.iterdir():
            image.rename(folder / f"{class_folder.name}_{image.name}")
        class_folder.rmdir()


def _empty(folder):
    for image in folder.iterdir():
        image.unlink()


def _copy_one(root, where):
    source = next((root / "pets/train/cat").iterdir())
    (root / "pets" / where / source.name).write_bytes(source.read_bytes())


def test_an_unreadable_image_stops_the_embedding_naming_the_file(tmp_path):
    make_image_folder(tmp_path / "pets", classes=("cat", "dog"), train=2, test=2)
    broken = tmp_path / "pets/train/dog/broken.png"
    broken.write_bytes(b"\x89PNG not really")
    data = ImageFolderDataModule(tmp_path / "pets/train", None, 32, 28, num_workers=0)
    data.setup()
    assert data.labels.tolist() == [0, 0, 1, 1, 1]
    assert data._load(0)[0].shape == (28, 28, 3)
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.png .*re-save it"):
        data._load(data.files.index(broken))


def test_images_in_sub_folders_of_a_class_are_found_as_imagefolder_finds_them(tmp_path):
    from torchvision.datasets import ImageFolder

    make_image_folder(tmp_path / "pets", classes=("cat", "dog"), train=3, test=2)
    nested = tmp_path / "pets/train/cat/more/deeper"
    nested.mkdir(parents=True)
    for i, source in enumerate(sorted((tmp_path / "pets/train/dog").iterdir())):
        (nested / f"n{i}.PNG").write_bytes(source.read_bytes())
    (tmp_path / "pets/train/cat/.cache").mkdir()
    (tmp_path / "pets/train/cat/.cache/thumb.png").write_bytes(b"x")
    _, files = image_folder(tmp_path / "pets")
    found = [str(p) for class_files in files["train"] for p in class_files]
    torchvision_found = [path for path, _ in ImageFolder(str(tmp_path / "pets/train")).samples]
    assert found == [p for p in torchvision_found if "/.cache/" not in p]
    assert len(files["train"][0]) == 6


def test_files_that_are_not_images_are_named_in_a_warning(tmp_path, caplog):
    make_image_folder(tmp_path / "pets", classes=("cat", "dog"), train=2, test=2)
    (tmp_path / "pets/train/cat/anim.gif").write_bytes(b"GIF89a")
    (tmp_path / "pets/train/cat/gone.png").symlink_to(tmp_path / "nowhere.png")
    with caplog.at_level("WARNING"):
        _, files = image_folder(tmp_path / "pets")
    assert len(files["train"][0]) == 2
    (message,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert "pets/train/cat: 2 file(s) skipped" in message
    assert "anim.gif" in message and "gone.png" in message


def test_an_empty_image_file_is_refused_at_planning(tmp_path):
    make_image_folder(tmp_path / "pets", classes=("cat", "dog"), train=2, test=2)
    (tmp_path / "pets/test/dog/blank.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"image .*pets/test/dog/blank\.png is empty \(0 bytes\)"):
        image_folder(tmp_path / "pets")


def test_16_bit_and_nested_images_embed_as_their_8_bit_flat_copies(tmp_path):
    from PIL import Image

    levels = {"dark": 40, "mid": 128, "light": 220}
    for variant in ("flat", "16bit", "nested"):
        for name, level in levels.items():
            folder = tmp_path / variant / "train" / name
            for i in range(2):
                grey = np.full((12, 10), level, np.uint16)
                grey[i::3] = level // 2  # stripes: not a flat image
                where = folder / "deeper" if variant == "nested" and i else folder
                where.mkdir(parents=True, exist_ok=True)
                if variant == "16bit":
                    Image.fromarray(grey * 257).save(where / f"{i}.png")  # full 16-bit range
                else:
                    Image.fromarray(grey.astype(np.uint8)).save(where / f"{i}.png")
    with Image.open(tmp_path / "16bit/train/dark/0.png") as image:
        assert image.mode.startswith("I")  # Pillow reads it as 16-bit, not 8
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    on_device = Preprocessing(resize=None, crop=None, mean=(0.5,) * 3, std=(0.25,) * 3)
    embedded = {}
    for variant in ("flat", "16bit", "nested"):
        data = ImageFolderDataModule(tmp_path / variant / "train", None, 12, 10, num_workers=0)
        embed_images(backbone, on_device, data, tmp_path / f"{variant}.npy", "cpu", 1)
        embedded[variant] = open_embeddings(tmp_path / f"{variant}.npy")
    for variant in ("16bit", "nested"):
        np.testing.assert_array_equal(embedded[variant][0], embedded["flat"][0])
        np.testing.assert_array_equal(embedded[variant][1], embedded["flat"][1])
    assert np.unique(embedded["flat"][0], axis=0).shape[0] == 6  # six different images


def test_floating_point_and_out_of_range_images_are_refused_with_the_fix():
    from PIL import Image

    with pytest.raises(ValueError, match="floating-point pixels; save it with 8 or 16 bits"):
        rgb_pixels(Image.fromarray(np.ones((2, 2), np.float32)))
    with pytest.raises(ValueError, match=r"values outside 0\.\.65535"):
        rgb_pixels(Image.fromarray(np.full((2, 2), 70000, np.int32)))


def test_every_image_is_opened_before_any_is_embedded(tmp_path):
    make_image_folder(tmp_path / "pets", classes=("cat", "dog"), train=2, test=2)
    (tmp_path / "pets/test/dog/fake.png").write_bytes(b"not an image at all")
    data = ImageFolderDataModule(tmp_path / "pets/test", None, 32, 28, num_workers=0)
    data.setup()
    with pytest.raises(ValueError, match=r"cannot read image .*pets/test/dog/fake\.png"):
        data.check()


def test_the_embed_step_reads_your_folder_imagenet_or_decoded_arrays(tmp_path):
    preprocessing = Preprocessing(resize=32, crop=28, mean=(0.5,) * 3, std=(0.25,) * 3)
    make_image_folder(tmp_path / "pets", classes=("cat", "dog"), train=2, test=3)
    for name in ("n01", "n02"):
        make_image_folder(tmp_path / "imagenet", classes=(name,), train=1, test=1)
    (tmp_path / "imagenet/test").rename(tmp_path / "imagenet/val")
    datasets = {"pets": {"folder": str(tmp_path / "pets")}}

    def read(dataset, split, **where):
        return split_images(dataset, split, datasets, preprocessing, 8, 0, **where)

    own, on_device = read("pets", "test")
    assert isinstance(own, ImageFolderDataModule) and own.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert (on_device.resize, on_device.crop, on_device.mean) == (None, None, (0.5,) * 3)
    net, _ = read("imagenet", "test", imagenet_root=tmp_path / "imagenet")
    assert net.folder == tmp_path / "imagenet/val" and net.classes == imagenet_classes()
    with pytest.raises(FileNotFoundError, match="set `imagenet_root`"):
        read("imagenet", "train")
    arrays, as_given = read("cifar10", "train", arrays=tmp_path / "train.npz")
    assert isinstance(arrays, ImageArrayDataModule) and arrays.path == tmp_path / "train.npz"
    assert as_given is preprocessing
    (tmp_path / "pets/train/dog/fake.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"cannot read image .*fake\.png"):
        read("pets", "train")  # opened before any split is embedded


def test_a_file_that_is_no_npz_is_named(tmp_path):
    (tmp_path / "a.npz").write_text("embeddings,labels\n")
    with pytest.raises(ValueError, match=r"a\.npz is not an \.npz file \(a zip archive"):
        read_embeddings(str(tmp_path / "a.npz"))
    with pytest.raises(ValueError, match=r"a\.npz is not an \.npz file"):
        embeddings_shape(str(tmp_path / "a.npz"))


def test_precomputed_arrays_are_read_as_float32_with_their_labels(tmp_path):
    x, y = embedding_arrays(tmp_path / "a.npz")
    got_x, got_y = read_embeddings(str(tmp_path / "a.npz"))
    assert got_x.dtype == np.float32 and got_y.dtype == np.int64
    np.testing.assert_array_equal(got_x, x)
    np.save(tmp_path / "x.npy", x.astype(np.float64))
    np.save(tmp_path / "y.npy", y.astype(np.int32))
    pair = {"embeddings": str(tmp_path / "x.npy"), "labels": str(tmp_path / "y.npy")}
    np.testing.assert_array_equal(read_embeddings(pair)[0], x)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"embeddings": np.full((3, 2), np.nan, np.float32)}, r"non-finite values .* 3 row"),
        ({"embeddings": np.ones((3, 2), np.int64)}, "2-d floating-point array"),
        ({"embeddings": np.ones((3, 2, 1), np.float32)}, "2-d floating-point array"),
        ({"labels": np.arange(4)}, "3 embeddings but 4 labels"),
        ({"labels": np.array([0, -1, 1])}, r"class indices 0\.\.1000000, found -1"),
        ({"labels": np.array([0, 10**10, 1])}, r"class indices 0\.\.1000000, found 10000000000"),
        ({"embeddings": np.ones((0, 2), np.float32), "labels": np.arange(0)}, "an empty split"),
        ({"labels": np.array([0.0, 1.0, 1.0])}, "1-d integer array"),
        ({"labels": None}, "has no array 'labels'"),
    ],
)
def test_bad_precomputed_arrays_are_rejected(tmp_path, arrays, message):
    data = {"embeddings": np.ones((3, 2), np.float32), "labels": np.arange(3), **arrays}
    np.savez(tmp_path / "a.npz", **{k: v for k, v in data.items() if v is not None})
    with pytest.raises(ValueError, match=message):
        read_embeddings(str(tmp_path / "a.npz"))


def test_a_label_mapping_csv_names_classes_by_folder_or_index(tmp_path):
    (tmp_path / "m.csv").write_text("class,task\ncat,0\n2,1\nyak,1\n")
    assert label_table(tmp_path / "m.csv", list(CLASSES)) == {0: 0, 2: 1, 3: 1}
    for text, message in (
        ("class,task\nemu,0\n", r"line 2: class 'emu' is neither a class name nor an index"),
        ("from,to\ncat,0\n", "header 'class,task'"),
        ("class,task\ncat,x\n", "task 'x' must be an integer"),
        ("class,task\ncat,0\n0,1\n", "class '0' is mapped twice"),
    ):
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(ValueError, match=message):
            label_table(tmp_path / "bad.csv", list(CLASSES))


def test_label_csvs_from_spreadsheets_are_read_and_bad_ones_named_by_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes("\ufeffclass,task\r\ncat,0\r\n\r\ndog,1\r\n".encode())  # Excel: BOM, CRLF
    assert label_table(path, list(CLASSES)) == {0: 0, 1: 1}
    path.write_text("class, task\ncat , 0\n")  # spaces after the commas
    assert label_table(path, list(CLASSES)) == {0: 0}
    path.write_text("class,task\ncat,0\n\ndog\n")
    with pytest.raises(ValueError, match=r"m\.csv, line 4: no task given for class 'dog'"):
        label_table(path, list(CLASSES))
    path.write_text("class,task\ncat,0\n", encoding="utf-16")
    with pytest.raises(ValueError, match=r"m\.csv is not UTF-8 text; save it as CSV \(UTF-8\)"):
        label_table(path, list(CLASSES))


def _own_config(tmp_path) -> dict:
    """The embedded default plus a timm FM on an image folder, a precomputed FM and a mapping."""
    make_image_folder(tmp_path / "pets", train=5, test=3)
    embedding_arrays(tmp_path / "train.npz", n=30, classes=3)
    embedding_arrays(tmp_path / "test.npz", n=12, classes=3, seed=1)
    (tmp_path / "pairs.csv").write_text("class,task\ncat,0\ndog,0\nowl,1\nyak,1\n")
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["fms"]["vit"] = {"source": "timm", "model": "test_vit", "weights": "random",
                            "lambda_reg": 1e-3}  # fmt: skip
    config["fms"]["pre"] = {
        "lambda_reg": 1e-3,
        "embeddings": {
            "blobs": {"train": str(tmp_path / "train.npz"), "test": str(tmp_path / "test.npz")}
        },
    }
    config["datasets"] = {"pets": {"folder": str(tmp_path / "pets")}}
    config["mappings"] = {"pairs": str(tmp_path / "pairs.csv")}
    config["experiments"]["own"] = {
        "methods": ["qi", "ours"],
        "fms": ["vit"],
        "datasets": ["pets"],
        "mappings": ["none", "pairs"],
        "tasks": ["all"],
        "seeds": [1],
    }
    config["experiments"]["pre"] = {**config["experiments"]["own"], "fms": ["pre"],
                                    "datasets": ["blobs"], "mappings": ["none"]}  # fmt: skip
    return config


def test_the_catalog_learns_classes_sizes_and_dimensions_from_your_files(tmp_path):
    config = _own_config(tmp_path)
    validate(config, SCHEMA)
    resolved, _ = resolve_config(config)
    check_experiments(resolved)
    catalog = Catalog(resolved)
    assert catalog.classes("vit", "pets").names == CLASSES
    size = catalog.task_size("vit", "pets", "pairs", "all")
    assert (size.n_classes, size.train_per_class, size.n_test, size.dim) == (2, 10, 12, 64)
    assert catalog.task_classes("vit", "pets", "none", "odd") == [1, 3]
    size = catalog.task_size("pre", "blobs", "none", "all")
    assert (size.n_classes, size.train_per_class, size.n_test, size.dim) == (3, 10, 12, 8)


def test_classes_without_samples_do_not_count_and_each_data_set_has_its_dimension(tmp_path):
    x = np.ones((4, 6), np.float32)
    np.savez(tmp_path / "gap.npz", embeddings=x, labels=np.array([0, 0, 2, 2]))  # no class 1
    embedding_arrays(tmp_path / "b.npz", dim=3)
    arrays = {"a": {"train": str(tmp_path / "gap.npz"), "test": str(tmp_path / "gap.npz")},
              "b": {"train": str(tmp_path / "b.npz"), "test": str(tmp_path / "b.npz")}}  # fmt: skip
    catalog = Catalog({"fms": {"pre": {"lambda_reg": 1.0, "embeddings": arrays}}})
    assert catalog.task_classes("pre", "a", "none", "all") == [0, 2]
    assert catalog.task_size("pre", "a", "none", "all").n_classes == 2
    assert (catalog.dim("pre", "a"), catalog.dim("pre", "b")) == (6, 3)
    assert catalog.task_size("pre", "b", "none", "all").dim == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c, t: c["experiments"]["own"].update(datasets=["flowers"]),
         r"experiments.own.datasets names undefined data set\(s\) \['flowers'\]"),
        (lambda c, t: c["experiments"]["own"].update(mappings=["coarse"]),
         r"experiments.own.mappings names undefined mapping\(s\) \['coarse'\]"),
        (lambda c, t: c["experiments"]["own"].update(fms=["demo_cnn"]),
         r"pairs demo CNN\(s\) \['demo_cnn'\] with image folder\(s\) \['pets'\]"),
        (lambda c, t: c["experiments"]["pre"].update(fms=["vit"]),
         "exists only as precomputed embeddings"),
        (lambda c, t: c["experiments"]["own"].update(datasets=["blobs"], fms=["pre", "vit"],
                                                   mappings=["none"]),
         "exists only as precomputed embeddings"),
        (lambda c, t: c["experiments"]["pre"].update(datasets=["pets"]),
         "FM pre is precomputed and has no embeddings of data set 'pets'"),
        (lambda c, t: (t / "pairs.csv").write_text("class,task\ncat,0\ndog,0\n"),
         r"task 'all' keeps 1 class\(es\) \[0\] of pets after mapping 'pairs'"),
        (lambda c, t: np.savez(t / "test.npz", embeddings=np.ones((2, 5), np.float32),
                               labels=np.arange(2)),
         "train embeddings have 8 dimensions, test embeddings 5"),
        (lambda c, t: np.savez(t / "test.npz", embeddings=np.ones((2, 8), np.float32),
                               labels=np.array([0, 5])),
         r"test labels \[5\] have no training samples"),
        (lambda c, t: c["fms"]["vit"].update(model="test_vitt"),
         r"timm model 'test_vitt' does not exist; close matches: \['test_vit'"),
        (lambda c, t: _empty(t / "pets/test/owl"), "pets/test/owl holds no images"),
    ],
)  # fmt: skip
def test_problems_with_your_data_stop_at_planning(tmp_path, change, message):
    config = _own_config(tmp_path)
    change(config, tmp_path)
    validate(config, SCHEMA)
    with pytest.raises(ValueError, match=message):
        check_experiments(resolve_config(config)[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["datasets"].update(mnist={"folder": "x"}), "mnist"),
        (lambda c: c["mappings"].update(mod3={"x": 1}), "mod3"),
        (lambda c: c["mappings"].update(mod7="m.csv"), "mod7"),
        (lambda c: c["fms"]["pre"]["embeddings"]["blobs"].update(train="x.npy"), "x.npy"),
        (lambda c: c["fms"]["vit"].update(sha256="abc"), "abc"),
        (lambda c: c["fms"]["vit"].update(source="keras"), "keras"),
    ],
)
def test_the_schema_rejects_malformed_entries(tmp_path, change, message):
    config = copy.deepcopy(_own_config(tmp_path))
    change(config)
    with pytest.raises(WorkflowError, match=message):
        validate(config, SCHEMA)


def test_check_references_accepts_your_own_names(tmp_path):
    config = _own_config(tmp_path)
    validate(config, SCHEMA)
    check_references(config)
