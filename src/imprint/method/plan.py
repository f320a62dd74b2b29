"""Which runs of a sweep share which steps: ``plan_runs`` nests them as the engine computes them
and as the cost model prices them. No PyTorch here, so that the workflow plans its jobs without
importing it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from typing import Any

from imprint.method.params import RANDOM_GENS, SEEDED_BASELINES

# The most distance entries (classes x samples^2, float64) k-medoids keeps for every k of a view.
KMEDOIDS_CACHE_ENTRIES = 2**29


def plan_runs(runs: list[dict[str, Any]]) -> dict[Hashable, Any]:
    """Nest run indices as data key -> GEN key -> NORMpost -> (NORMinf, AGG, distance) -> runs.

    Seeds and λ enter the keys only where they change the result."""
    tree: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for i, p in enumerate(runs):
        data_seed = p["seed"] if p["fewshot"] != -1 else None
        gen_seed = p["seed"] if p["gen"] in RANDOM_GENS | SEEDED_BASELINES else None
        lam = p["lambda_reg"] if p["gen"] in ("ls", "kls") else None
        data_key = (p["norm_pre"], p["fewshot"], p["weibull"], data_seed)
        gen_key = (p["gen"], p["k"], lam, gen_seed)
        scoring_key = (p["norm_inf"], _search(p), p["distance"])
        tree[data_key][gen_key][p["norm_post"]][scoring_key].append(i)
    return tree


def _search(p: dict[str, Any]) -> str:
    """The AGG that scores a run: ``max`` with a true distance is the 1-nearest-neighbour vote,
    so it shares the neighbour search of the ``mnn`` runs with that distance."""
    return "mnn" if p["agg"] == "max" and p["distance"] != "inner_product" else p["agg"]
