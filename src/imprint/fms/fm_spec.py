"""Where an FM comes from, as its config entry says: a demo CNN the workflow trains, the paper's
torchvision FMs by name, any torchvision or timm model by its library name with library, random
or local weights, or precomputed embeddings. (No PyTorch here: planning reads it cheaply.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The paper's FMs: torchvision builders with their ImageNet-1k V1 weights, by name alone.
PAPER_FMS = ("resnet18", "resnet50", "vit_b_16", "swin_b")
SOURCES = ("torchvision", "timm")
# A ``weights`` value ending so, or naming a folder, is a file of your own, not a library tag.
WEIGHTS_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class FMSpec:
    """Where an FM comes from: ``source`` demo (a CNN the workflow trains), torchvision or timm
    (``model`` by its library name), or precomputed (embeddings come with the data sets);
    ``weights`` a library tag (torchvision: a member of the model's weights enum such as
    ``DEFAULT``; timm: ``pretrained``), ``random``, or a local file checked against ``sha256``."""

    name: str
    source: str
    model: str = ""
    weights: str = ""
    sha256: str | None = None

    @property
    def weights_file(self) -> bool:
        return "/" in self.weights or self.weights.endswith(WEIGHTS_SUFFIXES)

    @property
    def tag(self) -> str | None:
        """The library's weights tag (DEFAULT, IMAGENET1K_V1, pretrained); None for random
        weights or a file of your own."""
        return None if self.weights == "random" or self.weights_file else self.weights

    @property
    def library(self) -> bool:
        """Whether torchvision or timm builds it (its weights are stored by ``fm_weights``)."""
        return self.source in SOURCES


def fm_spec(name: str, entry: Mapping[str, Any]) -> FMSpec:
    """An FM's spec from its config entry: demo_* CNNs and the paper's FMs by name, your own
    by ``source`` and ``model`` (or by ``embeddings``, precomputed)."""
    if name.startswith("demo_"):
        return FMSpec(name, "demo")
    if "embeddings" in entry:
        return FMSpec(name, "precomputed")
    if "source" not in entry and name in PAPER_FMS:
        return FMSpec(name, "torchvision", name, "IMAGENET1K_V1")
    if entry.get("source") not in SOURCES or not entry.get("model"):
        raise ValueError(
            f"fms.{name}: say where the FM comes from: source ({' or '.join(SOURCES)}) and model "
            "(its name in that library), or embeddings (precomputed); the paper's FMs "
            f"{list(PAPER_FMS)} and demo_* CNNs need neither"
        )
    default = "DEFAULT" if entry["source"] == "torchvision" else "pretrained"
    return FMSpec(
        name, entry["source"], entry["model"], entry.get("weights", default), entry.get("sha256")
    )
