"""The training loop (graphwalk.train.loop.train) on digits: the run directory, per-step logging,
epochs that use every item once, exact resume, activation graphs, paired seeds, label noise."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from graphwalk.errors import InputError
from graphwalk.train.config import load_config
from graphwalk.train.data import flip_labels
from graphwalk.train.loop import CHECKPOINT, load_checkpoint
from tests.train.conftest import (
    DIGITS_STEPS,
    DIGITS_TRAIN,
    check_every_item_once_per_epoch,
    read_batches,
    read_metrics,
    without_timing,
)

SAMPLERS = ("random", "er", "knn")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits_train):
    """Two-epoch digits runs with seed 0, one per sampler, batches recorded."""
    root = tmp_path_factory.mktemp("runs")
    return {s: digits_train(root / s, sampler=s, record_batches=True) for s in SAMPLERS}


def _events(records, kind):
    return [r for r in records if r["event"] == kind]


def _params(run):
    return load_checkpoint(run / CHECKPOINT)["model"]


def _same_params(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- one run


def test_run_directory_holds_every_file(runs):
    run = runs["er"]
    for name in (
        "config.json",
        "metrics.jsonl",
        "metrics.csv",
        "steps.csv",
        "summary.json",
        CHECKPOINT,
        "batches-rank0.jsonl",
    ):
        assert (run / name).is_file(), name
    assert (run / "index.gw" / "manifest.json").is_file()  # the index built for the run
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert not (runs["random"] / "index.gw").exists()  # shuffling needs no index
    cfg = load_config(run)
    assert cfg == cfg.resolved()
    assert (cfg.dataset, cfg.sampler, cfg.model, cfg.epochs, cfg.seed) == (
        "digits",
        "er",
        "mlp",
        2,
        0,
    )


def test_metrics_jsonl_has_steps_and_evals(runs):
    for sampler, run in runs.items():
        recs = read_metrics(run)
        steps, evals = _events(recs, "step"), _events(recs, "eval")
        assert len(steps) + len(evals) == len(recs)
        assert [r["step"] for r in steps] == list(range(1, 2 * DIGITS_STEPS + 1))
        assert [r["epoch"] for r in steps] == [0] * DIGITS_STEPS + [1] * DIGITS_STEPS
        # an evaluation before training and one after each epoch
        assert [(e["epoch"], e["step"]) for e in evals] == [
            (0, 0),
            (1, DIGITS_STEPS),
            (2, 2 * DIGITS_STEPS),
        ]
        assert evals[0]["train_loss"] is None
        for e in evals:
            assert 0.0 <= e["test_acc"] <= 1.0
            assert e["test_loss"] > 0
        for e in evals[1:]:
            assert e["train_loss"] > 0
        assert all(s["sampler_us"] > 0 for s in steps), sampler
        assert all(0.0 <= s["homophily"] <= 1.0 for s in steps), sampler
        assert all(s["lr"] >= 0 and math.isfinite(s["loss"]) for s in steps)
        # the cosine schedule decays over the run
        assert steps[0]["lr"] > steps[-1]["lr"]


def test_summary_and_csv_tables_agree_with_metrics(runs):
    run = runs["random"]
    recs = read_metrics(run)
    evals, steps = _events(recs, "eval"), _events(recs, "step")
    s = json.loads((run / "summary.json").read_text())
    assert s["complete"] is True
    assert s["steps"] == 2 * DIGITS_STEPS
    assert s["final_test_acc"] == evals[-1]["test_acc"]
    assert s["best_test_acc"] == max(e["test_acc"] for e in evals)
    assert s["homophily_mean"] == pytest.approx(np.mean([r["homophily"] for r in steps]), abs=1e-4)
    assert s["sampler_us_mean"] > 0
    # shuffling learns digits in two epochs
    assert s["final_test_acc"] > 0.8
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [e["step"] for e in evals]
    assert [float(r["test_acc"]) for r in rows] == pytest.approx([e["test_acc"] for e in evals])
    with open(run / "steps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [r["step"] for r in steps]
    assert [float(r["loss"]) for r in rows] == pytest.approx([r["loss"] for r in steps])


def test_tensorboard_mirrors_the_metrics(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(runs["er"] / "tb"))
    ea.Reload()
    tags = ea.Tags()["scalars"]
    for tag in ("step/loss", "step/sampler_us", "step/homophily", "eval/test_acc"):
        assert tag in tags
    assert [e.step for e in ea.Scalars("step/loss")] == list(range(1, 2 * DIGITS_STEPS + 1))
    assert [e.step for e in ea.Scalars("eval/test_acc")] == [0, DIGITS_STEPS, 2 * DIGITS_STEPS]


def test_walks_make_more_homophilous_batches_than_shuffling(runs):
    hom = {
        s: float(np.mean([r["homophily"] for r in _events(read_metrics(run), "step")]))
        for s, run in runs.items()
    }
    # random batches of ten balanced classes: about sum p_c^2 = 0.1
    assert hom["random"] == pytest.approx(0.1, abs=0.03)
    assert hom["er"] > hom["random"] + 0.05
    assert hom["knn"] > hom["random"] + 0.3  # digits' kNN graph is strongly homophilous


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_item_once_per_epoch(runs, sampler):
    batches = read_batches(runs[sampler])
    check_every_item_once_per_epoch(batches, epochs=2)
    # a new order every epoch
    first = [i for b in batches if b["epoch"] == 0 for i in b["items"]]
    second = [i for b in batches if b["epoch"] == 1 for i in b["items"]]
    assert first != second


def test_batches_are_what_was_logged(runs):
    """The homophily logged per step is that of the recorded batch (clean labels)."""
    from graphwalk.datasets import load_dataset

    y = load_dataset("digits", split="train").labels["label"]
    batches = read_batches(runs["er"])
    steps = _events(read_metrics(runs["er"]), "step")
    for b, s in zip(batches, steps, strict=True):
        c = np.bincount(y[b["items"]], minlength=10)
        n = len(b["items"])
        assert s["homophily"] == pytest.approx((c * (c - 1)).sum() / (n * (n - 1)), abs=1e-5)


# ----------------------------------------------------------------------------- resume


def _interrupted_and_resumed(digits_train, root, stop, **settings):
    full = digits_train(root / "full", **settings)
    part = digits_train(root / "part", stop=stop, **settings)
    return full, part


@pytest.mark.parametrize("sampler", ["random", "er"])
def test_resume_is_exact(tmp_path, digits_train, sampler):
    full, part = _interrupted_and_resumed(digits_train, tmp_path, 30, sampler=sampler, epochs=2)
    # stopped mid-epoch 2: the checkpoint is the first epoch's, and it loads
    assert not (part / "summary.json").exists()
    ck = load_checkpoint(part / CHECKPOINT)
    assert (ck["epoch"], ck["step"]) == (1, DIGITS_STEPS)
    # what the stopped run logged so far is there (written as the run went)
    assert _events(read_metrics(part), "step")[-1]["step"] == 30
    assert (part / "steps.csv").is_file()
    digits_train(part, resume=True)
    assert without_timing(read_metrics(part)) == without_timing(read_metrics(full))
    assert _same_params(_params(part), _params(full))
    s_full = json.loads((full / "summary.json").read_text())
    s_part = json.loads((part / "summary.json").read_text())
    assert s_part["complete"] and s_part["steps"] == s_full["steps"]
    assert s_part["final_test_acc"] == s_full["final_test_acc"]


def test_resume_twice_across_epochs(tmp_path, digits_train):
    """Stopped in epoch 2, resumed and stopped again in epoch 3, resumed to the end."""
    full = digits_train(tmp_path / "full", sampler="er:mix=0.25", epochs=3)
    part = digits_train(tmp_path / "part", stop=30, sampler="er:mix=0.25", epochs=3)
    digits_train(part, stop=50, resume=True)
    assert load_checkpoint(part / CHECKPOINT)["epoch"] == 2
    digits_train(part, resume=True)
    assert without_timing(read_metrics(part)) == without_timing(read_metrics(full))
    assert _same_params(_params(part), _params(full))


def test_resumed_run_records_each_batch_once(tmp_path, digits_train):
    """batches-rank0.jsonl of a resumed run: the batches of the interrupted epoch that were
    redone appear once, as metrics.jsonl's steps do."""
    part = digits_train(tmp_path / "part", stop=30, sampler="er", record_batches=True)
    digits_train(part, resume=True)
    check_every_item_once_per_epoch(read_batches(part), epochs=2)


def test_resumed_run_tensorboard_has_every_step(tmp_path, digits_train):
    """The resumed run's TensorBoard log keeps what came before the checkpoint (the eval at the
    checkpoint's step included) and replaces what came after."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    part = digits_train(tmp_path / "part", stop=30, sampler="random")
    digits_train(part, resume=True)
    ea = EventAccumulator(str(part / "tb"))
    ea.Reload()
    assert sorted(e.step for e in ea.Scalars("step/loss")) == list(range(1, 2 * DIGITS_STEPS + 1))
    assert sorted(e.step for e in ea.Scalars("eval/test_acc")) == [
        0,
        DIGITS_STEPS,
        2 * DIGITS_STEPS,
    ]


def test_activation_graphs_refresh_and_resume_exactly(tmp_path, digits_train):
    settings = {"sampler": "knn", "layers": ["body.act1"], "refresh_every": 1, "epochs": 3}
    full, part = _interrupted_and_resumed(digits_train, tmp_path, 30, **settings)
    recs = read_metrics(full)
    refresh = _events(recs, "refresh")
    # the graph of the initial model, then one after each epoch but the last
    assert [(r["epoch"], r["step"]) for r in refresh] == [
        (0, 0),
        (1, DIGITS_STEPS),
        (2, 2 * DIGITS_STEPS),
    ]
    for r in refresh:
        assert r["seconds"] > 0
        assert r["seconds"] == pytest.approx(r["activations_s"] + r["build_s"], rel=1e-6)
        g = r["graphs"]["knn"]
        assert 0.0 <= g["homophily"] <= 1.0
        assert g["lift"] > 1.0  # even an untrained net's first layer groups digits
    assert all(r["epoch_seconds"] > 0 for r in refresh[1:])
    # the graphs follow the model: the homophily of the kNN graph changes as it learns
    assert len({r["graphs"]["knn"]["homophily"] for r in refresh}) > 1
    s = json.loads((full / "summary.json").read_text())
    assert s["refreshes"] == 3 and s["refresh_s_mean"] > 0
    # only the latest index is kept
    assert sorted(p.name for p in full.glob("index*.gw")) == ["index-epoch-002.gw"]
    man = json.loads((full / "index-epoch-002.gw" / "manifest.json").read_text())
    assert "body.act1" in json.dumps(man)
    # the interrupted run's checkpoint (after the first refresh) loads, and resuming is exact
    ck = load_checkpoint(part / CHECKPOINT)
    assert ck["index"] == "index-epoch-001.gw"
    assert (part / ck["index"] / "manifest.json").is_file()
    digits_train(part, resume=True)
    assert without_timing(read_metrics(part)) == without_timing(recs)
    assert _same_params(_params(part), _params(full))


def test_layers_naming_a_missing_module(tmp_path, digits_train):
    with pytest.raises(InputError, match=r"no layer 'body\.nope'.*body\.act1"):
        digits_train(tmp_path / "r", sampler="knn", layers=["body.nope"], epochs=1)


def test_resume_without_a_checkpoint(tmp_path, digits_train):
    part = digits_train(tmp_path / "r", stop=5, sampler="random")  # stopped in the first epoch
    assert not part.exists()  # nothing kept: the same command runs again
    with pytest.raises(InputError, match="--overwrite"):
        digits_train(part, resume=True)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda p: p.write_bytes(b"not a checkpoint at all"), "corrupt or truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "corrupt or truncated"),
        (lambda p: torch.save({"model": {}}, p), "not a graphwalk training checkpoint"),
    ],
)
def test_damaged_checkpoint_is_one_input_error(runs, tmp_path, damage, match):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(runs["random"], run)
    damage(run / CHECKPOINT)
    with pytest.raises(InputError, match=match):
        load_checkpoint(run / CHECKPOINT)


# ----------------------------------------------------------------------------- seeds, noise, supcon


def _step0(run):
    return _events(read_metrics(run), "eval")[0]


def test_seeds_are_paired_across_samplers(runs, tmp_path, digits_train):
    # one seed: the same initial model whatever the sampler
    base = _step0(runs["random"])
    for s in ("er", "knn"):
        assert _step0(runs[s])["test_loss"] == base["test_loss"]
        assert _step0(runs[s])["test_acc"] == base["test_acc"]
    # another seed: another initial model, again shared by its samplers
    other = digits_train(tmp_path / "seed1", sampler="er", seed=1, epochs=1)
    assert _step0(other)["test_loss"] != base["test_loss"]
    again = digits_train(tmp_path / "seed1-random", sampler="random", seed=1, epochs=1)
    assert _step0(again)["test_loss"] == _step0(other)["test_loss"]


def test_same_seed_same_run(runs, tmp_path, digits_train):
    again = digits_train(tmp_path / "again", sampler="er", record_batches=True)
    assert without_timing(read_metrics(again)) == without_timing(read_metrics(runs["er"]))
    assert read_batches(again) == read_batches(runs["er"])


@pytest.mark.parametrize(
    ("share", "n", "classes"), [(0.1, 1437, 10), (0.37, 1000, 3), (1.0, 60, 3)]
)
def test_flip_labels(share, n, classes):
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, size=n).astype(np.int64)
    y0 = y.copy()
    f = flip_labels(y, share, classes, seed=3)
    np.testing.assert_array_equal(y, y0)  # the input is left alone
    changed = f != y
    assert changed.sum() == round(share * n)  # every flipped label went to another class
    assert f.min() >= 0 and f.max() < classes
    np.testing.assert_array_equal(flip_labels(y, share, classes, seed=3), f)
    g = flip_labels(y, share, classes, seed=4)
    assert not np.array_equal(g, f)


def test_flip_labels_spreads_over_other_classes():
    y = np.zeros(3000, dtype=np.int64)
    f = flip_labels(y, 0.5, 10, seed=0)
    counts = np.bincount(f, minlength=10)
    assert counts[0] == 1500
    assert counts[1:].min() > 100  # every other class receives some


def test_flip_labels_without_noise_is_a_copy():
    y = np.arange(10, dtype=np.int64) % 3
    f = flip_labels(y, 0.0, 3, seed=0)
    np.testing.assert_array_equal(f, y)
    assert f is not y
    with pytest.raises(InputError):
        flip_labels(np.zeros(10, dtype=np.int64), 0.5, 1, seed=0)


def test_label_noise_run_logs_homophily_of_clean_labels(runs, tmp_path, digits_train):
    noisy = digits_train(tmp_path / "noisy", sampler="random", label_noise=0.3, epochs=1)
    steps = _events(read_metrics(noisy), "step")
    clean = _events(read_metrics(runs["random"]), "step")[: len(steps)]
    # same seed, same batches: the homophily (of the true labels) is the same
    assert [s["homophily"] for s in steps] == [s["homophily"] for s in clean]
    # but the model saw other labels: the losses differ
    assert [s["loss"] for s in steps] != [s["loss"] for s in clean]
    assert load_config(noisy).label_noise == 0.3


def test_supcon_run_is_evaluated_by_knn(tmp_path, digits_train):
    run = digits_train(tmp_path / "supcon", sampler="random", loss="supcon", epochs=1)
    recs = read_metrics(run)
    evals = _events(recs, "eval")
    assert [e["step"] for e in evals] == [0, DIGITS_STEPS]
    for e in evals:
        assert e["test_loss"] is None
        assert 0.0 <= e["test_acc"] <= 1.0
    assert evals[-1]["test_acc"] > 0.5  # kNN on the body's features of digits
    assert all(math.isfinite(s["loss"]) for s in _events(recs, "step"))
    s = json.loads((run / "summary.json").read_text())
    assert s["final_test_acc"] == evals[-1]["test_acc"]


def test_eval_every(tmp_path, digits_train):
    run = digits_train(tmp_path / "ev", sampler="random", epochs=1, eval_every=10)
    evals = _events(read_metrics(run), "eval")
    assert [e["step"] for e in evals] == [0, 10, 20, DIGITS_STEPS]


def test_batch_larger_than_the_data(tmp_path, digits_train):
    with pytest.raises(InputError, match="batch_size"):
        digits_train(tmp_path / "big", sampler="random", batch_size=DIGITS_TRAIN + 1)
