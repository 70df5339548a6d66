"""SHA-256 of what ``graphwalk train`` produces: the proof that a restructuring of the loop kept
behaviour.

For every configuration (shuffling and walks, cross-entropy and supcon, label noise, the learned
walker with its rewards, activation graphs refreshed every epoch, SGD with a constant schedule and
evaluations inside the epoch, recorded batches, a run interrupted and resumed from an epoch-end
checkpoint and from one inside an epoch) it trains a short run on ``digits`` and hashes the
metrics (every record, with the wall-clock fields removed), the final model's weights, the
recorded batches and the summary (timings removed).

    .venv/bin/python bench/train_hashes.py --out before.json
    ... change graphwalk/train ...
    .venv/bin/python bench/train_hashes.py --out after.json --compare before.json

Exit status 1 when ``--compare`` finds a configuration whose hash differs. Runs in about a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from graphwalk.train.checkpoint import load_checkpoint
from graphwalk.train.config import TrainConfig
from graphwalk.train.loop import train

# fields that hold wall-clock measurements: they differ between any two runs
TIMING = {
    "wall_s",
    "sampler_us",
    "seconds",
    "epoch_seconds",
    "activations_s",
    "build_s",
    "train_s",
    "steps_per_s",
}
TIMING_SUMMARY = TIMING | {"sampler_us_mean", "sampler_us_median", "refresh_s_mean", "files"}

CONFIGS: dict[str, dict[str, Any]] = {
    "random": {"sampler": "random"},
    "er-mix-noise": {"sampler": "er:mix=0.5", "label_noise": 0.2},
    "knn-noise-in-clusters": {"sampler": "knn", "label_noise": 0.2, "noise_in_clusters": True},
    "er-supcon": {"sampler": "er", "loss": "supcon", "batch_size": 128},
    "sgd-constant-eval": {
        "sampler": "knn:mix=0.25",
        "optimizer": "sgd",
        "schedule": "constant",
        "eval_every": 10,
    },
    "exp3s-grad-norm": {"sampler": "er:policy=exp3s", "record_batches": True},
    "exp3s-gar-floor": {"sampler": "er:policy=exp3s:reward=gar:floor=20"},
    "pg-loss": {"sampler": "er:policy=pg:reward=loss-drop"},
    "activations-refresh": {"sampler": "knn", "layers": ["body.act1"], "refresh_every": 1},
    "checkpoint-every": {"sampler": "er", "checkpoint_every": 7, "record_batches": True},
}
# (configuration, steps before the interruption): trained to there, then resumed
RESUMED: dict[str, tuple[str, int]] = {
    "resume-epoch-end/er-mix-noise": ("er-mix-noise", 30),
    "resume-in-epoch/checkpoint-every": ("checkpoint-every", 40),
    "resume-in-epoch/exp3s-gar": ("exp3s-gar-floor", 40),
}


def _digest(run: Path) -> str:
    h = hashlib.sha256()
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        rec = {k: v for k, v in json.loads(line).items() if k not in TIMING}
        h.update(json.dumps(rec, sort_keys=True).encode())
    ck = load_checkpoint(run / "checkpoint.pt")
    for name, t in sorted(ck["model"].items()):
        h.update(name.encode())
        h.update(t.cpu().numpy().tobytes())
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    h.update(json.dumps({k: v for k, v in summary.items() if k not in TIMING_SUMMARY}).encode())
    for rec in sorted(run.glob("batches-rank*.jsonl")):
        h.update(rec.read_bytes())
    if (run / "policy.json").exists():
        h.update((run / "policy.json").read_bytes())
    return h.hexdigest()


def _run(
    out: Path, settings: dict[str, Any], stop: int | None = None, resume: bool = False
) -> None:
    cfg = TrainConfig(**{"dataset": "digits", "device": "cpu", "epochs": 2, **settings})
    try:
        train(cfg, out, resume=resume, progress=False, stop_after_steps=stop)
    except KeyboardInterrupt:
        if stop is None:
            raise


def hashes() -> dict[str, str]:
    got: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in CONFIGS.items():
            run = Path(tmp) / name.replace("/", "-")
            _run(run, settings)
            got[name] = _digest(run)
            print(f"{name:40s} {got[name][:16]}", flush=True)
        for name, (base, stop) in RESUMED.items():
            run = Path(tmp) / name.replace("/", "-")
            _run(run, CONFIGS[base], stop=stop)
            _run(run, CONFIGS[base], resume=True)
            got[name] = _digest(run)
            same = "= uninterrupted" if got[name] == got[base] else "DIFFERS from uninterrupted"
            print(f"{name:40s} {got[name][:16]}  {same}", flush=True)
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, help="write the hashes here (JSON)")
    ap.add_argument("--compare", type=Path, help="a recorded JSON to compare with")
    args = ap.parse_args(argv)
    got = hashes()
    if args.out:
        args.out.write_text(json.dumps(got, indent=2) + "\n", encoding="utf-8")
    if args.compare:
        want = json.loads(args.compare.read_text(encoding="utf-8"))
        bad = [k for k in want if got.get(k) != want[k]]
        print(f"{len(want) - len(bad)}/{len(want)} identical to {args.compare}")
        for k in bad:
            print(f"  differs: {k}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
