"""Foundation models (FMs): frozen backbones with their classifier removed, and how each wants
its images prepared (resize, crop, normalisation), applied in batches on the device."""

from __future__ import annotations

import math
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imprint.fms.fm_spec import FMSpec
from imprint.io import atomic_path, file_sha256


@dataclass(frozen=True)
class Preprocessing:
    """Resize the short side, centre-crop, normalise; grey images become RGB when asked."""

    resize: int | None
    crop: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels: int = 3
    interpolation: str = "bilinear"

    def __call__(self, images: Tensor) -> Tensor:
        """uint8 (B, H, W, C) on any device -> normalised float (B, channels, h, w)."""
        x = images.permute(0, 3, 1, 2).float().div_(255)
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if self.resize is not None:
            h, w = x.shape[-2:]
            scale = self.resize / min(h, w)
            size = (max(self.resize, int(h * scale)), max(self.resize, int(w * scale)))
            x = F.interpolate(
                x, size=size, mode=self.interpolation, antialias=True, align_corners=False
            )
        if self.crop is not None:
            h, w = x.shape[-2:]
            top, left = (h - self.crop) // 2, (w - self.crop) // 2
            x = x[..., top : top + self.crop, left : left + self.crop]
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


class DemoCNN(nn.Module):
    """The embedded default's FM: a small CNN for 8x8 grey digits; ``embed`` is its penultimate
    layer (64-d), ``head`` the classifier trained on the seen classes only."""

    def __init__(self, n_classes: int = 5, width: int = 32, embedding_dim: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * 16, embedding_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(embedding_dim, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


DEMO_INPUT_SIZE = (8, 8)  # the demo CNN's one image size: its linear layer fits 8x8 digits
DEMO_PREPROCESSING = Preprocessing(resize=None, crop=None, mean=(0.3,), std=(0.35,), channels=1)


def _architecture(spec: FMSpec) -> nn.Module:
    """The library's model with its classifier and freshly initialised weights."""
    if spec.source == "timm":
        import timm

        return timm.create_model(spec.model, pretrained=False)
    import torchvision.models as tvm

    return tvm.get_model(spec.model, weights=None)


def _without_head(model: nn.Module, spec: FMSpec) -> nn.Module:
    """The model giving its pooled pre-classifier feature: timm's ``reset_classifier(0)``; for
    torchvision, the last linear layer (the classifier) replaced by identity."""
    if spec.source == "timm":
        model.reset_classifier(0)
        return model
    linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linear:
        raise ValueError(
            f"fms.{spec.name}: {spec.model} has no linear classifier to remove; choose a model "
            "whose head ends in a linear layer"
        )
    parent, _, child = linear[-1].rpartition(".")
    setattr(model.get_submodule(parent), child, nn.Identity())
    return model


def preprocessing_of(spec: FMSpec, model: nn.Module) -> Preprocessing:
    """The preprocessing the library gives the model: torchvision's weights transforms (the
    model's ``DEFAULT`` weights for random or your own ones), timm's data config."""
    if spec.source == "timm":
        import timm

        config = timm.data.resolve_model_data_config(model)
        _, height, width = config["input_size"]
        if height != width or config.get("crop_mode", "center") != "center":
            raise ValueError(
                f"fms.{spec.name}: {spec.model} wants {height}x{width} inputs cropped by "
                f"{config.get('crop_mode')!r}; imprint supports square centre crops only"
            )
        return Preprocessing(
            resize=math.floor(height / config["crop_pct"]),
            crop=height,
            mean=tuple(config["mean"]),
            std=tuple(config["std"]),
            interpolation=config["interpolation"],
        )
    import torchvision.models as tvm

    weights = tvm.get_model_weights(spec.model)
    transform = weights[spec.tag or "DEFAULT"].transforms()
    return Preprocessing(
        resize=int(transform.resize_size[0]),
        crop=int(transform.crop_size[0]),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        interpolation=transform.interpolation.value,
    )


def embedding_dim(spec: FMSpec) -> int:
    """The FM's embedding dimension, read off a forward pass on the meta device (no weights, no
    compute)."""
    with torch.device("meta"):
        model = _without_head(_architecture(spec), spec)
        crop = preprocessing_of(spec, model).crop
        return int(model(torch.empty(1, 3, crop, crop)).flatten(1).shape[1])


def read_weights(path: str | os.PathLike, digest: str | None = None) -> dict[str, Tensor]:
    """A state dict from a ``.safetensors`` or PyTorch file (a checkpoint's ``state_dict`` or
    ``model`` entry is unwrapped), checked against its SHA-256 ``digest`` when one is given."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if digest and (found := file_sha256(path)) != digest.lower():
        raise ValueError(
            f"weights file {path} has SHA-256 {found}, the config says {digest}; "
            "replace the file or correct sha256"
        )
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"weights file {path} holds pickled Python objects (a whole model?), not a state "
            "dict of tensors; save torch.save(model.state_dict(), path)"
        ) from None
    for wrapper in ("state_dict", "model"):  # a checkpoint that wraps the state dict
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ValueError(f"weights file {path} holds no state dict ({type(state).__name__})")
    return state


def _fitted(spec: FMSpec, state: dict[str, Tensor], source: object) -> nn.Module:
    """The architecture with ``state`` loaded; weights that do not fit say so."""
    model = _architecture(spec)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        hint = "save model.state_dict() of that very architecture"
        if state and all(key.startswith("module.") for key in state):
            hint = (
                "its keys start with 'module.' (saved from DataParallel or "
                "DistributedDataParallel): save model.module.state_dict() instead"
            )
        detail = str(error).splitlines()[1].strip()[:200]  # PyTorch lists every key
        raise ValueError(
            f"weights {source} do not fit {spec.source} model {spec.model}: {detail} ...; {hint}"
        ) from None
    return model


def library_fm(spec: FMSpec, weights_path: str | os.PathLike) -> tuple[nn.Module, Preprocessing]:
    """A torchvision or timm FM without its classifier, with the weights ``fetch_weights``
    stored, and its preprocessing."""
    model = _without_head(_fitted(spec, read_weights(weights_path), weights_path), spec)
    return model.eval(), preprocessing_of(spec, model)


def fetch_weights(spec: FMSpec, path: str | os.PathLike) -> None:
    """Store a torchvision or timm FM's weights in ``path`` once, so compute nodes need no
    internet: torchvision's download, checked against the checksum its file name carries; timm's
    from the Hugging Face Hub; ``random`` ones (seeded); or your own file, checked against its
    ``sha256`` and against the architecture."""
    if spec.weights == "random":
        torch.manual_seed(0)
        state = _architecture(spec).state_dict()
    elif spec.weights_file:
        state = _fitted(spec, read_weights(spec.weights, spec.sha256), spec.weights).state_dict()
    elif spec.source == "torchvision":
        import torchvision.models as tvm

        download_weights(tvm.get_model_weights(spec.model)[spec.weights].url, path)
        return
    else:
        import timm

        try:
            state = timm.create_model(spec.model, pretrained=True).state_dict()
        except Exception as error:
            raise RuntimeError(
                f"fetching timm weights of {spec.model} failed: {error}; without internet, "
                "download the weights elsewhere and name the file in weights"
            ) from error
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def download_weights(url: str, path: str | os.PathLike) -> None:
    """Download a state dict into ``path``, checking the SHA-256 prefix its file name carries
    (``resnet18-f37072fd.pth``); a failed or damaged download raises naming the URL and why."""
    match = re.search(r"-([0-9a-f]{8,})\.", url.rsplit("/", 1)[-1])
    with atomic_path(path) as temporary:
        try:
            torch.hub.download_url_to_file(
                url, str(temporary), hash_prefix=match[1] if match else None, progress=False
            )
            state = torch.load(temporary, map_location="cpu", weights_only=True)
        except Exception as error:
            raise RuntimeError(f"downloading weights from {url} failed: {error}") from error
        if not isinstance(state, dict):
            raise RuntimeError(f"{url} did not hold a state dict")


def embedding_network(spec: FMSpec, state: dict[str, Tensor]) -> nn.Module:
    """An FM's embedding network (what ``load_fm`` returns) rebuilt from its own state dict:
    the demo CNN's feature layers, sized by the state, or the library model without its
    classifier."""
    if spec.source == "demo":
        width, embedding = state["0.weight"].shape[0], state["6.weight"].shape[0]
        model = DemoCNN(width=width, embedding_dim=embedding).features
    else:
        model = _without_head(_architecture(spec), spec)
    model.load_state_dict(state)
    return model.eval()


def load_fm(
    spec: FMSpec, weights_path: str | os.PathLike | None
) -> tuple[nn.Module, Preprocessing]:
    """The frozen embedding network of an FM and its preprocessing."""
    if spec.source == "demo":
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model = DemoCNN(
            n_classes=state["head.weight"].shape[0],
            width=state["features.0.weight"].shape[0],
            embedding_dim=state["head.weight"].shape[1],
        )
        model.load_state_dict(state)
        return model.features.eval(), DEMO_PREPROCESSING
    return library_fm(spec, weights_path)
