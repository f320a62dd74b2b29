"""AGG against brute-force loops and scikit-learn's NearestNeighbors and LedoitWolf."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors

from imprint.method import aggregation
from imprint.method.aggregation import (
    AGG,
    Variant,
    class_max_scores,
    ledoit_wolf_covariance,
    nearest_proxies,
    proxy_distances,
    vote,
    whitening,
)
from imprint.method.batch import ProxySet

SKLEARN_METRIC = {
    "cosine": "cosine",
    "euclidean": "euclidean",
    "manhattan": "manhattan",
    "chebyshev": "chebyshev",
}


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    weights = rng.normal(size=(len(labels), 5)) + 20.0  # a common offset far from the origin
    x = rng.normal(size=(40, 5)) + 20.0
    return x, weights, labels


def _proxies(weights, labels) -> ProxySet:
    return ProxySet(torch.tensor(weights, dtype=torch.float32), torch.tensor(labels))


def _reference_vote(dist_row, label_row, n_classes, weighting):
    votes = np.zeros(n_classes)
    for d, c in zip(dist_row, label_row, strict=True):
        votes[c] += 1.0 if weighting == "uniform" else 1.0 / (d + 1e-10)
    tied = set(np.flatnonzero(np.isclose(votes, votes.max(), rtol=1e-9, atol=0)))
    return next(c for c in label_row if c in tied)  # nearest proxy among the tied classes


def test_max_is_the_class_of_the_best_inner_product(problem):
    x, weights, labels = problem
    (got,) = AGG["max"](
        torch.tensor(x, dtype=torch.float32),
        _proxies(weights, labels),
        4,
        "inner_product",
        [Variant()],
    )
    scores = x @ weights.T
    expected = [max(range(4), key=lambda c, s=s: max(s[labels == c])) for s in scores]
    assert got.tolist() == expected


def test_max_ties_go_to_the_lowest_class():
    proxies = ProxySet(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1, 2]))
    (got,) = AGG["max"](
        torch.tensor([[1.0, 0.0], [0.0, 1.0]]), proxies, 3, "inner_product", [Variant()]
    )
    assert got.tolist() == [0, 2]


@pytest.mark.parametrize("distance", sorted(SKLEARN_METRIC))
@pytest.mark.parametrize("weighting", ["uniform", "weighted_by_distance"])
def test_mnn_matches_nearest_neighbors_and_a_vote_loop(problem, distance, weighting):
    x, weights, labels = problem
    ms = [1, 3, 5, 50]
    got = AGG["mnn"](
        torch.tensor(x, dtype=torch.float32), _proxies(weights, labels), 4, distance,
        [Variant(m, weighting) for m in ms],
    )  # fmt: skip
    index = NearestNeighbors(metric=SKLEARN_METRIC[distance], algorithm="brute").fit(weights)
    for m, prediction in zip(ms, got, strict=True):
        m_eff = min(m, len(labels))
        dist, idx = index.kneighbors(x, n_neighbors=m_eff)
        expected = [
            _reference_vote(d, labels[i], 4, weighting) for d, i in zip(dist, idx, strict=True)
        ]
        assert prediction.tolist() == expected


def test_mahalanobis_uses_the_ledoit_wolf_covariance(problem):
    x, weights, labels = problem
    train = np.random.default_rng(1).normal(size=(30, 5)) * [1, 2, 3, 0.5, 1]
    metric = whitening(torch.tensor(train, dtype=torch.float32))
    got = AGG["mnn"](
        torch.tensor(x, dtype=torch.float32),
        _proxies(weights, labels),
        4,
        "mahalanobis",
        [Variant(3)],
        metric,
    )
    precision = np.linalg.inv(LedoitWolf().fit(train).covariance_)
    index = NearestNeighbors(
        metric="mahalanobis", metric_params={"VI": precision}, algorithm="brute"
    ).fit(weights)
    dist, idx = index.kneighbors(x, n_neighbors=3)
    expected = [_reference_vote(d, labels[i], 4, "uniform") for d, i in zip(dist, idx, strict=True)]
    assert got[0].tolist() == expected


@pytest.mark.parametrize("shape", [(50, 8), (6, 10)])
def test_ledoit_wolf_matches_sklearn(shape):
    x = np.random.default_rng(2).normal(size=shape) @ np.random.default_rng(3).normal(
        size=(shape[1],) * 2
    )
    np.testing.assert_allclose(
        ledoit_wolf_covariance(torch.tensor(x)).numpy(), LedoitWolf().fit(x).covariance_, rtol=1e-10
    )


def test_vote_tie_goes_to_the_nearest_proxys_class():
    # Nearest first: classes 2, 0, 0, 2 -> two votes each; class 2 holds the nearest proxy.
    labels = torch.tensor([[2, 0, 0, 2], [1, 1, 0, 0]])
    dists = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.1, 0.2]])
    assert vote(dists, labels, 3, "uniform").tolist() == [2, 1]


def test_weighted_vote_weights_by_inverse_distance():
    labels = torch.tensor([[0, 1, 1]])
    dists = torch.tensor([[0.1, 0.3, 0.3]])  # 10 against 2 * 3.33
    assert vote(dists, labels, 2, "weighted_by_distance").tolist() == [0]
    assert vote(dists, labels, 2, "uniform").tolist() == [1]


def test_max_with_a_distance_is_one_nearest_neighbour(problem):
    x, weights, labels = problem
    xt = torch.tensor(x, dtype=torch.float32)
    proxies = _proxies(weights, labels)
    via_max = AGG["max"](xt, proxies, 4, "euclidean", [Variant(7, "weighted_by_distance")])[0]
    via_mnn = AGG["mnn"](xt, proxies, 4, "euclidean", [Variant(1)])[0]
    assert torch.equal(via_max, via_mnn)


def test_cosine_distance_is_never_negative_and_an_exact_match_wins_the_weighted_vote():
    """In float32, 1 - cos(x, x) often comes out slightly below 0; unclamped, 1/(d + 1e-10)
    would turn the exact match into a huge negative vote."""
    rng = np.random.default_rng(5)
    weights = rng.normal(size=(400, 64)).astype(np.float32)
    labels = np.repeat([0, 1], 200)
    proxies = _proxies(weights, labels)
    x = torch.tensor(weights[:200])  # every test row equals a proxy of class 0
    xn = x / x.norm(dim=1, keepdim=True)
    assert bool(((1 - (xn * xn).sum(1)) < 0).any())  # the rounding this guards against
    dists, _ = nearest_proxies(x, proxies, "cosine", 5, None)
    assert bool((dists >= 0).all())
    (got,) = AGG["mnn"](x, proxies, 2, "cosine", [Variant(5, "weighted_by_distance")])
    assert got.tolist() == [0] * 200


def _assert_a_stable_sorts_first(values, columns, reference: np.ndarray, m: int) -> None:
    """``values`` and ``columns`` (tensors) of each row are the first m of a stable ascending sort
    of that row of ``reference`` (NumPy's), the values in their dtype."""
    expected = np.argsort(reference, axis=1, kind="stable")[:, :m]
    assert np.array_equal(columns.numpy(), expected)
    expected_values = np.take_along_axis(reference, expected, 1).astype(values.numpy().dtype)
    assert np.array_equal(values.numpy(), expected_values)


@pytest.fixture(params=[False, True], ids=["torch", "kernel"])
def selection(request, monkeypatch):
    """Both ways the nearest proxies are selected: torch's (small searches, GPUs) and the numba
    kernel's (large searches on the CPU), here forced for every size."""
    if request.param:
        monkeypatch.setattr(aggregation, "_KERNEL_ENTRIES", 0)
    return request.param


@pytest.mark.parametrize("distance", ["manhattan", "chebyshev"])
@pytest.mark.parametrize("m", [1, 3, 8, 60])
def test_nearest_proxies_order_ties_by_index_as_a_stable_sort(distance, m, selection):
    """Small integer coordinates make many equal distances, also at the m-th place: the m nearest
    must be a stable sort's first m columns, rows with and without a tie at the boundary alike."""
    rng = np.random.default_rng(11)
    weights = rng.integers(0, 3, size=(60, 4)).astype(np.float32)
    x = rng.integers(0, 3, size=(50, 4)).astype(np.float32)
    proxies = _proxies(weights, np.zeros(60, dtype=np.int64))
    dists, index = nearest_proxies(torch.tensor(x), proxies, distance, m, None)
    order = 1 if distance == "manhattan" else np.inf
    brute = np.linalg.norm(x[:, None, :] - weights[None, :, :], ord=order, axis=2)
    _assert_a_stable_sorts_first(dists, index, brute, m)


@pytest.mark.parametrize(
    "distance", ["inner_product", "cosine", "euclidean", "mahalanobis", "manhattan"]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_blocks_sharing_one_buffer_find_what_fresh_blocks_find(
    distance, dtype, selection, monkeypatch
):
    """A search's blocks write their scores into one buffer, each over the one before: in blocks
    of 3 rows (the last of 1) the largest inner products per class, or the distances and
    columns of the 5 nearest proxies, are those found with a fresh tensor a block, and brute
    force's (integer coordinates: exact inner products and L1 distances)."""
    rng = np.random.default_rng(5)
    w = torch.tensor(rng.integers(-3, 4, size=(40, 6)), dtype=dtype)
    x = torch.tensor(rng.integers(-3, 4, size=(70, 6)), dtype=dtype)
    proxies = ProxySet(w, torch.arange(40) // 10)
    metric = torch.tensor(rng.normal(size=(6, 6)), dtype=dtype)

    def search():
        if distance == "inner_product":
            return (class_max_scores(x, proxies, 4),)
        return nearest_proxies(x, proxies, distance, 5, metric)

    monkeypatch.setattr(aggregation, "_BLOCK_ENTRIES", 3 * 40)
    in_blocks = search()
    with monkeypatch.context() as fresh:
        fresh.setattr(aggregation.Scratch, "__call__", lambda self, rows, cols, like: None)
        assert all(torch.equal(a, b) for a, b in zip(search(), in_blocks, strict=True))
    if distance == "inner_product":
        brute = (x.numpy() @ w.numpy().T).reshape(70, 4, 10).max(2)
        assert np.array_equal(in_blocks[0].numpy(), brute)
    if distance == "manhattan":
        brute = np.abs(x.numpy()[:, None] - w.numpy()[None]).sum(2)
        _assert_a_stable_sorts_first(*in_blocks, brute, 5)


@pytest.mark.parametrize("distance", ["euclidean", "mahalanobis"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("coordinates", ["integers", "normal"])
def test_euclidean_searches_select_on_cdists_distances(distance, dtype, coordinates, selection):
    """On the CPU the selection takes the distances' square roots as it reads them: the
    distances are still ``torch.cdist``'s bits (of the centred, projected rows), and the m
    nearest a stable sort's first m of them, many ties (integer coordinates) included."""
    rng = np.random.default_rng(3)
    if coordinates == "integers":
        w, x = rng.integers(0, 3, size=(60, 4)), rng.integers(0, 3, size=(300, 4))
    else:
        w, x = rng.normal(size=(60, 4)), rng.normal(size=(300, 4))
    w, x = torch.tensor(w, dtype=dtype), torch.tensor(x, dtype=dtype)
    metric = None
    if distance == "mahalanobis":
        metric = torch.tensor(rng.normal(size=(4, 4)), dtype=dtype)
    project = (lambda v: v @ metric) if metric is not None else (lambda v: v)
    centre = project(w).mean(0)
    distances = torch.cdist(project(x) - centre, project(w) - centre)
    assert torch.equal(proxy_distances(distance, w, metric)(x), distances)
    proxies = ProxySet(w, torch.zeros(60, dtype=torch.int64))
    for m in (1, 3, 8):
        dists, index = nearest_proxies(x, proxies, distance, m, metric)
        _assert_a_stable_sorts_first(dists, index, distances.numpy(), m)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("m", [1, 4, 9])
def test_the_least_roots_of_rows_are_a_stable_sort_of_the_roots(dtype, m, selection):
    """Squares a few units in the last place apart, many of which share a square root once it
    is rounded: the m least roots and their columns are those of a stable sort of the roots
    torch takes, whether the squares or the roots were selected."""
    rng = np.random.default_rng(8)
    steps = torch.tensor(rng.integers(-1, 12, size=(300, 40)), dtype=dtype)
    squares = 1 + steps * torch.finfo(dtype).eps
    roots = squares.clamp_min(0).sqrt()
    assert len(roots.unique()) < len(squares.unique())  # the rounding this is about
    values, columns = aggregation._smallest(squares.clone(), m, rooted=True)
    _assert_a_stable_sorts_first(values, columns, roots.numpy(), m)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 4, 9])
def test_the_least_entries_of_rows_are_a_stable_sorts_first(dtype, m, selection):
    """Rows of few distinct values, signed zeros and infinities: the m least of each row and
    their columns are those of NumPy's stable ascending sort."""
    rng = np.random.default_rng(5)
    d = rng.choice(np.array([0.0, -0.0, 0.5, 1.0, 2.0, np.inf], dtype=dtype), size=(200, 9))
    values, columns = aggregation._smallest(torch.tensor(d), m)
    _assert_a_stable_sorts_first(values, columns, d, m)


def test_the_largest_inner_product_per_class_holds_for_proxies_in_any_order():
    """Proxies of equal counts per class but not sorted by class (a ``ProxySet`` built by hand)
    score as brute force's maximum over each class's proxies, as sorted ones do."""
    rng = np.random.default_rng(8)
    w = rng.normal(size=(12, 5))
    labels = np.tile(np.arange(4), 3)  # 0, 1, 2, 3, 0, 1, ...: three a class, interleaved
    x = rng.normal(size=(9, 5))
    products = x @ w.T
    brute = np.stack([products[:, labels == c].max(1) for c in range(4)], 1)
    got = class_max_scores(torch.tensor(x), ProxySet(torch.tensor(w), torch.tensor(labels)), 4)
    np.testing.assert_allclose(got.numpy(), brute, rtol=1e-12)
    order = np.argsort(labels, kind="stable")
    sorted_set = ProxySet(torch.tensor(w[order]), torch.tensor(labels[order]))
    np.testing.assert_allclose(class_max_scores(torch.tensor(x), sorted_set, 4), brute, rtol=1e-12)
