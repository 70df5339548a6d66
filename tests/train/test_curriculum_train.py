"""``graphwalk train`` with a curriculum (graphwalk/train/curricular.py): the task in force logged
per step, batches from its pool, exact resume across a change of task, comparisons with the
controls and the schedule plot, the bandit, CIFAR-100's superclasses, the spec grammar, and every
refusal (exit status 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from graphwalk.errors import InputError
from graphwalk.tasks import CurriculumSampler
from graphwalk.train.checkpoint import CHECKPOINT, load_checkpoint
from graphwalk.train.spec import parse_spec
from tests.train.conftest import (
    DIGITS_STEPS,
    assert_error,
    cli,
    read_batches,
    read_metrics,
    without_timing,
)


def _steps(run: Path) -> list[dict]:
    return [r for r in read_metrics(run) if r["event"] == "step"]


def test_a_pacing_run_logs_the_task_in_force_and_draws_from_its_pool(tmp_path, digits_train):
    run = digits_train(tmp_path / "r", sampler="curriculum=exp:start=0.2", record_batches=True)
    stages = json.loads((run / "curriculum.json").read_text())["stages"]
    assert [s["task"] for s in stages][:3] == [
        "all classes, 20% shuffle",
        "all classes, 40% shuffle",
        "all classes, 80% shuffle",
    ]
    steps = _steps(run)
    assert len(steps) == 2 * DIGITS_STEPS
    starts = [s["start"] for s in stages]
    for rec in steps:
        stage = max(i for i, t in enumerate(starts) if t <= rec["step"] - 1)
        assert rec["task"] == stage
        assert rec["pool"] == pytest.approx(stages[stage]["pool_share"], abs=1e-4)
    pools = [s["pool_items"] for s in stages]
    assert pools == sorted(pools) and pools[-1] == 1437
    batches = read_batches(run)
    assert all(len(b["items"]) == 64 for b in batches)  # whole batches, as many as shuffling
    first = {i for b in batches[: stages[1]["start"]] for i in b["items"]}
    assert len(first) <= stages[0]["pool_items"]


def test_resume_across_a_change_of_task_equals_the_uninterrupted_run(tmp_path, digits_train):
    settings = {"sampler": "curriculum=linear:start=0.3", "checkpoint_every": 5}
    full = digits_train(tmp_path / "full", record_batches=True, **settings)
    part = digits_train(tmp_path / "part", stop=10, record_batches=True, **settings)
    tasks = {r["task"] for r in _steps(part)}
    digits_train(part, resume=True)
    assert {r["task"] for r in _steps(part)} - tasks  # the resumed part ran other tasks
    assert without_timing(read_metrics(part)) == without_timing(read_metrics(full))
    assert read_batches(part) == read_batches(full)
    a, b = load_checkpoint(full / CHECKPOINT)["model"], load_checkpoint(part / CHECKPOINT)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_hierarchy_trains_among_the_classes_in_play(tmp_path, digits_train):
    run = digits_train(tmp_path / "r", sampler="curriculum=hierarchy", record_batches=True)
    stages = json.loads((run / "curriculum.json").read_text())["stages"]
    assert stages[0]["task"].startswith("2 groups of parent")
    from graphwalk.datasets import load_dataset

    y = load_dataset("digits").labels["label"]
    first = [b for b in read_batches(run)[: stages[1]["start"]]]
    classes = {int(c) for b in first for c in y[b["items"]]}
    assert 2 <= len(classes) < 10  # two parents' classes only
    losses = [r["loss"] for r in _steps(run)]
    assert max(losses) < 10  # masking the classes to come keeps the loss finite and sane


def test_the_bandit_and_its_control_run_and_resume(tmp_path, digits_train):
    run = digits_train(tmp_path / "a", sampler="curriculum=agent:bands=3", epochs=1)
    steps = _steps(run)
    assert {r["task"] for r in steps} == {0, 1, 2}  # the coverage floor visits every band
    assert all(r["reward"] is not None for r in steps[:-1])
    settings = {"sampler": "curriculum=agent:bands=3:reward=grad-norm", "checkpoint_every": 5}
    full = digits_train(tmp_path / "full", record_batches=True, **settings)
    part = digits_train(tmp_path / "part", stop=25, record_batches=True, **settings)
    digits_train(part, resume=True)
    assert read_batches(part) == read_batches(full)


def test_compare_curricula_with_their_controls_draws_the_schedule(tmp_path, capsys):
    rc, _out, err = cli(
        capsys, "train", "--dataset", "digits", "--compare",
        "random,curriculum=linear,curriculum=linear:order=random", "--seeds", "0,1",
        "--epochs", "1", "--device", "cpu", "--out", tmp_path / "c",
    )  # fmt: skip
    assert rc == 0, err
    assert (tmp_path / "c" / "compare-schedule.png").stat().st_size > 0
    summary = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert list(summary["groups"]) == [
        "random",
        "curriculum=linear",
        "curriculum=linear:order=random",
    ]


def test_the_cli_flag_is_the_spec(tmp_path, capsys):
    cfile = tmp_path / "two.toml"
    cfile.write_text(
        "[[stage]]\nsteps = 10\nclasses = [0, 1, 2, 3]\n[[stage]]\nsteps = 1\nshare = 1.0\n"
    )
    rc, _out, err = cli(
        capsys, "train", "--dataset", "digits", "--curriculum", cfile, "--epochs", "1",
        "--device", "cpu", "--out", tmp_path / "r", "--record-batches",
    )  # fmt: skip
    assert rc == 0, err
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["sampler"] == f"curriculum={cfile}"
    from graphwalk.datasets import load_dataset

    y = load_dataset("digits").labels["label"]
    first = read_batches(tmp_path / "r")[:10]
    assert {int(c) for b in first for c in y[b["items"]]} <= {0, 1, 2, 3}


def test_a_schedule_longer_than_the_run_is_said(tmp_path, digits_train):
    cfile = tmp_path / "long.toml"
    cfile.write_text('[pacing]\nkind = "linear"\nsteps = 1000\n')
    with pytest.warns(UserWarning, match="ends in stage"):
        digits_train(tmp_path / "r", sampler=f"curriculum={cfile}", epochs=1)


def test_cifar100_hierarchy_over_superclasses(tmp_path, monkeypatch):
    from tests.test_datasets import _write_cifar

    _write_cifar(tmp_path / "data", "cifar100", n_per_batch=400, monkeypatch=monkeypatch)
    from graphwalk.train.config import TrainConfig
    from graphwalk.train.loop import train

    cfg = TrainConfig(
        dataset="cifar100", data_dir=str(tmp_path / "data"), sampler="curriculum=hierarchy:score=graph",
        epochs=2, batch_size=32, device="cpu", record_batches=True, model="mlp",
    )  # fmt: skip
    train(cfg, tmp_path / "r", progress=False)
    stages = json.loads((tmp_path / "r" / "curriculum.json").read_text())["stages"]
    assert [s["task"] for s in stages][:4] == [
        "2 groups of superclass, 100% shuffle",
        "4 groups of superclass, 100% shuffle",
        "8 groups of superclass, 100% shuffle",
        "16 groups of superclass, 100% shuffle",
    ]
    from graphwalk.datasets import load_dataset

    sup = load_dataset("cifar100", data_dir=tmp_path / "data").labels["superclass"]
    first = read_batches(tmp_path / "r")[: stages[1]["start"]]
    assert len({int(c) for b in first for c in sup[b["items"]]}) == 2


# ----------------------------------------------------------------------------- the grammar


@pytest.mark.parametrize(
    "text,canonical",
    [
        ("curriculum=linear", "curriculum=linear"),
        ("curriculum=linear:order=easy", "curriculum=linear"),
        ("curriculum=exp:inc=1.9:start=0.04:order=random", "curriculum=exp:order=random:start=0.04:inc=1.9"),
        ("curriculum=hierarchy:level=superclass:start=2", "curriculum=hierarchy:start=2:level=superclass"),
        ("curriculum=agent", "curriculum=agent:policy=exp3s"),
        ("curriculum=agent:reward=loss-drop:bands=4", "curriculum=agent:bands=4:policy=exp3s:reward=loss-drop"),
        ("curriculum=x/my.toml:walk", "curriculum=x/my.toml:walk"),
    ],
)  # fmt: skip
def test_curriculum_specs_read_back(text, canonical):
    spec = parse_spec(text)
    assert str(spec) == canonical and spec.is_curriculum and not spec.is_random
    assert parse_spec(str(spec)) == spec


@pytest.mark.parametrize(
    "text,words",
    [
        ("curriculum", "name the curriculum"),
        ("curriculum=cosine", "unknown curriculum 'cosine'"),
        ("curriculum=linear:start=1.5", "(0, 1]"),
        ("curriculum=linear:start=0", "start"),
        ("curriculum=exp:inc=1", "inc"),
        ("curriculum=linear:inc=2", "inc goes with"),
        ("curriculum=linear:order=sideways", "order='sideways'"),
        ("curriculum=linear:score=vibes", "score='vibes'"),
        ("curriculum=linear:bands=3", "goes with curriculum=agent"),
        ("curriculum=linear:level=parent", "goes with curriculum=hierarchy"),
        ("curriculum=hierarchy:start=1.5", "number of groups"),
        ("curriculum=agent:policy=greedy", "unknown policy"),
        ("curriculum=agent:order=random", "policy=uniform"),
        ("curriculum=agent:bands=1", "bands"),
        ("curriculum=linear:walk:walk", "given twice"),
    ],
)
def test_bad_curriculum_specs_are_refused(text, words):
    with pytest.raises(InputError, match=words.replace("(", "\\(").replace("]", "\\]")):
        parse_spec(text)


# ----------------------------------------------------------------------------- refusals


def _train(capsys, tmp_path, *extra):
    return cli(
        capsys, "train", "--dataset", "digits", "--epochs", "1", "--device", "cpu",
        "--out", tmp_path / "r", *extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    "content,suffix,words",
    [
        ("{oops", ".json", ("not valid JSON",)),
        ('{"stages": [{"steps": 5, "classes": [0, 42]}, {}]}', ".json", ("classes [42]",)),
        ('{"stages": [{"steps": 5, "groups": 2, "level": "superclass"}, {}]}', ".json",
         ("level 'superclass'",)),
        ('{"stages": [{"steps": 5, "groups": 2, "level": "labels"}, {}]}', ".json", ("coarser",)),
        ('{"pacing": {"kind": "exp", "steps": 10, "inc": 0.5}}', ".json", ("inc",)),
        ('{"stages": [{"steps": 0}]}', ".json", ("stage 0", "steps")),
        ('[pacing]\nkind = "linear"\nsteps = 1\n', ".toml", ("steps",)),
    ],
)  # fmt: skip
def test_bad_curriculum_files_exit_2_with_one_line(tmp_path, capsys, content, suffix, words):
    f = tmp_path / f"c{suffix}"
    f.write_text(content)
    rc, _out, err = _train(capsys, tmp_path, "--curriculum", f)
    assert_error(rc, err, *words)
    assert not (tmp_path / "r" / "config.json").exists()  # a refused run leaves nothing


@pytest.mark.parametrize(
    "extra,words",
    [
        (("--curriculum", "cosine"), ("unknown curriculum",)),
        (("--curriculum", "missing.toml"), ("does not exist",)),
        (("--curriculum", "linear:start=2"), ("(0, 1]",)),
        (("--curriculum", "linear", "--sampler", "er"), ("drop --sampler",)),
        (("--curriculum", "linear", "--compare", "random,curriculum=exp"), ("in --compare write",)),
        (("--curriculum", "hierarchy:level=nope"), ("no level 'nope'",)),
        (("--curriculum", "hierarchy:level=labels"), ("coarser",)),
        (("--curriculum", "hierarchy:start=9"), ("start=9",)),
        (("--curriculum", "linear", "--layers", "body.act1"), ("drop --layers",)),
    ],
)
def test_bad_curriculum_flags_exit_2_with_one_line(tmp_path, capsys, extra, words):
    rc, _out, err = _train(capsys, tmp_path, *extra)
    assert_error(rc, err, *words)


def test_the_sampler_of_a_run_is_a_curriculum_sampler(tmp_path):
    from graphwalk.train.config import TrainConfig
    from graphwalk.train.run import Run

    cfg = TrainConfig(dataset="digits", sampler="curriculum=root", epochs=1, device="cpu")
    run = Run(
        cfg.resolved(), tmp_path / "r", rank=0, world=1, resume=False, progress=False,
        stop_after_steps=None, threads=None, fresh=True,
    )  # fmt: skip
    run.set_up()
    assert isinstance(run.sampler, CurriculumSampler)
    assert len(run.sampler) == DIGITS_STEPS
    assert np.asarray(run.sampler.pool_sizes).min() >= 64
