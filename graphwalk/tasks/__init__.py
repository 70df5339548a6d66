"""Tasks over the index: episodes for meta-learners and the meta-learners that consume them
(issue 18).

:mod:`graphwalk.tasks.meta` holds the learners (Prototypical Networks, MAML and first-order MAML,
the nearest-prototype baselines) and the few-shot evaluation; they take plain episode tensors.
``import graphwalk.tasks`` is light: the names below are imported on first use (PEP 562), so
torch loads when a learner is first touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphwalk.tasks.meta import (
        MAML,
        MIN_EVAL_EPISODES,
        EpisodeLearner,
        FeaturePrototypes,
        ProtoNet,
        RawPrototypes,
        episode_labels,
        evaluate_episodes,
        protonet_logits,
        prototype_baseline,
        prototypes,
        split_episode,
    )

#: public name -> the module it lives in (imported on first use)
_LAZY = {
    "MAML": "graphwalk.tasks.meta",
    "MIN_EVAL_EPISODES": "graphwalk.tasks.meta",
    "EpisodeLearner": "graphwalk.tasks.meta",
    "FeaturePrototypes": "graphwalk.tasks.meta",
    "ProtoNet": "graphwalk.tasks.meta",
    "RawPrototypes": "graphwalk.tasks.meta",
    "episode_labels": "graphwalk.tasks.meta",
    "evaluate_episodes": "graphwalk.tasks.meta",
    "protonet_logits": "graphwalk.tasks.meta",
    "prototype_baseline": "graphwalk.tasks.meta",
    "prototypes": "graphwalk.tasks.meta",
    "split_episode": "graphwalk.tasks.meta",
}

__all__ = [
    "MAML",
    "MIN_EVAL_EPISODES",
    "EpisodeLearner",
    "FeaturePrototypes",
    "ProtoNet",
    "RawPrototypes",
    "episode_labels",
    "evaluate_episodes",
    "protonet_logits",
    "prototype_baseline",
    "prototypes",
    "split_episode",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graphwalk.tasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
