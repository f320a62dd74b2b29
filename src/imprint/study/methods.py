"""The published imprinting methods (the paper's Table 1) as classifier parameters."""

from __future__ import annotations

from typing import Any

from imprint.method.params import DEFAULTS


def _method(**changes: Any) -> dict[str, Any]:
    return {**DEFAULTS, **changes}


NAMED_METHODS: dict[str, dict[str, Any]] = {
    "qi": _method(norm_pre="l2", gen="mean", k=1, norm_post="l2", norm_inf="l2", agg="max"),
    "hosoda": _method(
        norm_pre="none",
        gen="mean",
        k=1,
        norm_post="quantile_sequential",
        norm_inf="none",
        agg="max",
    ),
    # Hosoda et al. with every class quantile-normalised to the pooled proxies.
    "hosoda_quantile": _method(
        norm_pre="none", gen="mean", k=1, norm_post="quantile", norm_inf="none", agg="max"
    ),
    "janson": _method(
        norm_pre="none",
        gen="mean",
        k=1,
        norm_post="none",
        norm_inf="none",
        agg="mnn",
        distance="euclidean",
        m=1,
    ),
    "ours": _method(norm_pre="l2", gen="kmeans", k=20, norm_post="l2", norm_inf="l2", agg="max"),
    "oracle": _method(norm_pre="none", gen="ls", k=1, norm_post="none", norm_inf="none", agg="max"),
    # The baselines the field reports for a frozen backbone (imprint.method.baselines): CLIP's
    # linear probe on the raw embeddings, DINO's k-NN (20 neighbours) and a training-free cache.
    "linear_probe": _method(
        norm_pre="none", gen="linear_probe", k=-1, norm_post="none", norm_inf="none", agg="max"
    ),
    "knn": _method(norm_pre="l2", gen="knn", k=20, norm_post="none", norm_inf="l2", agg="max"),
    "cache": _method(norm_pre="l2", gen="cache", k=-1, norm_post="none", norm_inf="l2", agg="max"),
    # The class-incremental field's RanPAC and FeCAM (imprint.method.cil_methods) fitted on all
    # rows at once, on the raw embeddings as their authors fed them (FeCAM normalises its own).
    "ranpac": _method(
        norm_pre="none", gen="ranpac", k=-1, norm_post="none", norm_inf="none", agg="max"
    ),
    "fecam": _method(
        norm_pre="none", gen="fecam", k=-1, norm_post="none", norm_inf="none", agg="max"
    ),
}
