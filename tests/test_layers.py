"""The package's layers: method < fms < study < analysis < deploy, helpers at the top importing
them. Every `imprint` import (deferred ones inside functions too) points to its own layer or one
below, and the module-level imports have no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import in_fresh_process

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = ["method", "fms", "study", "analysis", "deploy"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted((SRC / "imprint").rglob("*.py"))}


def _imports(path: Path, module: str) -> list[tuple[str, bool]]:
    """(imported imprint module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(module.split(".")[: -node.level] + ([base] if base else []))
            # `from imprint.x import y` imports y's module where y is one, else x.
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        found += [(n, id(node) in top) for n in names if n.split(".")[0] == "imprint"]
    return found


def _layer(module: str) -> int | None:
    """Index in LAYERS, or None for the top-level helpers and the package itself."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) >= 2 and parts[1] in LAYERS else None


def test_every_module_sits_in_a_layer_or_is_a_small_helper():
    helpers = sorted(m for m in MODULES if _layer(m) is None and m.count(".") == 1)
    assert helpers == ["imprint.__main__", "imprint.environment", "imprint.io", "imprint.progress"]
    assert {m.split(".")[1] for m in MODULES if m.count(".") >= 1} >= set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_or_sideways(module):
    own = _layer(module)
    for target, _ in _imports(MODULES[module], module):
        if target == "imprint":  # the version string and the lazy public names
            continue
        theirs = _layer(target)
        if own is None:
            entry = module in ("imprint", "imprint.__main__")  # the package and its command line
            assert entry or theirs is None, f"helper {module} imports {target}"
        else:
            assert theirs is None or theirs <= own, (
                f"{module} ({LAYERS[own]}) imports {target} ({LAYERS[theirs]}), a layer above"
            )


def test_no_import_cycles():
    graph = {
        m: {t for t, at_top in _imports(p, m) if at_top and t in MODULES and t != m}
        for m, p in MODULES.items()
    }
    # A package imports its own sub-modules on purpose (figures/__init__); the reverse is a cycle.
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_the_layering_test_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from imprint.analysis import stats\n")
    (target,) = _imports(bad, "imprint.method.bad")
    assert target == ("imprint.analysis.stats", False)
    assert _layer("imprint.method.bad") < _layer(target[0])


# What a sweep or NC1 job and the workflow's planning load: PyTorch and pandas, not the libraries
# other steps need (each a second or more of every such process's start-up).
ELSEWHERE = ("sklearn", "scipy", "lightning", "torchvision", "timm", "matplotlib", "seaborn")


@pytest.mark.parametrize(
    "modules",
    [
        ["imprint.io", "imprint.study.experiments"],  # workflow/scripts/sweep_shard.py
        ["imprint.method.collapse", "imprint.study.tasks"],  # workflow/scripts/nc1.py
        ["imprint.study.config", "imprint.study.continual", "imprint.study.cost"],  # planning
    ],
)
def test_sweeps_and_planning_import_only_what_they_use(modules):
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint(*sys.modules)"
    loaded = in_fresh_process(code).split()
    assert {name.split(".")[0] for name in loaded} & set(ELSEWHERE) == set()
