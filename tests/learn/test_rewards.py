"""Rewards (graphwalk.learn.rewards) against torch's own computations, and their normaliser.

``grad-norm`` is torch's total gradient norm; ``loss-drop`` is the loss before the step minus
the loss after it on the same batch, and leaves training unchanged; ``gar`` is the cosine of
consecutive flattened gradients, credited one step late (the last batch's through ``finish()``).
The normaliser maps to ``[-1, 1]``, gives 0 before any history, follows a change of scale and
resumes exactly. Misuse (no gradients yet, unknown names, foreign states) is refused.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import graphwalk as gw
from graphwalk.errors import InputError
from graphwalk.learn import (
    REWARDS,
    GradientAlignmentReward,
    GradNormReward,
    LossDropReward,
    RewardNormalizer,
    make_policy,
    make_reward,
)
from graphwalk.walk.sampler import GraphWalkBatchSampler
from tests.conftest import make_blobs


class Net(nn.Module):
    def __init__(self, extra: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        self.unused = nn.Linear(2, 2) if extra else None  # never gets a gradient

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _model(seed: int = 0, extra: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    return Net(extra)


def _batch(seed: int, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def _backward(model: nn.Module, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y = _batch(seed)
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return x, y, loss


def _flat_grad(model: nn.Module) -> torch.Tensor:
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).double()
            for p in model.parameters()
        ]
    )


# ----------------------------------------------------------------------------- grad-norm
def test_grad_norm_is_torchs_total_gradient_norm():
    model = _model()
    _backward(model, 1)
    r = GradNormReward().after_backward(model)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    want = float(torch.nn.utils.get_total_norm(grads, norm_type=2.0))
    assert r == pytest.approx(want, rel=1e-6)
    clipped = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
    assert r == pytest.approx(clipped, rel=1e-6)
    assert r > 0


# ----------------------------------------------------------------------------- loss-drop
def test_loss_drop_is_the_loss_before_minus_after_the_step():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    reward = LossDropReward()
    assert reward.needs_second_forward
    x, y, loss = _backward(model, 2)
    assert reward.after_backward(model) is None  # not available before the step
    opt.step()
    r = reward.after_step(model, x, y, loss.item(), F.cross_entropy)
    with torch.no_grad():
        after = float(F.cross_entropy(model(x), y))
    assert r == pytest.approx(loss.item() - after, abs=1e-6)
    assert r > 0  # a gradient step on a batch lowers its loss


def test_loss_drop_leaves_training_unchanged():
    """Batch-norm statistics and the random state (dropout) are restored after the extra
    forward pass: training with the reward gives the very model training without it gives."""

    def train(with_reward: bool) -> tuple[nn.Module, torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(0.3), nn.Linear(8, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        reward = LossDropReward()
        for step in range(4):
            x, y = _batch(step)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if with_reward:
                reward.after_step(model, x, y, loss.item(), F.cross_entropy)
        return model, torch.rand(3)  # the global random state afterwards

    (a, ra), (b, rb) = train(False), train(True)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert torch.equal(ra, rb)


# ----------------------------------------------------------------------------- gar
def test_gar_is_the_cosine_of_consecutive_gradients_one_step_late():
    model = _model(extra=True)  # the unused parameter counts as zeros
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    reward = GradientAlignmentReward()
    grads, rewards = [], []
    for step in range(4):
        _backward(model, 10 + step)
        grads.append(_flat_grad(model))
        rewards.append(reward.after_backward(model))
        assert reward.pending() == 1  # this batch awaits the next one's gradient
        opt.step()
    assert rewards[0] is None  # batch 0's reward comes with batch 1
    for t in range(1, 4):
        want = float(F.cosine_similarity(grads[t - 1], grads[t], dim=0))
        assert rewards[t] == pytest.approx(want, abs=1e-9), t
        assert -1.0 <= rewards[t] <= 1.0
    assert len({round(r, 6) for r in rewards[1:]}) == 3  # not a constant
    assert reward.finish() == [None]  # the last batch: reported without a reward
    assert reward.pending() == 0 and reward.finish() == []
    _backward(model, 20)
    assert reward.after_backward(model) is None  # a new sequence starts after finish()


def test_gar_state_round_trips():
    model = _model()
    a = GradientAlignmentReward()
    _backward(model, 1)
    a.after_backward(model)
    b = GradientAlignmentReward()
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    _backward(model, 2)
    assert a.after_backward(model) == b.after_backward(model) is not None
    with pytest.raises(InputError, match="'grad-norm'.*'gar'"):
        b.load_state_dict(GradNormReward().state_dict())


# ----------------------------------------------------------------------------- misuse
@pytest.mark.parametrize("name", ["grad-norm", "gar"])
def test_a_model_with_no_gradients_is_refused(name):
    reward = make_reward(name)
    with pytest.raises(InputError, match=r"no gradients yet.*after loss\.backward\(\)"):
        reward.after_backward(_model())
    with pytest.raises(InputError, match="no parameters"):
        reward.after_backward(nn.ReLU())


def test_unknown_reward_names_are_refused_with_the_list():
    assert REWARDS == ("grad-norm", "loss-drop", "gar")
    with pytest.raises(
        InputError, match="unknown reward 'accuracy'; choose one of grad-norm, loss-drop, gar"
    ):
        make_reward("accuracy")
    assert [type(make_reward(n)) for n in REWARDS] == [
        GradNormReward,
        LossDropReward,
        GradientAlignmentReward,
    ]


# ----------------------------------------------------------------------------- normaliser
def test_normaliser_maps_to_the_unit_interval_and_is_0_before_history():
    norm = RewardNormalizer(window=100)
    assert norm(123.0) == 0.0  # no history
    rng = np.random.default_rng(0)
    out = [norm(float(v)) for v in rng.lognormal(0.0, 2.0, size=500)]
    assert min(out) == -1.0 and max(out) == 1.0
    assert all(-1.0 <= v <= 1.0 for v in out)
    assert len(norm) == 100 and norm.count == 501
    assert np.allclose(norm.quantiles(), np.percentile(norm.history(), [20, 80]))
    for n in (1, 2, 3, 7, 100):  # the quantiles are NumPy's (linear interpolation)
        small = RewardNormalizer(window=n, low=13, high=91)
        for v in rng.normal(size=n):
            small.push(float(v))
        assert np.allclose(small.quantiles(), np.percentile(small.history(), [13, 91])), n


def test_normaliser_uses_the_20th_and_80th_percentiles():
    norm = RewardNormalizer(window=1000)
    for v in range(101):  # 0..100: percentiles 20 and 80
        norm.push(float(v))
    assert norm.scale(50.0) == pytest.approx(0.0)
    assert norm.scale(20.0) == pytest.approx(-1.0) and norm.scale(80.0) == pytest.approx(1.0)
    assert norm.scale(35.0) == pytest.approx(-0.5)
    assert norm.scale(-5.0) == -1.0 and norm.scale(1e9) == 1.0
    flat = RewardNormalizer()
    for _ in range(10):
        flat.push(0.0)  # all equal (binary rewards mostly 0): below, equal, above
    assert [flat.scale(v) for v in (-1.0, 0.0, 1.0)] == [-1.0, 0.0, 1.0]


def test_normaliser_follows_a_change_of_scale():
    norm = RewardNormalizer(window=200)
    rng = np.random.default_rng(1)
    for v in rng.uniform(0.0, 1.0, 200):
        norm(float(v))
    assert norm.scale(50.0) == 1.0  # far above the old scale
    for v in rng.uniform(0.0, 100.0, 200):  # the scale grows 100-fold (non-stationary)
        norm(float(v))
    assert abs(norm.scale(50.0)) < 0.15  # now mid-range
    assert norm.scale(0.5) == -1.0


@pytest.mark.parametrize("n", [0, 30, 137])  # empty, partly filled, wrapped around
def test_normaliser_state_round_trips(n):
    rng = np.random.default_rng(n)
    a = RewardNormalizer(window=50)
    for v in rng.normal(size=n):
        a(float(v))
    b = RewardNormalizer(window=50)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    assert np.array_equal(a.history(), b.history())
    for v in rng.normal(size=80):
        assert a(float(v)) == b(float(v))
    sa, sb = a.state_dict(), b.state_dict()
    assert np.array_equal(sa.pop("history"), sb.pop("history")) and sa == sb


def test_normaliser_refuses_bad_input():
    with pytest.raises(InputError, match="window=10 but this normaliser has window=50"):
        RewardNormalizer(window=50).load_state_dict(RewardNormalizer(window=10).state_dict())
    with pytest.raises(InputError, match="low=80.*below high=20"):
        RewardNormalizer(low=80, high=20)
    with pytest.raises(InputError, match="window"):
        RewardNormalizer(window=0)
    with pytest.raises(InputError, match="not finite"):
        RewardNormalizer()(float("nan"))


# ----------------------------------------------------------------------------- in a loop
def test_the_documented_loop_credits_gar_to_every_batch_but_the_last():
    """The loop of the module docstring with a real sampler and policy: every batch is reported
    once, the rewards reach the policy, the last batch's without a reward."""
    x, y = make_blobs(n=120, dim=6, centers=3)
    index = gw.build_index(x, labels=y, clusters=6, graphs=["er"], seed=0)
    policy = make_policy("exp3s", index, "er", seed=0)
    sampler = GraphWalkBatchSampler(index, 12, graph="er", k=1, policy=policy)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y) % 3
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reward = make_reward("gar")
    reported = 0
    for idx in sampler:
        loss = F.cross_entropy(model(xt[idx]), yt[idx])
        loss.backward()
        r = reward.after_backward(model)
        opt.step()
        if r is None:
            r = reward.after_step(model, xt[idx], yt[idx], loss.item(), F.cross_entropy)
        opt.zero_grad()
        if r is not None:
            sampler.report(r)
            reported += 1
    for r in reward.finish():
        sampler.report(r)
    sampler.flush_rewards()
    assert reported == len(sampler) - 1
    d = policy.diagnostics()
    assert d["rewards_seen"] == len(sampler) - 1 and d["unmatched"] == 0
    assert np.all(np.abs(d["rewards"]) <= 1.0)
    with pytest.raises(InputError, match="no batch is waiting"):
        sampler.report(0.0)  # every batch was reported
