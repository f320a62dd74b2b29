"""Checks of the workflow config that a JSON schema cannot express: references between sections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_references(config: Mapping[str, Any]) -> None:
    """Every FM, experiment and figure a section names must be defined; raise ``ValueError``
    naming the offending key and the defined values otherwise."""
    fms = set(config["fms"])
    experiments = set(config["experiments"])

    def need(kind: str, names: set[str], where: str, defined: set[str]) -> None:
        missing = sorted(names - defined)
        if missing:
            raise ValueError(
                f"{where} names undefined {kind} {missing}; defined: {sorted(defined)}"
            )

    for name, experiment in config["experiments"].items():
        need("FM(s)", set(experiment["fms"]), f"experiments.{name}.fms", fms)
    need("FM(s)", set(config["collapse"]["fms"]), "collapse.fms", fms)
    for name, view in config["statistics"].get("cd_diagrams", {}).items():
        need("experiment", {view["experiment"]}, f"statistics.cd_diagrams.{name}", experiments)
    for figure, used in config["figures"].items():
        need(
            "experiment(s)",
            set([used] if isinstance(used, str) else used),
            f"figures.{figure}",
            experiments,
        )
    if "imagenet" in str(config) and not config.get("imagenet_root"):
        mentions = [
            name
            for name, e in config["experiments"].items()
            if any("imagenet" in m for m in e["mappings"])
        ]
        if mentions:
            raise ValueError(
                f"experiments {mentions} use ImageNet mappings but imagenet_root is not set; "
                "set it to a folder with train/ and val/"
            )
