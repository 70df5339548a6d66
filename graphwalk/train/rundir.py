"""A training run's directory: what it holds, when it may be written to, and whether a stopped
run (or comparison) in it can be resumed.

A run directory holds ``config.json`` (the resolved settings), ``metrics.jsonl``
(:mod:`graphwalk.train.metrics`), ``summary.json`` when the run ended, ``checkpoint.pt``
(:mod:`graphwalk.train.checkpoint`) and the index the run built; a comparison's directory holds
``plan.json`` and one run directory per sampler and seed under ``runs/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from graphwalk.errors import InputError
from graphwalk.train.checkpoint import CHECKPOINT
from graphwalk.train.config import TrainConfig
from graphwalk.train.metrics import METRICS

__all__ = ["RUN_FILES", "config_diff", "prepare_run_dir", "resumable"]

#: the files of a run directory (besides the index it built, TensorBoard's events and tables)
RUN_FILES = ("config.json", METRICS, "summary.json", CHECKPOINT)


def resumable(out: Path) -> bool:
    """Whether ``out`` holds a run, or a comparison, that ``--resume`` can continue (a
    checkpoint was written)."""
    if (out / "plan.json").exists():
        return any(out.glob("runs/*/seed-*/" + CHECKPOINT))
    return (out / CHECKPOINT).exists()


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The settings whose values differ between two config dicts, sorted."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def prepare_run_dir(out: Path, cfg: TrainConfig, *, resume: bool, overwrite: bool) -> None:
    """Refuse a run directory that holds another run (or anything that is not a run) unless
    ``overwrite``; with ``resume`` it must hold this run's checkpoint."""
    cfg_file = out / "config.json"
    if resume:
        if not (out / CHECKPOINT).is_file():
            raise InputError(
                f"{out} has no {CHECKPOINT} (the run never finished an epoch, or it is not a run "
                f"directory): start it again with --out {out} --overwrite"
            )
        return
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"--out {out} is a file; give a directory for the run")
    if not any(out.iterdir()):
        return
    if not cfg_file.is_file():
        raise InputError(
            f"--out {out} is a non-empty directory that is not a graphwalk run; it is never "
            "replaced: choose a new --out"
        )
    if not overwrite:
        try:
            theirs = json.loads(cfg_file.read_text())
        except (OSError, ValueError):
            theirs = {}
        diff = config_diff(theirs, cfg.to_dict())
        if not diff:
            raise InputError(
                f"{out} already holds this run: continue it with --resume {out}, or start it "
                "again with --overwrite"
            )
        raise InputError(
            f"{out} already holds a different run (it differs in {', '.join(diff[:4])}); choose "
            "another --out, or replace it with --overwrite"
        )
    shutil.rmtree(out)
