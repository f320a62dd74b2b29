"""The baselines the field reports for a frozen backbone, run where imprinting runs: a linear
probe (CLIP's protocol), DINO's weighted k-NN, a Tip-Adapter-style cache without text, and the
class-incremental learners RanPAC and FeCAM (``imprint.method.cil_methods``) fitted on all rows
at once.

Each fits on the training rows a run's NORMpre and presampling left (so a few-shot run sees the
rows imprinting saw) and scores test rows per class; the predicted class is the first with the
highest score, as for imprinting. ``ImprintingClassifier`` and ``sweep`` take them as GENs
(``gen="linear_probe"``, ``"knn"``, ``"cache"``, ``"ranpac"`` or ``"fecam"``); the functions
below are their library form, with every setting open.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, ParamSpec, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import ThreadpoolController
from torch import Tensor

from imprint.method.cil_methods import (
    ClassLearner,
    FeCAM,
    RanPAC,
    fecam_rows,
    fecam_scores,
    ranpac_scores,
)
from imprint.method.normalize import l2_normalize
from imprint.method.params import BASELINES, RANPAC_DIMENSIONS
from imprint.method.randomness import stage_generator, uniform

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

KNN_NEIGHBOURS = 20
KNN_TEMPERATURE = 0.07
CACHE_BETA = 1.0
CACHE_BETA_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# The linear probe's inverse regularisation C as CLIP chose it (Radford et al., 2021, A.3): by
# accuracy on a held-out fifth of every class's training rows (seeded), first over 10^-6 ... 10^6
# every two decades, then halving the step around the best until 8 steps a decade; then refit on
# all rows. Full-batch L-BFGS of scikit-learn's objective to its tolerance (1e-4 on the
# gradient), at most PROBE_MAX_ITER iterations (CLIP's), each fit starting from the solution of
# the nearest C fitted before, the final one from the chosen C's.
PROBE_C_RANGE = (-6, 6)  # powers of ten
PROBE_COARSE_STEP = 2.0  # decades
PROBE_FINEST_STEP = 1 / 8
PROBE_HOLDOUT = 0.2
PROBE_MAX_ITER = 1000
PROBE_TOLERANCE = 1e-4  # scikit-learn's: the largest entry of the gradient at which a fit stops
_FTOL = 64 * np.finfo(np.float64).eps  # scikit-learn's: the least relative decrease of the loss
# Below this many training entries (rows × D) a probe on a GPU is fitted on the CPU: each L-BFGS
# step is a few small kernels and a synchronisation, so at the demo's size (1,257 × 64) a fit took
# 20× as long on a GPU shared by 8 sweep jobs as on one CPU core; at CIFAR-10 size (50,000 × 512)
# the GPU is the faster. The boundary between them was not measured.
PROBE_GPU_MIN_ENTRIES = 2**20
_CHUNK_ENTRIES = 2**24  # test rows are scored in chunks of about this many similarities

Scorer = Callable[[Tensor], Tensor]


def _chunked(score: Callable[[Tensor], Tensor], test: Tensor, n_train: int) -> Tensor:
    rows = max(1, _CHUNK_ENTRIES // max(n_train, 1))
    return torch.cat([score(test[i : i + rows]) for i in range(0, len(test), rows)])


@dataclass(frozen=True)
class FittedBaseline:
    """A fitted baseline: called on test rows, their class scores (rows, classes).

    ``tensors`` are a linear probe's ``weight`` (C, D) and ``bias`` (C,), a k-NN's or
    cache's ``bank`` of L2-normalised training rows (N, D) and their class ``labels`` (N,),
    RanPAC's ``projection`` (D, M) and ``weight`` (M, C), or FeCAM's class ``means`` (C, D) and
    ``precisions`` (C, D, D)."""

    name: str
    tensors: dict[str, Tensor]
    n_classes: int
    k: int = KNN_NEIGHBOURS
    temperature: float = KNN_TEMPERATURE
    beta: float = CACHE_BETA

    def __call__(self, rows: Tensor) -> Tensor:
        if self.name in ("knn", "cache"):
            return _chunked(self.score_block, rows, len(self.tensors["bank"]))
        if self.name == "ranpac":
            return _chunked(self.score_block, rows, self.tensors["projection"].shape[1])
        return self.score_block(rows)

    def score_block(self, rows: Tensor) -> Tensor:
        """The scores of one block of rows, with fixed-shape operations (``torch.export``)."""
        t = self.tensors
        if self.name == "linear_probe":
            return rows.to(t["weight"].dtype) @ t["weight"].T + t["bias"]
        if self.name == "ranpac":
            return ranpac_scores(rows, t["projection"], t["weight"])
        if self.name == "fecam":
            return fecam_scores(fecam_rows(rows.to(t["means"].dtype)), t["means"], t["precisions"])
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
    held_out = _held_out_accuracy(fit, train, labels, n_classes, seed)
    if held_out is None:
        return default
    accuracies = [held_out(v) for v in grid]
    return grid[max(range(len(grid)), key=lambda i: (accuracies[i], -i))]


def _held_out_accuracy(
    fit: Callable[[Tensor, Tensor, float], Scorer],
    train: Tensor,
    labels: Tensor,
    n_classes: int,
    seed: int,
) -> Callable[[float], float] | None:
    """The held-out accuracy of ``fit`` at a value (``holdout_split``), or None when no split is
    possible."""
    split = holdout_split(labels, n_classes, seed)
    if split is None:
        return None
    kept, held = split
    x_kept, y_kept = train[kept], labels[kept]  # copied once, not once a value
    x_held, y_held = train[held], labels[held]
    return lambda v: _accuracy(fit(x_kept, y_kept, v)(x_held), y_held)


def search_log_scale(
    accuracy: Callable[[float], float],
    low: float = PROBE_C_RANGE[0],
    high: float = PROBE_C_RANGE[1],
    coarse: float = PROBE_COARSE_STEP,
    finest: float = PROBE_FINEST_STEP,
) -> float:
    """CLIP's parametric binary search: the best of 10^low, 10^(low + coarse), ..., 10^high, then
    the best of it and its two neighbours at half the step, until the step is ``finest`` (in
    decades, within the range). Ties go to the smaller value. Returns the value."""
    seen: dict[float, float] = {}

    def score(power: float) -> tuple[float, float]:
        power = round(power, 9)
        if power not in seen:
            seen[power] = accuracy(10.0**power)
        return seen[power], -power

    best = max(np.arange(low, high + coarse / 2, coarse).tolist(), key=score)
    step = coarse
    while step > finest:
        step /= 2
        near = [p for p in (best - step, best, best + step) if low <= p <= high]
        best = max(near, key=score)
    return 10.0**best


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


# The threads a probe's passes over its rows run on, inside ``_threads_that_keep_bits``
_PASS_THREADS: ContextVar[int | None] = ContextVar("probe_pass_threads", default=None)


@contextlib.contextmanager
def _threads_that_keep_bits() -> Iterator[None]:
    """PyTorch and BLAS on one thread, and a probe's passes over its rows (``logistic_pass``,
    whose sums do not depend on the threads) on those the caller had: the probe's fits the same
    bits whatever threads its job runs on. On several threads the rows' mean and scatter, their
    eigen-decomposition and the products of the weights round otherwise, and moved few-shot
    probe rows by up to 5.7 points. The price: those steps lose the job's other threads (a
    10-class probe's bases cost about a third of its passes; sweep jobs run on one thread)."""
    if _PASS_THREADS.get() is not None:  # within a probe's fit already
        yield
        return
    threads = torch.get_num_threads()
    token = _PASS_THREADS.set(threads)
    torch.set_num_threads(1)
    try:
        with _thread_pools().limit(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)
        _PASS_THREADS.reset(token)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _keeping_bits(fit: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fit`` within ``_threads_that_keep_bits`` where its rows (``train``, the first
    argument) are on the CPU."""

    @functools.wraps(fit)
    def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if (args[0] if args else kwargs["train"]).device.type != "cpu":
            return fit(*args, **kwargs)
        with _threads_that_keep_bits():
            return fit(*args, **kwargs)

    return wrapped


def _probe_rows(x: Tensor) -> Tensor:
    """Training rows as the probe fits them: float64 on the CPU, float32 on a GPU."""
    return x.double() if x.device.type == "cpu" else x.float()


def _scatter(x: Tensor) -> tuple[Tensor, Tensor]:
    """The mean (D,) of rows ``x`` (N, D) and their scatter matrix, the sum of (x - mean)(x -
    mean)^T (D, D)."""
    mean = x.mean(0)
    centred = x - mean
    if x.device.type == "cpu":  # NumPy's A.T @ A: BLAS's symmetric rank-k update
        return mean, torch.from_numpy(centred.numpy().T @ centred.numpy())
    return mean, centred.T @ centred


@dataclass(frozen=True)
class FeatureBasis:
    """A probe's training rows (N, D) as it fits them (``_probe_rows``), their mean (D,), their
    scatter matrix (D, D) and the eigen-decomposition (values (D,), vectors E (D, D)) of their
    covariance: what ``fit_logistic`` preconditions with, computed once for every C."""

    rows: Tensor
    mean: Tensor
    values: Tensor
    vectors: Tensor
    scatter: Tensor

    @classmethod
    def of(cls, x: Tensor, moments: tuple[Tensor, Tensor] | None = None) -> FeatureBasis:
        """The basis of rows ``x``; ``moments``: their mean and scatter matrix, if known."""
        mean, scatter = _scatter(x) if moments is None else moments
        values, vectors = torch.linalg.eigh(scatter / len(x))
        return cls(x, mean, values.clamp_min(0), vectors, scatter)

    def joined(self, rows: Tensor, others: Tensor) -> FeatureBasis:
        """The basis of ``rows``, which are this basis's rows and ``others`` (in any order):
        their mean and scatter from this basis's and those of ``others`` (the pairwise update
        of Chan, Golub and LeVeque), not from all of ``rows`` again."""
        n, m = len(self.rows), len(others)
        mean, scatter = _scatter(others)
        delta = mean - self.mean
        joined_mean = self.mean + delta * (m / (n + m))
        joined_scatter = self.scatter + scatter + torch.outer(delta, delta) * (n * m / (n + m))
        return FeatureBasis.of(rows, (joined_mean, joined_scatter))

    def scale(self, n_classes: int, C: float) -> Tensor:
        """s (D,) for which the objective over V = W E diag(1/s) is about as curved in every
        direction: s = (eigenvalues / classes + 1 / (C N))^(-1/2), the first term the
        cross-entropy's curvature at uniform probabilities, the second the penalty's."""
        return (self.values / n_classes + 1 / (C * len(self.rows))).rsqrt()


class LogisticFit(NamedTuple):
    """A fitted logistic regression: weights (classes, D), biases (classes,), and the loss-and-
    gradient evaluations it took (each one pass over the rows)."""

    weight: Tensor
    bias: Tensor
    evaluations: int


class _Objective:
    """scikit-learn's logistic objective over C · N, as SciPy minimises it, in the coordinates
    V = W E diag(1/s), b' = b + W mean of ``basis`` (an orthogonal change of basis of the centred
    rows, scaled): called at a flat (V, b'), the loss and its gradient; ``largest_gradient``,
    scikit-learn's stopping quantity, in W and b; ``weights`` and ``coordinates`` convert
    between (W, b) and (V, b'). Each call reads the rows for the logits and for the gradient
    (on the CPU once for both, ``_cross_entropy``); the change of basis is applied to the
    weights (classes × D), never to the rows."""

    def __init__(self, basis: FeatureBasis, labels: Tensor, n_classes: int, C: float):
        self.basis, self.n_rows, self.n_classes = basis, len(basis.rows), n_classes
        self.scale = basis.scale(n_classes, C)
        if basis.rows.device.type == "cpu":  # as ``logistic_pass`` reads them
            self.rows, self.labels = basis.rows.contiguous().numpy(), labels.long().numpy()
        else:
            self.onehot = F.one_hot(labels, n_classes).T.to(basis.rows.dtype).contiguous()
        self.penalty = 1 / (2 * C * self.n_rows)
        self.evaluations = 0
        self._last: tuple[np.ndarray, Tensor, Tensor] | None = None

    def coordinates(self, start: tuple[Tensor, Tensor] | None) -> np.ndarray:
        """The flat (V, b') of weights and biases ``start`` (default: zeros)."""
        if start is None:
            return np.zeros(self.n_classes * (len(self.scale) + 1))
        weight, bias = (t.to(self.scale) for t in start)
        v = (weight @ self.basis.vectors).div_(self.scale)
        return torch.cat([v.ravel(), bias + weight @ self.basis.mean]).double().cpu().numpy()

    def weights(self, flat: np.ndarray) -> tuple[Tensor, Tensor]:
        """The weights W (classes, D) and biases b (classes,) at a flat (V, b')."""
        theta = torch.from_numpy(flat).to(self.scale)
        v, shifted = theta[: -self.n_classes].view(self.n_classes, -1), theta[-self.n_classes :]
        weight = (v * self.scale) @ self.basis.vectors.T
        return weight, shifted - weight @ self.basis.mean

    def __call__(self, flat: np.ndarray) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        weight, bias = self.weights(flat)
        loss, weight_gradient, bias_gradient = self._cross_entropy(weight, bias)
        loss += self.penalty * float(weight.square().sum())
        weight_gradient.add_(weight, alpha=2 * self.penalty)
        self._last = flat.copy(), weight_gradient, bias_gradient
        # in V: the gradient in W of the centred rows' weights, rotated and scaled
        centred = weight_gradient - bias_gradient[:, None] * self.basis.mean
        v_gradient = (centred @ self.basis.vectors).mul_(self.scale)
        return float(loss), torch.cat([v_gradient.ravel(), bias_gradient]).double().cpu().numpy()

    def _cross_entropy(self, weight: Tensor, bias: Tensor) -> tuple[float, Tensor, Tensor]:
        """The rows' mean cross-entropy under ``weight`` and ``bias``, and its gradients in
        them: on the CPU in one read of the rows (``logistic_pass``), on a GPU by two products."""
        x = self.basis.rows
        if x.device.type == "cpu":
            from imprint.method.kernels import LOGISTIC_PARTS, logistic_pass, on_torch_threads

            losses = np.empty(LOGISTIC_PARTS)
            sums = np.empty((LOGISTIC_PARTS, self.n_classes, x.shape[1] + 1))
            weight_t = weight.T.contiguous().numpy()
            args = (self.rows, weight_t, bias.numpy(), self.labels, losses, sums)
            on_torch_threads(logistic_pass, *args, threads=_PASS_THREADS.get())
            gradient = torch.from_numpy(sums.sum(0) / self.n_rows)
            return float(losses.sum()) / self.n_rows, gradient[:, :-1], gradient[:, -1]
        log_p = torch.log_softmax(torch.addmm(bias[:, None], weight, x.T), dim=0)
        residual = log_p.exp().sub_(self.onehot).div_(self.n_rows)
        loss = -float((log_p * self.onehot).sum()) / self.n_rows
        return loss, residual @ x, residual.sum(1)

    def largest_gradient(self, flat: np.ndarray) -> float:
        """The largest entry of the gradient in W and b at ``flat``."""
        if self._last is None or not np.array_equal(self._last[0], flat):
            self(flat)
        _, weight_gradient, bias_gradient = self._last
        return max(float(weight_gradient.abs().max()), float(bias_gradient.abs().max()))


def _minimise(objective: _Objective, initial: np.ndarray, max_iter: int) -> np.ndarray:
    """scikit-learn's solver as it runs the logistic regression: SciPy's L-BFGS-B with its
    settings, until no entry of the gradient in W and b exceeds ``PROBE_TOLERANCE``."""
    from scipy import optimize  # here: planning, which imports this module, needs no SciPy

    def converged(intermediate_result: OptimizeResult) -> None:
        if objective.largest_gradient(intermediate_result.x) <= PROBE_TOLERANCE:
            raise StopIteration  # SciPy ends the minimisation there

    options = {"maxiter": max_iter, "maxls": 50, "gtol": 0.0, "ftol": _FTOL}
    # L-BFGS-B's own products are tiny; OpenBLAS threads woken for them spin on the cores torch's
    # threads need (2 threads on 2 cores: a fit 10-30x as long as on one BLAS thread). The
    # objective's products run within the threads of ``logistic_pass``, one BLAS thread each.
    with _thread_pools().limit(limits=1, user_api="blas"):
        if objective.largest_gradient(initial) <= PROBE_TOLERANCE:
            return initial
        return optimize.minimize(
            objective, initial, jac=True, method="L-BFGS-B", callback=converged, options=options
        ).x


@functools.cache
def _thread_pools() -> ThreadpoolController:
    """The thread pools of the libraries loaded, SciPy's BLAS among them (L-BFGS-B's, and the one
    numba's ``np.dot`` calls in ``logistic_pass``): a controller limits only those it found."""
    import scipy.linalg.cython_blas  # noqa: F401

    return ThreadpoolController()


@_keeping_bits
def fit_logistic(
    train: Tensor,
    labels: Tensor,
    n_classes: int,
    C: float,
    max_iter: int = PROBE_MAX_ITER,
    start: tuple[Tensor, Tensor] | None = None,
    basis: FeatureBasis | None = None,
) -> LogisticFit:
    """Multinomial logistic regression with an L2 penalty, scikit-learn's objective
    C · Σ cross-entropy + ½ ‖W‖² (bias not penalised), by scikit-learn's solver (``_minimise``)
    from ``start`` (weights, biases; default zeros). The solver runs on an exact
    reparametrisation in the eigenbasis of the rows' covariance (``_Objective``; ``basis``:
    ``FeatureBasis.of`` the rows, when the caller has it): the same optimum, reached in far
    fewer iterations than on raw embeddings, whose curvature spans orders of magnitude. The loss
    and its gradient are computed where the rows are (float64 on the CPU, float32 on a GPU).
    Returns weights (classes, D), biases (classes,) and the loss evaluations."""
    basis = FeatureBasis.of(_probe_rows(train)) if basis is None else basis
    with torch.no_grad():
        objective = _Objective(basis, labels, n_classes, C)
        solution = _minimise(objective, objective.coordinates(start), max_iter)
        return LogisticFit(*objective.weights(solution), objective.evaluations)


@_keeping_bits
def probe_bases(
    train: Tensor, labels: Tensor, n_classes: int, seed: int
) -> dict[int, FeatureBasis]:
    """The bases a probe's C search and refit precondition with, by their rows' count: the
    held-out split's kept rows' (``holdout_split``) and all rows', joined from the kept rows'
    and the held-out rows'; all rows' alone where no split is possible."""
    rows = _probe_rows(train)
    split = holdout_split(labels, n_classes, seed)
    if split is None:
        return {len(rows): FeatureBasis.of(rows)}
    kept, held = split
    basis = FeatureBasis.of(rows[kept])
    return {len(kept): basis, len(rows): basis.joined(rows, rows[held])}


class ProbeFit(NamedTuple):
    """A linear probe: weights (classes, D), biases (classes,), its C, and the passes over its
    training rows its fits took (loss-and-gradient evaluations; one over the held-out split's
    kept rows counts as their share of the rows)."""

    weight: Tensor
    bias: Tensor
    C: float
    passes: float


@_keeping_bits
def fit_linear_probe(
    train: Tensor,
    labels: Tensor,
    n_classes: int,
    seed: int = 0,
    C: float | None = None,
    max_iter: int = PROBE_MAX_ITER,
) -> ProbeFit:
    """CLIP's linear-probe protocol: C (given, or found by ``search_log_scale`` on held-out
    accuracy; 1 when a class has a single row), then logistic regression on all training rows.
    The weights and biases are on ``train``'s device; small probes are fitted on the CPU
    (``PROBE_GPU_MIN_ENTRIES``)."""
    if train.device.type != "cpu" and train.numel() < PROBE_GPU_MIN_ENTRIES:
        probe = fit_linear_probe(train.cpu(), labels.cpu(), n_classes, seed, C, max_iter)
        return probe._replace(
            weight=probe.weight.to(train.device), bias=probe.bias.to(train.device)
        )
    passes = 0.0
    solutions: dict[float, tuple[Tensor, Tensor]] = {}
    # per row count (the held-out split's kept rows, all rows): the rows' basis
    bases: dict[int, FeatureBasis] = {}

    def nearest(c: float) -> tuple[Tensor, Tensor] | None:
        if not solutions:
            return None
        return solutions[min(solutions, key=lambda s: abs(math.log(s / c)))]

    def logistic(x: Tensor, y: Tensor, c: float, start: tuple[Tensor, Tensor] | None):
        if len(x) not in bases:
            bases[len(x)] = FeatureBasis.of(_probe_rows(x))
        weight, bias, evaluations = fit_logistic(x, y, n_classes, c, max_iter, start, bases[len(x)])
        nonlocal passes
        passes += evaluations * len(x) / len(train)
        return weight, bias

    def fit(x: Tensor, y: Tensor, c: float) -> Scorer:
        weight, bias = solutions[c] = logistic(x, y, c, nearest(c))
        return FittedBaseline("linear_probe", {"weight": weight, "bias": bias}, n_classes)

    if C is None:
        bases.update(probe_bases(train, labels, n_classes, seed))
        held_out = _held_out_accuracy(fit, train, labels, n_classes, seed)
        C = 1.0 if held_out is None else search_log_scale(held_out)
    weight, bias = logistic(train, labels, C, solutions.get(C))
    return ProbeFit(weight, bias, C, passes)


class FineTunedProbe(ClassLearner):
    """The linear probe as exemplar-free class-incremental learning fine-tunes it: CLIP's
    protocol on the first rows given (``fit_linear_probe``, C by held-out accuracy), then, for
    each later call, the same objective over every class seen so far on that call's rows only,
    from the weights so far (a new class's at zero), at the first call's C. No row is kept: the
    objective no longer holds the earlier classes' rows, so they are forgotten."""

    def __init__(self, seed: int = 0, max_iter: int = PROBE_MAX_ITER) -> None:
        self.seed, self.max_iter = seed, max_iter
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None
        self.C: float | None = None

    def partial_fit(self, X: np.ndarray, y: np.ndarray) -> FineTunedProbe:
        """Learn from the rows ``X`` (N, D) of labels ``y``; labels not seen before are new
        classes."""
        labels = self._positions(y)
        order = torch.argsort(labels, stable=True)  # grouped by class, as a sweep hands rows on
        rows = torch.as_tensor(np.asarray(X, dtype=np.float32))[order]
        labels, n_classes = labels[order], len(self.classes_)
        if self.weight is None:
            self.weight, self.bias, self.C, _ = fit_linear_probe(
                rows, labels, n_classes, self.seed, max_iter=self.max_iter
            )
            return self
        new = n_classes - len(self.weight)
        start = (
            torch.cat([self.weight, self.weight.new_zeros(new, self.weight.shape[1])]),
            torch.cat([self.bias, self.bias.new_zeros(new)]),
        )
        self.weight, self.bias, _ = fit_logistic(
            rows, labels, n_classes, self.C, self.max_iter, start
        )
        return self

    def scores(self, X: np.ndarray) -> Tensor:
        """Each row's logit per class (N, classes)."""
        head = FittedBaseline("linear_probe", self.kept_state(), len(self.classes_))
        return head(torch.as_tensor(np.asarray(X, dtype=np.float32)))

    def kept_state(self) -> dict[str, Tensor]:
        """What the probe keeps between calls: its weights and biases."""
        return {"weight": self.weight, "bias": self.bias}


def fit_baseline(
    name: str, train: Tensor, labels: Tensor, n_classes: int, k: int, seed: int
) -> FittedBaseline:
    """A baseline with the study's settings, fitted. ``k`` is the k-NN's number of neighbours
    (−1: all) and RanPAC's projection width M (−1: ``RANPAC_DIMENSIONS``, its authors')."""
    if name == "linear_probe":
        weight, bias, *_ = fit_linear_probe(train, labels, n_classes, seed)
        return FittedBaseline(name, {"weight": weight, "bias": bias}, n_classes)
    if name in ("knn", "cache"):
        return FittedBaseline(name, {"bank": l2_normalize(train), "labels": labels}, n_classes, k)
    if name in ("ranpac", "fecam"):
        return FittedBaseline(name, _learnt(name, train, labels, n_classes, k, seed), n_classes)
    raise ValueError(f"no baseline named {name!r}; choose one of {list(BASELINES)}")


def _learnt(
    name: str, train: Tensor, labels: Tensor, n_classes: int, k: int, seed: int
) -> dict[str, Tensor]:
    """RanPAC's (its projection ``k`` wide, −1: ``RANPAC_DIMENSIONS``; seeded) or FeCAM's tensors
    from one ``partial_fit`` on all the rows, on their device."""
    x, y = train.cpu().numpy(), labels.cpu().numpy()
    width = RANPAC_DIMENSIONS if k == -1 else k
    learner = RanPAC(width, seed) if name == "ranpac" else FeCAM()
    learner.partial_fit(x, y)
    if not np.array_equal(learner.classes_, np.arange(n_classes)):
        raise ValueError(f"{name} needs rows of every one of the {n_classes} classes")
    if name == "ranpac":
        tensors = {"projection": learner.projection, "weight": learner.weight}
    else:
        tensors = {"means": learner.means(), "precisions": torch.stack(learner.precision)}
    return {key: tensor.to(train.device) for key, tensor in tensors.items()}
