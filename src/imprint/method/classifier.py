"""``ImprintingClassifier``: one IMPRINT configuration as a scikit-learn estimator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from imprint.method.aggregation import class_max_scores, nearest_proxies, vote_scores
from imprint.method.baselines import FittedBaseline, fit_baseline
from imprint.method.batch import ClassBatch, ProxySet
from imprint.method.generators import GEN, GenContext
from imprint.method.normalize import NORM, NORM_POST
from imprint.method.novelty import FALSE_REJECTION, Calibration, calibrate
from imprint.method.params import BASELINES, COUPLED_GENS, DEFAULTS, refusal, validate_params
from imprint.method.pipeline import (
    as_embeddings,
    check_dimensions,
    check_label_kind,
    distance_metric,
    encode_labels,
    index_labels,
    label_record,
    labels_from,
    prepare_classes,
)
from imprint.method.randomness import class_keys
from imprint.method.statistics import KEEP, KeptSums

if TYPE_CHECKING:
    from imprint.method.head import ImprintedHead


@dataclass(frozen=True)
class KeptClass:
    """What the classifier keeps of one class: its training rows (in the order seen), the rows
    NORMpre, Weibull and few-shot sampling left, and its proxies before NORMpost (k-means
    clusters for ``kls``; none for ``ls`` and the baselines, which use all classes at once).
    Exemplar-free (``keep="statistics"``): no rows, but the count of prepared rows and, for
    ``ls``, their mean (``imprint.method.statistics``)."""

    rows: Tensor | None
    prepared: Tensor | None
    proxies: Tensor | None
    count: int = 0
    mean: Tensor | None = None

    def without_rows(self) -> KeptClass:
        """What ``keep="statistics"`` keeps of this class."""
        mean = None if self.proxies is not None else self.prepared.mean(0)
        return KeptClass(None, None, self.proxies, len(self.prepared), mean)


def _moved(values: list[Tensor | None], device: str) -> list[Tensor | None]:
    return [None if v is None else v.to(device) for v in values]


def _stacked(parts: list[Tensor]) -> tuple[Tensor, Tensor]:
    """The rows of ``parts`` stacked, and the index of the part each row came from."""
    sizes = torch.tensor([part.shape[0] for part in parts])  # shape: no Python-level __len__
    x = torch.cat(parts)
    return x, torch.repeat_interleave(torch.arange(len(parts)), sizes).to(x.device)


def _imprint_classes(
    rows: dict[Any, Tensor], p: dict[str, Any]
) -> tuple[dict[Any, KeptClass], ClassBatch]:
    """The per-class steps for the classes in ``rows`` (label -> training rows), batched; and
    their prepared rows."""
    labels = list(rows)
    x, index = _stacked(list(rows.values()))
    batch = prepare_classes(
        x, index, len(labels), p["norm_pre"], p["fewshot"], p["weibull"],
        p["seed"], class_keys(labels),
    )  # fmt: skip
    proxies: ProxySet | None = None
    if p["gen"] == "kls":
        proxies = GenContext(p["seed"], p["lambda_reg"]).kmeans(batch, p["k"])
    elif p["gen"] not in COUPLED_GENS and p["gen"] not in BASELINES:
        proxies = GEN[p["gen"]](batch, p["k"], GenContext(p["seed"], p["lambda_reg"]))
    kept = {
        label: KeptClass(
            rows[label],
            batch.x[c][batch.mask[c]],
            None if proxies is None else proxies.weights[proxies.labels == c],
        )
        for c, label in enumerate(labels)
    }
    return kept, batch


def _couple(
    store: dict[Any, KeptClass], classes: np.ndarray, p: dict[str, Any], sums: KeptSums | None
) -> tuple[ProxySet | None, Tensor | None, FittedBaseline | None]:
    """The steps that couple classes, from every class's kept rows and proxies (or, exemplar-free,
    from ``sums``): ``ls`` and ``kls``' joint solve, NORMpost, Mahalanobis' whitening, a
    baseline's fit. Returns the proxies, the whitening and the baseline (None where they do not
    apply)."""
    kept = [store[label] for label in classes.tolist()]
    per_class = p["gen"] not in BASELINES and p["gen"] != "ls"  # proxies kept per class
    stacked = ProxySet(*_stacked([c.proxies for c in kept])) if per_class else None
    if sums is not None:
        proxies = sums.proxies(stacked, [c.mean for c in kept], [c.count for c in kept], p)
        return NORM_POST[p["norm_post"]](proxies), sums.whitening(proxies.weights.dtype), None
    if per_class and p["gen"] != "kls" and p["distance"] != "mahalanobis":  # the proxies alone
        return NORM_POST[p["norm_post"]](stacked), None, None
    x, labels = _stacked([c.prepared for c in kept])
    batch = ClassBatch.from_labels(x, labels, len(kept), class_keys(classes))
    if p["gen"] in BASELINES:
        rows, index = batch.flat()
        return None, None, fit_baseline(p["gen"], rows, index, len(kept), p["k"], p["seed"])
    context = GenContext(p["seed"], p["lambda_reg"])
    if p["gen"] == "ls":
        proxies = GEN["ls"](batch, p["k"], context)
    else:
        proxies = stacked
        if p["gen"] == "kls":  # the proxies kept are each class's k-means clusters
            context.view["kmeans", p["k"], p["seed"]] = (proxies, 0.0)
            proxies = GEN["kls"](batch, p["k"], context)
    return NORM_POST[p["norm_post"]](proxies), distance_metric(batch, p["distance"]), None


class ImprintingClassifier(ClassifierMixin, BaseEstimator):
    """A classifier imprinted from embeddings without gradient descent.

    ``fit`` turns each class's training embeddings into proxies (NORMpre, presampling, GEN,
    NORMpost); ``predict`` scores test embeddings against them (NORMinf, AGG). The defaults are
    the paper's best method; ``NAMED_METHODS`` holds the published ones. ``weibull=[a, b]`` keeps
    the samples between the a- and b-quantiles of a Weibull law fitted to distances from the class
    mean. Labels may be any sortable values; each class's random draws are keyed by its label.
    ``partial_fit`` adds classes, or samples of known ones, to a fitted classifier.
    ``calibrate`` makes its scores a confidence (``predict_proba``) and flags rows that look like
    none of its classes (``predict_unknown``).

    ``gen`` may also name a baseline (``linear_probe``, ``knn``, ``cache``;
    ``imprint.method.baselines``): it is fitted on the same NORMpre'd, presampled rows and
    predicts the class of the highest score (NORMpost and AGG do not apply; ``k`` is the k-NN's
    neighbours).

    ``keep="statistics"`` makes it exemplar-free: it keeps no training rows, only what later
    calls need (``imprint.method.statistics``), so that classes can keep coming
    (class-incremental learning) at a cost that does not grow with the rows seen.
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
        keep: str = "rows",
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
        self.keep = keep

    def _params(self) -> dict[str, Any]:
        """The run's parameters, checked (``keep`` and ``device`` are the estimator's own)."""
        if self.keep not in KEEP:
            raise ValueError(f"keep={self.keep!r} is not valid; choose one of {list(KEEP)}")
        return validate_params({k: v for k, v in self.get_params().items() if k != "keep"})

    def fit(self, X: Any, y: Any) -> ImprintingClassifier:
        """Generate every class's proxies from training embeddings ``X`` (N, D) and labels ``y``;
        forgets any earlier fit."""
        for fitted in ("classes_", "store_", "sums_", "params_", "n_features_in_", "calibration_"):
            self.__dict__.pop(fitted, None)
        return self._add(X, y, min_classes=2)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> ImprintingClassifier:
        """Add training embeddings ``X`` (N, D) with labels ``y``: classes not seen before, more
        samples of known ones, or both. Afterwards the classifier predicts as one ``fit`` on all
        the rows seen so far, in the order seen (same parameters and seed). ``classes``
        (scikit-learn's argument, optional): the labels ``y`` may hold; classes need not be
        declared in advance here, since each is imprinted when its rows first come.

        Kept (memory): every class's training rows, the rows its NORMpre, Weibull and few-shot
        steps left, and its proxies before NORMpost: about twice the training embeddings. With
        ``keep="statistics"``: the proxies and sums over rows alone (each call then brings new
        classes only; ``imprint.method.statistics`` says what is kept and what is refused).
        Cost: NORMpre, presampling and GEN of the classes in ``y`` only (each class draws from
        its own random stream, so the others stay as they were); then the steps that couple
        classes, over all classes from what is kept: the least-squares solve of ``ls`` and
        ``kls`` (O(N D² + D³)), NORMpost (quantile: a sort of the pooled proxy values),
        Mahalanobis' covariance (O(N D²)) and a baseline's fit. A calibrated classifier is
        calibrated again, at the same false-rejection rate, on all its rows."""
        before = dict(self.__dict__)
        self._add(X, y, min_classes=1, classes=classes)
        if hasattr(self, "calibration_"):
            try:
                self.calibrate(self.calibration_.false_rejection)
            except ValueError:
                self.__dict__.update(before)  # the classifier as it was
                raise
        return self

    def calibrate(self, false_rejection: float = FALSE_REJECTION) -> ImprintingClassifier:
        """Fit the confidence of ``predict_proba`` and the "none of these" flag of
        ``predict_unknown`` on the classifier's training rows (``imprint.method.novelty``: a
        temperature and a threshold from 5-fold cross-fitting), flagging at most about
        ``false_rejection`` of the rows of known classes. Costs five more fits."""
        self._check_fitted()
        if self.keep == "statistics":
            raise ValueError(
                "calibrate refits on the training rows, which keep='statistics' does not keep; "
                "use keep='rows'"
            )
        x, index = _stacked([self.store_[label].rows for label in self.classes_.tolist()])
        self.calibration_ = calibrate(self, x, self.classes_[index.cpu().numpy()], false_rejection)
        return self

    def _add(self, X: Any, y: Any, min_classes: int, classes: Any = None) -> ImprintingClassifier:
        p = self._params()
        fitted = hasattr(self, "store_")
        if self.keep == "statistics" and refusal(p):
            raise ValueError(
                f"keep='statistics' cannot serve gen={p['gen']!r}: {refusal(p)}; use keep='rows'"
            )
        if fitted and (p != self.params_ or self.keep != self._kept()):
            raise ValueError(
                "the parameters changed since the classifier was fitted; call fit to start again"
            )
        x = as_embeddings(X, "X", self.device)
        if fitted:
            check_dimensions(self.n_features_in_, x)
        new_classes, index = encode_labels(y, x.shape[0], min_classes)
        if classes is not None:  # partial_fit's: the labels y may hold
            listed = set(np.asarray(classes).tolist())
            unknown = [label for label in new_classes.tolist() if label not in listed]
            if unknown:
                raise ValueError(f"y holds labels {unknown} that classes does not list")
        if fitted:
            check_label_kind(new_classes, self.classes_, "y")
        store = dict(self.store_) if fitted else {}
        sums = (self.sums_ if fitted else KeptSums()) if self.keep == "statistics" else None
        known = [label for label in new_classes.tolist() if label in store]
        if known and sums is not None:
            raise ValueError(
                f"y holds classes {known} that are already kept; keep='statistics' keeps no rows "
                "to imprint them again with more: add new classes only, or use keep='rows'"
            )
        rows = {}
        for i, label in enumerate(new_classes.tolist()):
            added = x[torch.as_tensor(index == i, device=x.device)]
            rows[label] = added if label not in store else torch.cat([store[label].rows, added])
        imprinted, batch = _imprint_classes(rows, p)
        if sums is not None:
            sums = sums.added(batch, p)
            imprinted = {label: kept.without_rows() for label, kept in imprinted.items()}
        store.update(imprinted)
        if fitted:
            new_classes = np.unique(np.concatenate([self.classes_, new_classes]))
        coupled = _couple(store, new_classes, p, sums)  # computed before any attribute changes
        self.store_, self.sums_, self.classes_ = store, sums, new_classes
        self.n_features_in_, self.params_ = x.shape[1], p
        self.proxies_, self.metric_, self.baseline_ = coupled
        return self

    def _kept(self) -> str:
        """What the fitted classifier keeps: ``rows`` or ``statistics``."""
        return "rows" if self.sums_ is None else "statistics"

    def _check_fitted(self) -> None:
        """Fitted, and with the parameters it was fitted with: every parameter takes effect at
        ``fit`` (``set_params`` on a fitted classifier, then ``predict``, is refused)."""
        check_is_fitted(self, "proxies_")
        changed = {
            name: value
            for name, value in {**self._params(), "keep": self.keep}.items()
            if {**self.params_, "keep": self._kept()}.get(name) != value
        }
        if changed:
            raise ValueError(
                f"parameter(s) {sorted(changed)} changed since the classifier was fitted; "
                "parameters take effect at fit: call fit again"
            )

    def predict(self, X: Any) -> np.ndarray:
        """The predicted label of each row of ``X``."""
        self._check_fitted()
        return self.classes_[self._predict_index(X)]

    @available_if(lambda self: self._calibration() is not None)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities (rows of ``X``, ``classes_``); there once the
        classifier is calibrated (``calibrate``), as scikit-learn's classifiers have it only
        where they can compute it (the AttributeError says why it is not)."""
        scores = torch.as_tensor(self.decision_function(X))
        return self._calibration().confidence(scores).numpy()

    def novelty(self, X: Any) -> np.ndarray:
        """How unlike every known class each row of ``X`` is (higher: less alike); needs
        ``calibrate``."""
        calibration = self._calibration()
        x = as_embeddings(X, "X", self.device)
        check_dimensions(self.n_features_in_, x)
        return calibration.novelty(x).cpu().numpy()

    def predict_unknown(self, X: Any) -> np.ndarray:
        """Whether each row of ``X`` looks like none of the classes (novelty above the threshold
        ``calibrate`` set); needs ``calibrate``."""
        return self.novelty(X) > self._calibration().threshold

    def _calibration(self) -> Calibration:
        self._check_fitted()
        if not hasattr(self, "calibration_"):
            raise NotFittedError(
                "this classifier is not calibrated; call calibrate() after fit (a kept model "
                "file made before calibration: keep it again)"
            )
        return self.calibration_

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy on ``X`` as a fraction; ``y`` is checked as ``sweep`` checks test labels
        (same kind as the training labels, no unseen class, no NaN)."""
        self._check_fitted()
        truth = index_labels(self.classes_, y, len(X))
        return float(np.average(self._predict_index(X) == truth, weights=sample_weight))

    def decision_function(self, X: Any) -> np.ndarray:
        """Per-class scores (rows of ``X``, ``classes_``) whose first maximum is the class
        ``predict`` returns: under ``max`` with the inner product, each class's best proxy
        score (ties: the lowest class); under an m-NN vote (``mnn``, or ``max`` with a distance:
        1-NN), the votes, a tie raised by a float step or two for the class of the nearest
        proxy; for a baseline, its class scores."""
        self._check_fitted()
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

    def kept_state(self) -> dict[str, Any]:
        """What ``partial_fit`` keeps, as plain values and CPU tensors (``torch.save`` writes it,
        ``torch.load(weights_only=True)`` reads it); ``from_kept_state`` restores the classifier.
        The presampled rows are left out where they are NORMpre of the training rows."""
        check_is_fitted(self, "store_")
        p = self.params_
        presampled = p["fewshot"] != -1 or p["weibull"] is not None
        kept = [self.store_[label] for label in self.classes_.tolist()]

        state = {
            "params": {**p, "weibull": None if p["weibull"] is None else list(p["weibull"])},
            "classes": label_record(self.classes_),
            "proxies": _moved([c.proxies for c in kept], "cpu"),
            "calibration": (self.calibration_.state() if hasattr(self, "calibration_") else None),
        }
        if self.sums_ is None:
            state["rows"] = _moved([c.rows for c in kept], "cpu")
            state["prepared"] = _moved([c.prepared for c in kept], "cpu") if presampled else None
            return state
        return {
            **state,
            "keep": "statistics",
            "counts": [c.count for c in kept],
            "means": _moved([c.mean for c in kept], "cpu"),
            "sums": self.sums_.to("cpu").state(),
        }

    @classmethod
    def from_kept_state(cls, state: dict[str, Any], device: str = "cpu") -> ImprintingClassifier:
        """The classifier ``kept_state`` describes, fitted as it was (``device``: where it runs)."""
        keep = state.get("keep", "rows")
        clf = cls(**state["params"], device=device, keep=keep)
        p = clf._params()
        clf.classes_ = labels_from(state["classes"])
        proxies = _moved(state["proxies"], device)
        if keep == "statistics":
            clf.sums_ = KeptSums.from_state(state["sums"]).to(device)
            means = _moved(state["means"], device)
            kept = [
                KeptClass(None, None, w, count, mean)
                for w, count, mean in zip(proxies, state["counts"], means, strict=True)
            ]
            clf.n_features_in_ = next(t for t in proxies + means if t is not None).shape[-1]
        else:
            clf.sums_ = None
            rows = _moved(state["rows"], device)
            prepared = _moved(
                state["prepared"] or [NORM[p["norm_pre"]](r) for r in state["rows"]], device
            )
            kept = [KeptClass(*values) for values in zip(rows, prepared, proxies, strict=True)]
            clf.n_features_in_ = state["rows"][0].shape[1]
        clf.store_ = dict(zip(clf.classes_.tolist(), kept, strict=True))
        clf.params_ = p
        clf.proxies_, clf.metric_, clf.baseline_ = _couple(clf.store_, clf.classes_, p, clf.sums_)
        if state.get("calibration") is not None:
            clf.calibration_ = Calibration.from_state(state["calibration"])
        return clf

    def with_labels(self, names: Mapping[Any, Any]) -> ImprintingClassifier:
        """A copy with class ``c`` renamed ``names[c]``: the same proxies, classes in the order of
        their new labels. (Random draws for a renamed class, should more samples come, are keyed
        by its new label.)"""
        state = self.kept_state()
        renamed_to = [names[label] for label in self.classes_.tolist()]
        if len(set(renamed_to)) < len(renamed_to):
            raise ValueError(f"names must give every class its own label, got {renamed_to}")
        order = sorted(range(len(renamed_to)), key=lambda i: renamed_to[i])

        def ordered(values: list | None) -> list | None:
            return None if values is None else [values[i] for i in order]

        listed = ("rows", "prepared", "proxies", "counts", "means")
        renamed = {key: ordered(state[key]) for key in listed if key in state}
        classes = label_record(np.array([renamed_to[i] for i in order]))
        if hasattr(self, "calibration_"):
            renamed["calibration"] = self.calibration_.reordered(order).state()
        return type(self).from_kept_state({**state, **renamed, "classes": classes}, self.device)

    def to_torch(self) -> ImprintedHead:
        """The fitted classifier as a torch module from embeddings to the class scores of
        ``decision_function`` (``imprint.method.head``); it works with ``torch.export`` and
        ONNX, and ``imprint.deploy.model_file`` saves it."""
        check_is_fitted(self, "proxies_")
        from imprint.method.head import head_of

        return head_of(self)

    def _predict_index(self, X: Any) -> np.ndarray:
        """The class index of each row: the first maximum of its scores, which is what AGG
        (``aggregate_max``, ``aggregate_mnn``: the sweep's) predicts from the same scores."""
        return self.decision_function(X).argmax(1)
