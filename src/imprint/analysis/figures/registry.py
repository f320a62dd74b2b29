"""Every figure the workflow draws, by name: what it reads and which function draws it
(``workflow/scripts/figure.py`` looks the rule's figure up here). Each entry takes the inputs,
the output paths by key (``pdf``, and ``grid`` for Fig. 6) and the figure's settings, and
returns the tables it writes by output key (``csv``; ``fit`` for Fig. 12, ``summary`` for the
GEN times)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from imprint.analysis.figures import collapse, fewshot, k_sweep, timing


@dataclass(frozen=True)
class Inputs:
    """What a figure reads: the runs of its experiments, the NC1 table, or both."""

    runs: pd.DataFrame | None = None
    collapse: pd.DataFrame | None = None


Draw = Callable[[Inputs, Mapping[str, str], Mapping[str, Any]], dict[str, pd.DataFrame]]


def _fig12(inputs: Inputs, out: Mapping[str, str], settings: Mapping[str, Any]) -> dict:
    points, fit = collapse.fig12(inputs.runs, inputs.collapse, out["pdf"], settings["metric"])
    return {"csv": points, "fit": fit}


def _gen_time(inputs: Inputs, out: Mapping[str, str], settings: Mapping[str, Any]) -> dict:
    times, summary = timing.gen_time(inputs.runs, out["pdf"])
    return {"csv": times, "summary": summary}


FIGURES: dict[str, Draw] = {
    "fig6": lambda i, out, s: {"csv": k_sweep.fig6(i.runs, out["pdf"], out["grid"], s)},
    "fig10": lambda i, out, s: {"csv": fewshot.fig10(i.runs, out["pdf"], s)},
    "fig11a": lambda i, out, s: {"csv": collapse.fig11a(i.collapse, out["pdf"], s["metric"])},
    "fig11b": lambda i, out, s: {"csv": collapse.fig11b(i.runs, out["pdf"], s)},
    "figA8": lambda i, out, s: {"csv": k_sweep.figA8(i.runs, out["pdf"], s)},
    "fig12": _fig12,
    "collapse_metrics": lambda i, out, s: {"csv": collapse.collapse_figure(i.collapse, out["pdf"])},
    "gen_time": _gen_time,
}


def draw(
    name: str, inputs: Inputs, out: Mapping[str, str], settings: Mapping[str, Any]
) -> dict[str, pd.DataFrame]:
    """Draw figure ``name``; its tables by output key."""
    if name not in FIGURES:
        raise ValueError(f"no figure named {name!r}; the figures are {', '.join(FIGURES)}")
    return FIGURES[name](inputs, out, settings)
