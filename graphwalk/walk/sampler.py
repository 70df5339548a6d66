"""`GraphWalkBatchSampler` and `GraphWalkSampler`: walk an index, yield training batches.

Each step of the walk picks a ROOT node, forms its batch community (ROOT and ``k`` sampled
neighbours for cluster graphs; ROOT's neighbourhood grown breadth-first for item graphs) and
draws a batch from it; then ROOT moves to a neighbour. By default an epoch visits every item
exactly once (without replacement); ``replacement=True`` draws every batch from full communities
for a user-set number of batches.
"""

from __future__ import annotations

import copy
import math
import sys
import warnings
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler

from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.index.types import Graph
from graphwalk.validation import check_positive_int
from graphwalk.walk.kernels import (
    BLOCK_SHIFT,
    ROOT_DEFAULT,
    ROOT_TELEPORT,
    cluster_batches,
    item_batches,
    max_degree,
    mix_counts,
    seed_state,
)
from graphwalk.walk.policy import TELEPORT, WalkPolicy, WalkStep

__all__ = ["BatchInfo", "GraphWalkBatchSampler", "GraphWalkSampler", "batch_sizes"]

_STATE_VERSION = 2
#: item graphs: a batch's search may expand this many nodes per item of the batch (measured on
#: the 1M benchmark: 1 is 25% faster and a little less homophilous late in the epoch, 8 is twice
#: as slow for the same homophily; see the README)
_BUDGET_PER_ITEM = 2


def batch_sizes(
    n_items: int, batch_size: int, world_size: int, drop_last: bool
) -> tuple[npt.NDArray[np.int64], int]:
    """Sizes of an epoch's global batches and the number of batches per rank.

    Global batch ``g`` goes to rank ``g % world_size``, so every rank gets the same number of whole
    batches. Without ``drop_last`` every item is used once: the last round of ``world_size``
    batches shares what is left evenly, and when fewer than ``world_size`` items are left they go
    one each to the previous round's batches (``batch_size + 1``) rather than being repeated.
    With ``drop_last`` all batches are full and the remainder (different items each epoch) waits.
    """
    per_round = batch_size * world_size
    if drop_last:
        per_rank = n_items // per_round
        if per_rank == 0:
            raise InputError(
                f"batch_size={batch_size} x world_size={world_size} = {per_round} exceeds the "
                f"{n_items} items with drop_last=True: no batch can be made; use a smaller batch_size"
            )
        return np.full(per_rank * world_size, batch_size, np.int64), per_rank
    per_rank = math.ceil(n_items / per_round)
    rest = n_items - (per_rank - 1) * per_round
    sizes = np.full(per_rank * world_size, batch_size, np.int64)
    if rest >= world_size:
        last = np.full(world_size, rest // world_size, np.int64)
        last[: rest % world_size] += 1
        sizes[-world_size:] = last
    else:
        per_rank -= 1
        sizes = sizes[: per_rank * world_size]
        sizes[-world_size:][:rest] += 1
    return sizes, per_rank


@dataclass
class BatchInfo:
    """What a batch came from: for logging, never needed by the plain path.

    ``batch`` is this rank's batch index in the epoch, ``global_batch`` its index in the walk
    (``rank + batch * world_size``). ``delay`` (set by :meth:`GraphWalkBatchSampler.report`) is
    how many batches the sampler had yielded after this one when its reward arrived.
    ``random_fill`` (item graphs) counts the items completed at random because the search budget
    ran out (late in an epoch, when the unused items are scattered)."""

    batch: int
    root: int
    community_size: int
    size: int
    epoch: int = 0
    global_batch: int = 0
    teleported: bool = False
    random_fill: int = 0
    delay: int | None = None
    #: (every item's label, the batch's items), from which :attr:`homophily` is computed on
    #: first access (report() returns a BatchInfo every step; most loops never read it)
    _source: tuple[npt.NDArray[np.int64], npt.NDArray[Any]] | None = field(
        default=None, repr=False, compare=False
    )
    _homophily: float | None = field(default=None, repr=False, compare=False)

    @property
    def homophily(self) -> float | None:
        """Label homophily of the batch: the share of same-label pairs (``None`` without labels
        or for a batch of one item)."""
        if self._homophily is None and self._source is not None and self._source[1].size > 1:
            labels = self._source[0][self._source[1]]
            counts = np.unique(labels, return_counts=True)[1]
            n = labels.size
            self._homophily = float((counts * (counts - 1)).sum() / (n * (n - 1)))
        return self._homophily


@dataclass
class _Plan:
    epoch: int
    items: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]
    roots: npt.NDArray[np.int64]
    community: npt.NDArray[np.int64]
    done: int  # global batches computed so far (online policies compute lazily)
    given: npt.NDArray[np.int64]  # ROOT per global batch: a node, ROOT_DEFAULT or ROOT_TELEPORT
    walker: Any = None
    fill: npt.NDArray[np.int64] | None = None  # item graphs: items completed at random
    choices: list[int] = field(default_factory=list)  # what the policy returned, per global batch


def _dist_default(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None or world_size is None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
        else:
            rank = 0 if rank is None else rank
            world_size = 1 if world_size is None else world_size
    if (
        isinstance(world_size, bool)
        or not isinstance(world_size, (int, np.integer))
        or world_size < 1
    ):
        raise InputError(
            f"world_size should be a positive integer, but got world_size={world_size!r}"
        )
    if (
        isinstance(rank, bool)
        or not isinstance(rank, (int, np.integer))
        or not 0 <= rank < world_size
    ):
        raise InputError(f"rank should be in [0, world_size={world_size}), but got rank={rank!r}")
    return int(rank), int(world_size)


def _epoch_order(n: int, seed: int, epoch: int) -> npt.NDArray[np.int64]:
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


def _walked_items(
    index: GraphIndex, items: Any, dataset: Any
) -> tuple[npt.NDArray[np.int64] | None, bool]:
    """The item ids to walk (``None``: all) and whether to yield positions in a ``Subset``."""
    n = index.n_items
    positions = False
    if dataset is not None:
        inner, idx = getattr(dataset, "dataset", None), getattr(dataset, "indices", None)
        if inner is not None and idx is not None:  # a torch.utils.data.Subset
            if len(inner) != n:
                raise InputError(
                    f"the Subset's dataset has {len(inner)} items but the index was built from "
                    f"{n}; index the dataset the Subset is taken from"
                )
            if items is not None:
                raise InputError("give items= or a Subset as dataset=, not both")
            items, positions = idx, True
        elif len(dataset) != n:
            raise InputError(
                f"the dataset has {len(dataset)} items but the index was built from {n}; "
                "rebuild the index from this dataset, or walk part of the indexed dataset with "
                "items=ids or dataset=torch.utils.data.Subset(indexed_dataset, ids)"
            )
    if items is None:
        return None, False
    arr = np.asarray(items)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(
            f"items should be a 1-D sequence of integer item ids, but got shape {arr.shape} "
            f"and dtype {arr.dtype}"
        )
    arr = arr.astype(np.int64)
    if arr.size == 0:
        raise InputError("items is empty: give at least one item id to walk")
    if arr.min() < 0 or arr.max() >= n:
        bad = int(arr[(arr < 0) | (arr >= n)][0])
        raise InputError(f"items holds id {bad}, outside the index's {n} items [0, {n})")
    if np.unique(arr).size != arr.size:
        raise InputError("items holds duplicate ids: every item is walked once per epoch")
    arr.flags.writeable = False
    return arr, positions


def _crc(*arrays: npt.NDArray[Any]) -> int:
    c = 0
    for a in arrays:
        c = zlib.crc32(np.ascontiguousarray(a).data.cast("B"), c)  # no copy when contiguous
    return c


class GraphWalkBatchSampler(Sampler[list[int]]):
    """Batches of item indices from walks over a graph of a :class:`GraphIndex`.

    Use as ``DataLoader(dataset, batch_sampler=GraphWalkBatchSampler(index, 256))``.

    Args:
        index: a :class:`GraphIndex` or the path of one.
        batch_size: items per batch (the last batch of an epoch may be smaller, see
            :func:`batch_sizes`).
        graph: which graph to walk (default: the index's only graph).
        k: cluster graphs only: neighbours of ROOT sampled into each community (default 4). Nodes
            with fewer neighbours that still have items contribute all of them. On an item graph
            the community is ROOT's breadth-first neighbourhood, as large as the batch, and
            passing ``k`` is an error (the indexer's ``k``, neighbours per item, is a different
            thing).
        mix: share of each batch drawn from outside the community (0 = pure homophily,
            1 = a random batch), against single-community batches that can zero the gradient of
            contrastive losses or skew BatchNorm statistics. Exact on average: the rounding of
            each batch's count is carried to the next batch.
        restart: probability of teleporting to a random node instead of moving to a neighbour.
        weighted: choose neighbours (and moves) by edge weight instead of uniformly.
        replacement: draw each batch from full communities (items may repeat across batches);
            an epoch is then ``num_batches`` batches per rank.
        num_batches: batches per rank per epoch in ``replacement`` mode (default: as many as
            an epoch without replacement).
        drop_last: drop the last, incomplete round of batches (see :func:`batch_sizes`).
        seed: the walk is a function of ``(seed, epoch)`` only: every rank computes the same global
            walk and takes every ``world_size``-th batch from it.
        rank, world_size: default from ``torch.distributed`` when initialised, else 0 and 1.
        dataset: if given, its length must equal the index's number of items, or it is a
            ``torch.utils.data.Subset`` of the indexed dataset (see ``items``).
        policy: an online :class:`~graphwalk.policy.WalkPolicy` choosing each ROOT (default: the
            built-in static walk, computed for a whole epoch at once by a Numba kernel). See
            :meth:`report` for how rewards reach it.
        labels: label set used for :attr:`BatchInfo.homophily` (default: ``"label"`` if present).
        items: walk only these item ids (a train split of an index built over the whole
            dataset): each once per epoch, with exact length and resume; the others are passed
            through by item-graph searches, never taken. Batches hold item ids. Giving
            ``dataset=torch.utils.data.Subset(indexed_dataset, ids)`` instead walks ``ids`` and
            yields positions in the Subset, as a ``DataLoader`` over the Subset needs.

    Every new pass (``iter()``) advances the epoch by itself, unless :meth:`set_epoch` or
    :meth:`load_state_dict` set it since the last pass (as with ``DistributedSampler``, call
    ``set_epoch`` before each pass to choose epochs yourself). Loops that stop after ``len()``
    batches without exhausting the iterator (Lightning) therefore still see a new walk each epoch.

    .. warning:: Batches depend on ``(seed, epoch, rank, world_size)``, on the settings above and,
       with a policy, on the policy's choices; not on the number of threads or global random state.
    """

    def __init__(
        self,
        index: GraphIndex | str | Path,
        batch_size: int,
        *,
        graph: str | None = None,
        k: int | None = None,
        mix: float = 0.0,
        restart: float = 0.0,
        weighted: bool = False,
        replacement: bool = False,
        num_batches: int | None = None,
        drop_last: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        dataset: Any = None,
        policy: WalkPolicy | None = None,
        labels: str | None = None,
        items: Any = None,
    ) -> None:
        if isinstance(index, (str, Path)):
            index = GraphIndex.load(index)
        if not isinstance(index, GraphIndex):
            raise TypeError(
                f"index should be a GraphIndex or a path, but got {type(index).__name__}"
            )
        self.index = index
        self.batch_size = check_positive_int("batch_size", batch_size)
        n_index = index.n_items
        # the items walked: all, the ids given, or a torch Subset's (then yielded as positions)
        self._subset, self._yield_positions = _walked_items(index, items, dataset)
        n = n_index if self._subset is None else int(self._subset.size)
        self.n_walked = n
        self._to_pos: npt.NDArray[np.int64] | None = None
        if self._yield_positions:
            assert self._subset is not None
            self._to_pos = np.full(n_index, -1, np.int64)
            self._to_pos[self._subset] = np.arange(n)
        if self.batch_size > n:
            what = "the index" if self._subset is None else "the items walked"
            raise InputError(
                f"batch_size={batch_size} is larger than the {n} items of {what}; "
                f"use batch_size <= {n}"
            )
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0):
            raise InputError(f"k should be a non-negative integer, but got k={k!r}")
        for name, v in (("mix", mix), ("restart", restart)):
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float, np.integer, np.floating))
                or not 0.0 <= float(v) <= 1.0
            ):
                raise InputError(f"{name} should be in [0, 1], but got {name}={v!r}")

        g = index.graph(graph)
        self.graph_name = graph if graph is not None else next(iter(index.graphs))
        self.kind = g.kind
        if g.kind == "item" and k is not None:
            raise InputError(
                f"k={k} applies to cluster graphs (neighbour clusters per community); on the item "
                f"graph {self.graph_name!r} a batch is ROOT's breadth-first neighbourhood, grown "
                "to batch_size: leave k out"
            )
        self.k: int | None = None if g.kind == "item" else (4 if k is None else int(k))
        self.mix, self.restart, self.weighted = float(mix), float(restart), bool(weighted)
        self.replacement, self.drop_last, self.seed = bool(replacement), bool(drop_last), int(seed)
        self.rank, self.world_size = _dist_default(rank, world_size)
        if n < self.world_size:
            raise InputError(f"{n} items cannot be shared by world_size={self.world_size} ranks")
        if policy is not None and not isinstance(policy, WalkPolicy):
            raise TypeError(f"policy should be a WalkPolicy, but got {type(policy).__name__}")
        self.policy = policy
        if replacement:
            nb = (
                math.ceil(n / (self.batch_size * self.world_size))
                if num_batches is None
                else num_batches
            )
            self.num_batches = check_positive_int("num_batches", nb)
            self._sizes = np.full(self.num_batches * self.world_size, self.batch_size, np.int64)
        else:
            if num_batches is not None:
                raise InputError(
                    "num_batches sets the epoch length with replacement=True only; "
                    "without replacement an epoch is one pass over the items"
                )
            self._sizes, self.num_batches = batch_sizes(
                n, self.batch_size, self.world_size, self.drop_last
            )
        self._n_out = mix_counts(self._sizes, self.mix)
        self._offsets = np.zeros(self._sizes.size + 1, np.int64)
        np.cumsum(self._sizes, out=self._offsets[1:])
        self._offsets_list: list[int] = self._offsets.tolist()
        if g.kind == "cluster":
            assert g.level is not None
            self._mem_indptr, self._members = index.members(g.level)
            if self._subset is not None:  # only the walked items are members
                assign = index.levels[g.level].assignment[self._subset]
                order = np.argsort(assign, kind="stable")
                counts = np.bincount(assign, minlength=self._mem_indptr.size - 1)
                self._mem_indptr = np.zeros(counts.size + 1, np.int64)
                np.cumsum(counts, out=self._mem_indptr[1:])
                self._members = self._subset[order].astype(np.int32)
            self._warn_if_diluted(g)
            self._arrays: tuple[npt.NDArray[Any], ...] = (
                g.indptr,
                g.indices,
                g.weights,
                index.levels[g.level].assignment,
            )
        else:
            if g.n_nodes != n_index:
                raise InputError(
                    f"item graph {g.name!r} has {g.n_nodes} nodes but the index has {n_index} items"
                )
            # walk the graph in its stored locality order (neighbours get nearby numbers, so a
            # batch's search reads contiguous memory); nodes map back to items at the output
            w = g.walk
            self._arrays = (
                (g.indptr, g.indices, g.weights) if w is None else (w.indptr, w.indices, w.weights)
            )
            self._order = None if w is None else w.order
            self._position = None if w is None else w.position
        self._graph = g
        if g.kind == "cluster":
            self._order = self._position = None
        self._maxdeg = max(1, int(max_degree(g.indptr)))
        # item graphs: nodes one batch's search may expand (taking, then looking for the next
        # ROOT); beyond it the batch is completed with random unused items (late in an epoch)
        self._budget = max(64, _BUDGET_PER_ITEM * self.batch_size)
        self._crc = _crc(*self._arrays) if any(a.flags.writeable for a in self._arrays) else None
        # what a saved state must match: the stored index's checksums, or (for an index that was
        # never saved) a CRC of the walked arrays, computed once here, not in every state_dict()
        crc = (
            self._crc
            if self._crc is not None
            else (None if index.fingerprint else _crc(*self._arrays))
        )
        self._index_id = index.fingerprint or f"crc:{crc}"
        self.labels = (
            labels if labels is not None else ("label" if "label" in index.labels else None)
        )
        if self.labels is not None and self.labels not in index.labels:
            raise InputError(f"index has no labels {self.labels!r}; it has {sorted(index.labels)}")
        self._epoch = 0
        self._explicit = True  # the next pass uses self._epoch as is (else: the epoch after it)
        self._consumed = False  # the current epoch has yielded (or resumed past) a batch
        self._resume: int = 0
        self._yielded = 0
        self._plan: _Plan | None = None
        self._last_plan: _Plan | None = None  # the plan of the last batch yielded
        # the policy protocol (see graphwalk.walk.policy)
        self._replay: dict[str, Any] | None = None  # a loaded epoch's choices, replayed lazily
        self._inflight: deque[tuple[int, int]] = (
            deque()
        )  # (epoch, global batch) yielded, unreported
        self._inbox: list[tuple[int, int, float]] = []  # rewards arrived, not yet handed over
        self._steps: dict[tuple[int, int], WalkStep] = {}  # decided, reward not yet handed over
        self._skipped_rewards = 0
        self._track = policy is not None  # whether report() tells where the loop is
        self._pass_start = 0

    def _warn_if_diluted(self, g: Graph) -> None:
        """Cluster graphs: say when a batch is larger than a typical community, whose items then
        run dry and random clusters fill the rest of the batch (dilution)."""
        sizes = np.diff(self._mem_indptr)
        live = sizes > 0
        mean = float(sizes[live].mean()) if live.any() else 0.0
        #: expected clusters a batch spans (ROOT's, its neighbours', then random ones)
        self.clusters_per_batch = self.batch_size / mean if mean else float("inf")
        assert self.k is not None
        deg = np.diff(g.indptr)
        community = sizes + np.minimum(self.k, deg) * mean  # items ROOT and k neighbours offer
        typical = float(np.median(community[live])) if live.any() else 0.0
        if typical < self.batch_size:
            warnings.warn(
                f"batches of {self.batch_size} are larger than a typical community of graph "
                f"{g.name!r} (ROOT and k={self.k} neighbours hold about {typical:.0f} items; "
                f"clusters hold {mean:.0f} on average): a batch spans about "
                f"{self.clusters_per_batch:.0f} clusters and random clusters fill what the "
                "community lacks; use a larger k, fewer and larger clusters, or smaller batches",
                RuntimeWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ protocol
    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next pass (as ``DistributedSampler.set_epoch``)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise InputError(f"epoch should be a non-negative integer, but got epoch={epoch!r}")
        self._resume = 0
        self._epoch = int(epoch)
        self._explicit = True

    @property
    def epoch(self) -> int:
        return self._epoch

    def __iter__(self) -> Iterator[list[int]]:
        return _BatchIterator(self)

    def _start_pass(self) -> int:
        """Begin a pass: pick its epoch and the batch it starts from."""
        # torch's DataLoader calls iter() twice when it starts: an iterator that yielded nothing
        # is not a pass
        if not self._explicit and self._consumed:
            self._epoch += 1
        self._explicit = False
        start = self._resume  # a state saved after the last batch resumes as an empty rest
        self._resume = 0
        self._yielded = start
        self._consumed = start > 0
        self._inflight.clear()  # batches of an abandoned pass are never trained
        self._pass_start = start
        return start

    def _batches(self, start: int) -> Iterator[list[int]]:
        if start >= self.num_batches:
            return
        plan = self._get_plan(self._epoch)
        items = plan.items
        W, r = self.world_size, self.rank
        bounds = self._offsets_list  # Python ints: cheaper to index than NumPy scalars
        self._consumed = True
        self._last_plan = plan
        pos = self._to_pos  # a Subset: yield positions in it, not item ids
        if self.policy is None:  # the hot path: the epoch is already walked
            for i in range(start, self.num_batches):
                gb = r + i * W
                self._yielded = i + 1
                if self._track:  # the loop reports the batches it trained (report())
                    self._inflight.append((plan.epoch, gb))
                batch = items[bounds[gb] : bounds[gb + 1]]
                yield (batch if pos is None else pos[batch]).tolist()
            return
        nb = int(self._sizes.size)
        for i in range(start, self.num_batches):
            gb = r + i * W
            if plan.done <= gb:  # decide the whole round: every rank decides every global batch
                self._advance(plan, min(nb, (i + 1) * W))  # at the same step, with the same rewards
            self._yielded = i + 1
            self._inflight.append((plan.epoch, gb))
            batch = items[bounds[gb] : bounds[gb + 1]]
            yield (batch if pos is None else pos[batch]).tolist()

    # ------------------------------------------------------------------ the walk
    def _check_unchanged(self) -> None:
        if self._crc is not None and _crc(*self._arrays) != self._crc:
            raise InputError(
                f"the arrays of graph {self.graph_name!r} changed since this sampler was "
                "created; indexes are immutable: build a new index and a new sampler"
            )

    def _get_plan(self, epoch: int) -> _Plan:
        if self._plan is not None and self._plan.epoch == epoch:
            return self._plan
        self._check_unchanged()
        total = int(self._offsets[-1])
        nb = self._sizes.size
        plan = _Plan(
            epoch,
            np.empty(total, np.int32),
            self._offsets,
            np.full(nb, -1, np.int64),
            np.zeros(nb, np.int64),
            0,
            given=np.full(nb, ROOT_DEFAULT, np.int64),
        )
        state = seed_state(self.seed, epoch, 0x67770A1C)
        g = self._graph
        if self.kind == "cluster":
            K = self._mem_indptr.size - 1
            sizes = np.diff(self._mem_indptr)
            alive = np.flatnonzero(sizes > 0).astype(np.int64)
            apos = np.zeros(K, np.int64)
            apos[alive] = np.arange(alive.size)
            dead = np.flatnonzero(sizes == 0)
            full_alive = np.concatenate([alive, dead])
            apos[dead] = np.arange(alive.size, K)
            plan.walker = dict(
                seg=self._members.astype(np.int32, copy=True),
                taken=np.zeros(K, np.int64),
                alive=full_alive,
                apos=apos,
                n_alive=int(alive.size),
                stamp=np.zeros(K, np.int64),
                comm=np.zeros(K + 1, np.int64),
                state=state,
                root=-1,
                o=0,
            )
        else:
            n = self.index.n_items  # nodes of the graph (the walk skips items not walked)
            mean_deg = max(1.0, g.n_edges / max(1, n))
            cap = int(min(n + 1, self._budget * max(16.0, 2.0 * mean_deg) + self._maxdeg + 1))
            d = self._maxdeg
            plan.walker = dict(
                flags=np.zeros(n, np.uint8),  # bit 7: used this epoch; bit 6: reached by the batch
                blocks=_block_counts(n),  # unused items per block of 2**BLOCK_SHIFT nodes
                order=_epoch_order(n, self.seed, epoch),
                queue=np.empty(cap, np.int32),
                cand=np.zeros(d, np.int64),
                cand_count=np.zeros(d + 1, np.int64),
                state=state,
                root=-1,
                o=0,
            )
            plan.fill = np.zeros(nb, np.int64)
            if self._subset is not None:  # items not walked: used from the start, passed through
                nodes = self._subset if self._position is None else self._position[self._subset]
                plan.walker["flags"][:] = 0x80
                plan.walker["flags"][nodes] = 0
                plan.walker["blocks"] = np.bincount(
                    nodes >> BLOCK_SHIFT, minlength=plan.walker["blocks"].size
                ).astype(np.uint16)
        self._plan = plan
        replay = (
            self._replay if self._replay is not None and self._replay["epoch"] == epoch else None
        )
        self._replay = None
        if self.policy is None:
            self._run(plan, 0, nb)
            return plan
        self._hand_over(epoch, 0)  # rewards of earlier epochs that arrived after their last round
        self._steps = {key: s for key, s in self._steps.items() if key[0] >= epoch - 1}
        if replay is None or not replay["started"]:
            self.policy.reset(epoch, self.seed)
        if replay is not None:  # decisions already made this epoch: replay, never ask again
            for b, choice in enumerate(replay["choices"]):
                self._decide(plan, b, forced=int(choice))
            keep = {int(gb) for gb in replay["pending"]}
            for b in range(plan.done):
                if b not in keep:
                    self._steps.pop((epoch, b), None)
        return plan

    def _advance(self, plan: _Plan, upto: int) -> None:
        """Decide and draw global batches ``[plan.done, upto)`` (policy path)."""
        for b in range(plan.done, upto):
            self._decide(plan, b)

    def _items(self, nodes: Any) -> npt.NDArray[np.int64]:
        """Item ids of walked nodes (item graphs walk a renumbered copy)."""
        nodes = np.asarray(nodes, np.int64)
        return nodes if self._order is None else self._order[nodes].astype(np.int64)

    def _item(self, node: int) -> int:
        return node if self._order is None or node < 0 else int(self._order[node])

    def _candidates(
        self, plan: _Plan, b: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        g = self._graph
        prev = int(plan.roots[b - 1]) if b > 0 else -1
        if prev < 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        w = plan.walker
        a = int(g.indptr[prev])
        if self.kind == "cluster":
            nbrs = g.indices[a : int(g.indptr[prev + 1])].astype(np.int64)
            rem = np.diff(self._mem_indptr)[nbrs] - (0 if self.replacement else w["taken"][nbrs])
            keep = rem > 0
            return nbrs[keep], rem[keep].astype(np.int64)
        cnt = int(w["cand_count"][0])
        pos = w["cand"][:cnt]
        nodes = self._arrays[1][int(self._arrays[0][prev]) + pos]
        return self._items(nodes), w["cand_count"][1 : 1 + cnt].copy()

    def _alive_fn(self, plan: _Plan) -> Any:
        w = plan.walker
        if self.kind == "cluster":
            if self.replacement:
                return lambda: np.flatnonzero(np.diff(self._mem_indptr) > 0).astype(np.int64)
            return lambda: np.sort(w["alive"][: w["n_alive"]])
        if self.replacement:
            if self._subset is not None:
                return lambda: np.sort(self._subset)
            return lambda: np.arange(self.index.n_items, dtype=np.int64)
        return lambda: np.sort(self._items(np.flatnonzero(w["flags"] < 0x80)))

    def _check_choice(self, plan: _Plan, b: int, choice: Any) -> int:
        if isinstance(choice, bool) or not isinstance(choice, (int, np.integer)):
            raise TypeError(
                f"{type(self.policy).__name__}.select() should return a node id (int) or "
                f"TELEPORT (-1), but returned {choice!r} for batch {b}"
            )
        c = int(choice)
        if c == TELEPORT:
            return c
        n_nodes = self._graph.n_nodes
        if not 0 <= c < n_nodes:
            raise InputError(
                f"{type(self.policy).__name__} chose node {c} for batch {b} of epoch "
                f"{plan.epoch}, outside the graph's {n_nodes} nodes; return a candidate, a node "
                "of step.alive(), or TELEPORT (-1)"
            )
        if self.kind == "cluster":
            size = int(self._mem_indptr[c + 1] - self._mem_indptr[c])
            left = size - (0 if self.replacement else int(plan.walker["taken"][c]))
            if left <= 0:
                raise InputError(
                    f"{type(self.policy).__name__} chose cluster {c} for batch {b} of epoch "
                    f"{plan.epoch}, which has no items left; return a candidate, a node of "
                    "step.alive(), or TELEPORT (-1)"
                )
        return c

    def _decide(self, plan: _Plan, b: int, forced: int | None = None) -> None:
        """Ask the policy for batch ``b``'s ROOT (or replay ``forced``), then draw the batch."""
        policy = self.policy
        assert policy is not None
        if forced is None and b % self.world_size == 0:
            self._hand_over(plan.epoch, b)
        cands, rem = self._candidates(plan, b)
        step = WalkStep(
            plan.epoch,
            b,
            self._item(int(plan.roots[b - 1])) if b > 0 else -1,
            cands,
            rem,
        )
        if forced is None:
            step._alive = self._alive_fn(plan)
            try:
                choice = self._check_choice(plan, b, policy.select(step))
            finally:
                step._alive = None
        else:
            choice = forced
        step.choice = choice
        if choice == TELEPORT:
            plan.given[b] = ROOT_TELEPORT
        else:
            plan.given[b] = choice if self._position is None else int(self._position[choice])
        ncomm = self._run(plan, b, b + 1)
        step.root = self._item(int(plan.roots[b]))
        step.teleported = choice == TELEPORT
        if self.kind == "cluster":
            step.community = plan.walker["comm"][:ncomm].copy()
        else:  # the items the search took (the batch without its mix share)
            o = int(self._offsets[b])
            step.community = plan.items[o : o + int(self._sizes[b] - self._n_out[b])].astype(
                np.int64
            )
        step.community_size = int(plan.community[b])
        step.size = int(self._sizes[b])
        plan.choices.append(choice)
        self._steps[(plan.epoch, b)] = step
        if forced is None:
            policy.observe(step)

    def _hand_over(self, epoch: int, b: int) -> None:
        """Give the policy the rewards that arrived for batches decided before global batch ``b``
        of ``epoch``, in batch order (called at the start of every round of ``world_size``)."""
        if not self._inbox:
            return
        ready = sorted(r for r in self._inbox if (r[0], r[1]) < (epoch, b))
        if not ready:
            return
        self._inbox = [r for r in self._inbox if (r[0], r[1]) >= (epoch, b)]
        assert self.policy is not None
        for e, gb, reward in ready:
            step = self._steps.pop((e, gb), None)
            if step is None:  # only a state from an older epoch can lack it
                warnings.warn(
                    f"reward for batch {gb} of epoch {e} dropped: its step is no longer held "
                    "(the sampler resumed from a state taken in a later epoch)",
                    RuntimeWarning,
                    stacklevel=3,
                )
                continue
            self.policy.learn(step, reward)

    def _run(self, plan: _Plan, b0: int, b1: int) -> int:
        w = plan.walker
        g = self._graph
        ncomm = 0
        if self.kind == "cluster":
            root, w["n_alive"], w["o"], ncomm = cluster_batches(
                self._mem_indptr,
                w["seg"],
                w["taken"],
                w["alive"],
                w["apos"],
                w["n_alive"],
                w["stamp"],
                w["state"],
                g.indptr,
                g.indices,
                g.weights,
                self._sizes,
                b0,
                b1,
                w["root"],
                plan.given,
                self.k,
                self._n_out,
                self.restart,
                self.weighted,
                not self.replacement,
                plan.items,
                w["o"],
                plan.roots,
                plan.community,
                w["comm"],
            )
        else:
            assert plan.fill is not None
            o0 = w["o"]
            root, w["o"] = item_batches(
                self._arrays[0],
                self._arrays[1],
                self._arrays[2],
                w["flags"],
                w["blocks"],
                w["order"],
                w["queue"],
                w["state"],
                self._sizes,
                self._n_out,
                b0,
                b1,
                w["root"],
                plan.given,
                self.restart,
                self.weighted,
                self._budget,
                self._order is not None,
                not self.replacement,
                plan.items,
                w["o"],
                plan.roots,
                plan.community,
                plan.fill,
                w["cand"],
                w["cand_count"],
            )
            if self._order is not None:  # the walk's nodes back to items, in chunks (memory)
                for c in range(o0, w["o"], 1 << 16):
                    part = plan.items[c : min(w["o"], c + (1 << 16))]
                    part[:] = self._order[part]
        w["root"] = int(root)
        plan.done = b1
        return int(ncomm)

    # ------------------------------------------------------------------ rewards
    def report(self, reward: float | None = None, *, batch: int | None = None) -> BatchInfo:
        """Mark a batch trained and credit ``reward`` to it (the policy's reward).

        Call it once per batch, after the training step, in the order the loader delivers
        batches: by default it credits the oldest batch this rank yielded and has not reported
        (a ``DataLoader`` delivers batches in the order the sampler yields them, whatever its
        workers); ``batch`` names this rank's batch of the current epoch instead. ``reward=None``
        marks the batch trained without a reward. The sampler runs ahead of training (by
        ``num_workers * prefetch_factor`` batches with workers), so rewards reach the policy
        late; each is handed to :meth:`WalkPolicy.learn` with the very step it rewards.

        With a policy under ``torch.distributed`` (``world_size > 1``) this is a collective:
        every rank calls it once per step, the rewards of all ranks are gathered, and every
        rank's policy learns from all of them, so the ranks keep making the same choices.

        The reports also say where the loop is: once a sampler has been reported to (always with
        a policy), :meth:`state_dict` resumes after the last reported batch, not after the last
        batch yielded: a plain ``DataLoader`` with workers then resumes exactly too. Without a
        policy call it without a reward. Non-finite rewards are skipped (counted, one warning).

        Returns:
            The :class:`BatchInfo` of the credited batch, with ``delay`` set.
        """
        if self.policy is None and reward is not None:
            raise InputError(
                f"report({reward!r}): this sampler has no policy to learn from a reward; pass "
                "policy=... (see graphwalk.walk.policy), or call report() without a reward to mark "
                "the batch trained"
            )
        if isinstance(reward, (str, bytes)):
            raise TypeError(f"reward should be a number or None, but got {reward!r}")
        if not self._track:  # the first report: every batch of this pass so far is in flight
            self._track = True
            plan = self._last_plan
            if plan is not None and plan.epoch == self._epoch:
                self._inflight.extend(
                    (plan.epoch, self.rank + i * self.world_size)
                    for i in range(self._pass_start, self._yielded)
                )
        if reward is not None and (
            isinstance(reward, bool) or not isinstance(reward, (int, float, np.number))
        ):
            try:
                reward = float(reward)  # a 0-d tensor or array
            except (TypeError, ValueError):
                raise TypeError(
                    f"reward should be a number or None, but got {type(reward).__name__}"
                ) from None
        if batch is None:
            if not self._inflight:
                raise InputError(
                    "report(): no batch is waiting for a reward (every batch yielded so far was "
                    "reported); call report() once per batch, after training on it"
                )
            epoch, gb = self._inflight.popleft()
        else:
            key = (self._epoch, self.rank + int(batch) * self.world_size)
            if key not in self._inflight:
                raise InputError(
                    f"report(batch={batch}): batch {batch} of epoch {self._epoch} was not yielded "
                    "by this pass or was reported already"
                )
            self._inflight.remove(key)
            epoch, gb = key
        delay = sum(1 for e, g in self._inflight if (e, g) > (epoch, gb))
        rows: list[tuple[int, int, float | None]] = [(epoch, gb, reward)]
        if self.world_size > 1 and self.policy is not None:
            rows = _gather_rewards(epoch, gb, reward, self.world_size)
        for e, g, r in rows:
            if r is None:
                continue
            if not math.isfinite(r):
                self._skipped_rewards += 1
                if self._skipped_rewards == 1:
                    warnings.warn(
                        f"reward {r} for batch {g} of epoch {e} is not finite: skipped (counted "
                        "in sampler.skipped_rewards; further ones are skipped silently)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                continue
            self._inbox.append((int(e), int(g), float(r)))
        info = self._info(epoch, gb)
        info.delay = delay
        return info

    def flush_rewards(self) -> None:
        """Hand every reward that has arrived to the policy now (normally they are handed over
        at the start of each round, so the last batches' rewards wait for the next epoch's first
        decision). Call it at the end of training, before saving the policy; under
        ``torch.distributed`` on every rank at the same point."""
        if self.policy is not None:
            self._hand_over(sys.maxsize, 0)

    @property
    def skipped_rewards(self) -> int:
        """Non-finite rewards skipped by :meth:`report`."""
        return self._skipped_rewards

    # ------------------------------------------------------------------ logging
    def batch_info(self, i: int | None = None) -> BatchInfo:
        """Where a batch came from: this rank's batch ``i`` of the epoch being (or last) walked,
        by default the batch yielded last (also after its epoch ended).

        A ``DataLoader`` with workers runs the sampler ahead of training, so "the batch yielded
        last" is then not the batch being trained: pass the loop's step ``i`` (as counted by
        ``enumerate(loader)`` within the epoch), or use the :class:`BatchInfo` that
        :meth:`report` returns."""
        plan = self._last_plan
        if plan is None or (i is None and self._yielded == 0):
            raise InputError("no batch has been yielded yet: iterate the sampler first")
        i = self._yielded - 1 if i is None else int(i)
        if not 0 <= i < self.num_batches:
            raise InputError(f"batch {i} is outside this rank's {self.num_batches} batches")
        return self._info(plan.epoch, self.rank + i * self.world_size)

    def _info(self, epoch: int, gb: int) -> BatchInfo:
        plan = self._last_plan
        if plan is None or plan.epoch != epoch or gb >= plan.done:
            raise InputError(f"batch {gb // self.world_size} of epoch {epoch} has not been walked")
        items = plan.items[self._offsets[gb] : self._offsets[gb + 1]]
        source = None if self.labels is None else (self.index.labels[self.labels], items)
        choice = plan.choices[gb] if gb < len(plan.choices) else None
        return BatchInfo(
            gb // self.world_size,
            self._item(int(plan.roots[gb])),
            int(plan.community[gb]),
            int(items.size),
            _source=source,
            epoch=epoch,
            global_batch=gb,
            teleported=choice == TELEPORT,
            random_fill=0 if plan.fill is None else int(plan.fill[gb]),
        )

    # ------------------------------------------------------------------ state
    def _settings(self) -> dict[str, Any]:
        return {
            "graph": self.graph_name,
            "batch_size": self.batch_size,
            "k": self.k,
            "mix": self.mix,
            "restart": self.restart,
            "weighted": self.weighted,
            "replacement": self.replacement,
            "num_batches": self.num_batches,
            "drop_last": self.drop_last,
            "seed": self.seed,
            "world_size": self.world_size,
            "n_items": self.index.n_items,
            "items": None
            if self._subset is None
            else f"crc:{_crc(self._subset)}:{self._subset.size}",
            "index": self._index_id,
            "policy": None if self.policy is None else type(self.policy).__qualname__,
        }

    def state_dict(self) -> dict[str, Any]:
        """Small, picklable state: the epoch and how many of its batches this rank is past.

        Without a policy that is the batches yielded. With a policy it is the batches the loop
        has :meth:`report`-ed (a loader with workers has yielded more), and the state also holds
        the epoch's choices so far (replayed on resume, the policy is not asked again), the
        rewards not yet handed to the policy, and a copy of the policy's own state."""
        return self._state(live=True)

    def _state(self, live: bool) -> dict[str, Any]:
        position = self._yielded
        if live and (self.policy is not None or self._track):
            position -= sum(1 for e, _ in self._inflight if e == self._epoch)
        state: dict[str, Any] = {
            "version": _STATE_VERSION,
            "epoch": self._epoch,
            "yielded": position,
            "settings": self._settings(),
        }
        if self.policy is not None:
            plan = (
                self._plan if self._plan is not None and self._plan.epoch == self._epoch else None
            )
            if plan is not None:
                walk = {
                    "choices": list(plan.choices),
                    "started": True,
                    "pending": sorted(b for e, b in self._steps if e == self._epoch),
                }
            elif self._replay is not None and self._replay["epoch"] == self._epoch:
                walk = {k: self._replay[k] for k in ("choices", "started", "pending")}
            else:
                walk = {"choices": [], "started": False, "pending": []}
            walk["inbox"] = [list(r) for r in self._inbox]
            state["walk"] = copy.deepcopy(walk)
            state["policy"] = copy.deepcopy(self.policy.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume where :meth:`state_dict` was taken: the next iteration yields the rest of that epoch.

        With a policy, a state whose choices are a prefix of the choices this sampler already
        holds for that epoch (e.g. the older copy a ``StatefulDataLoader`` with workers took when
        it prefetched the batch) only moves the position: the longer record of choices and the
        policy state that goes with it are kept."""
        if not isinstance(state, dict) or state.get("version") not in (1, _STATE_VERSION):
            raise InputError(
                f"not a GraphWalkBatchSampler state (version {_STATE_VERSION} expected)"
            )
        mine = self._settings()
        theirs = dict(state.get("settings", {}))
        if state["version"] == 1:  # before item graphs ignored k and policies were recorded
            theirs.setdefault("policy", None)
            if self.kind == "item":
                theirs["k"] = None
        diff = [key for key in mine if theirs.get(key) != mine[key]]
        if diff:
            key = diff[0]
            raise InputError(
                f"the state was saved with {key}={theirs.get(key)!r} but this sampler has "
                f"{key}={mine[key]!r}; resume with the same index and settings"
            )
        epoch, position = state.get("epoch"), state.get("yielded")
        for name, v, hi in (("epoch", epoch, None), ("yielded", position, self.num_batches)):
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, np.integer))
                or v < 0
                or (hi is not None and v > hi)
            ):
                rng = "a non-negative integer" if hi is None else f"an integer in [0, {hi}]"
                raise InputError(f"state field {name!r} should be {rng}, but is {v!r}")
        assert isinstance(epoch, (int, np.integer)) and isinstance(position, (int, np.integer))
        if self.policy is not None:
            walk = state.get("walk", {"choices": [], "started": False, "pending": [], "inbox": []})
            choices = [int(c) for c in walk["choices"]]
            if not all(c == TELEPORT or 0 <= c < self._graph.n_nodes for c in choices) or len(
                choices
            ) > int(self._sizes.size):
                raise InputError("state field 'walk' holds choices outside the graph")
            held = self._held_choices(int(epoch))
            if not (
                held is not None and len(held) >= len(choices) and held[: len(choices)] == choices
            ):
                if "policy" in state:
                    self.policy.load_state_dict(copy.deepcopy(state["policy"]))
                self._replay = {
                    "epoch": int(epoch),
                    "choices": choices,
                    "started": bool(walk["started"]),
                    "pending": [int(b) for b in walk["pending"]],
                }
                self._inbox = [(int(e), int(g), float(r)) for e, g, r in walk.get("inbox", [])]
                self._steps = {}
                self._plan = None
        self._epoch = int(epoch)
        self._explicit = True
        self._resume = int(position)
        self._yielded = self._resume

    def _held_choices(self, epoch: int) -> list[int] | None:
        if self._plan is not None and self._plan.epoch == epoch:
            return self._plan.choices
        if self._replay is not None and self._replay["epoch"] == epoch:
            return list(self._replay["choices"])
        return None

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_plan"] = None
        d["_last_plan"] = None
        return d


def _gather_rewards(
    epoch: int, gb: int, reward: float | None, world_size: int
) -> list[tuple[int, int, float | None]]:
    """Every rank's ``(epoch, global batch, reward)`` of this step, on every rank."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise InputError(
            f"world_size={world_size} but torch.distributed is not initialised: report() "
            "shares rewards across ranks with a collective; call init_process_group first "
            "(or use world_size=1)"
        )
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    row = torch.tensor(
        [float(epoch), float(gb), 0.0 if reward is None else float(reward), reward is not None],
        dtype=torch.float64,
        device=device,
    )
    out = [torch.empty_like(row) for _ in range(world_size)]
    dist.all_gather(out, row)
    rows = []
    for t in out:
        e, g, r, has = t.tolist()
        rows.append((int(e), int(g), float(r) if has else None))
    return rows


class _BatchIterator(Iterator[list[int]]):
    """The iterator of one pass; stateful for torchdata's ``StatefulDataLoader``."""

    def __init__(self, sampler: GraphWalkBatchSampler) -> None:
        self.sampler = sampler
        # the pass starts at the first batch asked for: torch's DataLoader with workers calls
        # iter() twice and keeps the second iterator, and the first must not use up a resume
        self._gen: Iterator[list[int]] | None = None

    def __iter__(self) -> _BatchIterator:
        return self

    def __next__(self) -> list[int]:
        if self._gen is None:
            self._gen = self.sampler._batches(self.sampler._start_pass())
        return next(self._gen)

    def state_dict(self) -> dict[str, Any]:
        # a StatefulDataLoader snapshots its sampler when it asks for a batch, and resumes
        # after the batch asked for: the position is the batches yielded, not the ones reported
        return self.sampler._state(live=False)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
        self.__init__(self.sampler)  # type: ignore[misc]


class GraphWalkSampler(Sampler[int]):
    """The walk's items one at a time, for ``DataLoader(dataset, sampler=..., batch_size=...)``.

    Takes the same arguments as :class:`GraphWalkBatchSampler` and yields its batches' items in
    order (with the DataLoader's batch_size equal to this batch_size, the batches coincide).
    """

    def __init__(self, index: GraphIndex | str | Path, batch_size: int, **kwargs: Any) -> None:
        self.batches = GraphWalkBatchSampler(index, batch_size, **kwargs)

    def __len__(self) -> int:
        b = self.batches
        gbs = b.rank + np.arange(b.num_batches) * b.world_size
        return int(b._sizes[gbs].sum())

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches:
            yield from batch

    def set_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def report(self, reward: float | None = None, *, batch: int | None = None) -> BatchInfo:
        """:meth:`GraphWalkBatchSampler.report`, once per batch of ``batch_size`` items."""
        return self.batches.report(reward, batch=batch)

    def batch_info(self, i: int | None = None) -> BatchInfo:
        """:meth:`GraphWalkBatchSampler.batch_info`."""
        return self.batches.batch_info(i)

    def state_dict(self) -> dict[str, Any]:
        return self.batches.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches.load_state_dict(state)
