"""The baselines the field reports for a frozen backbone, run where imprinting runs: a linear
probe (CLIP's protocol), DINO's weighted k-NN and a Tip-Adapter-style cache without text.

Each fits on the training rows a run's NORMpre and presampling left (so a few-shot run sees the
rows imprinting saw) and scores test rows per class; the predicted class is the first with the
highest score, as for imprinting. ``ImprintingClassifier`` and ``sweep`` take them as GENs
(``gen="linear_probe"``, ``"knn"`` or ``"cache"``); the functions below are their library form,
with every setting open.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from imprint.method.normalize import l2_normalize
from imprint.method.randomness import stage_generator, uniform

BASELINES = ("linear_probe", "knn", "cache")
SEEDED_BASELINES = frozenset({"linear_probe"})  # its held-out split is drawn

KNN_NEIGHBOURS = 20
KNN_TEMPERATURE = 0.07
CACHE_BETA = 1.0
CACHE_BETA_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# The linear probe's inverse regularisation C: chosen from this grid by accuracy on a held-out
# fifth of every class's training rows (seeded), then refit on all of them; full-batch L-BFGS
# of scikit-learn's objective to its tolerance (1e-4 on the gradient), at most PROBE_MAX_ITER
# iterations (scikit-learn's default; CLIP's was 1,000), each fit starting where the previous
# C's ended, the final one where the chosen C's did.
PROBE_C_GRID = (1e-2, 1e-1, 1.0, 1e1, 1e2)
PROBE_HOLDOUT = 0.2
PROBE_MAX_ITER = 100
_CHUNK_ENTRIES = 2**24  # test rows are scored in chunks of about this many similarities

Scorer = Callable[[Tensor], Tensor]


def _chunked(score: Callable[[Tensor], Tensor], test: Tensor, n_train: int) -> Tensor:
    rows = max(1, _CHUNK_ENTRIES // max(n_train, 1))
    return torch.cat([score(test[i : i + rows]) for i in range(0, len(test), rows)])


@dataclass(frozen=True)
class FittedBaseline:
    """A fitted baseline: called on test rows, their class scores (rows, classes).

    ``tensors`` are a linear probe's ``weight`` (C, D) and ``bias`` (C,), or a k-NN's or
    cache's ``bank`` of L2-normalised training rows (N, D) and their class ``labels`` (N,)."""

    name: str
    tensors: dict[str, Tensor]
    n_classes: int
    k: int = KNN_NEIGHBOURS
    temperature: float = KNN_TEMPERATURE
    beta: float = CACHE_BETA

    def __call__(self, rows: Tensor) -> Tensor:
        if self.name == "linear_probe":
            return self.score_block(rows)
        return _chunked(self.score_block, rows, len(self.tensors["bank"]))

    def score_block(self, rows: Tensor) -> Tensor:
        """The scores of one block of rows, with fixed-shape operations (``torch.export``)."""
        t = self.tensors
        if self.name == "linear_probe":
            return rows.to(t["weight"].dtype) @ t["weight"].T + t["bias"]
        similarity = l2_normalize(rows) @ t["bank"].T
        if self.name == "knn":
            k = len(t["bank"]) if self.k == -1 else min(self.k, len(t["bank"]))
            top, index = similarity.topk(k, dim=1)
            scores = similarity.new_zeros(rows.shape[0], self.n_classes)
            return scores.scatter_add(1, t["labels"][index], (top / self.temperature).exp())
        onehot = F.one_hot(t["labels"], self.n_classes).to(similarity.dtype)
        return (-self.beta * (1 - similarity)).exp() @ onehot


def knn_scores(
    train: Tensor,
    labels: Tensor,
    test: Tensor,
    n_classes: int,
    k: int = KNN_NEIGHBOURS,
    temperature: float = KNN_TEMPERATURE,
) -> Tensor:
    """DINO's k-NN: cosine similarity of L2-normalised embeddings, the ``k`` most similar
    training rows (all of them when there are fewer), each adding exp(similarity /
    ``temperature``) to its class. Scores (test rows, classes)."""
    bank = {"bank": l2_normalize(train), "labels": labels}
    return FittedBaseline("knn", bank, n_classes, k=k, temperature=temperature)(test)


def cache_scores(
    train: Tensor, labels: Tensor, test: Tensor, n_classes: int, beta: float = CACHE_BETA
) -> Tensor:
    """A Tip-Adapter cache without text: the affinity exp(−β (1 − cos)) of a test row to every
    training row, summed per class. Scores (test rows, classes)."""
    bank = {"bank": l2_normalize(train), "labels": labels}
    return FittedBaseline("cache", bank, n_classes, beta=beta)(test)


def holdout_split(labels: Tensor, n_classes: int, seed: int, fraction: float = PROBE_HOLDOUT):
    """A seeded split of the training rows: per class, round(``fraction`` · n) of its rows (at
    least one) held out, the others kept; ``None`` when a class has fewer than two rows. Returns
    (kept, held-out) row indices."""
    counts = torch.bincount(labels, minlength=n_classes)
    if int(counts.min()) < 2:
        return None
    keys = uniform((len(labels),), stage_generator(seed, "baseline"), labels.device)
    order = torch.argsort(keys)
    order = order[torch.argsort(labels[order], stable=True)]  # by class, shuffled within
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(labels), device=labels.device) - starts[labels[order]]
    held = (counts.double() * fraction).round().clamp(1, None).long()
    is_held = position < held[labels[order]]
    return order[~is_held], order[is_held]


def _accuracy(scores: Tensor, labels: Tensor) -> float:
    return float((scores.argmax(1) == labels).double().mean())


def _select(
    grid: Sequence[float],
    fit: Callable[[Tensor, Tensor, float], Scorer],
    train: Tensor,
    labels: Tensor,
    n_classes: int,
    seed: int,
    default: float,
) -> float:
    """The grid value whose fit on the kept rows scores best on the held-out rows (ties: the
    first), or ``default`` when no split is possible."""
    split = holdout_split(labels, n_classes, seed)
    if split is None:
        return default
    kept, held = split
    accuracies = [
        _accuracy(fit(train[kept], labels[kept], v)(train[held]), labels[held]) for v in grid
    ]
    return grid[max(range(len(grid)), key=lambda i: (accuracies[i], -i))]


def select_cache_beta(
    train: Tensor,
    labels: Tensor,
    n_classes: int,
    seed: int,
    grid: Sequence[float] = CACHE_BETA_GRID,
) -> float:
    """The cache's β chosen by held-out accuracy (``holdout_split``) from ``grid``."""

    def fit(x: Tensor, y: Tensor, beta: float) -> Scorer:
        return lambda rows: cache_scores(x, y, rows, n_classes, beta)

    return _select(grid, fit, train, labels, n_classes, seed, CACHE_BETA)


def fit_logistic(
    train: Tensor,
    labels: Tensor,
    n_classes: int,
    C: float,
    max_iter: int = PROBE_MAX_ITER,
    start: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Multinomial logistic regression with an L2 penalty, scikit-learn's objective
    C · Σ cross-entropy + ½ ‖W‖² (bias not penalised), by full-batch L-BFGS from ``start``
    (weights, biases; default zeros). Returns weights (classes, D) and biases (classes,)."""
    x = train.double() if train.device.type == "cpu" else train.float()
    if start is None:
        weight = torch.zeros(n_classes, x.shape[1], dtype=x.dtype, device=x.device)
        bias = torch.zeros(n_classes, dtype=x.dtype, device=x.device)
    else:
        weight, bias = (t.to(x.dtype).clone() for t in start)
    optimiser = torch.optim.LBFGS(
        [weight, bias],
        max_iter=max_iter,
        tolerance_grad=1e-4,
        tolerance_change=1e-10,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    penalty = 1 / (2 * C * len(x))  # the objective over C · N
    rows = torch.arange(len(x), device=x.device)

    def closure() -> Tensor:  # the loss and its gradient, without autograd's overhead
        log_p = torch.log_softmax(x @ weight.T + bias, dim=1)
        loss = -log_p[rows, labels].mean() + penalty * weight.pow(2).sum()
        residual = log_p.exp_()
        residual[rows, labels] -= 1
        residual /= len(x)
        weight.grad = residual.T @ x + 2 * penalty * weight
        bias.grad = residual.sum(0)
        return loss

    with torch.no_grad():
        optimiser.step(closure)
    return weight, bias


def fit_linear_probe(
    train: Tensor,
    labels: Tensor,
    n_classes: int,
    seed: int = 0,
    C: float | None = None,
    grid: Sequence[float] = PROBE_C_GRID,
    max_iter: int = PROBE_MAX_ITER,
) -> tuple[Tensor, Tensor, float]:
    """CLIP's linear-probe protocol: C (given, or chosen from ``grid`` by held-out accuracy; 1
    when a class has a single row), then logistic regression on all training rows. Returns
    weights, biases and C."""

    solutions: dict[float, tuple[Tensor, Tensor]] = {}

    def fit(x: Tensor, y: Tensor, c: float) -> Scorer:
        start = solutions[list(solutions)[-1]] if solutions else None
        weight, bias = solutions[c] = fit_logistic(x, y, n_classes, c, max_iter, start)
        return FittedBaseline("linear_probe", {"weight": weight, "bias": bias}, n_classes)

    if C is None:
        C = _select(sorted(grid), fit, train, labels, n_classes, seed, 1.0)
    weight, bias = fit_logistic(train, labels, n_classes, C, max_iter, solutions.get(C))
    return weight, bias, C


def fit_baseline(
    name: str, train: Tensor, labels: Tensor, n_classes: int, k: int, seed: int
) -> FittedBaseline:
    """A baseline with the study's settings, fitted. ``k`` is the k-NN's number of neighbours
    (−1: all)."""
    if name == "linear_probe":
        weight, bias, _ = fit_linear_probe(train, labels, n_classes, seed)
        return FittedBaseline(name, {"weight": weight, "bias": bias}, n_classes)
    if name in ("knn", "cache"):
        return FittedBaseline(name, {"bank": l2_normalize(train), "labels": labels}, n_classes, k)
    raise ValueError(f"no baseline named {name!r}; choose one of {list(BASELINES)}")
