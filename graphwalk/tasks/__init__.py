"""Tasks drawn from an index: N-way K-shot episodes for meta-learners (:mod:`.episodes`:
:class:`EpisodeSampler`, its collate function), the class splits they are drawn from
(:mod:`.splits`), the learners that consume them (:mod:`.meta`: Prototypical Networks, MAML and
first-order MAML, the nearest-prototype baselines, the few-shot evaluation); and curricula
(:mod:`.curriculum`: :class:`Task`, :class:`Curriculum`, pacing and hierarchies;
:mod:`.curriculum_sampler`: :class:`CurriculumSampler`; :mod:`.difficulty`: the scores that rank
items; :mod:`.bandit`: a bandit over tasks that learns the schedule).

``import graphwalk.tasks`` is light: the names below are imported on first use (PEP 562), so torch
and Numba load when a sampler or a learner is first touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphwalk.tasks.bandit import task_bandit_sampler, task_index
    from graphwalk.tasks.curriculum import Curriculum, Stage, Task
    from graphwalk.tasks.curriculum_sampler import CurriculumSampler
    from graphwalk.tasks.difficulty import difficulty_scores, rank_items
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
    "Curriculum": "graphwalk.tasks.curriculum",
    "CurriculumSampler": "graphwalk.tasks.curriculum_sampler",
    "Stage": "graphwalk.tasks.curriculum",
    "Task": "graphwalk.tasks.curriculum",
    "difficulty_scores": "graphwalk.tasks.difficulty",
    "rank_items": "graphwalk.tasks.difficulty",
    "task_bandit_sampler": "graphwalk.tasks.bandit",
    "task_index": "graphwalk.tasks.bandit",
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
    "Curriculum",
    "CurriculumSampler",
    "EpisodeLabels",
    "EpisodeLearner",
    "EpisodeSampler",
    "FeaturePrototypes",
    "MAML",
    "MIN_EVAL_EPISODES",
    "ProtoNet",
    "RawPrototypes",
    "Stage",
    "Task",
    "cifar_fs_split",
    "collate_episode",
    "difficulty_scores",
    "episode_labels",
    "evaluate_episodes",
    "protonet_logits",
    "prototype_baseline",
    "prototypes",
    "rank_items",
    "split_classes",
    "split_episode",
    "task_bandit_sampler",
    "task_index",
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
