import numpy as np
import pytest

from graphwalk.errors import InputError
from graphwalk.graphs import (
    csr_from_edges,
    er_graph,
    knn_clusters_graph,
    knn_items_graph,
    knn_recall,
)
from tests.conftest import make_blobs


def _components(g):
    from scipy.sparse.csgraph import connected_components

    return connected_components(g.to_scipy(), directed=False)[0]


def test_csr_from_edges_sorts_dedups_and_drops_self_loops():
    indptr, indices, w = csr_from_edges(3, [2, 0, 0, 1, 0], [0, 2, 1, 1, 2], [1, 2, 3, 4, 5])
    assert indptr.tolist() == [0, 2, 2, 3]
    assert indices.tolist() == [1, 2, 0]
    assert w.tolist() == [3, 2, 1]


@pytest.mark.parametrize("n,degree", [(50, 1.0), (200, 2.0), (30, 5.0)])
def test_er_graph_is_connected_symmetric_and_seeded(n, degree, seed):
    g = er_graph(n, degree=degree, seed=seed)
    assert (g.degrees > 0).all() and _components(g) == 1
    a = g.to_scipy()
    assert (a != a.T).nnz == 0
    h = er_graph(n, degree=degree, seed=seed)
    np.testing.assert_array_equal(g.indices, h.indices)
    assert g.params["edges_added_to_connect"] >= 0


def test_er_graph_disconnected_when_asked():
    g = er_graph(200, degree=0.5, seed=1, connect=False)
    assert _components(g) > 1 and g.params["edges_added_to_connect"] == 0


def test_er_graph_mean_degree_close_to_target():
    g = er_graph(2000, degree=8, seed=0)
    assert abs(g.degrees.mean() - 8) < 0.5


def test_er_graph_bad_parameters():
    with pytest.raises(InputError, match="at least 2 clusters"):
        er_graph(1)
    with pytest.raises(InputError, match="not both"):
        er_graph(10, degree=2, p=0.1)
    with pytest.raises(InputError, match="p should be"):
        er_graph(10, p=1.5)


def _brute_knn(x, k):
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def test_exact_knn_matches_brute_force(blobs):
    x, _ = blobs
    g = knn_items_graph(x, 5, backend="exact")
    assert g.kind == "item" and g.directed and (g.degrees == 5).all()
    got = g.indices.reshape(-1, 5)
    want = _brute_knn(x.astype(np.float64), 5)
    same = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(got, want, strict=True)])
    assert same > 0.999
    assert not (got == np.arange(len(x))[:, None]).any()
    assert (np.diff(g.weights.reshape(-1, 5), axis=1) <= 1e-6).all()  # nearest first


def test_knn_with_duplicate_vectors_never_lists_self():
    x = np.repeat(np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32), 3, axis=0)
    g = knn_items_graph(x, 4, backend="exact")
    got = g.indices.reshape(-1, 4)
    assert not (got == np.arange(len(x))[:, None]).any()
    # each item's two twins are at distance 0 and must be its first two neighbours
    twins = (np.arange(len(x)) // 3)[:, None]
    assert (got[:, :2] // 3 == twins).all()


def test_cosine_knn_ranks_by_angle():
    x = np.array([[1, 0], [10, 1], [0, 1], [-1, 0.1]], np.float32)
    g = knn_items_graph(x, 1, metric="cosine", backend="exact")
    assert g.indices.tolist() == [1, 0, 1, 2]


def test_hnsw_recall_is_measured_and_high(blobs):
    x, _ = blobs
    g = knn_items_graph(x, 8, backend="faiss-hnsw", recall_sample=200)
    assert g.params["recall_sample"] == 200 and g.params["recall"] >= 0.95
    assert knn_recall(x, g.indices.reshape(-1, 8), sample=200)[0] == pytest.approx(
        g.params["recall"], abs=1e-4
    )


def test_recall_detects_a_bad_graph(blobs):
    x, _ = blobs
    rand = np.random.default_rng(0).integers(0, len(x), size=(len(x), 5))
    assert knn_recall(x, rand, sample=100)[0] < 0.1


@pytest.mark.slow
def test_nndescent_backend_reaches_recall():
    x, _ = make_blobs(n=3000, dim=16, centers=20)
    g = knn_items_graph(x, 10, backend="nndescent", recall_sample=300)
    assert g.params["method"] == "nndescent" and g.params["recall"] >= 0.95
    assert not (g.indices.reshape(-1, 10) == np.arange(len(x))[:, None]).any()


def test_knn_bad_k_and_backend(blobs):
    x, _ = blobs
    with pytest.raises(InputError, match="only 600 items"):
        knn_items_graph(x, 600)
    with pytest.raises(InputError, match="positive integer"):
        knn_items_graph(x, 0)
    with pytest.raises(InputError, match="backend"):
        knn_items_graph(x, 3, backend="annoy")


def test_knn_clusters_graph_is_symmetric():
    c = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    g = knn_clusters_graph(c, 3)
    a = g.to_scipy()
    assert (a != a.T).nnz == 0 and (g.degrees >= 3).all()
    with pytest.raises(InputError, match="only 30 clusters"):
        knn_clusters_graph(c, 30)
