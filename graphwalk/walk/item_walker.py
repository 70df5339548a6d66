"""The walker over an item (kNN) graph: a batch is ROOT's neighbourhood grown breadth-first."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.index.types import Graph
from graphwalk.walk.epoch import EpochLayout
from graphwalk.walk.kernels import BLOCK_SHIFT, item_batches, max_degree, seed_state
from graphwalk.walk.walker import WALK_STREAM, EpochPlan, Walker

__all__ = ["ItemWalker"]

#: a batch's search may expand this many nodes per item of the batch (measured on the 1M
#: benchmark: 1 is 25% faster and a little less homophilous late in the epoch, 8 is twice as
#: slow for the same homophily; see the README)
BUDGET_PER_ITEM = 2
_NO_MAP = np.empty(0, np.int32)  # no walk order: the kernel's nodes are items


def epoch_order(n: int, seed: int, epoch: int) -> npt.NDArray[np.int64]:
    """``[stride, start, 0]``: the epoch's pseudo-random order of items ``(start + t * stride) % n``
    (a stride coprime with ``n`` visits every item once), from ``(seed, epoch)``."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch) & 0xFFFFFFFF, 0x0D3E])
    stride = int(rng.integers(1, n)) if n > 1 else 1
    while math.gcd(stride, n) != 1:
        stride = stride % (n - 1) + 1
    return np.array([stride, int(rng.integers(0, n)), 0], np.int64)


def _block_counts(n: int) -> npt.NDArray[np.uint16]:
    counts = np.full((n + (1 << BLOCK_SHIFT) - 1) >> BLOCK_SHIFT, 1 << BLOCK_SHIFT, np.uint16)
    counts[-1] = n - ((counts.size - 1) << BLOCK_SHIFT)
    return counts


@dataclass
class ItemState:
    """An epoch's state of the item walk (see :mod:`graphwalk.walk.kernels.item`)."""

    flags: npt.NDArray[np.uint8]  # bit 7: used this epoch; bit 6: reached by the batch
    blocks: npt.NDArray[np.uint16]  # unused items per block of 2**BLOCK_SHIFT nodes
    order: npt.NDArray[np.int64]  # the epoch's random order [stride, start, t]
    queue: npt.NDArray[np.int32]
    rng: npt.NDArray[np.uint64]
    cand: npt.NDArray[np.int64]  # the last ROOT's candidates: positions in its row
    cand_items: npt.NDArray[np.int64]  # and their item ids
    cand_count: npt.NDArray[np.int64]  # [count, unused items near each candidate...]
    cweights: npt.NDArray[np.float64]
    pos: npt.NDArray[np.int64]  # [root, o]
    #: the kernel's argument groups for this epoch (built once: a policy walks batch by batch)
    args: tuple[Any, ...] = ()

    def walk(self) -> tuple[npt.NDArray[Any], ...]:
        return (
            self.flags,
            self.blocks,
            self.order,
            self.queue,
            self.rng,
            self.cand,
            self.cand_items,
            self.cand_count,
            self.cweights,
            self.pos,
        )


class ItemWalker(Walker):
    """Walks an item graph, in its stored walk order when the index has one (neighbours get
    nearby numbers, so a batch's search reads contiguous memory; nodes map back to items at the
    output). See :func:`~graphwalk.walk.kernels.item_batches`.

    Args:
        graph: the item graph (one node per item of the index).
        layout: the epoch layout.
        batch_size: the sampler's batch size (sets the search budget).
        restart, weighted, replacement, seed: as the sampler's.
        subset: the item ids walked (``None``: all); the others are passed through, never taken.
    """

    kind = "item"

    def __init__(
        self,
        graph: Graph,
        layout: EpochLayout,
        *,
        batch_size: int,
        restart: float,
        weighted: bool,
        replacement: bool,
        seed: int,
        subset: npt.NDArray[np.int64] | None,
    ) -> None:
        super().__init__(graph.name, layout, seed)
        self.graph = graph
        self.restart, self.weighted, self.replacement = restart, weighted, replacement
        self.subset = subset
        w = graph.walk
        self.arrays = (
            (graph.indptr, graph.indices, graph.weights)
            if w is None
            else (w.indptr, w.indices, w.weights)
        )
        self.order: npt.NDArray[np.int32] | None = None if w is None else w.order
        self.position: npt.NDArray[np.int32] | None = None if w is None else w.position
        self.n = graph.n_nodes
        self.max_degree = max(1, int(max_degree(graph.indptr)))
        # nodes one batch's search may expand (taking, then looking for the next ROOT); beyond
        # it the batch is completed with random unused items (late in an epoch)
        self.budget = max(64, BUDGET_PER_ITEM * batch_size)

    def start(self, epoch: int) -> EpochPlan:
        n = self.n
        mean_deg = max(1.0, self.graph.n_edges / max(1, n))
        d = self.max_degree
        cap = int(min(n + 1, self.budget * max(16.0, 2.0 * mean_deg) + d + 1))
        state = ItemState(
            flags=np.zeros(n, np.uint8),
            blocks=_block_counts(n),
            order=epoch_order(n, self.seed, epoch),
            queue=np.empty(cap, np.int32),
            rng=seed_state(self.seed, epoch, WALK_STREAM),
            cand=np.zeros(d, np.int64),
            cand_items=np.zeros(d, np.int64),
            cand_count=np.zeros(d + 1, np.int64),
            cweights=np.empty(d, np.float64),
            pos=np.array([-1, 0], np.int64),
        )
        if self.subset is not None:  # items not walked: used from the start, passed through
            nodes = self.subset if self.position is None else self.position[self.subset]
            state.flags[:] = 0x80
            state.flags[nodes] = 0
            state.blocks = np.bincount(nodes >> BLOCK_SHIFT, minlength=state.blocks.size).astype(
                np.uint16
            )
        plan = EpochPlan.empty(epoch, self.layout, state)
        plan.fill = np.zeros(self.layout.n_global, np.int64)
        lay = self.layout
        state.args = (
            (*self.arrays, _NO_MAP if self.order is None else self.order),
            state.walk(),
            (lay.sizes, lay.n_out, plan.given),
            (plan.items, plan.roots, plan.community, plan.fill),
        )
        return plan

    def run(self, plan: EpochPlan, b0: int, b1: int) -> None:
        item_batches(  # type: ignore[call-arg]  # numba stubs vs star-args
            *plan.state.args,
            b0,
            b1,
            self.restart,
            self.weighted,
            self.budget,
            self.order is not None,
            not self.replacement,
        )
        plan.done = b1

    def items(self, nodes: Any) -> npt.NDArray[np.int64]:
        """Item ids of walked nodes."""
        nodes = np.asarray(nodes, np.int64)
        return nodes if self.order is None else self.order[nodes].astype(np.int64)

    def item(self, node: int) -> int:
        return node if self.order is None or node < 0 else int(self.order[node])

    def to_walk(self, node: int) -> int:
        return node if self.position is None else int(self.position[node])

    def candidates(
        self, plan: EpochPlan, b: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        prev = int(plan.roots[b - 1]) if b > 0 else -1
        if prev < 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        s: ItemState = plan.state
        cnt = int(s.cand_count[0])
        return s.cand_items[:cnt].copy(), s.cand_count[1 : 1 + cnt].copy()

    def alive(self, plan: EpochPlan) -> Callable[[], npt.NDArray[np.int64]]:
        if self.replacement:
            if self.subset is not None:
                subset = self.subset
                return lambda: np.sort(subset)
            return lambda: np.arange(self.n, dtype=np.int64)
        s: ItemState = plan.state
        return lambda: np.sort(self.items(np.flatnonzero(s.flags < 0x80)))

    def community(self, plan: EpochPlan, b: int) -> npt.NDArray[np.int64]:
        """The items the search took (the batch without its ``mix`` share)."""
        lay = self.layout
        o = int(lay.offsets[b])
        return plan.items[o : o + int(lay.sizes[b] - lay.n_out[b])].astype(np.int64)


def check_item_graph(graph: Graph, n_items: int) -> None:
    """An item graph must have one node per item of the index."""
    if graph.n_nodes != n_items:
        raise InputError(
            f"item graph {graph.name!r} has {graph.n_nodes} nodes but the index has {n_items} items"
        )
