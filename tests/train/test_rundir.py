"""What the CLI asks of the library about a run before it trains (graphwalk.train.rundir and
config): whether a directory can be resumed, the learned-walker spec, unused settings."""

import pytest

from graphwalk.errors import InputError
from graphwalk.train.checkpoint import CHECKPOINT
from graphwalk.train.config import TrainConfig, learner_spec, unused_settings
from graphwalk.train.rundir import config_diff, resumable


def test_resumable_runs_and_comparisons(tmp_path):
    assert not resumable(tmp_path)
    (tmp_path / CHECKPOINT).write_bytes(b"x")
    assert resumable(tmp_path)
    cmp = tmp_path / "cmp"
    (cmp / "runs" / "er" / "seed-0").mkdir(parents=True)
    (cmp / "plan.json").write_text("{}")
    assert not resumable(cmp)
    (cmp / "runs" / "er" / "seed-0" / CHECKPOINT).write_bytes(b"x")
    assert resumable(cmp)


def test_learner_spec():
    kw = dict(policy=None, reward=None, budget=None, compare=False)
    assert learner_spec("rl", "random", **kw) == "er:policy=exp3s"
    assert learner_spec("rl", "random", **{**kw, "policy": "pg", "reward": "gar"}) == (
        "er:policy=pg:reward=gar"
    )
    assert learner_spec("knn", "random", **{**kw, "policy": "uniform"}) == "knn:policy=uniform"
    assert learner_spec(None, "er:mix=0.5", **{**kw, "budget": 7}) == "er:mix=0.5:budget=7"
    assert learner_spec("er", "random", **kw) is None
    with pytest.raises(InputError, match="steer a walk"):
        learner_spec(None, "random", **{**kw, "policy": "exp3s"})
    with pytest.raises(InputError, match="in --compare write"):
        learner_spec("er", "random", **{**kw, "policy": "exp3s", "compare": True})


def test_unused_settings_say_why():
    cfg = TrainConfig(dataset="digits", temperature=0.2, momentum=0.9)
    given = {"temperature": 0.2, "momentum": 0.9, "noise_in_clusters": False}
    assert unused_settings(cfg, given) == {
        "temperature": "--loss ce",
        "momentum": "the optimizer is Adam",
    }
    assert unused_settings(TrainConfig(dataset="nope"), given) == {}  # reported at run start
    assert config_diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0}) == ["b", "c"]
