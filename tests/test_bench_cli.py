import json

import numpy as np

from graphwalk.cli import main
from graphwalk.profiling import synthetic_index, walk_steps_per_second


def test_synthetic_index_shape():
    idx = synthetic_index(5000, degree=7)
    assert idx.n_items == 5000 and set(idx.graphs) == {"er", "knn"}
    assert (idx.graphs["knn"].degrees == 7).all()
    assert (idx.levels["kmeans"].sizes > 0).all() and idx.levels["kmeans"].n_clusters == 5


def test_walk_steps_per_second_is_positive():
    assert walk_steps_per_second(synthetic_index(2000).graphs["knn"], n_walks=500, length=10) > 0


def test_bench_json_reports_every_sampler_beside_torch(capsys):
    rc = main(["bench", "--synthetic", "20000", "--epochs", "1", "--no-compile", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    names = [r["sampler"] for r in res["rows"]]
    assert names[0] == "RandomSampler + BatchSampler" and len(names) == 3
    for r in res["rows"]:
        assert r["us_per_batch"] > 0 and r["batches"] == int(np.ceil(20000 / 256))
        assert r["dataloader_us_per_batch"] > 0
    assert res["rows"][1]["first_batch_s"] >= 0 and res["walk_msteps_per_s_1_thread"] > 0


def test_bench_table_on_an_index(tmp_path, capsys, blobs):
    import graphwalk as gw

    x, y = blobs
    gw.build_index(x, labels=y, clusters=8, graphs=["er"], out=tmp_path / "i.gw")
    assert (
        main(
            [
                "bench",
                str(tmp_path / "i.gw"),
                "--batch-size",
                "32",
                "--epochs",
                "1",
                "--no-compile",
                "--no-dataloader",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "GraphWalkBatchSampler (er, cluster)" in out and "M steps/s" in out


def test_bench_bad_input(tmp_path, capsys):
    assert main(["bench", str(tmp_path / "none.gw")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["bench", "--synthetic", "1000", "--batch-size", "0"]) == 2
    assert "batch_size=0" in capsys.readouterr().err
    assert main(["bench", "--synthetic", "1000", "--graph", "nope"]) == 2
    assert "no graph 'nope'" in capsys.readouterr().err
