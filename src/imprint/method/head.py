"""``ImprintedHead``: a fitted ``ImprintingClassifier`` as a torch module, embeddings to class
scores.

Its buffers are everything the classifier predicts with (proxies and their classes, the
Mahalanobis whitening, a baseline's weights or training bank, the class labels); its settings
are plain values. ``forward`` uses fixed-shape operations only, so the module goes through
``torch.export`` and ``torch.onnx.export`` with a dynamic batch size.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from imprint.method.aggregation import proxy_distances, vote_scores
from imprint.method.baselines import FittedBaseline
from imprint.method.normalize import NORM
from imprint.method.params import BASELINES
from imprint.method.pipeline import label_record, labels_from


def _distances(distance: str, x: Tensor, w: Tensor, metric: Tensor) -> Tensor:
    """Distances (N, P) of rows ``x`` to proxies ``w``: what ``nearest_proxies`` measures, in
    operations ONNX has (``proxy_distances`` itself for cosine; for the others, whose library
    form is ``cdist``, the squared-distance expansion or the differences themselves)."""
    if distance == "cosine":
        return proxy_distances(distance, w, metric)(x)
    if distance in ("euclidean", "mahalanobis"):
        if distance == "mahalanobis":
            x, w = x @ metric, w @ metric
        centre = w.mean(0)
        x, w = x - centre, w - centre
        squared = x.pow(2).sum(1, keepdim=True) - 2 * x @ w.T + w.pow(2).sum(1)
        return squared.clamp_min(0).sqrt()
    difference = (x[:, None, :] - w[None]).abs()
    return difference.sum(-1) if distance == "manhattan" else difference.amax(-1)


def _nearest(d: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """The m smallest entries of each row and their columns, by (value, column): m rounds of a
    first-minimum search (the library's order, where a sort's ties are not guaranteed)."""
    values, columns = [], []
    for _ in range(m):
        column = d.argmin(1, keepdim=True)
        values.append(d.gather(1, column))
        columns.append(column)
        d = d.scatter(1, column, torch.inf)
    return torch.cat(values, 1), torch.cat(columns, 1)


class ImprintedHead(nn.Module):
    """Embeddings (N, D) to class scores (N, C) whose first maximum is the classifier's
    prediction (``ImprintingClassifier.to_torch``). ``classes`` are the class labels."""

    def __init__(self, settings: dict[str, Any], tensors: dict[str, Tensor]) -> None:
        super().__init__()
        self.settings = dict(settings)
        for name, tensor in tensors.items():
            self.register_buffer(name, tensor)

    @property
    def classes(self) -> np.ndarray:
        return labels_from(json.loads(bytes(self.class_labels.tolist()).decode()))

    def forward(self, x: Tensor) -> Tensor:
        s = self.settings
        x = NORM[s["norm_inf"]](x.float())
        kind = s["kind"]
        if kind in BASELINES:
            tensors = {name: getattr(self, name) for name in s["baseline_tensors"]}
            baseline = FittedBaseline(kind, tensors, s["n_classes"], s["k"])
            return baseline.score_block(x)
        if kind == "max":
            scores = x @ self.proxies.T
            full = scores.new_full((x.shape[0], s["n_classes"]), -torch.inf)
            index = self.proxy_labels.expand_as(scores)
            return full.scatter_reduce(1, index, scores, "amax")
        dists, columns = _nearest(_distances(s["distance"], x, self.proxies, self.metric), s["m"])
        return vote_scores(dists, self.proxy_labels[columns], s["n_classes"], s["weighting"])

    def predict(self, x: Tensor) -> np.ndarray:
        """The class label of each row (the first maximum of the scores)."""
        with torch.no_grad():
            return self.classes[self(x).argmax(1).cpu().numpy()]


def encode_classes(classes: np.ndarray) -> Tensor:
    """Class labels as a uint8 buffer (their JSON text with their NumPy type, so that integers
    of any width come back exactly), so that they travel in a state dict."""
    return torch.tensor(list(json.dumps(label_record(classes)).encode()), dtype=torch.uint8)


def head_of(clf: Any) -> ImprintedHead:
    """The head of a fitted ``ImprintingClassifier`` (on the CPU)."""
    p = clf.params_
    settings: dict[str, Any] = {
        "norm_inf": p["norm_inf"],
        "n_classes": len(clf.classes_),
        "k": p["k"],
    }
    tensors = {"class_labels": encode_classes(clf.classes_)}
    if clf.baseline_ is not None:
        settings["kind"] = p["gen"]
        settings["baseline_tensors"] = sorted(clf.baseline_.tensors)
        tensors.update({n: t.detach().cpu() for n, t in clf.baseline_.tensors.items()})
    else:
        vote = p["agg"] == "mnn" or p["distance"] != "inner_product"
        n_proxies = len(clf.proxies_.labels)
        settings.update(
            kind="vote" if vote else "max",
            distance=p["distance"],
            m=min(p["m"], n_proxies) if p["agg"] == "mnn" else 1,
            weighting=p["weighting"] if p["agg"] == "mnn" else "uniform",
        )
        metric = clf.metric_ if clf.metric_ is not None else torch.empty(0, 0)
        tensors.update(
            proxies=clf.proxies_.weights.detach().cpu(),
            proxy_labels=clf.proxies_.labels.cpu(),
            metric=metric.detach().cpu(),
        )
    return ImprintedHead(settings, tensors).eval()
