"""Every figure's table against its definition (PAPER.md §D), recomputed from raw runs with
plain loops, and the CD diagram's layout."""

from __future__ import annotations

import itertools

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.legend import Legend

from imprint.analysis.cd_diagram import axis_range, draw_cd_diagram, rank_position
from imprint.analysis.figures import collapse as collapse_figures
from imprint.analysis.figures import fewshot, k_sweep, timing
from imprint.analysis.figures.common import save_figure
from imprint.analysis.figures.registry import FIGURES, Inputs, draw
from imprint.analysis.stats import critical_difference
from tests.workflow_runs import ROOT

matplotlib.use("Agg")
PIPELINE = {
    "norm_pre": "l2", "norm_post": "l2", "norm_inf": "l2", "agg": "max",
    "distance": "inner_product", "weighting": "uniform", "m": -1, "fewshot": -1, "task": "all",
}  # fmt: skip


def _runs(rows: list[dict], rng: np.random.Generator, seeds=(1, 2, 3)) -> pd.DataFrame:
    table = pd.DataFrame([{**PIPELINE, **row, "seed": s} for row in rows for s in seeds])
    table["accuracy"] = rng.uniform(40, 100, len(table)).round(1)
    table["gen_time_s"] = rng.uniform(0, 2, len(table))
    return table


def _merged_runs(rng) -> pd.DataFrame:
    """k-means at k = 1..4 on ImageNet remaps d ∈ {1, 2} × r ∈ {0, 1, 2} and on MNIST."""
    rows = [
        {
            "fm": fm,
            "dataset": "imagenet",
            "mapping": f"imagenet_merge_d{d}_r{r}",
            "gen": "kmeans",
            "k": k,
        }
        for fm in ("resnet18", "vit_b_16")
        for d in (1, 2)
        for r in range(3)
        for k in range(1, 6)
    ] + [
        {"fm": fm, "dataset": "mnist", "mapping": "none", "gen": "kmeans", "k": k}
        for fm in ("resnet18", "vit_b_16")
        for k in range(1, 6)
    ]
    return _runs(rows, rng)


def _collapse_of(runs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """NC1 of each (FM, data set, mapping) of ``runs`` on both splits (PAPER.md §D.6: Fig. 12
    takes ImageNet's val split, ``test``, and the other data sets' training split)."""
    keys = runs[["fm", "dataset", "mapping"]].drop_duplicates()
    return pd.concat(
        [
            keys.assign(split=split, task="all").assign(
                **{m: rng.uniform(0.1, 5, len(keys)) for m in collapse_figures.COLLAPSE_METRICS}
            )
            for split in ("train", "test")
        ],
        ignore_index=True,
    )


def test_fig12_gain_is_joined_per_seed_averaged_over_seeds_then_over_remaps():
    rng = np.random.default_rng(0)
    runs = _merged_runs(rng)
    collapse = _collapse_of(runs, rng)
    points = collapse_figures.fig12_points(runs, collapse, "nc1")
    for _, point in points.iterrows():
        if point["dataset"] == "imagenet":
            mappings = [f"imagenet_merge_d{point['d']}_r{r}" for r in range(3)]
        else:
            mappings = ["none"]
        gains, nc1 = [], []
        for mapping in mappings:
            mine = runs[(runs["fm"] == point["fm"]) & (runs["mapping"] == mapping)]
            per_seed = [
                mine[(mine["seed"] == s) & (mine["k"] == 5)]["accuracy"].item()
                - mine[(mine["seed"] == s) & (mine["k"] == 1)]["accuracy"].item()
                for s in (1, 2, 3)
            ]
            gains.append(sum(per_seed) / 3)
            split = "test" if point["dataset"] == "imagenet" else "train"
            mine = collapse[(collapse["fm"] == point["fm"]) & (collapse["mapping"] == mapping)]
            nc1.append(mine[mine["split"] == split]["nc1"].item())
        assert point["gain"] == pytest.approx(sum(gains) / len(gains))
        assert point["nc1"] == pytest.approx(sum(nc1) / len(nc1))
    assert len(points) == 2 * 2 + 2  # per FM: d = 1, d = 2 (ImageNet) and MNIST
    stats = collapse_figures.fig12_statistics(points, "nc1").set_index("name")
    x, y = np.log10(points["nc1"]), points["gain"]
    assert stats.at["r2", "value"] == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)


def test_fig10_median_band_and_curves():
    rng = np.random.default_rng(1)
    rows = [
        {
            "fm": "resnet18",
            "dataset": "mnist",
            "mapping": "none",
            "gen": "kmeans",
            "k": k,
            "fewshot": n,
        }
        for n in (1, 2, 5, 10)
        for k in sorted({min(K, n) for K in (1, 5)})
    ] + [
        {
            "fm": "resnet18",
            "dataset": "mnist",
            "mapping": "none",
            "gen": "all",
            "k": -1,
            "fewshot": n,
        }
        for n in (1, 2, 5, 10)
    ]
    runs = _runs(rows, rng, seeds=range(5))
    curves = fewshot.fig10_curves(runs)
    assert set(curves["curve"]) == {"k=1", "k=5", "k=n"}  # k = 2 only as 5 clamped to n = 2
    assert curves.loc[curves["curve"] == "k=5", "shots"].tolist() == [5, 10]
    for _, row in curves.iterrows():
        gen, k = ("all", -1) if row["curve"] == "k=n" else ("kmeans", int(row["curve"][2:]))
        values = runs[(runs["gen"] == gen) & (runs["k"] == k) & (runs["fewshot"] == row["shots"])][
            "accuracy"
        ]
        half = 1.96 * np.std(values, ddof=1) / np.sqrt(5)
        assert row["median"] == pytest.approx(np.median(values))
        assert (row["lower"], row["upper"]) == pytest.approx(
            (np.median(values) - half, np.median(values) + half)
        )


def test_fig6_curves_are_seed_medians_forward_filled_down_k():
    rng = np.random.default_rng(2)
    rows = [
        {"fm": "resnet18", "dataset": "cifar10", "mapping": "none", "gen": gen, "k": k}
        for gen, ks in (("kmeans", [1, 2, 5]), ("fps", [1, 5]), ("mean", [1]), ("all", [-1]))
        for k in ks
    ]
    runs = _runs(rows, rng)
    runs = pd.concat([runs, runs.assign(norm_post="none", accuracy=0.0)])  # not Fig. 6's NORM
    curves = k_sweep.fig6_curves(runs).set_index(["gen", "k"])["accuracy"]
    for (gen, k), value in curves.items():
        ran = k if (gen, k) != ("fps", 2) else 1  # fps did not run k = 2: forward-filled
        chosen = runs[(runs["gen"] == gen) & (runs["k"] == ran) & (runs["norm_post"] == "l2")]
        assert value == pytest.approx(np.median(chosen["accuracy"]))
    assert ("all", -1) in curves.index and ("mean", 2) not in curves.index


def test_figA8_takes_the_best_remap_mean_over_k_with_ties_to_the_smallest_k():
    rng = np.random.default_rng(3)
    runs = _merged_runs(rng)
    runs.loc[runs["k"] == 4, "accuracy"] = runs.loc[runs["k"] == 3, "accuracy"].to_numpy()
    curves = k_sweep.figA8_curves(runs)
    kmeans = curves[curves["curve"] == "k-means"]
    imagenet = runs[runs["dataset"] == "imagenet"]
    for _, row in kmeans.iterrows():
        means = {}
        for k in range(1, 6):
            mine = imagenet[(imagenet["fm"] == row["fm"]) & (imagenet["k"] == k)]
            medians = [
                mine[mine["mapping"] == f"imagenet_merge_d{int(row['d'])}_r{r}"][
                    "accuracy"
                ].median()
                for r in range(3)
            ]
            means[k] = np.mean(medians)
        best = min(means, key=lambda k: (-means[k], k))
        assert (row["k"], row["value"]) == (best, pytest.approx(means[best]))
    assert set(curves["curve"]) == {"mean", "k-means"}  # no k-least-squares runs here


def test_fig11a_curves_average_the_remaps_of_each_d(tmp_path):
    rng = np.random.default_rng(4)
    rows = [
        {
            "fm": "resnet18",
            "dataset": "imagenet",
            "mapping": f"imagenet_merge_d{d}_r{r}",
            "split": "test",
        }
        for d in (1, 2)
        for r in range(4)
    ] + [{"fm": "resnet18", "dataset": "mnist", "mapping": "none", "split": "train"}]
    collapse = pd.DataFrame(rows).assign(task="all")
    for metric in collapse_figures.COLLAPSE_METRICS:
        collapse[metric] = rng.uniform(0.1, 5, len(collapse))
    table = collapse_figures.fig11a(collapse, tmp_path / "fig11a.pdf", "nc1_paper")
    curves = table[table["panel"] == "d curves"].set_index("d")
    for d in (1, 2):
        values = collapse[collapse["mapping"].str.startswith(f"imagenet_merge_d{d}_")]["nc1_paper"]
        half = 1.96 * values.std(ddof=1) / 2
        assert curves.loc[d, "value"] == pytest.approx(values.mean())
        assert curves.loc[d, "upper"] == pytest.approx(values.mean() + half)
    strips = table[table["panel"] == "strips"]
    assert strips[["dataset", "value"]].values.tolist() == [
        ["mnist", collapse["nc1_paper"].iloc[-1]]
    ]


def test_gen_time_is_the_seed_median_per_group_and_kls_k1_is_not_least_squares():
    rng = np.random.default_rng(5)
    rows = [
        {
            "fm": "resnet18",
            "dataset": "mnist",
            "mapping": "none",
            "task": task,
            "gen": gen,
            "k": k,
            "norm_pre": pre,
        }
        for task in ("all", "even")
        for gen, k, pre in (
            ("mean", 1, "l2"),
            ("kmeans", 5, "l2"),
            ("ls", 1, "none"),
            ("kls", 1, "none"),
            ("kls", 5, "none"),
        )
    ]
    runs = _runs(rows, rng)
    times = timing.gen_times(runs).set_index(["name", "task"])
    for (name, task), row in times.iterrows():
        gen, k = {
            "mean k1": ("mean", 1),
            "kmeans k5": ("kmeans", 5),
            "kls k1": ("kls", 1),
            "kls k5": ("kls", 5),
        }[name]
        values = runs[(runs["gen"] == gen) & (runs["k"] == k) & (runs["task"] == task)][
            "gen_time_s"
        ]
        assert row["median_s"] == pytest.approx(np.median(values))
        assert row["std_s"] == pytest.approx(np.std(values, ddof=1))


def test_cd_diagram_puts_rank_1_on_the_right_and_draws_one_bar_per_clique(tmp_path):
    rng = np.random.default_rng(6)
    base = rng.normal(size=14)
    voters = pd.DataFrame(
        {"a": base + 2, "b": base + 1, "c": base + 1 + rng.normal(0, 0.01, 14), "d": base}
    )
    cd = critical_difference(voters, 0.05)
    figure = draw_cd_diagram(cd, "test")
    bars = [line for line in figure.axes[0].lines if line.get_gid() == "clique"]
    assert len(bars) == len(cd.bars) == 1
    low, high = axis_range(cd.ranks.to_list(), 4)
    assert (low, high) == (1, 4)
    assert rank_position(1, low, high) > rank_position(4, low, high)
    for first, last in itertools.pairwise([cd.ranks["d"], cd.ranks["a"]]):
        assert rank_position(first, low, high) < rank_position(last, low, high)
    save_figure(figure, tmp_path / "cd.pdf")
    assert (tmp_path / "cd.pdf").stat().st_size > 1000 and (tmp_path / "cd.png").exists()


@pytest.fixture
def drawn(monkeypatch):
    """The figures the figure modules save, kept open for inspection."""
    figures = []
    for module in (k_sweep, collapse_figures):
        monkeypatch.setattr(module, "save_figure", lambda figure, path: figures.append(figure))
    return figures


def test_fig6_grid_gives_each_gen_one_colour_and_one_legend(drawn):
    rng = np.random.default_rng(7)
    rows = [
        {"fm": fm, "dataset": dataset, "mapping": "none", "gen": gen, "k": k}
        for fm in ("resnet18", "vit_b_16")
        for dataset in ("mnist", "cifar10")
        for gen in ("kmeans", "fps", "random")
        for k in (1, 2, 5, 10)
    ]
    k_sweep.fig6(_runs(rows, rng), "fig6.pdf", "grid.pdf", {})
    grid = drawn[1]
    colours = {}
    for ax in grid.axes:
        for line in ax.get_lines():
            colours.setdefault(line.get_label(), set()).add(
                matplotlib.colors.to_hex(line.get_color())
            )
        assert ax.get_legend() is None
    assert all(len(c) == 1 for c in colours.values()) and len(colours) == 3
    assert len(grid.legends) == 1
    assert [ax.get_xlabel() != "" for ax in grid.axes] == [False, False, True, True]


def test_fig11a_keeps_the_papers_axis_and_counts_what_it_leaves_out(drawn, tmp_path):
    rows = [
        {"fm": "resnet18", "dataset": "imagenet", "mapping": f"imagenet_merge_d{d}_r0"}
        for d in range(1, 11)
    ]
    collapse = pd.DataFrame(rows).assign(task="all", split="train")
    for metric in collapse_figures.COLLAPSE_METRICS:
        collapse[metric] = np.arange(1.0, 11.0)  # d = 6..10 lie above 5
    collapse_figures.fig11a(collapse, tmp_path / "fig11a.pdf", "nc1_paper")
    top, bottom = drawn[0].axes
    assert top.get_ylim() == (0, 5) and top.get_ylabel().startswith("NC1")
    assert [t.get_text() for t in top.get_xticklabels()] == ["1", "5", "10"]
    assert any("5 mean(s) above 5" in t.get_text() for t in top.texts)
    assert bottom.get_ylabel() == "NC1"


def test_fig11b_draws_remapped_curves_in_the_top_part_with_a_colour_bar(drawn):
    runs = _merged_runs(np.random.default_rng(8))
    collapse_figures.fig11b(runs, "fig11b.pdf", {"ylims": [[60, 100], [0, 40]]})
    *panels, colour_bar = drawn[0].axes
    top, bottom = panels[0], panels[1]
    assert len(top.get_lines()) > len(bottom.get_lines())  # the d curves: top part only
    assert all(
        line.get_linestyle() == "--" for line in bottom.get_lines() if line.get_label()[0] != "_"
    )
    assert colour_bar.get_ylabel() == "$d$ original classes per task class"
    assert [t.get_text() for t in colour_bar.get_yticklabels()] == ["1", "2"]


def test_figA8_takes_the_configured_y_limits_per_fm(drawn):
    runs = _merged_runs(np.random.default_rng(9))
    k_sweep.figA8(runs, "figA8.pdf", {"fm_ylims": {"vit_b_16": [85, 100]}})
    limits = {ax.get_title(): ax.get_ylim() for ax in drawn[0].axes}
    assert limits["vit_b_16"] == (85, 100) and limits["resnet18"] != (85, 100)


def test_fig12_legends_say_what_filled_and_hollow_markers_are(drawn):
    rng = np.random.default_rng(10)
    runs = _merged_runs(rng)
    collapse_figures.fig12(runs, _collapse_of(runs, rng), "fig12.pdf")
    legends = [c for c in drawn[0].axes[0].get_children() if isinstance(c, Legend)]
    texts = [t.get_text() for legend in legends for t in legend.get_texts()]
    assert "other data sets" in texts and any(t.startswith("imagenet ($d$ in 1") for t in texts)
    assert {"resnet18", "vit_b_16"} <= set(texts)


def test_the_registry_names_every_figure_the_workflow_draws():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    configurable = set(schema["properties"]["figures"]["properties"])
    assert configurable <= set(FIGURES) == {
        "fig6", "fig10", "fig11a", "fig11b", "figA8", "fig12", "collapse_metrics", "gen_time",
    }  # fmt: skip
    with pytest.raises(ValueError, match="no figure named 'fig7'; the figures are fig6, fig10"):
        draw("fig7", Inputs(), {}, {})
