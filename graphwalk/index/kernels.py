"""The index's compiled checks and groupings (Numba): plain arrays in, plain arrays out."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from graphwalk import _numba_cache  # noqa: F401  (first: before any kernel is defined)

__all__ = ["first_bad_row", "group_members"]


@njit(cache=True, nogil=True)
def first_bad_row(indptr: Any, indices: Any) -> int:  # pragma: no cover - compiled
    """The first node with a self-loop or a repeated neighbour, or -1 (O(edges))."""
    n = indptr.shape[0] - 1
    stamp = np.full(n, -1, np.int64)
    for u in range(n):
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            if v == u or stamp[v] == u:
                return u
            stamp[v] = u
    return -1


@njit(cache=True, nogil=True)
def group_members(assignment: Any, indptr: Any, order: Any) -> None:  # compiled
    """Counting sort: ``order[indptr[c]:indptr[c+1]]`` = items of cluster ``c``, ascending.

    ``indptr`` (length K + 1, zeros) and ``order`` (length n) are allocated by the caller, so
    their memory is visible to Python's allocation tracing.
    """
    for a in assignment:
        indptr[a + 1] += 1
    for c in range(indptr.shape[0] - 1):
        indptr[c + 1] += indptr[c]
    pos = indptr[:-1].copy()
    for i in range(assignment.shape[0]):
        c = assignment[i]
        order[pos[c]] = i
        pos[c] += 1
