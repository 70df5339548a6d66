"""Rewards from training hooks: the loop-agnostic RewardReporter, the PyTorch Lightning callback
and the Hugging Face TrainerCallback, each run with the real library.

A recording policy (uniform over the candidates, its own RNG) logs every ``learn()``; the tests
check one ``learn()`` per trained batch in batch order, that the rewards are the gradient norms
(or gradient cosines) computed independently of the callback, that ``gar`` leaves the last batch
of each epoch without a reward, gradient accumulation (one report per micro-batch), sampler
discovery through the libraries' loaders and wrappers, and the refusals.
"""

from __future__ import annotations

import itertools
import types

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, TensorDataset

import graphwalk as gw
from graphwalk.errors import InputError
from graphwalk.learn.hooks import RewardReporter, find_sampler
from graphwalk.learn.rewards import make_reward
from graphwalk.walk.policy import TELEPORT, WalkPolicy, WalkStep

BATCH = 64
N_BATCHES = 29  # ceil(1797 / 64)


class RecordingPolicy(WalkPolicy):
    """Uniform over the candidates (its own RNG); records every reward it learns from."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.learned: list[tuple[int, int, float]] = []

    def select(self, step: WalkStep) -> int:
        if step.candidates.size == 0:
            return TELEPORT
        return int(self.rng.choice(step.candidates))

    def learn(self, step: WalkStep, reward: float) -> None:
        self.learned.append((step.epoch, step.batch, reward))

    def batches(self) -> list[tuple[int, int]]:
        return [(e, b) for e, b, _ in self.learned]

    def rewards(self) -> np.ndarray:
        return np.array([r for _, _, r in self.learned])


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    index = gw.build_index(x, labels=d.target, clusters=10, graphs=["er"], seed=0)
    return index, TensorDataset(torch.from_numpy(x), torch.from_numpy(d.target))


def _sampler(index, policy=None, batch_size=BATCH):
    policy = RecordingPolicy() if policy is None else policy
    return gw.GraphWalkBatchSampler(index, batch_size, graph="er", seed=0, policy=policy)


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def _norm(model) -> float:
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])))


def _flat(model) -> torch.Tensor:
    return torch.cat([p.grad.detach().reshape(-1).double() for p in model.parameters()])


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def _nothing_left(sampler) -> None:
    """Every batch yielded was reported: one more report() has no batch to credit."""
    with pytest.raises(InputError, match="no batch is waiting"):
        sampler.report()


# ---------------------------------------------------------------------------------- the core
def test_reporter_reports_every_batch_its_gradient_norm_in_order(digits):
    index, ds = digits
    sampler = _sampler(index, batch_size=128)
    n = len(sampler)
    reporter = RewardReporter(sampler, "grad-norm")
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    norms = []
    for epoch in range(2):
        for x, y in DataLoader(ds, batch_sampler=sampler):
            torch.nn.functional.cross_entropy(model(x), y).backward()
            norms.append(_norm(model))
            assert reporter.after_backward(model) == pytest.approx(norms[-1], rel=1e-6)
            opt.step()
            assert reporter.after_step() == 1  # grad-norm is ready at once
            opt.zero_grad()
        assert reporter.end_epoch() == 0
        # flush_rewards() handed every reward over (without it, the last round's would wait)
        assert len(sampler.policy.learned) == (epoch + 1) * n
        _nothing_left(sampler)
    assert sampler.policy.batches() == [(e, b) for e in range(2) for b in range(n)]
    np.testing.assert_allclose(sampler.policy.rewards(), norms, rtol=1e-6)
    assert reporter.reports == 2 * n


def test_reporter_gar_credits_each_window_late_and_leaves_the_last_without_reward(digits):
    """gar over accumulation windows of two batches: the cosine of window t and t+1 is reported
    once for each of window t's batches; the last window (one batch: 15 is odd) has none."""
    index, ds = digits
    sampler = _sampler(index, batch_size=128)
    n = len(sampler)
    assert n == 15
    reporter = RewardReporter(sampler, "gar")
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    grads, sizes, made = [], [], []
    batches = list(DataLoader(ds, batch_sampler=sampler))
    for start in range(0, n, 2):
        window = batches[start : start + 2]
        for x, y in window:
            torch.nn.functional.cross_entropy(model(x), y).backward()
        grads.append(_flat(model))
        sizes.append(len(window))
        reporter.after_backward(model, batches=len(window))
        opt.step()
        made.append(reporter.after_step())
        opt.zero_grad()
    assert made == [0] + [2] * 7  # window t's reward comes with window t + 1
    assert reporter.pending_batches() == 1
    assert reporter.end_epoch() == 1  # the last batch, without a reward
    _nothing_left(sampler)
    cos = [_cos(a, b) for a, b in itertools.pairwise(grads)]
    expected = np.repeat(cos, sizes[:-1])
    assert sampler.policy.batches() == [(0, b) for b in range(n - 1)]  # batch 14: no learn()
    np.testing.assert_allclose(sampler.policy.rewards(), expected, rtol=1e-9)
    assert np.all(np.abs(expected) <= 1.0)


def test_reporter_skip_keeps_the_order(digits):
    index, ds = digits
    sampler = _sampler(index, batch_size=128)
    reporter = RewardReporter(sampler, "gar")
    model = _net()
    for i, (x, y) in enumerate(DataLoader(ds, batch_sampler=sampler)):
        if i == 3:  # a step without a gradient: reported without a reward, in its turn
            reporter.skip()
        else:
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            reporter.after_backward(model)
        reporter.after_step()
    reporter.end_epoch()
    _nothing_left(sampler)
    # batch 2's reward came with batch 4's gradient (after the skipped 3); 14 is the last
    assert sampler.policy.batches() == [(0, b) for b in range(15) if b not in (3, 14)]


def test_reporter_refuses_what_it_cannot_serve(digits):
    index, ds = digits
    sampler = _sampler(index)
    for bad in ("loss-drop", make_reward("loss-drop")):
        with pytest.raises(InputError, match=r"make_reward\('loss-drop'\).*grad-norm and gar"):
            RewardReporter(sampler, bad)
    with pytest.raises(InputError, match="unknown reward 'norm'; choose one of grad-norm, gar"):
        RewardReporter(sampler, "norm")
    other = BatchSampler(RandomSampler(ds), BATCH, drop_last=False)
    with pytest.raises(TypeError, match=r"but got BatchSampler: build the DataLoader with batch_s"):
        RewardReporter(other)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="but got RandomSampler"):
        RewardReporter(RandomSampler(ds))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no policy"):
        RewardReporter(gw.GraphWalkBatchSampler(index, BATCH, seed=0))
    with pytest.raises(InputError, match="gar' reward is computed by after_backward"):
        RewardReporter(sampler, "gar").add(1.0)
    with pytest.raises(InputError, match="batches should be an integer >= 1"):
        RewardReporter(sampler).after_backward(_net(), batches=0)


def test_reporter_takes_the_items_sampler(digits):
    index, ds = digits
    items = gw.GraphWalkSampler(index, 128, graph="er", seed=0, policy=RecordingPolicy())
    reporter = RewardReporter(items, "grad-norm")
    model = _net()
    for x, y in DataLoader(ds, sampler=items, batch_size=128):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        reporter.after_backward(model)
        reporter.after_step()
    reporter.end_epoch()
    assert items.batches.policy.batches() == [(0, b) for b in range(15)]


def test_find_sampler_unwraps_loaders_and_wrappers(digits):
    from accelerate.data_loader import prepare_data_loader

    index, ds = digits
    s = _sampler(index)
    assert find_sampler(DataLoader(ds, batch_sampler=s)) is s
    items = gw.GraphWalkSampler(index, BATCH, seed=0)
    assert find_sampler(DataLoader(ds, sampler=items, batch_size=BATCH)) is items
    # accelerate, as a multi-process Trainer prepares it: DataLoaderShard over BatchSamplerShard
    shard = prepare_data_loader(
        DataLoader(ds, batch_sampler=s), num_processes=2, process_index=0, put_on_device=False
    )
    assert type(shard.batch_sampler).__name__ == "BatchSamplerShard"
    assert find_sampler(shard) is s
    assert find_sampler({"a": [DataLoader(ds, batch_sampler=s)]}) is s  # Lightning's collections
    with pytest.raises(InputError, match=r"no graphwalk sampler found .*\(DataLoader\): pass samp"):
        find_sampler(DataLoader(ds, batch_size=BATCH, shuffle=True))
    with pytest.raises(InputError, match="draws from 2 graphwalk samplers: pass sampler="):
        find_sampler(
            [DataLoader(ds, batch_sampler=s), DataLoader(ds, batch_sampler=_sampler(index))]
        )


# ------------------------------------------------------------------------------- Lightning
def _lightning():
    import pytorch_lightning as pl  # pinned in requirements/dev.txt: a missing one fails

    from graphwalk.learn.lightning import GraphWalkRewardCallback

    class Lit(pl.LightningModule):
        """Builds its sampler in train_dataloader (as examples/lightning_module.py); reads the
        gradient in its own on_before_optimizer_step, which Lightning calls after the callbacks'
        and before clipping."""

        def __init__(self, make_sampler, dataset) -> None:
            super().__init__()
            self.make_sampler, self.dataset = make_sampler, dataset
            self.net = _net()
            self.norms: list[float] = []
            self.grads: list[torch.Tensor] = []

        def train_dataloader(self) -> DataLoader:
            self.sampler = self.make_sampler()
            return DataLoader(self.dataset, batch_sampler=self.sampler)

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def on_before_optimizer_step(self, optimizer) -> None:  # type: ignore[no-untyped-def]
            from pytorch_lightning.utilities import grad_norm

            self.norms.append(float(grad_norm(self, norm_type=2)["grad_2.0_norm_total"]))
            self.grads.append(_flat(self))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def fit(module, callback, **kwargs):  # type: ignore[no-untyped-def]
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
            callbacks=[callback],
            **kwargs,
        )
        trainer.fit(module)
        return trainer

    return Lit, fit, GraphWalkRewardCallback


@pytest.mark.slow
def test_lightning_grad_norm_finds_the_sampler_and_rewards_every_batch(digits):
    index, ds = digits
    Lit, fit, Callback = _lightning()
    policy = RecordingPolicy()
    module = Lit(lambda: _sampler(index, policy), ds)
    cb = Callback("grad-norm")  # no sampler: found in trainer.train_dataloader
    clip = 0.05
    fit(module, cb, max_epochs=2, gradient_clip_val=clip)
    assert cb.reporter is not None and cb.reporter.sampler is module.sampler
    assert module.sampler.epoch == 1
    assert policy.batches() == [(e, b) for e in range(2) for b in range(N_BATCHES)]
    rewards = policy.rewards()
    assert np.all(np.isfinite(rewards)) and np.all(rewards > 0)
    # the norms Lightning's own grad_norm() gives, before clipping (which would cap them at 0.05)
    assert len(module.norms) == 2 * N_BATCHES
    np.testing.assert_allclose(rewards, module.norms, rtol=1e-5)
    assert rewards.max() > clip
    assert cb.reporter.reports == 2 * N_BATCHES
    _nothing_left(module.sampler)


@pytest.mark.slow
def test_lightning_gar_with_accumulation(digits):
    """accumulate_grad_batches=2: 15 optimiser steps over 29 batches (the last has one); window
    t's cosine with window t+1 is reported for both its batches, the last batch gets none."""
    index, ds = digits
    Lit, fit, Callback = _lightning()
    sampler = _sampler(index)
    module = Lit(lambda: sampler, ds)
    cb = Callback("gar", sampler=sampler)
    fit(module, cb, max_epochs=1, accumulate_grad_batches=2)
    assert len(module.grads) == 15
    cos = [_cos(a, b) for a, b in itertools.pairwise(module.grads)]
    assert sampler.policy.batches() == [(0, b) for b in range(N_BATCHES - 1)]
    np.testing.assert_allclose(sampler.policy.rewards(), np.repeat(cos, 2), rtol=1e-6)
    assert np.all(np.abs(sampler.policy.rewards()) <= 1.0)
    assert cb.reporter is not None and cb.reporter.reports == N_BATCHES
    _nothing_left(sampler)


@pytest.mark.slow
def test_lightning_callback_refusals(digits):
    _, ds = digits
    _, _, Callback = _lightning()
    with pytest.raises(InputError, match=r"make_reward\('loss-drop'\)"):
        Callback("loss-drop")
    with pytest.raises(TypeError, match="but got RandomSampler"):
        Callback(sampler=RandomSampler(ds))
    cb = Callback()
    trainer = types.SimpleNamespace(train_dataloader=DataLoader(ds, batch_size=8, shuffle=True))
    with pytest.raises(InputError, match="no graphwalk sampler found.*pass sampler="):
        cb.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- HF
class _DictDataset(Dataset):
    def __init__(self, base: TensorDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        x, y = self.base[i]
        return {"x": x, "labels": y}


class _HFModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _net()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


def _hf_train(index, ds, tmp_path, callback, sampler, prepare, **kwargs):
    import transformers  # pinned in requirements/dev.txt: a missing one fails

    class Recorder(transformers.TrainerCallback):
        """Independent readings: the grad_norm the Trainer logs (before clipping), and the
        gradient at on_pre_optimizer_step (after clipping: a cosine does not mind)."""

        def __init__(self) -> None:
            self.logged: list[float] = []
            self.grads: list[torch.Tensor] = []

        def on_pre_optimizer_step(self, args, state, control, model=None, **kw):  # type: ignore[no-untyped-def]
            self.grads.append(_flat(model))

        def on_log(self, args, state, control, logs=None, **kw):  # type: ignore[no-untyped-def]
            if logs and "grad_norm" in logs:
                self.logged.append(float(logs["grad_norm"]))

    class GraphWalkTrainer(transformers.Trainer):
        def get_train_dataloader(self) -> DataLoader:
            loader = DataLoader(self.train_dataset, batch_sampler=sampler)
            return self.accelerator.prepare(loader) if prepare else loader

    recorder = Recorder()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=BATCH,
        learning_rate=0.1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
        seed=0,
        disable_tqdm=True,
        **kwargs,
    )
    trainer = GraphWalkTrainer(
        model=_HFModel(), args=args, train_dataset=_DictDataset(ds), callbacks=[callback, recorder]
    )
    trainer.train()
    return recorder


@pytest.mark.slow
def test_hf_grad_norm_accumulation_reads_the_unclipped_norm(digits, tmp_path):
    """Through accelerator.prepare (a DataLoaderShard), found by the callback; clipping at 0.05
    is active at every step, yet the rewards are the norms the Trainer logs before clipping;
    gradient_accumulation_steps=2: each step's reward for both its micro-batches (the epoch's
    last step has one)."""
    from graphwalk.learn.hf import GraphWalkRewardCallback

    index, ds = digits
    sampler = _sampler(index)
    cb = GraphWalkRewardCallback("grad-norm")
    clip = 0.05
    rec = _hf_train(
        index,
        ds,
        tmp_path,
        cb,
        sampler,
        prepare=True,
        num_train_epochs=2,
        gradient_accumulation_steps=2,
        max_grad_norm=clip,
    )
    assert cb.reporter is not None and cb.reporter.sampler is sampler
    steps_per_epoch = 15
    assert len(rec.logged) == 2 * steps_per_epoch
    assert min(rec.logged) > clip  # a norm read after clipping would be <= 0.05
    sizes = np.tile([2] * 14 + [1], 2)
    policy = sampler.policy
    assert policy.batches() == [(e, b) for e in range(2) for b in range(N_BATCHES)]
    rewards = policy.rewards()
    assert np.all(np.isfinite(rewards)) and np.all(rewards > 0)
    np.testing.assert_allclose(rewards, np.repeat(rec.logged, sizes), rtol=1e-5)
    assert cb.reporter.reports == 2 * N_BATCHES
    _nothing_left(sampler)


@pytest.mark.slow
def test_hf_gar_leaves_the_last_batch_without_reward(digits, tmp_path):
    from graphwalk.learn.hf import GraphWalkRewardCallback

    index, ds = digits
    sampler = _sampler(index)
    cb = GraphWalkRewardCallback("gar", sampler=sampler)
    rec = _hf_train(index, ds, tmp_path, cb, sampler, prepare=False, num_train_epochs=1)
    assert len(rec.grads) == N_BATCHES
    cos = [_cos(a, b) for a, b in itertools.pairwise(rec.grads)]
    assert sampler.policy.batches() == [(0, b) for b in range(N_BATCHES - 1)]
    np.testing.assert_allclose(sampler.policy.rewards(), cos, rtol=1e-6)
    assert cb.reporter is not None and cb.reporter.reports == N_BATCHES
    _nothing_left(sampler)


def test_hf_callback_refusals(digits):
    from graphwalk.learn.hf import GraphWalkRewardCallback

    _, ds = digits
    with pytest.raises(InputError, match=r"make_reward\('loss-drop'\)"):
        GraphWalkRewardCallback("loss-drop")
    with pytest.raises(TypeError, match="but got RandomSampler"):
        GraphWalkRewardCallback(sampler=RandomSampler(ds))  # type: ignore[arg-type]
    cb = GraphWalkRewardCallback()
    loader = DataLoader(ds, batch_size=8, shuffle=True)
    with pytest.raises(InputError, match="no graphwalk sampler found.*pass sampler="):
        cb.on_train_begin(None, None, None, model=_net(), train_dataloader=loader)  # type: ignore[arg-type]
