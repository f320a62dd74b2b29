"""Every GEN against a direct computation on one class at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imprint.method.batch import ClassBatch
from imprint.method.generators import (
    GEN,
    GenContext,
    cluster_together,
    gram_matrix,
    medoids_together,
    sample_together,
)
from imprint.method.params import RANDOM_GENS
from tests.conftest import make_task


@pytest.fixture
def data() -> tuple[ClassBatch, np.ndarray, np.ndarray]:
    x, y = make_task(n_classes=3, per_class=20, dim=6, modes=3, offset=5.0, seed=11)
    return ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), 3), x, y


def _by_class(proxies) -> list[np.ndarray]:
    labels = proxies.labels.numpy()
    return [proxies.weights.numpy()[labels == c] for c in range(int(labels.max()) + 1)]


def _is_subset(rows: np.ndarray, pool: np.ndarray) -> bool:
    return all((pool == r).all(1).any() for r in rows)


def test_all_and_mean(data):
    batch, x, y = data
    everything = _by_class(GEN["all"](batch, -1, GenContext(0)))
    means = _by_class(GEN["mean"](batch, 1, GenContext(0)))
    for c in range(3):
        np.testing.assert_array_equal(everything[c], x[y == c])
        np.testing.assert_allclose(means[c][0], x[y == c].mean(0), rtol=1e-5)


@pytest.mark.parametrize("gen", ["random", "kmedoids", "kmedoids_pam", "fps", "cov_max"])
def test_sample_selecting_generators_pick_k_distinct_class_samples(data, gen):
    batch, x, y = data
    for c, rows in enumerate(_by_class(GEN[gen](batch, 4, GenContext(3)))):
        assert rows.shape == (4, 6)
        assert _is_subset(rows, x[y == c])
        assert len({r.tobytes() for r in rows}) == 4


@pytest.mark.parametrize(
    "gen", ["kmeans", "kmedoids", "kmedoids_pam", "random", "fps", "cov_max", "kls"]
)
def test_k_at_least_class_size_uses_every_sample(data, gen):
    batch, x, y = data
    proxies = GEN[gen](batch, 50, GenContext(0, 1e-3))
    assert proxies.weights.shape[0] == len(y)
    if gen != "kls":
        for c, rows in enumerate(_by_class(proxies)):
            np.testing.assert_array_equal(np.sort(rows, 0), np.sort(x[y == c], 0))


def test_mixed_class_sizes_keep_small_classes_whole():
    x, y = make_task(n_classes=3, per_class=12, seed=12)
    keep = ~((y == 2) & (np.arange(len(y)) % 12 >= 3))  # class 2 keeps 3 samples
    batch = ClassBatch.from_labels(torch.tensor(x[keep]), torch.tensor(y[keep]), 3)
    rows = _by_class(GEN["kmeans"](batch, 5, GenContext(0)))
    assert [len(r) for r in rows] == [5, 5, 3]
    np.testing.assert_array_equal(rows[2], x[keep][y[keep] == 2])


def test_cov_max_takes_largest_column_sums_of_numpy_covariance(data):
    batch, x, y = data
    for c, rows in enumerate(_by_class(GEN["cov_max"](batch, 5, GenContext(0)))):
        samples = x[y == c].astype(np.float64)
        sums = np.cov(samples).sum(0)  # rows of np.cov are variables: the n x n sample covariance
        expected = samples[np.argsort(-sums, kind="stable")[:5]]
        np.testing.assert_allclose(rows, expected)


def _ridge(x: np.ndarray, targets: np.ndarray, lam: float) -> np.ndarray:
    gram = x.T @ x / len(x) + lam * np.eye(x.shape[1])
    return targets @ np.linalg.inv(gram) / len(targets)


def test_ls_is_the_closed_form(data):
    batch, x, y = data
    x64 = x.astype(np.float64)
    means = np.stack([x64[y == c].mean(0) for c in range(3)])
    proxies = GEN["ls"](batch, 1, GenContext(0, 0.1))
    np.testing.assert_allclose(
        proxies.weights.numpy(), _ridge(x64, means, 0.1), rtol=1e-4, atol=1e-6
    )
    assert proxies.labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize("sizes", [(20, 20, 20), (20, 13, 7)])
def test_the_gram_matrix_is_numpys_over_the_real_rows_in_blocks(monkeypatch, sizes):
    """X^T X of the real rows (padding left out) in float64, as NumPy computes it from all of
    them at once, with blocks of 8 rows (the last one partial) standing in for the CPU's."""
    monkeypatch.setattr("imprint.method.generators._GRAM_ROWS", 8)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(sum(sizes), 6)).astype(np.float32) * 3 + 1
    y = np.repeat([0, 1, 2], sizes)
    gram, rows = gram_matrix(ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), 3))
    x64 = x.astype(np.float64)
    assert rows == len(x) and gram.dtype == torch.float64
    np.testing.assert_allclose(gram.numpy(), x64.T @ x64, rtol=1e-13)


def test_kls_solves_least_squares_over_the_kmeans_clusters(data):
    batch, x, _ = data
    context = GenContext(5, 0.01)
    clusters = GEN["kmeans"](batch, 3, context)
    proxies = GEN["kls"](batch, 3, context)
    expected = _ridge(x.astype(np.float64), clusters.weights.double().numpy(), 0.01)
    np.testing.assert_allclose(proxies.weights.numpy(), expected, rtol=1e-4, atol=1e-6)
    assert proxies.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_kls_reuses_the_kmeans_clustering_of_its_context_and_is_charged_its_time(data):
    batch, _, _ = data
    view: dict = {}
    first = GEN["kls"](batch, 3, GenContext(5, 0.01, view))
    fresh = GEN["kls"](batch, 3, GenContext(5, 0.01))
    assert torch.equal(first.weights, fresh.weights)
    clustering_seconds = view["kmeans", 3, 5][1]
    assert clustering_seconds > 0
    reusing = GenContext(5, 0.01, view)
    GEN["kmeans"](batch, 3, reusing)
    assert reusing.reused_seconds == clustering_seconds
    assert GenContext(5, 0.01).reused_seconds == 0


def test_clusterings_of_a_view_computed_together_are_each_one_alone():
    """Every k and seed clustered in one pass per Lloyd step gives each clustering's centroids
    exactly as alone (on the CPU, MKL gives every row of a product of 4 rows or more the same
    bits, from 8 features on), and charges each a share of the joint time."""
    x, y = make_task(n_classes=3, per_class=40, dim=8, modes=3, offset=5.0, seed=11)
    batch = ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), 3)
    wanted = {(k, seed) for k in (1, 2, 3, 5) for seed in (0, 7)} | {(100, 0)}
    view: dict = {}
    cluster_together(batch, view, wanted)
    assert ("kmeans", 100, 0) not in view  # more than some class has: the classes' samples
    seconds = [view["kmeans", k, seed][1] for k, seed in wanted - {(100, 0)}]
    assert all(s > 0 for s in seconds)
    for k, seed in wanted - {(100, 0)}:
        together = GEN["kmeans"](batch, k, GenContext(seed, view=view)).weights
        alone = GEN["kmeans"](batch, k, GenContext(seed)).weights
        assert torch.equal(together, alone)


def test_medoids_of_a_view_found_together_are_each_one_alone():
    """Every k's reference k-medoids found with one product per alternate round gives each k's
    proxies exactly as alone (tied distances among them: the ties are decided on NumPy's sums
    either way), each charged the distances' time and its share of the rounds'."""
    x, y = make_task(n_classes=3, per_class=40, dim=6, modes=3, offset=5.0, seed=13)
    x = np.round(x)  # many equal distances
    batch = ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), 3)
    view: dict = {}
    medoids_together(batch, view, {1, 2, 3, 5, 8, 100})
    assert ("kmedoids", 100) not in view  # more than some class has: the classes' samples
    assert all(view["kmedoids", k][1] > view["distances"][1] for k in (1, 2, 3, 5, 8))
    for k in (1, 2, 3, 5, 8, 100):
        together = GEN["kmedoids"](batch, k, GenContext(0, view=view))
        alone = GEN["kmedoids"](batch, k, GenContext(0))
        assert torch.equal(together.weights, alone.weights)
        assert torch.equal(together.labels, alone.labels)


def test_farthest_point_samplings_of_a_view_sampled_once_per_seed_are_each_one_alone():
    """Each seed's farthest points sampled once, for the largest k, give every k's proxies as
    a sampling of k alone does (classes of fewer samples than k, and tied distances, among
    them), each charged its share of the time by k."""
    x, y = make_task(n_classes=4, per_class=30, dim=5, modes=3, offset=5.0, seed=12)
    keep = np.concatenate([np.flatnonzero(y == c)[: (30, 4, 12, 30)[c]] for c in range(4)])
    x, y = np.round(x[keep]), y[keep]  # rounded: many equal distances
    batch = ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), 4)
    wanted = {(k, seed) for k in (1, 3, 5, 20) for seed in (0, 7)}
    view: dict = {}
    sample_together(batch, view, wanted)
    assert view["fps", 5, 0][1] == pytest.approx(view["fps", 20, 0][1] / 4)
    for k, seed in wanted:
        together = GEN["fps"](batch, k, GenContext(seed, view=view))
        alone = GEN["fps"](batch, k, GenContext(seed))
        assert torch.equal(together.weights, alone.weights)
        assert torch.equal(together.labels, alone.labels)


def test_ls_and_kls_of_a_view_share_one_gram_matrix_and_equal_fresh_solves(data):
    """The Gram matrix and its factors depend on the batch and λ alone: every k and seed of a
    view reuses them (and is charged their time), with exactly the weights of a fresh solve."""
    batch, _, _ = data
    view: dict = {}
    shared = {}
    for gen, k in (("ls", 1), ("kls", 2), ("kls", 3)):
        for seed in (1, 2):
            context = GenContext(seed, 0.01, view=view)
            shared[gen, k, seed] = GEN[gen](batch, k, context).weights
            assert context.reused_seconds > 0 or (gen, seed) == ("ls", 1)
    shared_solves = sorted(str(key) for key in view if key[0] != "kmeans")
    assert shared_solves == ["('ridge', 0.01, (True, True, True))", "gram"]
    for (gen, k, seed), weights in shared.items():
        assert torch.equal(weights, GEN[gen](batch, k, GenContext(seed, 0.01)).weights)


@pytest.mark.parametrize(
    ("gen", "key"), [("kmedoids", "distances"), ("cov_max", "covariance_sums")]
)
def test_kmedoids_and_cov_max_of_a_view_share_their_k_independent_work(gen, key):
    """k-medoids' distance matrices and cov-max's column sums are computed once for every k of
    a view (classes with no more than k samples included) and give a fresh run's proxies."""
    x, y = make_task(n_classes=4, per_class=12, dim=5, seed=3)
    small = (y == 1) & (np.arange(len(y)) % 12 >= 4)  # class 1 keeps 4 samples
    batch = ClassBatch.from_labels(torch.tensor(x[~small]), torch.tensor(y[~small]), 4)
    view: dict = {}
    for k in (2, 5, 3):
        shared = GEN[gen](batch, k, GenContext(0, view=view))
        assert torch.equal(shared.weights, GEN[gen](batch, k, GenContext(0)).weights)
    assert set(view) - {("kmedoids", k) for k in (2, 5, 3)} == {key}  # and each k's medoids


def test_kls_leaves_classes_with_fewer_than_k_samples_out_of_the_solve():
    """As the reference: a class with n < k keeps its samples as proxies, and its samples are not
    in the ridge problem; a class with n = k is clustered into its n samples and solved."""
    x, y = make_task(n_classes=4, per_class=12, dim=5, seed=14)
    keep = ~((y == 2) & (np.arange(len(y)) % 12 >= 3)) & ~((y == 3) & (np.arange(len(y)) % 12 >= 4))
    x, y = x[keep], y[keep]  # class 2 keeps 3 samples, class 3 keeps 4
    batch = ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), 4)
    context = GenContext(3, 0.05)
    clusters = _by_class(GEN["kmeans"](batch, 4, context))
    proxies = _by_class(GEN["kls"](batch, 4, context))
    np.testing.assert_array_equal(proxies[2], x[y == 2])
    solved = [0, 1, 3]
    samples = x[np.isin(y, solved)].astype(np.float64)
    targets = np.concatenate([clusters[c] for c in solved]).astype(np.float64)
    expected = np.split(_ridge(samples, targets, 0.05), 3)
    for c, weights in zip(solved, expected, strict=True):
        np.testing.assert_allclose(proxies[c], weights, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("gen", ["random", "kmeans", "kmedoids_pam", "fps"])
def test_random_generators_are_deterministic_per_seed(data, gen):
    batch, _, _ = data
    first = GEN[gen](batch, 3, GenContext(42)).weights
    assert torch.equal(first, GEN[gen](batch, 3, GenContext(42)).weights)
    assert not torch.equal(first, GEN[gen](batch, 3, GenContext(43)).weights)


def test_the_references_kmedoids_ignores_the_seed(data):
    batch, _, _ = data
    first = GEN["kmedoids"](batch, 3, GenContext(42)).weights
    assert torch.equal(first, GEN["kmedoids"](batch, 3, GenContext(43)).weights)
    assert "kmedoids" not in RANDOM_GENS
