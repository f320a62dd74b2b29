"""``ImprintingClassifier``: one IMPRINT configuration as a scikit-learn estimator."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from imprint.method.aggregation import class_max_scores, nearest_proxies, vote_scores
from imprint.method.baselines import BASELINES, fit_baseline
from imprint.method.generators import GEN, GenContext
from imprint.method.normalize import NORM, NORM_POST
from imprint.method.params import DEFAULTS, validate_params
from imprint.method.pipeline import (
    as_embeddings,
    check_dimensions,
    distance_metric,
    encode_labels,
    index_labels,
    prepare_classes,
)


class ImprintingClassifier(ClassifierMixin, BaseEstimator):
    """A classifier imprinted from embeddings without gradient descent.

    ``fit`` turns each class's training embeddings into proxies (NORMpre, presampling, GEN,
    NORMpost); ``predict`` scores test embeddings against them (NORMinf, AGG). The defaults are
    the paper's best method; ``NAMED_METHODS`` holds the published ones. ``weibull=[a, b]`` keeps
    the samples between the a- and b-quantiles of a Weibull law fitted to distances from the class
    mean. Labels may be any sortable values.

    ``gen`` may also name a baseline (``linear_probe``, ``knn``, ``cache``;
    ``imprint.method.baselines``): it is fitted on the same NORMpre'd, presampled rows and
    predicts the class of the highest score (NORMpost and AGG do not apply; ``k`` is the k-NN's
    neighbours).
    """

    def __init__(
        self,
        norm_pre: str = DEFAULTS["norm_pre"],
        gen: str = DEFAULTS["gen"],
        k: int = DEFAULTS["k"],
        norm_post: str = DEFAULTS["norm_post"],
        norm_inf: str = DEFAULTS["norm_inf"],
        agg: str = DEFAULTS["agg"],
        distance: str = DEFAULTS["distance"],
        weighting: str = DEFAULTS["weighting"],
        m: int = DEFAULTS["m"],
        fewshot: int = DEFAULTS["fewshot"],
        lambda_reg: float = DEFAULTS["lambda_reg"],
        seed: int = DEFAULTS["seed"],
        device: str = "cpu",
        weibull: tuple[float, float] | None = DEFAULTS["weibull"],
    ) -> None:
        self.norm_pre = norm_pre
        self.gen = gen
        self.k = k
        self.norm_post = norm_post
        self.norm_inf = norm_inf
        self.agg = agg
        self.distance = distance
        self.weighting = weighting
        self.m = m
        self.fewshot = fewshot
        self.lambda_reg = lambda_reg
        self.seed = seed
        self.device = device
        self.weibull = weibull

    def fit(self, X: Any, y: Any) -> ImprintingClassifier:
        """Generate every class's proxies from training embeddings ``X`` (N, D) and labels ``y``."""
        p = validate_params(self.get_params())
        x = as_embeddings(X, "X", self.device)
        self.classes_, index = encode_labels(y, x.shape[0])
        labels = torch.as_tensor(index, device=x.device)
        batch = prepare_classes(
            x, labels, len(self.classes_), p["norm_pre"], p["fewshot"], p["weibull"], p["seed"]
        )
        if p["gen"] in BASELINES:
            rows, index = batch.flat()
            self.baseline_ = fit_baseline(
                p["gen"], rows, index, len(self.classes_), p["k"], p["seed"]
            )
            self.proxies_ = self.metric_ = None
        else:
            proxies = GEN[p["gen"]](batch, p["k"], GenContext(p["seed"], p["lambda_reg"]))
            self.proxies_ = NORM_POST[p["norm_post"]](proxies)
            self.metric_ = distance_metric(batch, p["distance"])
        self.n_features_in_ = x.shape[1]
        self.params_ = p
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The predicted label of each row of ``X``."""
        return self.classes_[self._predict_index(X)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy on ``X`` as a fraction; ``y`` is checked as ``sweep`` checks test labels
        (same kind as the training labels, no unseen class, no NaN)."""
        check_is_fitted(self, "proxies_")
        truth = index_labels(self.classes_, y, len(X))
        return float(np.average(self._predict_index(X) == truth, weights=sample_weight))

    def decision_function(self, X: Any) -> np.ndarray:
        """Per-class scores (rows of ``X``, ``classes_``) whose first maximum is the class
        ``predict`` returns: under ``max`` with the inner product, each class's best proxy
        score (ties: the lowest class); under an m-NN vote (``mnn``, or ``max`` with a distance:
        1-NN), the votes, a tie raised by the smallest float step for the class of the nearest
        proxy; for a baseline, its class scores."""
        check_is_fitted(self, "proxies_")
        p = self.params_
        x = as_embeddings(X, "X", self.device)
        check_dimensions(self.n_features_in_, x)
        x = NORM[p["norm_inf"]](x)
        n_classes = len(self.classes_)
        if p["gen"] in BASELINES:
            scores = self.baseline_(x)
        elif p["agg"] == "max" and p["distance"] == "inner_product":
            scores = class_max_scores(x, self.proxies_, n_classes)
        else:
            mnn = p["agg"] == "mnn"
            m, weighting = (
                (min(p["m"], len(self.proxies_.labels)), p["weighting"]) if mnn else (1, "uniform")
            )
            dists, index = nearest_proxies(x, self.proxies_, p["distance"], m, self.metric_)
            scores = vote_scores(dists, self.proxies_.labels[index], n_classes, weighting)
        return scores.cpu().numpy()

    def _predict_index(self, X: Any) -> np.ndarray:
        """The class index of each row: the first maximum of its scores, which is what AGG
        (``aggregate_max``, ``aggregate_mnn``: the sweep's) predicts from the same scores."""
        return self.decision_function(X).argmax(1)
