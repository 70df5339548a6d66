"""Tests of graphwalk.train.report on synthetic run directories with known metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphwalk.errors import InputError
from graphwalk.train.report import (
    DEFAULT_TARGET_FACTOR,
    plot_accuracy,
    plot_homophily,
    read_run,
    recompute_verdicts,
    render_markdown,
    summarize,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(
    root: Path,
    name: str,
    *,
    seed: Any,
    accs: list[float],
    eval_steps: list[int] | None = None,
    sampler: str = "random",
    steps_per_epoch: int = 10,
    homophily: float = 0.2,
    sampler_us: float = 5.0,
    wall_s: float | None = 10.0,
    summary: bool = True,
    extra_config: dict[str, Any] | None = None,
) -> Path:
    """A run dir: evals at ``eval_steps`` (default 0, 10, 20, ...) with test accuracies ``accs``.

    Step events run 1..last eval step; homophily at step s is ``homophily + s / 1000`` and
    sampler_us at step s is ``sampler_us + s % 3``; the last eval's wall_s is ``wall_s``.
    """
    d = root / name
    d.mkdir(parents=True)
    if eval_steps is None:
        eval_steps = [steps_per_epoch * i for i in range(len(accs))]
    cfg = {
        "sampler": sampler,
        "seed": seed,
        "model": "mlp",
        "loss": "ce",
        "dataset": "mnist1d",
        "epochs": len(accs) - 1,
        "batch_size": 32,
        "label_noise": 0.0,
        **(extra_config or {}),
    }
    (d / "config.json").write_text(json.dumps(cfg))
    lines = []
    n_steps = eval_steps[-1]
    evals = dict(zip(eval_steps, accs, strict=True))
    if 0 in evals:
        lines.append({"event": "eval", "epoch": 0, "step": 0, "test_acc": evals[0], "wall_s": 0})
    for s in range(1, n_steps + 1):
        ep = (s - 1) // steps_per_epoch + 1
        lines.append(
            {
                "event": "step",
                "epoch": ep,
                "step": s,
                "loss": 1.0 / s,
                "lr": 0.01,
                "sampler_us": sampler_us + s % 3,
                "homophily": homophily + s / 1000,
            }
        )
        if s in evals:
            ws = wall_s if s == n_steps and wall_s is not None else s / 10
            lines.append(
                {
                    "event": "eval",
                    "epoch": ep,
                    "step": s,
                    "test_acc": evals[s],
                    "test_loss": None,
                    "train_loss": 0.5,
                    "wall_s": ws,
                }
            )
        if s % steps_per_epoch == 0:
            lines.append(
                {
                    "event": "refresh",
                    "epoch": ep,
                    "step": s,
                    "seconds": 0.1,
                    "graphs": {"knn": {"homophily": 0.5, "lift": 2.0}},
                    "epoch_seconds": 1.0,
                }
            )
    (d / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    if summary:
        (d / "summary.json").write_text(
            json.dumps(
                {
                    "final_test_acc": accs[-1],
                    "best_test_acc": max(accs),
                    "steps": n_steps,
                    "wall_s": wall_s,
                }
            )
        )
    return d


def make_group(root: Path, label: str, finals: dict[int, float], **kw: Any) -> list[Path]:
    """One run per seed; accuracy climbs linearly from 0.1 to the final value over 4 evals."""
    runs = []
    for seed, final in finals.items():
        accs = list(np.linspace(0.1, final, 4))
        runs.append(make_run(root, f"{label}-s{seed}", seed=seed, accs=accs, sampler=label, **kw))
    return runs


# --------------------------------------------------------------------------- read_run


def test_read_run_arrays(tmp_path: Path) -> None:
    d = make_run(tmp_path, "r", seed=3, accs=[0.1, 0.5, 0.7])
    run = read_run(d)
    assert run["config"]["seed"] == 3
    np.testing.assert_array_equal(run["steps"]["step"], np.arange(1, 21))
    assert run["steps"]["step"].dtype == np.int64
    np.testing.assert_allclose(run["steps"]["homophily"], 0.2 + np.arange(1, 21) / 1000)
    np.testing.assert_array_equal(run["evals"]["step"], [0, 10, 20])
    np.testing.assert_allclose(run["evals"]["test_acc"], [0.1, 0.5, 0.7])
    assert np.isnan(run["evals"]["test_loss"]).all()  # null -> NaN
    assert len(run["refreshes"]) == 2 and run["refreshes"][0]["graphs"]["knn"]["lift"] == 2.0
    assert run["summary"]["final_test_acc"] == 0.7
    assert run["truncated"] is False


def test_read_run_without_summary(tmp_path: Path) -> None:
    run = read_run(make_run(tmp_path, "r", seed=0, accs=[0.1, 0.2], summary=False))
    assert run["summary"] is None


def test_read_run_missing_dir_and_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"config\.json is missing"):
        read_run(tmp_path / "empty")


def test_corrupt_middle_line_names_line(tmp_path: Path) -> None:
    d = make_run(tmp_path, "r", seed=0, accs=[0.1, 0.2])
    m = d / "metrics.jsonl"
    lines = m.read_text().splitlines(keepends=True)
    lines[2] = '{"event": "step", "ep\n'
    m.write_text("".join(lines))
    with pytest.raises(InputError, match=r"metrics\.jsonl, line 3: not valid JSON"):
        read_run(d)


def test_truncated_final_line_is_ignored(tmp_path: Path) -> None:
    d = make_run(tmp_path, "r", seed=0, accs=[0.1, 0.2])
    m = d / "metrics.jsonl"
    n_steps = read_run(d)["steps"]["step"].size
    with m.open("a") as f:
        f.write('{"event": "step", "epoch": 2, "step": 11, "lo')
    run = read_run(d)
    assert run["truncated"] is True
    assert run["steps"]["step"].size == n_steps
    # the same bytes followed by a newline are a damaged line, not an interrupted write
    with m.open("a") as f:
        f.write("\n")
    with pytest.raises(InputError, match="line"):
        read_run(d)


def test_complete_final_line_without_newline_is_kept(tmp_path: Path) -> None:
    d = make_run(tmp_path, "r", seed=0, accs=[0.1, 0.2])
    m = d / "metrics.jsonl"
    with m.open("a") as f:
        f.write(json.dumps({"event": "eval", "epoch": 2, "step": 11, "test_acc": 0.3}))
    run = read_run(d)
    assert run["truncated"] is False
    assert run["evals"]["test_acc"][-1] == pytest.approx(0.3)


# --------------------------------------------------------------------------- summarize


def test_group_statistics_match_numpy(tmp_path: Path) -> None:
    finals = {0: 0.80, 1: 0.83, 2: 0.78}
    a = make_group(tmp_path, "A", finals, wall_s=None)
    walls = [12.0, 15.0, 9.0]
    for run, w in zip(a, walls, strict=True):
        s = json.loads((run / "summary.json").read_text())
        s["wall_s"] = w
        (run / "summary.json").write_text(json.dumps(s))
    out = summarize({"A": a}, target_acc=0.5)
    g = out["groups"]["A"]
    f = np.array(list(finals.values()))
    assert g["n"] == 3 and g["seeds"] == [0, 1, 2]
    assert g["final_acc"]["mean"] == pytest.approx(f.mean())
    assert g["final_acc"]["std"] == pytest.approx(f.std(ddof=1))
    assert g["final_acc"]["values"] == pytest.approx(list(f))
    assert g["best_acc"]["mean"] == pytest.approx(f.mean())  # monotone curves
    assert g["wall_s"]["mean"] == pytest.approx(np.mean(walls))
    steps = np.arange(1, 31)
    assert g["sampler_us"]["mean"] == pytest.approx(np.mean(5.0 + steps % 3))
    assert g["homophily"]["mean"] == pytest.approx(np.mean(0.2 + steps / 1000))
    assert g["steps_per_s"]["mean"] == pytest.approx(np.mean([30 / w for w in walls]))
    assert out["target"] == {"acc": 0.5, "source": "given"}
    json.dumps(out, allow_nan=False)  # plain JSON


def test_single_seed_std_is_zero_and_no_verdict(tmp_path: Path) -> None:
    out = summarize(
        {"A": make_group(tmp_path, "A", {0: 0.8}), "B": make_group(tmp_path, "B", {0: 0.9})}
    )
    assert out["groups"]["A"]["final_acc"]["std"] == 0.0
    assert out["comparisons"]["B"]["final_acc_diff"]["values"] == pytest.approx([0.1])
    assert out["comparisons"]["B"]["verdict"] == "n<2"
    c = out["comparisons"]["B"]
    assert c["ci95"] is None and c["p"] is None and c["p_holm"] is None
    assert out["family"]["comparisons"] == 0
    assert "| +10.00 | +10.00 | – | – | n<2 |" in render_markdown(out)


def test_default_target(tmp_path: Path) -> None:
    finals = {0: 0.80, 1: 0.90}
    out = summarize({"A": make_group(tmp_path, "A", finals)})
    assert out["target"]["acc"] == pytest.approx(DEFAULT_TARGET_FACTOR * 0.85)
    assert "0.95" in out["target"]["source"] and "'A'" in out["target"]["source"]


def test_steps_to_target_first_crossing_and_unreached(tmp_path: Path) -> None:
    # seed 0 crosses 0.6 at step 10, dips below, crosses again at 30: first crossing counts
    r0 = make_run(tmp_path, "s0", seed=0, accs=[0.1, 0.65, 0.5, 0.7])
    r1 = make_run(tmp_path, "s1", seed=1, accs=[0.1, 0.3, 0.6, 0.9])  # == target at step 20
    r2 = make_run(tmp_path, "s2", seed=2, accs=[0.1, 0.2, 0.3, 0.59])  # never
    stt = summarize({"A": [r0, r1, r2]}, target_acc=0.6)["groups"]["A"]["steps_to_target"]
    assert stt["values"] == [10.0, 20.0, None]
    assert stt["reached"] == "2/3" and stt["n"] == 2
    assert stt["mean"] == pytest.approx(15.0)
    assert stt["std"] == pytest.approx(np.std([10, 20], ddof=1))


def test_paired_differences_and_verdicts(tmp_path: Path) -> None:
    base = {0: 0.80, 1: 0.70, 2: 0.75}
    groups = {
        "base": make_group(tmp_path, "base", base),
        "better": make_group(tmp_path, "better", {0: 0.82, 1: 0.73, 2: 0.775}),
        "worse": make_group(tmp_path, "worse", {0: 0.78, 1: 0.67, 2: 0.725}),
        "noisy": make_group(tmp_path, "noisy", {0: 0.85, 1: 0.66, 2: 0.76}),
    }
    groups["better"] = groups["better"][::-1]  # pairing is by seed, not by position
    out = summarize(groups, target_acc=0.7)
    exp = {
        "better": [0.02, 0.03, 0.025],
        "worse": [-0.02, -0.03, -0.025],
        "noisy": [0.05, -0.04, 0.01],
    }
    for label, d in exp.items():
        c = out["comparisons"][label]
        assert c["baseline"] == "base" and c["seeds"] == [0, 1, 2]
        assert c["final_acc_diff"]["values"] == pytest.approx(d)
        assert c["final_acc_diff"]["mean"] == pytest.approx(np.mean(d))
        assert c["final_acc_diff"]["std"] == pytest.approx(np.std(d, ddof=1))
        assert c["best_acc_diff"]["values"] == pytest.approx(d)
    assert out["comparisons"]["better"]["verdict"] == "beats"
    assert out["comparisons"]["worse"]["verdict"] == "loses"
    assert out["comparisons"]["noisy"]["verdict"] == "n.s."
    # one family of 3: better and worse share the smallest p (0.0131), so Holm gives 3x it
    assert out["family"] == {
        "comparisons": 3,
        "correction": "holm",
        "alpha": 0.05,
        "test": "paired t",
    }
    p = out["comparisons"]["better"]["p"]
    assert p == pytest.approx(0.013072, abs=1e-6)
    assert out["comparisons"]["better"]["p_holm"] == pytest.approx(3 * p)
    assert out["comparisons"]["worse"]["p_holm"] == pytest.approx(3 * p)  # monotone: not 2x
    noisy = out["comparisons"]["noisy"]
    assert noisy["p_holm"] == pytest.approx(noisy["p"])  # the largest p is multiplied by 1
    assert "base" not in out["comparisons"]
    # steps to 0.7: base reaches at step 30 for all seeds; better too -> ratio 1
    assert out["comparisons"]["better"]["steps_to_target_ratio"]["values"] == [1.0, 1.0, 1.0]


def test_unpaired_seeds_are_reported(tmp_path: Path) -> None:
    groups = {
        "A": make_group(tmp_path, "A", {0: 0.8, 1: 0.8, 2: 0.8}),
        "B": make_group(tmp_path, "B", {0: 0.9, 1: 0.9, 3: 0.9}),
    }
    out = summarize(groups)
    assert out["seeds"] == [0, 1]
    assert out["unpaired"] == {"A": [2], "B": [3]}
    assert out["groups"]["B"]["n"] == 3
    assert out["comparisons"]["B"]["seeds"] == [0, 1]
    assert out["comparisons"]["B"]["final_acc_diff"]["values"] == pytest.approx([0.1, 0.1])
    md = render_markdown(out)
    assert "A: 2; B: 3" in md


def test_duplicate_seed_and_bad_target(tmp_path: Path) -> None:
    a = make_group(tmp_path, "A", {0: 0.8})
    b = make_run(tmp_path, "dup", seed=0, accs=[0.1, 0.5])
    with pytest.raises(InputError, match="both have seed 0"):
        summarize({"A": [*a, b]})
    with pytest.raises(InputError, match="did you mean 0.95"):
        summarize({"A": a}, target_acc=95)
    with pytest.raises(InputError, match="no runs"):
        summarize({"A": []})


def test_config_differences_are_noted(tmp_path: Path) -> None:
    groups = {
        "A": make_group(tmp_path, "A", {0: 0.8}),
        "B": make_group(tmp_path, "B", {0: 0.8}, extra_config={"epochs": 7}),
    }
    out = summarize(groups)
    assert list(out["config_differences"]) == ["epochs"]
    assert "`epochs`" in render_markdown(out)


def test_old_rule_beats_is_not_a_verdict_any_more(tmp_path: Path) -> None:
    # the README's former 'beats' (supcon, er, seeds 0-4): mean +1.36 > std 1.14 points, which
    # the old rule (mean beyond one std) called beats; the paired t-test gives p = 0.056
    base = {s: 0.5 for s in range(5)}
    er = {s: 0.5 + d for s, d in enumerate([0.02, 0.0, 0.003, 0.026, 0.019])}
    out = summarize(
        {"random": make_group(tmp_path, "random", base), "er": make_group(tmp_path, "er", er)}
    )
    c = out["comparisons"]["er"]
    fd = c["final_acc_diff"]
    assert abs(fd["mean"]) > fd["std"]  # the old rule's condition holds
    assert c["p"] == pytest.approx(0.0561, abs=1e-4) and c["verdict"] == "n.s."
    assert c["ci95"][0] < 0 < c["ci95"][1]


def test_all_zero_differences(tmp_path: Path) -> None:
    finals = {0: 0.8, 1: 0.7, 2: 0.75}
    groups = {"A": make_group(tmp_path, "A", finals), "B": make_group(tmp_path, "B", finals)}
    out = summarize(groups)
    c = out["comparisons"]["B"]
    assert c["final_acc_diff"]["std"] == 0.0
    assert c["p"] == 1.0 and c["p_holm"] == 1.0 and c["ci95"] == [0.0, 0.0]
    assert c["verdict"] == "n.s."
    json.dumps(out, allow_nan=False)
    assert "| +0.00 ± 0.00 | [+0.00, +0.00] | 1.000 (1.000) | n.s. |" in render_markdown(out)


def test_recompute_verdicts_of_a_summary_stored_under_the_old_rule(tmp_path: Path) -> None:
    groups = {
        "base": make_group(tmp_path, "base", {0: 0.80, 1: 0.70, 2: 0.75}),
        "better": make_group(tmp_path, "better", {0: 0.82, 1: 0.73, 2: 0.775}),
        "noisy": make_group(tmp_path, "noisy", {0: 0.85, 1: 0.66, 2: 0.76}),
    }
    new = json.loads(json.dumps(summarize(groups, target_acc=0.7)))
    old = json.loads(json.dumps(new))
    old["rule"] = "beats / loses: the mean paired difference ... within spread"
    del old["family"]
    for c in old["comparisons"].values():
        for k in ("ci95", "p", "p_holm", "comparisons"):
            del c[k]
    old["comparisons"]["noisy"]["verdict"] = "within spread"
    old["files"] = {"json": "x.json"}
    stored = json.dumps(old)
    redone = recompute_verdicts(old)
    assert json.dumps(old) == stored  # the input is not modified
    assert redone.pop("files") == {"json": "x.json"}
    assert json.dumps(redone) == json.dumps(new)  # same values, same key order
    # a stored summary without the new keys still renders (a dash for what it lacks)
    assert "| – | – | within spread |" in render_markdown(old)


# --------------------------------------------------------------------------- Markdown


def test_markdown_tables(tmp_path: Path) -> None:
    groups = {
        "base": make_group(tmp_path, "base", {0: 0.80, 1: 0.70, 2: 0.75}),
        "better|x": make_group(tmp_path, "better", {0: 0.82, 1: 0.73, 2: 0.775}),
    }
    out = summarize(groups, target_acc=0.7)
    md = render_markdown(out)
    assert md == render_markdown(json.loads(json.dumps(out)))  # deterministic, JSON round trip
    assert "| base | 75.0 ± 5.0 | 75.0 ± 5.0 | 30 ± 0 (3/3) | 10.0 |" in md
    assert "better\\|x" in md  # pipes in labels are escaped
    # t quantile 0.975 with 2 df = 4.303, se = 0.50 / sqrt(3): [+1.26, +3.74]; p = 0.013
    assert (
        "| better\\|x | +2.00 | +3.00 | +2.50 | +2.50 ± 0.50 | [+1.26, +3.74] | 0.013 (0.013) "
        "| beats |"
    ) in md
    assert "This table makes 1 comparison; Holm's correction is over this one." in md
    assert "Target: 70.0% test accuracy (given)" in md
    assert "mnist1d · mlp · ce" in md
    assert md.count("\n| ") == 2 + 2 + 1  # header, base, better; diff header, better


# --------------------------------------------------------------------------- plots


def _assert_png(p: Path) -> None:
    assert p.is_file()
    data = p.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5000
    assert not [x for x in p.parent.iterdir() if x.name.startswith(".")]  # no temp files left


def test_write_report_files(tmp_path: Path) -> None:
    groups = {
        "A": make_group(tmp_path / "runs", "A", {0: 0.8, 1: 0.7}),
        "B": make_group(tmp_path / "runs", "B", {0: 0.85, 1: 0.75}, homophily=0.6),
    }
    out = write_report(groups, tmp_path / "rep" / "deep", name="cmp")
    files = {k: Path(v) for k, v in out["files"].items()}
    assert files["markdown"].name == "cmp.md"
    assert files["markdown"].read_text() == render_markdown(out)
    stored = json.loads(files["json"].read_text())
    assert stored["files"] == out["files"] and stored["groups"]["B"]["n"] == 2
    _assert_png(files["accuracy_png"])
    _assert_png(files["homophily_png"])
    with pytest.raises(InputError, match="plain file name"):
        write_report(groups, tmp_path / "rep", name="a/b")


def test_plots_with_mismatched_eval_steps(tmp_path: Path) -> None:
    # different eval steps within a group: interpolated onto the union of steps
    a0 = make_run(tmp_path, "a0", seed=0, accs=[0.1, 0.5, 0.8], eval_steps=[0, 10, 20])
    a1 = make_run(tmp_path, "a1", seed=1, accs=[0.1, 0.6, 0.7, 0.9], eval_steps=[0, 5, 15, 25])
    # no homophily values at all in B (e.g. no labels) must not break the plot
    b0 = read_run(make_run(tmp_path, "b0", seed=0, accs=[0.1, 0.4, 0.6]))
    b0["steps"]["homophily"][:] = np.nan
    groups = {"A": [a0, a1], "B": [b0]}
    _assert_png(plot_accuracy(groups, tmp_path / "p" / "acc.png", target_acc=0.75))
    _assert_png(plot_homophily(groups, tmp_path / "p" / "hom.png"))
