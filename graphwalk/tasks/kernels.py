"""The episode kernel: a whole epoch of N-way K-shot episodes in one compiled call.

Every draw comes from one xorshift64* stream seeded by ``(seed, epoch)``
(:mod:`graphwalk.walk.kernels.rng`), so an epoch's episodes depend on nothing else. Classes and
items are drawn by partial Fisher-Yates shuffles on scratch copies (of the eligible classes, of
each parent's children, of each class's members) made fresh for every epoch: a draw of ``m`` from
a segment of ``n`` costs ``m`` swaps, not ``n``, and leaves a permutation that the next draw from
the same segment starts from, which keeps every draw uniform.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from graphwalk import _numba_cache  # noqa: F401  (first: before any kernel is defined)
from graphwalk.walk.kernels.rng import below

__all__ = ["MODE_UNIFORM", "MODE_WALK", "MODE_WITHIN", "draw_episodes"]

MODE_UNIFORM = 0  # n_way classes uniformly among the eligible ones
MODE_WALK = 1  # ROOT and n_way - 1 of its neighbours on a class graph; ROOT then moves
MODE_WITHIN = 2  # n_way children of one parent class of a coarser level


@njit(inline="always")
def _partial_shuffle(state, arr, lo, hi, m):
    """Move a uniform sample of ``m`` of ``arr[lo:hi]`` to ``arr[lo:lo + m]``, in random order."""
    for j in range(m):
        r = lo + j + below(state, hi - lo - j)
        t = arr[lo + j]
        arr[lo + j] = arr[r]
        arr[r] = t


@njit(cache=True, nogil=True)
def draw_episodes(
    state,
    mode,
    eligible,
    ok,
    members_indptr,
    members,
    g_indptr,
    g_indices,
    p_indptr,
    p_children,
    n_way,
    k_shot,
    q_query,
    out_items,
    out_classes,
):
    """Draw ``out_items.shape[0]`` episodes.

    Args:
        state: the xorshift state (uint64[1]), advanced.
        mode: ``MODE_UNIFORM``, ``MODE_WALK`` or ``MODE_WITHIN``.
        eligible: int64 ids of the classes an episode may use (a scratch copy: permuted).
        ok: uint8 per class of the level: 1 when eligible.
        members_indptr, members: CSR of each class's items (``members`` a scratch copy: permuted).
        g_indptr, g_indices: the class graph (``MODE_WALK``), CSR over the level's classes.
        p_indptr, p_children: each usable parent's eligible children (``MODE_WITHIN``; a scratch
            copy: permuted).
        n_way, k_shot, q_query: the episode's shape.
        out_items: int64 ``(episodes, n_way * (k_shot + q_query))``: support grouped by class
            (label order), then query grouped the same way.
        out_classes: int64 ``(episodes, n_way)``: the class of each label 0..n_way-1.
    """
    n_episodes = out_items.shape[0]
    n_classes = ok.shape[0]
    per = k_shot + q_query
    n_eligible = eligible.shape[0]
    chosen = np.empty(n_way, np.int64)
    stamp = np.zeros(n_classes, np.int64)  # the episode (+1) that last chose a class (walk)
    queue = np.empty(n_classes, np.int64)
    root = -1
    if mode == MODE_WALK:
        root = eligible[below(state, n_eligible)]
    for e in range(n_episodes):
        if mode == MODE_UNIFORM:
            _partial_shuffle(state, eligible, 0, n_eligible, n_way)
            for j in range(n_way):
                chosen[j] = eligible[j]
        elif mode == MODE_WITHIN:
            p = below(state, p_indptr.shape[0] - 1)
            lo = p_indptr[p]
            _partial_shuffle(state, p_children, lo, p_indptr[p + 1], n_way)
            for j in range(n_way):
                chosen[j] = p_children[lo + j]
        else:  # MODE_WALK: ROOT, its eligible neighbours in random order, then theirs, then any
            mark = e + 1
            chosen[0] = root
            stamp[root] = mark
            got = 1
            head = 0
            tail = 0
            queue[tail] = root
            tail += 1
            while got < n_way and head < tail:
                v = queue[head]
                head += 1
                lo = g_indptr[v]
                hi = g_indptr[v + 1]
                # candidates of this ring, in random order: shuffle a copy into the queue's tail
                start = tail
                for t in range(lo, hi):
                    u = g_indices[t]
                    if ok[u] and stamp[u] != mark:
                        stamp[u] = mark
                        queue[tail] = u
                        tail += 1
                _partial_shuffle(state, queue, start, tail, tail - start)
                for t in range(start, tail):
                    if got < n_way:
                        chosen[got] = queue[t]
                        got += 1
            while got < n_way:  # the component is too small: fill with random eligible classes
                c = eligible[below(state, n_eligible)]
                if stamp[c] != mark:
                    stamp[c] = mark
                    chosen[got] = c
                    got += 1
            # ROOT moves to a random eligible neighbour (a random eligible class when it has none)
            lo = g_indptr[root]
            hi = g_indptr[root + 1]
            n_ok = 0
            for t in range(lo, hi):
                if ok[g_indices[t]]:
                    n_ok += 1
            if n_ok == 0:
                root = eligible[below(state, n_eligible)]
            else:
                pick = below(state, n_ok)
                for t in range(lo, hi):
                    if ok[g_indices[t]]:
                        if pick == 0:
                            root = g_indices[t]
                            break
                        pick -= 1
        # labels 0..n_way-1 in random order: the same classes in another order are another task
        for j in range(n_way - 1):
            r = j + below(state, n_way - j)
            t = chosen[j]
            chosen[j] = chosen[r]
            chosen[r] = t
        for j in range(n_way):
            c = chosen[j]
            out_classes[e, j] = c
            lo = members_indptr[c]
            _partial_shuffle(state, members, lo, members_indptr[c + 1], per)
            for s in range(k_shot):
                out_items[e, j * k_shot + s] = members[lo + s]
            base = n_way * k_shot + j * q_query
            for s in range(q_query):
                out_items[e, base + s] = members[lo + k_shot + s]
