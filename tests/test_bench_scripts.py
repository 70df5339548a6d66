"""The benchmark scripts run end to end at small sizes and record their tables (no timing asserts)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_index_records_its_table(tmp_path):
    out = tmp_path / "index.md"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "index.py"),
            "--n",
            "4000",
            "--clusters",
            "20",
            "--record",
            str(out),
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    data = json.loads(out.with_suffix(".json").read_text())
    checks = {row[0]: row for row in data["ratios"]}
    assert "kNN build / bare pynndescent build" in checks
    assert (
        "command / sum of bare calls" in checks and "GraphIndex.load (verify checksums)" in checks
    )
    assert "| check | measured | target | met |" in out.read_text()


@pytest.mark.slow
def test_bench_sampler_records_its_table(tmp_path):
    out = tmp_path / "sampler.md"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "sampler.py"),
            "--n",
            "20000",
            "--walks",
            "2000",
            "--no-pecanpy",
            "--no-1m",
            "--record",
            str(out),
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["walk_msteps"] > 0 and data["pecanpy_msteps"] is None
    assert data["profile"]["rows"][0]["sampler"] == "RandomSampler + BatchSampler"
    # digits at batches 64 and 256: speed beside torch, homophily beside the reference walk
    runs = data["homophily"]
    assert [(r["data"], r["batch_size"]) for r in runs] == [
        ("digits, k=10", 64),
        ("digits, k=10", 256),
    ]
    for r in runs:
        assert r["rows"][0]["sampler"] == "RandomSampler + BatchSampler"
        walks = [h["sampler"] for h in r["homophily"]["rows"]]
        assert walks[-2:] == [
            "reference BFS (knn, two-hop move)",
            "reference BFS (knn, shortest-path move)",
        ]
        assert [c["reference"] for c in r["homophily"]["checks"]] == ["two-hop", "shortest-path"]
        ref = r["homophily"]["rows"][-2]
        assert ref["tenths"][0] > 0.3 > 0.15 > ref["random"]  # the kNN graph: mostly same-label
    text = out.read_text()
    assert "batch homophily per tenth of the epoch: digits, k=10" in text
    assert "digits, k=10, batch 64, knn: lift / reference lift (two-hop move)" in text
    assert "lift / reference lift (shortest-path move)" not in text.split("### targets")[1]


def _run(script, *args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *map(str, args)],
        check=True,
        cwd=cwd,
        capture_output=True,
        text=True,
    ).stdout


@pytest.mark.slow
def test_walk_hashes_are_repeatable_and_compared(tmp_path):
    index = tmp_path / "h.gw"
    first = tmp_path / "first.json"
    _run("walk_hashes.py", "--index", index, "--only", "/plain", "--out", first)
    hashes = json.loads(first.read_text())
    assert set(hashes) == {
        f"{g}/plain{r}"
        for g in ("er", "knn-clusters", "knn", "knn-noorder")
        for r in ("", "-resume")
    }
    out = _run("walk_hashes.py", "--index", index, "--only", "/plain", "--compare", first)
    assert f"identical: {len(hashes)}; different: 0" in out
    # a changed hash is reported, with exit status 1
    hashes["er/plain"] = "0" * 64
    first.write_text(json.dumps(hashes))
    with pytest.raises(subprocess.CalledProcessError) as e:
        _run("walk_hashes.py", "--index", index, "--only", "er/plain", "--compare", first)
    assert "different: 1 ['er/plain']" in e.value.stdout


@pytest.mark.slow
def test_bench_policy_path_records_its_table(tmp_path):
    out = tmp_path / "policy.md"
    _run("policy_path.py", "--epochs", 1, "--record", out)
    data = json.loads(out.with_suffix(".json").read_text())
    policies = {(r[0], r[1]) for r in data["rows"]}
    assert ("er", "exp3s") in policies and ("knn", "(planned walk)") in policies
    assert all(r[2] > 0 and r[3] >= 0 for r in data["rows"])


@pytest.mark.slow
def test_bench_frontier_checks_the_sampler_walk(tmp_path):
    out = _run("frontier.py", "--digits", "--batch", 64, "--epochs", 1, "--modes", "never,always")
    assert "| never |" in out and "| always |" in out
    assert "checked batch for batch" in out


@pytest.mark.slow
def test_bench_item_speed_and_walk_threads_run(tmp_path):
    from graphwalk import build_index
    from tests.conftest import make_blobs

    x, y = make_blobs(n=2000, dim=8, centers=5)
    build_index(x, labels=y, clusters=10, graphs=["knn"], k=5, seed=0).save(tmp_path / "i.gw")
    out = _run("item_speed.py", "--index", tmp_path / "i.gw", "--batch", 32, "--epochs", 2)
    assert "x torch" in out
    out = _run("walk_threads.py", "--n", 20000, "--walks", 2000, "--length", 10, "--repeat", 1)
    assert "walks identical across threads and blocks" in out


@pytest.mark.slow
def test_index_hashes_are_repeatable_and_compared(tmp_path):
    first = tmp_path / "first.json"
    _run("index_hashes.py", "--only", "refused/k-", "--out", first)
    hashes = json.loads(first.read_text())
    assert set(hashes) == {
        "refused/k-float",
        "refused/k-zero",
        "refused/k-too-large",
        "refused/k-and-metric",
    }
    out = _run("index_hashes.py", "--only", "refused/k-", "--compare", first)
    assert "identical: 4; different: 0" in out
    hashes["refused/k-zero"] = "0" * 64
    first.write_text(json.dumps(hashes))
    with pytest.raises(subprocess.CalledProcessError) as e:
        _run("index_hashes.py", "--only", "refused/k-", "--compare", first)
    assert "different: 1 ['refused/k-zero']" in e.value.stdout


def test_bench_episodes_records_its_tables(tmp_path):
    out = tmp_path / "out"
    _run("episodes.py", "--quick", "--out-dir", out, "--cache-dir", tmp_path / "cache")
    data = json.loads((out / "episodes.json").read_text())
    rows = {r["sampler"]: r for r in data["rows"]}
    assert list(rows) == [
        "easyfsl 1.5's algorithm (plain Python + torch)",
        "plain Python (no sort, no torch)",
        "graphwalk EpisodeSampler, uniform",
        "graphwalk EpisodeSampler, walk",
        "graphwalk EpisodeSampler, within:parent",
    ]
    for r in rows.values():
        assert r["episodes_per_s"] > 0 and r["vs_easyfsl"] > 0 and r["vs_plain_python"] > 0
        assert r["well_formed"] and r["classes_used"] > 0
        assert 0.5 < r["item_dispersion"] < 2  # items drawn uniformly: about 1
    uniform, walk = (
        rows["graphwalk EpisodeSampler, uniform"],
        rows["graphwalk EpisodeSampler, walk"],
    )
    assert walk["mean_distance"] < uniform["mean_distance"]  # walk episodes: close classes
    assert rows["graphwalk EpisodeSampler, within:parent"]["one_parent"] == 1.0
    assert len(data["targets"]) == 6 and "machine" in data
    text = (out / "episodes.md").read_text()
    assert "| sampler | episodes / s |" in text
    assert "mean graph distance between an episode's classes" in text
    assert "### target (ratios from this run)" in text


@pytest.mark.slow
def test_bench_meta_compare_records_the_evidence_and_its_summary(tmp_path):
    out = tmp_path / "out"
    _run(
        "meta_compare.py", "--quick", "--only", "digits-protonet-supervised",
        "--work", tmp_path / "work", "--out-dir", out,
    )  # fmt: skip
    data = json.loads((out / "meta-compare-quick-digits-protonet-supervised.json").read_text())
    names = [r["name"] for r in data["rows"]]
    assert names == ["digits-protonet-supervised-1shot", "digits-protonet-supervised-within-2way"]
    for r in data["rows"]:
        assert len(r["raw_prototypes"]) == len(r["untrained"]) == 2  # two seeds
        assert all(0 < v <= 1 for vs in r["finals"].values() for v in vs)
    assert (out / "meta-compare" / "digits-protonet-supervised-1shot.md").is_file()
    # the summary over the recorded overviews: both tables, Holm over each
    (out / "meta-compare-digits.json").write_text(json.dumps(data))
    _run("meta_compare.py", "--summarize", "--out-dir", out)
    text = (out / "meta-compare.md").read_text()
    assert "Holm's correction over the 2 comparisons" in text  # spec comparisons
    assert "Holm's correction over the 4 comparisons" in text  # against the baselines


@pytest.mark.slow
def test_bench_curriculum_compare_records_the_controls(tmp_path):
    out = tmp_path / "out"
    _run("curriculum_compare.py", "--quick", "--work-dir", tmp_path / "work", "--out-dir", out)
    data = json.loads((out / "curriculum-compare.json").read_text())
    pairs = {(r["sampler"], r["control"]) for r in data["rows"]}
    assert ("curriculum=linear", "curriculum=linear:order=random") in pairs
    assert ("curriculum=agent:policy=exp3s", "curriculum=agent:policy=uniform") in pairs
    for r in data["rows"]:
        assert len(r["diffs"]) == 2 and 0 <= r["p_holm"] <= 1  # two paired seeds, corrected
    assert (out / "curriculum-compare" / "digits-quick-schedule.png").is_file()
    assert "Holm-adjusted over all" in (out / "curriculum-compare.md").read_text()


@pytest.mark.slow
def test_bench_select_update_records_its_cost(tmp_path):
    _run("select_update.py", "--quick", "--out-dir", tmp_path)
    data = json.loads((tmp_path / "select-update-quick.json").read_text())
    arms = {a["arm"]: a for a in data["arms"]}
    assert set(arms) == {"shuffle", "plain", "select-2", "select-4", "select-5"}
    assert arms["plain"]["cost"] == pytest.approx(1.0)
    assert all(a["cost"] > 0 for a in arms.values())


@pytest.mark.slow
def test_bench_vectors_compare_records_the_evidence(tmp_path):
    out = tmp_path / "out"
    _run("vectors_compare.py", "--quick", "--work-dir", tmp_path / "work", "--out-dir", out)
    runs = json.loads((out / "vectors-quick-runs.json").read_text())["digits-quick"]
    assert set(runs) == {"random", "inputs", "activations", "grad", "learned"}
    for arm in ("inputs", "activations", "grad", "learned"):
        for res in runs[arm].values():
            c = res["cleaning"]  # 20% noise: the detector's figures, for every space
            assert 0.1 < c["base_rate"] < 0.3 and 0.0 <= c["auc"] <= 1.0
            assert (c["norm_auc"] is not None) == (arm == "grad")
    assert len(runs["grad"]["0"]["graphs"]) == 2  # the initial graph and one refresh
    data = json.loads((out / "vectors-quick.json").read_text())
    pairs = {(r["arm"], r["control"]) for r in data["rows"]}
    assert ("grad", "random") in pairs and ("learned", "activations") in pairs
    assert all(len(r["diffs"]) == 2 for r in data["rows"])
    text = (out / "vectors-quick.md").read_text()
    assert "Do mislabelled items stand out?" in text and "| digits-quick | grad |" in text


@pytest.mark.slow
def test_bench_vectors_overhead_records_its_table(tmp_path):
    _run("vectors_overhead.py", "--quick", "--out-dir", tmp_path)
    data = json.loads((tmp_path / "vectors-overhead-quick.json").read_text())
    arms = [(r[0], r[1]) for r in data["rows"]]
    assert arms == [(m, a) for m in ("cnn1d", "mlp") for a in ("plain", "grad", "learned")]
    assert all(r[2] > 0 for r in data["rows"])  # ms per step
    assert data["refresh_s"] and all(t > 0 for t in data["refresh_s"])


@pytest.mark.slow
def test_bench_open_scale_records_both_layouts_with_the_same_batches(tmp_path):
    out = tmp_path / "open.md"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "open_scale.py"), "--sizes", "20000,50000",
         "--batches", "20", "--hash-batches", "50", "--record", str(out)],
        check=True, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    data = json.loads(out.with_suffix(".json").read_text())
    res = data["results"]
    assert {(r["items"], r["layout"], r["graph"]) for r in res} == {
        (n, lay, g) for n in (20000, 50000) for lay in ("arrays", "parquet") for g in ("er", "knn")
    }
    for r in res:
        twin = next(
            q for q in res if (q["items"], q["graph"]) == (r["items"], r["graph"]) and q is not r
        )
        assert r["hash"] == twin["hash"] and r["bytes_per_item"] > 0
    assert "the same batches in both layouts" in out.read_text() and "yes" in out.read_text()


@pytest.mark.slow
def test_bench_build_scale_records_stages_and_the_cost_model(tmp_path):
    out = tmp_path / "build.md"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "build_scale.py"), "--sizes", "8000,16000",
         "--engines", "local", "--knn-backend", "exact", "--worker-memory", "4M",
         "--record", str(out)],
        check=True, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    data = json.loads(out.with_suffix(".json").read_text())
    assert [r["n"] for r in data["runs"]] == [8000, 16000]
    for r in data["runs"]:
        assert r["partitions"] > 2 and r["recall"] > 0.5
        assert set(r["timings"]) >= {"scan", "sample", "assign", "partition_knn", "merge", "total"}
    assert set(data["fits"]["local"]) >= {"partition_knn", "merge"}
    text = out.read_text()
    assert "cost model" in text and "5.55B x 768" in text
    assert "needs 3 other sizes" in text  # the cluster terms are not fitted on two points
    # a third size merged with the recorded two: the model with the k-means term, held out
    out3 = tmp_path / "build3.md"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "build_scale.py"), "--sizes", "24000",
         "--engines", "local", "--knn-backend", "exact", "--worker-memory", "4M",
         "--merge", str(out.with_suffix(".json")), "--record", str(out3)],
        check=True, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    data3 = json.loads(out3.with_suffix(".json").read_text())
    assert sorted(r["n"] for r in data3["runs"]) == [8000, 16000, 24000]
    assert all(r["commit"] and r["recorded"] for r in data3["runs"])
    assert data3["fits"]["local"]["sample"]["terms"] == ["1", "n", "rows x clusters"]
    assert all(r["settings"]["worker_memory"] == "4M" for r in data3["runs"])
    assert "k-means level" in out3.read_text()
    bad = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "build_scale.py"), "--render"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "--render needs --merge" in bad.stderr


def _build_scale():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_scale", ROOT / "bench" / "build_scale.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _scale_run(n, engine, timings, **settings):
    base = {"dim": 64, "worker_memory": "256M", "refine": "1", "cpus": 2, "knn_backend": "auto"}
    return {"n": n, "engine": engine, "timings": timings, "workers": 2,
            "settings": {**base, **settings}}  # fmt: skip


def test_build_scale_models_recover_known_costs_and_merge_records_in_order(tmp_path):
    bs = _build_scale()
    ns = [300_000, 1_000_000, 3_000_000, 10_000_000]
    # every stage: 2 + 1e-5 n; sample adds 3e-9 x rows x clusters, assign 4e-12 x n x clusters
    runs = []
    for n in ns:
        t = {s: 2 + 1e-5 * n for s in bs.STAGES}
        t["sample"] += 3e-9 * bs.term("rows x clusters", n)
        t["assign"] += 4e-12 * bs.term("n x clusters", n)
        runs.append(_scale_run(n, "ray", t))
    m = bs.model(runs, "ray", exclude=ns[-1])  # three sizes, three terms: exact
    for s in bs.STAGES:
        assert bs.stage_cost(m, s, ns[-1]) == pytest.approx(runs[-1]["timings"][s], rel=1e-6)
    lin = bs.model(runs, "ray", exclude=ns[-1], kind="linear")
    assert bs.stage_cost(lin, "sample", ns[-1]) < 0.8 * runs[-1]["timings"]["sample"]  # misses n^2
    # the distributed stages divide by the workers; the driver's k-means and stages do not
    one = {s: {"terms": ["1"], "coef": [10.0]} for s in bs.STAGES}
    assert bs.predict(one, 1e6, 2, 2) == pytest.approx(70.0)
    assert bs.predict(one, 1e6, 20, 2) == pytest.approx(40.0 + 3 * 1.0)  # 3 of 7 divide by 10
    # records: a run made now wins over the files, a later file over an earlier one
    for name, sec in (("a", 1.0), ("b", 2.0)):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "command": "python bench/build_scale.py", "machine": {"date_utc": name},
            "runs": [_scale_run(1000, "local", {"total": sec}), _scale_run(2000, "local", {"total": sec})],
        }))  # fmt: skip
    made = [_scale_run(2000, "local", {"total": 9.0})]
    merged = bs.merge_runs(made, [str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    got = {r["n"]: r["timings"]["total"] for r in merged}
    assert got == {1000: 2.0, 2000: 9.0} and len(merged) == 2
    # older records without settings take them from their command; other settings are refused
    (tmp_path / "c.json").write_text(json.dumps({
        "command": "python bench/build_scale.py --refine auto", "machine": {"date_utc": "c"},
        "runs": [{k: v for k, v in _scale_run(3000, "local", {"total": 1.0}).items()
                  if k != "settings"}],
    }))  # fmt: skip
    with pytest.raises(SystemExit, match=r"has refine='auto', the run .* '1': merge records"):
        bs.merge_runs(made, [str(tmp_path / "c.json")])
