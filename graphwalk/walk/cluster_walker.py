"""The walker over a cluster graph: a batch is ROOT's cluster and ``k`` sampled neighbours."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.index.types import Graph
from graphwalk.walk.epoch import EpochLayout
from graphwalk.walk.kernels import cluster_batches, max_degree, seed_state
from graphwalk.walk.walker import WALK_STREAM, EpochPlan, Walker

__all__ = ["ClusterWalker"]


@dataclass
class ClusterState:
    """An epoch's state of the cluster walk (see :mod:`graphwalk.walk.kernels.cluster`)."""

    seg: npt.NDArray[np.int32]  # members, the unused part of each cluster first
    taken: npt.NDArray[np.int64]  # items taken per cluster
    alive: npt.NDArray[np.int64]  # clusters with items left first (alive[:n_alive])
    apos: npt.NDArray[np.int64]  # position of each cluster in alive
    stamp: npt.NDArray[np.int64]  # per-batch marks
    comm: npt.NDArray[np.int64]  # the last batch's community (comm[:ncomm])
    rng: npt.NDArray[np.uint64]
    cand: npt.NDArray[np.int64]  # the last ROOT's neighbours with items left (cand[:ncand])
    cand_left: npt.NDArray[np.int64]  # and their items left
    pos: npt.NDArray[np.int64]  # [root, n_alive, o, ncomm, ncand]
    scratch: tuple[npt.NDArray[Any], ...]
    #: the kernel's argument groups for this epoch (built once: a policy walks batch by batch)
    args: tuple[Any, ...] = ()

    @property
    def n_alive(self) -> int:
        return int(self.pos[1])

    def walk(self) -> tuple[npt.NDArray[Any], ...]:
        return (
            self.seg,
            self.taken,
            self.alive,
            self.apos,
            self.stamp,
            self.comm,
            self.rng,
            self.cand,
            self.cand_left,
            self.pos,
        )


class ClusterWalker(Walker):
    """Walks a cluster graph: ROOT's cluster and ``k`` neighbour clusters with items left form
    the community; ROOT moves to a neighbour with items left (see
    :func:`~graphwalk.walk.kernels.cluster_batches`).

    Args:
        index: the index holding the graph and its level.
        graph: the cluster graph.
        layout: the epoch layout.
        k: neighbours sampled into each community.
        restart, weighted, replacement, seed: as the sampler's.
        subset: the item ids walked (``None``: all); the others are not members.
    """

    kind = "cluster"

    def __init__(
        self,
        index: GraphIndex,
        graph: Graph,
        layout: EpochLayout,
        *,
        k: int,
        restart: float,
        weighted: bool,
        replacement: bool,
        seed: int,
        subset: npt.NDArray[np.int64] | None,
    ) -> None:
        super().__init__(graph.name, layout, seed)
        assert graph.level is not None
        self.graph = graph
        self.k, self.restart, self.weighted = k, restart, weighted
        self.replacement = replacement
        mem_indptr, members = index.members(graph.level)
        if subset is not None:  # only the walked items are members
            assign = index.levels[graph.level].assignment[subset]
            order = np.argsort(assign, kind="stable")
            counts = np.bincount(assign, minlength=mem_indptr.size - 1)
            mem_indptr = np.zeros(counts.size + 1, np.int64)
            np.cumsum(counts, out=mem_indptr[1:])
            members = np.asarray(subset[order], np.int32)
        self.mem_indptr: npt.NDArray[np.int64] = mem_indptr
        self.members: npt.NDArray[Any] = members
        self.sizes = np.diff(mem_indptr)
        self.arrays = (
            graph.indptr,
            graph.indices,
            graph.weights,
            index.levels[graph.level].assignment,
        )
        self.max_degree = max(1, int(max_degree(graph.indptr)))
        self._graph_arrays = (graph.indptr, graph.indices, graph.weights)

    def warn_if_diluted(self, batch_size: int, stacklevel: int) -> float:
        """Say when a batch is larger than a typical community, whose items then run dry and
        random clusters fill the rest of the batch (dilution); return the expected number of
        clusters a batch spans (ROOT's, its neighbours', then random ones)."""
        sizes = self.sizes
        live = sizes > 0
        mean = float(sizes[live].mean()) if live.any() else 0.0
        per_batch = batch_size / mean if mean else float("inf")
        deg = np.diff(self.graph.indptr)
        community = sizes + np.minimum(self.k, deg) * mean  # items ROOT and k neighbours offer
        typical = float(np.median(community[live])) if live.any() else 0.0
        if typical < batch_size:
            warnings.warn(
                f"batches of {batch_size} are larger than a typical community of graph "
                f"{self.name!r} (ROOT and k={self.k} neighbours hold about {typical:.0f} items; "
                f"clusters hold {mean:.0f} on average): a batch spans about "
                f"{per_batch:.0f} clusters and random clusters fill what the "
                "community lacks; use a larger k, fewer and larger clusters, or smaller batches",
                RuntimeWarning,
                stacklevel=stacklevel + 1,
            )
        return per_batch

    def start(self, epoch: int) -> EpochPlan:
        K = self.mem_indptr.size - 1
        alive = np.flatnonzero(self.sizes > 0).astype(np.int64)
        apos = np.zeros(K, np.int64)
        apos[alive] = np.arange(alive.size)
        dead = np.flatnonzero(self.sizes == 0)
        apos[dead] = np.arange(alive.size, K)
        d = self.max_degree
        state = ClusterState(
            seg=self.members.astype(np.int32, copy=True),
            taken=np.zeros(K, np.int64),
            alive=np.concatenate([alive, dead]),
            apos=apos,
            stamp=np.zeros(K, np.int64),
            comm=np.zeros(K + 1, np.int64),
            rng=seed_state(self.seed, epoch, WALK_STREAM),
            cand=np.zeros(d, np.int64),
            cand_left=np.zeros(d, np.int64),
            pos=np.array([-1, alive.size, 0, 0, 0], np.int64),
            scratch=(
                np.empty(d, np.int64),
                np.empty(d, np.float64),
                np.empty(K, np.int64),
                np.empty(K, np.int64),
                np.empty(K, np.int64),
                np.empty(K, np.int64),
            ),
        )
        plan = EpochPlan.empty(epoch, self.layout, state)
        lay = self.layout
        state.args = (
            self._graph_arrays,
            self.mem_indptr,
            state.walk(),
            state.scratch,
            (lay.sizes, lay.n_out, plan.given),
            (plan.items, plan.roots, plan.community),
        )
        return plan

    def run(self, plan: EpochPlan, b0: int, b1: int) -> None:
        cluster_batches(  # type: ignore[call-arg]  # numba stubs vs star-args
            *plan.state.args,
            b0,
            b1,
            self.k,
            self.restart,
            self.weighted,
            not self.replacement,
        )
        plan.done = b1

    def _left(self, plan: EpochPlan, nodes: Any) -> Any:
        if self.replacement:
            return self.sizes[nodes]
        return self.sizes[nodes] - plan.state.taken[nodes]

    def candidates(
        self, plan: EpochPlan, b: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        if b == 0:  # batch b - 1 was walked just before: its ROOT's candidates are in the state
            return np.empty(0, np.int64), np.empty(0, np.int64)
        s: ClusterState = plan.state
        n = int(s.pos[4])
        return s.cand[:n].copy(), s.cand_left[:n].copy()

    def alive(self, plan: EpochPlan) -> Callable[[], npt.NDArray[np.int64]]:
        if self.replacement:
            return lambda: np.flatnonzero(self.sizes > 0).astype(np.int64)
        s: ClusterState = plan.state
        return lambda: np.sort(s.alive[: s.n_alive])

    def check_choice(self, plan: EpochPlan, b: int, node: int, who: str) -> None:
        if int(self._left(plan, node)) <= 0:
            raise InputError(
                f"{who} chose cluster {node} for batch {b} of epoch "
                f"{plan.epoch}, which has no items left; return a candidate, a node of "
                "step.alive(), or TELEPORT (-1)"
            )

    def community(self, plan: EpochPlan, b: int) -> npt.NDArray[np.int64]:
        s: ClusterState = plan.state
        return s.comm[: int(s.pos[3])].copy()
