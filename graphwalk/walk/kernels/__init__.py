"""Numba kernels: the hot loops of the samplers and walkers.

Module-level ``@njit(cache=True, nogil=True)`` functions over plain contiguous arrays, with all
randomness drawn from an explicit xorshift64* state passed in (:mod:`.rng`), so results depend
only on the seed, never on the thread count or on global NumPy state.

- :func:`random_walks` (:mod:`.walks`): plain first-order walks, many walks advanced in lock-step
  per thread (independent memory reads overlap; one-walk-at-a-time walkers wait on each read).
- :func:`cluster_batches` (:mod:`.cluster`): the batch-community walk over a cluster graph.
- :func:`item_batches` (:mod:`.item`): the batch-community walk over an item (kNN) graph.
- :mod:`.pick`: the weighted draw they share and the codes for a ROOT forced by a policy.
"""

from graphwalk import _numba_cache  # noqa: F401  (first: before any kernel is defined)
from graphwalk.walk.epoch import mix_counts
from graphwalk.walk.kernels.cluster import cluster_batches
from graphwalk.walk.kernels.item import BLOCK_SHIFT, item_batches
from graphwalk.walk.kernels.pick import ROOT_DEFAULT, ROOT_TELEPORT, max_degree, weighted_pick
from graphwalk.walk.kernels.rng import seed_state
from graphwalk.walk.kernels.walks import random_walks

__all__ = [
    "BLOCK_SHIFT",
    "ROOT_DEFAULT",
    "ROOT_TELEPORT",
    "cluster_batches",
    "item_batches",
    "max_degree",
    "mix_counts",
    "random_walks",
    "seed_state",
    "weighted_pick",
]
