"""Policies that choose the next ROOT of a walk.

The built-in uniform (or edge-weighted) move is *static*: it needs no feedback, so the Numba kernel
walks a whole epoch in one call. A :class:`WalkPolicy` subclass is *online*: the sampler asks it for
every batch's ROOT, so it can learn from training feedback (the learned RL walker plugs in here).
In distributed training every rank runs the policy for every global batch: its decisions must
depend only on what all ranks share (the seed, the epoch, all-reduced rewards).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["WalkPolicy"]


class WalkPolicy:
    """Base class of online ROOT-choosing policies.

    Subclasses override :meth:`choose`; :meth:`reset` and :meth:`update` are optional hooks, and
    :meth:`state_dict`/:meth:`load_state_dict` carry learned state through checkpoints.
    """

    def reset(self, epoch: int, seed: int) -> None:
        """Called at the start of every epoch's walk."""

    def choose(
        self,
        batch: int,
        previous_root: int,
        candidates: npt.NDArray[np.int64],
        remaining: npt.NDArray[np.int64],
    ) -> int:
        """Return the ROOT of global batch ``batch``.

        Args:
            batch: the global batch index in this epoch.
            previous_root: the ROOT of the previous batch (-1 for the first).
            candidates: neighbours of ``previous_root`` that still have items this epoch (may be
                empty: return -1 to teleport to a random node with items left).
            remaining: items left in each candidate (cluster graphs) or 1 (item graphs).

        Returns:
            A node id with items left, or -1 to let the walk teleport.
        """
        raise NotImplementedError

    def update(self, batch: int, reward: float) -> None:
        """Feedback for a batch (e.g. the gradient-alignment reward)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state
