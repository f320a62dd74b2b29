"""The critical-difference diagram in the paper's (Orange-style) layout, PAPER.md §C.4: an axis
of average ranks with rank 1 on the right, the worse half of the methods labelled on the left,
the better half on the right, and a bar under each clique of methods not told apart."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt

from imprint.analysis.stats import CriticalDifference

WIDTH = 8.0  # inches
TEXTSPACE = 1.5  # inches left and right of the axis for the labels
CLINE = 0.6  # height of the axis below the top


def axis_range(ranks: list[float], methods: int) -> tuple[float, float]:
    """The lowest and highest rank the axis shows."""
    return min(1, math.floor(min(ranks))), max(methods, math.ceil(max(ranks)))


def rank_position(rank: float, low: float, high: float) -> float:
    """Horizontal position (inches) of a rank; rank ``low`` is at the right end."""
    return TEXTSPACE + (WIDTH - 2 * TEXTSPACE) * (high - rank) / (high - low)


def bar_heights(bars: list[tuple[int, int]], methods: int) -> list[float]:
    """Heights of the clique bars: stacked 0.1 apart from CLINE + 0.2, restarting at
    CLINE + 0.25 at the first bar that starts in the better half."""
    heights, height, restarted = [], CLINE + 0.2, False
    for low, _ in bars:
        if not restarted and low >= methods / 2:
            height, restarted = CLINE + 0.25, True
        heights.append(height)
        height += 0.1
    return heights


def draw_cd_diagram(cd: CriticalDifference, title: str) -> plt.Figure:
    """The diagram of one ``CriticalDifference`` result (methods in its worst-first order)."""
    names, ranks = list(cd.ranks.index), cd.ranks.to_list()
    m = len(names)
    low, high = axis_range(ranks, m)
    heights = bar_heights(cd.bars, m)
    label_top = max(heights, default=CLINE) + 0.3
    half = math.ceil(m / 2)
    height = label_top + 0.25 * max(half, m - half) + 0.5
    figure = plt.figure(figsize=(WIDTH, height))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(height, 0)
    ax.set_axis_off()

    def x(rank: float) -> float:
        return rank_position(rank, low, high)

    ax.plot([x(low), x(high)], [CLINE, CLINE], color="black", lw=1)
    for tick in [low + 0.5 * i for i in range(int(2 * (high - low)) + 1)]:
        length = 0.1 if tick == int(tick) else 0.05
        ax.plot([x(tick)] * 2, [CLINE - length, CLINE], color="black", lw=0.7)
        if tick == int(tick):
            ax.text(x(tick), CLINE - 0.15, str(int(tick)), ha="center", va="bottom", fontsize=10)
    ax.text(WIDTH / 2, 0.05, "Average rank", ha="center", va="top", fontsize=12)
    for i, (name, rank) in enumerate(zip(names, ranks, strict=True)):
        left = i < half
        row = label_top + 0.25 * (i if left else m - 1 - i)
        end = TEXTSPACE - 0.1 if left else WIDTH - TEXTSPACE + 0.1
        ax.plot([x(rank), x(rank), end], [CLINE, row, row], color="black", lw=0.7)
        ax.text(
            end + (-0.05 if left else 0.05),
            row,
            f"{name} ({rank:.2f})",
            ha="right" if left else "left",
            va="center",
            fontsize=9,
        )
    for (first, last), y in zip(cd.bars, heights, strict=True):
        ax.plot(
            [x(ranks[first]) - 0.05, x(ranks[last]) + 0.05],
            [y, y],
            color="black",
            lw=3,
            solid_capstyle="round",
            gid="clique",
        )
    footer = f"{title} · {cd.voters} groups"
    if not cd.tested:
        footer += f"\nFriedman p = {cd.friedman_p:.3g} ≥ α = {cd.alpha}: no pairwise tests"
    ax.text(WIDTH / 2, height - 0.05, footer, ha="center", va="bottom", fontsize=8)
    return figure
