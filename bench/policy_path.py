"""What a learned walker's decision costs per batch (issue 13, "the online policy path").

A sampler with a policy decides every batch online: it hands the rewards that arrived to the
policy (``learn``), builds the step (candidates, items left, ``alive()`` on request), asks the
policy (``select``), draws the batch with the Numba kernel and tells the policy what was drawn
(``observe``); the loop then calls ``report(reward)``. This script times that per batch, with no
model in the loop (the rewards are a fixed function of the batch), for every built-in policy on
the mnist1d index ``graphwalk train`` builds by default (k-means with one cluster per 100 items,
``er``, exact ``knn`` k=10), against the planned walk (no policy: the whole epoch in one kernel
call, then ``report()`` without a reward). The policy's own hooks are timed on their own, so the
table splits each decision into the sampler's part and the policy's.

    python bench/policy_path.py                    # mnist1d, 6 epochs per arm (about a minute)
    python bench/policy_path.py --epochs 1 --record /tmp/p.md   # a smoke run

Target (issue 13): <= 20 µs a decision for exp3s, uniform and odm, pg within 2x of that.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from graphwalk.benchmark import Table
from graphwalk.datasets import load_dataset
from graphwalk.learn import make_policy
from graphwalk.train.indexing import default_index
from graphwalk.walk.sampler import GraphWalkBatchSampler

HERE = Path(__file__).resolve().parent
ARMS = [
    ("er", None),
    ("er", "uniform"),
    ("er", "exp3s"),
    ("er", "odm"),
    ("er", "pg"),
    ("knn", None),
    ("knn", "uniform"),
    ("knn", "exp3s"),
    ("knn", "pg"),
]


class _Timed:
    """Wraps a policy's hooks to add their time to ``spent``."""

    def __init__(self, policy: Any) -> None:
        self.spent = 0.0
        for name in ("select", "observe", "learn", "reset"):
            fn = getattr(policy, name)

            def timed(*a: Any, _fn: Any = fn, **kw: Any) -> Any:
                t = time.perf_counter()
                try:
                    return _fn(*a, **kw)
                finally:
                    self.spent += time.perf_counter() - t

            setattr(policy, name, timed)


def _arm(index: Any, graph: str, name: str | None, epochs: int, batch: int) -> dict[str, Any]:
    """Per batch: the time of ``next()`` + ``report()``, and of the policy's hooks inside it.
    Medians over the batches (the first of each epoch, which starts the epoch's walk, is
    reported apart), so that preemptions by other processes on a shared machine do not count."""
    policy = None if name is None else make_policy(name, index, graph, seed=0)
    timer = None if policy is None else _Timed(policy)
    s = GraphWalkBatchSampler(index, batch, graph=graph, policy=policy, seed=0)
    list(s)  # warm-up: compiles, and the first epoch's plan
    steps: list[float] = []
    hooks: list[float] = []
    firsts: list[float] = []
    for epoch in range(1, epochs + 1):
        s.set_epoch(epoch)
        it = iter(s)
        for i in itertools.count():
            h0 = 0.0 if timer is None else timer.spent
            t0 = time.perf_counter()
            try:
                b = next(it)
            except StopIteration:
                break
            s.report(None if policy is None else float(b[0] % 7))
            dt = time.perf_counter() - t0
            (firsts if i == 0 else steps).append(dt)
            if i:
                hooks.append(0.0 if timer is None else timer.spent - h0)
    return {
        "graph": graph,
        "policy": name or "(planned walk)",
        "us": float(np.median(steps)) * 1e6,
        "policy_us": float(np.median(hooks)) * 1e6,
        "first_us": float(np.median(firsts)) * 1e6,
        "mean_us": float(np.mean(steps)) * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--record", default=str(HERE / "results" / "policy-path.md"))
    args = ap.parse_args(argv)
    ds = load_dataset("mnist1d")
    with tempfile.TemporaryDirectory(prefix="gw-policy-path-") as td:
        index = default_index(ds, Path(td) / "index.gw", clusters=None, k=10, seed=0)
        rows = []
        for graph, name in ARMS:
            r = _arm(index, graph, name, args.epochs, args.batch_size)
            rows.append(r)
            print(
                f"{graph:>4} {r['policy']:>16}: {r['us']:7.1f} us a batch "
                f"(policy's hooks {r['policy_us']:6.1f} us)",
                flush=True,
            )
    t = Table(
        f"The online policy path: µs per batch, mnist1d ({len(ds)} items), batch "
        f"{args.batch_size}, {args.epochs} epochs per arm",
        [
            "graph",
            "policy",
            "µs a batch (median)",
            "the policy's hooks",
            "the sampler's part",
            "mean",
            "an epoch's first batch",
        ],
    )
    for r in rows:
        t.add(
            r["graph"],
            r["policy"],
            r["us"],
            r["policy_us"],
            r["us"] - r["policy_us"],
            r["mean_us"],
            r["first_us"],
        )
    t.notes.append(
        "a batch: next() + report(reward), the median over every batch but the first of each "
        "epoch (which starts the epoch: its own column); the policy's hooks: select, observe, "
        "learn, reset timed inside (median); the sampler's part: the difference (the step, "
        "candidates, the kernel call, the hand-over of rewards, report()); the mean includes "
        "the machine's preemptions"
    )
    t.notes.append(
        "nodes: er "
        f"{index.graph('er').n_nodes} clusters, knn {index.graph('knn').n_nodes} items; "
        "target: <= 20 µs a decision for exp3s, uniform, odm; pg within 2x"
    )
    print(t.markdown())
    if args.record:
        t.record(args.record, command=" ".join(["python bench/policy_path.py", *(argv or [])]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
