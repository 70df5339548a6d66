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
def _below(state: np.ndarray, n: int) -> np.int64:
    """Uniform integer in ``[0, n)`` for ``1 <= n < 2**32`` (Lemire's multiply-shift)."""
    r = _next(state, 0) >> _S32
    return np.int64((r * np.uint64(n)) >> _S32)  # int64: mixing uint64 with int64 gives float64


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
def random_walks(indptr, indices, starts, length, seed, out, block=64):
    """Uniform first-order random walks: ``out[w, 0] = starts[w]`` then ``length`` steps.

    Walks are processed in blocks of ``block`` advanced in lock-step, each step in two phases:
    first every walk's ``indptr`` reads, then every walk's ``indices`` read, so the CPU has dozens
    of independent cache misses in flight instead of waiting on one walk's dependent reads
    (43 M steps/s against 30 M for one interleaved loop, on 1M nodes; see bench/sampler.py).
    A walk at a node without out-edges stays there. Walk ``w`` draws from its own xorshift stream
    seeded by ``(seed, w)``: results do not depend on the number of threads or the block size.
    """
    n = starts.shape[0]
    nblocks = (n + block - 1) // block
    useed = np.uint64(seed)
    for b in prange(nblocks):
        s0 = b * block
        m = min(n, s0 + block) - s0
        cur = np.empty(block, np.int64)
        st = np.empty(block, np.uint64)
        a = np.empty(block, np.int64)
        d = np.empty(block, np.uint64)
        for j in range(m):
            cur[j] = starts[s0 + j]
            st[j] = _mix64(useed ^ np.uint64(s0 + j) * np.uint64(0x9E3779B97F4A7C15))
            out[s0 + j, 0] = cur[j]
        for step in range(1, length + 1):
            for j in range(m):  # phase 1: independent reads of every walk's row bounds
                c = cur[j]
                a[j] = indptr[c]
                d[j] = np.uint64(indptr[c + 1] - a[j])
            for j in range(m):  # phase 2: draw and read the next node
                r = _next(st, j) >> _S32
                if d[j] > 0:
                    cur[j] = indices[a[j] + np.int64((r * d[j]) >> _S32)]
                out[s0 + j, step] = cur[j]
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
    cs = np.empty(K, np.int64)  # community members' segment starts, sizes and items taken
    cn = np.empty(K, np.int64)
    ct = np.empty(K, np.int64)
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
        for j in range(ncomm):
            c = comm[j]
            cs[j] = mem_indptr[c]
            cn[j] = mem_indptr[c + 1] - cs[j]
            ct[j] = taken[c]
        for _ in range(n_in):
            if comm_rem == 0:  # the community ran dry: grow it by a random cluster
                c = _pick_outside(state, alive, n_alive, stamp, mark, taken, mem_indptr)
                comm[ncomm] = c
                cs[ncomm] = mem_indptr[c]
                cn[ncomm] = mem_indptr[c + 1] - cs[ncomm]
                ct[ncomm] = taken[c]
                ncomm += 1
                stamp[c] = mark
                comm_rem = _rem(c, taken, mem_indptr)
            # one draw picks a uniform remaining item of the community: find its cluster, then
            # swap it to the front of that cluster's unused part (lazy Fisher-Yates)
            r = _below(state, comm_rem)
            j = 0
            while r >= cn[j] - ct[j]:
                r -= cn[j] - ct[j]
                j += 1
            base = cs[j] + ct[j]
            item = seg[base + r]
            seg[base + r] = seg[base]
            seg[base] = item
            ct[j] += 1
            comm_rem -= 1
            out_items[o] = item
            o += 1
        for j in range(ncomm):
            c = comm[j]
            taken[c] = ct[j]
            if epoch_mode and ct[j] == cn[j] and apos[c] < n_alive:  # exhausted: leave alive list
                p = apos[c]
                last = alive[n_alive - 1]
                alive[p] = last
                apos[last] = p
                alive[n_alive - 1] = c
                apos[c] = n_alive - 1
                n_alive -= 1
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
_USED = np.uint8(0x80)
_MARK = np.uint8(0x7F)


@njit(inline="always")
def _next_unused(order, flags, n, epoch_mode, advance=True):
    """The next unused item in the epoch's pseudo-random order ``(start + t * stride) % n``.

    ``order = [stride, start, t]`` with ``gcd(stride, n) == 1``, so ``t = 0 .. n-1`` visits every
    item once. In epoch mode ``t`` only grows: an item passed over was used then and stays used,
    so finding unused items costs O(n) per epoch in all. With replacement it wraps around.
    ``advance=False`` leaves the pointer on the item found (for a ROOT that the batch may not
    take). Returns -1 when every item is used.
    """
    for _ in range(n):
        t = order[2]
        if t >= n:
            if epoch_mode:
                return -1
            t = 0
        order[2] = t + 1
        i = (order[1] + t * order[0]) % n
        if not flags[i] & _USED:
            if not advance:
                order[2] = t
            return i
    return -1


@njit(cache=True, nogil=True)
def item_batches(
    g_indptr,
    g_indices,
    flags,
    order,
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
    through items already used this epoch); unused items are taken as they are discovered, so a
    batch of n on a graph of degree d expands about n / d nodes, 8 at a time (their memory reads
    overlap). When the queue runs out, growth restarts from the next unused item in the epoch's
    pseudo-random order. Once expansions yield under one new item each, or after ``budget``
    expansions (late in an epoch, when most neighbours are used), the batch is completed from
    that order directly, so a batch costs O(budget * degree + batch_size) whatever is left. The next ROOT is an unused neighbour of the most recently reached nodes.

    ``flags[i]``: bit 7 = item used this epoch, bits 0-6 = the (cyclic) mark of the last batch
    that reached it, so one byte per item answers both questions with one memory access.

    Returns ``(next_root, o)``.
    """
    root = root_in
    o = o0
    cap = queue.shape[0]
    n = flags.shape[0]
    rs = np.empty(8, np.int64)  # row bounds of the chunk of queued nodes being expanded
    re = np.empty(8, np.int64)
    for b in range(b0, b1):
        size = sizes[b]
        mark = np.uint8(b % 127 + 1)
        if mark == 1:  # marks wrap around: forget which batch reached what
            for i in range(n):
                flags[i] &= _USED
        if roots_given[b] >= 0:
            root = roots_given[b]
        if root < 0 or flags[root] & _USED:
            root = _next_unused(order, flags, n, epoch_mode, False)
        out_roots[b] = root
        n_out = int(mix * size + 0.5)
        n_in = size - n_out
        start_o = o
        got = 0
        head = 0
        tail = 0
        left = budget
        nxt = root
        while got < n_in:
            if nxt >= 0:  # a new seed of the community: take it, queue it for expansion
                if not flags[nxt] & _USED:
                    out_items[o] = nxt
                    o += 1
                    got += 1
                flags[nxt] = _USED | mark
                if tail < cap:
                    queue[tail] = nxt
                    tail += 1
                nxt = -1
                continue
            if left <= 0:  # budget spent: complete the batch in the epoch's order
                while got < n_in:
                    i = _next_unused(order, flags, n, epoch_mode)
                    flags[i] = _USED | mark
                    out_items[o] = i
                    o += 1
                    got += 1
                break
            if head == tail:
                nxt = _next_unused(order, flags, n, epoch_mode)
                continue
            # expand up to 8 queued nodes at once: first issue every row's reads, then every
            # neighbour's flag read, so the cache misses overlap instead of forming a chain
            c = min(8, tail - head, left)
            for q in range(c):
                node = queue[head + q]
                rs[q] = g_indptr[node]
                re[q] = g_indptr[node + 1]
            touch = np.uint8(0)
            for q in range(c):
                for j in range(rs[q], re[q]):
                    touch |= flags[g_indices[j]]
            head += c
            left -= c
            got_before = got
            for q in range(c):
                for j in range(rs[q], re[q]):
                    nbr = g_indices[j]
                    f = flags[nbr]
                    if (f & _MARK) != mark:
                        flags[nbr] = _USED | mark
                        if not f & _USED:
                            out_items[o] = nbr
                            o += 1
                            got += 1
                            if got == n_in:
                                break
                        if tail < cap:
                            queue[tail] = nbr
                            tail += 1
                if got == n_in:
                    break
            if touch == 255:  # never true for valid flags; keeps the prefetch loop alive
                out_comm[b] = -1
            if got - got_before < c:  # under one new item per expansion: the neighbourhood is
                left = 0  # used up, complete the batch from the epoch's order
        out_comm[b] = tail
        for _ in range(n_out):
            i = _next_unused(order, flags, n, epoch_mode)
            flags[i] = _USED | mark
            out_items[o] = i
            o += 1
        if not epoch_mode:  # with replacement: the batch's items are unused again
            for t in range(start_o, o):
                flags[out_items[t]] &= _MARK
        root = -1
        if not (restart > 0.0 and _uniform(state) < restart):
            for t in range(tail - 1, max(-1, tail - 9), -1):
                node = queue[t]
                for j in range(g_indptr[node], g_indptr[node + 1]):
                    if not flags[g_indices[j]] & _USED:
                        root = g_indices[j]
                        break
                if root >= 0:
                    break
    return root, o


# ----------------------------------------------------------------------------- helpers
@njit(cache=True, nogil=True)
def max_degree(indptr):
    """Largest row length of a CSR ``indptr``, without a temporary array."""
    best = 0
    for i in range(indptr.shape[0] - 1):
        d = indptr[i + 1] - indptr[i]
        if d > best:
            best = d
    return best


@njit(cache=True, nogil=True)
def group_members(assignment, indptr, order):
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
