"""The fixed cost of a workflow job, measured on this machine: what every job pays before it
does any work.

- interpreter: ``python -c pass``;
- imports: each workflow script's imports (its top-level ``import`` lines) in a fresh process;
- Snakemake: a job of a ``script:`` rule that does nothing, from a throw-away workflow of such
  jobs run with ``--cores 1`` (scheduling, the script wrapper, its preamble), per job;
- CUDA context and Lightning's Trainer, where there is a GPU (or ``--device cpu`` for the
  Trainer alone).

Then the embedded default's jobs per rule (a dry run) give its total fixed cost. Each time is
the median of ``--repeats`` runs.

    python benchmarks/bench_jobs.py
    python benchmarks/bench_jobs.py --device cuda
"""

from __future__ import annotations

import argparse
import ast
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host import describe

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow/scripts"
NOOP_JOBS = 8
# The rule that runs each script (rules sharing a script list it once).
RULES = {
    "sweep_shard.py": ["sweep_shard"],
    "embed.py": ["embed"],
    "train_demo_fm.py": ["train_demo_fm"],
    "nc1.py": ["nc1"],
    "gather_tables.py": ["gather_runs", "nc1_table"],
    "cd_diagram.py": ["cd_diagram"],
    "table1.py": ["table1"],
    "figure.py": ["figure", "fig6", "collapse_figure", "fig12", "gen_time"],
    "digits.py": ["digits"],
}


def wall(command: list[str], repeats: int, **kwargs) -> float:
    """Median wall seconds of running ``command`` to completion."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def script_imports(path: Path) -> str:
    """The script's top-level import statements, as code."""
    tree = ast.parse(path.read_text())
    lines = [
        ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    return "\n".join(lines)


def snakemake_job(repeats: int) -> float:
    """Seconds per job of a ``script:`` rule that does nothing, Snakemake's start-up excluded."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "noop.py").write_text("open(snakemake.output[0], 'w').close()\n")
        (folder / "Snakefile").write_text(
            "rule all:\n"
            f"    input: expand('out/{{i}}.txt', i=range(config.get('jobs', {NOOP_JOBS})))\n"
            "rule noop:\n    output: 'out/{i}.txt'\n    script: 'noop.py'\n"
        )
        command = [sys.executable, "-m", "snakemake", "--cores", "1", "--forceall", "--quiet"]
        many = wall(command, repeats, cwd=folder)
        none = wall([*command, "--config", "jobs=0"], repeats, cwd=folder)
    return (many - none) / NOOP_JOBS


def in_process(code: str, repeats: int) -> float:
    """Median seconds of ``code``'s timed part (``start``..end) in fresh processes."""
    program = f"import time\n{code}\nprint(time.perf_counter() - start)"
    times = [
        float(subprocess.run([sys.executable, "-c", program], check=True, capture_output=True,
                             text=True).stdout.split()[-1])
        for _ in range(repeats)
    ]  # fmt: skip
    return statistics.median(times)


def planned_jobs() -> dict[str, int]:
    """Jobs per rule of the embedded default, from a dry run of everything."""
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "--forceall", "--directory", tmp,
             "--snakefile", str(ROOT / "workflow/Snakefile"), "--configfile",
             str(ROOT / "config/config.yaml")],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
    stats = result.stdout.split("Job stats:")[1].split("\n\n")[0]
    rows = re.findall(r"^(\w+)\s+(\d+)$", stats, re.M)
    return {rule: int(n) for rule, n in rows if rule not in ("all", "total")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    args = parser.parse_args()

    interpreter = wall([sys.executable, "-c", "pass"], args.repeats)
    job = snakemake_job(args.repeats)
    print(f"machine: {describe()}")  # the imports below are timed in fresh processes
    print(f"python {sys.version.split()[0]}; the median of {args.repeats} runs each")
    print(f"interpreter start-up: {interpreter:.2f} s; Snakemake per script job: {job:.2f} s")
    fixed = {}
    for script, rules in RULES.items():
        code = script_imports(SCRIPTS / script)
        seconds = wall([sys.executable, "-c", code], args.repeats, cwd=ROOT)
        print(f"  {script:<18} imports {seconds:5.2f} s")
        for rule in rules:
            fixed[rule] = job + seconds
    if args.device:
        setup = "import torch, lightning as L\nstart = time.perf_counter()\n"
        if args.device == "cuda":
            cuda = in_process(setup + "torch.zeros(1, device='cuda')", args.repeats)
            print(f"CUDA context: {cuda:.2f} s")
        trainer = in_process(
            setup + f"L.Trainer(accelerator='{args.device}', devices=1, logger=False, "
            "enable_progress_bar=False, enable_checkpointing=False)",
            args.repeats,
        )
        print(f"Lightning Trainer ({args.device}): {trainer:.2f} s")
    jobs = planned_jobs()
    total = sum(n * fixed.get(rule, job) for rule, n in jobs.items())
    count = sum(jobs.values())
    print(f"embedded default: {count} jobs, fixed cost {total:.0f} s in all (one core)")
    for rule, n in sorted(jobs.items(), key=lambda item: -item[1] * fixed.get(item[0], job)):
        print(f"  {rule:<16} {n:3d} jobs x {fixed.get(rule, job):5.2f} s")


if __name__ == "__main__":
    main()
