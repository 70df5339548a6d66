"""The evidence of issue 9: does a learned walker spend the training budget better than shuffling,
than the same walk without learning, and than a graph-free bandit?

Per setting (dataset x label noise), one paired comparison (graphwalk.train.compare.run_compare)
of: shuffling; the plain `er` walk; in reorder-only mode (every item once per epoch) the
no-learning control (`policy=uniform`, the same code path with learning off), the graph-free
bandit over all clusters (`policy=odm`, Online Data Mixing), Exp3.S over ROOT's neighbours with
each reward (grad-norm, loss-drop, gar) and the policy-gradient walker (grad-norm); in budgeted
mode (`budget=`: as many batches per epoch, drawn with replacement where the policy sends them,
under the default coverage floor) the control, the graph-free bandit, Exp3.S and the
policy-gradient walker. Noise: 20% of the training labels flipped in a few k-means clusters
(``noise_in_clusters``), where a gradient-norm reward may be drawn to them.

Three tables per setting in ``bench/results/learn-compare/``: against shuffling (target: shuffling's
mean final accuracy, so "steps to target x" reads against the issue's bar of 0.7), against the
reorder-only control and against the budgeted control (per-seed differences); plus the overview
``bench/results/learn-compare.md`` and each run's ``policy.png`` for seed 0.

    .venv/bin/python bench/learn_compare.py            # everything (about 20 min on 2 cores)
    .venv/bin/python bench/learn_compare.py --quick --out-dir /tmp/x
    .venv/bin/python bench/learn_compare.py --render-only   # the recorded results, judged again

``--render-only`` trains nothing: it judges every recorded ``learn-compare/*.json`` again under
the current verdict rule (rewriting its paired-differences table and rule in the ``.md``, and the
JSON's verdict keys) and rebuilds the overview from the ``*-vs-random.json`` reports (the share
of noisy labels, which only the runs' metrics hold, is kept from the recorded overview).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from _verdicts import interval, judge_rows, p_holm, rerender, rule_note  # noqa: E402

from graphwalk.train.compare import run_compare  # noqa: E402
from graphwalk.train.config import TrainConfig  # noqa: E402
from graphwalk.train.report import write_report  # noqa: E402
from graphwalk.train.spec import parse_specs  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]


def specs(budget: int) -> tuple[list[str], list[str], list[str]]:
    """(shuffling and the plain walk, reorder-only policies, budgeted policies)."""
    base = ["random", "er"]
    reorder = [
        "er:policy=uniform",
        "er:policy=odm",
        "er:policy=exp3s",
        "er:policy=exp3s:reward=loss-drop",
        "er:policy=exp3s:reward=gar",
        "er:policy=pg",
    ]
    budgeted = [
        f"er:policy=uniform:budget={budget}",
        f"er:policy=odm:budget={budget}",
        f"er:policy=exp3s:budget={budget}",
        f"er:policy=pg:budget={budget}",
    ]
    return base, reorder, budgeted


# name -> (base config, batches per epoch without replacement: the budget, equal step counts)
SETTINGS: dict[str, tuple[dict[str, Any], int]] = {
    "mnist1d-mlp-clean": ({"dataset": "mnist1d", "model": "mlp", "epochs": 30}, 63),
    "mnist1d-mlp-noisy": (
        {
            "dataset": "mnist1d",
            "model": "mlp",
            "epochs": 30,
            "label_noise": 0.2,
            "noise_in_clusters": True,
        },
        63,
    ),
    "digits-mlp-clean": ({"dataset": "digits", "model": "mlp", "epochs": 10}, 23),
    "digits-mlp-noisy": (
        {
            "dataset": "digits",
            "model": "mlp",
            "epochs": 10,
            "label_noise": 0.2,
            "noise_in_clusters": True,
        },
        23,
    ),
}


def _noisy_share(run: Path) -> float | None:
    vals = []
    with open(run / "metrics.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("event") == "step" and rec.get("noisy") is not None:
                vals.append(rec["noisy"])
    return sum(vals) / len(vals) if vals else None


def _rows(
    name: str, vs_random: dict[str, Any], noisy: dict[str, float | None]
) -> list[dict[str, Any]]:
    """The overview's rows of one setting, from its report against shuffling."""
    rows = []
    comps = vs_random.get("comparisons") or {}
    for label, g in vs_random["groups"].items():
        c = comps.get(label, {})
        d = c.get("final_acc_diff") or {}
        rows.append(
            {
                "setting": name,
                "sampler": label,
                "final_acc": g["final_acc"]["mean"],
                "final_acc_std": g["final_acc"]["std"],
                "diff": d.get("mean"),
                "diff_std": d.get("std"),
                "diff_values": d.get("values"),
                "verdict": "reference" if label not in comps else None,  # judge_rows: the table's
                "verdict_in_setting": c.get("verdict", "reference"),
                "steps_ratio": (c.get("steps_to_target_ratio") or {}).get("mean"),
                "reached": g["steps_to_target"].get("reached"),
                "noisy_share": noisy.get(label),
                "steps_per_s": g.get("steps_per_s", {}).get("mean"),
            }
        )
    return rows


def overview(rows: list[dict[str, Any]], seeds: list[int]) -> str:
    """The overview table; judges the rows first (one family: every comparison in the table)."""
    m = judge_rows(rows)
    lines = [
        f"# Learned walkers against shuffling and their controls (seeds {','.join(map(str, seeds))})",
        "",
        "Final test accuracy (%) mean ± std; *diff*: paired per-seed difference against "
        "shuffling (points, mean ± std), with its 95% t confidence interval and the paired "
        "t-test's p value (Holm-adjusted over the whole table in brackets; rule below); *steps "
        "x*: steps to reach shuffling's mean final accuracy, as a multiple of shuffling's (seeds "
        "where both reached it; the issue's bar is <= 0.7); *noisy*: mean share of flipped "
        "labels in the training batches (20% for shuffling when there is noise). Per-seed "
        "differences against the no-learning controls are in `learn-compare/*-vs-*-control.md`.",
        "",
        "| setting | sampler | final acc | diff vs shuffling | 95% CI | p (Holm) | verdict "
        "| steps x (reached) | noisy | steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        diff = "–" if r["diff"] is None else f"{100 * r['diff']:+.2f} ± {100 * r['diff_std']:.2f}"
        ratio = "–" if r["steps_ratio"] is None else f"{r['steps_ratio']:.2f}"
        noisy = "–" if r["noisy_share"] is None else f"{r['noisy_share']:.3f}"
        sps = "–" if r["steps_per_s"] is None else f"{r['steps_per_s']:.0f}"
        lines.append(
            f"| {r['setting']} | `{r['sampler']}` | {100 * r['final_acc']:.1f} ± "
            f"{100 * r['final_acc_std']:.1f} | {diff} | {interval(r.get('ci95'))} | {p_holm(r)} "
            f"| {r['verdict']} | {ratio} ({r['reached']}) | {noisy} | {sps} |"
        )
    lines += ["", rule_note(m, rows, "`learn-compare/SETTING-vs-random.md`, 11 comparisons")]
    return "\n".join(lines) + "\n"


def _write_overview(out_dir: Path, rows: list[dict[str, Any]], seeds: list[int]) -> None:
    text = overview(rows, seeds)  # judges the rows
    (out_dir / "learn-compare.md").write_text(text)
    (out_dir / "learn-compare.json").write_text(
        json.dumps({"seeds": seeds, "rows": rows}, indent=2) + "\n"
    )
    print(text)


def render_only(out_dir: Path) -> int:
    """Judge every recorded ``learn-compare/*.json`` again and rebuild the overview from them."""
    res = out_dir / "learn-compare"
    recorded = sorted(res.glob("*.json"))
    if not recorded:
        print(f"no recorded results in {res}", file=sys.stderr)
        return 1
    summaries = {}
    for path in recorded:
        summaries[path.stem] = rerender(path)
        print(f"== {path.name}: judged again", file=sys.stderr)
    old = out_dir / "learn-compare.json"
    recorded_overview = json.loads(old.read_text()) if old.is_file() else {"seeds": SEEDS}
    noisy: dict[str, dict[str, float | None]] = {}
    for r in recorded_overview.get("rows", []):
        noisy.setdefault(r["setting"], {})[r["sampler"]] = r.get("noisy_share")
    rows = [
        row
        for name in SETTINGS
        if f"{name}-vs-random" in summaries
        for row in _rows(name, summaries[f"{name}-vs-random"], noisy.get(name, {}))
    ]
    _write_overview(out_dir, rows, recorded_overview["seeds"])
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", help="run only these settings (repeatable)")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    ap.add_argument("--quick", action="store_true", help="digits, 1 epoch, 2 seeds: a smoke test")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "results")
    ap.add_argument("--work-dir", type=Path, default=ROOT / ".cache" / "learn-compare")
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="train nothing: judge the recorded results in --out-dir again and rewrite the tables",
    )
    args = ap.parse_args(argv)
    if args.render_only:
        if args.only or args.quick:
            ap.error("--render-only judges every recorded result again; drop --only and --quick")
        return render_only(args.out_dir)
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = dict(SETTINGS)
    if args.quick:
        settings = {
            "digits-quick": (
                {"dataset": "digits", "epochs": 1, "label_noise": 0.2, "noise_in_clusters": True},
                23,
            )
        }
        seeds = seeds[:2]
    if args.only:
        settings = {k: v for k, v in settings.items() if k in args.only}
    res = args.out_dir / "learn-compare"
    res.mkdir(parents=True, exist_ok=True)
    overview_rows: list[dict[str, Any]] = []
    for name, (base, budget) in settings.items():
        t0 = time.perf_counter()
        print(f"== {name}", file=sys.stderr)
        head, reorder, budgeted = specs(budget)
        all_specs = parse_specs(head + reorder + budgeted)
        work = args.work_dir / name
        first = run_compare(TrainConfig(**base), all_specs, seeds, work, progress=False)
        runs = {str(s): [work / "runs" / s.slug / f"seed-{sd}" for sd in seeds] for s in all_specs}
        target = first["groups"]["random"]["final_acc"]["mean"]
        # against shuffling, with shuffling's own final accuracy as the target (the issue's bar)
        vs_random = write_report(runs, res, target_acc=target, name=f"{name}-vs-random")
        for label, group in (("reorder", reorder), ("budgeted", budgeted)):
            ordered = {g: runs[str(parse_specs(g)[0])] for g in group}
            stem = f"{name}-vs-{label}-control"
            write_report(ordered, res, target_acc=target, name=stem)
            for png in res.glob(f"{stem}-*.png"):  # the same curves as vs-random: tables only
                png.unlink()
        for src in work.glob("runs/*/seed-0/policy.png"):  # exp3s in both modes, seed 0
            if src.parent.parent.name in (
                "er_policy-exp3s",
                f"er_replacement_policy-exp3s_budget-{budget}",
            ):
                shutil.copyfile(src, res / f"{name}-{src.parent.parent.name}-policy.png")
        noisy = {}
        for label in vs_random["groups"]:
            vals = [v for v in (_noisy_share(Path(r)) for r in runs[label]) if v is not None]
            noisy[label] = sum(vals) / len(vals) if vals else None
        overview_rows += _rows(name, vs_random, noisy)
        print(f"== {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    _write_overview(args.out_dir, overview_rows, seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
