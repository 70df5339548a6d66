"""graphwalk: decide which training data a model sees together and in what order.

Cluster a dataset's vectors, build graphs over the clusters or the items, store them as an
immutable Parquet index, and walk them to produce training batches for a PyTorch ``DataLoader``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# First: checks that Numba can cache the kernels that the imports below define (falls back if not).
from graphwalk import _numba_cache  # noqa: F401
from graphwalk.build import build_index
from graphwalk.cluster import Level
from graphwalk.errors import GraphwalkError, IndexFormatError, InputError, OutputExistsError
from graphwalk.graphs import Graph
from graphwalk.index import GraphIndex
from graphwalk.policy import TELEPORT, WalkPolicy, WalkStep
from graphwalk.sampler import BatchInfo, GraphWalkBatchSampler, GraphWalkSampler

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
    "WalkPolicy",
    "WalkStep",
    "__version__",
    "build_index",
]
