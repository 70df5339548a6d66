"""The sampler's versioned state (``state_dict`` / ``load_state_dict``): what it holds, and the
checks a loaded state passes before it is used.

A state is small and picklable: ``{"version", "epoch", "yielded", "settings"}``, and with a
policy ``"walk"`` (the epoch's choices so far, whether the policy was reset for it, the batches
whose reward has not reached the policy, the rewards received and not handed over) and
``"policy"`` (the policy's own ``state_dict``). Version 1 (before item graphs ignored ``k`` and
before the policy's class was recorded) still loads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphwalk.errors import InputError
from graphwalk.walk.online import Replay
from graphwalk.walk.policy import TELEPORT

__all__ = ["STATE_VERSION", "check_position", "check_settings", "read_walk", "walk_record"]

STATE_VERSION = 2


def check_settings(state: Any, mine: dict[str, Any], kind: str) -> None:
    """Refuse a state that is not a sampler's, or was saved with other settings."""
    if not isinstance(state, dict) or state.get("version") not in (1, STATE_VERSION):
        raise InputError(f"not a GraphWalkBatchSampler state (version {STATE_VERSION} expected)")
    theirs = dict(state.get("settings", {}))
    if state["version"] == 1:  # before item graphs ignored k and policies were recorded
        theirs.setdefault("policy", None)
        if kind == "item":
            theirs["k"] = None
    diff = [key for key in mine if theirs.get(key) != mine[key]]
    if diff:
        key = diff[0]
        raise InputError(
            f"the state was saved with {key}={theirs.get(key)!r} but this sampler has "
            f"{key}={mine[key]!r}; resume with the same index and settings"
        )


def check_position(state: dict[str, Any], num_batches: int) -> tuple[int, int]:
    """The state's ``(epoch, batches of it this rank is past)``, checked."""
    epoch, position = state.get("epoch"), state.get("yielded")
    for name, v, hi in (("epoch", epoch, None), ("yielded", position, num_batches)):
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, np.integer))
            or v < 0
            or (hi is not None and v > hi)
        ):
            rng = "a non-negative integer" if hi is None else f"an integer in [0, {hi}]"
            raise InputError(f"state field {name!r} should be {rng}, but is {v!r}")
    assert isinstance(epoch, (int, np.integer)) and isinstance(position, (int, np.integer))
    return int(epoch), int(position)


def walk_record(
    choices: list[int], started: bool, pending: list[int], inbox: list[tuple[int, int, float]]
) -> dict[str, Any]:
    """The ``"walk"`` entry of a state (plain lists: a deep copy of the sampler's own)."""
    return {
        "choices": [int(c) for c in choices],
        "started": bool(started),
        "pending": [int(b) for b in pending],
        "inbox": [[int(e), int(g), float(r)] for e, g, r in inbox],
    }


def read_walk(
    state: dict[str, Any], epoch: int, n_nodes: int, n_global: int
) -> tuple[Replay, list[tuple[int, int, float]]]:
    """The decisions to replay and the rewards received that a state's ``"walk"`` holds."""
    walk = state.get("walk", {"choices": [], "started": False, "pending": [], "inbox": []})
    choices = [int(c) for c in walk["choices"]]
    if not all(c == TELEPORT or 0 <= c < n_nodes for c in choices) or len(choices) > n_global:
        raise InputError("state field 'walk' holds choices outside the graph")
    replay = Replay(epoch, choices, bool(walk["started"]), [int(b) for b in walk["pending"]])
    inbox = [(int(e), int(g), float(r)) for e, g, r in walk.get("inbox", [])]
    return replay, inbox
