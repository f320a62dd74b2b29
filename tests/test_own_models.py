"""Your own FMs: torchvision and timm models by name, their pooled pre-classifier features and
preprocessing, dimensions read off the model, local weights files, and the errors that help."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from torch import nn

from imprint.fms import fm_spec as fm_spec_module
from imprint.fms.backbones import (
    _architecture,
    _without_head,
    embedding_dim,
    fetch_weights,
    library_fm,
    load_fm,
    preprocessing_of,
)
from imprint.fms.data import save_images
from imprint.fms.embed import ImageArrayDataModule, embed_images
from imprint.fms.fm_spec import FMSpec, check_fm, check_fms, checked_record, fm_spec
from imprint.fms.store import open_embeddings
from imprint.study.catalog import Catalog

TORCHVISION = {"source": "torchvision", "model": "mobilenet_v3_small", "weights": "random"}
TIMM = {"source": "timm", "model": "test_vit", "weights": "random"}


def _images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(
        np.random.default_rng(seed).integers(0, 256, size=(n, 40, 52, 3), dtype=np.uint8)
    )


def _classifier_input(model: nn.Module, head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the classifier layer ``head`` of the full model receives (a forward hook)."""
    seen = []
    handle = head.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0]))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("entry", [TORCHVISION, TIMM], ids=["torchvision", "timm"])
def test_the_embedding_is_the_input_of_the_full_models_classifier(tmp_path, entry):
    spec = fm_spec("mine", {**entry, "lambda_reg": 1.0})
    fetch_weights(spec, tmp_path / "w.pth")
    backbone, preprocessing = load_fm(spec, tmp_path / "w.pth")
    x = preprocessing(_images())
    with torch.no_grad():
        embedding = backbone(x)
    # The same weights in the library's own full model, classifier kept.
    if spec.source == "timm":
        import timm

        full = timm.create_model(spec.model, pretrained=False)
        head = full.get_classifier()
    else:
        import torchvision.models as tvm

        full = tvm.get_model(spec.model)
        head = full.classifier[-1]
    full.load_state_dict(torch.load(tmp_path / "w.pth", weights_only=True))
    expected = _classifier_input(full.eval(), head, x)
    np.testing.assert_allclose(embedding.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    assert embedding.shape[1] == embedding_dim(spec) == head.in_features


def test_preprocessing_follows_the_librarys_data_config():
    import timm
    import torchvision.models as tvm

    vit = timm.create_model("test_vit")
    config = timm.data.resolve_model_data_config(vit)
    got = preprocessing_of(fm_spec("v", TIMM), vit)
    assert got.crop == config["input_size"][1] == 160
    assert got.resize == math.floor(160 / config["crop_pct"])
    assert (got.mean, got.std, got.interpolation) == (
        config["mean"],
        config["std"],
        config["interpolation"],
    )
    transform = tvm.get_model_weights("convnext_tiny").IMAGENET1K_V1.transforms()
    spec = fm_spec("c", {"source": "torchvision", "model": "convnext_tiny", "lambda_reg": 1})
    got = preprocessing_of(spec, None)
    assert (got.resize, got.crop) == (transform.resize_size[0], transform.crop_size[0])
    assert got.interpolation == transform.interpolation.value == "bilinear"


def test_dimensions_are_read_from_the_models():
    for entry, dim in (
        (TIMM, 64),
        ({"source": "timm", "model": "convnext_femto.d1_in1k"}, 384),
        ({"source": "torchvision", "model": "efficientnet_v2_s"}, 1280),
        ({"source": "torchvision", "model": "vit_b_16", "weights": "random"}, 768),
    ):
        catalog = Catalog({"fms": {"m": {**entry, "lambda_reg": 1.0}}})
        assert catalog.dim("m") == dim


@pytest.mark.parametrize(
    ("name", "head"), [("resnet18", "fc"), ("resnet50", "fc"), ("vit_b_16", "heads.head"),
                       ("swin_b", "head")],
)  # fmt: skip
def test_the_paper_fms_keep_their_weights_and_lose_their_classifier(name, head):
    spec = fm_spec(name, {"lambda_reg": 1e-4})
    assert spec == FMSpec(name, "torchvision", name, "IMAGENET1K_V1")
    with torch.device("meta"):
        model = _without_head(_architecture(spec), spec)
    assert isinstance(model.get_submodule(head), nn.Identity)  # the classifier, and only it
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert all(m.out_features != 1000 for m in linear)
    assert (
        embedding_dim(spec)
        == Catalog().dim(name)
        == {"resnet18": 512, "resnet50": 2048, "vit_b_16": 768, "swin_b": 1024}[name]
    )


def test_a_local_weights_file_round_trips_checked_against_its_digest(tmp_path):
    import torchvision.models as tvm

    torch.manual_seed(1)
    trained = tvm.get_model("mobilenet_v3_small").eval()
    torch.save(trained.state_dict(), tmp_path / "mine.pth")
    digest = hashlib.sha256((tmp_path / "mine.pth").read_bytes()).hexdigest()
    entry = {**TORCHVISION, "weights": str(tmp_path / "mine.pth"), "sha256": digest}
    spec = fm_spec("mine", entry)
    assert spec.weights_file and spec.tag is None
    fetch_weights(spec, tmp_path / "stored.pth")
    backbone, preprocessing = library_fm(spec, tmp_path / "stored.pth")
    x = preprocessing(_images(4))
    expected = _classifier_input(trained, trained.classifier[-1], x)
    with torch.no_grad():
        np.testing.assert_allclose(backbone(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    # A safetensors file of the same weights gives the same state.
    from safetensors.torch import save_file

    save_file(trained.state_dict(), tmp_path / "mine.safetensors")
    fetch_weights(fm_spec("s", {**TORCHVISION, "weights": str(tmp_path / "mine.safetensors")}),
                  tmp_path / "stored2.pth")  # fmt: skip
    for key, value in torch.load(tmp_path / "stored2.pth", weights_only=True).items():
        assert torch.equal(value, trained.state_dict()[key])


def test_bad_weights_files_say_what_is_wrong(tmp_path):
    import torchvision.models as tvm

    torch.save(tvm.get_model("mobilenet_v3_small").state_dict(), tmp_path / "mine.pth")
    wrong = fm_spec("m", {**TORCHVISION, "weights": str(tmp_path / "mine.pth"), "sha256": "0" * 64})
    with pytest.raises(ValueError, match=r"has SHA-256 [0-9a-f]{64}, the config says 0{64}"):
        fetch_weights(wrong, tmp_path / "out.pth")
    other = fm_spec(
        "m", {**TORCHVISION, "model": "resnet18", "weights": str(tmp_path / "mine.pth")}
    )
    with pytest.raises(ValueError, match="do not fit torchvision model resnet18"):
        fetch_weights(other, tmp_path / "out.pth")
    model = tvm.get_model("mobilenet_v3_small")
    parallel = {f"module.{key}": value for key, value in model.state_dict().items()}
    torch.save(parallel, tmp_path / "parallel.pth")
    spec = fm_spec("m", {**TORCHVISION, "weights": str(tmp_path / "parallel.pth")})
    with pytest.raises(ValueError, match=r"start with 'module.' .*save model.module.state_dict"):
        fetch_weights(spec, tmp_path / "out.pth")
    torch.save(model, tmp_path / "whole.pth")
    spec = fm_spec("m", {**TORCHVISION, "weights": str(tmp_path / "whole.pth")})
    with pytest.raises(ValueError, match=r"whole.pth holds pickled Python objects .*state_dict"):
        fetch_weights(spec, tmp_path / "out.pth")
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "wrapped.pth")
    spec = fm_spec("m", {**TORCHVISION, "weights": str(tmp_path / "wrapped.pth")})
    fetch_weights(spec, tmp_path / "wrapped_out.pth")  # the wrapped state dict is taken
    missing = fm_spec("m", {**TORCHVISION, "weights": str(tmp_path / "nope.pth")})
    with pytest.raises(FileNotFoundError, match=r"nope\.pth does not exist"):
        fetch_weights(missing, tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()


def test_random_weights_are_seeded(tmp_path):
    spec = fm_spec("m", TIMM)
    for seed in (1, 2):
        torch.manual_seed(seed)  # whatever the global state, the same weights
        fetch_weights(spec, tmp_path / f"w{seed}.pth")
    first, second = (torch.load(tmp_path / f"w{s}.pth", weights_only=True) for s in (1, 2))
    assert all(torch.equal(first[key], second[key]) for key in first)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"source": "torchvision", "model": "convnext_tiy"},
            r"torchvision classification model 'convnext_tiy' does not exist; close matches: "
            r"\['convnext_tiny'",
        ),
        (
            {"source": "timm", "model": "convnext_femtoo"},
            r"timm model 'convnext_femtoo' does not exist; close matches: \['convnext_femto'",
        ),
        (
            {"source": "torchvision", "model": "resnet18", "weights": "IMAGENET1K_V3"},
            r"resnet18 weights 'IMAGENET1K_V3' does not exist; close matches: \['IMAGENET1K_V1'\]",
        ),
        ({"source": "timm", "model": "test_vit", "weights": "in22k"}, "not valid for timm"),
        (
            {"source": "timm", "model": "test_vit.r161_in1k"},
            r"timm pretrained weights 'test_vit.r161_in1k' does not exist; close matches: "
            r"\['test_vit.r160_in1k'",
        ),
        ({"source": "timm", "model": "coatnet_0_224"}, "timm pretrained weights 'coatnet_0_224'"),
        ({"model": "convnext_tiny"}, "say where the FM comes from"),
    ],
)
def test_unknown_models_and_weights_list_close_matches(entry, message):
    with pytest.raises(ValueError, match=message):
        check_fm(fm_spec("mine", entry))


def test_fms_are_looked_up_once_per_library_version_and_failures_never_recorded(
    tmp_path, monkeypatch
):
    looked_up = []
    look_up = fm_spec_module.check_fm

    def counted(spec):
        looked_up.append(spec.model)
        look_up(spec)

    monkeypatch.setattr(fm_spec_module, "check_fm", counted)
    record = tmp_path / "checked.json"
    good = fm_spec("a", {"source": "torchvision", "model": "resnet18", "weights": "random"})
    bad = fm_spec("b", {"source": "torchvision", "model": "resnet19"})
    demo = fm_spec("demo_cnn", {})
    check_fms([good, demo], record)
    check_fms([good, demo], record)
    assert looked_up == ["resnet18"]  # the demo CNN has no library to look it up in
    for _ in range(2):
        with pytest.raises(ValueError, match="resnet19"):
            check_fms([good, bad], record)
    assert looked_up == ["resnet18", "resnet19", "resnet19"]
    monkeypatch.setattr(fm_spec_module.importlib.metadata, "version", lambda name: "99.0")
    check_fms([good], record)  # another torchvision: looked up again
    record.write_text("{not json")
    check_fms([good], record)  # an unreadable record: looked up again, and rewritten
    check_fms([good], record)
    assert looked_up == ["resnet18", "resnet19", "resnet19", "resnet18", "resnet18"]
    (tmp_path / "file").touch()
    check_fms([good], tmp_path / "file/checked.json")  # no folder for a record: checked, no error
    assert looked_up[-1] == "resnet18" and len(looked_up) == 6
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert checked_record() == tmp_path / "cache/imprint/checked_fms.json"


def test_timm_weights_without_internet_say_how_to_go_on(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    spec = fm_spec("m", {"source": "timm", "model": "test_vit.r160_in1k"})
    with pytest.raises(RuntimeError, match="name the file in weights"):
        fetch_weights(spec, tmp_path / "w.pth")
    assert not (tmp_path / "w.pth").exists()


def test_timm_and_torchvision_fms_embed_through_lightning(tmp_path):
    images = _images(10, seed=3).numpy()
    save_images(tmp_path / "images.npz", images, np.arange(10) % 2)
    for entry in (TORCHVISION, TIMM):
        spec = fm_spec("m", entry)
        fetch_weights(spec, tmp_path / "w.pth")
        backbone, preprocessing = load_fm(spec, tmp_path / "w.pth")
        data = ImageArrayDataModule(tmp_path / "images.npz", batch_size=4)
        embed_images(backbone, preprocessing, data, tmp_path / "x.npy", "cpu", 1)
        with torch.no_grad():
            expected = backbone(preprocessing(torch.from_numpy(images))).numpy()
        got, _ = open_embeddings(tmp_path / "x.npy")
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        assert got.shape == (10, embedding_dim(spec))


@pytest.mark.parametrize("entry", [TORCHVISION, TIMM], ids=["torchvision", "timm"])
def test_a_library_fm_and_its_head_round_trip_through_a_model_file(tmp_path, entry):
    """Images in, the same scores out after loading: the FM rebuilt from the file alone."""
    from imprint import ImprintingClassifier
    from imprint.deploy.image_model import ImageClassifier
    from imprint.deploy.model_file import KeptModel, fm_entry, load_model, save_model

    spec = fm_spec("mine", {**entry, "lambda_reg": 1.0})
    fetch_weights(spec, tmp_path / "w.pth")
    backbone, preprocessing = load_fm(spec, tmp_path / "w.pth")
    images = _images(8)
    with torch.no_grad():
        x = backbone(preprocessing(images)).flatten(1).numpy()
    clf = ImprintingClassifier(gen="mean").fit(x, [0, 1] * 4)
    save_model(
        tmp_path / "m.pt", KeptModel(clf.to_torch(), fm_entry(spec, backbone, preprocessing))
    )
    loaded = load_model(tmp_path / "m.pt").image_classifier()
    original = ImageClassifier(backbone, preprocessing, clf.to_torch())
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), original(images))
        torch.testing.assert_close(loaded.embed(images), torch.from_numpy(x))
    assert loaded.preprocessing == preprocessing
