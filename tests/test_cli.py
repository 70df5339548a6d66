import json
import re

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
