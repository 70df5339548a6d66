"""graphwalk: decide which training data a model sees together and in what order.

Cluster a dataset's vectors, build graphs over the clusters or the items, store them as an
immutable Parquet index, and walk them to produce training batches for a PyTorch ``DataLoader``.

``import graphwalk`` is light: the public names below are imported on first use (PEP 562), so
torch, Numba and pyarrow load when a sampler, the index or the builder is first touched, and the
Numba cache is probed then (``graphwalk._numba_cache``), not at import.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from graphwalk.errors import GraphwalkError, IndexFormatError, InputError, OutputExistsError

if TYPE_CHECKING:
    from graphwalk.build import build_index
    from graphwalk.index import Graph, GraphIndex, Level, WalkOrder
    from graphwalk.walk import (
        TELEPORT,
        BatchInfo,
        GraphWalkBatchSampler,
        GraphWalkSampler,
        WalkPolicy,
        WalkStep,
    )

try:
    __version__ = version("graphwalk")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

#: public name -> the module it lives in (imported on first use)
_LAZY = {
    "build_index": "graphwalk.build",
    "Graph": "graphwalk.index",
    "GraphIndex": "graphwalk.index",
    "Level": "graphwalk.index",
    "WalkOrder": "graphwalk.index",
    "TELEPORT": "graphwalk.walk",
    "BatchInfo": "graphwalk.walk",
    "GraphWalkBatchSampler": "graphwalk.walk",
    "GraphWalkSampler": "graphwalk.walk",
    "WalkPolicy": "graphwalk.walk",
    "WalkStep": "graphwalk.walk",
}
_SUBPACKAGES = ("build", "cli", "datasets", "index", "learn", "tasks", "train", "walk")

__all__ = [
    "TELEPORT",
    "BatchInfo",
    "Graph",
    "GraphIndex",
    "GraphWalkBatchSampler",
    "GraphWalkSampler",
    "GraphwalkError",
    "IndexFormatError",
    "InputError",
    "Level",
    "OutputExistsError",
    "WalkOrder",
    "WalkPolicy",
    "WalkStep",
    "__version__",
    "build_index",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"graphwalk.{name}")
    raise AttributeError(f"module 'graphwalk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))
