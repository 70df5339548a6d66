"""SHA-256 of the batches every walk kind yields: the proof that a restructuring kept behaviour.

Builds one index (clustered blobs with labels: an ``er`` and a ``knn-clusters`` cluster graph and
a ``knn`` item graph with its walk order) and stores it under ``--index`` the first time, so that
runs before and after a change walk the very same arrays. Then, for every configuration (graph
kind x mix, restart, weighted, replacement, drop_last, a subset of items, ranks, a scripted policy
and the learned walkers fed with rewards, a mid-epoch resume), it hashes three epochs of batches
together with each batch's :class:`~graphwalk.walk.sampler.BatchInfo` (ROOT, community size,
random fill) and, with a policy, every step the policy saw (candidates, items left, community).

    .venv/bin/python bench/walk_hashes.py --out before.json
    ... change the walk package ...
    .venv/bin/python bench/walk_hashes.py --out after.json --compare before.json

Exit status 1 when ``--compare`` finds a configuration whose hash differs. (The ``er`` graph's
edges all weigh 1, so ``er/weighted`` walks as ``er/plain``; ``knn-clusters`` and ``knn`` carry
real weights.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import graphwalk as gw
from graphwalk.learn import make_policy
from graphwalk.walk.policy import TELEPORT, WalkPolicy, WalkStep


def _blobs(n: int, dim: int, centers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = rng.normal(scale=6.0, size=(centers, dim))
    y = rng.integers(0, centers, size=n)
    return (c[y] + rng.normal(size=(n, dim))).astype(np.float32), y.astype(np.int64)


def _index(path: Path) -> gw.GraphIndex:
    if not path.exists():
        x, y = _blobs(3000, 8, 12, 0)
        idx = gw.build_index(
            x,
            labels=y,
            clusters=40,
            groups=["labels"],
            graphs=["er", "knn-clusters", "knn"],
            k=8,
            seed=1,
        )
        idx.save(path)
    return gw.GraphIndex.load(path)


class _Scripted(WalkPolicy):
    """A deterministic policy that uses every answer the protocol allows: a candidate, a node of
    ``step.alive()`` and a teleport, and records what it saw."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.seen: list[Any] = []

    def reset(self, epoch: int, seed: int) -> None:
        self.seen.append(("reset", epoch, seed))

    def select(self, step: WalkStep) -> int:
        u = self.rng.random()
        self.seen.append(
            (
                "sel",
                step.epoch,
                step.batch,
                step.previous_root,
                step.candidates.tolist(),
                step.remaining.tolist(),
            )
        )
        if u < 0.1:
            return TELEPORT
        if step.candidates.size and u < 0.8:
            return int(step.candidates[self.rng.integers(step.candidates.size)])
        alive = step.alive()
        return int(alive[self.rng.integers(alive.size)]) if alive.size else TELEPORT

    def observe(self, step: WalkStep) -> None:
        self.seen.append(
            (
                "obs",
                step.batch,
                step.root,
                step.teleported,
                step.community.tolist(),
                step.community_size,
                step.size,
            )
        )

    def learn(self, step: WalkStep, reward: float) -> None:
        self.seen.append(("learn", step.epoch, step.batch, round(reward, 12)))


def _walk(sampler: Any, policy: Any, epochs: int, h: Any, resume_at: int | None) -> None:
    rng = np.random.default_rng(7)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        out = []
        for i, batch in enumerate(sampler):
            out.append(batch)
            if policy is not None:
                info = sampler.report(float(rng.normal()))
            else:
                info = sampler.batch_info()
            h.update(
                repr(
                    (
                        batch,
                        info.batch,
                        info.root,
                        info.community_size,
                        info.size,
                        info.teleported,
                        info.random_fill,
                        info.global_batch,
                    )
                ).encode()
            )
            if resume_at is not None and epoch == 1 and i == resume_at:
                state = sampler.state_dict()
                break
        else:
            continue
        # a mid-epoch resume: a new sampler (and policy) continues the epoch from the state
        fresh_policy, fresh = resume_factory()
        fresh.load_state_dict(state)
        for batch in fresh:
            info = fresh.report(float(rng.normal())) if fresh_policy is not None else None
            h.update(repr((batch, None if info is None else info.root)).encode())
        sampler.load_state_dict(fresh.state_dict())
        if policy is not None and fresh_policy is not None:
            policy.load_state_dict(fresh_policy.state_dict())
    if policy is not None and hasattr(policy, "seen"):
        h.update(repr(policy.seen).encode())


def configurations(idx: gw.GraphIndex) -> dict[str, tuple[dict[str, Any], Any]]:
    subset = np.random.default_rng(3).choice(idx.n_items, 2000, replace=False)
    cases: dict[str, tuple[dict[str, Any], Any]] = {}
    for graph in ("er", "knn-clusters", "knn", "knn-noorder"):
        kk: dict[str, Any] = {} if graph.startswith("knn") and graph != "knn-clusters" else {"k": 3}
        base = {"graph": graph, **kk}
        cases[f"{graph}/plain"] = ({**base}, None)
        cases[f"{graph}/bs100"] = ({**base, "batch_size": 100}, None)
        cases[f"{graph}/mix0.3"] = ({**base, "mix": 0.3}, None)
        cases[f"{graph}/restart0.2"] = ({**base, "restart": 0.2}, None)
        cases[f"{graph}/weighted"] = ({**base, "weighted": True}, None)
        cases[f"{graph}/replacement"] = ({**base, "replacement": True, "num_batches": 30}, None)
        cases[f"{graph}/replacement-mix"] = (
            {**base, "replacement": True, "mix": 0.25, "restart": 0.1},
            None,
        )
        cases[f"{graph}/drop_last"] = ({**base, "batch_size": 70, "drop_last": True}, None)
        cases[f"{graph}/subset"] = ({**base, "items": subset, "mix": 0.1}, None)
        for r in range(3):
            cases[f"{graph}/rank{r}of3"] = ({**base, "rank": r, "world_size": 3, "mix": 0.2}, None)
        cases[f"{graph}/scripted"] = ({**base}, "scripted")
        cases[f"{graph}/scripted-mix-repl"] = (
            {**base, "mix": 0.2, "replacement": True, "num_batches": 25},
            "scripted",
        )
        cases[f"{graph}/scripted-subset"] = ({**base, "items": subset}, "scripted")
        cases[f"{graph}/scripted-resume"] = ({**base, "mix": 0.1}, "scripted:resume")
        cases[f"{graph}/plain-resume"] = ({**base, "restart": 0.1}, "none:resume")
        for name in ("exp3s", "uniform", "pg", "odm"):
            if graph == "knn-noorder" or (name == "odm" and graph == "knn"):
                continue
            cases[f"{graph}/{name}"] = ({**base}, name)
        cases[f"{graph}/exp3s-floor-repl"] = (
            {**base, "replacement": True, "num_batches": 40},
            "exp3s:floor",
        )
    return cases


def _run(idx: gw.GraphIndex, name: str, kw: dict[str, Any], pol: Any) -> str:
    global resume_factory
    kw = dict(kw)
    graph = kw.pop("graph")
    bs = kw.pop("batch_size", 64)
    target = idx
    if graph == "knn-noorder":  # an index written before walk orders: walked in item ids
        g = idx.graph("knn")
        import dataclasses

        target = gw.GraphIndex(
            idx.n_items,
            levels=idx.levels,
            graphs={"knn-noorder": dataclasses.replace(g, name="knn-noorder", walk=None)},
            labels=idx.labels,
        )
    resume_at = None
    spec = pol
    if isinstance(pol, str) and pol.endswith(":resume"):
        resume_at = 9
        spec = pol.split(":")[0]
        spec = None if spec == "none" else spec

    def make() -> tuple[Any, Any]:
        policy: Any = None
        if spec == "scripted":
            policy = _Scripted(11)
        elif spec == "exp3s:floor":
            policy = make_policy("exp3s", target, graph, seed=5, floor="auto")
        elif spec is not None:
            policy = make_policy(spec, target, graph, seed=5)
        s = gw.GraphWalkBatchSampler(target, bs, graph=graph, seed=2, policy=policy, **kw)
        return policy, s

    resume_factory = make
    policy, sampler = make()
    h = hashlib.sha256()
    _walk(sampler, policy, 3, h, resume_at)
    return h.hexdigest()


resume_factory: Any = None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", type=Path, default=Path("out/walk-hashes.gw"))
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--compare", type=Path, default=None)
    p.add_argument("--only", default=None, help="configurations whose name contains this")
    a = p.parse_args(argv)
    import warnings

    warnings.simplefilter("ignore")
    fresh = not a.index.exists()
    idx = _index(a.index)
    print(
        f"{'built and stored' if fresh else 'loaded'} the index {a.index} ({idx.n_items} items); "
        "SHA-256 (first 16 hex digits) of 3 epochs of batches per configuration:",
        flush=True,
    )
    result: dict[str, str] = {}
    for name, (kw, pol) in configurations(idx).items():
        if a.only and a.only not in name:
            continue
        result[name] = _run(idx, name, kw, pol)
        print(f"{result[name][:16]}  {name}", flush=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    if a.compare:
        before = json.loads(a.compare.read_text())
        diff = [k for k in result if k in before and before[k] != result[k]]
        missing = [k for k in before if k not in result]
        same = sum(1 for k in result if k in before and before[k] == result[k])
        print(f"identical: {same}; different: {len(diff)} {diff}; not run: {len(missing)}")
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
