"""Where an FM comes from, as its config entry says: a demo CNN the workflow trains, the paper's
torchvision FMs by name, any torchvision or timm model by its library name with library, random
or local weights, or precomputed embeddings. No PyTorch here, so that planning reads it cheaply:
``check_fm`` imports an FM's library only to look its model up; ``check_fms`` does so only for
models not yet checked under the installed library's version."""

from __future__ import annotations

import contextlib
import difflib
import importlib.metadata
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
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


def _no_such(what: str, name: str, known: list[str], listing: str) -> ValueError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; close matches: {close}" if close else ""
    return ValueError(f"{what} {name!r} does not exist{hint} (all of them: {listing})")


def checked_record() -> Path:
    """Where ``check_fms`` records the FMs checked on this machine: ``imprint/checked_fms.json``
    in the user's cache folder (``$XDG_CACHE_HOME``, else ``~/.cache``). A name's look-up turns
    only on the installed library, so every checkout and working folder shares the record."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "imprint" / "checked_fms.json"


def check_fms(specs: Iterable[FMSpec], record: Path | None = None) -> None:
    """``check_fm`` for every spec but those ``record`` (a JSON file) lists as checked under the
    installed version of their library, then the passed ones added to it: importing torchvision
    or timm to look a name up takes seconds, and the workflow checks its config at every
    invocation. Nothing that failed is recorded; a new library version checks again."""
    checked = set(_recorded(record)) if record else set()
    before = len(checked)
    for spec in specs:
        if spec.source not in SOURCES:
            continue  # nothing to look up
        try:
            version = importlib.metadata.version(spec.source)
        except importlib.metadata.PackageNotFoundError:
            check_fm(spec)  # its import fails and says so
            continue
        key = f"{spec.source}=={version}:{spec.model}:{spec.weights}"
        if key not in checked:
            check_fm(spec)
            checked.add(key)
    if record and len(checked) > before:
        partial = record.with_name(f"{record.name}.{os.getpid()}.partial")
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(sorted(checked), indent=0))
            partial.replace(record)  # atomic: a planner beside this one reads the old or the new
        except OSError:  # a read-only cache: the names are checked again next time
            with contextlib.suppress(OSError):
                partial.unlink()


def _recorded(record: Path) -> list[str]:
    """The keys ``record`` holds; none if it is missing or unreadable (they are checked again)."""
    try:
        return json.loads(record.read_text())
    except (OSError, ValueError):
        return []


def check_fm(spec: FMSpec) -> None:
    """Raise ``ValueError`` if the library has no such model or weights tag, listing close
    matches (before any job runs: this imports the library, not the weights)."""
    where = f"fms.{spec.name}"
    if spec.source == "torchvision":
        import torchvision.models as tvm

        known = tvm.list_models(module=tvm)
        if spec.model not in known:
            raise _no_such(
                f"{where}: torchvision classification model", spec.model, known,
                "torchvision.models.list_models(module=torchvision.models)",
            )  # fmt: skip
        tags = list(tvm.get_model_weights(spec.model).__members__)
        if spec.tag and spec.tag not in tags:
            raise _no_such(
                f"{where}: {spec.model} weights", spec.weights, tags,
                f"{tags}, random, or a file of your own",
            )  # fmt: skip
    elif spec.source == "timm":
        import timm

        if not timm.is_model(spec.model):
            known = timm.list_models() + timm.list_models(pretrained=True)
            raise _no_such(f"{where}: timm model", spec.model, known, "timm.list_models()")
        if spec.tag and spec.tag != "pretrained":
            raise ValueError(
                f"{where}: weights {spec.weights!r} is not valid for timm; use pretrained (name "
                "the tag in the model, e.g. convnext_femto.d1_in1k), random, or a file path"
            )
        published = timm.list_pretrained()
        if spec.tag and spec.model not in published:
            if "." in spec.model or not any(n.split(".")[0] == spec.model for n in published):
                raise _no_such(
                    f"{where}: timm pretrained weights", spec.model, published,
                    "timm.list_pretrained(); or use weights random or a file of your own",
                )  # fmt: skip
