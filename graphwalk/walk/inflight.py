"""Rewards in flight: which yielded batches the loop has not reported yet, the rewards that have
arrived and not yet reached the policy, and the hand-over that credits each to its very step.

A ``DataLoader`` runs the sampler ahead of training (``num_workers * prefetch_factor`` batches
with workers), so a batch's reward arrives several batches after it was decided. The ledger keys
everything by ``(epoch, global batch)``: :meth:`RewardLedger.report` credits the oldest
unreported batch (or a named one), and :meth:`RewardLedger.hand_over` gives the policy, in batch
order, the rewards of every batch decided before a point of the walk, with the step that drew
it. Under ``torch.distributed`` the rewards of all ranks are gathered at every report
(:func:`gather_rewards`), so every rank's policy learns the same things in the same order.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from typing import Any

import numpy as np

from graphwalk.errors import InputError
from graphwalk.walk.policy import WalkPolicy, WalkStep

__all__ = ["RewardLedger", "gather_rewards"]


def check_reward(reward: Any) -> float | None:
    """A reward as a float (a 0-d tensor or array is accepted), or ``None``."""
    if type(reward) is float:  # the common case, first
        return reward
    if isinstance(reward, (str, bytes)):
        raise TypeError(f"reward should be a number or None, but got {reward!r}")
    if reward is not None and (
        isinstance(reward, bool) or not isinstance(reward, (int, float, np.number))
    ):
        try:
            return float(reward)  # a 0-d tensor or array
        except (TypeError, ValueError):
            raise TypeError(
                f"reward should be a number or None, but got {type(reward).__name__}"
            ) from None
    return None if reward is None else float(reward)


class RewardLedger:
    """The batches in flight and the rewards waiting for the policy (see the module docstring).

    Attributes:
        inflight: ``(epoch, global batch)`` yielded and not reported, oldest first.
        inbox: ``(epoch, global batch, reward)`` arrived, not yet handed to the policy.
        steps: the :class:`WalkStep` of every decided batch whose reward has not been handed
            over.
        tracking: whether the loop reports (then a state resumes after the last batch
            reported, not the last yielded).
        skipped: non-finite rewards skipped.
    """

    def __init__(self, tracking: bool) -> None:
        self.inflight: deque[tuple[int, int]] = deque()
        self.inbox: list[tuple[int, int, float]] = []
        self.steps: dict[tuple[int, int], WalkStep] = {}
        self.tracking = tracking
        self.skipped = 0

    def unreported(self, epoch: int) -> int:
        """Batches of ``epoch`` yielded and not reported."""
        return sum(1 for e, _ in self.inflight if e == epoch)

    def pending(self, epoch: int) -> list[int]:
        """Global batches of ``epoch`` decided whose reward has not reached the policy."""
        return sorted(b for e, b in self.steps if e == epoch)

    def take(self, epoch: int, gb: int | None, name: int | None) -> tuple[int, int, int]:
        """Mark a batch reported: the oldest in flight, or global batch ``gb`` (this rank's
        batch ``name``) of ``epoch``. Returns ``(epoch, global batch, delay)``, the delay being
        the batches yielded after it and still in flight."""
        if gb is None:
            if not self.inflight:
                raise InputError(
                    "report(): no batch is waiting for a reward (every batch yielded so far was "
                    "reported); call report() once per batch, after training on it"
                )
            epoch, gb = self.inflight.popleft()
        else:
            key = (epoch, gb)
            if key not in self.inflight:
                raise InputError(
                    f"report(batch={name}): batch {name} of epoch {epoch} was not yielded "
                    "by this pass or was reported already"
                )
            self.inflight.remove(key)
        delay = sum(1 for e, g in self.inflight if (e, g) > (epoch, gb))
        return epoch, gb, delay

    def receive(self, rows: list[tuple[int, int, float | None]], stacklevel: int) -> None:
        """File the rewards of reported batches (``None``: no reward; non-finite: skipped)."""
        for e, g, r in rows:
            if r is None:
                continue
            if not math.isfinite(r):
                self.skipped += 1
                if self.skipped == 1:
                    warnings.warn(
                        f"reward {r} for batch {g} of epoch {e} is not finite: skipped (counted "
                        "in sampler.skipped_rewards; further ones are skipped silently)",
                        RuntimeWarning,
                        stacklevel=stacklevel + 1,
                    )
                continue
            self.inbox.append((int(e), int(g), float(r)))

    def hand_over(self, policy: WalkPolicy, epoch: int, b: int, stacklevel: int) -> None:
        """Give ``policy`` the rewards that arrived for batches decided before global batch
        ``b`` of ``epoch``, in batch order (called at the start of every round of
        ``world_size``)."""
        inbox = self.inbox
        if not inbox:
            return
        if len(inbox) == 1:  # the common case: one reward since the last decision
            if (inbox[0][0], inbox[0][1]) >= (epoch, b):
                return
            ready, self.inbox = inbox, []
        else:
            ready = sorted(r for r in inbox if (r[0], r[1]) < (epoch, b))
            if not ready:
                return
            self.inbox = [r for r in inbox if (r[0], r[1]) >= (epoch, b)]
        for e, gb, reward in ready:
            step = self.steps.pop((e, gb), None)
            if step is None:  # only a state from an older epoch can lack it
                warnings.warn(
                    f"reward for batch {gb} of epoch {e} dropped: its step is no longer held "
                    "(the sampler resumed from a state taken in a later epoch)",
                    RuntimeWarning,
                    stacklevel=stacklevel + 1,
                )
                continue
            policy.learn(step, reward)


def gather_rewards(
    epoch: int, gb: int, reward: float | None, world_size: int
) -> list[tuple[int, int, float | None]]:
    """Every rank's ``(epoch, global batch, reward)`` of this step, on every rank."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise InputError(
            f"world_size={world_size} but torch.distributed is not initialised: report() "
            "shares rewards across ranks with a collective; call init_process_group first "
            "(or use world_size=1)"
        )
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    row = torch.tensor(
        [float(epoch), float(gb), 0.0 if reward is None else float(reward), reward is not None],
        dtype=torch.float64,
        device=device,
    )
    out = [torch.empty_like(row) for _ in range(world_size)]
    dist.all_gather(out, row)
    rows = []
    for t in out:
        e, g, r, has = t.tolist()
        rows.append((int(e), int(g), float(r) if has else None))
    return rows
