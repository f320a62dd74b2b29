import dataclasses
import functools
import itertools
import math
from pathlib import Path

from snakemake.utils import min_version, validate

from snakemake.logging import logger

from imprint.study.config import (
    as_list,
    canonical,
    check_experiments,
    collapse_entries,
    check_sweep_device,
    check_unique_keys,
    continual_ranked,
    figure_experiments,
    figure_settings,
    image_source,
    job_owner,
    job_spec,
    kept_models,
    resolve_config,
    sweep_group,
    sweep_setup,
)
from imprint.environment import job_defaults, prepend_pythonpath
from imprint.fms.fm_spec import PAPER_FMS, checked_record, fm_spec
from imprint.study.tasks import member_datasets

min_version("9.0")

# Steps run with `--sdm conda` get the pinned dependencies from envs/ and the imprint package
# from this checkout's src/ (a checkout-relative path cannot go into a conda env file).
prepend_pythonpath(Path(workflow.basedir).parent / "src")
# The steps inherit these: their NumPy BLAS threads do not spin on the cores of their PyTorch
# threads, and their large tensors are paged in 2 MB at a time.
job_defaults()

check_unique_keys(workflow.configfiles)
validate(config, schema="../schemas/config.schema.yaml")
_resolved, _notes = resolve_config(config)
config.clear()
config.update(_resolved)
for _note in _notes:
    logger.warning(_note)


@functools.cache
def catalog():
    """What the config's FMs and data sets are, and their sizes (``imprint.study.catalog``)."""
    from imprint.study.catalog import Catalog

    return Catalog(config)


if workflow.is_main_process:  # jobs on cluster nodes were checked when planned
    check_experiments(config, catalog(), checked_record())


wildcard_constraints:
    split="train|test",
    experiment="[A-Za-z0-9_]+",
    view="[A-Za-z0-9]+",
    fm="[a-z0-9_]+",
    dataset="[a-z0-9]+",
    mapping="[a-z0-9_]+",
    task="[a-z]+",
    pack="[0-9]+",


def embeddings(fm, dataset, split, suffix=".npy"):
    """The embeddings files a (possibly composite) data set's split reads; with ``suffix``
    ``.labels.npy`` or ``.manifest.json``, the files beside them."""
    return [
        f"results/embeddings/{fm}/{m}/{split}{suffix}" for m in member_datasets(dataset)
    ]


def embedding_files(data, name):
    """Named inputs: the embeddings of each (FM, data set, split) in ``data``, named
    ``name(fm, dataset, split)``, and under ``beside`` their labels and manifests (declared so
    that remote storage brings them along)."""
    named = {
        name(fm, dataset, split): embeddings(fm, dataset, split)
        for fm, dataset, split in data
    }
    named["beside"] = [
        path
        for fm, dataset, split in data
        for suffix in (".labels.npy", ".manifest.json")
        for path in embeddings(fm, dataset, split, suffix)
    ]
    return named


def split_embeddings(wildcards):
    """The embeddings of the job's FM, data set and split (named by the split)."""
    data = [(wildcards.fm, wildcards.dataset, wildcards.split)]
    return embedding_files(data, lambda fm, dataset, split: split)


def shards(experiment):
    """The run tables that hold an experiment's runs: one per sweep job (``sweep_packs``) of
    the experiment, or of the one whose jobs it shares (``share_jobs_with``)."""
    owner = job_owner(config["experiments"], experiment)
    count = len(sweep_packs(owner))
    return [f"results/runs/{owner}/pack{i}.parquet" for i in range(1, count + 1)]


@functools.cache
def job_budget(experiment):
    """The budget an experiment's sweep jobs are priced by: on its device, with its threads."""
    from imprint.study.cost import load_budget

    budget = config["job_budget"]
    device, threads = sweep_setup(config, experiment)
    return load_budget(budget["minutes"], budget["rates"], device, threads)[0]


@functools.cache
def sweep_packs(experiment):
    """An experiment's sweep jobs, which also hold the runs of the experiments that share them
    (``imprint.study.config.sweep_group``): consecutive whole shards (in ``shard_keys`` order)
    share a job within the job budget, a shard the budget splits has a job per part
    (``imprint.study.experiments.experiment_packs``); each job lists ((FM, data set, mapping,
    task), part, of, seconds)."""
    from imprint.study.experiments import experiment_packs

    group = sweep_group(config["experiments"], experiment)
    lambdas = {fm: config["fms"][fm]["lambda_reg"] for fm in group[experiment]["fms"]}
    return experiment_packs(group, lambdas, job_budget(experiment), catalog())


def _sweep_pack(wildcards):
    owner = job_owner(config["experiments"], wildcards.experiment)
    if owner != wildcards.experiment:
        raise ValueError(
            f"{wildcards.experiment} shares the sweep jobs of {owner} (share_jobs_with): its "
            f"runs are in results/runs/{owner}/pack*.parquet; ask for "
            f"results/runs/{wildcards.experiment}.parquet"
        )
    packs = sweep_packs(wildcards.experiment)
    if not 1 <= int(wildcards.pack) <= len(packs):
        raise ValueError(
            f"pack{wildcards.pack}: the job budget makes {len(packs)} sweep job(s) of "
            f"{wildcards.experiment}; ask for results/runs/{wildcards.experiment}.parquet"
        )
    return packs[int(wildcards.pack) - 1]


def sweep_inputs(wildcards):
    """The embeddings a sweep job reads: both splits of each FM and data set of its shards,
    named ``<split>_<fm>_<dataset>``."""
    pairs = dict.fromkeys(key[:2] for key, *_ in _sweep_pack(wildcards))
    data = [
        (fm, dataset, split) for fm, dataset in pairs for split in ("train", "test")
    ]
    return embedding_files(data, lambda fm, dataset, split: f"{split}_{fm}_{dataset}")


def sweep_members(wildcards):
    """What a sweep job needs to find its runs again, per shard
    (``imprint.study.experiments.pack_members``)."""
    from imprint.study.experiments import pack_members

    lambdas = {fm: spec["lambda_reg"] for fm, spec in config["fms"].items()}
    budget = job_budget(wildcards.experiment)
    return pack_members(_sweep_pack(wildcards), lambdas, budget, catalog())


def sweep_minutes(wildcards):
    """A sweep job's declared runtime: twice its budget, or twice its projection if longer
    (a proxy set whose runs alone exceed the budget is never split). Cluster jobs, already
    submitted, skip the projection."""
    minutes = config["job_budget"]["minutes"]
    if not workflow.is_main_process:
        return math.ceil(2 * minutes)
    seconds = sum(s for *_, s in _sweep_pack(wildcards))
    return math.ceil(2 * max(minutes, seconds / 60))


def collapse_files():
    """One NC1 table per FM, data set and split: its job reads the embeddings once for all of
    the split's mappings and tasks."""
    files = dict.fromkeys(entry[:3] for entry in collapse_entries(config))
    return [
        f"results/collapse/{fm}/{dataset}/{split}.csv" for fm, dataset, split in files
    ]


def collapse_tasks(wildcards):
    """The mappings and tasks NC1 is asked of on one FM's data set split, each with your own
    mapping's label table (None for built-ins)."""
    here = (wildcards.fm, wildcards.dataset, wildcards.split)
    return [
        {
            "mapping": mapping,
            "task": task,
            "label_table": catalog().label_table(mapping, *here[:2]),
        }
        for *key, mapping, task in collapse_entries(config)
        if tuple(key) == here
    ]


def runs_of(experiments):
    return [f"results/runs/{name}.parquet" for name in as_list(experiments)]


def figure_runs(figure):
    return runs_of(figure_experiments(config["figures"][figure]))


def figure_params(figure):
    return canonical(figure_settings(config["figures"][figure]))


def table1_view():
    return config["statistics"]["cd_diagrams"][config["statistics"]["table1"]["view"]]


def final_targets():
    figures = config["figures"]
    targets = runs_of(list(config["experiments"]))
    targets += ["results/tables/nc1.csv", "results/figures/fig11a.pdf"]
    targets += ["results/figures/collapse_metrics.pdf"]
    targets += expand(
        "results/figures/cd_{view}.pdf",
        view=config["statistics"].get("cd_diagrams", {}),
    )
    if "table1" in config["statistics"]:
        targets += expand("results/tables/table1.{ext}", ext=["md", "csv", "tex"])
    targets += [f"results/figures/{f}.pdf" for f in figures]
    if config.get("published"):
        targets += ["results/tables/paper_comparison.md"]
    targets += expand(
        "results/models/{model}.{ext}", model=kept_models(config), ext=["pt", "json"]
    )
    for name, study in config.get("continual", {}).items():
        targets += [
            f"results/tables/continual/{name}.md",
            f"results/figures/continual/{name}.pdf",
        ]
        if continual_ranked(study):
            targets += [f"results/figures/continual_cd/{name}.pdf"]
    return targets


def gpus(wanted):
    """A rule's ``gpu`` resource: 1, or None (undeclared) for a CPU job. Undeclared rather than
    0: the Kubernetes executor treats any declared ``gpu`` as a GPU request."""
    return 1 if wanted else None


def sweep_gpus(shared):
    """A sweep job's ``gpu`` (``shared=False``) or ``gpu_share`` (``shared=True``) resource on
    ``sweep_device: cuda``: here, sweeps take one of the profile's ``gpu_share`` slots, so that
    several share the GPU (they need little of it); on a cluster each asks for a whole GPU.
    Decided per job, once the executor is known."""

    def resource(wildcards):
        wanted = sweep_setup(config, wildcards.experiment)[0] == "cuda"
        return gpus(wanted and shared == workflow.local_exec)

    return resource


def fm_of(name):
    return fm_spec(name, config["fms"].get(name, {}))


def fms_where(wanted):
    """A wildcard constraint matching the FMs (the config's and the paper's, which need no
    entry) whose spec is ``wanted``, or nothing."""
    names = dict.fromkeys([*config["fms"], *PAPER_FMS])
    return "|".join(n for n in names if wanted(fm_of(n))) or "(?!)"


def fm_params(wildcards):
    """What the embedding depends on of an FM: its spec (not its λ or batch size)."""
    return dataclasses.asdict(fm_of(wildcards.fm))


def own_weights(wildcards):
    """Your own weights file, if the FM names one (fm_weights checks and stores it)."""
    spec = fm_of(wildcards.fm)
    return [spec.weights] if spec.weights_file else []


def image_folder(dataset):
    """Your own data set's folder, or None."""
    return config["datasets"].get(dataset, {}).get("folder")


def fm_weights_file(fm):
    """Where an FM's weights are stored: a demo CNN's training output, or fm_weights'."""
    return f"resources/models/{fm}.{'pt' if fm_of(fm).source == 'demo' else 'pth'}"


def embed_inputs(wildcards):
    """FM weights (trained, or stored by fm_weights) and the images of both splits: decoded
    (``images_<split>``), or your own image folder's files (``own_<split>``, each file an input,
    so that editing, adding, removing or moving an image reruns the embedding); ImageNet is read
    from its folder."""
    inputs = {"weights": fm_weights_file(wildcards.fm)}
    source = image_source(wildcards.dataset, config["datasets"])
    for split in ("train", "test"):
        if source == "folder":
            _, files = catalog().image_folder(wildcards.dataset)
            inputs[f"own_{split}"] = [str(p) for images in files[split] for p in images]
        elif source == "arrays":
            inputs[f"images_{split}"] = (
                f"resources/data/{wildcards.dataset}/{split}.npz"
            )
    return inputs


def precomputed_split(wildcards):
    """A precomputed FM's entry for one data set split (an .npz, or .npy embeddings and labels)."""
    return config["fms"][wildcards.fm]["embeddings"][wildcards.dataset][wildcards.split]


def precomputed_files(wildcards):
    """The files of a precomputed split (``imprint.fms.own_data.array_files`` reads the entry)."""
    from imprint.fms.own_data import array_files

    embeddings, _, labels, _ = array_files(precomputed_split(wildcards))
    return list(dict.fromkeys([str(embeddings), str(labels)]))


def kept_entry(wildcards):
    return kept_models(config)[wildcards.model]


def continual_study(wildcards):
    return config["continual"][wildcards.study]


def continual_inputs(wildcards):
    """A class-incremental study's embeddings, named ``<fm>.<dataset>.<split>``."""
    study = continual_study(wildcards)
    data = [
        (fm, dataset, split)
        for fm in study["fms"]
        for dataset in study["datasets"]
        for split in ("train", "test")
    ]
    return embedding_files(data, lambda fm, dataset, split: f"{fm}.{dataset}.{split}")


def keep_inputs(wildcards):
    """A kept classifier's task embeddings (``train``, ``test``) and its FM's weights."""
    entry = kept_entry(wildcards)
    fm, dataset = entry["fm"], entry["dataset"]
    data = [(fm, dataset, split) for split in ("train", "test")]
    inputs = embedding_files(data, lambda fm, dataset, split: split)
    if fm_of(fm).source != "precomputed":
        inputs["weights"] = fm_weights_file(fm)
    return inputs


def kept_class_names(wildcards):
    """Your own image folder's class names for a kept model on it (mapping none), else None."""
    entry = kept_entry(wildcards)
    if entry["mapping"] != "none" or not image_folder(entry["dataset"]):
        return None
    return catalog().image_folder(entry["dataset"])[0]


def cd_view(wildcards):
    return config["statistics"]["cd_diagrams"][wildcards.view]
