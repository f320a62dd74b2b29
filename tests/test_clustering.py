"""k-means, k-medoids and farthest-point sampling against scikit-learn, plain NumPy and brute
force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from imprint.method.batch import ClassBatch
from imprint.method.clustering import (
    _nearest_centres,
    farthest_point_sampling,
    kmeans,
    kmeans_together,
    kmedoids,
    kmedoids_pam,
    kmedoids_together,
    reference_distances,
    squared_distances,
)
from imprint.method.randomness import ClassStreams
from tests.conftest import make_task


def _streams(batch: ClassBatch, seed: int) -> ClassStreams:
    return ClassStreams.keyed(seed, "gen", batch.keys)


def _batch(**kwargs) -> tuple[ClassBatch, np.ndarray, np.ndarray]:
    x, y = make_task(**kwargs)
    return ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), int(y.max()) + 1), x, y


@pytest.mark.parametrize("k", [2, 5, 12])
def test_kmeans_inertia_within_one_percent_of_sklearn(k):
    """Both are one seeded k-means++ run to a local optimum, so compare them over many seeds:
    the mean inertia over seeds and classes, and the best inertia of every class."""
    batch, x, y = _batch(n_classes=3, per_class=200, dim=16, modes=6, offset=50.0, seed=k)
    seeds = range(200)  # the mean of one run's inertia varies by a few percent over 30 seeds
    ours = np.stack([kmeans(batch.x, batch.mask, k, _streams(batch, s))[1] for s in seeds])
    rows = [x[y == c].astype(np.float64) for c in range(3)]
    theirs = np.array(
        [[KMeans(k, n_init=1, random_state=s).fit(r).inertia_ for r in rows] for s in seeds]
    )
    assert ours.mean() <= 1.01 * theirs.mean()
    assert (ours.min(0) <= 1.01 * theirs.min(0)).all()
    centres, inertia = kmeans(batch.x, batch.mask, k, _streams(batch, 0))
    for c in range(3):
        rows = x[y == c].astype(np.float64)
        brute = ((rows[:, None] - centres[c].double().numpy()[None]) ** 2).sum(-1).min(1).sum()
        assert inertia[c].item() == pytest.approx(brute, rel=1e-4)


def test_kmeans_ends_at_a_lloyd_fixed_point():
    batch, x, y = _batch(n_classes=2, per_class=60, modes=3, seed=3)
    centres, _ = kmeans(batch.x, batch.mask, 3, _streams(batch, 1))
    for c in range(2):
        rows = x[y == c]
        assign = ((rows[:, None] - centres[c].numpy()[None]) ** 2).sum(-1).argmin(1)
        for j in range(3):
            np.testing.assert_allclose(centres[c, j].numpy(), rows[assign == j].mean(0), atol=1e-4)


def test_kmeans_handles_classes_of_different_sizes():
    x, y = make_task(n_classes=3, per_class=40, seed=4)
    keep = np.ones(len(y), bool)
    keep[np.flatnonzero(y == 1)[:25]] = False
    batch = ClassBatch.from_labels(torch.tensor(x[keep]), torch.tensor(y[keep]), 3)
    centres, inertia = kmeans(batch.x, batch.mask, 4, _streams(batch, 0))
    rows = x[keep][y[keep] == 1]
    brute = ((rows[:, None] - centres[1].numpy()[None]) ** 2).sum(-1).min(1).sum()
    assert inertia[1].item() == pytest.approx(brute, rel=1e-4)


def _medoid_objective(rows: np.ndarray, medoids) -> float:
    d = np.linalg.norm(rows[:, None] - rows[list(medoids)][None], axis=-1)
    return d.min(1).sum()


def test_kmedoids_pam_reaches_the_exhaustive_optimum_within_one_percent():
    batch, x, y = _batch(n_classes=2, per_class=14, dim=3, modes=3, seed=5)
    index, objective = kmedoids_pam(batch.x, batch.mask, 3, _streams(batch, 0))
    for c in range(2):
        rows = x[y == c].astype(np.float64)
        best = min(_medoid_objective(rows, s) for s in itertools.combinations(range(len(rows)), 3))
        assert objective[c].item() <= 1.01 * best
        assert objective[c].item() == pytest.approx(
            _medoid_objective(rows, index[c].tolist()), rel=2e-4
        )


@pytest.mark.parametrize("variant", ["kmedoids", "kmedoids_pam"])
def test_kmedoids_medoids_minimise_distance_within_their_clusters(variant):
    batch, x, y = _batch(n_classes=2, per_class=50, dim=5, modes=4, seed=6)
    if variant == "kmedoids":
        index, _, _ = kmedoids(batch.x, batch.mask, 4)
    else:
        index, _ = kmedoids_pam(batch.x, batch.mask, 4, _streams(batch, 2))
    for c in range(2):
        rows = x[y == c].astype(np.float64)
        medoids = index[c].numpy()
        d = np.linalg.norm(rows[:, None] - rows[None], axis=-1)
        assign = d[:, medoids].argmin(1)
        for j, medoid in enumerate(medoids):
            members = np.flatnonzero(assign == j)
            costs = d[np.ix_(members, members)].sum(1)
            assert costs[members == medoid][0] <= costs.min() + 1e-4


def test_farthest_point_sampling_matches_a_loop():
    batch, x, y = _batch(n_classes=3, per_class=25, seed=7)
    index = farthest_point_sampling(batch.x, batch.mask, 6, _streams(batch, 3))
    for c in range(3):
        rows = x[y == c].astype(np.float64)
        chosen = [int(index[c, 0])]
        for _ in range(5):
            d = np.min([((rows - rows[i]) ** 2).sum(1) for i in chosen], axis=0)
            chosen.append(int(np.argmax(d)))
        assert index[c].tolist() == chosen


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_farthest_points_kernel_chooses_as_torch_cdist_does_directly(dtype):
    """The CPU kernel against the sampling it replaced (the GPU's path), written out with
    ``torch.cdist``'s direct distances: the same samples and, bit for bit, the same distance of
    every sample to its nearest chosen one, on classes of unequal sizes (padding), one smaller
    than k, with duplicated rows (exact ties go to the lowest index)."""
    from imprint.method.kernels import farthest_points

    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 64)) * 3 + 1
    x[30:40] = x[21:31]  # duplicates within class 1
    y = np.repeat([0, 1, 2], [21, 30, 9])
    batch = ClassBatch.from_labels(torch.tensor(x, dtype=dtype), torch.tensor(y), 3)
    index = farthest_point_sampling(batch.x, batch.mask, 12, _streams(batch, 5))

    def distance_to(chosen: torch.Tensor) -> torch.Tensor:
        point = torch.gather(batch.x, 1, chosen[..., None].expand(-1, -1, x.shape[1]))
        return torch.cdist(batch.x, point, compute_mode="donot_use_mm_for_euclid_dist")[..., 0]

    expected = [index[:, :1]]
    closest = distance_to(expected[0]).masked_fill(~batch.mask, -1)
    for _ in range(1, 12):
        expected.append(closest.argmax(1, keepdim=True))
        closest = torch.minimum(closest, distance_to(expected[-1]))
    assert torch.equal(index, torch.cat(expected, 1))
    out, kept = index.numpy().copy(), np.empty(batch.mask.shape, dtype=batch.x.numpy().dtype)
    farthest_points(batch.x.numpy(), batch.mask.numpy(), out, kept)
    assert np.array_equal(out, index.numpy()) and np.array_equal(kept, closest.numpy())


def test_clustering_is_deterministic_per_seed():
    batch, _, _ = _batch(n_classes=3, per_class=40, seed=8)
    first = kmeans(batch.x, batch.mask, 4, _streams(batch, 11))[0]
    second = kmeans(batch.x, batch.mask, 4, _streams(batch, 11))[0]
    assert torch.equal(first, second)
    medoids = [kmedoids_pam(batch.x, batch.mask, 4, _streams(batch, 11))[0] for _ in "ab"]
    assert torch.equal(*medoids)


def _reference_kmedoids(rows: np.ndarray, k: int, max_iter: int = 300) -> list[int]:
    """PAPER.md §F.1 step by step, in plain NumPy as the reference ran it: float64 distances of
    the raw samples as scikit-learn computes them, the start ``np.argpartition(sums, k - 1)[:k]``,
    then alternate with NumPy's sums, ``argmin`` and a strict ``<``."""
    rows = rows.astype(np.float64)
    squares = (rows**2).sum(1)
    d = -2 * rows @ rows.T + squares[:, None] + squares[None, :]
    np.maximum(d, 0, out=d)
    np.fill_diagonal(d, 0)
    d = np.sqrt(d)
    medoids = np.argpartition(np.sum(d, axis=1), k - 1)[:k]
    for _ in range(max_iter):
        old = medoids.copy()
        labels = np.argmin(d[medoids, :], axis=0)
        for j in range(k):
            members = np.where(labels == j)[0]
            if len(members) == 0:
                continue
            costs = np.sum(d[members, members[:, np.newaxis]], axis=1)
            least = np.argmin(costs)
            if costs[least] < costs[np.argmax(members == medoids[j])]:
                medoids[j] = members[least]
        if np.all(old == medoids):
            break
    return medoids.tolist()


def _tie_heavy(rng: np.random.Generator, n: int, dim: int, levels: int) -> np.ndarray:
    """Integer-valued samples with duplicate points: many exactly equal distances and sums."""
    x = rng.integers(0, levels, size=(n, dim)).astype(np.float64)
    x[rng.integers(0, n, n // 4)] = x[rng.integers(0, n, n // 4)]
    return x


@pytest.mark.parametrize("ties", [False, True])
def test_kmedoids_is_the_references_algorithm(ties):
    rng = np.random.default_rng(13)
    if ties:  # points on a small integer lattice: many equal distances and equal sums, duplicates
        x = rng.integers(0, 3, size=(3 * 40, 2)).astype(np.float32)
    else:
        x, _ = make_task(n_classes=3, per_class=40, dim=4, modes=3, seed=13)
    y = np.repeat(np.arange(3), 40)
    batch = ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), 3)
    for k in (1, 3, 7):
        index, objective, _ = kmedoids(batch.x, batch.mask, k)
        for c in range(3):
            rows = x[y == c].astype(np.float64)
            expected = _reference_kmedoids(rows, k)
            assert index[c].tolist() == expected, (ties, k, c)
            assert objective[c].item() == pytest.approx(_medoid_objective(rows, expected))


def test_kmedoids_decides_ties_as_numpy_does_on_integer_data_with_duplicates():
    """Digits-like data (integer pixels, duplicates, classes of different sizes): the medoids are
    the reference's, in the reference's order, for every k from 1 to 20, found alone or all k
    together (one product with the distances per round)."""
    rng = np.random.default_rng(21)
    sizes = [45, 60, 38]
    x = np.concatenate([_tie_heavy(rng, n, 16, 5) for n in sizes])
    y = np.repeat(np.arange(3), sizes)
    batch = ClassBatch.from_labels(torch.tensor(x), torch.tensor(y), 3)
    distances = reference_distances(batch.x, batch.mask)
    together, rounds = kmedoids_together(batch.x, batch.mask, range(1, 21), distances)
    for k in range(1, 21):
        index, _, alone_rounds = kmedoids(batch.x, batch.mask, k)
        assert rounds[k - 1] == alone_rounds
        for c in range(3):
            expected = _reference_kmedoids(x[y == c], k)
            assert index[c].tolist() == together[k - 1][c].tolist() == expected, (k, c)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_kmedoids_imprinting_on_digits_is_the_references(device):
    """scikit-learn's 8×8 digits (integer pixels, many ties), 70/30, no normalisation, k = 3,
    max with the inner product: the medoids and the accuracy are the reference's (81.85 %)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from imprint import ImprintingClassifier

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y
    )
    proxies = np.concatenate(
        [x_train[y_train == c][_reference_kmedoids(x_train[y_train == c], 3)] for c in range(10)]
    )
    expected = (np.repeat(np.arange(10), 3)[(x_test @ proxies.T).argmax(1)] == y_test).mean()
    clf = ImprintingClassifier(
        norm_pre="none", gen="kmedoids", k=3, norm_post="none", norm_inf="none", device=device
    ).fit(x_train.astype(np.float32), y_train)
    assert clf.score(x_test.astype(np.float32), y_test) == pytest.approx(expected)
    assert expected == pytest.approx(0.8185, abs=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nearest_centres_of_stacked_clusterings_are_the_first_least_distances(dtype):
    """The CPU kernel's nearest centres, per block (class, clustering) of a stack, are the first
    argmin of the block's squared distances as torch computes them (ties included: a duplicated
    centre loses to its first copy), and the nearest by exact float64 distances where no two
    centres are near-equidistant; classes may stack different clusterings (here the third
    class only the last two, the rest of its rows left unread)."""
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(3, 50, 16, generator=generator, dtype=dtype)
    ks = [1, 4, 2, 6]
    centres = torch.randn(3, sum(ks), 16, generator=generator, dtype=dtype)
    centres[:, 3] = centres[:, 2]  # a tie inside the second clustering
    norms = x.pow(2).sum(-1)
    bounds = list(itertools.pairwise(np.cumsum([0, *ks]).tolist()))
    blocks = [(c, lo, hi) for c in range(2) for lo, hi in bounds] + [(2, 0, 2), (2, 2, 8)]
    # the classes in two parts, as a Lloyd step passes ranges of moving classes
    parts = [(slice(0, 1), x[:1].transpose(1, 2)), (slice(1, 3), x[1:].transpose(1, 2))]
    found = _nearest_centres(centres, parts, norms, np.array(blocks))
    exact = torch.cdist(x.double(), centres.double()).square()  # (C, n, K)
    for (c, lo, hi), nearest in zip(blocks, found, strict=True):
        block = centres[c : c + 1, lo:hi]
        torch_way = squared_distances(block, x[c : c + 1], None, norms[c : c + 1]).argmin(1)[0]
        assert torch.equal(nearest, torch_way)
        ordered = exact[c, :, lo:hi].sort(-1).values
        best = exact[c, :, lo:hi].argmin(-1)
        if hi - lo > 1:
            clear = ordered[:, 1] - ordered[:, 0] > 1e-3
            assert torch.equal(nearest[clear], best[clear])
        else:
            assert (nearest == 0).all()
    # rows 2 and 3 of the stack are the second clustering's centres 1 and 2: the first wins
    assert (found[1] == 1).any() and not (found[1] == 2).any()


def test_a_class_stops_when_its_assignments_do_and_each_is_as_alone():
    """k-means of several clusterings of several classes together gives every class the
    centroids of k-means on that class alone, bit for bit (a class whose assignments stopped
    changing stops while others go on), and counts each class's own Lloyd steps: those of the
    class alone, averaged over the classes."""
    batch, _, _ = _batch(n_classes=4, per_class=120, dim=8, modes=5, seed=7)
    ks, seeds = [1, 3, 5, 8], [2, 3, 4, 5]
    streams = [_streams(batch, seed) for seed in seeds]
    together, steps = kmeans_together(batch.x, batch.mask, ks, streams)
    for j, (k, seed) in enumerate(zip(ks, seeds, strict=True)):
        alone_steps = []
        for c in range(4):
            one = ClassStreams.keyed(seed, "gen", batch.keys[c : c + 1])
            (centres,), (class_steps,) = kmeans_together(
                batch.x[c : c + 1], batch.mask[c : c + 1], [k], [one]
            )
            assert torch.equal(together[j][c], centres[0]), (k, c)
            alone_steps.append(class_steps)
        assert steps[j] == pytest.approx(np.mean(alone_steps))
        if k > 1:  # the classes stopped after different numbers of steps
            assert len(set(alone_steps)) > 1, k


@pytest.mark.parametrize("n", [1, 3, 7, 70, 150])
def test_distance_matrices_are_the_whole_matrix_steps_and_exact_distances(n):
    """The kernel's one pass gives the bits of the steps written out on whole matrices
    (distance expansion, mean with the transpose, zero diagonal, square root), is exactly
    symmetric, and matches float64 pairwise distances; duplicate rows give exact zeros."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=(3, n, 9)) * 4 + 2
    x[1, -1] = x[1, 0]
    mask = torch.ones(3, n, dtype=torch.bool)
    got = reference_distances(torch.tensor(x), mask)
    rows = torch.tensor(x)
    norms = (rows**2).sum(-1)
    steps = (torch.bmm(rows, rows.transpose(1, 2)) * -2 + norms[..., None]) + norms[:, None, :]
    steps = steps.clamp_min(0)
    steps = (steps + steps.transpose(1, 2)) / 2
    steps.diagonal(dim1=1, dim2=2).zero_()
    assert torch.equal(got, steps.sqrt())
    assert torch.equal(got, got.transpose(1, 2))
    for c in range(3):
        exact = np.sqrt(((x[c][:, None] - x[c][None]) ** 2).sum(-1))
        np.testing.assert_allclose(got[c].numpy(), exact, rtol=1e-10, atol=1e-10)
    if n > 1:
        assert got[1, 0, n - 1] == 0
