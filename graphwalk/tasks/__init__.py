"""Tasks drawn from an index: N-way K-shot episodes for meta-learners (:mod:`.episodes`), the class
splits they are drawn from (:mod:`.splits`), and the meta-learners that train on them
(:mod:`.meta`)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ClassSplit",
    "EpisodeLabels",
    "EpisodeSampler",
    "cifar_fs_split",
    "collate_episode",
    "split_classes",
]

_HOME = {
    "ClassSplit": "graphwalk.tasks.splits",
    "cifar_fs_split": "graphwalk.tasks.splits",
    "split_classes": "graphwalk.tasks.splits",
    "EpisodeLabels": "graphwalk.tasks.episodes",
    "EpisodeSampler": "graphwalk.tasks.episodes",
    "collate_episode": "graphwalk.tasks.episodes",
}


def __getattr__(name: str) -> Any:  # PEP 562: import torch and Numba on first use only
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'graphwalk.tasks' has no attribute {name!r}")
