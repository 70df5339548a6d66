"""Every sampler with every seed in one command, paired by seed, then one table and two plots.

Layout of a comparison directory::

    plan.json                  the specs, seeds and the resolved base configuration
    index-seed{S}.gw           the index of seed S, shared by every walk of that seed
    runs/{SPEC}/seed-{S}/      one run directory per sampler and seed (see graphwalk.train.loop)
    compare.md, compare.json   the side-by-side table (Markdown) and its numbers
    compare-accuracy.png       test accuracy against steps, one line per sampler, spread over seeds
    compare-homophily.png      batch homophily against steps

Seeds are paired: for one seed every sampler starts from the same initial model (the seed sets
the initialisation before anything else draws from torch's generator), the same label noise and
the same index. A comparison that stopped (Ctrl-C, a crash) continues where it was with the same
command or ``--resume DIR``: finished runs are kept, an unfinished one resumes from its last
checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphwalk._files import atomic_write
from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.train.config import TrainConfig
from graphwalk.train.data import load_splits
from graphwalk.train.indexing import check_index, default_index
from graphwalk.train.loop import CHECKPOINT, train
from graphwalk.train.spec import SamplerSpec, parse_specs

__all__ = ["load_compare", "run_compare"]

_PLAN = "plan.json"


def _plan(base: TrainConfig, specs: Sequence[SamplerSpec], seeds: Sequence[int]) -> dict[str, Any]:
    b = base.to_dict()
    b.pop("sampler")
    b.pop("seed")
    return {"specs": [str(s) for s in specs], "seeds": list(seeds), "base": b}


def load_compare(out: str | os.PathLike[str]) -> tuple[TrainConfig, list[SamplerSpec], list[int]]:
    """The base configuration, specs and seeds of an existing comparison directory."""
    p = Path(out) / _PLAN
    try:
        plan = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{out} is not a comparison directory (no {_PLAN})") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{p} is not readable JSON: {exc}") from exc
    base = TrainConfig.from_dict({**plan["base"], "sampler": "random", "seed": 0}, source=str(p))
    return base, parse_specs(plan["specs"]), [int(s) for s in plan["seeds"]]


def run_compare(
    base: TrainConfig,
    specs: Sequence[SamplerSpec],
    seeds: Sequence[int],
    out: str | os.PathLike[str],
    *,
    target_acc: float | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Run every spec with every seed (paired by seed) and write the comparison.

    Args:
        base: settings shared by every run (its ``sampler`` and ``seed`` are replaced).
        specs: the samplers; the first is the reference of the per-seed differences (put
            ``random`` first to read everything against shuffling).
        seeds: seeds, each run by every sampler.
        target_acc: the accuracy "steps to target" counts to (default: 95% of the first
            sampler's mean final accuracy).
        overwrite: replace a directory holding another comparison.
        threads: torch's CPU threads per run (see :func:`graphwalk.train.loop.train`).

    Returns:
        The summary of :func:`graphwalk.train.report.summarize`, with the files written.
    """
    from graphwalk.train.report import write_report

    out = Path(out)
    if not specs:
        raise InputError("no sampler specs to compare; e.g. --compare random,er,knn")
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds should be distinct, but got {list(seeds)}; e.g. --seeds 0,1,2")
    if len({s.is_episodes for s in specs}) > 1:
        raise InputError(
            "--compare runs episodes (a meta-learner) or batches (a classifier), not both: "
            f"{', '.join(str(s) for s in specs)}"
        )
    walk = next((s for s in specs if not s.is_random), specs[0])
    base = dataclasses.replace(base, sampler=str(walk), seed=int(seeds[0])).resolved()
    for s in specs:  # every spec and seed must make a valid config before anything runs
        _config(base, s, int(seeds[0]), None).resolved()
    for sd in seeds:
        dataclasses.replace(base, seed=int(sd)).resolved()
    _check_graphs(base, specs)
    plan = _plan(base, specs, seeds)
    if base.index is not None:  # the index's content, not only its path
        plan["index_fingerprint"] = GraphIndex.load(base.index).fingerprint
    if out.exists() and any(out.iterdir()):
        try:
            old = json.loads((out / _PLAN).read_text())
        except (OSError, ValueError):
            old = None
        if old is None:
            raise InputError(
                f"--out {out} is a non-empty directory that is not a graphwalk comparison; "
                "it is never replaced: choose a new --out"
            )
        if old != plan:
            if not overwrite:
                raise InputError(
                    f"{out} holds a different comparison; choose another --out, or replace it "
                    "with --overwrite"
                )
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / _PLAN, json.dumps(plan, indent=2) + "\n")

    n_items: int | None = None
    groups: dict[str, list[Path]] = {str(s): [] for s in specs}
    total = len(specs) * len(seeds)
    done = 0
    for sd in seeds:
        index_path: str | None = base.index
        walks = any(s.graph is not None for s in specs)
        if base.index is None and not (base.layers or base.vectors) and walks:
            p = out / f"index-seed{sd}.gw"
            if not (p / "manifest.json").is_file():
                train_ds, _, _ = load_splits(
                    base.dataset, classes=base.classes, data_dir=base.data_dir, download=False
                )
                default_index(
                    train_ds, p, clusters=base.index_clusters, k=base.index_k, seed=int(sd)
                )
            index_path = str(p.resolve())  # config.json works from any directory
        elif base.index is not None and n_items is None:
            train_ds, _, _ = load_splits(
                base.dataset, classes=base.classes, data_dir=base.data_dir, download=False
            )
            n_items = len(train_ds)
            check_index(GraphIndex.load(base.index), base.dataset, n_items, base.index)
        for s in specs:
            cfg = _config(base, s, int(sd), index_path)
            run = out / "runs" / s.slug / f"seed-{sd}"
            groups[str(s)].append(run)
            done += 1
            if _complete(run):
                print(f"[{done}/{total}] {s} seed {sd}: finished earlier, kept", file=sys.stderr)
                continue
            print(f"[{done}/{total}] {s} seed {sd}", file=sys.stderr)
            if (run / CHECKPOINT).is_file():
                train(cfg, run, resume=True, progress=progress, threads=threads)
            else:
                train(cfg, run, overwrite=True, progress=progress, threads=threads)
    return write_report(groups, out, target_acc=target_acc, name="compare")


def _check_graphs(base: TrainConfig, specs: Sequence[SamplerSpec]) -> None:
    """Every walk's graph exists, before anything is trained or written."""
    from graphwalk.train.indexing import check_spec_graph, own_graphs

    if base.index is not None:
        graphs, where = list(GraphIndex.load(base.index).graphs), f"index {base.index}"
    elif base.layers or base.vectors:
        what = "activation" if base.layers else f"{base.vectors} vectors'"
        graphs, where = own_graphs(base.layers), f"the {what} index built for each run"
    else:
        graphs, where = own_graphs(()), "the index built for each seed"
    for s in specs:
        check_spec_graph(s, graphs, where)


def _config(base: TrainConfig, spec: SamplerSpec, seed: int, index: str | None) -> TrainConfig:
    """One run's configuration: shuffling walks no index and makes no activation graphs."""
    if spec.is_random:
        return dataclasses.replace(
            base,
            sampler=str(spec),
            seed=seed,
            index=None,
            layers=[],
            refresh_every=0,
            vectors=None,
            vectors_dim=TrainConfig.vectors_dim,
            vectors_lr=TrainConfig.vectors_lr,
        )
    if spec.is_episodes or spec.is_curriculum:  # each run builds its own index (paired by seed)
        if spec.is_curriculum:
            return dataclasses.replace(base, sampler=str(spec), seed=seed, index=None)
        return dataclasses.replace(base, sampler=str(spec), seed=seed)
    return dataclasses.replace(base, sampler=str(spec), seed=seed, index=index)


def _complete(run: Path) -> bool:
    try:
        return bool(json.loads((run / "summary.json").read_text()).get("complete"))
    except (OSError, ValueError):
        return False
