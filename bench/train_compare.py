"""The evidence of issue 8: shuffling against walks, paired by seed, over the settings where batch
composition should matter (losses, label noise, activation graphs that follow the model).

Each setting is one ``graphwalk train --compare`` (graphwalk.train.compare.run_compare) into
``bench/.cache/train-compare/NAME/``; its table and plots are copied to
``bench/results/train-compare/NAME.{md,json,-accuracy.png,-homophily.png}`` and one overview table
over all settings is written to ``bench/results/train-compare.md`` (and ``.json``).

    .venv/bin/python bench/train_compare.py                 # everything (about 30 min on 2 cores)
    .venv/bin/python bench/train_compare.py --only mnist1d-mlp-ce
    .venv/bin/python bench/train_compare.py --quick --out-dir /tmp/x   # a smoke test (tests)

A setting that stopped continues where it was on the next run (finished runs are kept).
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
                "verdict": c.get("verdict", "reference"),
            }
        )
    return rows


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def overview(rows: list[dict[str, Any]], seeds: list[int]) -> str:
    lines = [
        f"# Shuffling against walks, paired by seed (seeds {','.join(map(str, seeds))})",
        "",
        "Final test accuracy (%) mean ± std over seeds; *diff* is the paired per-seed difference "
        "against `random` in points (mean ± std of the differences); a walk *beats* or *loses* "
        "when the mean difference is larger than the spread of the differences. Homophily: mean "
        "share of same-label pairs in the training batches. Steps to target: first evaluation at "
        "95% of shuffling's mean final accuracy (seeds that reached it).",
        "",
        "| setting | sampler | final acc | diff vs random | verdict | best acc | steps to target "
        "| homophily |",
        "|---|---|---|---|---|---|---|---|",
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
            f"{_pct(r['final_acc_std'])} | {diff} | {r['verdict']} | {_pct(r['best_acc'])} "
            f"| {stt} ({r['reached']}) | {hom} |"
        )
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
    args = ap.parse_args(argv)
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
    overview_json = args.out_dir / "train-compare.json"
    if overview_json.exists() and args.only:  # keep the other settings' rows
        rows = [
            r for r in json.loads(overview_json.read_text())["rows"] if r["setting"] not in settings
        ]
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
    text = overview(rows, seeds)
    (args.out_dir / "train-compare.md").write_text(text)
    overview_json.write_text(json.dumps({"seeds": seeds, "rows": rows}, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
