"""Foundation models (FMs): frozen backbones with their classifier removed, and how each wants
its images prepared (resize, crop, normalisation), applied in batches on the device."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# torchvision builders and their ImageNet-1k V1 weights.
TORCHVISION_FMS = {
    "resnet18": ("resnet18", "ResNet18_Weights"),
    "resnet50": ("resnet50", "ResNet50_Weights"),
    "vit_b_16": ("vit_b_16", "ViT_B_16_Weights"),
    "swin_b": ("swin_b", "Swin_B_Weights"),
}


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


DEMO_PREPROCESSING = Preprocessing(resize=None, crop=None, mean=(0.3,), std=(0.35,), channels=1)


def torchvision_fm(
    name: str, weights_path: str | os.PathLike | None, pretrained: bool = True
) -> tuple[nn.Module, Preprocessing]:
    """A torchvision FM with its head replaced by identity, and its weights' preprocessing.

    Weights come from a saved state dict, else (``weights_path`` None) from torchvision's cache,
    or stay random with ``pretrained=False`` (for speed measurements)."""
    import torchvision.models as tvm

    if name not in TORCHVISION_FMS:
        raise ValueError(
            f"fm={name!r} is not valid; choose one of {list(TORCHVISION_FMS)} or a demo_* CNN"
        )
    builder, weights_enum = TORCHVISION_FMS[name]
    weights = getattr(tvm, weights_enum).IMAGENET1K_V1
    model = getattr(tvm, builder)(weights=weights if pretrained and not weights_path else None)
    if weights_path:
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    for head in ("fc", "heads", "head"):
        if hasattr(model, head):
            setattr(model, head, nn.Identity())
    transform = weights.transforms()
    preprocessing = Preprocessing(
        resize=int(transform.resize_size[0]),
        crop=int(transform.crop_size[0]),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        interpolation=transform.interpolation.value,
    )
    return model.eval(), preprocessing


def weights_url(name: str) -> str:
    """Where torchvision publishes an FM's ImageNet-1k V1 weights."""
    import torchvision.models as tvm

    if name not in TORCHVISION_FMS:
        raise ValueError(
            f"fm={name!r} has no published weights; choose one of {list(TORCHVISION_FMS)}"
        )
    return getattr(tvm, TORCHVISION_FMS[name][1]).IMAGENET1K_V1.url


def download_weights(url: str, path: str | os.PathLike) -> None:
    """Download a state dict into ``path``, checking the SHA-256 prefix its file name carries
    (``resnet18-f37072fd.pth``); a failed or damaged download raises naming the URL and why."""
    from imprint.io import atomic_path

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


def load_fm(name: str, weights_path: str | os.PathLike | None) -> tuple[nn.Module, Preprocessing]:
    """The frozen embedding network of an FM and its preprocessing."""
    if name.startswith("demo_"):
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model = DemoCNN(
            n_classes=state["head.weight"].shape[0],
            width=state["features.0.weight"].shape[0],
            embedding_dim=state["head.weight"].shape[1],
        )
        model.load_state_dict(state)
        return model.features.eval(), DEMO_PREPROCESSING
    return torchvision_fm(name, weights_path)
