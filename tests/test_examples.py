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


@pytest.mark.slow
def test_lightning_keeps_the_sampler_and_advances_epochs():
    res = _main("lightning_module")(epochs=2)
    assert res["sampler_kept"] and res["epochs_seen"] == [0, 1]


@pytest.mark.slow
def test_hf_trainer_uses_the_sampler():
    res = _main("hf_trainer")(epochs=1)
    assert res["steps"] == res["batches_per_epoch"] == 63
