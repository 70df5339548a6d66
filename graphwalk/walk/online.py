"""The online path: a policy chooses every batch's ROOT (:mod:`graphwalk.walk.policy`).

:class:`PolicyDriver` asks the policy for each global batch's ROOT, has the walker draw the batch,
tells the policy what was drawn, and hands it the rewards that have arrived (through the
:class:`~graphwalk.walk.inflight.RewardLedger`). A resumed epoch replays the choices already made
instead of asking again, so the policy's own state is what it was when the state was saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphwalk.errors import InputError
from graphwalk.walk.inflight import RewardLedger
from graphwalk.walk.kernels import ROOT_TELEPORT
from graphwalk.walk.policy import TELEPORT, WalkPolicy, WalkStep
from graphwalk.walk.walker import EpochPlan, Walker

__all__ = ["PolicyDriver", "Replay"]


@dataclass
class Replay:
    """The decisions a loaded state holds for its epoch, replayed when that epoch is walked."""

    epoch: int
    choices: list[int] = field(default_factory=list)
    started: bool = False  # the policy had been reset for this epoch
    pending: list[int] = field(default_factory=list)  # decided, reward not yet handed over


class PolicyDriver:
    """Decides a policy's batches (see the module docstring).

    Args:
        policy: the policy.
        walker: the walker drawing the batches.
        ledger: the rewards in flight.
        n_nodes: nodes of the graph (a choice must be one of them, or TELEPORT).
    """

    def __init__(
        self, policy: WalkPolicy, walker: Walker, ledger: RewardLedger, n_nodes: int
    ) -> None:
        self.policy = policy
        self.walker = walker
        self.ledger = ledger
        self.n_nodes = n_nodes
        self.replay: Replay | None = None
        self._who = type(policy).__name__

    def begin(self, plan: EpochPlan, seed: int) -> None:
        """Start walking ``plan``'s epoch: hand over late rewards of earlier epochs, reset the
        policy (unless a loaded state had started this epoch) and replay loaded choices."""
        epoch = plan.epoch
        replay = self.replay if self.replay is not None and self.replay.epoch == epoch else None
        self.replay = None
        ledger = self.ledger
        ledger.hand_over(self.policy, epoch, 0, stacklevel=4)
        ledger.steps = {key: s for key, s in ledger.steps.items() if key[0] >= epoch - 1}
        if replay is None or not replay.started:
            self.policy.reset(epoch, seed)
        if replay is not None:  # decisions already made this epoch: replay, never ask again
            for b, choice in enumerate(replay.choices):
                self.decide(plan, b, forced=int(choice))
            keep = set(replay.pending)
            for b in range(plan.done):
                if b not in keep:
                    ledger.steps.pop((epoch, b), None)

    def advance(self, plan: EpochPlan, upto: int) -> None:
        """Decide and draw global batches ``[plan.done, upto)``."""
        for b in range(plan.done, upto):
            self.decide(plan, b)

    def check(self, plan: EpochPlan, b: int, choice: Any) -> int:
        """The policy's answer for batch ``b``, checked: a node that may be chosen, or
        TELEPORT."""
        if type(choice) is not int and (
            isinstance(choice, bool) or not isinstance(choice, (int, np.integer))
        ):
            raise TypeError(
                f"{self._who}.select() should return a node id (int) or "
                f"TELEPORT (-1), but returned {choice!r} for batch {b}"
            )
        c = int(choice)
        if c == TELEPORT:
            return c
        if not 0 <= c < self.n_nodes:
            raise InputError(
                f"{self._who} chose node {c} for batch {b} of epoch "
                f"{plan.epoch}, outside the graph's {self.n_nodes} nodes; return a candidate, a "
                "node of step.alive(), or TELEPORT (-1)"
            )
        self.walker.check_choice(plan, b, c, self._who)
        return c

    def decide(self, plan: EpochPlan, b: int, forced: int | None = None) -> None:
        """Ask the policy for batch ``b``'s ROOT (or replay ``forced``), then draw the batch."""
        walker, policy = self.walker, self.policy
        if forced is None and b % walker.layout.world_size == 0:
            self.ledger.hand_over(policy, plan.epoch, b, stacklevel=5)
        cands, rem = walker.candidates(plan, b)
        step = WalkStep(
            plan.epoch,
            b,
            walker.item(int(plan.roots[b - 1])) if b > 0 else -1,
            cands,
            rem,
        )
        if forced is None:
            step._alive = walker.alive(plan)
            try:
                choice = self.check(plan, b, policy.select(step))
            finally:
                step._alive = None
        else:
            choice = forced
        step.choice = choice
        plan.given[b] = ROOT_TELEPORT if choice == TELEPORT else walker.to_walk(choice)
        walker.run(plan, b, b + 1)
        step.root = walker.item(int(plan.roots[b]))
        step.teleported = choice == TELEPORT
        step.community = walker.community(plan, b)
        step.community_size = int(plan.community[b])
        step.size = int(walker.layout.sizes[b])
        plan.choices.append(choice)
        self.ledger.steps[(plan.epoch, b)] = step
        if forced is None:
            policy.observe(step)
