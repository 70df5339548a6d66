"""Issue 13, second part: does continuing the search from the previous batch's frontier late in an
epoch keep late batches together without losing the early ones?

The walk of ``item_batches`` (unweighted, no restart, mix 0, epoch mode, walk-order fill) until a
switch point, then one breadth-first search that goes on from where the last batch's search
stopped: the nodes it had reached but not expanded are the queue of the next batch, and nothing
reached is forgotten (the SEEN marks stay until the end of the epoch), so every node is expanded
at most once in the rest of the epoch and each batch takes the next unused items the search
discovers; when the queue runs dry, the search goes on from a random unused item (as the
reference walk's does). Switch points: ``never`` (the sampler's walk: checked equal to it),
``always`` (a plain continuing BFS from the first batch), ``used>=F`` (once a share F of the items
is used), ``fill`` (at the first batch whose search ran out of its budget).

Homophily per tenth of the epoch pooled over epochs (digits), and one epoch of the 1M benchmark,
beside the time per batch of the walk (kernel only).

    PYTHONPATH=. python bench/frontier.py --digits --batch 64 --epochs 60
    PYTHONPATH=. python bench/frontier.py --batch 256 --epochs 1          # 1M benchmark
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from graphwalk.walk.homophily import _pooled, homophily_by_tenth
from graphwalk.walk.item_walker import _block_counts, epoch_order
from graphwalk.walk.kernels import seed_state
from graphwalk.walk.kernels.item import (
    _NOT_SEEN,
    _SEEN,
    _USED,
    BLOCK_SHIFT,
    _random_unused,
    _take,
)
from graphwalk.walk.kernels.rng import below as _below
from graphwalk.walk.sampler import GraphWalkBatchSampler


@njit(cache=True, nogil=True)
def frontier_batches(
    g_indptr,
    g_indices,
    flags,
    blocks,
    order,
    queue,
    gq,
    state,
    sizes,
    budget,
    switch_used,
    switch_fill,
    out_items,
    out_roots,
    out_mode,
    seeded,
):
    """``switch_used``: switch once ``o >= switch_used`` items are used; ``switch_fill``: switch
    after the first batch that needed a fill. Returns the batch the search switched at (-1)."""
    n = flags.shape[0]
    cap = queue.shape[0]
    root = -1
    o = 0
    cont = False
    gh = 0
    gt = 0
    switched = -1
    for b in range(sizes.shape[0]):
        n_in = sizes[b]
        start_o = o
        if cont and seeded:  # a fresh budgeted search seeded with the last batch's frontier
            out_mode[b] = 2
            m = min(gt, cap)
            for t in range(m):
                queue[t] = gq[t]
            tail = 0
            for t in range(m):  # the frontier, without repeats, in its order
                v = queue[t]
                if not flags[v] & _SEEN:
                    flags[v] |= _SEEN
                    queue[tail] = v
                    tail += 1
            head = 0
            if tail == 0:
                s0 = _random_unused(state, order, flags, n, True, n - o)
                flags[s0] |= _SEEN
                queue[0] = s0
                tail = 1
            root = queue[0]
            out_roots[b] = root
            for t in range(tail):
                v = queue[t]
                if not flags[v] & _USED and o - start_o < n_in:
                    o = _take(v, flags, out_items, o, blocks)
            left = budget
            partial = False
            while o - start_o < n_in:
                if left <= 0 or tail >= cap:
                    p = root + 1
                    while o - start_o < n_in:
                        if p >= n:
                            p = 0
                        if blocks[p >> BLOCK_SHIFT] == 0:
                            p = ((p >> BLOCK_SHIFT) + 1) << BLOCK_SHIFT
                            continue
                        if not flags[p] & _USED:
                            o = _take(p, flags, out_items, o, blocks)
                        p += 1
                    break
                if head == tail:
                    s0 = _random_unused(state, order, flags, n, True, n - o)
                    flags[s0] |= _SEEN
                    queue[tail] = s0
                    tail += 1
                    o = _take(s0, flags, out_items, o, blocks)
                    continue
                v = queue[head]
                head += 1
                left -= 1
                for j in range(g_indptr[v], g_indptr[v + 1]):
                    w = g_indices[j]
                    f = flags[w]
                    if f & _SEEN:
                        continue
                    if tail >= cap:
                        partial = True
                        break
                    flags[w] = f | _SEEN
                    queue[tail] = w
                    tail += 1
                    if not f & _USED:
                        o = _take(w, flags, out_items, o, blocks)
                        if o - start_o == n_in:
                            partial = j + 1 < g_indptr[v + 1]
                            break
            h0 = head - 1 if partial else head
            gt = 0
            for t in range(h0, tail):
                gq[gt] = queue[t]
                gt += 1
            for t in range(tail):
                flags[queue[t]] &= _NOT_SEEN
            continue
        if cont:  # the continuing search
            out_mode[b] = 1
            out_roots[b] = gq[gh] if gh < gt else -1
            while o - start_o < n_in:
                if gh == gt:
                    s = _random_unused(state, order, flags, n, True, n - o)
                    flags[s] |= _SEEN
                    gq[gt] = s
                    gt += 1
                    o = _take(s, flags, out_items, o, blocks)
                    continue
                v = gq[gh]
                full = True
                for j in range(g_indptr[v], g_indptr[v + 1]):
                    w = g_indices[j]
                    f = flags[w]
                    if f & _SEEN:
                        continue
                    flags[w] = f | _SEEN
                    gq[gt] = w
                    gt += 1
                    if not f & _USED:
                        o = _take(w, flags, out_items, o, blocks)
                        if o - start_o == n_in:
                            full = j + 1 == g_indptr[v + 1]
                            break
                if full:
                    gh += 1  # else: expand v again (its remaining neighbours) next batch
            continue
        if root < 0:
            root = _random_unused(state, order, flags, n, True, n - o)
        out_roots[b] = root
        flags[root] |= _SEEN
        queue[0] = root
        tail = 1
        head = 0
        if not flags[root] & _USED:
            o = _take(root, flags, out_items, o, blocks)
        left = budget
        filled = False
        partial = False
        while o - start_o < n_in:
            if left <= 0 or tail >= cap:
                filled = True
                p = root + 1
                while o - start_o < n_in:
                    if p >= n:
                        p = 0
                    if blocks[p >> BLOCK_SHIFT] == 0:
                        p = ((p >> BLOCK_SHIFT) + 1) << BLOCK_SHIFT
                        continue
                    if not flags[p] & _USED:
                        o = _take(p, flags, out_items, o, blocks)
                    p += 1
                break
            if head == tail:
                s = _random_unused(state, order, flags, n, True, n - o)
                flags[s] |= _SEEN
                queue[tail] = s
                tail += 1
                o = _take(s, flags, out_items, o, blocks)
                continue
            v = queue[head]
            head += 1
            left -= 1
            for j in range(g_indptr[v], g_indptr[v + 1]):
                w = g_indices[j]
                f = flags[w]
                if f & _SEEN:
                    continue
                if tail >= cap:
                    partial = True
                    break
                flags[w] = f | _SEEN
                queue[tail] = w
                tail += 1
                if not f & _USED:
                    o = _take(w, flags, out_items, o, blocks)
                    if o - start_o == n_in:
                        partial = j + 1 < g_indptr[v + 1]
                        break
        if (o >= switch_used) or (switch_fill and filled):
            # go on from this batch's frontier: keep its marks, queue what it reached unexpanded
            cont = True
            switched = b
            h0 = head - 1 if partial else head
            for t in range(h0, tail):
                gq[gt] = queue[t]
                gt += 1
            if seeded:
                for t in range(tail):
                    flags[queue[t]] &= _NOT_SEEN
            continue
        for t in range(tail):
            flags[queue[t]] &= _NOT_SEEN
        # the static move: a neighbour with unused items within two hops, else teleport
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
            while not near and j1 < u1:
                x = g_indices[j1]
                for j2 in range(g_indptr[x], g_indptr[x + 1]):
                    if not flags[g_indices[j2]] & _USED:
                        near = True
                        break
                j1 += 1
            if near:
                queue[ncand] = u
                ncand += 1
        if ncand == 0:
            root = -1
        else:
            root = queue[_below(state, ncand)]
    return switched


def walk(s: GraphWalkBatchSampler, epoch: int, mode: str) -> tuple[list[np.ndarray], float, int]:
    n = s.index.n_items
    sizes = s._layout.sizes
    a = s._walker.arrays
    flags = np.zeros(n, np.uint8)
    blocks = _block_counts(n)
    order = epoch_order(n, s.seed, epoch)
    queue = np.empty(s._walker.start(0).state.queue.shape[0], np.int32)
    gq = np.empty(n + 1, np.int32)
    state = seed_state(s.seed, epoch, 0x67770A1C)
    items = np.empty(int(sizes.sum()), np.int32)
    roots = np.full(sizes.size, -1, np.int64)
    mode_b = np.zeros(sizes.size, np.int64)
    switch_used = n + 1
    switch_fill = False
    seeded = mode.startswith("seeded:")
    m = mode[7:] if seeded else mode
    if m == "always":
        switch_used = 0
    elif m.startswith("used>="):
        switch_used = int(float(m[6:]) * n)
    elif m == "fill":
        switch_fill = True
    t0 = time.perf_counter()
    sw = frontier_batches(
        a[0],
        a[1],
        flags,
        blocks,
        order,
        queue,
        gq,
        state,
        sizes,
        s._walker.budget,
        switch_used,
        switch_fill,
        items,
        roots,
        mode_b,
        seeded,
    )
    secs = time.perf_counter() - t0
    mapped = items if s._walker.order is None else s._walker.order[items]
    bounds = s._layout.offsets
    return [mapped[bounds[i] : bounds[i + 1]] for i in range(sizes.size)], secs, sw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--digits", action="store_true")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument(
        "--modes", default="never,always,fill,used>=0.5,used>=0.6,used>=0.7,used>=0.8,used>=0.9"
    )
    args = ap.parse_args(argv)
    if args.digits:
        from data import digits_index

        index = digits_index(k=10)
    else:
        from data import benchmark_index

        index = benchmark_index(progress=False)
    y = index.labels["label"]
    s = GraphWalkBatchSampler(index, args.batch, graph="knn")
    nb = s._layout.n_global
    modes = args.modes.split(",")
    walk(s, 0, "never")  # compile
    print(
        f"{index.n_items:,} items, batch {args.batch}, {args.epochs} epoch(s) pooled: homophily "
        "per tenth of the epoch (± s.e. in the 9th), µs per batch (kernel), switch batch"
    )
    print(
        "| walk | "
        + " | ".join(str(t + 1) for t in range(10))
        + " | epoch | s.e. 9th | µs / batch | switch (mean share of epoch) |"
    )
    print("|---" * 15 + "|")
    for mode in modes:
        res = []
        secs = 0.0
        sws = []
        for e in range(args.epochs):
            batches, sec, sw = walk(s, e, mode)
            secs += sec
            sws.append(sw / nb if sw >= 0 else 1.0)
            if mode == "never":  # the sampler's own walk: must be equal
                s.set_epoch(e)
                ref = list(s)
                assert all(np.array_equal(x, r) for x, r in zip(batches, ref, strict=True)), e
            res.append(homophily_by_tenth(batches, y))
        p = _pooled(res)
        c = p["batches"][8]
        se = 0.0
        if c > 1:
            var = max(0.0, (p["sq"][8] - c * p["tenths"][8] ** 2) / (c - 1))
            se = float(np.sqrt(var / c))
        cells = ["-" if h is None else f"{h:.3f}" for h in p["tenths"]]
        print(
            f"| {mode} | " + " | ".join(cells) + f" | {p['overall']:.3f} | {se:.3f} | "
            f"{secs / args.epochs / nb * 1e6:.2f} | {np.mean(sws):.2f} |",
            flush=True,
        )
    print("(never = the sampler's walk, checked batch for batch against GraphWalkBatchSampler)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
