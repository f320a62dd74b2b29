"""The workflow config after the JSON schema: patterns expanded, ImageNet dropped when there is
no ImageNet, and the references between sections checked."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imprint.fms.fm_spec import check_fms, fm_spec
from imprint.study.catalog import BUILTIN_DATASETS, Catalog
from imprint.study.continual_spec import check_continual
from imprint.study.tasks import expand_mappings, is_builtin_mapping

# What a sweep shard's result depends on, of its experiment: the lists of FMs, data sets,
# mappings and tasks only say which shards there are.
SHARD_KEYS = ("methods", "fewshot", "grid", "rules", "seeds", "time_every_seed")


def shard_spec(experiment: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an experiment that one of its sweep shards depends on (its ``params``, so that
    adding a task or reordering a list reruns no shard that already ran)."""
    return {key: experiment[key] for key in SHARD_KEYS if key in experiment}


# The key under which a sweep job's params hold the shard specs of the experiments that share
# its jobs (``job_spec``).
_SHARED = "jobs_shared_by"


def job_owner(experiments: Mapping[str, Any], name: str) -> str:
    """The experiment whose sweep jobs hold ``name``'s runs: the one it names under
    ``share_jobs_with``, else itself."""
    return experiments[name].get("share_jobs_with", name)


def sweep_group(experiments: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """The experiments whose runs ``owner``'s sweep jobs hold: ``owner`` first, then in config
    order every experiment that shares its jobs."""
    sharing = {n: e for n, e in experiments.items() if e.get("share_jobs_with") == owner}
    return {owner: experiments[owner], **sharing}


def job_spec(experiments: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """What a sweep job of ``owner`` depends on (its ``params``): ``owner``'s ``shard_spec``,
    and under ``jobs_shared_by`` those of the experiments that share its jobs (absent when none
    does, so that an experiment's jobs keep their params when sharing is added elsewhere)."""
    group = sweep_group(experiments, owner)
    spec = shard_spec(group.pop(owner))
    if group:
        spec[_SHARED] = {name: shard_spec(e) for name, e in group.items()}
    return spec


def job_group(owner: str, spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The shard spec of every experiment of a sweep job, by name, from its ``job_spec``."""
    own = {key: value for key, value in spec.items() if key != _SHARED}
    return {owner: own, **spec.get(_SHARED, {})}


def check_sharing(experiments: Mapping[str, Any]) -> None:
    """An experiment that shares another's sweep jobs (``share_jobs_with``) must name one that
    shares none itself, of the same kind (grids or named methods), with the same shards (FMs,
    data sets, mappings, tasks) and sweep setup (``sweep_device``, ``sweep_threads``,
    ``time_every_seed``); raise ``ValueError`` naming the key otherwise."""

    def setup(e: Mapping[str, Any]) -> dict[str, Any]:
        shards = {key: sorted(e[key]) for key in ("fms", "datasets", "mappings", "tasks")}
        kind = {"kind": "methods" if "methods" in e else "grid"}
        timing = {"time_every_seed": bool(e.get("time_every_seed"))}
        device = {key: e.get(key) for key in ("sweep_device", "sweep_threads")}
        return {**kind, **shards, **device, **timing}

    for name, experiment in experiments.items():
        owner = experiment.get("share_jobs_with")
        if owner is None:
            continue
        where = f"experiments.{name}.share_jobs_with"
        if owner not in experiments or owner == name:
            others = sorted(set(experiments) - {name})
            raise ValueError(f"{where} names {owner!r}, not another experiment; defined: {others}")
        if "share_jobs_with" in experiments[owner]:
            raise ValueError(
                f"{where} names {owner!r}, which shares the jobs of "
                f"{experiments[owner]['share_jobs_with']!r}; name that one"
            )
        mine, theirs = setup(experiment), setup(experiments[owner])
        for key in mine:
            if mine[key] != theirs[key]:
                raise ValueError(
                    f"{where}: {name} and {owner} differ in {key} ({mine[key]} against "
                    f"{theirs[key]}); experiments that share sweep jobs need the same kind, "
                    "shards and sweep setup"
                )


def as_list(value: str | list[str]) -> list[str]:
    """A config entry that names one item or a list of them, as a list."""
    return [value] if isinstance(value, str) else list(value)


def canonical(value: Any) -> Any:
    """A config slice with keys sorted at every level, so reordering keys in a config file does
    not look like a change of params (which would rerun jobs)."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def image_source(dataset: str, datasets: Mapping[str, Any]) -> str:
    """Where the embedding step reads a data set's images (``datasets``: the config's section):
    ``folder``, your own image folder (each file an input); ``imagenet``, ImageNet's folders
    under ``imagenet_root``; ``arrays``, the decoded ``.npz`` files of a bundled or downloaded
    data set."""
    if datasets.get(dataset, {}).get("folder"):
        return "folder"
    return "imagenet" if dataset == "imagenet" else "arrays"


def collapse_entries(config: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Every (FM, data set, split, mapping, task) the config's collapse blocks ask NC1 of, once
    each, in the blocks' order (the order of results/tables/nc1.csv)."""
    entries = [
        entry
        for block in config["collapse"]
        for entry in itertools.product(
            block["fms"],
            block["datasets"],
            as_list(block.get("split", "train")),
            block["mappings"],
            block["tasks"],
        )
    ]
    return list(dict.fromkeys(entries))


def fig12_split(dataset: str) -> str:
    """The NC1 split Fig. 12 pairs with a data set's gain (PAPER.md §D.6): ImageNet's val split
    (``test``), the training split of every other data set."""
    return "test" if dataset == "imagenet" else "train"


def figure_experiments(entry: str | list[str] | Mapping[str, Any]) -> list[str]:
    """The experiments a ``figures`` entry draws from (the entry, or its ``experiments``)."""
    return as_list(entry["experiments"] if isinstance(entry, Mapping) else entry)


def figure_settings(entry: str | list[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A ``figures`` entry's settings besides its experiments (none for a plain entry)."""
    if not isinstance(entry, Mapping):
        return {}
    return {key: value for key, value in entry.items() if key != "experiments"}


def _without_imagenet(config: dict[str, Any]) -> list[str]:
    """Drop ImageNet from every experiment and NC1 block, and what is left empty by that; return
    what was dropped."""
    dropped = []
    for name, experiment in list(config["experiments"].items()):
        if "imagenet" in experiment["datasets"]:
            experiment["datasets"].remove("imagenet")
            if not experiment["datasets"]:
                del config["experiments"][name]
                dropped.append(f"experiment {name}")
    blocks = config["collapse"]
    for block in blocks:
        if "imagenet" in block["datasets"]:
            block["datasets"].remove("imagenet")
            dropped.append("ImageNet NC1")
    config["collapse"] = [block for block in blocks if block["datasets"]]
    remaining = set(config["experiments"])
    views = config["statistics"].get("cd_diagrams", {})
    for name, view in list(views.items()):
        kept = [e for e in as_list(view["experiment"]) if e in remaining]
        if kept:
            view["experiment"] = kept
        else:
            del views[name]
    table1 = config["statistics"].get("table1")
    if table1 and table1["view"] not in views:
        del config["statistics"]["table1"]
    for figure, entry in list(config["figures"].items()):
        kept = [e for e in figure_experiments(entry) if e in remaining]
        if kept:
            config["figures"][figure] = {**figure_settings(entry), "experiments": kept}
        else:
            del config["figures"][figure]
    return list(dict.fromkeys(dropped))


def resolve_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The config the workflow plans from, and notes for the user.

    Mapping patterns (``imagenet_merge_d*_r*``) are expanded. Without ``imagenet_root``, every
    ImageNet part is skipped (experiments, NC1 blocks, the figures and views left without
    experiments), with a note that says so. References between sections are then checked."""
    resolved = copy.deepcopy(dict(config))
    resolved.pop("anchors", None)
    for section in (*resolved["experiments"].values(), *resolved["collapse"]):
        section["mappings"] = expand_mappings(section["mappings"])
    notes = []
    if not resolved.get("imagenet_root"):
        dropped = _without_imagenet(resolved)
        if dropped:
            notes.append(
                f"ImageNet skipped ({', '.join(dropped)}): imagenet_root is not set; set it to "
                "a folder with train/ and val/ (one sub-folder per class) to run these"
            )
    check_references(resolved)
    check_sharing(resolved["experiments"])
    return resolved, notes


def kept_models(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``keep`` section by file name, defaults filled in (mapping ``none``, task ``all``,
    seed 0, false rejection 0.05; name ``<method>_<fm>_<dataset>_<mapping>_<task>``)."""
    kept: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(config.get("keep") or []):
        entry = {"mapping": "none", "task": "all", "seed": 0, "false_rejection": 0.05, **entry}
        name = entry.pop("name", None) or "_".join(
            str(entry[key]) for key in ("method", "fm", "dataset", "mapping", "task")
        )
        if name in kept:
            raise ValueError(
                f"keep[{i}] is named {name!r} like an earlier entry; give one of them a name"
            )
        kept[name] = entry
    return kept


def check_references(config: Mapping[str, Any]) -> None:
    """Every FM, experiment, view and named method a section names must be defined, and every
    demo FM must have its training settings; raise ``ValueError`` naming the offending key and
    the defined values otherwise."""
    fms = set(config["fms"])
    experiments = set(config["experiments"])

    def need(kind: str, names: set[str], where: str, defined: set[str]) -> None:
        missing = sorted(names - defined)
        if missing:
            raise ValueError(
                f"{where} names undefined {kind} {missing}; defined: {sorted(defined)}"
            )

    for name, entry in config["fms"].items():
        fm_spec(name, entry)
    datasets = set(BUILTIN_DATASETS) | set(config.get("datasets", {}))
    datasets |= {d for e in config["fms"].values() for d in e.get("embeddings", {})}
    mappings = set(config.get("mappings", {}))
    sections = [(f"experiments.{n}", e) for n, e in config["experiments"].items()]
    sections += [(f"collapse[{i}]", block) for i, block in enumerate(config["collapse"])]
    sections += _keep_sections(config)
    for where, section in sections:
        need("FM(s)", set(section["fms"]), f"{where}.fms", fms)
        need("data set(s)", set(section["datasets"]), f"{where}.datasets", datasets)
        own = {m for m in section["mappings"] if not is_builtin_mapping(m)}
        need("mapping(s)", own, f"{where}.mappings", mappings)
        demos = [fm for fm in section["fms"] if fm.startswith("demo_")]
        folders = [d for d in section["datasets"] if d in config.get("datasets", {})]
        if demos and folders:
            raise ValueError(
                f"{where} pairs demo CNN(s) {demos} with image folder(s) {folders}; demo CNNs "
                "embed 8x8 digits only: use a torchvision or timm FM for your images"
            )
    for name, view in config["statistics"].get("cd_diagrams", {}).items():
        need(
            "experiment(s)",
            set(as_list(view["experiment"])),
            f"statistics.cd_diagrams.{name}",
            experiments,
        )
    for figure, entry in config["figures"].items():
        need("experiment(s)", set(figure_experiments(entry)), f"figures.{figure}", experiments)
    demos = {fm for fm in fms if fm.startswith("demo_")}
    need("demo FM(s)", demos, "fms", set(config.get("demo_fms", {})))
    table1 = config["statistics"].get("table1")
    if table1:
        views = set(config["statistics"].get("cd_diagrams", {}))
        need("CD view", {table1["view"]}, "statistics.table1.view", views)
        ran = {
            m
            for name in as_list(config["statistics"]["cd_diagrams"][table1["view"]]["experiment"])
            for m in config["experiments"][name].get("methods", [])
        }
        need("method(s)", set(table1.get("extra", [])), "statistics.table1.extra", ran)


def _keep_sections(config: Mapping[str, Any]) -> list[tuple[str, dict[str, list[str]]]]:
    """The ``keep`` entries as one-element sections, for the checks experiments get."""
    return [
        (f"keep.{name}", {"fms": [e["fm"]], "datasets": [e["dataset"]],
                          "mappings": [e["mapping"]], "tasks": [e["task"]]})
        for name, e in kept_models(config).items()
    ]  # fmt: skip


def check_tasks(config: Mapping[str, Any], catalog: Catalog) -> None:
    """Every (data set, mapping, task) an experiment or NC1 block names must keep at least two
    classes of every FM's view of the data; raise ``ValueError`` naming the section otherwise.
    Your own data sets, arrays and label mappings are read (and checked) on the way."""
    sections = [(f"experiments.{n}", e) for n, e in config["experiments"].items()]
    sections += [(f"collapse[{i}]", block) for i, block in enumerate(config["collapse"])]
    sections += _keep_sections(config)
    for where, section in sections:
        for fm, dataset, mapping, task in itertools.product(
            section["fms"], section["datasets"], section["mappings"], section["tasks"]
        ):
            classes = catalog.task_classes(fm, dataset, mapping, task)
            if len(classes) < 2:
                raise ValueError(
                    f"{where}: task {task!r} keeps {len(classes)} class(es) {classes} of "
                    f"{dataset} after mapping {mapping!r}; a task needs at least two"
                )


def check_models(config: Mapping[str, Any], record: Path | None = None) -> None:
    """Every torchvision or timm FM must name a model (and weights tag) its library has
    (``check_fms``: those ``record`` lists as checked under the installed library are not
    looked up again)."""
    check_fms((fm_spec(name, entry) for name, entry in config["fms"].items()), record)


def _configurations(config: Mapping[str, Any]) -> dict[str, Any]:
    """Each experiment's distinct configurations (seeds aside), checking that every FM's grid
    expands to at least one run."""
    import pandas as pd

    from imprint.study.grid import expand_grid
    from imprint.study.methods import NAMED_METHODS

    tables = {}
    for name, experiment in config["experiments"].items():
        if "methods" in experiment:
            rows = [NAMED_METHODS[m] for m in dict.fromkeys(experiment["methods"])]
            tables[name] = pd.DataFrame(rows)
            continue
        rules = experiment.get("rules", "spec")
        for fm in experiment["fms"]:
            grid = {**experiment["grid"], "lambda_reg": [config["fms"][fm]["lambda_reg"]]}
            try:
                tables[name] = expand_grid(grid, rules=rules)
            except ValueError as error:
                raise ValueError(f"experiments.{name}.grid: {error}") from None
            if tables[name].empty:
                raise ValueError(
                    f"experiments.{name}.grid expands to no run under rules {rules!r} (e.g. mnn "
                    "needs a distance other than inner_product and m >= 1); check agg, distance "
                    "and m"
                )
    return tables


def _groups(experiment: Mapping[str, Any]) -> int:
    return (
        len(experiment["fms"])
        * len(experiment["datasets"])
        * len(experiment["mappings"])
        * len(experiment["tasks"])
    )


def _missing_for_figure(figure: str, runs: Any, config: Mapping[str, Any], used: list[str]) -> str:
    """What the experiments ``used`` by ``figure`` lack for it, or ''."""
    kmeans = runs[runs["gen"] == "kmeans"]
    if figure == "fig6":
        swept = runs[~runs["gen"].isin(["mean", "ls", "all"])].groupby("gen")["k"].nunique()
        return "" if (swept >= 2).any() else "no GEN runs at two or more k"
    if figure == "fig10":
        return "" if kmeans["fewshot"].nunique() >= 2 else "no k-means at two or more shots n"
    if figure == "fig11b":
        return "" if kmeans["k"].nunique() >= 2 else "no k-means at two or more k"
    if figure == "figA8":
        swept = runs[runs["gen"].isin(["kmeans", "kls"])].groupby("gen")["k"].nunique()
        return "" if (swept >= 2).any() else "no k-means or k-least-squares at two or more k"
    if figure == "gen_time":
        timed = {"mean", "kmeans", "kls", "ls"} & set(runs["gen"])
        if not timed:
            return "no runs of mean, k-means or k-least-squares"
        untimed = [n for n in used if not config["experiments"][n].get("time_every_seed")]
        return f"{untimed} do not set time_every_seed: true" if untimed else ""
    if figure == "fig12":
        if not {1, 5} <= set(kmeans["k"]):
            return "no k-means at both k = 1 and k = 5"
        measured = set(collapse_entries(config))
        for name in used:
            e = config["experiments"][name]
            if "all" not in e["tasks"]:
                return f"experiment {name} has no task 'all'"
            for fm in e["fms"]:
                for dataset in e["datasets"]:
                    for mapping in e["mappings"]:
                        split = fig12_split(dataset)
                        if (fm, dataset, split, mapping, "all") not in measured:
                            return (
                                f"no NC1 of ({fm}, {dataset}, {mapping}, all) on the {split} "
                                "split in collapse"
                            )
    return ""


def check_experiments(
    config: Mapping[str, Any], catalog: Catalog | None = None, checked_fms: Path | None = None
) -> None:
    """Every FM's model must exist; every task must keep two classes or more of its data;
    every grid must expand to at least one run for every FM; every view of the statistics
    and Table 1 must compare at least two configurations over at least two groups; every
    figure's experiments must hold what it draws; every class-incremental study must run
    (``check_continual``). Raise ``ValueError`` naming the key otherwise. ``catalog`` (default:
    a new one of ``config``) reads your own files; the planner passes the one it plans with, so
    each file is read once; ``checked_fms``, the record of FMs checked before
    (``check_models``). (Imports pandas, and a torchvision or timm FM's library unless recorded.)"""
    import pandas as pd

    check_models(config, checked_fms)
    check_tasks(config, catalog or Catalog(config))
    tables = _configurations(config)
    for view, spec in config["statistics"].get("cd_diagrams", {}).items():
        used = as_list(spec["experiment"])
        if spec["method"] == ["method"]:  # the named methods: only their experiments count
            used = [e for e in used if "methods" in config["experiments"][e]]
            shown, what = (
                len({m for e in used for m in config["experiments"][e]["methods"]}),
                "method",
            )
        else:
            shown, what = sum(len(tables[e]) for e in used), "configuration"
        groups = max((_groups(config["experiments"][e]) for e in used), default=0)
        if shown < 2 or groups < 2:
            raise ValueError(
                f"statistics.cd_diagrams.{view} compares {shown} {what}(s) over {groups} "
                "group(s) (FM × data set × mapping × task); ranks and tests need at least two "
                "of each"
            )
    for figure, entry in config["figures"].items():
        used = figure_experiments(entry)
        runs = pd.concat([tables[e] for e in used], ignore_index=True)
        missing = _missing_for_figure(figure, runs, config, used)
        if missing:
            raise ValueError(
                f"figures.{figure} draws from {used}, which have {missing}; point it at "
                "experiments that do"
            )
    if "continual" in config:
        known = catalog or Catalog(config)
        for name, study in config["continual"].items():
            check_continual(name, study, lambda fm, d: len(known.classes(fm, d).names))


def check_unique_keys(paths: list[str]) -> None:
    """Raise ``ValueError`` if a config file gives one key twice in a mapping (plain YAML keeps
    the last). Needs PyYAML, which the driver's environment has and the steps' need not."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise ValueError(
                        f"{self.name}, line {key_node.start_mark.line + 1}: key {key!r} is "
                        "given twice in one mapping (YAML would silently keep the last); rename "
                        "or merge the two"
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    for path in paths:
        with open(path) as handle:
            yaml.load(handle, Loader=UniqueKeyLoader)


def sweep_setup(config: dict[str, Any], experiment: str) -> tuple[str, int]:
    """Where an experiment's sweep jobs run: the experiment's ``sweep_device`` (else the
    config's, else the CPU) and its ``sweep_threads`` (CPU threads per job, else 1)."""
    e = config["experiments"][experiment]
    device = e.get("sweep_device", config.get("sweep_device", "cpu"))
    return device, int(e.get("sweep_threads", 1))


def check_sweep_device(config: dict[str, Any]) -> None:
    """Stop before any job runs when sweeps are to run on CUDA and this machine has none (for
    runs on this machine; a cluster's GPU nodes are not this machine)."""
    on_cuda = [name for name in config["experiments"] if sweep_setup(config, name)[0] == "cuda"]
    if not on_cuda:
        return
    import torch

    if not torch.cuda.is_available():
        pinned = [n for n in on_cuda if "sweep_device" in config["experiments"][n]]
        where = f" (experiments {', '.join(pinned)} set it themselves)" if pinned else ""
        raise ValueError(
            f"sweep_device is cuda{where}, but PyTorch finds no CUDA GPU on this machine; run "
            "with --config sweep_device=cpu, on a machine with a GPU, or through a cluster "
            "profile (workflow/profiles/slurm or kubernetes) whose GPU nodes run the sweeps"
        )


def continual_ranked(study: dict[str, Any]) -> bool:
    """Whether the study's methods can be ranked in a CD diagram: two or more of them, over two
    or more (data set, FM, order) groups."""
    groups = len(study["datasets"]) * len(study["fms"]) * len(study["orders"])
    return len(set(study["methods"])) >= 2 and groups >= 2
