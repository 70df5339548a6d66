"""``train`` under torch.distributed: two real gloo processes (as torchrun starts them) train on
disjoint, whole batches; only rank 0 logs and checkpoints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from graphwalk.train.loop import CHECKPOINT, load_checkpoint
from graphwalk.walk.sampler import batch_sizes
from tests.train.conftest import DIGITS_TRAIN, read_batches, read_metrics, without_timing

ROOT = Path(__file__).resolve().parents[2]  # the repository (tests/train/ is two below)

WORKER = r"""
import json, sys
import torch
torch.set_num_threads(1)
import torch.distributed as dist
from graphwalk.train.config import TrainConfig
from graphwalk.train.loop import train
cfg = TrainConfig(dataset="digits", sampler=sys.argv[2], epochs=1, batch_size=64,
                  record_batches=True, device="cpu")
summary = train(cfg, sys.argv[1], progress=False)
rank, world = dist.get_rank(), dist.get_world_size()
with open(sys.argv[3] + f".{rank}", "w") as f:
    json.dump({"rank": rank, "world": world, "summary": summary}, f)
dist.barrier()
dist.destroy_process_group()
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_two_ranks(script, *args):
    """Run ``script`` as ranks 0 and 1 of a gloo group on this machine; both must exit 0."""
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), *map(str, args)],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
        )
        for r in range(2)
    ]
    try:
        assert [p.wait(timeout=300) for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def _run_two_ranks(tmp_path, sampler):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    run = tmp_path / "run"
    _launch_two_ranks(script, run, sampler, tmp_path / "result")
    results = [json.loads((tmp_path / f"result.{r}").read_text()) for r in range(2)]
    return run, results


@pytest.mark.slow
def test_two_gloo_ranks_train_on_disjoint_whole_batches(tmp_path):
    run, results = _run_two_ranks(tmp_path, "er")
    assert [(r["rank"], r["world"]) for r in results] == [(0, 2), (1, 2)]
    sizes, per_rank = batch_sizes(DIGITS_TRAIN, 64, 2, False)
    b0, b1 = read_batches(run, 0), read_batches(run, 1)
    assert len(b0) == len(b1) == per_rank
    for rank, batches in enumerate((b0, b1)):
        assert [b["epoch"] for b in batches] == [0] * per_rank
        assert [b["batch"] for b in batches] == list(range(per_rank))
        # whole batches: batch b of rank r is global batch r + 2b, of the size the epoch cuts
        assert [len(b["items"]) for b in batches] == [
            int(sizes[rank + 2 * i]) for i in range(per_rank)
        ]
        for b in batches:
            assert len(set(b["items"])) == len(b["items"])
    items0 = {i for b in b0 for i in b["items"]}
    items1 = {i for b in b1 for i in b["items"]}
    assert not items0 & items1
    assert sorted(items0 | items1) == list(range(DIGITS_TRAIN))

    # rank 0 logs and checkpoints; rank 1 returns no summary and writes nothing of its own
    assert results[0]["summary"]["complete"] is True
    assert results[0]["summary"]["steps"] == per_rank
    assert results[1]["summary"] == {}
    recs = read_metrics(run)
    steps = [r for r in recs if r["event"] == "step"]
    assert [s["step"] for s in steps] == list(range(1, per_rank + 1))  # logged once, not twice
    assert [(e["epoch"], e["step"]) for e in recs if e["event"] == "eval"] == [
        (0, 0),
        (1, per_rank),
    ]
    ck = load_checkpoint(run / CHECKPOINT)
    assert (ck["epoch"], ck["step"]) == (1, per_rank)
    assert not any("dist" in k or k.startswith("module.") for k in ck["model"])  # the bare net
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("batches-")) == [
        "batches-rank0.jsonl",
        "batches-rank1.jsonl",
    ]
    # the logged homophily is that of rank 0's batches
    from graphwalk.datasets import load_dataset

    y = load_dataset("digits", split="train").labels["label"]
    for b, s in zip(b0, steps, strict=True):
        labels = y[b["items"]]
        n = len(labels)
        same = sum(int((labels == c).sum()) * (int((labels == c).sum()) - 1) for c in range(10))
        assert s["homophily"] == pytest.approx(same / (n * (n - 1)), abs=1e-5)


@pytest.mark.slow
def test_two_gloo_ranks_with_a_learned_walker_decide_alike(tmp_path):
    """A learned walker under DDP: report() gathers both ranks' rewards, so both policies learn
    from the same rewards and make the same choices: the epoch still splits into disjoint whole
    shares that cover every item (diverging choices would repeat or miss items)."""
    run, _ = _run_two_ranks(tmp_path, "er:policy=exp3s")
    _, per_rank = batch_sizes(DIGITS_TRAIN, 64, 2, False)
    b0, b1 = read_batches(run, 0), read_batches(run, 1)
    assert len(b0) == len(b1) == per_rank
    items0 = [i for b in b0 for i in b["items"]]
    items1 = [i for b in b1 for i in b["items"]]
    assert not set(items0) & set(items1)
    assert sorted(items0 + items1) == list(range(DIGITS_TRAIN))
    steps = [r for r in read_metrics(run) if r["event"] == "step"]
    assert all(s["reward"] is not None and s["reward"] > 0 for s in steps)
    rep = json.loads((run / "policy.json").read_text())
    # every global batch was decided on each rank and every rank's reward was learned
    assert rep["decisions"] == 2 * per_rank
    assert rep["rewards_seen"] == 2 * per_rank


WORKER_PREEMPT = r"""
import json, sys
import torch
torch.set_num_threads(1)
import torch.distributed as dist
from graphwalk.train.config import TrainConfig
from graphwalk.train.loop import train
run, stop, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "resume"
cfg = TrainConfig(dataset="digits", sampler="er:policy=exp3s", epochs=2, batch_size=64,
                  record_batches=True, device="cpu", checkpoint_every=4)
try:
    train(cfg, run, progress=False, resume=resume, stop_after_steps=stop if stop > 0 else None)
except KeyboardInterrupt:
    pass
dist.barrier()
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_gloo_ranks_resume_inside_an_epoch_exactly(tmp_path):
    """Both ranks stop inside epoch 2 after a checkpoint taken inside it, resume from it, and end
    as two ranks that never stopped: rank 0's metrics and both ranks' batches."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER_PREEMPT)

    def launch(run, stop, mode):
        _launch_two_ranks(script, run, stop, mode)

    full, part = tmp_path / "full", tmp_path / "part"
    launch(full, 0, "fresh")
    per_epoch = len(read_batches(full, 0)) // 2
    stop = per_epoch + 9
    launch(part, stop, "fresh")
    ck = load_checkpoint(part / CHECKPOINT)
    assert (ck["epoch"], ck["step"]) == (1, stop // 4 * 4)  # the last multiple of 4, inside
    assert ck["in_epoch"]["batch"] == ck["step"] - per_epoch
    launch(part, 0, "resume")
    assert without_timing(read_metrics(part)) == without_timing(read_metrics(full))
    for r in range(2):
        assert read_batches(part, r) == read_batches(full, r)


@pytest.mark.slow
def test_two_gloo_ranks_follow_one_curriculum_on_disjoint_batches(tmp_path):
    run, results = _run_two_ranks(tmp_path, "curriculum=exp:start=0.2")
    assert results[0]["summary"]["complete"] is True
    _, per_rank = batch_sizes(DIGITS_TRAIN, 64, 2, False)
    b0, b1 = read_batches(run, 0), read_batches(run, 1)
    assert len(b0) == len(b1) == per_rank
    stages = json.loads((run / "curriculum.json").read_text())["stages"]
    starts = [s["start"] for s in stages]
    assert len(stages) > 2  # the schedule changes task within the run
    steps = [r for r in read_metrics(run) if r["event"] == "step"]
    for t, (a, b) in enumerate(zip(b0, b1, strict=True)):
        assert len(a["items"]) == len(b["items"]) == 64  # whole batches on both ranks
        assert not set(a["items"]) & set(b["items"])  # disjoint at every step
        stage = max(i for i, s in enumerate(starts) if s <= t)
        assert steps[t]["task"] == stage
    first = {i for b in b0[: starts[1]] + b1[: starts[1]] for i in b["items"]}
    assert len(first) <= stages[0]["pool_items"]  # both ranks drew from the first task's pool


VECTORS_WORKER = r"""
import json, sys
import torch
torch.set_num_threads(1)
import torch.distributed as dist
from graphwalk.train.config import TrainConfig
from graphwalk.train.loop import train
cfg = TrainConfig(dataset="digits", sampler="er:policy=exp3s", epochs=2, batch_size=64,
                  vectors="learned", refresh_every=1, record_batches=True, device="cpu")
train(cfg, sys.argv[1], progress=False)
dist.barrier()
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_gloo_ranks_share_one_table_of_learned_vectors(tmp_path):
    """Each rank sketches its own batches; the refresh merges them (every item trained on in
    the first epoch is in rank 0's table, though it saw half), and the learned walker carries
    its weights to the rebuilt graph on both ranks alike."""
    script = tmp_path / "worker.py"
    script.write_text(VECTORS_WORKER)
    run = tmp_path / "run"
    _launch_two_ranks(script, run)
    refresh = [r for r in read_metrics(run) if r["event"] == "refresh"]
    assert [r["epoch"] for r in refresh] == [0, 1]
    assert refresh[0]["trained_share"] == 0.0
    assert refresh[1]["trained_share"] == 1.0  # both ranks' rows, merged
    b0, b1 = read_batches(run, 0), read_batches(run, 1)
    for a, b in zip(b0, b1, strict=True):
        assert not set(a["items"]) & set(b["items"])  # disjoint at every step, both epochs
    info = json.loads((run / "vectors.json").read_text())
    assert (info["vectors"], info["n_items"], info["step"]) == ("learned", DIGITS_TRAIN, len(b0))
    assert (run / "summary.json").is_file()
