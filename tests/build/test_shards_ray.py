"""The sharded build on Ray: one local cluster (2 CPUs) for the module, since Ray takes seconds
to start. The same index as the in-process build; a dead worker's task is retried, a worker that
keeps dying fails the build with one message and leaves nothing behind."""

import os
import sys
import time

import numpy as np
import pytest
import ray

import graphwalk as gw
from graphwalk.build.engines import LocalEngine, RayEngine, StageFailed
from graphwalk.build.shards import build_sharded_index
from graphwalk.cli import main
from graphwalk.errors import InputError
from tests.build.test_shards import data, write_shards

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import tests


@pytest.fixture(scope="module")
def cluster():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    x, y = data(5000, 12, spread=0.5)
    return write_shards(tmp_path_factory.mktemp("rs") / "s", x, y, sizes=[1200, 1300, 1000, 1500])


def test_ray_builds_the_index_the_local_engine_builds(cluster, shards, tmp_path):
    kw = dict(clusters=10, graphs=["knn", "er"], k=8, knn_backend="exact", partitions=6, refine=1)
    local = build_sharded_index(shards, out=tmp_path / "l.gw", label_column="y", **kw)
    on_ray = build_sharded_index(
        shards, out=tmp_path / "r.gw", label_column="y", engine="ray", **kw
    )
    assert on_ray.build_params["sharded"]["engine"] == "ray"
    assert on_ray.build_params["sharded"]["workers"] == 2
    assert local.build_params["sharded"]["workers"] == 1
    for name in local.graphs:
        np.testing.assert_array_equal(local.graphs[name].indices, on_ray.graphs[name].indices)
        np.testing.assert_array_equal(local.graphs[name].weights, on_ray.graphs[name].weights)
    np.testing.assert_array_equal(
        local.levels["kmeans"].assignment, on_ray.levels["kmeans"].assignment
    )
    assert local.graphs["knn"].params["recall"] == on_ray.graphs["knn"].params["recall"]
    assert local.fingerprint == on_ray.fingerprint  # every stored table byte for byte


def _die_once(marker, value):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker process dies: no exception, no cleanup
    return value * 2


def _always_die(value):
    os._exit(1)


def test_a_dead_worker_is_retried_and_one_that_keeps_dying_fails_cleanly(cluster, tmp_path):
    eng = RayEngine(retries=2)
    marks = [str(tmp_path / f"m{i}") for i in range(3)]
    assert eng.map(_die_once, [(m, i) for i, m in enumerate(marks)], desc="t", show=False) == [
        0,
        2,
        4,
    ]
    assert all(os.path.exists(m) for m in marks)  # each task did die once
    t0 = time.perf_counter()
    with pytest.raises(
        StageFailed, match=r"assign: task 0 failed 2 time\(s\) because its Ray worker died"
    ):
        RayEngine(retries=1).map(_always_die, [(1,)], desc="assign", show=False)
    assert time.perf_counter() - t0 < 120


class _Dying(RayEngine):
    """A Ray engine whose workers die in one stage: once per task (``once``) or always."""

    def __init__(self, stage, once, marker_dir, retries):
        super().__init__(retries=retries)
        self.stage, self.once, self.marker_dir = stage, once, marker_dir

    def map(self, fn, calls, *, desc, show):
        if desc != self.stage:
            return super().map(fn, calls, desc=desc, show=show)
        wrapped = [
            (fn, self.once, os.path.join(self.marker_dir, f"d{i}"), *c) for i, c in enumerate(calls)
        ]
        return super().map(_dying_call, wrapped, desc=desc, show=show)


def _dying_call(fn, once, marker, *args):
    if not once or not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return fn(*args)


def test_a_worker_dying_mid_build(cluster, shards, tmp_path):
    kw = dict(k=6, knn_backend="exact", partitions=4)
    ref = build_sharded_index(shards, out=tmp_path / "ref.gw", **kw)
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    marks = tmp_path / "marks"
    marks.mkdir()
    # dies once in each partition's kNN task: retried, the same index
    eng = _Dying("partition kNN", True, str(marks), retries=2)
    idx = build_sharded_index(shards, out=out_dir / "a.gw", engine=eng, **kw)
    np.testing.assert_array_equal(idx.graphs["knn"].indices, ref.graphs["knn"].indices)
    assert len(os.listdir(marks)) == 4
    # keeps dying in the merge: one message, no index, no work directory
    eng = _Dying("merge", False, str(marks), retries=1)
    with pytest.raises(StageFailed, match="merge: task 0 failed 2 time"):
        build_sharded_index(shards, out=out_dir / "b.gw", engine=eng, **kw)
    assert sorted(os.listdir(out_dir)) == ["a.gw"]
    with pytest.raises(Exception, match="no index at|does not exist"):
        gw.GraphIndex.load(out_dir / "b.gw")


def test_a_ray_address_that_does_not_answer(tmp_path, shards, capsys):
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="no Ray cluster answers at --address 127.0.0.1:9"):
        build_sharded_index(shards, out=tmp_path / "a.gw", engine="ray", address="127.0.0.1:9")
    assert time.perf_counter() - t0 < 30 and not (tmp_path / "a.gw").exists()
    rc = main(
        [
            "index",
            "--embeddings",
            str(shards),
            "--engine",
            "ray",
            "--address",
            "127.0.0.1:9",
            "--out",
            str(tmp_path / "a.gw"),
        ]
    )
    assert rc == 2 and "no Ray cluster answers" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_cli_engine_ray(cluster, shards, tmp_path, capsys):
    out = tmp_path / "a.gw"
    assert (
        main(
            [
                "index",
                "--embeddings",
                str(shards),
                "--engine",
                "ray",
                "--clusters",
                "5",
                "--graph",
                "knn",
                "--graph",
                "er",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert "wrote" in said and "recall" in said
    back = gw.GraphIndex.load(out)
    assert back.build_params["sharded"]["engine"] == "ray" and back.n_items == 5000
    assert isinstance(LocalEngine().map(abs, [(-1,), (2,)], desc="x", show=False), list)


def _row_sum(big, i):
    return float(big[i].sum()), big.flags.writeable


def test_big_arguments_go_to_the_object_store_once(cluster):
    big = np.arange(4 * 300_000, dtype=np.float32).reshape(300_000, 4)  # 4.8 MB: shared
    got = RayEngine().map(_row_sum, [(big, i) for i in range(3)], desc="t", show=False)
    assert [g[0] for g in got] == [float(big[i].sum()) for i in range(3)]
    assert not any(g[1] for g in got)  # tasks read the store's read-only copy, not their own
