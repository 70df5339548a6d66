"""The sharded build's compiled kernels (Numba): plain arrays in, plain arrays out."""

from __future__ import annotations

import numpy as np
from numba import njit

from graphwalk import _numba_cache  # noqa: F401  (first: before any kernel is defined)

__all__ = ["refine_rows"]


@njit(cache=True, nogil=True)
def refine_rows(vec, ids, dist, lo, hi, out_ids, out_dist):  # pragma: no cover - compiled
    """Neighbours of neighbours for rows ``lo..hi``: each row's candidates are its ``k`` stored
    neighbours (with their stored distances) and their neighbours (squared L2 computed here);
    the ``k`` nearest distinct ones, ties by smaller id, go to ``out_*[row - lo]``. Returns how
    many rows changed."""
    k = ids.shape[1]
    d = vec.shape[1]
    changed = 0
    best_i = np.empty(k, np.int64)
    best_d = np.empty(k, np.float32)
    for row in range(lo, hi):
        for j in range(k):
            best_i[j] = -1
            best_d[j] = np.inf
        n_kept = 0
        for hop in range(k + 1):
            if hop > 0 and ids[row, hop - 1] < 0:
                continue
            for j in range(k):
                c = ids[row, j] if hop == 0 else ids[ids[row, hop - 1], j]
                if c < 0 or c == row:
                    continue
                dup = False
                for t in range(n_kept):
                    if best_i[t] == c:
                        dup = True
                        break
                if dup:
                    continue
                if hop == 0:
                    dc = dist[row, j]
                else:
                    acc = np.float32(0.0)
                    for f in range(d):
                        diff = vec[row, f] - vec[c, f]
                        acc += diff * diff
                    dc = acc
                # insert into the sorted list if it beats the worst (ties: smaller id)
                if n_kept == k:
                    w = k - 1
                    if dc > best_d[w] or (dc == best_d[w] and c > best_i[w]):
                        continue
                    pos = w
                else:
                    pos = n_kept
                    n_kept += 1
                while pos > 0 and (
                    best_d[pos - 1] > dc or (best_d[pos - 1] == dc and best_i[pos - 1] > c)
                ):
                    best_d[pos] = best_d[pos - 1]
                    best_i[pos] = best_i[pos - 1]
                    pos -= 1
                best_d[pos] = dc
                best_i[pos] = c
        diff_row = False
        for j in range(k):
            if best_i[j] != ids[row, j]:
                diff_row = True
            out_ids[row - lo, j] = best_i[j]
            out_dist[row - lo, j] = best_d[j]
        if diff_row:
            changed += 1
    return changed
