"""Shared helpers for the training-stage tests: small digits runs and readers of a run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphwalk.walk.sampler import batch_sizes

# digits: 1,437 training items; batches of 64 make 23 steps per epoch
DIGITS_TRAIN = 1437
DIGITS_STEPS = 23

# fields that hold measured times, not results: they differ between two runs of the same thing
TIMING = (
    "wall_s",
    "sampler_us",
    "seconds",
    "activations_s",
    "build_s",
    "epoch_seconds",
    "vectors_s",
)


def read_metrics(run: Path) -> list[dict]:
    """metrics.jsonl as a list of records."""
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def read_batches(run: Path, rank: int = 0) -> list[dict]:
    path = Path(run) / f"batches-rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_every_item_once_per_epoch(
    batches: list[dict], epochs: int, n: int = DIGITS_TRAIN, batch_size: int = 64
) -> None:
    """Each epoch: the batches 0..B-1 in order, sized as the sampler cuts an epoch, covering every
    item exactly once."""
    sizes, per_rank = batch_sizes(n, batch_size, 1, False)
    assert [b["epoch"] for b in batches] == [e for e in range(epochs) for _ in range(per_rank)]
    for e in range(epochs):
        epoch = [b for b in batches if b["epoch"] == e]
        assert [b["batch"] for b in epoch] == list(range(per_rank))
        assert [len(b["items"]) for b in epoch] == sizes.tolist()
        items = [i for b in epoch for i in b["items"]]
        assert sorted(items) == list(range(n))


@pytest.fixture(scope="session")
def digits_train():
    """Train a digits run (CPU, no progress bar) and return its directory; ``stop`` interrupts
    it with ``KeyboardInterrupt`` after that many steps (the exception is swallowed)."""
    from graphwalk.train.config import TrainConfig
    from graphwalk.train.loop import train

    def run(out: Path, *, stop: int | None = None, resume: bool = False, **settings) -> Path:
        cfg = TrainConfig(**{"dataset": "digits", "device": "cpu", "epochs": 2, **settings})
        try:
            train(cfg, out, resume=resume, progress=False, stop_after_steps=stop)
        except KeyboardInterrupt:
            if stop is None:
                raise
        return Path(out)

    return run


def cli(capsys, *args):
    """Run the command line in-process; return (exit status, stdout, stderr)."""
    from graphwalk.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_error(rc, err, *words):
    """Exit status 2 and exactly one line on stderr, no traceback, naming ``words``."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("graphwalk train: error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]
