"""``graphwalk train`` in process: runs, bad input (one line, exit status 2, no traceback),
Ctrl-C and --resume, and --compare."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import graphwalk as gw
import graphwalk.train.loop as loop
from graphwalk.cli import main
from graphwalk.train.config import load_config
from graphwalk.train.loop import CHECKPOINT, load_checkpoint
from tests.conftest import make_blobs
from tests.train.conftest import (
    DIGITS_STEPS,
    assert_error,
    cli,
    read_metrics,
    without_timing,
)

BASE = ["train", "--dataset", "digits", "--device", "cpu", "--no-progress", "--epochs", "1"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-epoch digits run made by the command line."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main([*BASE, "--out", str(out)]) == 0
    return out


@pytest.fixture
def copy_of(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    return run


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    """Indexes that do not fit digits' train split."""
    root = tmp_path_factory.mktemp("indexes")
    assert (
        main(["index", "--dataset", "mnist1d", "--clusters", "10", "--out", str(root / "m.gw")])
        == 0
    )
    assert (
        main(
            [
                "index",
                "--dataset",
                "digits",
                "--split",
                "test",
                "--clusters",
                "5",
                "--out",
                str(root / "test.gw"),
            ]
        )
        == 0
    )
    x, y = make_blobs(n=500, dim=8)
    gw.build_index(x, labels=y, clusters=5, graphs=["er"], out=root / "blobs.gw")
    return {"mnist1d": root / "m.gw", "test": root / "test.gw", "blobs": root / "blobs.gw"}


# ----------------------------------------------------------------------------- a run


def test_run_prints_where_the_files_are(tmp_path, capsys):
    out = tmp_path / "run"
    rc, stdout, _ = cli(capsys, *BASE, "--sampler", "er", "--out", out)
    assert rc == 0
    assert "final test accuracy" in stdout
    assert str(out) in stdout
    s = json.loads((out / "summary.json").read_text())
    assert s["complete"] and s["steps"] == DIGITS_STEPS and s["sampler"] == "er"
    cfg = load_config(out)
    assert (cfg.dataset, cfg.sampler, cfg.epochs, cfg.device) == ("digits", "er", 1, "cpu")


def test_json_summary_and_flags_reach_the_config(tmp_path, capsys):
    out = tmp_path / "run"
    rc, stdout, _ = cli(
        capsys,
        *BASE,
        "--sampler",
        "er:mix=0.1:k=2",
        "--batch-size",
        "100",
        "--seed",
        "3",
        "--lr",
        "0.005",
        "--label-noise",
        "0.1",
        "--schedule",
        "constant",
        "--out",
        out,
        "--json",
    )
    assert rc == 0
    s = json.loads(stdout)
    assert s["steps"] == 15  # ceil(1437 / 100)
    cfg = load_config(out)
    assert (cfg.sampler, cfg.batch_size, cfg.seed, cfg.lr, cfg.label_noise, cfg.schedule) == (
        "er:k=2:mix=0.1",
        100,
        3,
        0.005,
        0.1,
        "constant",
    )
    assert {r["lr"] for r in read_metrics(out) if r["event"] == "step"} == {0.005}


def test_config_file_reproduces_a_run(finished, tmp_path, capsys):
    out = tmp_path / "again"
    rc, _, _ = cli(capsys, "train", "--config", finished / "config.json", "--out", out)
    assert rc == 0
    assert load_config(out) == load_config(finished)
    assert without_timing(read_metrics(out)) == without_timing(read_metrics(finished))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--dataset", "nope"],
            ["'nope'", "mnist1d", "digits", "cifar10", "cifar100", "mnist"],
        ),
        (["--model", "nope"], ["'nope'", "mlp", "cnn1d", "cnn", "resnet18"]),
        (["--model", "cnn1d"], ["cnn1d", "mlp", "cnn"]),  # does not suit digits
        (["--loss", "nope"], ["'nope'", "ce", "supcon"]),
        (["--optimizer", "nope"], ["'nope'", "adam", "sgd"]),
        (["--device", "tpu"], ["'tpu'", "auto", "cpu", "cuda"]),
        (["--schedule", "nope"], ["'nope'", "cosine", "constant"]),
        (["--sampler", "nope"], ["'nope'", "random", "er", "knn"]),
        (["--sampler", "er:mix=2"], ["'er:mix=2'", "[0, 1]"]),
        (["--sampler", "er:bogus=1"], ["'er:bogus=1'", "unknown option", "mix"]),
        (["--sampler", "random:mix=0.1"], ["'random:mix=0.1'", "no options"]),
        (["--sampler", "er:k=x"], ["'er:k=x'", "integer"]),
        (["--sampler", "knn", "--layers", "body.nope"], ["'body.nope'", "body.act1"]),
        (["--layers", "body.act1"], ["--sampler knn"]),
        (["--refresh-every", "1", "--sampler", "knn"], ["--layers", "--vectors grad|learned"]),
        (["--seeds", "0,1"], ["--compare"]),
        (["--compare", "random,er", "--sampler", "er"], ["drop --sampler"]),
        (["--compare", "random,er:mix=0.1,er:mix=0.1"], ["'er:mix=0.1'", "twice"]),
        (["--compare", "random,er:mix=9"], ["'er:mix=9'"]),
        (["--compare", "random,er", "--seeds", "0,0"], ["distinct"]),
        (["--compare", "random,er", "--seeds", "a,b"], ["integers", "'a,b'"]),
        (["--compare", "random,er", "--seed", "1"], ["drop --seed"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, args, words):
    rc, _, err = cli(capsys, *BASE, *args, "--out", tmp_path / "run")
    assert_error(rc, err, *words)


def test_out_is_required(capsys):
    rc, _, err = cli(capsys, *BASE)
    assert_error(rc, err, "--out")


@pytest.mark.parametrize(
    ("bad", "fixed"),
    [
        (["--sampler", "nope"], ["--sampler", "er"]),
        (
            ["--sampler", "knn", "--layers", "body.nope"],
            ["--sampler", "knn", "--layers", "body.act1"],
        ),
        (["--sampler", "knn-clusters"], ["--sampler", "knn"]),
    ],
)
def test_a_refused_run_leaves_nothing_in_the_way(tmp_path, capsys, bad, fixed):
    """After an error that names the fix, the fixed command works on the same --out (the refused
    run must not leave a config.json that makes it 'a different run')."""
    out = tmp_path / "run"
    rc, _, err = cli(capsys, *BASE, *bad, "--out", out)
    assert_error(rc, err)
    rc, _, err = cli(capsys, *BASE, *fixed, "--out", out)
    assert rc == 0, err


def test_index_for_another_dataset(indexes, tmp_path, capsys):
    rc, _, err = cli(
        capsys, *BASE, "--sampler", "er", "--index", indexes["mnist1d"], "--out", tmp_path / "r"
    )
    assert_error(rc, err, str(indexes["mnist1d"]), "'mnist1d'", "graphwalk index --dataset digits")


def test_index_for_the_test_split(indexes, tmp_path, capsys):
    rc, _, err = cli(
        capsys, *BASE, "--sampler", "er", "--index", indexes["test"], "--out", tmp_path / "r"
    )
    assert_error(rc, err, "test split", "graphwalk index --dataset digits")


def test_index_with_the_wrong_item_count(indexes, tmp_path, capsys):
    rc, _, err = cli(
        capsys, *BASE, "--sampler", "er", "--index", indexes["blobs"], "--out", tmp_path / "r"
    )
    assert_error(rc, err, "500 items", "1,437", "graphwalk index --dataset digits")


def test_index_that_does_not_exist(tmp_path, capsys):
    rc, _, err = cli(
        capsys, *BASE, "--sampler", "er", "--index", tmp_path / "none.gw", "--out", tmp_path / "r"
    )
    assert_error(rc, err, "none.gw")


def test_a_wrong_index_leaves_nothing_in_the_way(indexes, tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = cli(capsys, *BASE, "--sampler", "er", "--index", indexes["blobs"], "--out", out)
    assert_error(rc, err)
    # the message's second fix: leave --index out
    rc, _, err = cli(capsys, *BASE, "--sampler", "er", "--out", out)
    assert rc == 0, err


def test_given_index_is_used(tmp_path, capsys):
    idx = tmp_path / "digits.gw"
    assert main(["index", "--dataset", "digits", "--clusters", "12", "--out", str(idx)]) == 0
    out = tmp_path / "run"
    rc, _, err = cli(capsys, *BASE, "--sampler", "er", "--index", idx, "--out", out)
    assert rc == 0, err
    assert not (out / "index.gw").exists()
    assert load_config(out).index == str(idx)


def test_missing_data_dir_without_download(tmp_path, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    rc, _, err = cli(
        capsys,
        "train",
        "--dataset",
        "cifar10",
        "--data-dir",
        empty,
        "--no-progress",
        "--out",
        tmp_path / "run",
    )
    assert_error(rc, err, "cifar10", str(empty), "--download")
    assert list(empty.iterdir()) == []  # nothing downloaded or created


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda p: p.write_bytes(b"\x00garbage" * 100), ["corrupt or truncated", "--overwrite"]),
        (
            lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
            ["corrupt or truncated", "--overwrite"],
        ),
        (lambda p: p.write_bytes(b""), ["corrupt or truncated"]),
        (lambda p: torch.save({"step": 3}, p), ["not a graphwalk training checkpoint"]),
    ],
)
def test_damaged_checkpoint_on_resume(copy_of, capsys, damage, words):
    damage(copy_of / CHECKPOINT)
    rc, _, err = cli(capsys, "train", "--resume", copy_of, "--no-progress")
    assert_error(rc, err, str(copy_of / CHECKPOINT), *words)
    # the fix it names: start the run again with --overwrite (from the run's own config)
    rc, _, err = cli(
        capsys, "train", "--config", copy_of / "config.json", "--out", copy_of, "--overwrite"
    )
    assert rc == 0, err
    load_checkpoint(copy_of / CHECKPOINT)


def test_resume_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    rc, _, err = cli(capsys, "train", "--resume", tmp_path / "nothing")
    assert_error(rc, err, "nothing")
    (tmp_path / "empty").mkdir()
    rc, _, err = cli(capsys, "train", "--resume", tmp_path / "empty")
    assert_error(rc, err, CHECKPOINT)


def test_run_dir_holding_a_different_run(copy_of, capsys):
    before = (copy_of / "config.json").read_text()
    rc, _, err = cli(capsys, *BASE, "--seed", "1", "--out", copy_of)
    assert_error(rc, err, "different run", "seed", "--overwrite")
    assert (copy_of / "config.json").read_text() == before  # left alone
    rc, _, err = cli(capsys, *BASE, "--seed", "1", "--out", copy_of, "--overwrite")
    assert rc == 0, err
    assert load_config(copy_of).seed == 1
    assert json.loads((copy_of / "summary.json").read_text())["seed"] == 1


def test_run_dir_holding_the_same_run(copy_of, capsys):
    rc, _, err = cli(capsys, *BASE, "--out", copy_of)
    assert_error(rc, err, "already holds this run", f"--resume {copy_of}")


def test_run_dir_that_is_not_a_run_is_never_replaced(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        rc, _, err = cli(capsys, *BASE, "--out", out, *extra)
        assert_error(rc, err, "not a graphwalk run")
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--epochs", "3"], ["drop --epochs"]),
        (["--sampler", "er", "--lr", "0.1"], ["--lr", "--sampler"]),
        (["--compare", "random,er"], ["drop"]),
    ],
)
def test_resume_with_conflicting_flags(copy_of, capsys, args, words):
    rc, _, err = cli(capsys, "train", "--resume", copy_of, *args)
    assert_error(rc, err, *words)


def test_resume_with_another_out(copy_of, tmp_path, capsys):
    rc, _, err = cli(capsys, "train", "--resume", copy_of, "--out", tmp_path / "other")
    assert_error(rc, err, "drop --out")


def test_resume_of_a_finished_run_changes_nothing(copy_of, capsys):
    before = read_metrics(copy_of)
    rc, _, err = cli(capsys, "train", "--resume", copy_of, "--device", "cpu", "--no-progress")
    assert rc == 0, err
    assert read_metrics(copy_of) == before


# ----------------------------------------------------------------------------- Ctrl-C


def _stop_after(monkeypatch, steps):
    """Make the command's training stop with KeyboardInterrupt after ``steps`` steps, as Ctrl-C
    would (resumed runs are left to finish)."""
    real = loop.train

    def stopping(config, out, **kw):
        if not kw.get("resume"):
            kw["stop_after_steps"] = steps
        return real(config, out, **kw)

    monkeypatch.setattr(loop, "train", stopping)


def test_ctrl_c_mid_epoch_then_resume(tmp_path, capsys, monkeypatch, digits_train):
    out = tmp_path / "run"
    args = [*BASE[:-1], "2", "--out", out]
    _stop_after(monkeypatch, 30)
    rc, _, err = cli(capsys, *args)
    assert rc == 130
    assert "Traceback" not in err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("graphwalk train:")
    assert f"--resume {out}" in lines[0]
    ck = load_checkpoint(out / CHECKPOINT)  # the last complete epoch's
    assert (ck["epoch"], ck["step"]) == (1, DIGITS_STEPS)
    monkeypatch.undo()
    rc, _, err = cli(capsys, "train", "--resume", out, "--no-progress")
    assert rc == 0, err
    full = digits_train(tmp_path / "full", sampler="random", epochs=2)
    assert without_timing(read_metrics(out)) == without_timing(read_metrics(full))


def test_ctrl_c_in_the_first_epoch_does_not_promise_a_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    _stop_after(monkeypatch, 5)
    rc, _, err = cli(capsys, *BASE, "--out", out)
    assert rc == 130
    assert "Traceback" not in err
    assert len(err.strip("\n").split("\n")) == 1, err
    assert not (out / CHECKPOINT).exists()
    # no epoch finished: nothing is kept, --resume is not offered, the same command runs again
    assert "--resume" not in err
    assert "run the command again" in err
    assert not out.exists()
    monkeypatch.undo()
    rc, _, err = cli(capsys, *BASE, "--out", out)
    assert rc == 0, err


# ----------------------------------------------------------------------------- --compare


def _step0(run):
    return next(r for r in read_metrics(run) if r["event"] == "eval")


@pytest.mark.slow
def test_compare_writes_the_table_reuses_runs_and_pairs_seeds(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = [*BASE, "--compare", "random,er,knn", "--seeds", "0,1", "--out", out]
    rc, stdout, err = cli(capsys, *args)
    assert rc == 0, err
    for s in ("random", "er", "knn"):
        assert f"| {s} |" in stdout
    for name in ("compare.md", "compare.json", "compare-accuracy.png", "compare-homophily.png"):
        assert (out / name).is_file(), name
        assert str(out / name) in stdout
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "random" in (out / "compare.md").read_text()
    json.loads((out / "compare.json").read_text())
    runs = sorted(out.glob("runs/*/seed-*/summary.json"))
    assert len(runs) == 6
    assert all(json.loads(p.read_text())["complete"] for p in runs)
    # one index per seed, shared by the walks of that seed
    for sd in (0, 1):
        idx = out / f"index-seed{sd}.gw"
        assert (idx / "manifest.json").is_file()
        for s in ("er", "knn"):
            run = out / "runs" / s / f"seed-{sd}"
            assert load_config(run).index == str(idx)
            assert not (run / "index.gw").exists()
        assert load_config(out / "runs" / "random" / f"seed-{sd}").index is None
    # paired seeds: the same initial model across samplers of a seed, another across seeds
    for sd in (0, 1):
        losses = {
            _step0(out / "runs" / s / f"seed-{sd}")["test_loss"] for s in ("random", "er", "knn")
        }
        assert len(losses) == 1
    assert (
        _step0(out / "runs/random/seed-0")["test_loss"]
        != _step0(out / "runs/random/seed-1")["test_loss"]
    )
    # the same command again reuses the finished runs
    summary = out / "runs" / "er" / "seed-1" / "summary.json"
    mtime = summary.stat().st_mtime_ns
    rc, stdout2, err = cli(capsys, *args)
    assert rc == 0, err
    assert summary.stat().st_mtime_ns == mtime  # not trained again (no timed assertion: noisy)
    assert err.count("finished earlier, kept") == 6
    assert [ln for ln in stdout2.splitlines() if ln.startswith("| ")] == [
        ln for ln in stdout.splitlines() if ln.startswith("| ")
    ]
    # and so does --resume DIR
    rc, _, err = cli(capsys, "train", "--resume", out, "--no-progress")
    assert rc == 0, err
    assert summary.stat().st_mtime_ns == mtime
    # another comparison in the same directory is refused
    rc, _, err = cli(capsys, *BASE, "--compare", "random,er", "--seeds", "0,1", "--out", out)
    assert_error(rc, err, "different comparison", "--overwrite")


@pytest.mark.slow
def test_compare_interrupted_continues_where_it_stopped(
    tmp_path, capsys, monkeypatch, digits_train
):
    out = tmp_path / "cmp"
    args = [*BASE[:-1], "2", "--compare", "random,er", "--seeds", "0", "--out", out]
    real = loop.train
    calls = []

    def stop_er(config, run, **kw):  # Ctrl-C in the second epoch of the er run
        calls.append(config.sampler)
        if config.sampler == "er" and not kw.get("resume"):
            kw["stop_after_steps"] = 30
        return real(config, run, **kw)

    monkeypatch.setattr(loop, "train", stop_er)
    monkeypatch.setattr("graphwalk.train.compare.train", stop_er)
    rc, _, err = cli(capsys, *args)
    assert rc == 130
    assert "Traceback" not in err
    assert f"--resume {out}" in err.strip().split("\n")[-1]
    er = out / "runs" / "er" / "seed-0"
    assert load_checkpoint(er / CHECKPOINT)["epoch"] == 1
    random_summary = out / "runs" / "random" / "seed-0" / "summary.json"
    mtime = random_summary.stat().st_mtime_ns
    calls.clear()
    rc, _, err = cli(capsys, *args)
    assert rc == 0, err
    assert calls == ["er"]  # random was finished; er resumed
    assert random_summary.stat().st_mtime_ns == mtime
    # the resumed er run equals one that was never stopped (same seed, same shared index)
    full = digits_train(
        tmp_path / "full", sampler="er", epochs=2, index=str(out / "index-seed0.gw")
    )
    assert without_timing(read_metrics(er)) == without_timing(read_metrics(full))
    np.testing.assert_equal(
        json.loads((er / "summary.json").read_text())["final_test_acc"],
        json.loads((full / "summary.json").read_text())["final_test_acc"],
    )


def test_compare_into_a_directory_that_is_not_a_comparison(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    rc, _, err = cli(capsys, *BASE, "--compare", "random,er", "--seeds", "0", "--out", out)
    assert_error(rc, err, "not a graphwalk comparison")
    assert (out / "notes.txt").read_text() == "keep me"


def test_compare_checks_every_spec_before_running(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc, _, err = cli(capsys, *BASE, "--compare", "random,er:mix=0.5:k=x", "--out", out)
    assert_error(rc, err, "'er:mix=0.5:k=x'")
    assert not (out / "runs").exists()


# ----------------------------------------------------------------------------- newcomer findings


def test_a_flipped_bit_in_a_checkpoint_is_refused(copy_of, capsys):
    """The checkpoint carries the SHA-256 of its state: one changed byte inside a weight is
    refused, not silently resumed with a broken model."""
    outer = torch.load(copy_of / CHECKPOINT, weights_only=False)
    payload = bytearray(outer["payload"])
    payload[len(payload) // 2] ^= 0x01
    outer["payload"] = bytes(payload)
    torch.save(outer, copy_of / CHECKPOINT)
    rc, _, err = cli(capsys, "train", "--resume", copy_of, "--no-progress")
    assert_error(rc, err, "SHA-256", "--overwrite")


def test_a_typo_in_a_later_compare_spec_is_refused_before_any_training(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc, _, err = cli(
        capsys, *BASE, "--compare", "random,er:mix=0.5,kn", "--seeds", "0", "--out", out
    )
    assert_error(rc, err, "'kn'", "random", "er", "knn")
    assert not out.exists()  # nothing trained, nothing in the way of the corrected command


def test_compare_plan_records_the_index_content(tmp_path, capsys):
    """An index rebuilt in place under the same path is another comparison: --overwrite starts
    it again instead of reporting the old runs."""
    idx = tmp_path / "digits.gw"
    assert main(["index", "--dataset", "digits", "--clusters", "10", "--out", str(idx)]) == 0
    out = tmp_path / "cmp"
    args = [*BASE, "--index", idx, "--compare", "random,er", "--seeds", "0", "--out", out]
    assert cli(capsys, *args)[0] == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["index_fingerprint"] == gw.GraphIndex.load(idx).fingerprint
    assert plan["base"]["index"] == str(idx.absolute())  # works from any directory


def test_label_noise_zero_and_one_line_usage_errors(tmp_path, capsys):
    rc, _, err = cli(capsys, *BASE, "--label-noise", "0", "--out", tmp_path / "r")
    assert rc == 0, err
    rc, _, err = cli(capsys, *BASE, "--epochs", "0", "--out", tmp_path / "r2")
    assert_error(rc, err, "--epochs", ">= 1", "--help")


def test_reports_are_readable_by_others(tmp_path, capsys):
    import os
    import stat

    out = tmp_path / "cmp"
    assert cli(capsys, *BASE, "--compare", "random,er", "--seeds", "0", "--out", out)[0] == 0
    umask = os.umask(0)
    os.umask(umask)
    for name in ("compare.md", "compare.json", "compare-accuracy.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name


def test_settings_the_run_cannot_use_are_warned_about(tmp_path, capsys):
    rc, _, err = cli(
        capsys, *BASE, "--temperature", "0.5", "--momentum", "0.5", "--out", tmp_path / "r"
    )
    assert rc == 0, err
    lines = [x for x in err.splitlines() if "warning" in x]
    assert len(lines) == 2
    assert "--temperature is not used by this run (--loss ce)" in lines[0]
    assert "--momentum is not used by this run (the optimizer is Adam)" in lines[1]
