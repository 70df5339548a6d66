"""Select one gradient update among K candidates: the discrete choice of a schedule-learning agent.

At each step, K candidate batches (from K tasks, e.g. K difficulty bands or K of a curriculum's
stages) each give a gradient; a reference batch (held out from the candidates: drawn from the
whole training set, or from a validation split) gives the direction the model should move in; the
candidate whose gradient is best aligned with the reference's (cosine similarity) is the update
applied, and every candidate's alignment is a reward for its task (a bandit over tasks learns
which tasks give useful updates: :mod:`graphwalk.tasks.bandit`). This is gradient matching per
step, as data selection by gradient similarity does over a whole dataset (CRAIG, GradMatch).

Cost: ``K + 1`` forward and backward passes per step instead of one (measured by
``bench/select_update.py``), plus ``K + 1`` copies of the gradient.

    >>> result = select_update(model, loss_fn, [(x1, y1), (x2, y2)], (x_ref, y_ref))
    >>> optimizer.step()  # the chosen candidate's gradient is in the parameters' .grad
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from graphwalk.errors import InputError

__all__ = ["SelectResult", "select_update"]


@dataclass
class SelectResult:
    """What :func:`select_update` chose.

    Attributes:
        index: the candidate applied.
        alignments: each candidate's cosine similarity with the reference gradient.
        losses: each candidate's loss (before the update).
        reference_loss: the reference batch's loss.
    """

    index: int
    alignments: list[float]
    losses: list[float]
    reference_loss: float


def _flat_grad(params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    )


def select_update(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    candidates: Sequence[tuple[torch.Tensor, torch.Tensor]],
    reference: tuple[torch.Tensor, torch.Tensor],
    *,
    params: Sequence[torch.Tensor] | None = None,
) -> SelectResult:
    """Compute each candidate's gradient and the reference's, and leave the best aligned
    candidate's gradient in the parameters' ``.grad`` (for the optimiser's next step).

    Args:
        model: the model (in training mode).
        loss_fn: ``loss_fn(model(x), y)`` is a scalar loss.
        candidates: ``K >= 1`` batches ``(x, y)``.
        reference: the batch whose gradient the update should follow.
        params: the parameters whose gradients count (default: those that require grad).

    Raises:
        InputError: no candidates, or a candidate without items.
    """
    if len(candidates) < 1:
        raise InputError("select_update needs at least one candidate batch; pass K >= 1 batches")
    ps = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not ps:
        raise InputError("the model has no parameters that require a gradient")

    def grad_of(x: torch.Tensor, y: torch.Tensor, what: str) -> tuple[torch.Tensor, float]:
        if int(x.shape[0]) == 0:
            raise InputError(f"{what} has no items; every candidate needs at least one")
        for p in ps:
            p.grad = None
        loss = loss_fn(model(x), y)
        loss.backward()
        return _flat_grad(ps), float(loss.detach())

    g_ref, ref_loss = grad_of(*reference, "the reference batch")
    ref_norm = g_ref.norm()
    grads: list[torch.Tensor] = []
    losses: list[float] = []
    aligns: list[float] = []
    for k, (x, y) in enumerate(candidates):
        g, loss = grad_of(x, y, f"candidate {k}")
        grads.append(g)
        losses.append(loss)
        denom = float(g.norm() * ref_norm)
        aligns.append(float(g @ g_ref) / denom if denom > 0 else 0.0)
    best = max(range(len(aligns)), key=lambda i: (aligns[i], -i))
    g = grads[best]
    offset = 0
    for p in ps:
        n = p.numel()
        p.grad = g[offset : offset + n].view_as(p).clone()
        offset += n
    return SelectResult(best, aligns, losses, ref_loss)


def candidate_batches(
    tasks: Any, k: int, batch_size: int, generator: torch.Generator
) -> tuple[list[int], list[torch.Tensor]]:
    """``k`` distinct tasks drawn uniformly from the task ids ``0..T-1`` of ``tasks`` (each
    item's task), and a batch of ``batch_size`` of each task's items drawn uniformly: the
    candidates of one step. Returns the tasks and the item ids of each batch."""
    t = torch.as_tensor(tasks)
    n_tasks = int(t.max()) + 1
    if not 1 <= k <= n_tasks:
        raise InputError(f"k={k} candidates from {n_tasks} tasks; use 1 <= k <= {n_tasks}")
    chosen = torch.randperm(n_tasks, generator=generator)[:k].tolist()
    batches = []
    for c in chosen:
        items = torch.nonzero(t == c).flatten()
        pick = torch.randint(0, int(items.numel()), (batch_size,), generator=generator)
        batches.append(items[pick])
    return chosen, batches
