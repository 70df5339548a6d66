"""Choosing nodes: the weighted draw every kernel shares, the codes by which a sampler forces or
leaves a batch's ROOT, and a row-length helper."""

from __future__ import annotations

from numba import njit

from graphwalk.walk.kernels.rng import uniform

__all__ = ["ROOT_DEFAULT", "ROOT_TELEPORT", "max_degree", "weighted_pick"]

#: ``roots_given[b]`` values: a node id forces ROOT; these two leave it to the walk.
ROOT_DEFAULT = -1  # the walk's own move (to a neighbour, or a teleport)
ROOT_TELEPORT = -2  # a teleport asked for by a policy


@njit(inline="always")
def weighted_pick(state, weights, lo, hi):
    """A position ``j`` in ``[lo, hi)`` drawn with probability ``weights[j] / sum(weights[lo:hi])``
    (one uniform draw; the sum is accumulated in float64 in index order, and rounding that leaves
    the draw unspent picks ``hi - 1``)."""
    tot = 0.0
    for j in range(lo, hi):
        tot += weights[j]
    u = uniform(state) * tot
    for j in range(lo, hi):
        u -= weights[j]
        if u < 0.0:
            return j
    return hi - 1


@njit(cache=True, nogil=True)
def max_degree(indptr):
    """Largest row length of a CSR ``indptr``, without a temporary array."""
    best = 0
    for i in range(indptr.shape[0] - 1):
        d = indptr[i + 1] - indptr[i]
        if d > best:
            best = d
    return best
