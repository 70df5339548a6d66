import numpy as np
import pytest

from graphwalk.build.cluster import kmeans_level, label_level
from graphwalk.errors import InputError
from tests.conftest import make_blobs


def test_kmeans_is_deterministic_for_a_seed(seed):
    x, _ = make_blobs(seed=seed)
    a = kmeans_level(x, 12, seed=seed)
    b = kmeans_level(x, 12, seed=seed)
    np.testing.assert_array_equal(a.assignment, b.assignment)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert a.sizes.sum() == len(x) and (a.sizes > 0).all()
    assert a.assignment.dtype == np.int32 and a.centroids.shape == (a.n_clusters, x.shape[1])


def test_kmeans_assigns_each_item_to_its_nearest_centroid(blobs):
    x, _ = blobs
    lv = kmeans_level(x, 6, seed=0)
    d = ((x[:, None, :] - lv.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(lv.assignment, d.argmin(1))


def test_fewer_items_than_clusters():
    with pytest.raises(InputError, match="cannot make 50 clusters from 10 items"):
        kmeans_level(np.zeros((10, 2), np.float32), 50)


def test_duplicate_points_leave_no_empty_cluster():
    x = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)  # only 3 distinct vectors
    with pytest.warns(UserWarning, match="empty"):
        lv = kmeans_level(x, 5, seed=0)
    assert lv.n_clusters == 3 and (lv.sizes == 10).all() and lv.params["dropped_empty"] == 2


def test_label_level_keeps_label_values_and_means():
    x = np.array([[0.0], [2.0], [10.0], [12.0]], np.float32)
    lv = label_level(x, np.array([7, 7, 3, 3]))
    assert lv.values.tolist() == [3, 7]
    assert lv.assignment.tolist() == [1, 1, 0, 0]
    np.testing.assert_allclose(lv.centroids[:, 0], [11.0, 1.0])


def test_constant_input_is_one_clean_error():
    import warnings

    x = np.ones((600, 8), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw warning from faiss or from us before the error
        with pytest.raises(InputError, match="all 600 vectors are identical"):
            kmeans_level(x, 10)
    assert kmeans_level(x, 1).n_clusters == 1


def test_one_progress_bar_that_keeps_moving_and_no_library_logs(blobs, capsys, monkeypatch):
    # issue 7: k-means showed nothing for long fits and the kNN step printed pynndescent's log
    import time

    import graphwalk as gw
    from graphwalk.progress import ticking

    class Bar:
        refreshed = 0

        def refresh(self):
            Bar.refreshed += 1

    with ticking(Bar(), interval=0.05):
        time.sleep(0.3)
    assert Bar.refreshed >= 3  # a long step keeps the bar's elapsed time moving
    with ticking(None):  # progress off: nothing
        pass

    import pynndescent

    seen = {}

    class FakeNND:
        def __init__(self, x, **kw):
            seen.update(kw)
            n = x.shape[0]
            ids = np.stack([np.roll(np.arange(n), -j) for j in range(kw["n_neighbors"])], 1)
            self.neighbor_graph = (ids, np.ones_like(ids, dtype=np.float32))

    monkeypatch.setattr(pynndescent, "NNDescent", FakeNND)
    x, _ = blobs
    gw.build_index(x, clusters=6, graphs=["er", "knn"], k=5, knn_backend="nndescent", progress=True)
    out, err = capsys.readouterr()
    assert seen["verbose"] is False and out == ""  # stdout stays for results
    assert "graphwalk index" in err
