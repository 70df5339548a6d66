"""The sharded build, in process: the same index as the one-machine build where it should be,
recall measured, deterministic, and every kind of bad shard refused with nothing left behind.
(The Ray engine is tested in test_shards_ray.py, on one cluster for the module.)"""

import itertools
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import graphwalk as gw
from graphwalk.build.shards import build_sharded_index
from graphwalk.build.stages import _best_k, choose_partitions, parse_bytes, sharded_recall
from graphwalk.cli import main
from graphwalk.errors import InputError


def data(n=6000, dim=16, seed=0, spread=2.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(12, dim)) * spread
    y = rng.integers(0, 12, n)
    return (centers[y] + rng.normal(size=(n, dim))).astype(np.float32), y


def write_shards(folder, x, y=None, sizes=None, ids=None, dtype=np.float32, column="emb"):
    """Shards of consecutive rows (sizes: rows per shard)."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = sizes or [len(x) // 4 + (1 if i < len(x) % 4 else 0) for i in range(4)]
    start = 0
    for i, m in enumerate(sizes):
        xs = np.asarray(x[start : start + m], dtype)
        cols = {column: pa.FixedSizeListArray.from_arrays(pa.array(xs.reshape(-1)), x.shape[1])}
        if y is not None:
            cols["y"] = pa.array(np.asarray(y[start : start + m], np.int64))
        if ids is not None:
            cols["id"] = pa.array(np.asarray(ids[start : start + m], np.int64))
        pq.write_table(pa.table(cols), folder / f"part-{i:03d}.parquet")
        start += m
    return folder


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    x, y = data()
    return write_shards(tmp_path_factory.mktemp("shards") / "s", x, y), x, y


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_one_partition_gives_the_one_machine_exact_graph(shards, tmp_path):
    folder, x, _y = shards
    ref = gw.build_index(x, graphs="knn", k=8, knn_backend="exact")
    idx = build_sharded_index(folder, out=tmp_path / "a.gw", k=8, knn_backend="exact", partitions=1)
    g, h = idx.graphs["knn"], ref.graphs["knn"]
    np.testing.assert_array_equal(g.indptr, h.indptr)
    np.testing.assert_array_equal(g.indices, h.indices)
    np.testing.assert_allclose(g.weights, h.weights, rtol=1e-5)
    assert g.params["recall"] == 1.0 and g.params["partitions"] == 1
    assert _leftovers(tmp_path) == []  # the work directory is gone


def test_partitions_keep_most_neighbours_and_refinement_recovers_more(tmp_path):
    x, _ = data(spread=0.3)  # barely clustered: partition borders cut many neighbourhoods
    folder = write_shards(tmp_path / "s", x)
    recalls = {}
    for refine in (0, 1):
        idx = build_sharded_index(
            folder,
            out=tmp_path / f"r{refine}.gw",
            k=10,
            knn_backend="exact",
            partitions=12,
            refine=refine,
            recall_sample=2000,
        )
        g = idx.graphs["knn"]
        recalls[refine] = g.params["recall"]
        # the stored recall is the recall: recomputed here against brute force on every item
        true = gw.build_index(x, graphs="knn", k=10, knn_backend="exact").graphs["knn"]
        got = g.indices.reshape(-1, 10)
        want = true.indices.reshape(-1, 10)
        full = np.mean([np.intersect1d(a, b).size / 10 for a, b in zip(got, want, strict=True)])
        assert abs(full - g.params["recall"]) < 0.03
        assert (got != np.arange(len(x))[:, None]).all()  # no self-loops
        assert (np.sort(got, axis=1)[:, 1:] != np.sort(got, axis=1)[:, :-1]).all()  # distinct
        assert idx.build_params["sharded"]["partitions"]["partitions"] == 12
        sizes = idx.build_params["sharded"]["partitions"]["sizes"]
        assert sizes["total"] == 2 * len(x)  # each item in its 2 nearest partitions
    assert 0.7 <= recalls[0] < 0.95 and recalls[1] >= recalls[0] + 0.05


def test_same_seed_same_index_and_other_seed_other_clusters(shards, tmp_path):
    folder, _, _ = shards
    kw = dict(clusters=10, graphs=["knn", "er", "knn-clusters"], k=6, knn_backend="exact")
    a = build_sharded_index(folder, out=tmp_path / "a.gw", partitions=5, **kw)
    b = build_sharded_index(folder, out=tmp_path / "b.gw", partitions=5, **kw)
    c = build_sharded_index(folder, out=tmp_path / "c.gw", partitions=5, seed=1, **kw)
    for name in a.graphs:
        np.testing.assert_array_equal(a.graphs[name].indices, b.graphs[name].indices)
        np.testing.assert_array_equal(a.graphs[name].weights, b.graphs[name].weights)
    np.testing.assert_array_equal(a.levels["kmeans"].assignment, b.levels["kmeans"].assignment)
    assert not np.array_equal(a.levels["kmeans"].centroids, c.levels["kmeans"].centroids)
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_the_index_loads_walks_and_keeps_labels_and_shard_offsets(shards, tmp_path):
    folder, x, y = shards
    build_sharded_index(
        folder,
        out=tmp_path / "a.gw",
        clusters=12,
        graphs=["knn", "er"],
        label_column="y",
        k=5,
        layout="arrays",
    )
    back = gw.GraphIndex.load(tmp_path / "a.gw")
    assert back.layout == "arrays" and back.verify()["ok"]
    np.testing.assert_array_equal(back.labels["label"], y)
    lv = back.levels["kmeans"]
    assert lv.n_clusters == 12 and lv.params["trained_on_sample"] == len(x)
    # each item's cluster is its nearest centroid
    d = ((x[:, None, :] - lv.centroids[None]) ** 2).sum(-1)
    assert np.mean(d.argmin(1) == lv.assignment) > 0.999
    shards_meta = back.build_params["sharded"]["shards"]
    assert [s["first"] for s in shards_meta] == [0, 1500, 3000, 4500]
    assert back.graphs["knn"].walk is not None
    s = gw.GraphWalkBatchSampler(back, 64, graph="knn", seed=0)
    seen = np.concatenate([np.asarray(b) for b in s])
    assert np.array_equal(np.sort(seen), np.arange(len(x)))
    timings = back.build_params["timings_s"]
    for stage in ("scan", "sample", "assign", "partition_knn", "merge", "finish", "write", "total"):
        assert timings[stage] >= 0


def test_partitions_grow_until_the_largest_fits_the_memory_budget():
    x, _ = data(4000, 8)
    per_item = 4 * 8 + 400
    _, small = choose_partitions(x, 1_000_000, budget=64 << 20, overlap=2, seed=0)
    _, big = choose_partitions(x, 1_000_000, budget=1 << 30, overlap=2, seed=0)
    assert small["fits"] and small["tried"][-1]["bytes"] <= 64 << 20
    assert small["partitions"] > big["partitions"] >= 1
    assert small["tried"][-1]["largest_estimate"] * per_item == small["tried"][-1]["bytes"]
    if len(small["tried"]) > 1:  # every smaller count tried did not fit
        assert all(t["bytes"] > 64 << 20 for t in small["tried"][:-1])
    _, fixed = choose_partitions(x, 1_000_000, budget=1 << 20, overlap=2, seed=0, partitions=7)
    assert fixed["partitions"] == 7 and not fixed["fits"]  # asked for: no warning
    # most items at one point: more partitions cannot shrink the largest, which is said
    same = np.vstack([np.zeros((1800, x.shape[1]), np.float32), x[:200]])
    with pytest.warns(
        UserWarning, match=r"largest of \d+ partitions .* over the worker memory 64 "
    ):
        _, stuck = choose_partitions(same, 1_000_000, budget=64 << 20, overlap=2, seed=0)
    # it grew P, and stopped once 2.25 times the partitions left the largest not a tenth smaller
    assert not stuck["fits"] and len(stuck["tried"]) >= 3
    assert stuck["tried"][-1]["largest_estimate"] > 0.9 * stuck["tried"][-3]["largest_estimate"]
    assert parse_bytes("2G") == 2 << 30 and parse_bytes("512M") == 512 << 20
    assert parse_bytes("1.5GiB") == int(1.5 * (1 << 30))
    for bad in ("lots", "10", "-1G"):
        with pytest.raises(InputError, match="worker-memory"):
            parse_bytes(bad)


def test_best_k_keeps_the_nearest_distinct_candidates():
    src = np.array([0, 0, 0, 0, 0, 1, 1], np.int64)
    dst = np.array([3, 2, 3, 0, 4, 0, 2], np.int64)
    dist = np.array([0.5, 0.7, 0.1, 0.0, 0.7, 0.2, 0.2], np.float32)
    ids, d = _best_k(src, dst, dist, 0, 3, 2)
    # item 0: 3 (0.1, its smaller distance), then 2 and 4 tie at 0.7: the smaller id; self dropped
    assert ids.tolist() == [[3, 2], [0, 2], [-1, -1]]
    assert d[0].tolist() == pytest.approx([0.1, 0.7]) and np.isinf(d[2]).all()


def test_sharded_recall_matches_the_one_machine_check():
    x, _ = data(3000, 8)
    idx = gw.build_index(x, graphs="knn", k=5, knn_backend="faiss-hnsw", recall_sample=500)
    ids = idx.graphs["knn"].indices.reshape(-1, 5)
    r, m = sharded_recall(x, ids, sample=500, seed=0, chunk=700)  # chunks of another size
    assert m == 500 and r == pytest.approx(idx.graphs["knn"].params["recall"], abs=1e-4)


# --------------------------------------------------------------------------------- bad input
def _shards_with(tmp_path, kind):
    x, y = data(2000, 8)
    folder = write_shards(tmp_path / "s", x, y, sizes=[500, 500, 500, 500], ids=np.arange(2000))
    f = folder / "part-002.parquet"
    if kind == "width":
        xs = x[:500, :6].copy()
        pq.write_table(
            pa.table({"emb": pa.FixedSizeListArray.from_arrays(pa.array(xs.reshape(-1)), 6)}), f
        )
    elif kind == "dtype":
        write_shards(tmp_path / "t", x[:500], sizes=[500], dtype=np.float64)
        (tmp_path / "t" / "part-000.parquet").replace(f)
    elif kind == "empty":
        write_shards(tmp_path / "t", x[:0], sizes=[0])
        (tmp_path / "t" / "part-000.parquet").replace(f)
    elif kind == "unreadable":
        f.write_bytes(b"PAR1 this is not parquet")
    elif kind == "nan":
        xs = x[1000:1500].copy()
        xs[17, 3] = np.nan
        write_shards(tmp_path / "t", xs, y[1000:1500], sizes=[500], ids=np.arange(1000, 1500))
        (tmp_path / "t" / "part-000.parquet").replace(f)
    elif kind == "duplicate-ids":
        write_shards(tmp_path / "t", x[1000:1500], y[1000:1500], sizes=[500], ids=np.arange(500))
        (tmp_path / "t" / "part-000.parquet").replace(f)
    return folder, f


@pytest.mark.parametrize(
    "kind, msg",
    [
        ("width", r"part-002.parquet has 6-d vectors, but .*part-000.parquet has 8-d"),
        ("dtype", r"part-002.parquet stores its vectors as double, but .* as float"),
        ("empty", r"part-002.parquet is empty \(0 rows\)"),
        ("unreadable", r"part-002.parquet is not a readable Parquet file"),
        ("nan", r"part-002.parquet has 1 vectors with NaN .*row 17, item 1017"),
        ("duplicate-ids", r"id 0 appears 2 times .*part-000.parquet.*part-002.parquet"),
    ],
)
def test_bad_shards_are_refused_by_name_and_leave_nothing(tmp_path, kind, msg):
    folder, _ = _shards_with(tmp_path, kind)
    out = tmp_path / "o" / "a.gw"
    out.parent.mkdir()
    with pytest.raises(InputError, match=msg):
        build_sharded_index(folder, out=out, id_column="id", k=5, partitions=3)
    assert list(out.parent.iterdir()) == []  # no index, no work directory
    rc = main(
        ["index", "--embeddings", str(folder / "*.parquet"), "--id-column", "id", "--out", str(out)]
    )
    assert rc == 2 and list(out.parent.iterdir()) == []


def test_missing_shards_and_bad_options(tmp_path, shards, capsys):
    folder, _, _ = shards
    out = tmp_path / "a.gw"
    with pytest.raises(InputError, match="matches no files"):
        build_sharded_index(str(tmp_path / "none" / "*.parquet"), out=out)
    with pytest.raises(InputError, match="holds no \\*.parquet shards"):
        build_sharded_index(tmp_path, out=out)
    with pytest.raises(InputError, match="shard .*gone.parquet does not exist"):
        build_sharded_index([folder / "part-000.parquet", tmp_path / "gone.parquet"], out=out)
    with pytest.raises(InputError, match="no column 'vec'"):
        build_sharded_index(folder, out=out, column="vec")
    with pytest.raises(InputError, match="has type int64; the vectors should be a list"):
        build_sharded_index(folder, out=out, column="y")
    with pytest.raises(InputError, match="are graphs over clusters: give --clusters"):
        build_sharded_index(folder, out=out, graphs=["er"])
    with pytest.raises(InputError, match="k=6000 neighbours asked for, but the shards hold only"):
        build_sharded_index(folder, out=out, k=6000)
    with pytest.raises(InputError, match="engine should be one of"):
        build_sharded_index(folder, out=out, engine="spark")
    with pytest.raises(InputError, match="add --engine ray"):
        build_sharded_index(folder, out=out, address="localhost:6379")
    with pytest.raises(InputError, match="--num-cpus sizes a Ray started here"):
        build_sharded_index(folder, out=out, num_cpus=2)
    with pytest.raises(InputError, match="--work-dir .*nowhere is not a directory"):
        build_sharded_index(folder, out=out, work_dir=tmp_path / "nowhere")
    with pytest.raises(InputError, match="--kmeans-sample 5 rows cannot train 8 clusters"):
        build_sharded_index(folder, out=out, clusters=8, sample=5)
    with pytest.raises(InputError, match="sample should be"):
        build_sharded_index(folder, out=out, clusters=8, sample=0)
    with pytest.raises(InputError, match="--kmeans-sample 500 sizes the k-means of --clusters"):
        build_sharded_index(folder, out=out, sample=500)
    with pytest.raises(InputError, match="--partitions 5000 for 6,000 items: .* at most 666"):
        build_sharded_index(folder, out=out, k=8, partitions=5000)
    np.save(tmp_path / "x.npy", np.zeros((10, 2), np.float32))
    with pytest.raises(InputError, match="reads Parquet shards; for one .npy/.npz file drop"):
        build_sharded_index(tmp_path / "x.npy", out=out)
    (tmp_path / "x.npy").unlink()
    assert not (tmp_path / "nowhere").exists()
    assert not out.exists() and _leftovers(tmp_path) == []
    capsys.readouterr()
    cases = [
        (["--embeddings", str(folder), "--labels", "y.npy"], "--labels is not supported"),
        (["--dataset", "digits", "--engine", "local"], "--engine builds from Parquet shards"),
        (["--embeddings", str(folder / "part-000.parquet"), "--partitions", "3"], "add --engine"),
        (["--embeddings", str(folder), "--worker-memory", "lots"], "--worker-memory should be"),
        (["--embeddings", str(folder), "--refine", "lots"], "argument --refine"),
        (["--embeddings", str(folder), "--refine", "11"], "argument --refine"),
        (["--dataset", "digits", "--kmeans-sample", "500"], "--kmeans-sample is an option"),
        (["--embeddings", str(folder), "--kmeans-sample", "500"], "add --clusters N"),
    ]
    for args, msg in cases:
        assert main(["index", *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, err
    assert not out.exists()


def test_cli_builds_from_a_pattern_and_reports(shards, tmp_path, capsys):
    folder, x, _ = shards
    out = tmp_path / "a.gw"
    rc = main(
        [
            "index",
            "--embeddings",
            str(folder / "part-*.parquet"),
            "--clusters",
            "8",
            "--graph",
            "knn",
            "--graph",
            "er",
            "--label-column",
            "y",
            "--worker-memory",
            "1M",
            "--refine",
            "1",
            "--kmeans-sample",
            "2000",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n_items"] == len(x) and m["build"]["sharded"]["engine"] == "local"
    parts = m["build"]["sharded"]["partitions"]
    assert parts["partitions"] > 2 and parts["worker_memory"] == 1 << 20
    assert 0 <= parts["knn_task_peak_mib"] < 1000  # the largest rise of a partition's kNN task
    knn = next(g for g in m["graphs"] if g["name"] == "knn")
    assert knn["params"]["recall"] >= 0.9 and knn["params"]["refine"] == 1
    # --kmeans-sample: the k-means trains on 2,000 rows; the partitions are sized on all 6,000
    assert m["build"]["sharded"]["kmeans_sample"] == 2000
    assert m["build"]["sharded"]["partition_sample"] == len(x)
    assert m["levels"][0]["params"]["trained_on_sample"] == 2000
    assert os.path.isdir(out) and _leftovers(tmp_path) == []


def test_distances_are_recomputed_in_a_fixed_order():
    """The partition search's distances are recomputed by NumPy (faiss's BLAS rounds by thread
    count), so a partition gives the same candidates and distances wherever it runs."""
    from graphwalk.build.stages import _sq_dists

    x, _ = data(500, 8)
    nbr = np.random.default_rng(0).integers(0, 500, (500, 6))
    got = _sq_dists(x, nbr)
    want = ((x[nbr] - x[:, None, :]) ** 2).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_array_equal(got, _sq_dists(x, nbr))


def test_refine_auto_adds_rounds_until_the_recall_target(tmp_path):
    x, _ = data(spread=0.3)
    folder = write_shards(tmp_path / "s", x)
    kw = dict(k=10, knn_backend="exact", partitions=12, recall_sample=2000)
    one = build_sharded_index(folder, out=tmp_path / "one.gw", refine=1, **kw).graphs["knn"]
    auto = build_sharded_index(folder, out=tmp_path / "auto.gw", **kw).graphs["knn"]  # default
    rounds = auto.params["recall_by_round"]
    assert rounds[0] < 0.9 and auto.params["refine"] == len(rounds) - 1 >= 2
    assert auto.params["recall"] == rounds[-1] >= one.params["recall"]
    assert rounds[-1] >= 0.9 or rounds[-1] - rounds[-2] < 0.005 or len(rounds) == 5
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(rounds))  # a round never loses
    assert one.params["recall_by_round"][:2] == rounds[:2]  # the same first round
    # already above the target: no round is run
    easy = build_sharded_index(folder, out=tmp_path / "easy.gw", target_recall=0.5, **kw).graphs[
        "knn"
    ]
    assert easy.params["refine"] == 0 and easy.params["recall"] == rounds[0]
    with pytest.raises(InputError, match="refine should be 'auto' or a number"):
        build_sharded_index(folder, out=tmp_path / "bad.gw", refine="lots")


def test_ctrl_c_while_the_engine_shuts_down_keeps_a_finished_index(shards, tmp_path, monkeypatch):
    """Ray takes a second or two to shut down after the index is written: a Ctrl-C then must not
    turn a complete index into an 'interrupted' build; before the write it still interrupts."""
    from graphwalk.build import engines
    from graphwalk.build import shards as shards_mod

    class Slow(engines.LocalEngine):
        def close(self):
            raise KeyboardInterrupt

    monkeypatch.setattr(shards_mod, "make_engine", lambda *a, **kw: Slow())
    folder, x, _ = shards
    idx = build_sharded_index(folder, out=tmp_path / "a.gw", k=5, partitions=1)
    assert gw.GraphIndex.load(tmp_path / "a.gw").n_items == len(x) == idx.n_items

    class Broken(Slow):
        def map(self, fn, calls, *, desc, show):
            raise RuntimeError("a stage failed")

    monkeypatch.setattr(shards_mod, "make_engine", lambda *a, **kw: Broken())
    with pytest.raises(KeyboardInterrupt):  # the interrupt is not swallowed before the write
        build_sharded_index(folder, out=tmp_path / "b.gw", k=5, partitions=1)
    assert not (tmp_path / "b.gw").exists() and _leftovers(tmp_path) == []


def test_many_items_at_one_point_are_said_and_still_build(tmp_path):
    # 90% of the items are one vector: k-means leaves clusters empty and no number of
    # partitions brings the largest under the memory; both are said, and the index is built
    x, y = data(8000, 16)
    x[: int(0.9 * len(x))] = x[0]
    folder = write_shards(tmp_path / "s", x, y)
    with pytest.warns(UserWarning) as said:
        idx = build_sharded_index(
            folder, out=tmp_path / "a.gw", clusters=20, graphs=["knn", "er"], k=5,
            knn_backend="exact", worker_memory="1M", refine=1,
        )  # fmt: skip
    text = " | ".join(str(w.message) for w in said)
    assert "k-means left" in text and "clusters empty" in text
    assert "more partitions do not shrink it" in text
    tried = idx.build_params["sharded"]["partitions"]["tried"]
    assert len(tried) <= 8  # stopped growing early, not at a quarter of the sample
    assert idx.levels["kmeans"].params["dropped_empty"] > 0 and idx.n_items == len(x)
