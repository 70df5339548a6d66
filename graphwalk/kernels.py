"""Numba kernels: the hot loops of the samplers and walkers.

Module-level ``@njit(cache=True, nogil=True)`` functions over plain contiguous arrays, with all
randomness drawn from an explicit xorshift64* state passed in (one uint64 per stream), so results
depend only on the seed, never on the thread count or on global NumPy state.

- :func:`random_walks`: plain first-order walks, many walks advanced in lock-step per thread
  (independent memory reads overlap; one-walk-at-a-time walkers wait on each read).
- :func:`cluster_batches`: the batch-community walk over a cluster graph.
- :func:`item_batches`: the batch-community walk over an item (kNN) graph.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["cluster_batches", "item_batches", "random_walks", "seed_state"]

_M = np.uint64(0x2545F4914F6CDD1D)
_S12, _S25, _S27, _S32 = np.uint64(12), np.uint64(25), np.uint64(27), np.uint64(32)


def seed_state(*words: int) -> np.ndarray:
    """A non-zero xorshift state (uint64[1]) derived from ``words`` (e.g. seed, epoch, stream)."""
    s = np.random.SeedSequence([int(w) & 0xFFFFFFFFFFFFFFFF for w in words]).generate_state(
        1, np.uint64
    )
    s[0] |= np.uint64(1)
    return s


@njit(inline="always")
def _next(state: np.ndarray, i: int) -> np.uint64:
    x = state[i]
    x ^= x >> _S12
    x ^= x << _S25
    x ^= x >> _S27
    state[i] = x
    return x * _M


@njit(inline="always")
def _below(state: np.ndarray, n: int) -> int:
    """Uniform integer in ``[0, n)`` for ``1 <= n < 2**32`` (Lemire's multiply-shift)."""
    r = _next(state, 0) >> _S32
    return int((r * np.uint64(n)) >> _S32)


@njit(inline="always")
def _uniform(state: np.ndarray) -> float:
    return float(_next(state, 0) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, nogil=True)
def _mix64(x: np.uint64) -> np.uint64:
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))) | np.uint64(1)


# ----------------------------------------------------------------------------- plain walks
@njit(cache=True, nogil=True, parallel=True)
def random_walks(indptr, indices, starts, length, seed, out, block=32):
    """Uniform first-order random walks: ``out[w, 0] = starts[w]`` then ``length`` steps.

    Walks are processed in blocks of ``block`` advanced in lock-step (one step of every walk in
    the block, then the next step), so their independent memory reads overlap. A walk at a node
    without out-edges stays there. Walk ``w`` draws from its own stream seeded by ``(seed, w)``:
    results do not depend on the number of threads.
    """
    n = starts.shape[0]
    nblocks = (n + block - 1) // block
    useed = np.uint64(seed)
    for b in prange(nblocks):
        s0 = b * block
        m = min(n, s0 + block) - s0
        cur = np.empty(block, np.int64)
        st = np.empty(block, np.uint64)
        for j in range(m):
            cur[j] = starts[s0 + j]
            st[j] = _mix64(useed ^ np.uint64(s0 + j) * np.uint64(0x9E3779B97F4A7C15))
            out[s0 + j, 0] = cur[j]
        for step in range(1, length + 1):
            for j in range(m):
                c = cur[j]
                a = indptr[c]
                d = indptr[c + 1] - a
                if d > 0:
                    r = _next(st, j) >> _S32
                    c = indices[a + int((r * np.uint64(d)) >> _S32)]
                    cur[j] = c
                out[s0 + j, step] = c
    return out


# ----------------------------------------------------------------------------- cluster walk
@njit(inline="always")
def _rem(c, taken, mem_indptr):
    return mem_indptr[c + 1] - mem_indptr[c] - taken[c]


@njit(inline="always")
def _draw(c, state, seg, taken, mem_indptr, alive, apos, n_alive, epoch_mode):
    """Draw a not-yet-drawn item of cluster ``c`` (lazy Fisher–Yates over its segment)."""
    s = mem_indptr[c]
    size = mem_indptr[c + 1] - s
    j = taken[c]
    r = j + _below(state, size - j)
    item = seg[s + r]
    seg[s + r] = seg[s + j]
    seg[s + j] = item
    taken[c] = j + 1
    if epoch_mode and j + 1 == size:  # exhausted: swap-remove from the alive list
        p = apos[c]
        last = alive[n_alive - 1]
        alive[p] = last
        apos[last] = p
        alive[n_alive - 1] = c
        apos[c] = n_alive - 1
        n_alive -= 1
    return item, n_alive


@njit(inline="always")
def _pick_outside(state, alive, n_alive, stamp, mark, taken, mem_indptr):
    """A random alive cluster not in the current community with items left, or -1."""
    if n_alive == 0:
        return -1
    for _ in range(16):
        c = alive[_below(state, n_alive)]
        if stamp[c] != mark and _rem(c, taken, mem_indptr) > 0:
            return c
    off = _below(state, n_alive)
    for t in range(n_alive):
        c = alive[(off + t) % n_alive]
        if stamp[c] != mark and _rem(c, taken, mem_indptr) > 0:
            return c
    return -1


@njit(cache=True, nogil=True)
def cluster_batches(
    mem_indptr,
    seg,
    taken,
    alive,
    apos,
    n_alive_in,
    stamp,
    state,
    g_indptr,
    g_indices,
    g_weights,
    sizes,
    b0,
    b1,
    root_in,
    roots_given,
    k,
    mix,
    restart,
    weighted,
    epoch_mode,
    out_items,
    o0,
    out_roots,
    out_comm,
):
    """Walk the cluster graph for global batches ``[b0, b1)``, writing items from ``out_items[o0]``.

    State arrays (``seg``, ``taken``, ``alive``/``apos``, ``stamp``, ``state``) persist across
    calls, so an online policy can call one batch at a time. ``roots_given[b] >= 0`` forces the
    ROOT of batch ``b`` (a learned policy's choice); otherwise the walk moves to a random
    neighbour with items left (by edge weight if ``weighted``), or teleports with probability
    ``restart`` and whenever no neighbour has items left.

    Returns ``(next_root, n_alive, o)``.
    """
    K = mem_indptr.shape[0] - 1
    n_alive = n_alive_in
    root = root_in
    o = o0
    maxdeg = 0
    for c in range(K):
        maxdeg = max(maxdeg, g_indptr[c + 1] - g_indptr[c])
    nb = np.empty(max(maxdeg, 1), np.int64)
    nw = np.empty(max(maxdeg, 1), np.float64)
    comm = np.empty(K, np.int64)
    touched = np.empty(K, np.int64)
    for b in range(b0, b1):
        size = sizes[b]
        mark = b + 1
        if roots_given[b] >= 0:
            root = roots_given[b]
        if root < 0 or _rem(root, taken, mem_indptr) == 0:
            root = _pick_outside(state, alive, n_alive, stamp, mark, taken, mem_indptr)
        comm[0] = root
        stamp[root] = mark
        ncomm = 1
        comm_rem = _rem(root, taken, mem_indptr)
        a = g_indptr[root]
        d = g_indptr[root + 1] - a
        cnt = 0
        for j in range(d):
            c = g_indices[a + j]
            if stamp[c] != mark and _rem(c, taken, mem_indptr) > 0:
                nb[cnt] = c
                nw[cnt] = g_weights[a + j] if weighted else 1.0
                cnt += 1
        for t in range(min(k, cnt)):
            if weighted:
                tot = 0.0
                for j in range(t, cnt):
                    tot += nw[j]
                u = _uniform(state) * tot
                pick = cnt - 1
                for j in range(t, cnt):
                    u -= nw[j]
                    if u < 0.0:
                        pick = j
                        break
            else:
                pick = t + _below(state, cnt - t)
            c = nb[pick]
            nb[pick] = nb[t]
            nb[t] = c
            w = nw[pick]
            nw[pick] = nw[t]
            nw[t] = w
            comm[ncomm] = c
            ncomm += 1
            stamp[c] = mark
            comm_rem += _rem(c, taken, mem_indptr)
        out_roots[b] = root
        out_comm[b] = comm_rem
        n_out = int(mix * size + 0.5)
        n_in = size - n_out
        nt = 0
        for _ in range(n_in):
            if comm_rem == 0:  # the community ran dry: grow it by a random cluster
                c = _pick_outside(state, alive, n_alive, stamp, mark, taken, mem_indptr)
                comm[ncomm] = c
                ncomm += 1
                stamp[c] = mark
                comm_rem = _rem(c, taken, mem_indptr)
            r = _below(state, comm_rem)
            j = 0
            while r >= _rem(comm[j], taken, mem_indptr):
                r -= _rem(comm[j], taken, mem_indptr)
                j += 1
            item, n_alive = _draw(
                comm[j], state, seg, taken, mem_indptr, alive, apos, n_alive, epoch_mode
            )
            comm_rem -= 1
            out_items[o] = item
            o += 1
        for _ in range(n_out):
            c = _pick_outside(state, alive, n_alive, stamp, mark, taken, mem_indptr)
            if c < 0:  # everything left is in the community
                r = _below(state, comm_rem)
                j = 0
                while r >= _rem(comm[j], taken, mem_indptr):
                    r -= _rem(comm[j], taken, mem_indptr)
                    j += 1
                c = comm[j]
                comm_rem -= 1
            elif stamp[c] != -mark:  # outside the community: remember it for the reset below
                stamp[c] = -mark
                touched[nt] = c
                nt += 1
            item, n_alive = _draw(
                c, state, seg, taken, mem_indptr, alive, apos, n_alive, epoch_mode
            )
            out_items[o] = item
            o += 1
        if not epoch_mode:  # with replacement: every batch sees full clusters again
            for j in range(ncomm):
                taken[comm[j]] = 0
            for j in range(nt):
                taken[touched[j]] = 0
        # move ROOT
        if restart > 0.0 and _uniform(state) < restart:
            root = -1
        else:
            cnt = 0
            tot = 0.0
            for j in range(d):
                c = g_indices[a + j]
                if _rem(c, taken, mem_indptr) > 0:
                    nb[cnt] = c
                    nw[cnt] = g_weights[a + j] if weighted else 1.0
                    tot += nw[cnt]
                    cnt += 1
            if cnt == 0:
                root = -1
            elif weighted:
                u = _uniform(state) * tot
                root = nb[cnt - 1]
                for j in range(cnt):
                    u -= nw[j]
                    if u < 0.0:
                        root = nb[j]
                        break
            else:
                root = nb[_below(state, cnt)]
    return root, n_alive, o


# ----------------------------------------------------------------------------- item walk
@njit(inline="always")
def _take(i, unv, upos, n_unv):
    p = upos[i]
    last = unv[n_unv - 1]
    unv[p] = last
    upos[last] = p
    unv[n_unv - 1] = i
    upos[i] = n_unv - 1
    return n_unv - 1


@njit(inline="always")
def _random_unvisited(state, unv, n_unv, stamp, mark):
    for _ in range(16):
        i = unv[_below(state, n_unv)]
        if stamp[i] != mark:
            return i
    off = _below(state, n_unv)
    for t in range(n_unv):
        i = unv[(off + t) % n_unv]
        if stamp[i] != mark:
            return i
    return unv[off]


@njit(cache=True, nogil=True)
def item_batches(
    g_indptr,
    g_indices,
    unv,
    upos,
    n_unv_in,
    stamp,
    queue,
    state,
    sizes,
    b0,
    b1,
    root_in,
    roots_given,
    mix,
    restart,
    budget,
    epoch_mode,
    out_items,
    o0,
    out_roots,
    out_comm,
):
    """Walk an item graph for global batches ``[b0, b1)``.

    The community of ROOT is its neighbourhood grown breadth-first through the graph (passing
    through items already used this epoch) until it fills the batch, exploring at most
    ``budget`` nodes before teleporting to a random unused item and growing from there. The next
    ROOT is the nearest unused item on the community's frontier. ``unv[:n_unv]`` lists unused
    items (swap-removal keeps draws O(1)); ``upos`` is its inverse.

    Returns ``(next_root, n_unv, o)``.
    """
    n_unv = n_unv_in
    root = root_in
    o = o0
    cap = queue.shape[0]
    for b in range(b0, b1):
        size = sizes[b]
        mark = b + 1
        if roots_given[b] >= 0:
            root = roots_given[b]
        if root < 0 or upos[root] >= n_unv:
            root = unv[_below(state, n_unv)]
        out_roots[b] = root
        n_out = int(mix * size + 0.5)
        n_in = size - n_out
        head = 0
        tail = 1
        queue[0] = root
        stamp[root] = mark
        got = 0
        explored = 0
        start_o = o
        while got < n_in:
            if head == tail or explored >= budget:
                nxt = _random_unvisited(state, unv, n_unv, stamp, mark)
                stamp[nxt] = mark
                head = 0
                tail = 1
                queue[0] = nxt
                explored = 0
            node = queue[head]
            head += 1
            explored += 1
            if upos[node] < n_unv:
                n_unv = _take(node, unv, upos, n_unv)
                out_items[o] = node
                o += 1
                got += 1
                if got == n_in:
                    break
            a = g_indptr[node]
            for j in range(a, g_indptr[node + 1]):
                nbr = g_indices[j]
                if stamp[nbr] != mark and tail < cap:
                    stamp[nbr] = mark
                    queue[tail] = nbr
                    tail += 1
        frontier = 0
        nxt_root = -1
        for t in range(head, tail):
            if upos[queue[t]] < n_unv:
                frontier += 1
                if nxt_root < 0:
                    nxt_root = queue[t]
        out_comm[b] = got + frontier
        for _ in range(n_out):
            i = _random_unvisited(state, unv, n_unv, stamp, mark)
            stamp[i] = mark
            n_unv = _take(i, unv, upos, n_unv)
            out_items[o] = i
            o += 1
        if not epoch_mode:
            n_unv += o - start_o  # the batch's items are the last ones removed: put them back
        if restart > 0.0 and _uniform(state) < restart:
            root = -1
        else:
            root = nxt_root
    return root, n_unv, o
