"""Checkpoints inside an epoch (--checkpoint-every) and preemption: a run stopped at any step, by
Ctrl-C, SIGTERM (checkpoint at the next step, then exit 143) or SIGKILL, and resumed, ends exactly
as the run that was never stopped (its metrics but their timings, its parameters, its batches)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from graphwalk.train.loop import CHECKPOINT, load_checkpoint
from tests.train.conftest import (
    DIGITS_STEPS,
    check_every_item_once_per_epoch,
    read_batches,
    read_metrics,
    without_timing,
)

ROOT = Path(__file__).resolve().parents[2]


def _same_run(part: Path, full: Path) -> None:
    assert without_timing(read_metrics(part)) == without_timing(read_metrics(full))
    a, b = load_checkpoint(part / CHECKPOINT)["model"], load_checkpoint(full / CHECKPOINT)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    s_part = json.loads((part / "summary.json").read_text())
    s_full = json.loads((full / "summary.json").read_text())
    assert s_part["final_test_acc"] == s_full["final_test_acc"] and s_part["complete"]


@pytest.mark.parametrize(
    "sampler", ["random", "er:mix=0.25", "knn", "er:policy=exp3s", "knn:policy=uniform"]
)
def test_a_checkpoint_inside_an_epoch_resumes_exactly(tmp_path, digits_train, sampler):
    settings = dict(sampler=sampler, epochs=2, checkpoint_every=7, record_batches=True)
    full = digits_train(tmp_path / "full", **settings)
    stop = DIGITS_STEPS + 10  # inside epoch 2: the last checkpoint is at step DIGITS_STEPS + 7
    part = digits_train(tmp_path / "part", stop=stop, **settings)
    ck = load_checkpoint(part / CHECKPOINT)
    assert ck["epoch"] == 1 and ck["step"] == (stop // 7) * 7 and "in_epoch" in ck
    assert ck["in_epoch"]["batch"] == ck["step"] - DIGITS_STEPS
    digits_train(part, resume=True)
    _same_run(part, full)
    check_every_item_once_per_epoch(read_batches(part), epochs=2)


def test_a_reward_in_flight_waits_for_the_epoch_end(tmp_path, digits_train):
    """gar's reward arrives a step late: no step inside an epoch has an exact state, so the
    checkpoints stay at epoch ends, and the resume is still exact."""
    settings = dict(sampler="er:policy=exp3s:reward=gar", epochs=2, checkpoint_every=5)
    full = digits_train(tmp_path / "full", **settings)
    part = digits_train(tmp_path / "part", stop=DIGITS_STEPS + 12, **settings)
    ck = load_checkpoint(part / CHECKPOINT)
    assert (ck["epoch"], ck["step"], "in_epoch" in ck) == (1, DIGITS_STEPS, False)
    digits_train(part, resume=True)
    _same_run(part, full)


def _cli(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "graphwalk", "train", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _steps(run: Path) -> int:
    try:
        text = (run / "metrics.jsonl").read_text()
    except FileNotFoundError:
        return 0
    return sum(1 for line in text.splitlines() if '"event": "step"' in line)


def _kill_at(run: Path, proc: subprocess.Popen, step: int, sig: int) -> None:
    deadline = time.monotonic() + 120
    while _steps(run) < step and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_run_killed_at_a_random_step_resumes_to_the_same_end(tmp_path, sig):
    rng = np.random.default_rng(int(sig))
    common = ["--dataset", "digits", "--sampler", "knn", "--epochs", 3, "--device", "cpu"]
    common += ["--checkpoint-every", 4, "--record-batches"]
    full = tmp_path / "full"
    done = _cli(*common, "--out", full)
    assert done.wait(300) == 0, done.communicate()
    for trial in range(2):  # two random steps per signal
        part = tmp_path / f"part{trial}"
        at = int(rng.integers(5, 3 * DIGITS_STEPS - 5))
        proc = _cli(*common, "--out", part)
        _kill_at(part, proc, at, sig)
        rc = proc.wait(120)
        err = proc.communicate()[1]
        if sig == signal.SIGTERM:
            assert rc == 143, err
            assert "stopped by SIGTERM after step" in err and "--resume" in err
            stopped = load_checkpoint(part / CHECKPOINT)["step"]
            assert stopped >= at  # the checkpoint of the step after the signal
        else:
            assert rc == -signal.SIGKILL
        resumed = _cli("--resume", part)
        assert resumed.wait(300) == 0, resumed.communicate()
        _same_run(part, full)
        check_every_item_once_per_epoch(read_batches(part), epochs=3)


@pytest.mark.parametrize("bad", ["-1", "2.5", "x"])
def test_a_bad_checkpoint_interval_is_one_line(tmp_path, capsys, bad):
    from tests.train.conftest import assert_error, cli

    rc, _, err = cli(
        capsys, "train", "--dataset", "digits", "--checkpoint-every", bad, "--out", tmp_path / "r"
    )
    assert_error(rc, err, "--checkpoint-every")
    assert not (tmp_path / "r").exists()


def test_checkpoint_every_is_checked_in_the_config():
    from graphwalk.errors import InputError
    from graphwalk.train.config import TrainConfig

    with pytest.raises(InputError, match="checkpoint_every"):
        TrainConfig(dataset="digits", checkpoint_every=-3).resolved()
