import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from graphwalk.cli import main


@pytest.fixture
def files(tmp_path, blobs):
    x, y = blobs
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return tmp_path


def test_index_then_inspect(files, capsys):
    out = files / "i.gw"
    rc = main(
        [
            "index",
            "--embeddings",
            str(files / "x.npy"),
            "--labels",
            str(files / "y.npy"),
            "--clusters",
            "10",
            "--groups",
            "labels",
            "--graph",
            "er",
            "--graph",
            "knn",
            "--k",
            "4",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["inspect", str(out), "--json", "--plot", str(files / "p.png")]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_items"] == 600 and set(stats["graphs"]) == {"er", "knn"}
    assert stats["levels"]["labels"]["homophily"]["label"]["community"] == 1.0
    assert stats["graphs"]["knn"]["homophily"]["label"]["lift"] > 2
    assert (files / "p.png").stat().st_size > 1000
    assert main(["inspect", str(out)]) == 0
    assert "homophily[label]" in capsys.readouterr().out


def _err(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--clusters", "700"], "cannot make 700 clusters from 600 items"),
        (["--graph", "knn", "--k", "600"], "k=600"),
        (["--labels", "BAD"], "labels has 3 entries but there are 600 items"),
        (["--embeddings1d"], "must be a 2-D array"),
        (["--nan"], "NaN or infinite values in 1 of 600 rows \\(first: row 17\\)"),
        (["--zero", "--metric", "cosine", "--graph", "knn"], "all-zero vectors"),
        (["--empty"], "empty"),
    ],
)
def test_index_bad_input_exits_2_with_one_line(files, capsys, blobs, args, msg):
    x, _ = blobs
    emb = files / "x.npy"
    extra = []
    for a in args:
        if a == "BAD":
            np.save(files / "bad.npy", np.arange(3))
            extra.append(str(files / "bad.npy"))
        elif a == "--embeddings1d":
            np.save(files / "e.npy", np.arange(5.0))
            emb = files / "e.npy"
        elif a == "--nan":
            z = x.copy()
            z[17, 2] = np.nan
            np.save(files / "n.npy", z)
            emb = files / "n.npy"
        elif a == "--zero":
            z = x.copy()
            z[3] = 0
            np.save(files / "z.npy", z)
            emb = files / "z.npy"
        elif a == "--empty":
            np.save(files / "0.npy", np.zeros((0, 4)))
            emb = files / "0.npy"
        else:
            extra.append(a)
    if "--clusters" not in extra and "--graph" not in extra:
        extra += ["--clusters", "3"]
    rc = main(["index", "--embeddings", str(emb), "--out", str(files / "o.gw"), *extra])
    assert rc == 2
    assert re.search(msg, _err(capsys)), msg
    assert not (files / "o.gw").exists()


def test_error_messages_are_specific(files, capsys, blobs):
    x, _ = blobs
    z = x.copy()
    z[17, 2] = np.nan
    np.save(files / "n.npy", z)
    assert (
        main(
            [
                "index",
                "--embeddings",
                str(files / "n.npy"),
                "--clusters",
                "3",
                "--out",
                str(files / "o.gw"),
            ]
        )
        == 2
    )
    assert "1 of 600 rows (first: row 17)" in _err(capsys)


def test_existing_output_needs_overwrite(files, capsys):
    args = [
        "index",
        "--embeddings",
        str(files / "x.npy"),
        "--clusters",
        "3",
        "--out",
        str(files / "o.gw"),
    ]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert "already exists; pass --overwrite" in _err(capsys)
    assert main([*args, "--overwrite"]) == 0


def test_model_layers_give_one_knn_graph_each(files, capsys):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 4))
    torch.save(model, files / "m.pt")
    base = [
        "index",
        "--embeddings",
        str(files / "x.npy"),
        "--model",
        str(files / "m.pt"),
        "--graph",
        "knn",
        "--k",
        "3",
    ]
    # a whole pickled model is unpickled only when trusted (state dicts: tests/train/test_model_files.py)
    assert main([*base, "--layers", "0,2", "--out", str(files / "a.gw")]) == 2
    err = _err(capsys)
    assert "pickled object (it imports torch.nn.modules.container.Sequential)" in err
    assert "pass --trust-model" in err and not (files / "a.gw").exists()
    base.append("--trust-model")
    assert main([*base, "--layers", "0,2", "--out", str(files / "a.gw"), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert [g["name"] for g in manifest["graphs"]] == ["knn@0", "knn@2"]
    assert manifest["spaces"] == {"0": 6, "2": 4}
    assert main([*base, "--layers", "fc", "--out", str(files / "b.gw")]) == 2
    assert "no layer 'fc'" in _err(capsys)
    assert not (files / "b.gw").exists()


def test_dataset_input(tmp_path, capsys):
    assert (
        main(
            [
                "index",
                "--dataset",
                "digits",
                "--clusters",
                "20",
                "--graph",
                "knn-clusters",
                "--out",
                str(tmp_path / "d.gw"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "index",
                "--dataset",
                "cifar10",
                "--data-dir",
                str(tmp_path),
                "--clusters",
                "2",
                "--out",
                str(tmp_path / "c.gw"),
            ]
        )
        == 2
    )
    assert "--download" in _err(capsys)


def test_inspect_errors(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "none.gw")]) == 2
    assert "does not exist" in _err(capsys)
    assert main(["index"]) == 2  # argparse usage error
    assert main(["--version"]) == 0


@pytest.mark.parametrize("allow", [False, True])
def test_knn_clusters_connected_unless_allow_disconnected(tmp_path, capsys, allow):
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 1000.0])
    np.save(tmp_path / "two.npy", x.astype(np.float32))
    out = tmp_path / "t.gw"
    args = ["index", "--embeddings", str(tmp_path / "two.npy"), "--clusters", "10"]
    args += ["--graph", "knn-clusters", "--k", "2", "--out", str(out)]
    assert main([*args, "--allow-disconnected"] if allow else args) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["build"]["connect"] is not allow
    assert main(["inspect", str(out), "--json"]) == 0
    g = json.loads(capsys.readouterr().out)["graphs"]["knn-clusters"]
    assert g["params"] == manifest["graphs"][0]["params"]
    assert g["params"]["connect"] is not allow
    if allow:
        assert g["components"] > 1 and g["params"]["edges_added_to_connect"] == 0
    else:
        assert g["components"] == 1 and g["params"]["edges_added_to_connect"] >= 1


def test_python_dash_m_graphwalk_runs_the_cli():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "graphwalk", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("graphwalk ")


def _index(files, *args):
    return main(["index", "--out", str(files / "o.gw"), *args])


def test_pandas_parquet_index_column_is_not_a_dimension(files, capsys, blobs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.build.test_embeddings import _pandas_parquet

    x, y = blobs
    perm = np.random.default_rng(0).permutation(len(x))  # a shuffled frame keeps its old index
    _pandas_parquet(files / "x.parquet", {f"f{i}": x[perm, i] for i in range(8)}, perm)
    _pandas_parquet(files / "y.parquet", {"label": y[perm]}, perm)
    rc = _index(
        files,
        "--embeddings",
        str(files / "x.parquet"),
        "--labels",
        str(files / "y.parquet"),
        "--groups",
        "labels",
        "--graph",
        "knn",
        "--k",
        "4",
        "--json",
    )
    assert rc == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["spaces"] == {"input": 8}
    assert "__index_level_0__" in err and "Traceback" not in err
    # labels with several columns: choose one
    pq.write_table(pa.table({"label": y, "fold": y % 3}), files / "y2.parquet")
    base = ["--embeddings", str(files / "x.npy"), "--labels", str(files / "y2.parquet")]
    base += ["--groups", "labels", "--overwrite"]
    assert _index(files, *base) == 2
    assert "--label-column" in _err(capsys)
    assert _index(files, *base, "--label-column", "fold", "--json") == 0
    m = json.loads(capsys.readouterr().out)
    assert m["levels"][0]["n_clusters"] == 3


def test_id_column_warns_and_columns_choose_the_vector(files, capsys, blobs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, _ = blobs
    cols = {"item_id": np.arange(len(x)) * 7, **{f"f{i}": x[:, i] for i in range(8)}}
    pq.write_table(pa.table(cols), files / "x.parquet")
    base = ["--embeddings", str(files / "x.parquet"), "--graph", "knn", "--k", "3", "--json"]
    assert _index(files, *base) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["spaces"] == {"input": 9}
    assert "warning: " in err and "'item_id'" in err and "--id-column" in err
    assert len(err.strip().splitlines()) == 1  # one clean line, no source line
    assert _index(files, *base, "--overwrite", "--id-column", "item_id") == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["spaces"] == {"input": 8} and "warning" not in err
    assert _index(files, *base, "--overwrite", "--columns", "f0,f1,f2") == 0
    assert json.loads(capsys.readouterr().out)["spaces"] == {"input": 3}
    assert _index(files, *base, "--overwrite", "--id-column", "f0") == 2
    assert "integer" in _err(capsys)


def test_unwritable_output_is_refused_before_any_work(files, capsys, monkeypatch):
    import os

    import graphwalk.build.builder

    def boom(*a, **k):
        raise AssertionError("k-means ran although the output cannot be written")

    monkeypatch.setattr(graphwalk.build.builder, "kmeans_level", boom)
    ro = files / "ro"
    ro.mkdir()
    targets = [files / "x.npy" / "sub" / "o.gw"]  # under a file: no directory can be made there
    if os.geteuid() != 0:  # root writes through permissions
        ro.chmod(0o555)
        targets += [ro / "o.gw", ro / "deeper" / "o.gw"]
    if os.path.isdir("/proc/self"):  # no directory can be made in /proc, even by root
        targets.append(Path("/proc/graphwalk-test/o.gw"))
    try:
        for out in targets:
            args = ["index", "--embeddings", str(files / "x.npy"), "--clusters", "3"]
            assert main([*args, "--out", str(out)]) == 2, out
            err = _err(capsys)
            assert "cannot write" in err and len(err.strip().splitlines()) == 1, err
            assert not out.exists()
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []  # the probe is gone


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--recall-sample", "0"], "--recall-sample: .*integer >= 1"),
        (["--recall-sample", "-5"], "--recall-sample: .*integer >= 1"),
        (["--seed", "-1"], "--seed: .*integer in \\[0, 4294967295\\]"),
        (["--k", "0"], "--k: must be an integer >= 1"),
        (["--k", "2.5"], "--k: .*integer"),
        (["--clusters", "0"], "--clusters: .*integer >= 1"),
        (["--degree", "0"], "--degree: .*number > 0"),
        (["--degree", "nan"], "--degree: .*finite"),
        (["--p", "1.5"], "--p: .*number in \\(0, 1\\]"),
        (["--p", "0"], "--p: .*number in \\(0, 1\\]"),
        (["--graph", "knn", "--graph-level", "nope"], "graph_level 'nope' is not one of"),
    ],
)
def test_numeric_flags_are_checked_up_front(files, capsys, monkeypatch, args, msg):
    import graphwalk.build.builder

    def boom(*a, **k):
        raise AssertionError("work started before the flags were checked")

    monkeypatch.setattr(graphwalk.build.builder, "kmeans_level", boom)
    monkeypatch.setattr(graphwalk.build.builder, "knn_items_graph", boom)
    rc = _index(files, "--embeddings", str(files / "x.npy"), "--clusters", "4", *args)
    assert rc == 2
    assert re.search(msg, _err(capsys)), msg
    assert not (files / "o.gw").exists()


def test_help_gives_the_ranges(capsys):
    assert main(["index", "--help"]) == 0
    h = " ".join(capsys.readouterr().out.split())
    for flag in ("--recall-sample N", "--seed SEED", "--k K", "--degree D", "--p P"):
        assert flag in h
    assert "integer >= 1" in h and "in (0, 1]" in h and "0 to 4294967295" in h


def test_json_stdout_stays_json_with_progress(files, capsys, monkeypatch):
    import pynndescent

    class Chatty:  # prints its log on stdout as pynndescent does with verbose=True
        def __init__(self, x, n_neighbors, **kw):
            from graphwalk.build.graphs import _exact_knn

            print("Building RP forest with 6 trees")
            ids, d = _exact_knn(x, x, n_neighbors, show=False)
            self.neighbor_graph = (ids, np.sqrt(np.maximum(d, 0)))

    monkeypatch.setattr(pynndescent, "NNDescent", Chatty)
    args = ["--embeddings", str(files / "x.npy"), "--graph", "knn", "--k", "3"]
    rc = _index(files, *args, "--knn-backend", "nndescent", "--progress", "--json")
    assert rc == 0
    out, err = capsys.readouterr()
    manifest = json.loads(out)
    assert manifest["graphs"][0]["params"]["method"] == "nndescent"
    assert "Building RP forest" in err


def test_manifest_timings_include_write_and_total(files, capsys):
    assert _index(files, "--embeddings", str(files / "x.npy"), "--clusters", "3") == 0
    assert "wrote" in capsys.readouterr().out
    t = json.loads((files / "o.gw" / "manifest.json").read_text())["build"]["timings_s"]
    assert list(t)[-2:] == ["write", "total"]
    assert t["total"] >= sum(v for key, v in t.items() if key != "total") - 1e-3
    from graphwalk.index.artifact import GraphIndex

    assert GraphIndex.load(files / "o.gw").build_params["timings_s"] == t


def test_constant_input_is_one_clean_line(files, capsys):
    np.save(files / "c.npy", np.ones((600, 8), np.float32))
    assert _index(files, "--embeddings", str(files / "c.npy"), "--clusters", "10") == 2
    err = _err(capsys)
    assert len(err.strip().splitlines()) == 1 and "identical" in err
