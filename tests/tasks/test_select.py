"""select_update (graphwalk/tasks/select.py): the best aligned candidate's gradient is the one
left for the optimiser, the alignments are cosines, and bad input is refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphwalk.errors import InputError
from graphwalk.tasks.select import candidate_batches, select_update


def _grad(model, x, y):
    model.zero_grad()
    F.mse_loss(model(x), y).backward()
    return torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_candidate_that_agrees_with_the_reference_is_applied(seed):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(32, 3)
    ref = (x, x @ torch.tensor([[1.0], [2.0], [3.0]]))
    same = (x + 0.01 * torch.randn_like(x), ref[1])  # nearly the reference's problem
    other = (x, -ref[1])  # the opposite target: the opposite gradient, more or less
    res = select_update(model, F.mse_loss, [other, same], ref)
    assert res.index == 1
    assert res.alignments[1] > 0.9 and res.alignments[0] < 0
    applied = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert torch.allclose(applied, _grad(model, *same))
    g_ref, g_other = _grad(model, *ref), _grad(model, *other)
    cos = float(g_other @ g_ref / (g_other.norm() * g_ref.norm()))
    assert res.alignments[0] == pytest.approx(cos, rel=1e-5)


def test_candidate_batches_come_from_distinct_tasks():
    tasks = torch.arange(100) % 5
    g = torch.Generator().manual_seed(0)
    chosen, batches = candidate_batches(tasks, 3, 8, g)
    assert len(set(chosen)) == 3
    for c, b in zip(chosen, batches, strict=True):
        assert b.numel() == 8 and bool((tasks[b] == c).all())
    with pytest.raises(InputError, match="1 <= k <= 5"):
        candidate_batches(tasks, 6, 8, g)


def test_bad_input_is_refused():
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(4, 3), torch.randn(4, 1)
    with pytest.raises(InputError, match="at least one candidate"):
        select_update(model, F.mse_loss, [], (x, y))
    with pytest.raises(InputError, match="candidate 0 has no items"):
        select_update(model, F.mse_loss, [(x[:0], y[:0])], (x, y))
