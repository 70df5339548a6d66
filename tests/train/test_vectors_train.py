"""``graphwalk train --vectors grad|learned`` (issue 17): the refresh records, the saved
vectors, determinism, exact resume, the learned walker over rebuilt graphs,
``graphwalk index --vectors-from`` and the bad input."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from graphwalk.errors import InputError
from graphwalk.train.loop import CHECKPOINT, load_checkpoint
from tests.train.conftest import (
    DIGITS_STEPS,
    DIGITS_TRAIN,
    assert_error,
    cli,
    read_metrics,
    without_timing,
)

BASE = ["train", "--dataset", "digits", "--epochs", "1", "--device", "cpu"]


def _refreshes(run):
    return [r for r in read_metrics(run) if r["event"] == "refresh"]


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["grad", "learned"])
def test_vectors_are_kept_refreshed_saved_and_resumed_exactly(tmp_path, digits_train, kind):
    settings = {"sampler": "er", "vectors": kind, "refresh_every": 1, "epochs": 3}
    full = digits_train(tmp_path / "full", **settings)
    refresh = _refreshes(full)
    assert [(r["epoch"], r["step"]) for r in refresh] == [
        (0, 0),
        (1, DIGITS_STEPS),
        (2, 2 * DIGITS_STEPS),
    ]
    # the first graph is over the initial model's sketches; then every item has been trained on
    assert refresh[0]["trained_share"] == 0.0
    assert all(r["trained_share"] == 1.0 for r in refresh[1:])
    assert all(0 <= r["median_age_steps"] < DIGITS_STEPS for r in refresh[1:])
    assert all(r["vectors"] == kind and r["vectors_s"] > 0 for r in refresh[1:])
    if kind == "learned":
        assert all(r["outer_loss"] > 0 for r in refresh[1:])
    for r in refresh:
        assert r["graphs"]["knn"]["lift"] > 1.0
    # the graphs follow the model
    assert len({r["graphs"]["er"]["homophily"] for r in refresh}) > 1
    # the vectors of the end of the run, described, with their checksum
    info = json.loads((full / "vectors.json").read_text())
    assert info == {
        "vectors": kind,
        "dataset": "digits",
        "split": "train",
        "n_items": DIGITS_TRAIN,
        "dim": 64,
        "epoch": 3,
        "step": 3 * DIGITS_STEPS,
        "sha256": _sha(full / "vectors.npy"),
    }
    v = np.load(full / "vectors.npy")
    assert v.shape == (DIGITS_TRAIN, 64) and v.dtype == np.float32 and np.isfinite(v).all()
    if kind == "learned":
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    man = json.loads((full / "index-epoch-002.gw" / "manifest.json").read_text())
    assert man["build"]["vectors"] == kind
    # the same seed, the same vectors
    again = digits_train(tmp_path / "again", **settings)
    assert _sha(again / "vectors.npy") == info["sha256"]
    # stopped inside the second epoch, resumed: the same run
    part = digits_train(tmp_path / "part", stop=30, **settings)
    assert "vectors" in load_checkpoint(part / CHECKPOINT)
    digits_train(part, resume=True)
    assert without_timing(read_metrics(part)) == without_timing(read_metrics(full))
    assert _sha(part / "vectors.npy") == info["sha256"]


def test_resume_inside_an_epoch_with_unsketched_steps_is_exact(tmp_path, digits_train):
    """A checkpoint inside an epoch flushes the steps kept for sketching; resuming from it gives
    the vectors of the run that was never stopped."""
    settings = {
        "sampler": "knn",
        "vectors": "learned",
        "refresh_every": 1,
        "epochs": 3,
        "checkpoint_every": 7,
    }
    full = digits_train(tmp_path / "full", **settings)
    part = digits_train(tmp_path / "part", stop=31, **settings)
    ck = load_checkpoint(part / CHECKPOINT)
    assert ck["step"] == 28 and "in_epoch" in ck
    digits_train(part, resume=True)
    assert without_timing(read_metrics(part)) == without_timing(read_metrics(full))
    assert _sha(part / "vectors.npy") == _sha(full / "vectors.npy")


def test_the_learned_walker_follows_rebuilt_graphs_and_resumes(tmp_path, digits_train):
    settings = {"sampler": "er:policy=exp3s", "vectors": "grad", "refresh_every": 1, "epochs": 3}
    full = digits_train(tmp_path / "full", **settings)
    steps = [r for r in read_metrics(full) if r["event"] == "step"]
    assert all(r["reward"] is not None for r in steps)
    policy = json.loads((full / "policy.json").read_text())
    # the counts went on across the refreshes (carried to each new graph)
    assert policy["decisions"] == 3 * DIGITS_STEPS
    part = digits_train(tmp_path / "part", stop=40, **settings)
    digits_train(part, resume=True)
    assert without_timing(read_metrics(part)) == without_timing(read_metrics(full))


def test_activation_graphs_go_with_the_learned_walker_too(tmp_path, digits_train):
    run = digits_train(
        tmp_path / "r", sampler="knn:policy=exp3s", layers=["body.act1"], refresh_every=1
    )
    assert len(_refreshes(run)) == 2
    assert json.loads((run / "summary.json").read_text())["complete"] is True


def test_index_from_a_runs_vectors(tmp_path, capsys, digits_train):
    run = digits_train(tmp_path / "run", sampler="er", vectors="grad", refresh_every=1, epochs=1)
    out = tmp_path / "v.gw"
    rc, text, err = cli(capsys, "index", "--vectors-from", run, "--k", "5", "--out", out)
    assert rc == 0, err
    assert "1,437 items" in text
    man = json.loads((out / "manifest.json").read_text())
    assert man["build"]["dataset"] == "digits"
    assert man["build"]["vectors"] == "grad"
    # the same vectors, the same neighbours: the index is over vectors.npy
    from graphwalk.index.artifact import GraphIndex

    v = np.load(run / "vectors.npy")
    g = GraphIndex.load(out).graph("knn")
    d = ((v[:20, None, :] - v[None, :, :]) ** 2).sum(-1)
    d[np.arange(20), np.arange(20)] = np.inf
    for i in range(20):
        got = set(g.indices[g.indptr[i] : g.indptr[i + 1]].tolist())
        assert got == set(np.argsort(d[i], kind="stable")[:5].tolist())
    # and graphwalk train walks it
    rc, _, err = cli(capsys, *BASE, "--index", out, "--sampler", "knn", "--out", tmp_path / "t")
    assert rc == 0, err


def _index_error(rc, err, *words):
    """Exit status 2 and one line on stderr from graphwalk index, naming ``words``."""
    assert rc == 2, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("graphwalk index: error: "), err
    for w in words:
        assert w in lines[0], (w, err)


def test_index_from_bad_runs(tmp_path, capsys, digits_train):
    plain = digits_train(tmp_path / "plain", sampler="random", epochs=1)
    out = tmp_path / "v.gw"
    rc, _, err = cli(capsys, "index", "--vectors-from", plain, "--out", out)
    _index_error(rc, err, "saved no vectors", "--vectors grad|learned")
    rc, _, err = cli(capsys, "index", "--vectors-from", tmp_path / "nope", "--out", out)
    _index_error(rc, err, "no such run directory")
    run = digits_train(tmp_path / "run", sampler="er", vectors="grad", refresh_every=1, epochs=1)
    rc, _, err = cli(capsys, "index", "--vectors-from", run, "--dataset", "mnist1d", "--out", out)
    _index_error(rc, err, "'digits'", "not 'mnist1d'")
    rc, _, err = cli(
        capsys, "index", "--vectors-from", run, "--embeddings", run / "vectors.npy", "--out", out
    )
    _index_error(rc, err, "drop --embeddings")
    # vectors of other data (a run on a dataset whose train split has other items)
    info = json.loads((run / "vectors.json").read_text())
    np.save(run / "vectors.npy", np.zeros((10, 64), np.float32))
    rc, _, err = cli(capsys, "index", "--vectors-from", run, "--out", out)
    _index_error(rc, err, "does not match vectors.json")
    info["sha256"] = _sha(run / "vectors.npy")
    (run / "vectors.json").write_text(json.dumps(info))
    rc, _, err = cli(capsys, "index", "--vectors-from", run, "--out", out)
    _index_error(rc, err, "10 vectors", "1,437 items", "other data")
    rc, _, err = cli(capsys, "index", "--out", out)
    _index_error(rc, err, "--embeddings FILE, --dataset NAME or --vectors-from RUN_DIR")
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--sampler", "er", "--vectors", "nope", "--refresh-every", "1"], ["'nope'", "grad"]),
        (["--sampler", "er", "--vectors", "grad"], ["--refresh-every N"]),
        (
            ["--sampler", "er", "--vectors", "grad", "--refresh-every", "1", "--loss", "supcon"],
            ["cross-entropy", "--loss ce"],
        ),
        (
            [
                "--sampler",
                "knn",
                "--vectors",
                "grad",
                "--refresh-every",
                "1",
                "--layers",
                "body.act1",
            ],
            ["choose one"],
        ),
        (["--sampler", "random", "--vectors", "grad", "--refresh-every", "1"], ["--sampler knn"]),
        (
            ["--sampler", "er", "--vectors", "grad", "--vectors-dim", "1", "--refresh-every", "1"],
            ["--vectors-dim"],
        ),
        (
            [
                "--sampler",
                "er",
                "--vectors",
                "grad",
                "--vectors-dim",
                "5000",
                "--refresh-every",
                "1",
            ],
            ["--vectors-dim"],
        ),
        (
            [
                "--sampler",
                "er",
                "--vectors",
                "learned",
                "--vectors-lr",
                "0",
                "--refresh-every",
                "1",
            ],
            ["--vectors-lr"],
        ),
        (
            ["--curriculum", "linear", "--vectors", "grad", "--refresh-every", "1"],
            ["drop --vectors"],
        ),
        (["--sampler", "er", "--vectors-dim", "32"], ["add --vectors"]),
        (
            ["--sampler", "er", "--vectors", "grad", "--refresh-every", "1", "--vectors-lr", "0.1"],
            ["--vectors learned"],
        ),
    ],
)
def test_bad_vectors_input_is_one_line(tmp_path, capsys, args, words):
    out = tmp_path / "run"
    rc, _, err = cli(capsys, *BASE, *args, "--out", out)
    assert_error(rc, err, *words)
    assert not out.exists() or not any(out.iterdir())


def test_a_config_with_a_bad_dimension_names_it(tmp_path, digits_train):
    with pytest.raises(InputError, match="vectors dim"):
        digits_train(tmp_path / "r", sampler="er", vectors="grad", refresh_every=1, vectors_dim=1)


def test_a_model_without_a_linear_head_is_refused():
    import torch

    from graphwalk.train.itemvectors import RunVectors

    with pytest.raises(InputError, match="nn.Linear called 'head'"):
        RunVectors(
            "grad",
            torch.nn.Sequential(torch.nn.Linear(3, 2)),
            10,
            2,
            dim=8,
            lr=0.5,
            seed=0,
            device="cpu",
        )


def test_a_comparison_gives_the_vectors_to_the_walks_only(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc, _, err = cli(
        capsys,
        *BASE,
        "--compare",
        "random,er",
        "--vectors",
        "grad",
        "--refresh-every",
        "1",
        "--seeds",
        "0",
        "--out",
        out,
    )
    assert rc == 0, err
    walk, shuffled = out / "runs" / "er" / "seed-0", out / "runs" / "random" / "seed-0"
    assert json.loads((walk / "vectors.json").read_text())["vectors"] == "grad"
    assert not (shuffled / "vectors.json").exists()
    assert json.loads((shuffled / "config.json").read_text())["vectors"] is None


def test_vectors_that_are_not_numbers_are_refused(tmp_path, capsys, digits_train):
    run = digits_train(tmp_path / "run", sampler="er", vectors="grad", refresh_every=1, epochs=1)
    np.save(run / "vectors.npy", np.array([["a", 1]], dtype=object), allow_pickle=True)
    info = json.loads((run / "vectors.json").read_text())
    info["sha256"] = _sha(run / "vectors.npy")
    (run / "vectors.json").write_text(json.dumps(info))
    rc, _, err = cli(capsys, "index", "--vectors-from", run, "--out", tmp_path / "v.gw")
    _index_error(rc, err, "not an array of numbers")
