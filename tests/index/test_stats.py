import json

import numpy as np
import pytest

import graphwalk as gw
from graphwalk.build.graphs import csr_from_edges
from graphwalk.index.stats import index_stats, plot_index
from graphwalk.index.types import Graph, Level


def _literal_index():
    # 6 items, labels 0,0,1,1,1,0; two clusters {0,1,2} and {3,4,5}; one edge between them.
    y = np.array([0, 0, 1, 1, 1, 0])
    assign = np.array([0, 0, 0, 1, 1, 1], np.int32)
    lv = Level(
        "c", assign, np.array([[0.0, 0], [1, 1]], np.float32), np.arange(2), "kmeans", "input"
    )
    indptr, indices, w = csr_from_edges(2, [0, 1], [1, 0])
    g = Graph("er", "cluster", indptr, indices, w, level="c")
    ip, ix, iw = csr_from_edges(6, [0, 1, 2, 3, 4, 5], [1, 0, 3, 4, 3, 0])
    kg = Graph("knn", "item", ip, ix, iw, space="input", directed=True)
    return gw.GraphIndex(6, labels={"label": y}, levels={"c": lv}, graphs={"er": g, "knn": kg})


def test_homophily_by_hand():
    s = index_stats(_literal_index())
    # random pairs: 3*2 + 3*2 same-label ordered pairs of 30 → 0.4
    h = s["levels"]["c"]["homophily"]["label"]
    assert h["random"] == pytest.approx(0.4)
    # each cluster has labels (2,1): 2 same ordered pairs of 6 → 1/3
    assert h["community"] == pytest.approx(1 / 3, abs=1e-5)
    # the ER community of each root is all 6 items: 12/30
    assert s["graphs"]["er"]["homophily"]["label"]["community"] == pytest.approx(0.4)
    # item communities: {0,1} same; {1,0} same; {2,3} same; {3,4} same; {4,3} same; {5,0} same
    assert s["graphs"]["knn"]["homophily"]["label"]["community"] == pytest.approx(1.0)


def test_components_and_isolated_nodes():
    idx = _literal_index()
    ip, ix, iw = csr_from_edges(6, [0, 1], [1, 2])
    idx.graphs["sparse"] = Graph("sparse", "item", ip, ix, iw, space="input", directed=True)
    g = index_stats(idx)["graphs"]["sparse"]
    assert g["components"] == 4 and g["isolated_nodes"] == 3 and g["largest_component"] == 3


def test_plot_writes_a_png(tmp_path, blobs):
    x, y = blobs
    idx = gw.build_index(x, labels=y, clusters=8, graphs=["er", "knn"], k=3)
    out = plot_index(idx, tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]


# ---------------------------------------------------------------------------------------------
# graphwalk inspect: one-line errors, exit status 2 (issue 7)


@pytest.fixture
def saved(blobs, tmp_path):
    x, y = blobs
    gw.build_index(x, labels=y, clusters=8, graphs=["er", "knn"], k=4, out=tmp_path / "a.gw")
    return tmp_path / "a.gw"


def _inspect(capsys, *argv):
    from graphwalk.cli import main

    rc = main(["inspect", *map(str, argv)])
    return rc, capsys.readouterr()


def test_inspect_plot_given_a_directory_is_one_line_error(saved, tmp_path, capsys):
    rc, out = _inspect(capsys, saved, "--plot", tmp_path)
    assert rc == 2 and out.err.count("\n") == 1
    assert "--plot" in out.err and "is a directory" in out.err and "Traceback" not in out.err
    rc, out = _inspect(capsys, saved, "--plot", tmp_path / "a.gw" / "manifest.json" / "p.png")
    assert rc == 2 and "does not exist" in out.err


@pytest.mark.parametrize(
    "key,value,field",
    [("n_nodes", 7, r"graphs\[0\]\.n_nodes"), ("kind", "items", r"graphs\[0\]\.kind")],
)
def test_inspect_on_a_changed_manifest_is_one_line_error(saved, capsys, key, value, field):
    import json
    import re

    m = json.loads((saved / "manifest.json").read_text())
    m["graphs"][0][key] = value
    (saved / "manifest.json").write_text(json.dumps(m))
    rc, out = _inspect(capsys, saved)
    assert rc == 2 and out.err.count("\n") == 1 and out.out == ""
    assert re.search(rf"manifest\.json: {field}: .*rebuild the index", out.err), out.err


@pytest.mark.parametrize("recall", ["x", None, [1], True])
def test_inspect_prints_build_parameters_of_any_type(saved, capsys, recall):
    # params are stored as given; inspect formatted recall with :.3f and read params['method']
    import json

    m = json.loads((saved / "manifest.json").read_text())
    m["graphs"][1]["params"]["recall"] = recall
    del m["graphs"][1]["params"]["method"]
    (saved / "manifest.json").write_text(json.dumps(m))
    rc, out = _inspect(capsys, saved)
    assert rc == 0 and "graph knn" in out.out and "recall" not in out.out


def test_inspect_says_how_many_clusters_a_batch_spans(tmp_path, capsys):
    # issue 7: clusters smaller than the batch dilute every batch with neighbours' items
    import graphwalk as gw
    from graphwalk.cli import main
    from tests.conftest import make_blobs

    x, y = make_blobs(n=700, dim=6, centers=7)
    gw.build_index(x, labels=y, clusters=50, graphs=["er"], seed=1, out=tmp_path / "i.gw")
    assert main(["inspect", str(tmp_path / "i.gw"), "--batch-size", "256"]) == 0
    out = capsys.readouterr().out
    assert "a batch of 256 spans about 18.3 clusters" in out and "random clusters fill it" in out
    assert main(["inspect", str(tmp_path / "i.gw"), "--batch-size", "16", "--json"]) == 0
    span = json.loads(capsys.readouterr().out)["graphs"]["er"]["batch_span"]
    assert (
        span["batch_size"] == 16 and not span["diluted"] and abs(span["clusters"] - 16 / 14) < 1e-9
    )
    assert main(["inspect", str(tmp_path / "i.gw"), "--batch-size", "0"]) == 2
