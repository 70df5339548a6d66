"""What gradient sketches and learned vectors cost a training step (issue 17: target at most 5%
of a step on the mnist1d CNN), and what a refresh costs.

The timed step is ``graphwalk train``'s core on mnist1d (4,000 training items, batches of 64,
Adam, one torch thread, denormals flushed): the batch indexed from in-memory tensors, forward,
cross-entropy, ``zero_grad``, backward, Adam's step, the loss read back; with vectors also
``RunVectors.arm`` before the forward pass and ``RunVectors.observe`` after the step, and the
buffered sketches and outer steps (``RunVectors.flush``) once per epoch, as a refresh would
(and whenever the buffer reaches 32 MB), counted in the epoch's time.
Arms: ``plain``, ``grad`` and ``learned`` (64 dims), each with its own copy of the model (the same
initialisation) and the same batches (a seeded permutation per epoch). Whole epochs are timed in
rounds that give every arm one epoch in an order rotated each round, after one warm-up epoch per
arm; the overhead is the median over rounds of an arm's epoch time over ``plain``'s in the same
round, minus one. Inside the ``grad`` and ``learned`` arms the vectors' own calls are also timed on
their own (their seconds per step), free of the rounds' noise.

A refresh rebuilds the run's index over the vectors (``graphwalk.train.indexing.vector_index``:
k-means, the ER graph, the exact kNN graph): its seconds, and per step of an epoch.

    .venv/bin/python bench/vectors_overhead.py                          # ~3 min
    .venv/bin/python bench/vectors_overhead.py --quick --out-dir /tmp/v  # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from graphwalk.benchmark import Table  # noqa: E402
from graphwalk.train.data import load_splits  # noqa: E402
from graphwalk.train.itemvectors import RunVectors  # noqa: E402
from graphwalk.train.models import build_model, default_optim  # noqa: E402

TARGET = 0.05
ARMS = ("plain", "grad", "learned")


class Arm:
    def __init__(self, kind: str, model: str, x: torch.Tensor, y: torch.Tensor, n_classes: int):
        torch.manual_seed(0)
        self.net = build_model(model, tuple(x.shape[1:]), n_classes)
        _, lr, _ = default_optim(model)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.vec = (
            None
            if kind == "plain"
            else RunVectors(
                kind, self.net, int(x.shape[0]), n_classes, dim=64, lr=0.5, seed=0, device="cpu"
            )
        )
        self.x, self.y = x, y
        self.step = 0
        self.vec_s = 0.0

    def epoch(self, order: torch.Tensor, batch: int) -> float:
        t0 = time.perf_counter()
        for s in range(0, int(order.numel()) - batch + 1, batch):
            ids = order[s : s + batch]
            xb, yb = self.x[ids], self.y[ids]
            if self.vec is not None:
                ta = time.perf_counter()
                self.vec.arm()
                self.vec_s += time.perf_counter() - ta
            loss = F.cross_entropy(self.net(xb), yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            float(loss.detach())
            if self.vec is not None:
                tb = time.perf_counter()
                self.vec.observe(ids, yb, self.step)
                self.vec_s += time.perf_counter() - tb
            self.step += 1
        if self.vec is not None:  # what the epoch's end (a refresh) flushes
            tc = time.perf_counter()
            self.vec.flush()
            self.vec_s += time.perf_counter() - tc
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "results")
    args = ap.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    train_ds, _, _ = load_splits("mnist1d")
    x = train_ds.inputs
    y = torch.as_tensor(train_ds.labels["label"])
    n_classes = int(y.max()) + 1
    batch = 64
    steps_per_epoch = int(x.shape[0]) // batch
    table = Table(
        "What --vectors costs a training step (mnist1d, batches of 64, one thread)",
        [
            "model",
            "arm",
            "ms per step",
            "overhead (median over rounds)",
            "vectors' own ms per step",
            "own share of a plain step",
            f"within {TARGET:.0%}",
        ],
    )
    extra: dict[str, Any] = {"rounds": rounds, "steps_per_epoch": steps_per_epoch}
    for model in ("cnn1d", "mlp"):
        arms = {k: Arm(k, model, x, y, n_classes) for k in ARMS}
        gen = torch.Generator().manual_seed(0)
        orders = [torch.randperm(int(x.shape[0]), generator=gen) for _ in range(rounds + 1)]
        for a in arms.values():  # warm-up
            a.epoch(orders[0], batch)
            a.vec_s = 0.0
        times: dict[str, list[float]] = {k: [] for k in ARMS}
        for r in range(rounds):
            names = list(ARMS[r % 3 :] + ARMS[: r % 3])
            for k in names:
                times[k].append(arms[k].epoch(orders[r + 1], batch))
        plain_ms = 1e3 * statistics.median(times["plain"]) / steps_per_epoch
        for k in ARMS:
            ratio = statistics.median(
                [t / p - 1.0 for t, p in zip(times[k], times["plain"], strict=True)]
            )
            own_ms = 1e3 * arms[k].vec_s / (rounds * steps_per_epoch)
            ms = 1e3 * statistics.median(times[k]) / steps_per_epoch
            table.add(
                model,
                k,
                ms,
                "–" if k == "plain" else f"{100 * ratio:+.1f}%",
                "–" if k == "plain" else round(own_ms, 4),
                "–" if k == "plain" else f"{100 * own_ms / plain_ms:.1f}%",
                "–" if k == "plain" else ("yes" if own_ms / plain_ms <= TARGET else "no"),
            )
            extra[f"{model}-{k}"] = {"epoch_s": times[k], "own_s": arms[k].vec_s}
        for a in arms.values():
            if a.vec is not None:
                a.vec.close()
    # the refresh: the index rebuilt over the vectors
    from graphwalk.train.indexing import vector_index

    v = np.random.default_rng(0).normal(size=(int(x.shape[0]), 64)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        ts = []
        for i in range(2 if args.quick else 5):
            t0 = time.perf_counter()
            vector_index(v, train_ds, Path(tmp) / f"i{i}.gw", clusters=None, k=10, seed=0)
            ts.append(time.perf_counter() - t0)
    refresh_s = statistics.median(ts)
    table.notes += [
        f"{rounds} rounds, each arm one epoch ({steps_per_epoch} steps) per round in a rotated "
        "order; overhead: the median over rounds of the arm's epoch time over plain's, minus "
        "one (noisy on a shared machine: the vectors' own time is the steadier figure).",
        "The vectors' own time: RunVectors.arm + observe at every step and the flush of the "
        "buffered sketches and outer steps at the epoch's end.",
        f"A refresh (vector_index over 4,000 x 64: k-means, ER graph, exact kNN graph): "
        f"{refresh_s:.2f} s, {1e3 * refresh_s / steps_per_epoch:.1f} ms per step of an epoch "
        "when the graph is rebuilt every epoch (--refresh-every 1), as for --layers.",
    ]
    extra["refresh_s"] = ts
    print(table.markdown())
    name = "vectors-overhead-quick.md" if args.quick else "vectors-overhead.md"
    table.record(
        args.out_dir / name,
        extra=extra,
        command="python bench/vectors_overhead.py" + (" --quick" if args.quick else ""),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
