import json
import os
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import graphwalk as gw
from graphwalk.errors import IndexFormatError, InputError, OutputExistsError
from graphwalk.index.storage import FORMAT_VERSION, PARQUET_FORMAT_VERSION


@pytest.fixture
def built(blobs, tmp_path):
    x, y = blobs
    idx = gw.build_index(
        x,
        labels={"label": y, "half": y // 3},
        clusters=12,
        groups=["labels"],
        graphs=["er", "knn-clusters", "knn"],
        k=5,
        out=tmp_path / "a.gw",
    )
    return idx, tmp_path / "a.gw"


def test_roundtrip_preserves_everything(built):
    idx, path = built
    back = gw.GraphIndex.load(path)
    assert back.n_items == idx.n_items == 600
    assert set(back.levels) == {"kmeans", "labels", "half"}
    assert set(back.graphs) == {"er", "knn-clusters", "knn"}
    for name, g in idx.graphs.items():
        h = back.graphs[name]
        np.testing.assert_array_equal(g.indptr, h.indptr)
        np.testing.assert_array_equal(g.indices, h.indices)
        np.testing.assert_array_equal(g.weights, h.weights)
        assert (g.kind, g.level, g.space, g.directed) == (h.kind, h.level, h.space, h.directed)
    for name, lv in idx.levels.items():
        np.testing.assert_array_equal(lv.assignment, back.levels[name].assignment)
        np.testing.assert_array_equal(lv.centroids, back.levels[name].centroids)
        np.testing.assert_array_equal(lv.values, back.levels[name].values)
    np.testing.assert_array_equal(back.labels["half"], idx.labels["half"])
    m = back.manifest
    assert m["format_version"] == PARQUET_FORMAT_VERSION and m["build"]["clusters"] == 12
    assert back.graphs["knn"].params["recall"] == 1.0
    assert len(back.fingerprint) == 16 and back.fingerprint == idx.fingerprint


def test_loaded_arrays_are_read_only(built):
    _, path = built
    back = gw.GraphIndex.load(path)
    with pytest.raises(ValueError):
        back.graphs["knn"].indices[0] = 1
    with pytest.raises(ValueError):
        back.levels["kmeans"].assignment[0] = 1


def test_members_lists_each_cluster(built):
    idx, _ = built
    indptr, items = idx.members("kmeans")
    a = idx.levels["kmeans"].assignment
    for c in range(idx.levels["kmeans"].n_clusters):
        got = items[indptr[c] : indptr[c + 1]]
        np.testing.assert_array_equal(got, np.flatnonzero(a == c))
    with pytest.raises(InputError, match="no level 'nope'"):
        idx.members("nope")
    with pytest.raises(InputError, match="no graph 'x'.*'er'"):
        idx.graph("x")


def test_existing_output_is_refused_before_any_work(built, monkeypatch):
    _, path = built
    called = []
    monkeypatch.setattr("graphwalk.build.builder.kmeans_level", lambda *a, **k: called.append(1))
    with pytest.raises(OutputExistsError, match="already exists.*--overwrite"):
        gw.build_index(np.zeros((10, 2)), clusters=2, out=path)
    assert not called


def test_overwrite_replaces_and_leaves_no_temporaries(built, blobs):
    _, path = built
    x, _ = blobs
    gw.build_index(x, clusters=3, graphs=["er"], out=path, overwrite=True)
    assert set(gw.GraphIndex.load(path).graphs) == {"er"}
    assert [p.name for p in path.parent.iterdir()] == ["a.gw"]


def test_overwrite_never_deletes_a_foreign_directory(tmp_path, blobs):
    x, _ = blobs
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="not a graphwalk index"):
        gw.build_index(x, clusters=3, out=tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_crash_during_write_leaves_nothing(tmp_path, blobs, monkeypatch):
    x, _ = blobs
    import graphwalk.index.artifact as gi

    real = gi.write_json

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(gi, "write_json", boom)
    with pytest.raises(KeyboardInterrupt):
        gw.build_index(x, clusters=3, out=tmp_path / "b.gw")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(gi, "write_json", real)


def test_crash_during_overwrite_keeps_the_old_index(built, blobs, monkeypatch):
    _, path = built
    x, _ = blobs
    import graphwalk.index.artifact as gi

    monkeypatch.setattr(
        gi, "write_parquet", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))
    )
    with pytest.raises(OSError, match="disk full"):
        gw.build_index(x, clusters=3, out=path, overwrite=True)
    assert set(gw.GraphIndex.load(path).graphs) == {"er", "knn-clusters", "knn"}
    assert [p.name for p in path.parent.iterdir()] == ["a.gw"]


def _manifest(path):
    return json.loads((path / "manifest.json").read_text())


def test_missing_table(built):
    _, path = built
    os.remove(path / "graph-001.parquet")
    with pytest.raises(IndexFormatError, match="missing its table graph-001.parquet"):
        gw.GraphIndex.load(path)


def test_truncated_table(built):
    _, path = built
    f = path / "graph-002.parquet"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(IndexFormatError, match="graph-002.parquet.*truncated"):
        gw.GraphIndex.load(path)


def test_truncated_table_with_manifest_updated_is_unreadable(built):
    _, path = built
    f = path / "graph-002.parquet"
    f.write_bytes(f.read_bytes()[:-100])
    m = _manifest(path)
    m["tables"]["graph-002.parquet"]["bytes"] = f.stat().st_size
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexFormatError, match="checksum"):
        gw.GraphIndex.load(path)
    with pytest.raises(IndexFormatError, match="not a readable Parquet file"):
        gw.GraphIndex.load(path, verify=False)


def test_checksum_mismatch(built):
    _, path = built
    f = path / "items.parquet"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="items.parquet.*SHA-256"):
        gw.GraphIndex.load(path)


def test_foreign_parquet_file(built):
    _, path = built
    f = path / "graph-000.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3]}), f)
    m = _manifest(path)
    m["tables"]["graph-000.parquet"]["bytes"] = f.stat().st_size
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexFormatError, match="no column 'src'.*foreign"):
        gw.GraphIndex.load(path, verify=False)


def test_newer_format_is_refused(built):
    _, path = built
    m = _manifest(path)
    m["format_version"] = FORMAT_VERSION + 1
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(
        IndexFormatError, match=f"format version {FORMAT_VERSION + 1}, newer.*upgrade"
    ):
        gw.GraphIndex.load(path)


@pytest.mark.parametrize(
    "content,msg", [("{", "not valid JSON"), ('{"format": "other"}', "not a graphwalk")]
)
def test_bad_manifest(built, content, msg):
    _, path = built
    (path / "manifest.json").write_text(content)
    with pytest.raises(IndexFormatError, match=msg):
        gw.GraphIndex.load(path)


def test_not_an_index(tmp_path):
    with pytest.raises(IndexFormatError, match="does not exist"):
        gw.GraphIndex.load(tmp_path / "nope.gw")
    (tmp_path / "d").mkdir()
    with pytest.raises(IndexFormatError, match="no manifest.json"):
        gw.GraphIndex.load(tmp_path / "d")
    (tmp_path / "f").write_text("x")
    with pytest.raises(IndexFormatError, match="is a directory|not a graphwalk index"):
        gw.GraphIndex.load(tmp_path / "f")


def test_build_input_errors(blobs, tmp_path):
    x, y = blobs
    with pytest.raises(InputError, match="cannot make 601 clusters from 600 items"):
        gw.build_index(x, clusters=601)
    with pytest.raises(InputError, match="k=600.*only 600 items"):
        gw.build_index(x, graphs=["knn"], k=600)
    with pytest.raises(InputError, match="built over clusters"):
        gw.build_index(x, graphs=["er"])
    with pytest.raises(InputError, match="no labels were given"):
        gw.build_index(x, groups=["labels"])
    with pytest.raises(InputError, match="5 entries but there are 600"):
        gw.build_index(x, labels=y[:5], clusters=3)
    with pytest.raises(InputError, match="unknown graph kind"):
        gw.build_index(x, clusters=3, graphs=["metis"])
    with pytest.raises(InputError, match="counts differ"):
        gw.build_index({"a": x, "b": x[:10]}, graphs=["knn"])
    with pytest.raises(InputError, match="empty"):
        gw.build_index(np.zeros((0, 3)), graphs=["knn"])
    assert list(tmp_path.iterdir()) == []


def test_one_knn_graph_per_space(blobs):
    x, _ = blobs
    idx = gw.build_index(
        {"layer1": x, "layer2": x[:, :3] * 2}, clusters=4, graphs=["er", "knn"], k=3
    )
    assert set(idx.graphs) == {"er", "knn@layer1", "knn@layer2"}
    assert idx.graphs["knn@layer2"].space == "layer2"
    assert idx.levels["kmeans"].space == "layer1"


def test_build_is_deterministic(blobs, tmp_path):
    x, y = blobs
    a = gw.build_index(
        x, labels=y, clusters=10, graphs=["er", "knn"], k=4, seed=3, out=tmp_path / "a.gw"
    )
    b = gw.build_index(
        x, labels=y, clusters=10, graphs=["er", "knn"], k=4, seed=3, out=tmp_path / "b.gw"
    )
    assert (
        a.manifest["tables"]["graph-000.parquet"]["sha256"]
        == b.manifest["tables"]["graph-000.parquet"]["sha256"]
    )
    assert (
        a.manifest["tables"]["items.parquet"]["sha256"]
        == b.manifest["tables"]["items.parquet"]["sha256"]
    )


# ---------------------------------------------------------------------------------------------
# the walk order of item graphs (issue 6: walk in a locality numbering, map back at the output)


def test_item_graphs_carry_a_walk_order_that_round_trips(built):
    idx, path = built
    w = idx.graphs["knn"].walk
    assert w is not None and w.method == "cluster-bfs"
    assert idx.graphs["er"].walk is None  # cluster graphs are small: walked as they are
    loaded = gw.GraphIndex.load(path).graphs["knn"].walk
    for name in ("order", "position", "indptr", "indices", "weights"):
        assert np.array_equal(getattr(w, name), getattr(loaded, name)), name
    meta = _manifest(path)["graphs"][2]["walk"]
    assert meta == {"file": "graph-002-walk.parquet", "column": "walk.knn", "method": "cluster-bfs"}


def _rewrite_items(path, column, values):
    f = path / "items.parquet"
    t = pq.read_table(f)
    t = t.set_column(t.schema.get_field_index(column), column, pa.array(values, pa.int32()))
    pq.write_table(t, f)
    m = _manifest(path)
    m["tables"]["items.parquet"]["bytes"] = f.stat().st_size
    (path / "manifest.json").write_text(json.dumps(m))


def test_a_walk_order_that_is_not_a_permutation_is_refused(built):
    idx, path = built
    pos = np.array(idx.graphs["knn"].walk.position)
    pos[1] = pos[0]
    _rewrite_items(path, "walk.knn", pos)
    with pytest.raises(IndexFormatError, match="walk.knn.*not a permutation"):
        gw.GraphIndex.load(path, verify=False)


def test_a_walk_table_of_another_graph_is_refused(built):
    idx, path = built
    pos = np.array(idx.graphs["knn"].walk.position)
    _rewrite_items(path, "walk.knn", np.roll(pos, 1))  # a permutation, but not this graph's
    with pytest.raises(IndexFormatError, match="graph-002-walk.parquet.*rows of graph 'knn'"):
        gw.GraphIndex.load(path, verify=False)


def test_a_missing_walk_table_is_refused(built):
    _, path = built
    os.remove(path / "graph-002-walk.parquet")
    with pytest.raises(IndexFormatError, match="missing its table graph-002-walk.parquet"):
        gw.GraphIndex.load(path)


# ---------------------------------------------------------------------------------------------
# the manifest against its schema and its cross-references (issue 7)


def _edit(path, fn):
    m = _manifest(path)
    fn(m)
    (path / "manifest.json").write_text(json.dumps(m))


def _set(*keys_value):
    *keys, value = keys_value

    def fn(m):
        d = m
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return fn


def _del(*keys):
    def fn(m):
        d = m
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]

    return fn


@pytest.mark.parametrize(
    "edit,field,msg",
    [
        # cross-references: a graph over a level with fewer clusters than its nodes segfaulted
        (_set("graphs", 0, "level", "half"), r"graphs\[0\]\.n_nodes", "12, but there are 2"),
        (_set("graphs", 0, "n_nodes", 11), r"graphs\[0\]\.n_nodes", "11, but there are 12"),
        (_set("graphs", 2, "n_nodes", 599), r"graphs\[2\]\.n_nodes", "599, but there are 600"),
        (_set("graphs", 0, "level", "nope"), r"graphs\[0\]\.level", "'nope' is not one of"),
        (_set("graphs", 0, "kind", "item"), r"graphs\[0\]\.space", "None is not one of"),
        (_set("graphs", 2, "kind", "cluster"), r"graphs\[2\]\.level", "None is not one of"),
        (_set("graphs", 0, "kind", "node"), r"graphs\[0\]\.kind", "'cluster' or 'item'"),
        (_set("graphs", 2, "space", "layer9"), r"graphs\[2\]\.space", "'layer9' is not one"),
        (_set("levels", 0, "dim", 7), r"levels\[0\]\.dim", "7, but space 'input' has 8"),
        (_set("spaces", "input", 9), r"levels\[0\]\.dim", "8, but space 'input' has 9"),
        (_set("levels", 1, "space", "x"), r"levels\[1\]\.space", "'x' is not one of"),
        (
            _set(
                "graphs",
                0,
                "walk",
                {"file": "graph-002-walk.parquet", "column": "walk.knn", "method": "bfs"},
            ),
            r"graphs\[0\]\.walk",
            "only item",
        ),
        (_set("graphs", 1, "file", "graph-000.parquet"), r"graphs\[1\]\.file", "already used"),
        (
            _set("graphs", 1, "file", "../a.gw/graph-001.parquet"),
            r"graphs\[1\]\.file",
            "plain file name",
        ),
        (_set("graphs", 1, "file", "nope.parquet"), r"graphs\[1\]\.file", "not listed"),
        (_set("graphs", 1, "name", "er"), r"graphs\[1\]\.name", "'er' appears twice"),
        # counts: integers, not fractions, booleans or negatives; version at least the first
        (_set("n_items", 600.5), "n_items", "valid integer"),
        (_set("n_items", 600.0), "n_items", "valid integer"),
        (_set("n_items", -1), "n_items", "greater than or equal"),
        (_set("levels", 0, "n_clusters", 10.5), r"levels\[0\]\.n_clusters", "valid integer"),
        (_set("graphs", 1, "n_edges", True), r"graphs\[1\]\.n_edges", "valid integer"),
        (_set("tables", "items.parquet", "rows", "600"), r"tables\['items.parquet'\]\.rows", ""),
        (_set("format_version", 0), "format_version", "below the first format version 1"),
        (_set("format_version", -3), "format_version", "below the first"),
        (_set("format_version", True), "format_version", "should be an integer"),
        # missing or mangled fields: KeyError / TypeError / ValueError before
        (
            _del("tables", "items.parquet", "bytes"),
            r"tables\['items.parquet'\]\.bytes",
            "missing|required",
        ),
        (
            _del("tables", "graph-001.parquet", "sha256"),
            r"tables\['graph-001.parquet'\]\.sha256",
            "required",
        ),
        (
            _set("tables", "graph-001.parquet", "sha256", "x"),
            r"tables\[.graph-001.parquet.\]\.sha256",
            "pattern",
        ),
        (_del("graphs", 1, "file"), r"graphs\[1\]\.file", "required"),
        (_del("graphs", 1, "name"), r"graphs\[1\]\.name", "required"),
        (_del("levels", 0, "source"), r"levels\[0\]\.source", "required"),
        (_set("levels", 0, "dim", "8"), r"levels\[0\]\.dim", "valid integer"),
        (_set("levels", {"kmeans": {}}), "levels", "valid list"),
        (
            _set("graphs", 2, "walk", {"file": "graph-002-walk.parquet", "method": "bfs"}),
            r"graphs\[2\]\.walk\.column",
            "required",
        ),
        (_del("tables", "items.parquet"), "tables", "'items.parquet' is not listed"),
        (_set("labels", [1]), r"labels\[0\]", "valid string"),
        (_set("spaces", []), "spaces", "valid dictionary"),
    ],
)
def test_manifest_is_checked_against_its_schema(built, edit, field, msg):
    _, path = built
    _edit(path, edit)
    for verify in (True, False):
        with pytest.raises(IndexFormatError) as info:
            gw.GraphIndex.load(path, verify=verify)
        text = str(info.value)
        assert text.startswith(str(path / "manifest.json") + ": ") and "rebuild the index" in text
        assert re.search(rf"manifest\.json: {field}: .*({msg})", text), text


def test_a_graph_over_a_smaller_level_is_refused_not_walked(built):
    # issue 7: this manifest loaded, and the sampler then read out of bounds (segfault)
    _, path = built
    _edit(path, _set("graphs", 1, "level", "labels"))
    with pytest.raises(IndexFormatError, match=r"graphs\[1\]\.n_nodes: 12, but there are 6"):
        gw.GraphIndex.load(path)


def _rewrite_table(path, fname, table, checksum=True):
    f = path / fname
    pq.write_table(table, f)
    m = _manifest(path)
    m["tables"][fname]["bytes"] = f.stat().st_size
    if checksum:
        import hashlib

        m["tables"][fname]["sha256"] = hashlib.sha256(f.read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    "fname", ["graph-000.parquet", "graph-002.parquet", "graph-002-walk.parquet"]
)
@pytest.mark.parametrize("bad", [float("nan"), -1.0, 0.0, float("inf")])
def test_weights_that_are_nan_negative_or_zero_are_refused(built, fname, bad):
    _, path = built
    t = pq.read_table(path / fname)
    w = t.column("weight").to_numpy().copy()
    w[3] = bad
    _rewrite_table(path, fname, t.set_column(2, "weight", pa.array(w, pa.float32())))
    with pytest.raises(IndexFormatError, match=f"{fname}.*NaN, infinite, zero or negative"):
        gw.GraphIndex.load(path)


@pytest.mark.parametrize(
    "fname,column,values,msg",
    [
        ("items.parquet", "label.half", lambda c: c.astype(np.float64), "has type double"),
        ("items.parquet", "cluster.kmeans", lambda c: c.astype(np.int64), "has type int64"),
        ("items.parquet", "item", lambda c: c[::-1].copy(), "'item'.*not 0..599"),
        ("level-000.parquet", "size", lambda c: c[::-1].copy(), "sizes of level 'kmeans'"),
        ("level-000.parquet", "cluster", lambda c: c[::-1].copy(), "clusters 0..11"),
        ("graph-001.parquet", "weight", lambda c: c.astype(np.float64), "has type double"),
    ],
)
def test_table_columns_of_the_wrong_kind_are_refused(built, fname, column, values, msg):
    _, path = built
    t = pq.read_table(path / fname)
    i = t.schema.get_field_index(column)
    t = t.set_column(i, column, pa.array(values(t.column(column).to_numpy())))
    _rewrite_table(path, fname, t)
    with pytest.raises(IndexFormatError, match=msg):
        gw.GraphIndex.load(path)


@pytest.mark.parametrize(
    "dim,value,msg", [(7, 1.0, r"fixed_size_list<float>\[8\]"), (8, float("nan"), "not finite")]
)
def test_centroids_of_the_wrong_width_or_not_finite_are_refused(built, dim, value, msg):
    _, path = built
    t = pq.read_table(path / "level-000.parquet")
    cent = pa.FixedSizeListArray.from_arrays(pa.array(np.full(12 * dim, value, np.float32)), dim)
    _rewrite_table(path, "level-000.parquet", t.set_column(3, "centroid", cent))
    with pytest.raises(IndexFormatError, match=msg):
        gw.GraphIndex.load(path)


@pytest.mark.parametrize("fname", ["graph-000.parquet", "graph-002.parquet"])
@pytest.mark.parametrize("edge", ["self-loop", "repeated"])
def test_self_loops_and_repeated_edges_are_refused(built, fname, edge):
    # a cluster graph with a repeated edge took one cluster twice: an item twice in an epoch
    _, path = built
    t = pq.read_table(path / fname)
    src, dst = t.column("src").to_numpy(), t.column("dst").to_numpy().copy()
    dst[1] = src[1] if edge == "self-loop" else dst[0]
    _rewrite_table(path, fname, t.set_column(1, "dst", pa.array(dst, pa.int32())))
    with pytest.raises(IndexFormatError, match=f"{fname}.*self-loop or a repeated neighbour"):
        gw.GraphIndex.load(path)
