"""The batch-community walk over a cluster graph (Cluster-GCN's batch: ROOT's cluster and ``k``
sampled neighbour clusters), one Numba kernel and its helpers.

Arguments come in groups (tuples of arrays), in this order:

- ``graph = (indptr, indices, weights)``: the cluster graph (CSR).
- ``mem_indptr``: cluster ``c``'s items are ``seg[mem_indptr[c]:mem_indptr[c + 1]]``.
- ``walk = (seg, taken, alive, apos, stamp, comm, rng, cand, cand_left, pos)``: the epoch's
  state, kept between calls so an online policy can walk one batch at a time: the members (their
  unused part first in each segment, a lazy Fisher-Yates), items taken per cluster, the clusters
  with items left (``alive[:n_alive]``, ``apos`` their positions), a per-batch mark, the last
  batch's community (``comm[:ncomm]``), the xorshift state, the last ROOT's neighbours with
  items left and how many (``cand[:ncand]``, ``cand_left[:ncand]``) and
  ``pos = [root, n_alive, o, ncomm, ncand]``.
- ``scratch = (nb, nw, touched, cs, cn, ct)``: work arrays (``nb``/``nw`` as long as the largest
  degree, the others one entry per cluster), allocated once per epoch.
- ``batches = (sizes, n_out, roots_given)``: every global batch's size, its ``mix`` share and
  the ROOT a policy forced (a node, ``ROOT_DEFAULT`` or ``ROOT_TELEPORT``).
- ``out = (items, roots, community)``: the epoch's items, and per batch its ROOT and the items
  its community held.
"""

from __future__ import annotations

from numba import njit

from graphwalk.walk.kernels.pick import ROOT_TELEPORT, weighted_pick
from graphwalk.walk.kernels.rng import below, uniform

__all__ = ["cluster_batches"]


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
    r = j + below(state, size - j)
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
        c = alive[below(state, n_alive)]
        if stamp[c] != mark and _rem(c, taken, mem_indptr) > 0:
            return c
    off = below(state, n_alive)
    for t in range(n_alive):
        c = alive[(off + t) % n_alive]
        if stamp[c] != mark and _rem(c, taken, mem_indptr) > 0:
            return c
    return -1


@njit(cache=True, nogil=True)
def cluster_batches(
    graph, mem_indptr, walk, scratch, batches, out, b0, b1, k, restart, weighted, epoch_mode
):
    """Walk the cluster graph for global batches ``[b0, b1)`` (argument groups: module docstring).

    ``roots_given[b] >= 0`` forces the ROOT of batch ``b`` (a learned policy's choice),
    ``ROOT_TELEPORT`` teleports; otherwise the walk moves to a random neighbour with items left
    (by edge weight if ``weighted``), or teleports with probability ``restart`` and whenever no
    neighbour has items left. A community is ROOT and ``k`` of its neighbours with items left;
    when it runs dry while the batch is drawn, random clusters with items left join it.
    ``epoch_mode`` (no replacement) uses every item once; otherwise every batch sees full
    clusters again.
    """
    g_indptr, g_indices, g_weights = graph
    seg, taken, alive, apos, stamp, comm, state, cand, cand_left, pos = walk
    nb, nw, touched, cs, cn, ct = scratch
    sizes, n_out, roots_given = batches
    out_items, out_roots, out_comm = out
    root = pos[0]
    n_alive = pos[1]
    o = pos[2]
    ncomm = pos[3]
    ncand = pos[4]
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
        for t in range(min(k, cnt)):  # k neighbours without replacement (a partial shuffle)
            pick = weighted_pick(state, nw, t, cnt) if weighted else t + below(state, cnt - t)
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
            r = below(state, comm_rem)
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
                r = below(state, comm_rem)
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
        # the candidates of the next ROOT: ROOT's neighbours with items left (a policy's
        # choices; the static walk's move), in edge order, with their items left
        cnt = 0
        for j in range(d):
            c = g_indices[a + j]
            left = _rem(c, taken, mem_indptr)
            if left > 0:
                nb[cnt] = c
                nw[cnt] = g_weights[a + j] if weighted else 1.0
                cand[cnt] = c
                cand_left[cnt] = left
                cnt += 1
        # move ROOT
        if restart > 0.0 and uniform(state) < restart:
            root = -1
        elif cnt == 0:
            root = -1
        elif weighted:
            root = nb[weighted_pick(state, nw, 0, cnt)]
        else:
            root = nb[below(state, cnt)]
        ncand = cnt
    pos[0] = root
    pos[1] = n_alive
    pos[2] = o
    pos[3] = ncomm
    pos[4] = ncand
