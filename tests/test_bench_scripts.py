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
