"""Tasks drawn from an index (issue 18): N-way K-shot episodes for meta-learners
(:mod:`.episodes`: :class:`EpisodeSampler`, its collate function), the class splits they are drawn
from (:mod:`.splits`), and the learners that consume them (:mod:`.meta`: Prototypical Networks,
MAML and first-order MAML, the nearest-prototype baselines, the few-shot evaluation).

``import graphwalk.tasks`` is light: the names below are imported on first use (PEP 562), so torch
and Numba load when a sampler or a learner is first touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphwalk.tasks.episodes import EpisodeLabels, EpisodeSampler, collate_episode
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
    from graphwalk.tasks.splits import ClassSplit, cifar_fs_split, split_classes

_META = "graphwalk.tasks.meta"
#: public name -> the module it lives in (imported on first use)
_LAZY = {
    "EpisodeLabels": "graphwalk.tasks.episodes",
    "EpisodeSampler": "graphwalk.tasks.episodes",
    "collate_episode": "graphwalk.tasks.episodes",
    "ClassSplit": "graphwalk.tasks.splits",
    "cifar_fs_split": "graphwalk.tasks.splits",
    "split_classes": "graphwalk.tasks.splits",
    "MAML": _META,
    "MIN_EVAL_EPISODES": _META,
    "EpisodeLearner": _META,
    "FeaturePrototypes": _META,
    "ProtoNet": _META,
    "RawPrototypes": _META,
    "episode_labels": _META,
    "evaluate_episodes": _META,
    "protonet_logits": _META,
    "prototype_baseline": _META,
    "prototypes": _META,
    "split_episode": _META,
}

__all__ = [
    "ClassSplit",
    "EpisodeLabels",
    "EpisodeLearner",
    "EpisodeSampler",
    "FeaturePrototypes",
    "MAML",
    "MIN_EVAL_EPISODES",
    "ProtoNet",
    "RawPrototypes",
    "cifar_fs_split",
    "collate_episode",
    "episode_labels",
    "evaluate_episodes",
    "protonet_logits",
    "prototype_baseline",
    "prototypes",
    "split_classes",
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
