import json

import numpy as np
import pytest

from graphwalk.cli import main
from graphwalk.walk.profiling import (
    compare_lifts,
    homophily_by_tenth,
    synthetic_index,
    walk_steps_per_second,
)


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


def test_homophily_by_tenth_on_hand_made_batches():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    # tenths by the middle of each batch: 1.5 -> 1, 5 -> 5, 7.5 -> 7 (a single item: skipped), 9
    h = homophily_by_tenth([[0, 1, 2], [3, 4, 5, 6], [7], [8, 9]], y)
    assert h["tenths"] == [None, 1.0, None, None, None, 1 / 3, None, None, None, 0.0]
    assert h["batches"] == [0, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert h["random"] == pytest.approx((3 * 2 + 2 * 1 + 4 * 3) / (10 * 9))
    assert h["lift"][1] == pytest.approx(1 - 2 / 9) and h["lift"][0] is None
    assert h["overall"] == pytest.approx(4 / 9) and h["overall_lift"] == pytest.approx(2 / 9)
    assert h["n_items"] == 10 and h["n_batches"] == 4
    # the random level counts the walked items only (here labels 0 and 2, 3 items each)
    h = homophily_by_tenth([np.array([0, 1, 5]), np.array([2, 6, 7])], y)
    assert h["random"] == pytest.approx(12 / 30)
    assert h["tenths"][2] == pytest.approx(1 / 3) and h["tenths"][7] == pytest.approx(1 / 3)


def test_compare_lifts():
    def res(lifts):
        return {"lift": lifts}

    ref = res([0.5, 0.5, None, 0.4, 0.0, 0.2, 0.2, 0.2, 0.2, 0.1])
    ours = res([0.45, 0.6, None, 0.36, -0.1, 0.19, 0.18, 0.2, 0.19, 0.0])
    c = compare_lifts(ours, ref)
    assert c["ratio"][:4] == [pytest.approx(0.9), pytest.approx(1.2), None, pytest.approx(0.9)]
    assert c["ratio"][4] is None and c["met"][4] is True  # no lift to keep
    assert c["met"][2] is None and c["met"][9] is False  # the last tenth is not checked
    assert c["all_met"]
    ours["lift"][6] = 0.17
    assert not compare_lifts(ours, ref)["all_met"]
    assert compare_lifts(ours, ref, target=0.8)["all_met"]


def test_bench_reports_homophily_beside_the_reference(tmp_path, capsys, blobs):
    import graphwalk as gw

    x, y = blobs
    gw.build_index(x, labels=y, clusters=8, graphs=["er", "knn"], k=5, out=tmp_path / "i.gw")
    args = ["bench", str(tmp_path / "i.gw"), "--batch-size", "32", "--epochs", "1"]
    args += ["--no-compile", "--no-dataloader"]
    assert main([*args, "--json"]) == 0
    hom = json.loads(capsys.readouterr().out)["homophily"]
    assert hom["labels"] == "label"
    names = [r["sampler"] for r in hom["rows"]]
    assert names == [
        "GraphWalkBatchSampler (er, cluster)",
        "GraphWalkBatchSampler (knn, item)",
        "reference BFS (knn, two-hop move)",
        "reference BFS (knn, shortest-path move)",
    ]
    for r in hom["rows"]:
        assert r["n_items"] == 600 and r["n_batches"] == 19
        assert sum(r["batches"]) == 19 * hom["epochs"]  # small indexes pool epochs
        assert 0 < r["random"] < 0.3 and all(h is None or 0 <= h <= 1 for h in r["tenths"])
    for r in hom["rows"][2:]:
        assert r["tenths"][0] > 0.9  # the blobs' kNN graph is nearly all same-label
    assert [(c["graph"], c["reference"]) for c in hom["checks"]] == [
        ("knn", "two-hop"),
        ("knn", "shortest-path"),
    ]
    assert [c["is_target"] for c in hom["checks"]] == [True, False]
    assert all(len(c["ratio"]) == 10 for c in hom["checks"])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "batch homophily per tenth of the epoch" in out
    assert "| reference BFS (knn, two-hop move) |" in out
    assert "lift / reference lift (knn, shortest-path move)" in out
    assert "ablation (no target)" in out
    assert main([*args, "--no-homophily", "--json"]) == 0
    assert "homophily" not in json.loads(capsys.readouterr().out)


def test_compare_lifts_gives_standard_errors_and_a_noise_verdict():
    from graphwalk.walk.homophily import compare_lifts, homophily_by_tenth

    y = np.repeat(np.arange(2), 1000)
    rng = np.random.default_rng(0)
    # ours: batches of 4 mixing labels at random; reference: pure batches. Far apart: NO
    pure = [list(range(i, i + 4)) for i in range(0, 2000, 4)]
    mixed = [rng.choice(2000, 4, replace=False).tolist() for _ in range(500)]
    far = compare_lifts(homophily_by_tenth(mixed, y), homophily_by_tenth(pure, y))
    assert far["verdict"] == "NO" and not far["noise"]
    assert all(se is None or se >= 0 for se in far["ratio_se"])
    # the same walk twice with other seeds: whatever the ratios, never a confident failure
    half = [list(range(i, i + 2)) + list(range(1000 + i, 1002 + i)) for i in range(0, 1000, 2)]
    a = [rng.permutation(b).tolist() for b in half]  # the same kind of walk, twice
    b = [[i + 1, i + 2, 1000 + i, 1001 + i] for i in range(0, 998, 2)] + [a[-1]]
    same = compare_lifts(homophily_by_tenth(a, y), homophily_by_tenth(b, y))
    assert same["verdict"] in ("yes", "within noise")
