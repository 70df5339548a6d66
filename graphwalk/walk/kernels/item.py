"""The batch-community walk over an item (kNN) graph: ROOT's neighbourhood grown breadth-first
*through* the graph. :mod:`graphwalk.walk.reference` has the same walk written plainly.

Arguments come in groups (tuples of arrays), in this order:

- ``graph = (indptr, indices, weights, item_of)``: the item graph (CSR), in walk order when the
  index stores one, and the walk order's node -> item map (empty: nodes are items), with which
  each batch's nodes become item ids once it is drawn.
- ``walk = (flags, blocks, order, queue, rng, cand, cand_items, cand_count, cweights, pos)``:
  the epoch's
  state, kept between calls so an online policy can walk one batch at a time: per node
  ``flags`` (bit 7 used this epoch, bit 6 reached by the current batch's search, bit 5 expanded
  by it: every neighbour reached), unused nodes
  per block of ``2**BLOCK_SHIFT``, the epoch's random order ``[stride, start, t]``, the search
  queue, the xorshift state, the last ROOT's candidates (positions in its row, their item ids)
  and their unused counts, a float64 work array as long as the largest degree, and ``pos = [root, o]``.
- ``batches = (sizes, n_out, roots_given)``: every global batch's size, its ``mix`` share and
  the ROOT a policy forced (a node, ``ROOT_DEFAULT`` or ``ROOT_TELEPORT``).
- ``out = (items, roots, community, fill)``: the epoch's nodes, and per batch its ROOT, the
  nodes its search reached and the items completed at random.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from graphwalk.walk.kernels.pick import ROOT_TELEPORT, weighted_pick
from graphwalk.walk.kernels.prefetch import prefetch as _prefetch
from graphwalk.walk.kernels.rng import below, uniform

__all__ = ["BLOCK_SHIFT", "item_batches"]

_USED = np.uint8(0x80)
_SEEN = np.uint8(0x40)
_EXP = np.uint8(0x20)  # expanded by the current batch's search: every neighbour reached
_NOT_SEEN = np.uint8(0x9F)  # clears _SEEN and _EXP
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
            i = below(state, n)
            if not flags[i] & _USED:
                return i
    return _next_unused(order, flags, n, epoch_mode)


#: software prefetch in the item walk's search, on graphs of at least PF_MIN_EDGES edges (the
#: 1M benchmark: 0.6x the kernel's time; digits, all in cache: 1.13x), at these distances in
#: queued nodes (4-32 measured alike on the 1M benchmark)
PF_FAR, PF_MID, PF_NEAR = 16, 8, 4
PF_MIN_EDGES = 1 << 20

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
    graph, walk, batches, out, b0, b1, restart, weighted, budget, near_fill, epoch_mode
):
    """Walk an item graph for global batches ``[b0, b1)`` (argument groups: module docstring);
    :mod:`graphwalk.walk.reference` has the same walk written plainly.

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
    scattered, a batch that has not filled by then is completed (``fill[b]`` counts them) with
    the unused items that follow ROOT in the node numbering if ``near_fill`` (a walk order: they
    are ROOT's cluster, breadth-first), else with random unused items. ``blocks[j]`` counts the
    unused nodes of block ``j`` (``2**BLOCK_SHIFT`` nodes) so the scan skips used-up stretches: a
    batch costs O(budget * degree + batch_size + n / 256) whatever is left.

    ``roots_given[b]`` >= 0 forces the ROOT of batch ``b`` (a policy's choice), ``ROOT_TELEPORT``
    asks for a teleport, ``ROOT_DEFAULT`` lets the walk move. After each batch its ROOT's
    candidates are in ``cand[:cand_count[0]]`` (positions in ROOT's row), with the unused items
    among each and its own neighbours in ``cand_count[1:]`` (0 when they are two hops away).

    ``flags[i]``: bit 7 = used this epoch, bit 6 = reached by the current batch's search, bit 5 =
    expanded by it (all its neighbours reached; bits 6 and 5 are cleared after every batch through
    the queue, which holds exactly the nodes reached).

    ``item_of`` (the walk order's node -> item map, or empty: nodes are items) turns each batch's
    nodes into item ids in ``items`` once the batch is drawn. ``pos`` ends as ``[next ROOT (-1:
    teleport), items written]``.
    """
    g_indptr, g_indices, g_weights, item_of = graph
    flags, blocks, order, queue, state, cand, cand_items, cand_count, cweights, pos = walk
    sizes, n_out, roots_given = batches
    out_items, out_roots, out_comm, out_fill = out
    root = pos[0]
    o = pos[1]
    cap = queue.shape[0]
    n = flags.shape[0]
    prefetch = g_indices.shape[0] >= PF_MIN_EDGES
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
            # expand the next queued node. (Reading a chunk of rows and their flags ahead, so
            # that cache misses overlap, made the walk slower: in the walk order a batch's rows
            # and flags are mostly cached already.)
            # software pipeline over the queue: the row bounds of a node PF_FAR ahead, the row of
            # one PF_MID ahead, the flags of the neighbours of one PF_NEAR ahead
            # (graphs that fit in the caches: skipped, the prefetches would only cost)
            if prefetch:
                h = head + PF_FAR
                if h < tail:
                    _prefetch(g_indptr, queue[h])
                h = head + PF_MID
                if h < tail:
                    _prefetch(g_indices, g_indptr[queue[h]])
                h = head + PF_NEAR
                if h < tail:
                    u = queue[h]
                    for j in range(g_indptr[u], g_indptr[u + 1]):
                        _prefetch(flags, g_indices[j])
            v = queue[head]
            head += 1
            left -= 1
            whole = True  # every neighbour of v reached (no break)
            r1 = g_indptr[v + 1]
            for j in range(g_indptr[v], r1):
                w = g_indices[j]
                f = flags[w]
                if tail >= cap:  # (rare) the queue is full: stop at the next node not reached
                    if f & _SEEN:
                        continue
                    whole = False
                    break
                # without branches on the flags (they are unpredictable): a node reached before
                # is written back unchanged and queued past the tail; an unused one is taken
                new = np.int64((f >> 6) & 1) ^ 1  # not reached before
                take = (new & np.int64(f >> 7)) ^ new  # and unused
                flags[w] = f | _SEEN | np.uint8(take << 7)
                queue[tail] = w
                tail += new
                out_items[o] = w
                o += take
                blocks[w >> BLOCK_SHIFT] -= np.uint16(take)
                if o - start_o == n_in:
                    whole = j + 1 == r1
                    break
            if whole:
                flags[v] |= _EXP
        out_comm[b] = tail
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
            for t in range(tail):  # (no node counts as expanded: reached items are unused)
                flags[queue[t]] &= _NOT_SEEN
        if item_of.shape[0] > 0:  # the batch's nodes back to item ids
            for t in range(start_o, o):
                out_items[t] = item_of[out_items[t]]
        # candidates: ROOT's neighbours with unused items within two hops. In epoch mode a node
        # this batch's search expanded (_EXP) has every neighbour reached, so used: its row needs
        # no reading (the counts and the candidates are the same as reading it)
        a = g_indptr[root]
        ncand = 0
        for j in range(g_indptr[root + 1] - a):
            u = g_indices[a + j]
            u0 = g_indptr[u]
            u1 = g_indptr[u + 1]
            fu = flags[u]
            cnt = 0 if fu & _USED else 1
            if not fu & _EXP:
                for j1 in range(u0, u1):
                    if not flags[g_indices[j1]] & _USED:
                        cnt += 1
            near = cnt > 0
            j1 = u0
            while not near and j1 < u1:  # nothing within one hop: look one hop further
                x = g_indices[j1]
                if not flags[x] & _EXP:
                    for j2 in range(g_indptr[x], g_indptr[x + 1]):
                        if not flags[g_indices[j2]] & _USED:
                            near = True
                            break
                j1 += 1
            if near:
                cand[ncand] = j
                cand_items[ncand] = item_of[u] if item_of.shape[0] > 0 else u
                cand_count[1 + ncand] = cnt
                ncand += 1
        cand_count[0] = ncand
        if epoch_mode:
            for t in range(tail):  # forget what this batch's search reached and expanded
                flags[queue[t]] &= _NOT_SEEN
        # move ROOT (the static walk; with a policy the next batch's roots_given overrides it)
        if ncand == 0 or (restart > 0.0 and uniform(state) < restart):
            root = -1
        elif weighted:
            for c in range(ncand):
                cweights[c] = g_weights[a + cand[c]]
            root = g_indices[a + cand[weighted_pick(state, cweights, 0, ncand)]]
        else:
            root = g_indices[a + cand[below(state, ncand)]]
    pos[0] = root
    pos[1] = o
