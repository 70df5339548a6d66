"""Select one gradient update among K candidates (graphwalk.tasks.select): its cost per step and
what it does to training, against the plain step, in one process.

On mnist1d (MLP, Adam 1e-3, batches of 64), the training items are cut into 5 difficulty bands
(transfer scores, graphwalk.tasks.bandit.difficulty_bands): the tasks. Each step of the
``select-K`` arm draws K distinct tasks uniformly, a batch of each, and a reference batch from the
whole training set, and applies the candidate whose gradient is best aligned with the
reference's; the ``plain`` arm trains on one uniformly drawn task's batch (K=1, no selection);
``shuffle`` trains on a batch of the whole training set. Each arm runs ``--steps`` steps for each
seed from the same initial weights; the table gives the time per step (median over the run) and
its ratio to ``plain``, the final test accuracy (mean ± std over seeds) and, for the select arms,
the mean alignment of the chosen candidate against the mean over all candidates.

    .venv/bin/python bench/select_update.py              # 3 seeds, 600 steps (about 2 min)
    .venv/bin/python bench/select_update.py --quick      # a smoke run

Writes ``bench/results/select-update.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from graphwalk.tasks.bandit import difficulty_bands  # noqa: E402
from graphwalk.tasks.difficulty import rank_items, transfer_difficulty  # noqa: E402
from graphwalk.tasks.select import candidate_batches, select_update  # noqa: E402
from graphwalk.train.data import load_splits  # noqa: E402
from graphwalk.train.models import build_model  # noqa: E402


def run_arm(arm: str, k: int, seed: int, steps: int, data: dict[str, Any]) -> dict[str, Any]:
    torch.manual_seed(seed)
    x, y, tx, ty, bands = data["x"], data["y"], data["tx"], data["ty"], data["bands"]
    net = build_model("mlp", tuple(x.shape[1:]), 10)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    times, chosen_align, mean_align = [], [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        net.train()
        if arm == "shuffle":
            ids = torch.randint(0, y.numel(), (64,), generator=g)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[ids]), y[ids]).backward()
        elif k == 1:
            _, (ids,) = candidate_batches(bands, 1, 64, g)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[ids]), y[ids]).backward()
        else:
            _, batches = candidate_batches(bands, k, 64, g)
            ref = torch.randint(0, y.numel(), (64,), generator=g)
            res = select_update(
                net, F.cross_entropy, [(x[b], y[b]) for b in batches], (x[ref], y[ref])
            )
            chosen_align.append(res.alignments[res.index])
            mean_align.append(statistics.fmean(res.alignments))
        opt.step()
        times.append(time.perf_counter() - t0)
    net.eval()
    with torch.no_grad():
        acc = float((net(tx).argmax(1) == ty).float().mean())
    return {
        "arm": arm,
        "k": k,
        "seed": seed,
        "step_ms": 1000 * statistics.median(times),
        "acc": acc,
        "chosen_alignment": statistics.fmean(chosen_align) if chosen_align else None,
        "mean_alignment": statistics.fmean(mean_align) if mean_align else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "results")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    steps = args.steps
    if args.quick:
        seeds, steps = seeds[:1], 20
    torch.set_num_threads(1)
    train, test, classes = load_splits("mnist1d")
    y_np = train.labels[classes]
    scores = transfer_difficulty(train.features, y_np, seed=0)
    data = {
        "x": train.inputs,
        "y": torch.as_tensor(y_np),
        "tx": test.inputs,
        "ty": torch.as_tensor(test.labels[classes]),
        "bands": torch.as_tensor(difficulty_bands(y_np, rank_items(scores, "easy"), 5)),
    }
    arms = [("shuffle", 1), ("plain", 1), ("select-2", 2), ("select-4", 4), ("select-5", 5)]
    results = [run_arm(a, k, s, steps, data) for s in seeds for a, k in arms]
    plain_ms = {r["seed"]: r["step_ms"] for r in results if r["arm"] == "plain"}
    lines = [
        f"# Select one gradient update among K candidates (mnist1d MLP, {steps} steps, seeds "
        f"{','.join(map(str, seeds))})",
        "",
        "Time per step: median over the run, 1 thread; *cost* is its ratio to `plain` (one "
        "task's batch, no selection) in the same run, mean over seeds. Alignment: cosine between "
        "a candidate's gradient and a reference batch's (the whole training set), mean over "
        "steps and seeds.",
        "",
        "| arm | K | ms / step | cost vs plain | final test acc (%) | chosen alignment | "
        "mean alignment of the candidates |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = []
    for a, k in arms:
        rs = [r for r in results if r["arm"] == a]
        ms = statistics.fmean(r["step_ms"] for r in rs)
        cost = statistics.fmean(r["step_ms"] / plain_ms[r["seed"]] for r in rs)
        accs = [100 * r["acc"] for r in rs]
        acc_s = (
            f"{statistics.fmean(accs):.1f} ± {statistics.stdev(accs) if len(accs) > 1 else 0:.1f}"
        )
        ca = [r["chosen_alignment"] for r in rs if r["chosen_alignment"] is not None]
        ma = [r["mean_alignment"] for r in rs if r["mean_alignment"] is not None]
        lines.append(
            f"| {a} | {k} | {ms:.2f} | {cost:.2f}x | {acc_s} | "
            f"{f'{statistics.fmean(ca):.3f}' if ca else '–'} | "
            f"{f'{statistics.fmean(ma):.3f}' if ma else '–'} |"
        )
        summary.append({"arm": a, "k": k, "ms": ms, "cost": cost, "acc": accs})
    text = "\n".join(lines) + "\n"
    print(text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    name = "select-update-quick" if args.quick else "select-update"
    (args.out_dir / f"{name}.md").write_text(text)
    (args.out_dir / f"{name}.json").write_text(
        json.dumps({"steps": steps, "seeds": seeds, "runs": results, "arms": summary}, indent=2)
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
