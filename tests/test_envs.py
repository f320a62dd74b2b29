"""Conda environments: every env file parses, every rule that runs code names one, and their pins
are pyproject.toml's; steps outside the project's venv import the checkout's package."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.workflow_runs import ROOT

ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))


def _pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["workflow"]
    return {r.name: r for r in map(Requirement, listed)}


def _pip_requirements(env_file: Path) -> list[Requirement]:
    env = yaml.safe_load(env_file.read_text())
    pip = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    return [Requirement(line) for line in (pip[0] if pip else []) if not line.startswith("-")]


@pytest.fixture(scope="module")
def workflow():
    """The parsed workflow (rules with their directives), as Snakemake's API loads it."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    environ = dict(os.environ)  # parsing sets PYTHONPATH, as for every job
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            snakefile=ROOT / "workflow/Snakefile",
            workdir=ROOT,
        )
        yield workflow_api._workflow  # the parsed rules; Snakemake has no public accessor
    os.environ.clear()
    os.environ.update(environ)


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_files_parse_and_pin_what_pyproject_pins(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert env["channels"] and env["dependencies"]
    assert "python=3.11" in env["dependencies"]
    pinned = _pyproject_requirements()
    for requirement in _pip_requirements(env_file):
        assert requirement.name in pinned, f"{requirement} is not a dependency in pyproject.toml"
        assert requirement.specifier == pinned[requirement.name].specifier, requirement.name


def test_the_compute_env_has_every_runtime_dependency_and_the_report_env_no_torch():
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    compute = {r.name for r in _pip_requirements(ROOT / "envs/imprint.yaml")}
    assert {Requirement(line).name for line in runtime} <= compute
    report = {r.name for r in _pip_requirements(ROOT / "envs/report.yaml")}
    assert not report & {"torch", "torchvision", "lightning"}


def test_the_driver_environment_pins_snakemake_and_its_executors_as_pyproject():
    pinned = _pyproject_requirements()
    driver = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in driver["dependencies"] if isinstance(d, dict))
    requirements = [Requirement(line) for line in pip if not line.startswith("-")]
    assert {r.name for r in requirements} == {n for n in pinned if n.startswith("snakemake")}
    for requirement in requirements:
        assert requirement.specifier == pinned[requirement.name].specifier


@pytest.mark.e2e
def test_every_rule_that_runs_code_names_an_env_file(workflow):
    steps = [rule for rule in workflow.rules if not rule.norun]
    assert len(steps) >= 10
    for rule in steps:
        assert rule.conda_env, f"rule {rule.name} has no conda: directive"
        env_file = (Path(rule.snakefile).parent / rule.conda_env).resolve()
        assert env_file in ENV_FILES, f"rule {rule.name}: {rule.conda_env} is not in envs/"


# How each pinned distribution is imported.
IMPORT_NAMES = {
    "torch": "torch", "torchvision": "torchvision", "lightning": "lightning", "numpy": "numpy",
    "scipy": "scipy", "scikit-learn": "sklearn", "pandas": "pandas", "pyarrow": "pyarrow",
    "scikit-posthocs": "scikit_posthocs", "seaborn": "seaborn", "matplotlib": "matplotlib",
    "tabulate": "tabulate", "networkx": "networkx", "timm": "timm", "pillow": "PIL",
    "numba": "numba", "threadpoolctl": "threadpoolctl",
}  # fmt: skip


# Run first in a subprocess: importing any of {missing} fails, as if it were not installed.
BLOCKING_IMPORTER = """
import importlib, sys

class NotInThisEnv:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {missing!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} in this step's env")

sys.meta_path.insert(0, NotInThisEnv())
"""


def _script_imports(script: Path) -> set[str]:
    tree = ast.parse(script.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.e2e
def test_every_step_imports_only_what_its_env_holds(workflow):
    assert set(IMPORT_NAMES) == set(_pyproject_requirements()) - {
        name for name in _pyproject_requirements() if name.startswith("snakemake")
    }
    steps: dict[Path, list] = {}  # env file -> its rules that run a script
    for rule in workflow.rules:
        if rule.script:
            here = Path(rule.snakefile).parent
            steps.setdefault((here / rule.conda_env).resolve(), []).append(rule)
    assert sum(len(rules) for rules in steps.values()) >= 10
    for env_file, rules in steps.items():  # one interpreter per env: every script's imports
        env = {r.name for r in _pip_requirements(env_file)}
        missing = [IMPORT_NAMES[name] for name in IMPORT_NAMES if name not in env]
        missing.append("snakemake")  # the driver's, in no step's env
        if "lightning" not in env:
            missing.append("yaml")  # PyYAML: the driver's, and lightning's where it is
        imports = {
            f"rule {r.name} ({env_file.name})": sorted(
                _script_imports((Path(r.snakefile).parent / r.script).resolve())
            )
            for r in rules
        }
        code = BLOCKING_IMPORTER.format(missing=missing) + (
            f"for step, names in {imports!r}.items():\n"
            "    for name in names:\n"
            "        try:\n"
            "            importlib.import_module(name)\n"
            "        except ImportError as error:\n"
            "            sys.exit(f'{step}: {error}')\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr


@pytest.mark.e2e
def test_steps_outside_the_venv_import_the_checkouts_package(workflow):
    # -S: no site-packages, so `imprint` can only come from PYTHONPATH, as in a conda env.
    found = subprocess.run(
        [sys.executable, "-S", "-c", "import imprint; print(imprint.__file__)"],
        env={"PYTHONPATH": os.environ["PYTHONPATH"]},
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(found) == ROOT / "src/imprint/__init__.py"


def test_the_source_goes_on_pythonpath_once_and_only_if_it_exists(tmp_path, monkeypatch):
    from imprint.environment import prepend_pythonpath

    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    prepend_pythonpath(tmp_path)
    prepend_pythonpath(tmp_path)
    prepend_pythonpath(tmp_path / "missing")
    assert os.environ["PYTHONPATH"] == os.pathsep.join([str(tmp_path), "/elsewhere"])


def test_blas_threads_sleep_after_a_product_unless_the_environment_says_otherwise(monkeypatch):
    """The shortest thread timeout OpenBLAS takes, unless the environment sets one."""
    from imprint.environment import job_defaults

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    job_defaults()
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "4"
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "20")
    job_defaults()
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "20"


_FAULTS = """
import resource, torch
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = torch.ones(2**24)  # 64 MB, mapped anew by glibc
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
_THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@pytest.mark.skipif(
    not _THP.exists() or "[never]" in _THP.read_text(), reason="no transparent huge pages"
)
def test_large_tensors_are_paged_in_two_megabytes_at_a_time(monkeypatch):
    """A 64 MB tensor faults its 16,384 pages of 4 KB in one by one, unless PyTorch asks for
    huge pages (``job_defaults``, which an environment's own setting overrides): then far fewer
    (about a hundred on an idle machine; the kernel gives huge pages while it has 2 MB runs free,
    and after the suite's heavier tests a third of the faults remained once)."""
    from imprint.environment import job_defaults

    def faults() -> int:
        run = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True)
        return int(run.stdout)

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    job_defaults()
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0" and faults() > 2**14 * 0.9
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE")
    job_defaults()
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1" and faults() < 2**14 / 2
