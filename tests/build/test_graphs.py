import numpy as np
import pytest

import graphwalk as gw
from graphwalk.build.graphs import (
    csr_from_edges,
    er_graph,
    knn_clusters_graph,
    knn_items_graph,
    knn_recall,
)
from graphwalk.errors import InputError
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
    with pytest.raises(InputError, match="k should be an integer >= 1"):
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


def _two_groups():
    rng = np.random.default_rng(0)
    near = rng.normal(size=(5, 2)).astype(np.float32)
    far = (rng.normal(size=(5, 2)) + 1000.0).astype(np.float32)
    return np.vstack([near, far])


def test_knn_clusters_graph_connected_by_default():
    g = knn_clusters_graph(_two_groups(), 2)
    assert _components(g) == 1
    assert g.params["connect"] is True and g.params["edges_added_to_connect"] == 1
    a = g.to_scipy()
    assert (a != a.T).nnz == 0


def test_knn_clusters_graph_disconnected_when_asked():
    g = knn_clusters_graph(_two_groups(), 2, connect=False)
    assert _components(g) == 2
    assert g.params["connect"] is False and g.params["edges_added_to_connect"] == 0


def test_knn_clusters_connecting_edge_joins_nearest_pair():
    c = _two_groups()
    g = knn_clusters_graph(c, 2)
    h = knn_clusters_graph(c, 2, connect=False)
    a, b = g.to_scipy().tocoo(), h.to_scipy()
    new = [(i, j) for i, j in zip(a.row, a.col, strict=True) if i < j and b[i, j] == 0]
    d = ((c[:5, None].astype(np.float64) - c[None, 5:]) ** 2).sum(-1)
    i, j = np.unravel_index(d.argmin(), d.shape)
    assert new == [(i, j + 5)]
    # weighted like the other edges: exp(-d2 / median kNN d2), kNN weights unchanged
    scale = np.median(np.sort(((c[:, None] - c[None]) ** 2).sum(-1), axis=1)[:, 1:3])
    want = np.clip(np.exp(-d.min() / scale), 1e-6, 1.0)
    np.testing.assert_allclose(g.to_scipy()[i, j + 5], want, rtol=1e-5)
    keep = h.to_scipy()
    np.testing.assert_array_equal(g.to_scipy()[keep.nonzero()], keep[keep.nonzero()])


@pytest.mark.parametrize(
    "sizes,k,scale",
    [((3, 4, 5, 6, 7, 3), 2, 1000.0), ((20, 30, 25), 2, 10.0), ((1500, 3, 1500, 1300), 10, 1000.0)],
)
def test_knn_clusters_connecting_edges_are_a_minimum_spanning_tree(sizes, k, scale):
    # the last case has components larger than one block of distance rows
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

    rng = np.random.default_rng(1)
    offsets = rng.uniform(0, scale, size=(len(sizes), 3))
    c = np.vstack(
        [rng.normal(size=(s, 3)) + o for s, o in zip(sizes, offsets, strict=True)]
    ).astype(np.float32)
    h = knn_clusters_graph(c, k, connect=False)
    n_comp, comp = connected_components(h.to_scipy(), directed=False)
    assert n_comp > 1
    g = knn_clusters_graph(c, k)
    assert _components(g) == 1 and g.params["edges_added_to_connect"] == n_comp - 1
    c64 = c.astype(np.float64)
    between = np.zeros((n_comp, n_comp))
    for p in range(n_comp):
        for q in range(p + 1, n_comp):
            a, b = c64[comp == p], c64[comp == q]
            d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
            between[p, q] = d2.min()
    added = (g.to_scipy() - (h.to_scipy() != 0).multiply(g.to_scipy())).tocoo()
    pairs = [(i, j) for i, j in zip(added.row, added.col, strict=True) if i < j]
    assert len(pairs) == n_comp - 1
    lengths = []
    for i, j in pairs:
        p, q = sorted((comp[i], comp[j]))
        d2 = ((c64[i] - c64[j]) ** 2).sum()
        np.testing.assert_allclose(d2, between[p, q], rtol=1e-6)
        lengths.append(d2)
    np.testing.assert_allclose(sum(lengths), minimum_spanning_tree(between).sum(), rtol=1e-6)
    np.testing.assert_array_equal(knn_clusters_graph(c, k).indices, g.indices)


def test_walk_order_renumbers_the_same_graph_cluster_by_cluster():
    from graphwalk.build.graphs import walk_order

    x, y = make_blobs()
    idx = gw.build_index(x, labels=y, clusters=8, graphs=["knn"], k=6, seed=0)
    g = idx.graphs["knn"]
    assign = idx.levels["kmeans"].assignment
    for a in (assign, None):
        w = walk_order(g, a)
        assert sorted(w.order.tolist()) == list(range(g.n_nodes))
        assert (w.position[w.order] == np.arange(g.n_nodes)).all()
        for v in range(g.n_nodes):  # node v is item order[v], with the same neighbours in order
            item = w.order[v]
            assert (w.order[w.indices[w.indptr[v] : w.indptr[v + 1]]] == g.neighbors(item)).all()
            assert np.allclose(
                w.weights[w.indptr[v] : w.indptr[v + 1]],
                g.weights[g.indptr[item] : g.indptr[item + 1]],
            )
    w = walk_order(g, assign)
    assert (np.diff(assign[w.order]) >= 0).all()  # clusters are contiguous stretches
    # within a cluster, graph neighbours get nearby numbers: much closer than at random
    gap = np.abs(w.indices - np.repeat(np.arange(g.n_nodes), np.diff(w.indptr))).mean()
    assert gap < 0.25 * g.n_nodes / 3
    with pytest.raises(InputError, match="only item graphs"):
        walk_order(er_graph(10, degree=3))


def test_build_index_takes_a_single_string_and_numpy_integers():
    x, y = make_blobs(n=200)
    idx = gw.build_index(x, labels=y, groups="labels", graphs="knn", k=np.int64(4))
    assert set(idx.graphs) == {"knn"} and set(idx.levels) == {"labels"}
    idx = gw.build_index(x, clusters=np.int32(5), graphs="er", seed=np.int64(1))
    assert idx.levels["kmeans"].n_clusters == 5
    with pytest.raises(TypeError, match="k should be an integer, but got k=10.0"):
        gw.build_index(x, graphs="knn", k=10.0)
    with pytest.raises(TypeError, match="graphs should be a graph kind or a list"):
        gw.build_index(x, graphs=5)
    with pytest.raises(TypeError, match="clusters should be an integer"):
        gw.build_index(x, clusters=5.0)


@pytest.mark.parametrize(
    "kwargs,err,msg",
    [
        (dict(p=1.5), InputError, "p should be a number in \\(0, 1\\]"),
        (dict(degree=-1.0), InputError, "degree should be a number > 0"),
        (dict(degree=2.0, p=0.1), InputError, "not both"),
        (dict(recall_sample=0), InputError, "recall_sample should be an integer >= 1"),
        (dict(seed=-1), InputError, "seed should be an integer in \\[0, "),
        (dict(k=0), InputError, "k should be an integer >= 1"),
        (dict(graph_level="nope"), InputError, "graph_level 'nope' is not one of"),
    ],
)
def test_build_index_refuses_parameters_before_any_work(monkeypatch, kwargs, err, msg):
    import graphwalk.build.builder

    def boom(*a, **k):
        raise AssertionError("k-means ran before the parameters were checked")

    monkeypatch.setattr(graphwalk.build.builder, "kmeans_level", boom)
    x, _ = make_blobs(n=200)
    with pytest.raises(err, match=msg):
        gw.build_index(x, clusters=5, graphs=["er"], **kwargs)


def test_build_index_warns_about_parameters_it_ignores_or_clamps():
    x, _ = make_blobs(n=200)
    with pytest.warns(UserWarning, match="p=0.5 .*ignored.*no 'er' graph"):
        gw.build_index(x, graphs="knn", k=3, p=0.5)
    with pytest.warns(UserWarning, match="graph_level 'kmeans' .*ignored"):
        gw.build_index(x, clusters=4, graphs="knn", k=3, graph_level="kmeans")
    with pytest.warns(UserWarning, match="degree=1000.* 19 other clusters.*complete"):
        g = gw.build_index(x, clusters=20, graphs="er", degree=1000).graphs["er"]
    assert g.params["p"] == 1.0 and g.n_edges == 20 * 19


def test_er_graph_says_when_degree_is_clamped():
    with pytest.warns(UserWarning, match="degree=50.* 9 other clusters"):
        er_graph(10, degree=50)


def test_auto_knn_backend_counts_nndescent_compilation(monkeypatch):
    # issue 7: NN-descent costs ~27 s of compilation in each new process, more than exact search
    # up to tens of thousands of items; auto picks what is expected to finish first
    import graphwalk.build.graphs as graphs_mod
    from graphwalk.build.graphs import auto_backend

    monkeypatch.setattr(graphs_mod, "_nndescent_warm", False)
    assert auto_backend(50_000, 32)[0] == "exact"  # the case: 29 s cold vs 1.7 s warm
    assert auto_backend(60_000, 64)[0] == "exact"
    assert auto_backend(1_000_000, 64)[0] == "nndescent"
    _, est = auto_backend(60_000, 64)
    assert est["exact_s"] < est["nndescent_s"]
    monkeypatch.setattr(graphs_mod, "_nndescent_warm", True)  # compiled in this process
    assert auto_backend(60_000, 64)[0] == "nndescent"
    x, _ = make_blobs(n=300, dim=4)
    g = knn_items_graph(x, 5)
    assert g.params["method"] == "exact" and set(g.params["auto_estimate_s"]) == {
        "exact_s",
        "nndescent_s",
    }
