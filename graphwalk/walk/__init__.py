"""Reading the index: Numba kernels, batch samplers, the policy protocol, the reference walk and
the measurements of what the batches are (homophily) and how fast they come (profiling)."""

from graphwalk.walk.policy import TELEPORT, WalkPolicy, WalkStep
from graphwalk.walk.sampler import BatchInfo, GraphWalkBatchSampler, GraphWalkSampler

__all__ = [
    "TELEPORT",
    "BatchInfo",
    "GraphWalkBatchSampler",
    "GraphWalkSampler",
    "WalkPolicy",
    "WalkStep",
]
