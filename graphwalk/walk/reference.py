"""The reference item-graph walk: plain breadth-first batches, slow and obviously correct.

This is the walk that the fast kernel of :class:`~graphwalk.GraphWalkBatchSampler` implements on
item (kNN) graphs, written as literally as possible, without the kernel's budget on the search.
The benchmarks compare the sampler's batch homophily with this walk's in the same process, and
the tests check the walk's promises on it. It draws from NumPy's ``default_rng(seed)``, so its batches are not the sampler's
batches, only batches of the same kind.

One batch, for each global batch ``b`` of ``sizes[b]`` items (``n_in`` from the walk,
``n_out[b]`` drawn at random from outside it):

1. Without ``replacement`` every item is taken once per epoch (``used``); with it, ``used`` is
   cleared before every batch. A ROOT of ``-1`` teleports to a uniformly random unused item.
2. Grow ROOT's neighbourhood breadth-first *through* the graph: every node is discovered once, in
   CSR order; used items are passed through, unused ones taken until ``n_in`` items are taken
   (the node being expanded still has all its neighbours discovered). When the search runs out
   of nodes, it goes on from a uniformly random unused item (taken).
3. Take ``n_out[b]`` uniformly random unused items.
4. Move ROOT: with probability ``restart`` teleport. With ``replacement``, the candidates are all
   of ROOT's out-neighbours. Without, they depend on ``move``:

   - ``"two-hop"`` (the default, the sampler's walk): ROOT's neighbours with an unused item within
     two hops of them (themselves, their neighbours or their neighbours' neighbours).
   - ``"shortest-path"`` (an ablation, not the sampler's walk): the same search goes on (taking
     nothing) until every node at depth ``D`` is discovered, ``D`` being the depth of the nearest
     unused items; the candidates are ROOT's neighbours that start a shortest path to one of them
     (``branch``). Each batch is then a thin shell around the used region.

   No candidate: teleport. Pick a candidate uniformly, or by edge weight with ``weighted=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numba import njit

from graphwalk import _numba_cache  # noqa: F401  (first: before any kernel is defined)
from graphwalk.errors import InputError
from graphwalk.walk.epoch import mix_counts as _mix_counts

__all__ = ["MOVES", "mix_counts", "reference_item_batches", "reference_item_walk"]

#: ``two-hop`` is the sampler's walk; ``shortest-path`` is the rejected alternative, kept as an
#: ablation (it makes batches thin shells around the used region: about half the homophily lift).
MOVES = ("two-hop", "shortest-path")


def mix_counts(sizes: npt.ArrayLike, mix: float) -> npt.NDArray[np.int64]:
    """Items of each batch drawn from outside the walk: ``mix`` of the items on average, exactly.

    ``n_out[b] = floor(mix * cum[b + 1]) - floor(mix * cum[b])`` with ``cum`` the cumulative batch
    sizes, so the rounding remainder carries from batch to batch (batch 2, ``mix=0.25``: one
    item every other batch, not 0 or 1 every time). A ``1e-9`` guard keeps products such as
    ``0.29 * 100`` from flooring one below their exact value.

    Args:
        sizes: the batch sizes of an epoch, in order.
        mix: the share drawn from outside, in ``[0, 1]``.
    """
    s = np.asarray(sizes, dtype=np.int64)
    if not 0.0 <= float(mix) <= 1.0:
        raise InputError(f"mix should be in [0, 1], but got mix={mix}")
    return _mix_counts(s, float(mix))  # the sampler's own formula


def reference_item_batches(
    indptr: npt.ArrayLike,
    indices: npt.ArrayLike,
    weights: npt.ArrayLike,
    sizes: Sequence[int] | npt.ArrayLike,
    *,
    seed: int = 0,
    n_out: Sequence[int] | npt.ArrayLike | None = None,
    restart: float = 0.0,
    weighted: bool = False,
    replacement: bool = False,
    move: str = "two-hop",
) -> list[npt.NDArray[np.int64]]:
    """Batches of a breadth-first walk over an item graph in CSR form (see the module docstring).

    Args:
        indptr, indices, weights: the graph (int64 ``n + 1``, int32, float32; may be directed);
            nodes are items.
        sizes: ``sizes[b]`` is the size of global batch ``b``. Without ``replacement`` they add
            up to at most ``n``.
        seed: seeds ``np.random.default_rng``.
        n_out: items of each batch drawn uniformly from outside the walk (default none; see
            :func:`mix_counts`). They come last in their batch.
        restart: probability of teleporting instead of moving ROOT to a neighbour.
        weighted: choose ROOT's move with probability proportional to the edge weight.
        replacement: every batch is drawn from all items (items repeat across batches).
        move: how ROOT moves without replacement, ``"shortest-path"`` (one step towards the
            nearest unused items) or ``"two-hop"`` (to a neighbour with unused items within two
            hops of it, as the sampler's walk does).

    Returns:
        One int64 array of item ids per batch: the walk's items in the order taken, then the
        ``n_out`` random ones.
    """
    return reference_item_walk(
        indptr,
        indices,
        weights,
        sizes,
        seed=seed,
        n_out=n_out,
        restart=restart,
        weighted=weighted,
        replacement=replacement,
        move=move,
    )[0]


def reference_item_walk(
    indptr: npt.ArrayLike,
    indices: npt.ArrayLike,
    weights: npt.ArrayLike,
    sizes: Sequence[int] | npt.ArrayLike,
    *,
    seed: int = 0,
    n_out: Sequence[int] | npt.ArrayLike | None = None,
    restart: float = 0.0,
    weighted: bool = False,
    replacement: bool = False,
    move: str = "two-hop",
) -> tuple[list[npt.NDArray[np.int64]], npt.NDArray[np.int64]]:
    """:func:`reference_item_batches` with the ROOT of every batch, for tests of the moves.

    Args: as :func:`reference_item_batches`.

    Returns:
        The batches (as :func:`reference_item_batches`) and the ROOT of each batch.
    """
    ip = np.ascontiguousarray(indptr, dtype=np.int64)
    ix = np.ascontiguousarray(indices, dtype=np.int32)
    wt = np.ascontiguousarray(weights, dtype=np.float32)
    sz = np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1)
    n = ip.shape[0] - 1
    if n < 1 or ip[0] != 0 or ip[-1] != ix.shape[0] or (np.diff(ip) < 0).any():
        raise InputError(f"not a CSR graph: indptr of length {ip.shape[0]}, {ix.shape[0]} indices")
    if ix.shape[0] and (ix.min() < 0 or ix.max() >= n):
        raise InputError(f"indices should be node ids in [0, {n}), but some are not")
    if wt.shape != ix.shape:
        raise InputError(f"weights should match indices ({ix.shape[0]}), but got {wt.shape[0]}")
    if (sz <= 0).any() or (sz > n).any():
        raise InputError(f"sizes should be in [1, {n}], but got {sz.min()}..{sz.max()}")
    if not replacement and sz.sum() > n:
        raise InputError(f"sizes add up to {sz.sum()} items, more than the graph's {n}")
    no = np.zeros_like(sz) if n_out is None else np.ascontiguousarray(n_out, dtype=np.int64)
    if no.shape != sz.shape or (no < 0).any() or (no > sz).any():
        raise InputError("n_out should give 0 <= n_out[b] <= sizes[b] for every batch")
    if not 0.0 <= restart <= 1.0:
        raise InputError(f"restart should be in [0, 1], but got restart={restart}")
    if move not in MOVES:
        raise InputError(f"move should be one of {MOVES}, but got move={move!r}")
    out = np.empty(int(sz.sum()), np.int64)
    roots = np.empty(sz.shape[0], np.int64)
    if sz.shape[0] == 0:
        return [], roots
    rng = np.random.default_rng(seed)
    two_hop = move == "two-hop"
    _walk(
        ip,
        ix,
        wt,
        sz,
        no,
        float(restart),
        bool(weighted),
        bool(replacement),
        two_hop,
        rng,
        out,
        roots,
    )
    return np.split(out, np.cumsum(sz)[:-1]), roots


@njit(cache=True)
def _random_unused(used: npt.NDArray[np.bool_], n_used: int, rng: np.random.Generator) -> int:
    """A uniformly random unused item: the ``k``-th, ``k`` uniform below the number unused."""
    k = rng.integers(0, used.shape[0] - n_used)
    for i in range(used.shape[0]):
        if not used[i]:
            if k == 0:
                return i
            k -= 1
    return -1  # not reached: n_used counts the used items


@njit(cache=True)
def _unused_within_two_hops(
    u: int,
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    used: npt.NDArray[np.bool_],
) -> bool:
    """Whether ``u``, one of its out-neighbours or one of theirs is unused."""
    if not used[u]:
        return True
    for x in indices[indptr[u] : indptr[u + 1]]:
        if not used[x]:
            return True
        for z in indices[indptr[x] : indptr[x + 1]]:
            if not used[z]:
                return True
    return False


@njit(cache=True)
def _walk(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    weights: npt.NDArray[np.float32],
    sizes: npt.NDArray[np.int64],
    n_out: npt.NDArray[np.int64],
    restart: float,
    weighted: bool,
    replacement: bool,
    two_hop: bool,
    rng: np.random.Generator,
    out: npt.NDArray[np.int64],
    roots: npt.NDArray[np.int64],
) -> None:
    """The walk itself (module docstring), writing the batches one after another into ``out``
    and the ROOT of each batch into ``roots``.

    Plain loops, compiled by Numba only because Python takes hours at 1,000,000 items. Per batch:
    ``depth[w]`` (-1: not discovered yet) and ``branch[w]`` (the position, among ROOT's
    out-neighbours, of the edge that the search to ``w`` left ROOT by; -1 for ROOT and for nodes
    reached from a random restart); ``queue[:tail]`` holds the discovered nodes in discovery order
    and ``queue[head]`` is the next one to expand.
    """
    n = indptr.shape[0] - 1
    used = np.zeros(n, np.bool_)
    depth = np.full(n, -1, np.int64)
    branch = np.full(n, -1, np.int64)
    queue = np.empty(n, np.int64)
    root = -1
    pos = 0  # items written to out so far
    first = 0  # out[first:pos] are the used items
    for b in range(sizes.shape[0]):
        if replacement:
            used[:] = False
            first = pos  # every item taken since was used in this batch
        n_in = sizes[b] - n_out[b]
        start = pos
        if root < 0:
            root = _random_unused(used, pos - first, rng)  # teleport
        roots[b] = root

        # the batch: ROOT's neighbourhood, breadth-first through used items
        depth[root] = 0
        branch[root] = -1
        queue[0] = root
        head = 0
        tail = 1
        if not used[root] and n_in > 0:
            used[root] = True
            out[pos] = root
            pos += 1
        while pos - start < n_in:
            if head == tail:  # everything reachable is used: go on from a random unused item
                s = _random_unused(used, pos - first, rng)
                depth[s] = 0
                branch[s] = -1
                queue[tail] = s
                tail += 1
                used[s] = True
                out[pos] = s
                pos += 1
                continue
            v = queue[head]
            head += 1
            for j in range(indptr[v + 1] - indptr[v]):
                w = indices[indptr[v] + j]
                if depth[w] < 0:
                    depth[w] = depth[v] + 1
                    branch[w] = j if v == root else branch[v]
                    queue[tail] = w
                    tail += 1
                    if not used[w] and pos - start < n_in:
                        used[w] = True
                        out[pos] = w
                        pos += 1

        # the mix: uniformly random unused items (a partial Fisher-Yates shuffle of them)
        if n_out[b] > 0:
            pool = np.flatnonzero(~used)
            for i in range(n_out[b]):
                r = i + rng.integers(0, pool.shape[0] - i)
                pool[i], pool[r] = pool[r], pool[i]
                used[pool[i]] = True
                out[pos] = pool[i]
                pos += 1

        # the next ROOT
        degree = indptr[root + 1] - indptr[root]
        is_candidate = np.zeros(degree, np.bool_)
        if restart > 0 and rng.random() < restart:
            pass  # teleport
        elif replacement:
            is_candidate[:] = True
        elif two_hop:
            for j in range(degree):
                u = indices[indptr[root] + j]
                is_candidate[j] = _unused_within_two_hops(u, indptr, indices, used)
        else:
            far = n + 1  # D: the depth of the first unused item discovered (none yet)
            for i in range(tail):
                if not used[queue[i]]:
                    far = depth[queue[i]]
                    break
            while head < tail and depth[queue[head]] < far:
                v = queue[head]
                head += 1
                for j in range(indptr[v + 1] - indptr[v]):
                    w = indices[indptr[v] + j]
                    if depth[w] < 0:
                        depth[w] = depth[v] + 1
                        branch[w] = j if v == root else branch[v]
                        queue[tail] = w
                        tail += 1
                        if not used[w] and far > n:
                            far = depth[w]
            for i in range(tail):
                w = queue[i]
                if not used[w] and depth[w] == far and branch[w] >= 0:
                    is_candidate[branch[w]] = True
        candidates = np.flatnonzero(is_candidate)
        if candidates.shape[0] == 0:
            new_root = -1
        elif weighted:
            p = np.cumsum(weights[indptr[root] + candidates].astype(np.float64))
            r = rng.random() * p[-1]
            pick = min(np.searchsorted(p, r, side="right"), candidates.shape[0] - 1)
            new_root = indices[indptr[root] + candidates[pick]]
        else:
            new_root = indices[indptr[root] + candidates[rng.integers(0, candidates.shape[0])]]

        for i in range(tail):  # forget this batch's search
            depth[queue[i]] = -1
        root = new_root
