"""bench/learn_overhead.py runs end to end at a tiny size and records its two tables (no timing
asserts)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_learn_overhead_records_its_tables(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "learn_overhead.py"),
            "--quick",
            "--out-dir",
            str(tmp_path),
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    md = tmp_path / "learn-overhead.md"
    text = md.read_text()
    for title in (
        "### the learned walker's feedback against the same loop without it: mnist1d",
        "torch threads: 1, denormals flushed",
        "### where the time goes: µs per call (median)",
    ):
        assert title in text and title in out.stdout
    data = json.loads(md.with_suffix(".json").read_text())
    assert data["target"] == 0.05 and data["args"]["quick"]
    assert [res["model"] for res in data["results"]] == ["cnn1d", "mlp"]
    for res in data["results"]:
        rows = {r["arm"]: r for r in res["rows"]}
        assert list(rows) == ["A", "B", "C", "D", "E", "F"]
        assert [rows[k]["reward"] for k in "ABCDEF"] == [
            None,
            "grad-norm",
            "loss-drop",
            "gar",
            None,
            "grad-norm",
        ]
        for r in rows.values():
            assert r["step_us_median"] > 0 and r["median_step_us"] > 0
            assert r["cpu_step_us_median"] > 0 and r["next_us"]["median"] > 0
            assert r["homophily_us"]["median"] > 0
            assert len(r["step_us_rounds"]) == data["args"]["rounds"]
        a = rows["A"]
        assert a["overhead"]["median"] == 0 and a["overhead_median_steps"]["median"] == 0
        assert a["rewards_learned"] == 0 and a["reward_us"]["per_step"] == 0  # never learns
        assert a["select_us"]["median"] > 0 and rows["E"]["select_us"]["per_step"] == 0
        for k in "BCDF":  # the policy learns, and every part of the feedback was timed
            r = rows[k]
            assert r["rewards_learned"] > 0
            assert r["reward_us"]["median"] > 0 and r["report_us"]["median"] > 0
            assert r["learn_us"]["median"] > 0 and r["feedback_us_median"] > 0
            assert r["feedback_share_median"] > 0
        assert rows["B"]["verdict"] in ("yes", "within noise", "NO")
        assert rows["B"]["verdict_median_steps"] in ("yes", "within noise", "NO")
        assert f"{rows['B']['verdict']}; {rows['B']['verdict_median_steps']}" in text
    assert "B (grad-norm + report + exp3s learning) costs" in text
