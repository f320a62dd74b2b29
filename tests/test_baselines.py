"""The baselines (linear probe, k-NN, cache, RanPAC, FeCAM) against direct NumPy computations
and scikit-learn, and in the sweep beside imprinting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression

from imprint import NAMED_METHODS, ImprintingClassifier, expand_grid, sweep
from imprint.method import kernels
from imprint.method.baselines import (
    PROBE_GPU_MIN_ENTRIES,
    FeatureBasis,
    cache_scores,
    fit_linear_probe,
    fit_logistic,
    holdout_split,
    knn_scores,
    search_log_scale,
    select_cache_beta,
)
from imprint.method.cil_methods import FeCAM, RanPAC
from imprint.method.normalize import l2_normalize
from imprint.method.pipeline import prepare_classes
from tests.conftest import fresh_process, in_fresh_process, make_task, torch_threads


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _numpy_knn(train, labels, test, n_classes, k, temperature):
    """DINO's rule, one test row at a time."""
    scores = np.zeros((len(test), n_classes))
    similarity = _unit(test) @ _unit(train).T
    for i, row in enumerate(similarity):
        for j in np.argsort(-row, kind="stable")[:k]:
            scores[i, labels[j]] += np.exp(row[j] / temperature)
    return scores


@pytest.mark.parametrize(("k", "temperature"), [(20, 0.07), (5, 0.5), (1000, 0.07)])
def test_knn_is_the_direct_rule(k, temperature):
    rng = np.random.default_rng(k)
    train, test = rng.normal(size=(300, 16)), rng.normal(size=(90, 16))
    labels = rng.integers(0, 6, 300)
    ours = knn_scores(
        torch.tensor(train), torch.tensor(labels), torch.tensor(test), 6, k, temperature
    ).numpy()
    expected = _numpy_knn(train, labels, test, 6, k, temperature)
    np.testing.assert_allclose(ours, expected, rtol=1e-9)
    assert (ours.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize("beta", [1.0, 5.5])
def test_cache_is_the_direct_sum_of_affinities(beta):
    rng = np.random.default_rng(3)
    train, test = rng.normal(size=(200, 12)), rng.normal(size=(50, 12))
    labels = rng.integers(0, 4, 200)
    ours = cache_scores(torch.tensor(train), torch.tensor(labels), torch.tensor(test), 4, beta)
    expected = np.zeros((50, 4))
    for i, row in enumerate(_unit(test)):
        for j, other in enumerate(_unit(train)):
            expected[i, labels[j]] += np.exp(-beta * (1 - row @ other))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize("noise", [0.2, 3.0])  # separable, and classes that overlap
@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
def test_logistic_regression_agrees_with_scikit_learn(noise, C):
    """On features whose scales span four orders of magnitude (the preconditioning's case),
    given the iterations to converge: scikit-learn's stopping test met (the gradient computed
    here) and an objective no higher than scikit-learn's run to its limits (whose L-BFGS,
    unpreconditioned, stalls above the optimum on some of these), up to that tolerance."""
    rng = np.random.default_rng(int(noise * 10))
    centres = rng.normal(size=(5, 10)) * 2
    labels = rng.integers(0, 5, 400)
    scales = np.logspace(-2, 2, 10)
    x = ((centres[labels] + noise * rng.normal(size=(400, 10))) * scales).astype(np.float32)
    train = slice(0, 400)
    weight, bias, _ = fit_logistic(
        torch.tensor(x[train]), torch.tensor(labels[train]), 5, C, 20_000
    )
    # the gradient of the mean cross-entropy plus ||W||² / (2 C N): at most 1e-4 in every entry
    # (up to 2e-4 where float64 line searches can no longer lower the loss)
    rows = x[train].astype(np.float64)
    z = rows @ weight.numpy().T + bias.numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(400), labels[train]] -= 1
    gradient = np.concatenate([(p.T @ rows / 400 + weight.numpy() / (C * 400)).ravel(), p.mean(0)])
    assert np.abs(gradient).max() <= 2e-4

    def objective(w: np.ndarray, b: np.ndarray) -> float:  # the mean loss plus the penalty
        z = rows @ w.T + b
        z -= z.max(1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -log_p[np.arange(400), labels[train]].mean() + (w**2).sum() / (2 * C * 400)

    best = LogisticRegression(C=C, max_iter=20_000, tol=1e-8).fit(x[train], labels[train])
    reached = objective(weight.numpy(), bias.numpy())
    assert reached <= objective(best.coef_.astype(np.float64), best.intercept_) + 1e-4


def _logistic_pass(x, weight, bias, labels, threads: int):
    losses = np.empty(kernels.LOGISTIC_PARTS)
    sums = np.empty((kernels.LOGISTIC_PARTS, *weight.shape[:1], x.shape[1] + 1))
    args = (x, np.ascontiguousarray(weight.T), bias, labels, losses, sums)
    with torch_threads(threads):
        kernels.on_torch_threads(kernels.logistic_pass, *args)
    return losses, sums


@pytest.mark.parametrize("n", [5, 9000])  # fewer rows than parts; parts of several blocks
def test_the_logistic_pass_is_the_direct_loss_and_gradient_whatever_the_threads(n):
    """The probe's pass over its rows: the summed cross-entropy and the residuals (softmax
    minus one-hot) times [x, 1], as SciPy's log-softmax gives them row by row; the same bits
    on one thread and on two."""
    rng = np.random.default_rng(n)
    x, labels = rng.normal(size=(n, 33)) * 3, rng.integers(0, 6, n)
    weight, bias = rng.normal(size=(6, 33)), rng.normal(size=6)
    losses, sums = _logistic_pass(x, weight, bias, labels, threads=1)
    log_p = log_softmax(x @ weight.T + bias, axis=1)
    assert losses.sum() == pytest.approx(-log_p[np.arange(n), labels].sum(), rel=1e-12)
    residual = np.exp(log_p)
    residual[np.arange(n), labels] -= 1
    expected = residual.T @ np.column_stack([x, np.ones(n)])
    np.testing.assert_allclose(sums.sum(0), expected, rtol=1e-10, atol=1e-10)
    two_threads = _logistic_pass(x, weight, bias, labels, threads=2)
    assert all(np.array_equal(a, b) for a, b in zip((losses, sums), two_threads, strict=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_basis_joined_from_two_row_sets_is_that_of_their_union(dtype):
    """All rows' basis from the kept rows' and the held-out rows' (the probe's refit): the mean,
    the scatter (N - 1 times NumPy's covariance) and an eigen-decomposition of it of the union,
    rows far from the origin (the sets' means differ) included."""
    rng = np.random.default_rng(4)
    rows = rng.normal(size=(300, 6)) * [1, 2, 3, 1e-3, 1, 5] + 40
    rows[:80] += 3  # the second set's rows, of another mean
    union = torch.tensor(rows[::-1].copy(), dtype=dtype)  # in any order
    first = FeatureBasis.of(torch.tensor(rows[80:], dtype=dtype))
    basis = first.joined(union, torch.tensor(rows[:80], dtype=dtype))
    rtol = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(basis.mean, rows.mean(0), rtol=rtol)
    np.testing.assert_allclose(basis.scatter, 299 * np.cov(rows.T), rtol=rtol, atol=rtol)
    covariance = basis.vectors @ torch.diag(basis.values) @ basis.vectors.T
    np.testing.assert_allclose(covariance, np.cov(rows.T) * 299 / 300, rtol=rtol, atol=rtol)
    assert basis.rows is union


def test_holdout_split_keeps_a_seeded_fifth_of_every_class():
    labels = torch.tensor(np.repeat(np.arange(3), [10, 5, 2]))
    kept, held = holdout_split(labels, 3, seed=4)
    assert sorted(torch.cat([kept, held]).tolist()) == list(range(17))
    assert np.bincount(labels[held].numpy(), minlength=3).tolist() == [2, 1, 1]
    again = holdout_split(labels, 3, seed=4)
    assert torch.equal(held, again[1]) and not torch.equal(held, holdout_split(labels, 3, 5)[1])
    assert holdout_split(torch.tensor([0, 0, 1]), 2, seed=0) is None  # one row of class 1


def test_the_cache_chooses_by_held_out_accuracy():
    x, y = make_task(n_classes=4, per_class=40, dim=8, seed=5)
    x, y = torch.tensor(x), torch.tensor(y)
    kept, held = holdout_split(y, 4, seed=2)
    betas = (0.5, 4.0, 32.0)
    hits = {
        b: float(
            (cache_scores(x[kept], y[kept], x[held], 4, b).argmax(1) == y[held]).double().mean()
        )
        for b in betas
    }
    assert select_cache_beta(x, y, 4, seed=2, grid=betas) == max(betas, key=lambda b: (hits[b], -b))


def test_the_c_search_is_clips_halving_around_the_best_to_eight_steps_a_decade():
    asked: list[float] = []

    def peaked(c: float) -> float:  # best at 10^2.3: the nearest eighth of a decade is 2.25
        asked.append(c)
        return -((np.log10(c) - 2.3) ** 2)

    assert search_log_scale(peaked) == pytest.approx(10**2.25)
    coarse = [10.0**p for p in range(-6, 7, 2)]
    assert asked[:7] == pytest.approx(coarse)  # every two decades, then two more per halving
    assert len(asked) == 7 + 2 * 4
    assert search_log_scale(lambda c: 0.5) == pytest.approx(1e-6)  # ties: the smaller C
    assert search_log_scale(np.log10) == pytest.approx(1e6)  # the range's edge is reachable


def _loud_task(seed: int, n: int = 50, scale: float = 5.62):
    """10 classes in 64-d whose first 16 features are noise 8 times louder than the others: a
    probe needs some fitting, and too much overfits (held-out optimum near C = 1e-3 at this
    scale)."""
    rng = np.random.default_rng(seed)
    spread = np.where(np.arange(64) < 16, 8.0, 1.0)
    centres = rng.normal(size=(10, 64)) * 0.3

    def rows(count: int) -> np.ndarray:
        return np.concatenate([c + rng.normal(size=(count, 64)) * spread for c in centres]) * scale

    return rows(n), np.repeat(np.arange(10), n), rows(300), np.repeat(np.arange(10), 300)


def test_the_probe_matches_scikit_learn_tuned_over_clips_range_where_the_best_c_is_small():
    """On a task whose held-out optimum lies near C = 1e-3 (below the old grid's 0.01), the probe
    lands within half a point of scikit-learn's LogisticRegression tuned on the same held-out
    split over the same range, 10^-6 ... 10^6, every half decade."""
    x, y, x_test, y_test = _loud_task(0)
    kept, held = (t.numpy() for t in holdout_split(torch.tensor(y), 10, seed=0))

    def held_out(c: float) -> float:
        model = LogisticRegression(C=c, max_iter=1000).fit(x[kept], y[kept])
        return model.score(x[held], y[held])

    grid = [10.0**p for p in np.arange(-6, 6.1, 0.5)]
    scores = [held_out(c) for c in grid]
    best = grid[int(np.argmax(scores))]
    reference = LogisticRegression(C=best, max_iter=1000).fit(x, y).score(x_test, y_test)
    weight, bias, chosen, _ = fit_linear_probe(torch.tensor(x), torch.tensor(y), 10, seed=0)
    ours = np.mean((torch.tensor(x_test) @ weight.T + bias).argmax(1).numpy() == y_test)
    assert 1e-4 <= best <= 1e-2 and 1e-4 <= chosen <= 1e-2
    assert abs(ours - reference) * 100 <= 0.5
    old_grid_best = LogisticRegression(C=0.01, max_iter=1000).fit(x, y).score(x_test, y_test)
    assert (ours - old_grid_best) * 100 >= 1  # the narrower grid's smallest C loses


def test_a_probe_fits_the_same_bits_on_one_thread_and_on_two():
    """The rows' mean, scatter and eigen-decomposition, the weights' products and the held-out
    scoring on one thread, the passes over the rows on the job's (in parts that do not depend on
    them): a job's thread count does not move a probe (it moved few-shot probe rows by up to 5.7
    points when every step ran on every thread)."""
    x, y = (torch.tensor(a) for a in make_task(n_classes=10, per_class=300, dim=512, seed=2))
    fits = []
    for threads in (1, 2):
        with torch_threads(threads):
            fits.append(fit_linear_probe(x, y, 10, seed=0))
            assert torch.get_num_threads() == threads
    one, two = fits
    assert one.C == two.C and one.passes == two.passes
    assert torch.equal(one.weight, two.weight) and torch.equal(one.bias, two.bias)


_PROBE_ON_TWO_THREADS = """
import numpy as np, torch
from imprint.method.baselines import fit_linear_probe
torch.set_num_threads(2)
rng = np.random.default_rng(0)
x, y = torch.tensor(rng.normal(size=(3000, 512))), torch.tensor(rng.integers(0, 10, 3000))
print(fit_linear_probe(x, y, 10, seed=0, C=1.0).passes)
"""


def test_a_probe_on_two_threads_calls_blas_on_one_within_its_passes():
    """In a fresh process (SciPy's BLAS not loaded until the probe needs it), the products
    inside the passes' threads run on one BLAS thread: OpenBLAS warns when it is asked for
    threads of its own inside an OpenMP loop, where it may hang."""
    done = fresh_process(_PROBE_ON_TWO_THREADS)
    assert float(done.stdout) > 0 and "OpenBLAS Warning" not in done.stderr


def test_the_probe_counts_its_passes_over_the_rows(monkeypatch):
    """Every loss-and-gradient evaluation reads the rows it fits once (``logistic_pass``):
    counted there, each weighted by its share of all rows, they are the probe's passes."""
    x, y, _, _ = _loud_task(0)
    rows: list[int] = []
    kernel = kernels.logistic_pass

    def counted(x, *args):
        rows.append(len(x))
        return kernel(x, *args)

    monkeypatch.setattr(kernels, "logistic_pass", counted)
    probe = fit_linear_probe(torch.tensor(x), torch.tensor(y), 10, seed=0)
    assert len(set(rows)) == 2  # the held-out split's kept rows, and all rows
    assert probe.passes == pytest.approx(sum(rows) / len(x)) and probe.passes > 10
    rows.clear()
    *_, evaluations = fit_logistic(torch.tensor(x), torch.tensor(y), 10, probe.C)
    assert evaluations == len(rows) > 0


def test_baselines_in_a_sweep_equal_the_classifier_and_see_the_few_shot_rows(task):
    x, y, x_test, y_test = task
    names = ["linear_probe", "knn", "cache"]
    runs = expand_grid({"gen": names, "fewshot": [3, -1], "seed": [1, 2]})
    assert len(runs) == 3 * 2 * 2 and set(runs["norm_post"]) == {"none"}
    result = sweep(x, y, x_test, y_test, runs)
    assert result["self_duality"].isna().all() and (result["gen_time_s"] > 0).all()
    for _, row in result.iterrows():
        params = {c: row[c] for c in runs.columns}
        clf = ImprintingClassifier(**params).fit(x, y)
        assert row["accuracy"] == pytest.approx(clf.score(x_test, y_test) * 100)
    # A few-shot k-NN over every row votes with exactly the rows imprinting's GEN all keeps.
    row = expand_grid({"gen": ["knn"], "k": [-1], "fewshot": [3], "seed": [7]})
    knn = sweep(x, y, x_test, y_test, row)["accuracy"].iloc[0]
    batch = prepare_classes(torch.tensor(x), torch.tensor(y), 4, "l2", 3, None, 7)
    rows, index = batch.flat()
    scores = _numpy_knn(rows.numpy(), index.numpy(), x_test, 4, len(rows), 0.07)
    assert knn == pytest.approx(np.mean(scores.argmax(1) == y_test) * 100)


def test_named_baselines_and_their_grid_rules():
    assert NAMED_METHODS["knn"]["k"] == 20 and NAMED_METHODS["linear_probe"]["norm_pre"] == "none"
    runs = expand_grid(
        {"gen": ["knn", "cache", "linear_probe", "ranpac", "fecam"], "k": [5, 20],
         "norm_pre": ["none", "l2"], "norm_inf": ["none", "l2"], "norm_post": ["l2", "quantile"],
         "agg": ["max", "mnn"], "distance": ["cosine"], "m": [3]}
    )  # fmt: skip
    found = sorted(map(tuple, runs[["gen", "k", "norm_pre", "norm_inf"]].values.tolist()))
    assert found == [
        ("cache", -1, "l2", "l2"), ("fecam", -1, "l2", "l2"), ("fecam", -1, "none", "none"),
        ("knn", 5, "l2", "l2"), ("knn", 20, "l2", "l2"),
        ("linear_probe", -1, "l2", "l2"), ("linear_probe", -1, "none", "none"),
        ("ranpac", 5, "l2", "l2"), ("ranpac", 5, "none", "none"),
        ("ranpac", 20, "l2", "l2"), ("ranpac", 20, "none", "none"),
    ]  # fmt: skip


@pytest.mark.cuda
def test_baselines_on_the_gpu_agree_with_the_cpu(task):
    x, y, x_test, y_test = task
    runs = expand_grid({"gen": ["linear_probe", "knn", "cache"], "fewshot": [5, -1], "seed": [3]})
    cpu = sweep(x, y, x_test, y_test, runs)
    gpu = sweep(x, y, x_test, y_test, runs, device="cuda")
    assert (np.abs(cpu["accuracy"] - gpu["accuracy"]) <= 100 / len(y_test) * 2).all()


@pytest.mark.cuda
def test_small_probes_are_fitted_on_the_cpu_and_large_ones_on_the_gpu():
    """Below PROBE_GPU_MIN_ENTRIES the CPU's fit, bit for bit, handed back on the GPU; above it a
    float32 fit on the GPU that predicts as the CPU's float64 fit (but for rows rounding tips)."""
    for per_class, on_gpu in ((50, False), (PROBE_GPU_MIN_ENTRIES // (4 * 64) + 1, True)):
        x, y = (torch.from_numpy(a) for a in make_task(per_class=per_class, dim=64, seed=2))
        cpu_weight, cpu_bias, cpu_c, _ = fit_linear_probe(x, y, 4, seed=1)
        weight, bias, c, _ = fit_linear_probe(x.cuda(), y.cuda(), 4, seed=1)
        assert weight.device.type == bias.device.type == "cuda"
        assert (weight.dtype == torch.float32) == on_gpu
        if not on_gpu:
            assert c == cpu_c and torch.equal(weight.cpu(), cpu_weight)
            assert torch.equal(bias.cpu(), cpu_bias)
        cpu_scores = x.double() @ cpu_weight.T + cpu_bias
        scores = (x.cuda().to(weight.dtype) @ weight.T + bias).cpu()
        assert (scores.argmax(1) == cpu_scores.argmax(1)).double().mean() >= 0.99


@pytest.mark.parametrize("fewshot", [-1, 4])
def test_ranpac_and_fecam_in_a_sweep_predict_as_their_learners_fitted_once(task, fewshot):
    """``gen="ranpac"`` and ``"fecam"`` (whose learners test_cil_methods checks against NumPy
    references) in a sweep predict what one ``partial_fit`` of the learner on the run's
    NORMpre'd rows predicts; RanPAC's projection (``k`` wide) and λ's split are the run's
    seed's. The classifier fitted with the same parameters scores the same."""
    x, y, x_test, y_test = task
    runs = expand_grid(
        {"gen": ["ranpac", "fecam"], "k": [300], "norm_pre": ["l2"], "norm_inf": ["l2"],
         "fewshot": [fewshot], "seed": [1, 2]}
    )  # fmt: skip
    assert sorted(map(tuple, runs[["gen", "k"]].values.tolist())) == [
        ("fecam", -1), ("fecam", -1), ("ranpac", 300), ("ranpac", 300)
    ]  # fmt: skip
    result = sweep(x, y, x_test, y_test, runs)
    test_rows = l2_normalize(torch.tensor(x_test)).numpy()
    for _, row in result.iterrows():
        batch = prepare_classes(torch.tensor(x), torch.tensor(y), 4, "l2", fewshot, None, row.seed)
        rows, index = (t.numpy() for t in batch.flat())
        learner = RanPAC(300, row.seed) if row.gen == "ranpac" else FeCAM()
        expected = np.mean(learner.partial_fit(rows, index).predict(test_rows) == y_test) * 100
        assert row["accuracy"] == pytest.approx(expected)
        clf = ImprintingClassifier(**{c: row[c] for c in runs.columns}).fit(x, y)
        assert clf.score(x_test, y_test) * 100 == pytest.approx(expected)


def test_fecam_refuses_one_shot_before_it_runs():
    with pytest.raises(ValueError, match=r"fecam.*two rows a class.*fewshot >= 2"):
        expand_grid({"gen": ["fecam"], "fewshot": [1]})


_PROBE_AFTER = """
import sys, numpy as np, torch
from imprint.method.baselines import fit_linear_probe
from imprint.method.batch import ClassBatch
from imprint.method.clustering import kmeans
from imprint.method.randomness import ClassStreams
torch.set_num_threads(1)
mixture, draws = np.random.default_rng(0), np.random.default_rng(1)
offset, modes = mixture.normal(size=32) * 10, mixture.normal(size=(10, 3, 32))
y = np.repeat(np.arange(10), 60)
x = offset + modes[y, draws.integers(0, 3, size=600)] + draws.normal(scale=0.8, size=(600, 32))
x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
if sys.argv[1] == "after":  # other work first, as a sweep job runs other GENs before it
    batch = ClassBatch.from_labels(x, y, 10)
    kmeans(batch.x, batch.mask, 3, ClassStreams.keyed(1, "gen", batch.keys), max_iter=3)
probe = fit_linear_probe(x, y, 10, seed=123987)
print(probe.passes, probe.weight.double().sum().item(), probe.bias.double().sum().item())
"""


def test_a_probe_fits_the_same_whatever_its_process_computed_before():
    """The probe's fit is the same alone in a fresh process and after k-means there (whose
    numba kernel once left PyTorch on every core, where MKL's dot product, which the loss then
    used, rounded otherwise)."""
    assert in_fresh_process(_PROBE_AFTER, "alone") == in_fresh_process(_PROBE_AFTER, "after")
