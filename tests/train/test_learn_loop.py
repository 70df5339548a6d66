"""The learned walker inside ``graphwalk train`` (issue 9) on digits: rewards and entropy logged
per step, policy.json and policy.png, exact resume, coverage in reorder-only and budgeted mode,
the paired no-learning control, label noise in clusters, bad input on the command line, and
non-finite rewards."""

from __future__ import annotations

import json
import math
import shutil
import struct
import warnings

import numpy as np
import pytest
import torch

import graphwalk as gw
from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.train.config import load_config
from graphwalk.train.loop import CHECKPOINT, load_checkpoint
from tests.conftest import make_blobs
from tests.train.conftest import (
    DIGITS_STEPS,
    DIGITS_TRAIN,
    assert_error,
    check_every_item_once_per_epoch,
    cli,
    read_batches,
    read_metrics,
    without_timing,
)

# digits: 1,437 training items, so the run's own index has 14 k-means clusters (one per 100)
NODES = 14
BASE = ["train", "--dataset", "digits", "--device", "cpu", "--no-progress", "--epochs", "1"]

LEARNED = (
    "er:policy=exp3s",
    "er:policy=exp3s:reward=loss-drop",
    "er:policy=exp3s:reward=gar",
    "er:policy=uniform",
    "er:policy=pg",
    "er:policy=odm",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits_train):
    """Two-epoch digits runs with seed 0, one per learned walker, batches recorded."""
    root = tmp_path_factory.mktemp("learn-runs")
    return {
        s: digits_train(root / s.replace(":", "_"), sampler=s, record_batches=True) for s in LEARNED
    }


def _steps(run):
    return [r for r in read_metrics(run) if r["event"] == "step"]


def _policy(run):
    return json.loads((run / "policy.json").read_text())


def _params(run):
    return load_checkpoint(run / CHECKPOINT)["model"]


def _same_params(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _png_size(path):
    """(width, height) of a PNG file; fails on anything that is not one."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert data[12:16] == b"IHDR"
    assert data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")
    return struct.unpack(">II", data[16:24])


# ----------------------------------------------------------------------------- what a run logs


@pytest.mark.slow  # the runs fixture: six two-epoch runs
@pytest.mark.parametrize(
    ("spec", "missing_per_epoch"),
    [
        ("er:policy=exp3s", 0),
        ("er:policy=uniform", 0),
        ("er:policy=pg", 0),
        ("er:policy=odm", 0),
        ("er:policy=exp3s:reward=loss-drop", 0),
        # gar credits batch t at step t + 1: the first step of an epoch reports nothing, and the
        # epoch's last batch never gets a reward
        ("er:policy=exp3s:reward=gar", 1),
    ],
)
def test_every_step_logs_its_reward_and_the_walkers_entropy(runs, spec, missing_per_epoch):
    steps = _steps(runs[spec])
    assert [s["step"] for s in steps] == list(range(1, 2 * DIGITS_STEPS + 1))
    for epoch in (0, 1):
        mine = [s for s in steps if s["epoch"] == epoch]
        rewards = [s["reward"] for s in mine]
        assert sum(r is not None for r in rewards) == DIGITS_STEPS - missing_per_epoch, spec
        if missing_per_epoch:
            assert rewards[0] is None
            assert all(r is not None for r in rewards[1:])
    rewards = [s["reward"] for s in steps if s["reward"] is not None]
    assert all(math.isfinite(r) for r in rewards)
    assert len(set(rewards)) > len(rewards) // 2  # a reward per batch, not a constant
    if "reward=" not in spec:
        assert all(r > 0 for r in rewards)  # a gradient norm
    if spec.endswith("gar"):
        assert all(-1.0 - 1e-9 <= r <= 1.0 + 1e-9 for r in rewards)  # a cosine
    # the entropy of the walker's choice, every step: in [0, ln(nodes)]
    for s in steps:
        h = s["entropy"]
        assert h is not None and math.isfinite(h), s
        assert 0.0 <= h <= math.log(NODES) + 1e-4
    assert all("noisy" not in s for s in steps)  # clean labels: no noisy share
    # the first decision of the run chooses among all nodes, uniformly
    assert steps[0]["entropy"] == pytest.approx(math.log(NODES), abs=1e-4)


@pytest.mark.slow  # the runs fixture: six two-epoch runs
@pytest.mark.parametrize("spec", LEARNED)
def test_policy_json_and_png_describe_the_run(runs, spec):
    run = runs[spec]
    rep = _policy(run)
    total = 2 * DIGITS_STEPS
    assert rep["nodes"] == NODES
    # reorder-only, no floor: the policy decides every batch
    assert rep["floor"] is None and rep["forced"] == 0
    assert rep["decisions"] == total
    assert rep["skipped_rewards"] == 0
    assert rep["rewards_seen"] == total - (2 if spec.endswith("gar") else 0)
    roots = rep["root_visits_per_node"]
    comm = rep["community_visits_per_node"]
    assert len(roots) == len(comm) == NODES
    assert sum(roots) == total  # one ROOT per batch
    assert all(c >= r for c, r in zip(comm, roots, strict=True))  # a ROOT is in its community
    assert sum(comm) >= total
    assert rep["root_visits"]["min"] == min(roots) and rep["root_visits"]["max"] == max(roots)
    assert rep["community_visits"]["never"] == sum(c == 0 for c in comm) == 0
    assert 0.0 <= rep["root_visits"]["gini"] < 1.0
    w, h = _png_size(run / "policy.png")
    assert w >= 400 and h >= 300
    assert (run / "summary.json").is_file()


@pytest.mark.slow  # the runs fixture: six two-epoch runs
def test_tensorboard_has_the_reward_and_entropy_curves(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(runs["er:policy=exp3s:reward=gar"] / "tb"))
    ea.Reload()
    tags = ea.Tags()["scalars"]
    assert "step/reward" in tags and "step/entropy" in tags
    # gar: no reward on the first step of each epoch
    got = [e.step for e in ea.Scalars("step/reward")]
    assert got == [s for s in range(1, 2 * DIGITS_STEPS + 1) if s not in (1, DIGITS_STEPS + 1)]


def test_the_static_walk_logs_no_reward_and_writes_no_policy_files(tmp_path, digits_train):
    run = digits_train(tmp_path / "er", sampler="er", epochs=1)
    assert all("reward" not in s and "entropy" not in s for s in _steps(run))
    assert not (run / "policy.json").exists() and not (run / "policy.png").exists()


# ----------------------------------------------------------------------------- coverage


@pytest.mark.slow  # the runs fixture: six two-epoch runs
@pytest.mark.parametrize("spec", LEARNED)
def test_reorder_only_uses_every_item_once_per_epoch(runs, spec):
    batches = read_batches(runs[spec])
    check_every_item_once_per_epoch(batches, epochs=2)
    first = [i for b in batches if b["epoch"] == 0 for i in b["items"]]
    second = [i for b in batches if b["epoch"] == 1 for i in b["items"]]
    assert first != second


def test_reorder_only_with_a_floor_uses_every_item_once_per_epoch(tmp_path, digits_train):
    run = digits_train(
        tmp_path / "r", sampler="er:policy=exp3s:floor=20", record_batches=True, epochs=2
    )
    check_every_item_once_per_epoch(read_batches(run), epochs=2)
    rep = _policy(run)
    assert rep["floor"] == 20
    assert rep["decisions"] + rep["forced"] == 2 * DIGITS_STEPS


def _record_visits(monkeypatch):
    """Record every (ROOT, community) the coverage floor observes, in decision order."""
    from graphwalk.learn.policies import CoverageFloor

    seen: list[tuple[int, set[int]]] = []
    original = CoverageFloor.observe

    def observe(self, step):
        seen.append((int(step.root), {int(c) for c in step.community}))
        original(self, step)

    monkeypatch.setattr(CoverageFloor, "observe", observe)
    return seen


def _longest_gaps(visits, n_nodes):
    """Per node: the most decisions between two visits (the start counts as a visit just before
    decision 0, the end as one just after the last)."""
    total = len(visits)
    out = []
    for v in range(n_nodes):
        times = [t for t, (root, comm) in enumerate(visits) if v == root or v in comm]
        out.append(int(np.diff([-1, *times, total]).max()))
    return out


@pytest.mark.parametrize(("floor", "expected"), [(None, 2 * NODES), (NODES, NODES), (20, 20)])
def test_budgeted_mode_keeps_every_node_within_the_floor(
    tmp_path, digits_train, monkeypatch, floor, expected
):
    budget, epochs = 40, 2
    spec = f"er:policy=exp3s:budget={budget}" + ("" if floor is None else f":floor={floor}")
    visits = _record_visits(monkeypatch)
    run = digits_train(tmp_path / "b", sampler=spec, record_batches=True, epochs=epochs)
    total = budget * epochs
    # an epoch is `budget` full batches, drawn with replacement
    steps = _steps(run)
    assert [s["epoch"] for s in steps] == [e for e in range(epochs) for _ in range(budget)]
    batches = read_batches(run)
    assert [len(b["items"]) for b in batches] == [64] * total
    assert load_config(run).sampler.startswith("er:replacement:policy=exp3s")
    rep = _policy(run)
    assert rep["floor"] == expected
    assert rep["decisions"] + rep["forced"] == total
    assert sum(rep["root_visits_per_node"]) == total
    assert rep["community_visits"]["never"] == 0
    # the floor's guarantee, by its own notion of a visit (ROOT or in the community)
    assert len(visits) == total
    gaps = _longest_gaps(visits, NODES)
    assert max(gaps) <= expected, gaps
    # and those communities are where the batches came from (mix=0)
    assign = GraphIndex.load(run / "index.gw").levels["kmeans"].assignment
    drawn = [set(assign[b["items"]].tolist()) for b in batches]
    for b, clusters, (root, comm) in zip(batches, drawn, visits, strict=True):
        assert clusters <= comm | {root}, (b["batch"], clusters, comm)
    # counted by the clusters the batches' items came from, the floor holds too
    gaps = _longest_gaps([(-1, clusters) for clusters in drawn], NODES)
    assert max(gaps) <= expected, gaps
    if floor == NODES:  # the tightest floor overrides the policy some of the time
        assert rep["forced"] > 0


# ----------------------------------------------------------------------------- resume


@pytest.mark.parametrize(
    "spec",
    [
        "er:policy=exp3s",
        "er:policy=exp3s:reward=gar",
        "er:policy=exp3s:reward=loss-drop",
        "er:policy=pg",
        "er:policy=odm",
        "er:policy=exp3s:budget=20",
    ],
)
def test_resume_with_a_learned_walker_is_exact(tmp_path, digits_train, spec):
    settings = {"sampler": spec, "epochs": 2, "record_batches": True}
    per_epoch = 20 if "budget" in spec else DIGITS_STEPS
    stop = per_epoch + 7  # in the second epoch
    full = digits_train(tmp_path / "full", **settings)
    part = digits_train(tmp_path / "part", stop=stop, **settings)
    assert not (part / "summary.json").exists() and not (part / "policy.json").exists()
    ck = load_checkpoint(part / CHECKPOINT)
    assert (ck["epoch"], ck["step"]) == (1, per_epoch)
    assert "policy" in ck["sampler"]  # the walker's state travels with the sampler's
    assert _steps(part)[-1]["step"] == stop
    digits_train(part, resume=True)
    assert without_timing(read_metrics(part)) == without_timing(read_metrics(full))
    assert read_batches(part) == read_batches(full)
    assert _same_params(_params(part), _params(full))
    assert _policy(part) == _policy(full)
    s_full = json.loads((full / "summary.json").read_text())
    s_part = json.loads((part / "summary.json").read_text())
    assert s_part["final_test_acc"] == s_full["final_test_acc"]
    _png_size(part / "policy.png")


def test_resume_depends_on_the_walkers_state(tmp_path, digits_train):
    """The resumed run equals the uninterrupted one because the policy's state was restored:
    a walker that forgot what it learned makes other choices."""
    from graphwalk.train import loop
    from graphwalk.train.checkpoint import save_checkpoint
    from graphwalk.train.spec import parse_spec

    settings = {"sampler": "er:policy=exp3s", "epochs": 2, "record_batches": True}
    full = digits_train(tmp_path / "full", **settings)
    part = digits_train(tmp_path / "part", stop=DIGITS_STEPS + 3, **settings)
    ck = loop.load_checkpoint(part / CHECKPOINT)
    fresh = loop.make_sampler(
        parse_spec("er:policy=exp3s"),
        GraphIndex.load(part / "index.gw"),
        DIGITS_TRAIN,
        64,
        0,
        0,
        1,
    )
    ck["sampler"]["policy"] = fresh.policy.state_dict()  # learned nothing
    save_checkpoint(part / CHECKPOINT, ck)  # checksummed again, as the run writes it
    digits_train(part, resume=True)
    assert read_batches(part)[:DIGITS_STEPS] == read_batches(full)[:DIGITS_STEPS]
    assert read_batches(part)[DIGITS_STEPS:] != read_batches(full)[DIGITS_STEPS:]


# ----------------------------------------------------------------------------- the control


@pytest.mark.slow  # the runs fixture: six two-epoch runs
def test_uniform_control_is_paired_with_the_learner(runs, tmp_path, digits_train):
    uni, learn = runs["er:policy=uniform"], runs["er:policy=exp3s"]
    # the same seed: the same initial model
    ev_u = next(r for r in read_metrics(uni) if r["event"] == "eval")
    ev_l = next(r for r in read_metrics(learn) if r["event"] == "eval")
    assert (ev_u["test_loss"], ev_u["test_acc"]) == (ev_l["test_loss"], ev_l["test_acc"])
    static = digits_train(tmp_path / "er", sampler="er", epochs=1)
    ev_s = next(r for r in read_metrics(static) if r["event"] == "eval")
    assert ev_s["test_loss"] == ev_u["test_loss"]
    # the same code path and draws: the first decision is made before any reward, the second
    # after one reward that the normaliser (no history yet) maps to 0, so both are shared
    b_u, b_l = read_batches(uni), read_batches(learn)
    assert b_u[:2] == b_l[:2]
    s_u, s_l = _steps(uni), _steps(learn)
    assert [s["loss"] for s in s_u[:2]] == [s["loss"] for s in s_l[:2]]
    assert [s["entropy"] for s in s_u[:2]] == [s["entropy"] for s in s_l[:2]]
    # then learning makes a difference
    assert b_u != b_l

    # the control stays uniform over its candidates: every entropy is ln(number of candidates);
    # the learner's distribution moves away from uniform
    def off_uniform(h):
        return abs(math.exp(h) - round(math.exp(h))) > 1e-3

    assert not any(off_uniform(s["entropy"]) for s in s_u)
    assert any(off_uniform(s["entropy"]) for s in s_l)


# ----------------------------------------------------------------------------- label noise


@pytest.fixture(scope="module")
def digits():
    from graphwalk.datasets import load_dataset

    return load_dataset("digits", split="train")


@pytest.mark.parametrize(("share", "seed"), [(0.2, 0), (0.05, 1), (0.5, 2)])
def test_flip_labels_in_clusters_concentrates_the_noise(digits, share, seed):
    from graphwalk.build.cluster import kmeans_level
    from graphwalk.train.data import flip_labels_in_clusters
    from graphwalk.train.indexing import default_clusters

    y = digits.labels["label"].astype(np.int64)
    x = digits.features
    y0 = y.copy()
    f = flip_labels_in_clusters(y, x, share, 10, seed)
    np.testing.assert_array_equal(y, y0)  # the input is left alone
    flipped = f != y
    n = y.size
    assert flipped.sum() == round(share * n)  # every one to another class
    assert f.min() >= 0 and f.max() < 10
    np.testing.assert_array_equal(flip_labels_in_clusters(y, x, share, 10, seed), f)
    other = flip_labels_in_clusters(y, x, share, 10, seed + 10)
    assert not np.array_equal(other != y, flipped)
    # concentrated in the k-means clusters of the run's index: every cluster touched is flipped
    # whole, but for at most one (the last, partly)
    k = default_clusters(n)
    assert k == NODES
    assign = kmeans_level(x, k, seed=seed).assignment
    touched = np.unique(assign[flipped])
    partial = [c for c in touched if not flipped[assign == c].all()]
    assert len(partial) <= 1, partial
    sizes = np.sort(np.bincount(assign, minlength=k))
    worst = int(np.searchsorted(np.cumsum(sizes), round(share * n))) + 1
    assert len(touched) <= worst  # no more clusters than the smallest ones would need
    assert len(touched) < k or share >= 0.5


@pytest.mark.slow  # the runs fixture: six two-epoch runs
def test_label_noise_in_clusters_uses_the_clusters_of_the_runs_index(runs, digits):
    from graphwalk.train.data import flip_labels_in_clusters

    y = digits.labels["label"].astype(np.int64)
    flipped = flip_labels_in_clusters(y, digits.features, 0.2, 10, 0) != y
    assign = GraphIndex.load(runs["er:policy=exp3s"] / "index.gw").levels["kmeans"].assignment
    touched = np.unique(assign[flipped])
    assert sum(not flipped[assign == c].all() for c in touched) <= 1


def test_noisy_share_is_logged_per_step(tmp_path, digits_train):
    p = 0.2
    noise = {"label_noise": p, "noise_in_clusters": True, "epochs": 1}
    rnd = digits_train(tmp_path / "random", sampler="random", record_batches=True, **noise)
    walk = digits_train(tmp_path / "walk", sampler="er:policy=exp3s", **noise)
    spread = digits_train(tmp_path / "spread", sampler="random", label_noise=p, epochs=1)
    share_r = np.array([s["noisy"] for s in _steps(rnd)])
    share_w = np.array([s["noisy"] for s in _steps(walk)])
    share_s = np.array([s["noisy"] for s in _steps(spread)])
    # shuffling: about p per batch; weighted by batch size, exactly the flipped share
    assert share_r.mean() == pytest.approx(p, abs=0.02)
    sizes = np.array([len(b["items"]) for b in read_batches(rnd)])
    assert (share_r * sizes).sum() == pytest.approx(round(p * DIGITS_TRAIN), abs=0.01)
    assert share_s.mean() == pytest.approx(p, abs=0.02)
    # the walk meets the noise in clumps: its batches are far more or less noisy than p
    assert share_w.mean() == pytest.approx(p, abs=0.05)
    assert share_w.std() > 2 * share_r.std()
    assert load_config(rnd).noise_in_clusters is True


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--sampler", "er:policy=nope"], ["'nope'", "uniform", "exp3s", "pg", "odm"]),
        (["--sampler", "er", "--policy", "nope"], ["'nope'", "uniform", "exp3s", "pg", "odm"]),
        (["--sampler", "rl", "--policy", "nope"], ["'nope'", "exp3s"]),
        (["--sampler", "er:policy=exp3s:reward=nope"], ["'nope'", "grad-norm", "loss-drop", "gar"]),
        (["--sampler", "rl", "--reward", "nope"], ["'nope'", "grad-norm", "loss-drop", "gar"]),
        (["--sampler", "er:reward=gar"], ["reward", "policy="]),
        (["--sampler", "er", "--reward", "gar"], ["reward", "policy="]),
        (["--sampler", "er:floor=30"], ["floor", "policy="]),
        (["--sampler", "er:policy=exp3s:budget=0"], ["budget", "an integer >= 1"]),
        (["--sampler", "er:policy=exp3s:floor=0"], ["floor", "an integer >= 1"]),
        (["--sampler", "er:policy=exp3s:budget"], ["budget", "value"]),
        (["--sampler", "random", "--policy", "exp3s"], ["--sampler rl"]),
        (["--compare", "random,er", "--policy", "exp3s"], ["--compare"]),
        (
            ["--sampler", "knn:policy=odm", "--layers", "body.act1"],
            ["policy=odm", "rebuilt", "policy=exp3s", "--layers"],
        ),
        (["--sampler", "knn", "--policy", "pg", "--layers", "body.act1"], ["pg", "--layers"]),
        (
            ["--sampler", "er:policy=pg", "--vectors", "grad", "--refresh-every", "1"],
            ["pg", "--vectors"],
        ),
    ],
)
def test_bad_learning_input_is_one_line(tmp_path, capsys, args, words):
    out = tmp_path / "run"
    rc, _, err = cli(capsys, *BASE, *args, "--out", out)
    assert_error(rc, err, *words)
    assert not out.exists() or not any(out.iterdir())


def test_a_zero_budget_flag_is_refused(tmp_path, capsys):
    rc, _, err = cli(capsys, *BASE, "--sampler", "rl", "--budget", "0", "--out", tmp_path / "r")
    assert rc == 2 and "Traceback" not in err
    assert err.strip().split("\n")[-1].startswith("graphwalk train: error: argument --budget")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("knn:policy=odm", ["odm", "'knn'", "item graph", "cluster graph"]),
        ("er:policy=exp3s:floor=5", ["floor=5", "14 nodes", "floor >= 14"]),
    ],
)
def test_policy_refused_by_the_graph_leaves_nothing_in_the_way(tmp_path, capsys, spec, words):
    out = tmp_path / "run"
    rc, _, err = cli(capsys, *BASE, "--sampler", spec, "--out", out)
    assert_error(rc, err, *words)
    assert not out.exists()
    rc, _, err = cli(capsys, *BASE, "--sampler", "er:policy=odm", "--out", out)
    assert rc == 0, err


def test_sampler_rl_builds_the_spec(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = cli(
        capsys, *BASE, "--sampler", "rl", "--reward", "loss-drop", "--budget", "10", "--out", out
    )
    assert rc == 0, err
    assert load_config(out).sampler == "er:replacement:policy=exp3s:reward=loss-drop:budget=10"
    steps = _steps(out)
    assert len(steps) == 10 and all(s["reward"] is not None for s in steps)
    assert _policy(out)["floor"] == 2 * NODES


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, digits_train):
    """An exp3s run stopped in its second epoch (a checkpoint after the first)."""
    run = tmp_path_factory.mktemp("interrupted") / "run"
    digits_train(run, stop=DIGITS_STEPS + 4, sampler="er:policy=exp3s", epochs=2)
    assert (run / CHECKPOINT).is_file()
    return run


_CHANGED = ["changed after the checkpoint", "sampler", "--config"]


@pytest.mark.parametrize(
    ("sampler", "words"),
    [
        ("er:policy=pg", _CHANGED),
        ("er:policy=uniform", _CHANGED),
        ("er:policy=odm", _CHANGED),
        ("er", _CHANGED),
        ("er:policy=exp3s:floor=20", _CHANGED),
        ("er:policy=exp3s:budget=30", _CHANGED),
        ("er:k=2:policy=exp3s", _CHANGED),
        ("knn:policy=exp3s", _CHANGED),
        ("random", _CHANGED),
        ("er:policy=exp3s:reward=gar", _CHANGED),  # the reward is not in the sampler's state
    ],
)
def test_resume_with_another_walker_is_one_line(interrupted, tmp_path, capsys, sampler, words):
    run = tmp_path / "run"
    shutil.copytree(interrupted, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["sampler"] = sampler
    (run / "config.json").write_text(json.dumps(cfg))
    rc, _, err = cli(capsys, "train", "--resume", run, "--no-progress")
    assert_error(rc, err, *words)
    assert (run / CHECKPOINT).is_file()  # the run is kept: restore its config and resume


# ----------------------------------------------------------------------------- rewards


@pytest.fixture(scope="module")
def blobs_index(tmp_path_factory):
    x, y = make_blobs(n=500, dim=8)
    out = tmp_path_factory.mktemp("blobs") / "blobs.gw"
    return gw.build_index(x, labels=y, clusters=5, graphs=["er"], out=out)


def _walker(index, **kw):
    from graphwalk.learn import make_policy
    from graphwalk.walk.sampler import GraphWalkBatchSampler

    policy = make_policy("exp3s", index, "er", seed=0)
    return GraphWalkBatchSampler(index, 50, graph="er", seed=0, policy=policy, **kw)


def test_non_finite_rewards_are_skipped_counted_and_warned_once(blobs_index):
    sampler = _walker(blobs_index)
    it = iter(sampler)
    next(it)
    with pytest.warns(RuntimeWarning, match="not finite") as rec:
        info = sampler.report(float("nan"))
    assert len(rec) == 1 and info.batch == 0
    assert sampler.skipped_rewards == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        for bad in (float("inf"), float("-inf"), np.float32("nan"), torch.tensor(float("nan"))):
            next(it)
            sampler.report(bad)
    assert sampler.skipped_rewards == 5
    sampler.flush_rewards()
    diag = sampler.policy.diagnostics()
    assert diag["rewards_seen"] == 0  # no update
    np.testing.assert_array_equal(sampler.policy.weights, np.zeros(5))
    # a finite reward still reaches the policy; the skipped batches kept their place
    next(it)
    assert sampler.report(1.5).batch == 5
    sampler.flush_rewards()
    assert sampler.policy.diagnostics()["rewards_seen"] == 1


def test_a_reward_for_a_batch_never_produced_is_refused(blobs_index):
    sampler = _walker(blobs_index)
    with pytest.raises(InputError, match="no batch is waiting"):
        sampler.report(1.0)
    it = iter(sampler)
    next(it)
    with pytest.raises(InputError, match="batch 3 of epoch 0 was not yielded"):
        sampler.report(1.0, batch=3)
    sampler.report(1.0, batch=0)
    with pytest.raises(InputError, match="no batch is waiting"):
        sampler.report(1.0)
    with pytest.raises(TypeError, match="number or None"):
        next(it)
        sampler.report("1.0")


def test_a_reward_without_a_policy_is_refused(blobs_index):
    from graphwalk.walk.sampler import GraphWalkBatchSampler

    sampler = GraphWalkBatchSampler(blobs_index, 50, graph="er", seed=0)
    next(iter(sampler))
    with pytest.raises(InputError, match="no policy"):
        sampler.report(1.0)


def test_non_finite_rewards_in_a_run_are_skipped_and_counted(tmp_path, digits_train, monkeypatch):
    """A reward that comes out NaN (a diverged step) is skipped by the sampler, the run goes on,
    the step log shows it, and policy.json counts it."""
    from graphwalk.learn.rewards import GradNormReward

    original = GradNormReward.after_backward
    calls = {"n": 0}

    def sometimes_nan(self, model):
        calls["n"] += 1
        r = original(self, model)
        return float("nan") if calls["n"] % 5 == 0 else r

    monkeypatch.setattr(GradNormReward, "after_backward", sometimes_nan)
    with pytest.warns(RuntimeWarning, match="not finite") as rec:
        run = digits_train(tmp_path / "nan", sampler="er:policy=exp3s", epochs=1)
    assert sum("not finite" in str(w.message) for w in rec) == 1
    rewards = [s["reward"] for s in _steps(run)]
    nans = sum(1 for r in rewards if r is None)  # logged as null: strict JSON has no NaN
    assert nans == DIGITS_STEPS // 5
    rep = _policy(run)
    assert rep["decisions"] == DIGITS_STEPS
    assert rep["rewards_seen"] == DIGITS_STEPS - nans
    assert rep["skipped_rewards"] == nans
