"""graphwalk: decide which training data a model sees together and in what order.

Cluster a dataset's vectors, build graphs over the clusters or the items, store them as an
immutable Parquet index, and walk them to produce training batches for a PyTorch ``DataLoader``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# First: checks that Numba can cache the kernels that the imports below define (falls back if not).
from graphwalk import _numba_cache  # noqa: F401
from graphwalk.build import build_index
from graphwalk.errors import GraphwalkError, IndexFormatError, InputError, OutputExistsError
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

__all__ = [
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
    "TELEPORT",
    "WalkOrder",
    "WalkPolicy",
    "WalkStep",
    "__version__",
    "build_index",
]
