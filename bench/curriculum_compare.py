"""The evidence of issue 15: curricula against their controls, paired by seed, where the
literature expects a gain (short budgets, noisy labels).

Each setting is one ``graphwalk train --compare`` (graphwalk.train.compare.run_compare) of the
specs below into ``bench/.cache/curriculum-compare/NAME/``: shuffling (``random``, listed first),
the linear pacing curriculum (easy first by transfer scores) with its controls (the same pacing in
random order, and hard first: the anti-curriculum), fixed exponential pacing, the hierarchy
(coarse to fine over the parents derived from the class centroids) with its random-order
control, and the learned schedule (Exp3.S over 5 difficulty bands, gradient-prediction-gain rewards:
``grad-norm``) with
its no-learning control (``policy=uniform``). Settings: mnist1d (MLP, 40 epochs) and digits (MLP,
20 epochs), at full budget and at a quarter of it, clean and with 20% of the training labels
flipped.

Each setting's table and plots go to ``bench/results/curriculum-compare/NAME.*``; the overview
``bench/results/curriculum-compare.md`` (and ``.json``) gives, for every setting, the paired
differences in final test accuracy of each curriculum against its control and against
shuffling, with 95% t intervals and paired t-test p values, Holm-corrected over the whole
table.

    .venv/bin/python bench/curriculum_compare.py                      # everything (~40 min on 2 cores: run --only digits and --only mnist1d side by side)
    .venv/bin/python bench/curriculum_compare.py --only digits        # the settings whose name starts with it
    .venv/bin/python bench/curriculum_compare.py --quick --out-dir /tmp/x   # a smoke test
    .venv/bin/python bench/curriculum_compare.py --render-only        # the overview from the recorded settings
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
from graphwalk.train.verdict import holm, paired_t  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
SPECS = [
    "random",
    "curriculum=linear",
    "curriculum=linear:order=random",
    "curriculum=linear:order=hard",
    "curriculum=exp",
    "curriculum=hierarchy",
    "curriculum=hierarchy:order=random",
    "curriculum=agent",
    "curriculum=agent:policy=uniform",
]
#: (spec, its control): the comparisons that isolate the effect of the order / of learning
PAIRS = [
    ("curriculum=linear", "curriculum=linear:order=random"),
    ("curriculum=linear:order=hard", "curriculum=linear:order=random"),
    ("curriculum=hierarchy", "curriculum=hierarchy:order=random"),
    ("curriculum=agent:policy=exp3s", "curriculum=agent:policy=uniform"),
    *((s, "random") for s in SPECS[1:] if s != "curriculum=agent"),
    ("curriculum=agent:policy=exp3s", "random"),
]


def settings(quick: bool) -> dict[str, dict[str, Any]]:
    if quick:
        return {"digits-quick": {"dataset": "digits", "model": "mlp", "epochs": 2}}
    out: dict[str, dict[str, Any]] = {}
    for dataset, epochs in (("digits", 20), ("mnist1d", 40)):
        for budget, ep in (("full", epochs), ("quarter", epochs // 4)):
            for noise in (0.0, 0.2):
                name = f"{dataset}-{budget}-{'noise20' if noise else 'clean'}"
                out[name] = {
                    "dataset": dataset,
                    "model": "mlp",
                    "epochs": ep,
                    **({"label_noise": noise} if noise else {}),
                }
    return out


def _values(summary: dict[str, Any], label: str) -> list[float | None]:
    g = summary["groups"].get(label)
    return [] if g is None else list(g["final_acc"]["values"])


def rows_of(name: str, summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for a, b in PAIRS:
        va, vb = _values(summary, a), _values(summary, b)
        if not va or not vb:
            continue
        diffs = [x - y for x, y in zip(va, vb, strict=True) if x is not None and y is not None]
        t = paired_t(diffs)
        rows.append(
            {
                "setting": name,
                "sampler": a,
                "control": b,
                "acc": summary["groups"][a]["final_acc"]["mean"],
                "acc_std": summary["groups"][a]["final_acc"]["std"],
                "control_acc": summary["groups"][b]["final_acc"]["mean"],
                "diff": t["mean"],
                "diff_std": t["std"],
                "ci95": t["ci"],
                "p": t["p"],
                "diffs": diffs,
            }
        )
    return rows


def overview(rows: list[dict[str, Any]], seeds: list[int]) -> str:
    adj = holm([r["p"] for r in rows])
    for r, p in zip(rows, adj, strict=True):
        r["p_holm"] = p
        r["verdict"] = (
            "tie" if p is None or p >= 0.05 else ("beats" if r["diff"] > 0 else "loses to")
        )
    lines = [
        f"# Curricula against their controls, paired by seed (seeds {','.join(map(str, seeds))})",
        "",
        "Final test accuracy (%) mean ± std over seeds; *diff* is the paired per-seed difference "
        "against the control in points (mean ± std), with its 95% t interval and the paired "
        f"t-test's p value, Holm-adjusted over all {len(rows)} comparisons of this table; "
        "*beats* / *loses to* only when the adjusted p value is below 0.05, else *tie*. The "
        "controls: the same pacing in random order (Wu, Dyer, Neyshabur 2021), Exp3.S against "
        "the same walker without learning, and plain shuffling (`random`).",
        "",
        "| setting | curriculum | control | acc | control acc | diff | 95% CI | p | p (Holm) | "
        "verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f}"

    for r in rows:
        ci = r["ci95"]
        ci_s = "–" if ci is None else f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"
        diff = (
            "–"
            if r["diff"] is None
            else f"{100 * r['diff']:+.2f} ± {100 * (r['diff_std'] or 0):.2f}"
        )
        p = "–" if r["p"] is None else f"{r['p']:.3g}"
        ph = "–" if r["p_holm"] is None else f"{r['p_holm']:.3g}"
        lines.append(
            f"| {r['setting']} | `{r['sampler']}` | `{r['control']}` | {pct(r['acc'])} ± "
            f"{pct(r['acc_std'])} | {pct(r['control_acc'])} | {diff} | {ci_s} | {p} | {ph} | "
            f"{r['verdict']} |"
        )
    return "\n".join(lines) + "\n"


def _write(out_dir: Path, rows: list[dict[str, Any]], seeds: list[int]) -> None:
    text = overview(rows, seeds)
    (out_dir / "curriculum-compare.md").write_text(text)
    (out_dir / "curriculum-compare.json").write_text(
        json.dumps({"seeds": seeds, "rows": rows}, indent=2) + "\n"
    )
    print(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", help="settings whose name starts with this")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    ap.add_argument("--quick", action="store_true", help="one short digits setting, 2 seeds")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "results")
    ap.add_argument("--work-dir", type=Path, default=ROOT / ".cache" / "curriculum-compare")
    ap.add_argument("--render-only", action="store_true", help="the overview from the records")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    todo = settings(args.quick)
    if args.quick:
        seeds = seeds[:2]
    res_dir = args.out_dir / "curriculum-compare"
    res_dir.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        if args.only:
            todo = {k: v for k, v in todo.items() if any(k.startswith(o) for o in args.only)}
            if not todo:
                ap.error(f"no setting starts with {args.only}; settings: {sorted(settings(False))}")
        for name, base in todo.items():
            t0 = time.perf_counter()
            print(f"== {name}", file=sys.stderr)
            summary = run_compare(
                TrainConfig(**base),
                parse_specs(SPECS),
                seeds,
                args.work_dir / name,
                progress=False,
            )
            for path in summary.get("files", {}).values():
                src = Path(path)
                shutil.copyfile(src, res_dir / src.name.replace("compare", name))
            print(f"== {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for name in settings(args.quick):
        path = res_dir / f"{name}.json"
        if path.is_file():
            rows += rows_of(name, json.loads(path.read_text()))
    _write(args.out_dir, rows, seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
