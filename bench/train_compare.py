"""The evidence of issue 8: shuffling against walks, paired by seed, over the settings where batch
composition should matter (losses, label noise, activation graphs that follow the model).

Each setting is one ``graphwalk train --compare`` (graphwalk.train.compare.run_compare) into
``bench/.cache/train-compare/NAME/``; its table and plots are copied to
``bench/results/train-compare/NAME.{md,json,-accuracy.png,-homophily.png}`` and one overview table
over all settings is written to ``bench/results/train-compare.md`` (and ``.json``).

    .venv/bin/python bench/train_compare.py                 # everything (about 30 min on 2 cores)
    .venv/bin/python bench/train_compare.py --only mnist1d-mlp-ce
    .venv/bin/python bench/train_compare.py --quick --out-dir /tmp/x   # a smoke test (tests)
    .venv/bin/python bench/train_compare.py --render-only   # the recorded results, judged again

A setting that stopped continues where it was on the next run (finished runs are kept).
``--render-only`` trains nothing: it judges every recorded ``train-compare/*.json`` again under
the current verdict rule (rewriting its paired-differences table and rule in the ``.md``, and the
JSON's verdict keys) and rebuilds the overview from them.
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
from graphwalk.train.spec import parse_specs  # noqa: E402

WALKS = "random,er,er:mix=0.5,knn,knn:mix=0.5"
SEEDS = [0, 1, 2, 3, 4]

# name -> (base config, specs); every setting is paired by seed against `random`, listed first
SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "mnist1d-mlp-ce": ({"dataset": "mnist1d", "model": "mlp", "epochs": 40}, WALKS),
    "mnist1d-mlp-ce-noise20": (
        {"dataset": "mnist1d", "model": "mlp", "epochs": 40, "label_noise": 0.2},
        WALKS,
    ),
    "mnist1d-mlp-supcon": (
        {"dataset": "mnist1d", "model": "mlp", "epochs": 40, "loss": "supcon", "lr": 1e-3},
        WALKS,
    ),
    "mnist1d-cnn1d-ce": ({"dataset": "mnist1d", "model": "cnn1d", "epochs": 40}, WALKS),
    "mnist1d-mlp-activations": (
        {
            "dataset": "mnist1d",
            "model": "mlp",
            "epochs": 40,
            "layers": ["body.act2"],
            "refresh_every": 5,
        },
        "random,knn,knn:mix=0.5,er",
    ),
    "digits-mlp-ce": ({"dataset": "digits", "model": "mlp", "epochs": 20}, WALKS),
    "digits-mlp-ce-noise20": (
        {"dataset": "digits", "model": "mlp", "epochs": 20, "label_noise": 0.2},
        WALKS,
    ),
    "digits-mlp-supcon": (
        {"dataset": "digits", "model": "mlp", "epochs": 20, "loss": "supcon", "lr": 1e-3},
        WALKS,
    ),
}


def _row(name: str, summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    comps = summary.get("comparisons") or {}
    for label, g in summary["groups"].items():
        c = comps.get(label, {})
        d = c.get("final_acc_diff", {})
        rows.append(
            {
                "setting": name,
                "sampler": label,
                "final_acc": g["final_acc"]["mean"],
                "final_acc_std": g["final_acc"]["std"],
                "best_acc": g["best_acc"]["mean"],
                "steps_to_target": g["steps_to_target"]["mean"],
                "reached": g["steps_to_target"].get("reached"),
                "homophily": g["homophily"]["mean"],
                "diff": d.get("mean"),
                "diff_std": d.get("std"),
                "diff_values": d.get("values"),
                "verdict": "reference" if label not in comps else None,  # judge_rows: the table's
                "verdict_in_setting": c.get("verdict", "reference"),
            }
        )
    return rows


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def overview(rows: list[dict[str, Any]], seeds: list[int]) -> str:
    """The overview table; judges the rows first (one family: every comparison in the table)."""
    m = judge_rows(rows)
    lines = [
        f"# Shuffling against walks, paired by seed (seeds {','.join(map(str, seeds))})",
        "",
        "Final test accuracy (%) mean ± std over seeds; *diff* is the paired per-seed difference "
        "against `random` in points (mean ± std of the differences), with its 95% t confidence "
        "interval and the paired t-test's p value (Holm-adjusted over the whole table in "
        "brackets); a walk *beats* or *loses* only when the adjusted p value is below 0.05 "
        "(rule below). Homophily: mean share of same-label pairs in the training batches. Steps "
        "to target: first evaluation at 95% of shuffling's mean final accuracy (seeds that "
        "reached it).",
        "",
        "| setting | sampler | final acc | diff vs random | 95% CI | p (Holm) | verdict | best acc "
        "| steps to target | homophily |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        diff = (
            "–"
            if r["diff"] is None
            else f"{100 * r['diff']:+.2f} ± {100 * (r['diff_std'] or 0):.2f}"
        )
        stt = "–" if r["steps_to_target"] is None else f"{r['steps_to_target']:.0f}"
        hom = "–" if r["homophily"] is None else f"{r['homophily']:.3f}"
        lines.append(
            f"| {r['setting']} | `{r['sampler']}` | {_pct(r['final_acc'])} ± "
            f"{_pct(r['final_acc_std'])} | {diff} | {interval(r.get('ci95'))} | {p_holm(r)} "
            f"| {r['verdict']} | {_pct(r['best_acc'])} | {stt} ({r['reached']}) | {hom} |"
        )
    lines += ["", rule_note(m, rows, "`train-compare/SETTING.md`, 3-4 comparisons")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", help="run only these settings (repeatable)")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    ap.add_argument(
        "--quick", action="store_true", help="2 settings on digits, 1 epoch: a smoke test"
    )
    ap.add_argument("--out-dir", type=Path, default=ROOT / "results")
    ap.add_argument("--work-dir", type=Path, default=ROOT / ".cache" / "train-compare")
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
            "digits-quick": ({"dataset": "digits", "epochs": 1}, "random,er,knn"),
            "digits-quick-activations": (
                {"dataset": "digits", "epochs": 2, "layers": ["body.act1"], "refresh_every": 1},
                "random,knn",
            ),
        }
        seeds = seeds[:2]
    if args.only:
        unknown = sorted(set(args.only) - set(settings))
        if unknown:
            ap.error(f"unknown settings {unknown}; choose from {sorted(settings)}")
        settings = {k: v for k, v in settings.items() if k in args.only}
    res_dir = args.out_dir / "train-compare"
    res_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    if args.only:  # keep the other settings' rows, from their recorded reports
        rows = [r for n in SETTINGS if n not in settings for r in _recorded_rows(res_dir, n)]
    for name, (base, specs) in settings.items():
        t0 = time.perf_counter()
        print(f"== {name}", file=sys.stderr)
        summary = run_compare(
            TrainConfig(**base), parse_specs(specs), seeds, args.work_dir / name, progress=False
        )
        for path in summary.get("files", {}).values():
            src = Path(path)
            shutil.copyfile(src, res_dir / src.name.replace("compare", name))
        rows += _row(name, summary)
        print(f"== {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    order = list(SETTINGS) + [k for k in settings if k not in SETTINGS]
    rows.sort(key=lambda r: order.index(r["setting"]) if r["setting"] in order else 99)
    _write_overview(args.out_dir, rows, seeds)
    return 0


def _recorded_rows(res_dir: Path, name: str) -> list[dict[str, Any]]:
    path = res_dir / f"{name}.json"
    return _row(name, json.loads(path.read_text())) if path.is_file() else []


def _write_overview(out_dir: Path, rows: list[dict[str, Any]], seeds: list[int]) -> None:
    text = overview(rows, seeds)  # judges the rows
    (out_dir / "train-compare.md").write_text(text)
    (out_dir / "train-compare.json").write_text(
        json.dumps({"seeds": seeds, "rows": rows}, indent=2) + "\n"
    )
    print(text)


def render_only(out_dir: Path) -> int:
    """Judge every recorded ``train-compare/*.json`` again and rebuild the overview from them."""
    res_dir = out_dir / "train-compare"
    recorded = sorted(res_dir.glob("*.json"))
    if not recorded:
        print(f"no recorded results in {res_dir}", file=sys.stderr)
        return 1
    for path in recorded:
        rerender(path)
        print(f"== {path.name}: judged again", file=sys.stderr)
    overview_json = out_dir / "train-compare.json"
    seeds = json.loads(overview_json.read_text())["seeds"] if overview_json.is_file() else SEEDS
    _write_overview(out_dir, [r for n in SETTINGS for r in _recorded_rows(res_dir, n)], seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
