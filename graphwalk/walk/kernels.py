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

__all__ = [
    "ROOT_DEFAULT",
    "ROOT_TELEPORT",
    "cluster_batches",
    "item_batches",
    "mix_counts",
    "random_walks",
    "seed_state",
]

_M = np.uint64(0x2545F4914F6CDD1D)
_S12, _S25, _S27, _S32 = np.uint64(12), np.uint64(25), np.uint64(27), np.uint64(32)


def seed_state(*words: int) -> np.ndarray:
    """A non-zero xorshift state (uint64[1]) derived from ``words`` (e.g. seed, epoch, stream)."""
    s = np.random.SeedSequence([int(w) & 0xFFFFFFFFFFFFFFFF for w in words]).generate_state(
        1, np.uint64
    )
    s[0] |= np.uint64(1)
    return s


def mix_counts(sizes: np.ndarray, mix: float) -> np.ndarray:
    """Items drawn from outside the community in each batch: ``mix`` of every batch on average,
    exactly (``floor(mix * items so far)`` carried from batch to batch, not rounded per batch)."""
    cum = np.zeros(sizes.shape[0] + 1, np.int64)
    np.cumsum(sizes, out=cum[1:])
    # float64 is exact for the counts of any real epoch (< 2**53 items)
    floors = np.floor(float(mix) * cum.astype(np.float64) + 1e-9).astype(np.int64)
    return np.minimum(np.diff(floors), sizes).astype(np.int64)


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


#: ``roots_given[b]`` values: a node id forces ROOT; these two leave it to the walk.
ROOT_DEFAULT = -1  # the walk's own move (to a neighbour, or a teleport)
ROOT_TELEPORT = -2  # a teleport asked for by a policy


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
def _retire(c, alive, apos, n_alive):
    """Swap cluster ``c`` out of the first ``n_alive`` entries of ``alive`` (``apos`` is the
    position of each cluster in it); returns the new ``n_alive``."""
    p = apos[c]
    last = alive[n_alive - 1]
    alive[p] = last
    apos[last] = p
    alive[n_alive - 1] = c
    apos[c] = n_alive - 1
    return n_alive - 1


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
    if epoch_mode and j + 1 == size:  # exhausted: leave the alive list
        n_alive = _retire(c, alive, apos, n_alive)
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
    n_out,
    restart,
    weighted,
    epoch_mode,
    out_items,
    o0,
    out_roots,
    out_comm,
    last_comm,
):
    """Walk the cluster graph for global batches ``[b0, b1)``, writing items from ``out_items[o0]``.

    State arrays (``seg``, ``taken``, ``alive``/``apos``, ``stamp``, ``state``) persist across
    calls, so an online policy can call one batch at a time. ``roots_given[b] >= 0`` forces the
    ROOT of batch ``b`` (a learned policy's choice), ``ROOT_TELEPORT`` teleports; otherwise the walk moves to a random
    neighbour with items left (by edge weight if ``weighted``), or teleports with probability
    ``restart`` and whenever no neighbour has items left.

    The clusters of the last batch's community are left in ``last_comm[:ncomm]``.

    Returns ``(next_root, n_alive, o, ncomm)``.
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
    ncomm = 0
    for b in range(b0, b1):
        size = sizes[b]
        mark = b + 1
        if roots_given[b] >= 0:
            root = roots_given[b]
        elif roots_given[b] == ROOT_TELEPORT:
            root = -1
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
        n_mix = n_out[b]
        n_in = size - n_mix
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
                n_alive = _retire(c, alive, apos, n_alive)
        for _ in range(n_mix):
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
        if b == b1 - 1:
            for j in range(ncomm):
                last_comm[j] = comm[j]
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
    return root, n_alive, o, ncomm


# ----------------------------------------------------------------------------- item walk
_USED = np.uint8(0x80)
_SEEN = np.uint8(0x40)
_NOT_SEEN = np.uint8(0xBF)
_NOT_USED = np.uint8(0x7F)


@njit(inline="always")
def _next_unused(order, flags, n, epoch_mode):
    """The next unused item in the epoch's pseudo-random order ``(start + t * stride) % n``.

    ``order = [stride, start, t]`` with ``gcd(stride, n) == 1``, so ``t = 0 .. n-1`` visits every
    item once. In epoch mode ``t`` only grows: an item passed over was used then and stays used,
    so finding unused items costs O(n) per epoch in all. With replacement it wraps around. The
    pointer stays on the item returned (the caller may not use it, e.g. a ROOT in a batch made
    only of ``mix`` items). Returns -1 when every item is used.
    """
    for _ in range(n):
        t = order[2]
        if t >= n:
            if epoch_mode:
                return -1
            t = 0
        i = (order[1] + t * order[0]) % n
        if not flags[i] & _USED:
            order[2] = t
            return i
        order[2] = t + 1
    return -1


@njit(inline="always")
def _random_unused(state, order, flags, n, epoch_mode, left):
    """A random unused item: uniform draws while at least 1 item in 16 is unused (``left`` of
    ``n``; at most 32 draws), else (late in an epoch) the next unused one in the epoch's random
    order, so that a draw never costs more than a few dozen reads."""
    if 16 * left >= n:
        for _ in range(32):
            i = _below(state, n)
            if not flags[i] & _USED:
                return i
    return _next_unused(order, flags, n, epoch_mode)


#: items per block of the unused counts that let a scan skip used-up stretches
BLOCK_SHIFT = 8


@njit(inline="always")
def _take(i, flags, out_items, o, blocks):
    flags[i] |= _USED
    blocks[i >> BLOCK_SHIFT] -= 1
    out_items[o] = i
    return o + 1


@njit(cache=True, nogil=True)
def item_batches(
    g_indptr,
    g_indices,
    g_weights,
    flags,
    blocks,
    order,
    queue,
    state,
    sizes,
    n_out,
    b0,
    b1,
    root_in,
    roots_given,
    restart,
    weighted,
    budget,
    near_fill,
    epoch_mode,
    out_items,
    o0,
    out_roots,
    out_comm,
    out_fill,
    cand,
    cand_count,
):
    """Walk an item graph for global batches ``[b0, b1)``; :mod:`graphwalk.walk.reference` has the
    same walk written plainly.

    A batch is ROOT's neighbourhood grown breadth-first *through* the graph: every node reached is
    passed through, and the unused items among them are taken as they are discovered, until
    ``sizes[b] - n_out[b]`` are taken (ROOT itself first when unused). If everything reachable is
    used, the search goes on from a random unused item. ``n_out[b]`` random unused items from
    anywhere complete the batch (the ``mix`` share).

    ROOT then moves to a neighbour that still has unused items near it, within two hops
    (uniformly, or by edge weight if ``weighted``); with probability ``restart``, or when no
    neighbour has, it teleports to a uniformly random unused item. With replacement every item is
    unused again after each batch, so every neighbour qualifies.

    Each batch expands at most ``budget`` nodes. Late in an epoch, when the unused items left are
    scattered, a batch that has not filled by then is completed (``out_fill[b]`` counts them) with
    the unused items that follow ROOT in the node numbering if ``near_fill`` (a walk order: they
    are ROOT's cluster, breadth-first), else with random unused items. ``blocks[j]`` counts the
    unused nodes of block ``j`` (``2**BLOCK_SHIFT`` nodes) so the scan skips used-up stretches: a
    batch costs O(budget * degree + batch_size + n / 256) whatever is left.

    ``roots_given[b]`` >= 0 forces the ROOT of batch ``b`` (a policy's choice), ``ROOT_TELEPORT``
    asks for a teleport, ``ROOT_DEFAULT`` lets the walk move. After each batch its ROOT's
    candidates are in ``cand[:cand_count[0]]`` (positions in ROOT's row), with the unused items
    among each and its own neighbours in ``cand_count[1:]`` (0 when they are two hops away).

    ``flags[i]``: bit 7 = used this epoch, bit 6 = reached by the current batch's search (cleared
    after every batch through the queue, which holds exactly the nodes reached).

    Returns ``(next_root, o)`` (``next_root`` -1: teleport).
    """
    root = root_in
    o = o0
    cap = queue.shape[0]
    n = flags.shape[0]
    rs = np.empty(8, np.int64)  # row bounds of the chunk of queued nodes being expanded
    re = np.empty(8, np.int64)
    for b in range(b0, b1):
        given = roots_given[b]
        if given >= 0:
            root = given
        elif given == ROOT_TELEPORT:
            root = -1
        if root < 0:
            root = _random_unused(state, order, flags, n, epoch_mode, n - o if epoch_mode else n)
        out_roots[b] = root
        n_in = sizes[b] - n_out[b]
        start_o = o
        flags[root] |= _SEEN
        queue[0] = root
        tail = 1
        head = 0
        if not flags[root] & _USED and n_in > 0:
            o = _take(root, flags, out_items, o, blocks)
        left = budget
        while o - start_o < n_in:
            if left <= 0 or tail >= cap:
                out_fill[b] = n_in - (o - start_o)
                if not near_fill:  # node ids without locality: random unused items
                    while o - start_o < n_in:
                        i = _random_unused(
                            state, order, flags, n, epoch_mode, n - o if epoch_mode else n
                        )
                        o = _take(i, flags, out_items, o, blocks)
                    break
                # complete with the unused items that follow ROOT in the walk order (ROOT's
                # cluster, breadth-first): a scan that skips used-up blocks
                p = root + 1
                while o - start_o < n_in:
                    if p >= n:
                        p = 0
                    if blocks[p >> BLOCK_SHIFT] == 0:  # nothing unused in this block: skip it
                        p = ((p >> BLOCK_SHIFT) + 1) << BLOCK_SHIFT
                        continue
                    if not flags[p] & _USED:
                        o = _take(p, flags, out_items, o, blocks)
                    p += 1
                break
            if head == tail:  # everything reachable is used: go on from a random unused item
                s = _random_unused(state, order, flags, n, epoch_mode, n - o if epoch_mode else n)
                flags[s] |= _SEEN
                queue[tail] = s
                tail += 1
                o = _take(s, flags, out_items, o, blocks)
                continue
            # expand up to 8 queued nodes, in queue order (the batch is the same as one at a
            # time): first every row's bounds, then every neighbour's flag, so that the cache
            # misses overlap instead of forming a chain; then the real pass
            c = min(8, tail - head, left)
            for q in range(c):
                v = queue[head + q]
                rs[q] = g_indptr[v]
                re[q] = g_indptr[v + 1]
            touch = np.uint8(0)
            for q in range(c):
                for j in range(rs[q], re[q]):
                    touch |= flags[g_indices[j]]
            if touch == 0xFF:  # never true (bits 0-5 are always clear); keeps the reads alive
                out_fill[b] = -1
            head += c
            left -= c
            for q in range(c):
                for j in range(rs[q], re[q]):
                    w = g_indices[j]
                    f = flags[w]
                    if f & _SEEN:
                        continue
                    if tail >= cap:
                        break
                    flags[w] = f | _SEEN
                    queue[tail] = w
                    tail += 1
                    if not f & _USED:
                        o = _take(w, flags, out_items, o, blocks)
                        if o - start_o == n_in:
                            break
                if o - start_o == n_in:
                    break
        out_comm[b] = tail
        for t in range(tail):  # forget what this batch's search reached
            flags[queue[t]] &= _NOT_SEEN
        for _ in range(n_out[b]):  # the mix share: random unused items from anywhere
            o = _take(
                _random_unused(state, order, flags, n, epoch_mode, n - o if epoch_mode else n),
                flags,
                out_items,
                o,
                blocks,
            )
        if not epoch_mode:  # with replacement: the batch's items are unused again
            for t in range(start_o, o):
                flags[out_items[t]] &= _NOT_USED
                blocks[out_items[t] >> BLOCK_SHIFT] += 1
        # candidates: ROOT's neighbours with unused items within two hops
        a = g_indptr[root]
        ncand = 0
        for j in range(g_indptr[root + 1] - a):
            u = g_indices[a + j]
            u0 = g_indptr[u]
            u1 = g_indptr[u + 1]
            cnt = 0 if flags[u] & _USED else 1
            for j1 in range(u0, u1):
                if not flags[g_indices[j1]] & _USED:
                    cnt += 1
            near = cnt > 0
            j1 = u0
            while not near and j1 < u1:  # nothing within one hop: look one hop further
                x = g_indices[j1]
                for j2 in range(g_indptr[x], g_indptr[x + 1]):
                    if not flags[g_indices[j2]] & _USED:
                        near = True
                        break
                j1 += 1
            if near:
                cand[ncand] = j
                cand_count[1 + ncand] = cnt
                ncand += 1
        cand_count[0] = ncand
        # move ROOT (the static walk; with a policy the next batch's roots_given overrides it)
        if ncand == 0 or (restart > 0.0 and _uniform(state) < restart):
            root = -1
        elif weighted:
            tot = 0.0
            for c in range(ncand):
                tot += g_weights[a + cand[c]]
            u = _uniform(state) * tot
            pick = cand[ncand - 1]
            for c in range(ncand):
                u -= g_weights[a + cand[c]]
                if u < 0.0:
                    pick = cand[c]
                    break
            root = g_indices[a + pick]
        else:
            root = g_indices[a + cand[_below(state, ncand)]]
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
