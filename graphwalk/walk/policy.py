"""Policies that choose the next ROOT of a walk, and the protocol that feeds them rewards.

The built-in uniform (or edge-weighted) move is *static*: it needs no feedback, so the Numba kernel
walks a whole epoch in one call. A :class:`WalkPolicy` is *online*: the sampler asks it for every
batch's ROOT, so it can learn from training feedback (the learned walker plugs in here).

The protocol, in the order things happen for global batch ``b`` of epoch ``e``:

1. :meth:`WalkPolicy.select` gets a :class:`WalkStep` (``epoch``, ``batch``, the previous ROOT,
   the candidates: ROOT's neighbours with items left near them, with how many) and returns a node,
   or :data:`TELEPORT`. With no candidate, ``step.alive()`` lists the nodes that still have items.
2. The batch is drawn; :meth:`WalkPolicy.observe` is told the ROOT and community actually used.
3. The loop trains on the batch (often several batches later: a ``DataLoader`` with workers runs the
   sampler ``num_workers * prefetch_factor`` batches ahead) and calls
   ``sampler.report(reward)``; the sampler hands the reward to :meth:`WalkPolicy.learn` together
   with the very :class:`WalkStep` of that batch, whatever the delay. Rewards are handed over at the
   start of each round of ``world_size`` global batches (every batch on one process), in batch
   order, so that every rank, given the same rewards (``report`` shares them), makes the same
   choices.

Resume never asks the policy again about batches already decided: the sampler's ``state_dict``
holds the epoch's choices so far and the policy's own :meth:`WalkPolicy.state_dict` (parameters,
optimiser, RNG, reward normaliser), which the policy must fill for resume to be exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError

__all__ = ["TELEPORT", "WalkPolicy", "WalkStep", "check_policy"]

#: What :meth:`WalkPolicy.select` returns to ask for a teleport to a random node with items left.
TELEPORT = -1


@dataclass
class WalkStep:
    """One decision of a walk: what the policy saw, what it chose, and what was drawn.

    Attributes:
        epoch: the epoch of the walk.
        batch: the global batch (``rank + i * world_size`` for rank ``rank``'s ``i``-th batch).
        previous_root: the previous batch's ROOT (-1 before the first batch).
        candidates: nodes the walk may move to: ROOT's neighbours with items left (cluster
            graphs) or through which the breadth-first search reaches the next unused items (item
            graphs); with replacement, all of ROOT's neighbours.
        remaining: for each candidate, its items left (cluster graphs) or the unused items among
            it and its own neighbours (item graphs; 0 when its unused items are two hops away).
        choice: what the policy returned (set after :meth:`WalkPolicy.select`).
        root: the ROOT actually used (after a teleport: the node drawn).
        teleported: whether ROOT was drawn at random (asked for, or no candidate).
        community: the community (cluster graphs: ROOT, its sampled neighbours, and the random
            clusters added if it ran dry while the batch was drawn; item graphs: the items the
            breadth-first search took, i.e. the batch without its ``mix`` share).
        community_size: items ROOT and its sampled neighbours held when the batch was drawn
            (cluster graphs) or nodes its breadth-first search reached (item graphs).
        size: items in the batch.
    """

    epoch: int
    batch: int
    previous_root: int
    candidates: npt.NDArray[np.int64]
    remaining: npt.NDArray[np.int64]
    choice: int = TELEPORT
    root: int = -1
    teleported: bool = False
    community: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    community_size: int = 0
    size: int = 0
    _alive: Callable[[], npt.NDArray[np.int64]] | None = field(default=None, repr=False)

    def alive(self) -> npt.NDArray[np.int64]:
        """The nodes that still have items this epoch (all nodes with replacement).

        Computed on request, and only while :meth:`WalkPolicy.select` runs (on an item graph it
        is a pass over every item)."""
        if self._alive is None:
            raise RuntimeError("WalkStep.alive() is only available inside WalkPolicy.select()")
        return self._alive()


class WalkPolicy:
    """Base class of online ROOT-choosing policies: one protocol, ``select`` / ``observe`` /
    ``learn``, with rewards that reach :meth:`learn` only through ``sampler.report()``.

    Override :meth:`select`; the other hooks are optional. Every hook is called in the main
    process (a ``DataLoader`` iterates its batch sampler there, whatever ``num_workers``).

    The older hooks ``choose(batch, previous_root, candidates, remaining)`` and
    ``update(batch, reward)`` are gone: a policy that learned through ``update()`` called by the
    loop never told the sampler which batches were trained, and its state silently resumed at the
    first batch of the epoch. A policy class that still defines either is refused when a sampler
    is made with it (:func:`check_policy`), with the replacement named.
    """

    def reset(self, epoch: int, seed: int) -> None:
        """Called when a new epoch's walk starts (not when a resumed epoch is replayed)."""

    def select(self, step: WalkStep) -> int:
        """Return the ROOT of ``step.batch``: a node id, or :data:`TELEPORT` (-1) to jump to a
        uniformly random node with items left. On a cluster graph the node must have items left;
        on an item graph any node may be ROOT (the batch is the unused items nearest to it)."""
        raise NotImplementedError(f"{type(self).__name__} should override select(step)")

    def observe(self, step: WalkStep) -> None:
        """Called after the batch of ``step`` is drawn: ``step.root``, ``step.community`` and
        ``step.teleported`` say what was actually used."""

    def learn(self, step: WalkStep, reward: float) -> None:
        """The reward of the batch drawn at ``step`` (credited exactly, however late it arrives),
        as the loop passed it to ``sampler.report(reward)``."""

    def state_dict(self) -> dict[str, Any]:
        """Everything the policy's future choices depend on (parameters, RNG, statistics)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


#: hooks of the protocol before select/observe/learn, and what replaces each
_RETIRED = {
    "choose": "select(step) (step.batch, step.previous_root, step.candidates, step.remaining)",
    "update": "learn(step, reward), fed by sampler.report(reward) after each training step",
}


def check_policy(policy: object, graph: str | None = None, n_nodes: int | None = None) -> None:
    """Refuse what is not a :class:`WalkPolicy` (``None``: no policy, the static walk), a policy
    that defines the retired hooks ``choose`` or ``update``, and one made for another graph than
    the sampler's ``graph`` of ``n_nodes`` nodes (policies that record theirs, as the learned
    walkers do in ``graph_name`` and ``n_nodes``, also inside a wrapper's ``policy``)."""
    if policy is None:
        return
    name = type(policy).__name__
    retired = [h for h in _RETIRED if callable(getattr(policy, h, None))]
    if not isinstance(policy, WalkPolicy):
        hint = (
            f" (it defines {', '.join(h + '()' for h in retired)}: the retired protocol)"
            if retired
            else ""
        )
        raise TypeError(
            f"policy should be a WalkPolicy, but got {name}{hint}; subclass "
            "graphwalk.WalkPolicy and override select(step)"
        )
    own = [c for c in type(policy).__mro__ if c not in (WalkPolicy, object)]
    old = [h for h in _RETIRED if any(h in vars(c) for c in own)]
    if old:
        raise TypeError(
            f"{name} defines {' and '.join(h + '()' for h in old)}, "
            f"{'hooks' if len(old) > 1 else 'a hook'} the sampler no longer calls; rename "
            + "; ".join(f"{h}() to {_RETIRED[h]}" for h in old)
        )
    if type(policy).select is WalkPolicy.select:
        raise TypeError(f"{name} should override select(step)")
    chain: list[object] = []  # the policy and the policies it wraps
    inner: object = policy
    while inner is not None and len(chain) < 16:
        chain.append(inner)
        inner = getattr(inner, "policy", None)
    for p in chain:  # the graph's name first: the clearer message
        theirs = getattr(p, "graph_name", None)
        if graph is not None and isinstance(theirs, str) and theirs != graph:
            raise InputError(
                f"the policy {type(p).__name__} was made for graph {theirs!r} but the "
                f"sampler walks graph {graph!r}; make the policy for graph {graph!r}"
            )
    for p in chain:
        count = getattr(p, "n_nodes", None)
        if n_nodes is not None and isinstance(count, int) and count != n_nodes:
            raise InputError(
                f"the policy {type(p).__name__} was made for a graph of {count} nodes but "
                f"the sampler's graph has {n_nodes}; make the policy for the sampler's graph"
            )
