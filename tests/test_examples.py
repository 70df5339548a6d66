"""Run the integration examples of the README and check what they claim."""

import importlib
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def _examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def _main(name):
    sys.modules.pop(name, None)
    return importlib.import_module(name).main


def test_plain_loop_trains():
    res = _main("plain_loop")(epochs=3)
    assert res["batches_per_epoch"] == 63  # ceil(4000 / 64)
    assert res["losses"][-1] < res["losses"][0]


def test_stateful_dataloader_resumes_exactly():
    res = _main("stateful_dataloader")(num_workers=2, stop_after=20)
    assert res["identical"] and res["resumed_batches"] == res["total"] - 20


@pytest.mark.parametrize("num_workers", [0, 2])
def test_reward_loop_credits_every_reward_with_the_delay_it_prints(num_workers, capsys):
    res = _main("reward_loop")(epochs=2, num_workers=num_workers)
    out = capsys.readouterr().out
    delay = 2 * 2 if num_workers else 0  # num_workers * prefetch_factor (default 2)
    assert res["delay"] == delay
    assert f"reward delay: {delay} batches (num_workers={num_workers})" in out
    assert res["steps"] == 2 * res["batches_per_epoch"] == 2 * 57  # ceil(1797 / 32)
    # every reward but the last delay + 1 (they wait for the walk's next decision) was credited
    assert res["credited"] == res["steps"] - delay - 1
    assert f"rewards credited to the policy: {res['credited']} of {res['steps']}" in out
    assert res["steered"] > res["steps"] // 2  # the policy chose most ROOTs
    assert res["losses"][-1] < res["losses"][0]


@pytest.mark.slow
def test_lightning_keeps_the_sampler_and_advances_epochs():
    res = _main("lightning_module")(epochs=2)
    assert res["sampler_kept"] and res["epochs_seen"] == [0, 1]


@pytest.mark.slow
def test_hf_trainer_uses_the_sampler():
    res = _main("hf_trainer")(epochs=1)
    assert res["steps"] == res["batches_per_epoch"] == 63
