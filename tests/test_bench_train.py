"""bench/train.py runs end to end at a tiny size and records its three tables (no timing asserts)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_train_records_its_tables(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "train.py"), "--quick", "--out-dir", str(tmp_path)],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    md = tmp_path / "train-speed.md"
    text = md.read_text()
    for title in (
        "### training steps / s by sampler: mnist1d",
        "torch threads: 1",
        "### activation refresh vs one training epoch",
        "### end to end through graphwalk.train.loop.train",
    ):
        assert title in text and title in out.stdout
    data = json.loads(md.with_suffix(".json").read_text())

    # steps/s per sampler, beside torch's RandomSampler + BatchSampler, denormals kept and flushed
    assert [(r["model"], r["flush_denormal"]) for r in data["speed"]] == [
        ("mlp", False),
        ("cnn1d", False),
        ("mlp", True),
        ("cnn1d", True),
    ]
    for res in data["speed"]:
        rows = res["rows"]
        assert [r["sampler"] for r in rows] == [
            "torch RandomSampler + BatchSampler",
            "random (ShuffleBatchSampler)",
            "er (walk)",
            "knn (walk)",
        ]
        assert rows[0]["ratio"] == pytest.approx(1.0) and rows[0]["verdict"] == "reference"
        for r in rows:
            assert r["steps_per_s_median"] > 0 and r["sampler_us_per_step"] > 0
            assert r["ratio"] > 0 and r["verdict"] in ("reference", "yes", "within noise", "NO")
            assert 0 <= r["denormal_share"] <= 1
            assert f"{r['ratio']:.3f}x" in text

    # an activation refresh against an epoch of the same model
    assert [(r["model"], r["layer"]) for r in data["refresh"]] == [
        ("mlp", "body.act2"),
        ("cnn1d", "body.act3"),
    ]
    for r in data["refresh"]:
        assert r["activations_s"] > 0 and r["build_s"] > 0 and r["epoch_s"] > 0
        assert r["seconds"] == pytest.approx(r["activations_s"] + r["build_s"])
        assert r["ratio"] == pytest.approx(r["seconds"] / r["epoch_s"])
        assert f"{r['ratio']:.2f}x" in text

    # train() end to end, random and er
    e2e = data["end_to_end"]
    assert {r["sampler"] for r in e2e} == {"random", "er"}
    assert any(not r["tensorboard"] for r in e2e)
    for r in e2e:
        assert r["steps"] > 0 and r["summary_steps_per_s"] > 0 and r["loop_steps_per_s"] > 0
    assert "er / random = " in text
