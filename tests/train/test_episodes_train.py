"""``graphwalk train`` with an ``episodes`` sampler and a meta-learner (graphwalk/train/episodic.py):
the run directory, the class split, the held-out evaluation, exact resume, comparisons, two
ranks, and the refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from graphwalk.errors import InputError
from graphwalk.train.checkpoint import CHECKPOINT, load_checkpoint
from graphwalk.train.config import TrainConfig
from tests.train.conftest import assert_error, cli, read_batches, read_metrics, without_timing

EPISODES = {"meta": "protonet", "sampler": "episodes", "episodes": 20, "k_shot": 1, "q_query": 5}
SMALL = {**EPISODES, "class_split": "5/0/5", "test_episodes": 100, "lr": 1e-3}


def _evals(run: Path) -> list[dict]:
    return [r for r in read_metrics(run) if r["event"] == "eval"]


@pytest.fixture(autouse=True)
def _quiet(recwarn):
    """The small runs use fewer than 600 test episodes on purpose (the warning is tested once)."""


def test_a_protonet_run_writes_its_split_and_held_out_accuracy(tmp_path, digits_train):
    run = digits_train(tmp_path / "r", **SMALL, record_batches=True)
    split = json.loads((run / "class-split.json").read_text())
    assert sorted(split["train"] + split["test"]) == list(range(10)) and split["val"] == []
    assert split["source"] == "seeded"
    evals = _evals(run)
    assert len(evals) == 3  # before training and after each of 2 epochs
    for ev in evals:
        assert 0.0 <= ev["test_acc"] <= 1.0 and 0.0 < ev["test_ci95"] < 0.2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 2 * 20 and summary["sampler"] == "episodes"
    assert summary["final_test_ci95"] == evals[-1]["test_ci95"]
    # every batch is one 5-way 1-shot 5-query episode of training classes
    from graphwalk.datasets import load_dataset

    y = load_dataset("digits", split="train").labels["label"]
    for b in read_batches(run):
        classes = y[b["items"]]
        assert len(b["items"]) == 5 * 6
        assert set(classes.tolist()) <= set(split["train"])
        assert len(set(classes[:5].tolist())) == 5  # one support item per class


def test_walk_within_and_unsupervised_episodes_run(tmp_path, digits_train):
    # (within=parent: the 5 training classes fall under 2 derived parents: 2-way episodes)
    ways = {"episodes:walk": 5, "episodes:within=parent": 2, "episodes:level=kmeans": 5}
    for spec, n_way in ways.items():
        settings = {**SMALL, "sampler": spec, "n_way": n_way}
        run = digits_train(tmp_path / spec.replace(":", "_"), **settings, epochs=1)
        assert len(_evals(run)) == 2
    # unsupervised episodes are over the k-means clusters of the run's index
    from graphwalk.index.artifact import GraphIndex

    idx = GraphIndex.load(tmp_path / "episodes_level=kmeans" / "index.gw")
    assert "kmeans" in idx.levels and idx.graph("knn-clusters").level == "kmeans"


def test_maml_and_first_order_maml_train(tmp_path, digits_train):
    for meta in ("maml", "fomaml"):
        run = digits_train(
            tmp_path / meta, **{**SMALL, "meta": meta, "inner_steps": 2, "inner_lr": 0.1}, epochs=1
        )
        ck = load_checkpoint(run / CHECKPOINT)
        assert ck["model"]["head.weight"].shape[0] == 5  # one output per episode label
        assert len(_evals(run)) == 2


def test_resume_in_the_middle_of_an_epoch_equals_the_uninterrupted_run(tmp_path, digits_train):
    settings = {**SMALL, "checkpoint_every": 7, "record_batches": True}
    full = digits_train(tmp_path / "full", **settings)
    part = digits_train(tmp_path / "part", stop=30, **settings)  # inside the second epoch
    digits_train(part, resume=True)
    assert without_timing(read_metrics(part)) == without_timing(read_metrics(full))
    assert read_batches(part) == read_batches(full)
    a, b = load_checkpoint(full / CHECKPOINT)["model"], load_checkpoint(part / CHECKPOINT)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fewer_than_600_test_episodes_is_said(tmp_path, digits_train):
    with pytest.warns(UserWarning, match="at least 600 test episodes"):
        digits_train(tmp_path / "r", **SMALL, epochs=1)


def test_compare_episode_settings_with_paired_seeds(tmp_path, capsys):
    rc, _out, err = cli(
        capsys, "train", "--dataset", "digits", "--meta", "protonet", "--compare",
        "episodes,episodes:walk", "--seeds", "0,1", "--epochs", "1", "--episodes", "10",
        "--q-query", "5", "--class-split", "5/0/5", "--test-episodes", "50", "--device", "cpu",
        "--out", tmp_path / "cmp",
    )  # fmt: skip
    assert rc == 0, err
    summary = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert summary["baseline"] == "episodes"
    assert [c for c in summary["comparisons"]] == ["episodes:walk"]
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "protonet · 1 epochs of 10 episodes · 5-way 1-shot 5-query" in md
    # paired: the same initial model per seed, so the first evaluations agree
    for seed in (0, 1):
        a = _evals(tmp_path / "cmp" / "runs" / "episodes" / f"seed-{seed}")[0]
        b = _evals(tmp_path / "cmp" / "runs" / "episodes_walk" / f"seed-{seed}")[0]
        assert a["test_acc"] == b["test_acc"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--meta", "protonet", "--sampler", "er"], ["--meta trains on episodes", "--sampler"]),
        (["--sampler", "episodes"], ["name it with --meta"]),
        (["--episode-classes", "walk"], ["go with --meta"]),
        (["--meta", "reptile"], ["unknown meta-learner 'reptile'", "protonet"]),
        (["--meta", "protonet", "--class-split", "5/5"], ["class split '5/5'", "A/B/C"]),
        (["--meta", "protonet", "--class-split", "cifar-fs"], ["cifar-fs", "--dataset cifar100"]),
        (["--meta", "protonet", "--loss", "supcon"], ["drop --loss supcon"]),
        (["--meta", "protonet", "--label-noise", "0.2"], ["drop --label-noise"]),
        (["--meta", "protonet", "--n-way", "6", "--class-split", "5/0/5"], ["n_way=6"]),
        (["--meta", "protonet", "--episode-classes", "nearest"], ["choose uniform, walk"]),
        (
            [
                "--meta",
                "protonet",
                "--episode-classes",
                "walk",
                "--episode-level",
                "kmeans",
                "--compare",
                "episodes,episodes:walk",
            ],
            ["write them into each spec"],
        ),
    ],
)
def test_bad_episode_settings_are_one_line(tmp_path, capsys, args, words):
    rc, _out, err = cli(
        capsys, "train", "--dataset", "digits", "--epochs", "1", "--device", "cpu",
        "--out", tmp_path / "r", *args,
    )  # fmt: skip
    assert_error(rc, err, *words)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_settings_without_meta_are_warned_about(tmp_path, capsys):
    from graphwalk.train.config import unused_settings

    cfg = TrainConfig(dataset="digits", sampler="random")
    assert unused_settings(cfg, {"n_way": 3})["n_way"] == "no --meta"
    cfg = TrainConfig(dataset="digits", sampler="episodes", meta="protonet")
    why = unused_settings(cfg, {"batch_size": 32, "inner_lr": 0.1})
    assert why == {"batch_size": "an episode is the batch", "inner_lr": "--meta protonet"}


def test_the_cifar_fs_split_maps_class_names_to_cifar100_labels():
    from graphwalk.tasks.splits import CIFAR100_CLASSES, cifar_fs_split
    from graphwalk.train.episodic import run_class_split

    sp = cifar_fs_split(np.arange(100))
    assert (sp.train.size, sp.val.size, sp.test.size) == (64, 16, 20)
    assert CIFAR100_CLASSES[int(sp.test[0])] == "baby"
    cfg = TrainConfig(
        dataset="cifar100", sampler="episodes", meta="protonet", class_split="cifar-fs"
    )
    got = run_class_split(cfg, np.arange(100), np.arange(100))
    assert got.to_dict() == sp.to_dict()
    with pytest.raises(InputError, match="CIFAR-100's 100 fine classes"):
        cifar_fs_split(np.arange(20), level="superclass")


@pytest.mark.slow
def test_two_ranks_share_each_epoch_s_episodes(tmp_path):
    from tests.train.test_distributed_train import _launch_two_ranks

    script = tmp_path / "worker.py"
    script.write_text(
        "import json, sys, torch\n"
        "torch.set_num_threads(1)\n"
        "import torch.distributed as dist\n"
        "from graphwalk.train.config import TrainConfig\n"
        "from graphwalk.train.loop import train\n"
        f"cfg = TrainConfig(dataset='digits', device='cpu', epochs=1, record_batches=True, **{SMALL!r})\n"
        "train(cfg, sys.argv[1], progress=False)\n"
        "dist.barrier(); dist.destroy_process_group()\n"
    )
    _launch_two_ranks(script, tmp_path / "run")
    run = tmp_path / "run"
    a, b = read_batches(run, 0), read_batches(run, 1)
    assert len(a) == len(b) == 10
    assert not {tuple(x["items"]) for x in a} & {tuple(x["items"]) for x in b}
    assert os.path.exists(run / CHECKPOINT)


def test_without_a_class_split_train_and_test_use_every_class(tmp_path, digits_train):
    """The default (--class-split none): episodes of all 10 classes, tested on the test split's
    items of all 10 (held-out items, not held-out classes; CACTUs' protocol)."""
    settings = {k: v for k, v in SMALL.items() if k != "class_split"}
    run = digits_train(tmp_path / "r", **settings, epochs=1, record_batches=True)
    split = json.loads((run / "class-split.json").read_text())
    assert split["source"] == "none" and split["train"] == split["test"] == list(range(10))
    from graphwalk.datasets import load_dataset

    y = load_dataset("digits", split="train").labels["label"]
    seen = {int(c) for b in read_batches(run) for c in y[b["items"]]}
    assert seen == set(range(10))
