"""The arrays layout (format version 2): memory-mapped, opened from headers alone, verified on
demand; the same index and the same batches as the Parquet layout."""

import hashlib
import json

import numpy as np
import pytest
import torch

import graphwalk as gw
from graphwalk.cli import main
from graphwalk.errors import IndexFormatError, InputError
from graphwalk.index import artifact
from graphwalk.index.storage import ARRAYS_FORMAT_VERSION, PARQUET_FORMAT_VERSION


@pytest.fixture
def pair(blobs, tmp_path):
    """One index saved in both layouts."""
    x, y = blobs
    idx = gw.build_index(
        x,
        labels={"label": y, "half": y // 3},
        clusters=12,
        groups=["labels"],
        graphs=["er", "knn-clusters", "knn"],
        k=5,
    )
    idx.save(tmp_path / "p.gw", layout="parquet")
    idx.save(tmp_path / "a.gw", layout="arrays")
    return idx, tmp_path / "p.gw", tmp_path / "a.gw"


def _manifest(path):
    return json.loads((path / "manifest.json").read_text())


def _write_manifest(path, m):
    (path / "manifest.json").write_text(json.dumps(m))


def _batches_hash(index, graph, **kw):
    s = gw.GraphWalkBatchSampler(index, 32, graph=graph, seed=7, **kw)
    h = hashlib.sha256()
    for epoch in range(2):
        s.set_epoch(epoch)
        for b in s:
            h.update(np.asarray(b, np.int64).tobytes())
    return h.hexdigest()


def test_both_layouts_hold_the_same_index_and_give_the_same_batches(pair):
    idx, p, a = pair
    back_p, back_a = gw.GraphIndex.load(p), gw.GraphIndex.load(a)
    assert back_p.manifest["format_version"] == PARQUET_FORMAT_VERSION == 1
    assert back_a.manifest["format_version"] == ARRAYS_FORMAT_VERSION == 2
    assert (back_p.layout, back_a.layout) == ("parquet", "arrays")
    for name, g in idx.graphs.items():
        h = back_a.graphs[name]
        for f in ("indptr", "indices", "weights"):
            np.testing.assert_array_equal(getattr(g, f), getattr(h, f))
            assert getattr(h, f).dtype == getattr(back_p.graphs[name], f).dtype
        assert h.describe() == back_p.graphs[name].describe()
        assert (g.walk is None) == (h.walk is None)
        if g.walk is not None:
            for f in ("order", "position", "indptr", "indices", "weights"):
                np.testing.assert_array_equal(getattr(g.walk, f), getattr(h.walk, f))
            assert h.walk.method == g.walk.method
    for name, lv in idx.levels.items():
        h = back_a.levels[name]
        for f in ("assignment", "centroids", "values"):
            np.testing.assert_array_equal(getattr(lv, f), getattr(h, f))
        assert (h.source, h.space, h.params) == (lv.source, lv.space, lv.params)
        for u, v in zip(idx.members(name), back_a.members(name), strict=True):
            np.testing.assert_array_equal(u, v)
    for name, y in idx.labels.items():
        np.testing.assert_array_equal(back_a.labels[name], y)
    assert back_a.build_params == back_p.build_params
    for graph, kw in (("er", {}), ("knn", {}), ("knn-clusters", {"mix": 0.25})):
        assert _batches_hash(back_a, graph, **kw) == _batches_hash(back_p, graph, **kw)


def test_arrays_are_read_only_memory_maps(pair):
    _, _, a = pair
    back = gw.GraphIndex.load(a)
    g = back.graphs["knn"]
    for arr in (g.indptr, g.indices, g.weights, g.walk.order, back.levels["kmeans"].assignment):
        assert not arr.flags.writeable
        assert isinstance(arr.base, np.memmap) or isinstance(arr, np.memmap)
        with pytest.raises(ValueError):
            arr[0] = 1
    assert type(g.indices) is np.ndarray  # plain arrays for Numba, backed by the mapping


def test_the_open_reads_headers_only_and_verify_finds_what_it_skips(pair):
    """Damage in the middle of an array, same size: the O(1) open cannot see it; verify() does,
    names the file, records the failure, and load(verify=True) refuses."""
    _, _, a = pair
    f = a / _manifest(a)["graphs"][2]["arrays"]["indices"]
    raw = bytearray(f.read_bytes())
    raw[-8] ^= 0xFF
    f.write_bytes(bytes(raw))
    idx = gw.GraphIndex.load(a)  # opens: sizes, dtypes and shapes are right
    with pytest.raises(IndexFormatError, match=f"{f.name} of index .* SHA-256"):
        idx.verify()
    rec = json.loads((a / "verified.json").read_text())
    assert rec["ok"] is False and f.name in rec["error"]
    assert gw.GraphIndex.load(a).verification["ok"] is False
    with pytest.raises(IndexFormatError, match="SHA-256"):
        gw.GraphIndex.load(a, verify=True)


def test_verify_records_success_for_this_content_only(pair, monkeypatch):
    idx, p, a = pair
    back = gw.GraphIndex.load(a)
    assert back.verification is None
    rep = back.verify()
    assert rep["ok"] and rep["recorded"] and rep["files"] == len(_manifest(a)["tables"])
    assert rep["bytes"] == sum(t["bytes"] for t in _manifest(a)["tables"].values())
    again = gw.GraphIndex.load(a)
    assert again.verification["ok"] and again.verification["fingerprint"] == again.fingerprint
    # a record made for other content is not this index's
    rec = json.loads((a / "verified.json").read_text())
    rec["fingerprint"] = "0" * 16
    (a / "verified.json").write_text(json.dumps(rec))
    assert gw.GraphIndex.load(a).verification is None
    # Parquet indexes verify too (checksums; the structure was checked when read)
    assert gw.GraphIndex.load(p, verify=False).verify()["ok"]

    # a directory that cannot be written: verified, not recorded, not an error
    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(artifact, "atomic_write", refuse)
    rep = gw.GraphIndex.load(a).verify()
    assert rep["ok"] and rep["recorded"] is False
    with pytest.raises(InputError, match="no files to verify"):
        idx.verify() if idx.path is None else gw.GraphIndex(3).verify()


def _rewrite_array(path, key_path, arr):
    """Replace one array file with ``arr`` and make the manifest agree (size, checksum, dtype,
    shape), as a buggy writer or a hand edit would: only the structure is wrong."""
    m = _manifest(path)
    d = m
    for k in key_path:
        d = d[k]
    f = path / d
    np.save(f, arr, allow_pickle=False)
    t = m["tables"][d]
    t.update(
        bytes=f.stat().st_size,
        sha256=hashlib.sha256(f.read_bytes()).hexdigest(),
        dtype=arr.dtype.str,
        shape=list(arr.shape),
    )
    _write_manifest(path, m)
    return f.name


def test_verify_checks_the_structure_of_arrays_with_valid_checksums(pair, tmp_path):
    idx, _, a = pair
    import shutil

    cases = []
    g = idx.graphs["knn"]
    loop = np.array(g.indices)
    loop[g.indptr[3]] = 3  # node 3 points at itself
    cases.append((("graphs", 2, "arrays", "indices"), loop, "node 3 has a self-loop"))
    far = np.array(g.indices)
    far[0] = 10_000
    cases.append((("graphs", 2, "arrays", "indices"), far, r"outside \[0, 600\)"))
    w = np.array(g.weights)
    w[5] = np.nan
    cases.append((("graphs", 2, "arrays", "weights"), w, "NaN, infinite"))
    pos = np.array(g.walk.position)
    pos[1] = pos[0]
    cases.append((("graphs", 2, "arrays", "walk_position"), pos, "not a permutation"))
    assign = np.array(idx.levels["kmeans"].assignment)
    assign[0] = (assign[0] + 1) % 12
    # the assignment changed, its grouping did not: the two disagree, and the grouping is named
    cases.append((("levels", 0, "arrays", "assignment"), assign, "does not group the items"))
    cent = np.array(idx.levels["kmeans"].centroids)
    cent[0, 0] = np.inf
    cases.append((("levels", 0, "arrays", "centroids"), cent, "not finite"))
    for i, (keys, arr, msg) in enumerate(cases):
        c = tmp_path / f"c{i}.gw"
        shutil.copytree(a, c)
        name = _rewrite_array(c, keys, arr)
        if keys[-1] == "assignment":
            name = "level-000-members.npy"
        back = gw.GraphIndex.load(c)  # sizes, dtypes and shapes are right: it opens
        with pytest.raises(IndexFormatError, match=f"{name} of index .*{msg}.*rebuild"):
            back.verify()


@pytest.mark.parametrize(
    "damage, msg",
    [
        ("truncate", r"has \d+ bytes, the manifest says \d+: the file is truncated"),
        ("missing", "is missing its array"),
        ("dtype", "holds int64, expected int32"),
        ("shape", r"has shape \(599,\), expected \(600,\)"),
        ("indptr", r"runs from 0 to \d+, not from 0 to \d+"),
        ("foreign", "not a readable .npy file"),
        ("header", "not a readable .npy file"),  # NumPy's parser raised TokenError (fuzzing)
    ],
)
def test_the_open_refuses_damage_its_headers_show(pair, damage, msg):
    _, _, a = pair
    m = _manifest(a)
    f = a / m["graphs"][2]["arrays"]["walk_position"]
    if damage == "truncate":
        f.write_bytes(f.read_bytes()[:-4])
    elif damage == "missing":
        f.unlink()
    elif damage == "dtype":  # same bytes would not do: rewrite and fix size in the manifest
        _rewrite_array(a, ("graphs", 2, "arrays", "walk_position"), np.arange(600, dtype=np.int64))
        m = _manifest(a)
        m["tables"][f.name]["dtype"] = "<i4"
        _write_manifest(a, m)
    elif damage == "shape":
        _rewrite_array(a, ("graphs", 2, "arrays", "walk_position"), np.arange(599, dtype=np.int32))
        m = _manifest(a)
        m["tables"][f.name]["shape"] = [600]
        _write_manifest(a, m)
    elif damage == "indptr":
        g = gw.GraphIndex.load(a).graphs["knn"]
        bad = np.array(g.indptr)
        bad[-1] -= 1
        _rewrite_array(a, ("graphs", 2, "arrays", "indptr"), bad)
        f = a / m["graphs"][2]["arrays"]["indptr"]
    elif damage == "foreign":
        f.write_bytes(b"x" * f.stat().st_size)
    elif damage == "header":  # the same length, an unbalanced shape: "(600,(, }"
        raw = f.read_bytes()
        f.write_bytes(raw.replace(b"(600,), }", b"(600,(, }", 1))
        assert f.read_bytes() != raw
    with pytest.raises(IndexFormatError, match=msg) as info:
        gw.GraphIndex.load(a)
    assert f.name in str(info.value) and "rebuild the index" in str(info.value)


@pytest.mark.parametrize(
    "edit, field, msg",
    [
        (lambda m: m["graphs"][0]["arrays"].pop("weights"), r"graphs\[0\]\.arrays", "should name"),
        (lambda m: m["levels"][0]["arrays"].pop("members"), r"levels\[0\]\.arrays", "should name"),
        (lambda m: m["label_arrays"].pop("half"), "label_arrays", "one array per label set"),
        (
            lambda m: m["tables"]["graph-000-indptr.npy"].pop("dtype"),
            r"tables\['graph-000-indptr.npy'\]",
            "dtype and shape",
        ),
        (lambda m: m.update(format_version=1), "layout", "needs format_version 2"),
        (
            lambda m: m["tables"].update(extra={"rows": 1, "bytes": 1, "sha256": "0" * 64}),
            r"tables\['extra'\]",
            "not used by",
        ),
    ],
)
def test_an_arrays_manifest_is_checked(pair, edit, field, msg):
    _, _, a = pair
    m = _manifest(a)
    edit(m)
    _write_manifest(a, m)
    with pytest.raises(IndexFormatError, match=rf"manifest\.json: {field}: .*{msg}"):
        gw.GraphIndex.load(a)


def test_layout_auto_switches_at_arrays_from(blobs, tmp_path, monkeypatch):
    x, _ = blobs
    idx = gw.build_index(x, clusters=6, graphs="er")
    assert idx.save(tmp_path / "small.gw").layout == "parquet"  # 600 < 1,000,000
    monkeypatch.setattr(artifact, "ARRAYS_FROM", 600)
    assert idx.save(tmp_path / "big.gw").layout == "arrays"
    assert gw.build_index(x, clusters=6, graphs="er", out=tmp_path / "b.gw").layout == "arrays"
    with pytest.raises(InputError, match=r"layout should be one of .*'mmap'"):
        idx.save(tmp_path / "x.gw", layout="mmap")
    with pytest.raises(InputError, match="layout should be one of"):
        gw.build_index(x, clusters=6, graphs="er", out=tmp_path / "y.gw", layout="npy")
    assert not (tmp_path / "x.gw").exists() and not (tmp_path / "y.gw").exists()
    # replacing one layout with the other in place
    idx.save(tmp_path / "big.gw", overwrite=True, layout="parquet")
    back = gw.GraphIndex.load(tmp_path / "big.gw")
    assert back.layout == "parquet" and not list((tmp_path / "big.gw").glob("*.npy"))


def test_dataloader_workers_read_the_mapped_index(pair):
    _, p, a = pair

    class Ids(torch.utils.data.Dataset):
        def __len__(self):
            return 600

        def __getitem__(self, i):
            return i

    def batches(path):
        s = gw.GraphWalkBatchSampler(gw.GraphIndex.load(path), 50, graph="knn", seed=1)
        dl = torch.utils.data.DataLoader(Ids(), batch_sampler=s, num_workers=2)
        return [b.tolist() for b in dl]

    got = batches(a)
    assert got == batches(p)
    assert sorted(i for b in got for i in b) == list(range(600))


def test_cli_index_layout_inspect_verify_and_export(blobs, tmp_path, capsys):
    x, _ = blobs
    emb = tmp_path / "x.npy"
    np.save(emb, x)
    a, p, b = tmp_path / "a.gw", tmp_path / "p.gw", tmp_path / "b.gw"
    base = ["index", "--embeddings", str(emb), "--clusters", "6", "--graph", "er"]
    assert main([*base, "--graph", "knn", "--layout", "arrays", "--out", str(a)]) == 0
    assert _manifest(a)["layout"] == "arrays"
    capsys.readouterr()
    assert main(["inspect", str(a)]) == 0
    out = capsys.readouterr().out
    assert "format v2 arrays" in out and "verified: not for the current files" in out
    assert main(["inspect", str(a), "--verify"]) == 0
    assert "verified: ok at" in capsys.readouterr().out
    assert main(["inspect", str(a), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["layout"] == "arrays" and stats["verification"]["ok"] is True
    assert main(["export", str(a), str(p), "--layout", "parquet"]) == 0
    assert "parquet layout, format v1" in capsys.readouterr().out
    assert main(["export", str(p), str(b), "--layout", "arrays"]) == 0
    for g in ("er", "knn"):
        assert _batches_hash(gw.GraphIndex.load(b), g) == _batches_hash(gw.GraphIndex.load(a), g)
    # bad input: one line, nothing written
    assert main(["export", str(a), str(a), "--layout", "parquet"]) == 2
    assert "is the index being read" in capsys.readouterr().err
    assert main(["export", str(a), str(p), "--layout", "parquet"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (
        main(["export", str(tmp_path / "none.gw"), str(tmp_path / "n.gw"), "--layout", "arrays"])
        == 2
    )
    assert "no index at" in capsys.readouterr().err and not (tmp_path / "n.gw").exists()
    assert main(["inspect", str(a), "--verify", "--no-verify"]) == 2
    f = a / _manifest(a)["graphs"][1]["arrays"]["weights"]
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x01
    f.write_bytes(bytes(raw))
    capsys.readouterr()
    assert main(["inspect", str(a), "--verify"]) == 2
    assert "fails its SHA-256 checksum" in capsys.readouterr().err
    assert main(["export", str(a), str(tmp_path / "c.gw"), "--layout", "parquet"]) == 2
    assert not (tmp_path / "c.gw").exists()


def test_a_record_is_stale_once_a_file_changes_and_inspect_checks_the_structure(pair, capsys):
    """After a verification, a byte changed in place (same size, same manifest): the record no
    longer speaks for the files, and `graphwalk inspect` (which reads every array) refuses the
    out-of-range id instead of reading outside its arrays."""
    import os
    import time as _time

    _, _, a = pair
    assert gw.GraphIndex.load(a).verify()["ok"]
    assert gw.GraphIndex.load(a).verification["ok"]
    f = a / _manifest(a)["graphs"][0]["arrays"]["indices"]  # the er graph over 12 clusters
    arr = np.load(f)
    arr[3] = 78  # a cluster id outside [0, 12)
    raw = bytearray(f.read_bytes())
    offset = len(raw) - arr.nbytes
    raw[offset : offset + arr.nbytes] = arr.tobytes()
    _time.sleep(0.01)
    f.write_bytes(bytes(raw))
    os.utime(f, ns=(_time.time_ns(), _time.time_ns()))
    back = gw.GraphIndex.load(a)  # the headers are right: it opens
    assert back.verification is None  # stale: a file changed since
    with pytest.raises(IndexFormatError, match=r"outside \[0, 12\)"):
        back.check_structure()
    capsys.readouterr()
    assert main(["inspect", str(a)]) == 2
    err = capsys.readouterr().err
    assert f.name in err and "outside [0, 12)" in err and err.count("\n") == 1
    assert main(["inspect", str(a), "--verify"]) == 2
    assert "SHA-256" in capsys.readouterr().err
    rec = gw.GraphIndex.load(a).verification
    assert rec is not None and rec["ok"] is False  # the failure is recorded for these files
