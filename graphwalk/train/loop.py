"""The training loop behind ``graphwalk train``: one run of one sampler with one seed.

A run directory holds ``config.json`` (the resolved configuration: enough to reproduce the run),
``metrics.jsonl`` (one JSON object per step, evaluation and refresh, written as the run goes),
``metrics.csv`` / ``steps.csv`` (the evaluations and the steps as tables, written when the run ends
or stops), ``summary.json`` (when it ends), ``checkpoint.pt`` (after every epoch, written
atomically), TensorBoard event files under ``tb/`` when ``tensorboard`` is installed, and the index
the run built (``index.gw``, or ``index-epoch-NNN.gw`` for activation graphs).

:func:`train` resolves the configuration and the run directory, and cleans up after a run that
stopped before its first checkpoint; the run itself is a :class:`graphwalk.train.run.Run`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from graphwalk.train.checkpoint import CHECKPOINT, load_checkpoint
from graphwalk.train.config import TrainConfig
from graphwalk.train.run import Run, evaluate, make_sampler
from graphwalk.train.rundir import prepare_run_dir
from graphwalk.train.runtime import init_distributed

__all__ = ["CHECKPOINT", "evaluate", "load_checkpoint", "make_sampler", "train"]


def train(
    config: TrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    stop_after_steps: int | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train one model with one sampler and seed; write the run directory ``out``.

    Args:
        config: the run's settings (resolved here); with ``resume`` the run's own
            ``config.json`` is used instead.
        out: the run directory.
        resume: continue from ``out/checkpoint.pt`` (an epoch's end, or inside one): model, optimiser
            and schedule, sampler, every RNG; the metrics logged after that checkpoint are
            dropped and redone, so the finished run's metrics equal an uninterrupted run's.
        overwrite: replace a run directory holding another run.
        progress: a progress bar with live loss and accuracy (default: when stderr is a terminal).
        stop_after_steps: raise ``KeyboardInterrupt`` after this many steps (tests of Ctrl-C).
        threads: torch's CPU threads during the run (restored after it). Default: 1 for models
            under a million parameters, whose steps are too small to share (two threads made the
            mnist1d MLP 20x slower on a busy 2-core machine), else torch's own default.

    Returns:
        The run's summary (also written to ``summary.json``).
    """
    out = Path(out)
    rank, world = init_distributed()
    if resume:
        from graphwalk.train.config import load_config

        prepare_run_dir(out, config, resume=True, overwrite=False)
        cfg = load_config(out).resolved()
        if config.device != "auto":  # the one setting a resumed run may change
            cfg.device = config.device
    else:
        cfg = config.resolved()
        if rank == 0:
            prepare_run_dir(out, cfg, resume=False, overwrite=overwrite)
    fresh = rank == 0 and not resume
    created = fresh and not out.exists()
    threads_before = torch.get_num_threads()
    try:
        run = Run(
            cfg,
            out,
            rank=rank,
            world=world,
            resume=resume,
            progress=progress,
            stop_after_steps=stop_after_steps,
            threads=threads,
            fresh=fresh,
        )
        return run.execute()
    except BaseException:
        # a run refused, failed or stopped before its first checkpoint leaves nothing in the way
        # of the command run again (after a checkpoint everything is kept: it can resume)
        if fresh and not (out / CHECKPOINT).exists():
            if created:
                shutil.rmtree(out, ignore_errors=True)
            elif out.is_dir():
                for child in out.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    finally:  # process-wide settings the run changed, whatever stopped it
        torch.set_num_threads(threads_before)
        torch.set_flush_denormal(False)
