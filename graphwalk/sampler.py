"""`GraphWalkBatchSampler` and `GraphWalkSampler`: walk an index, yield training batches.

Each step of the walk picks a ROOT node, forms its batch community (ROOT and ``k`` sampled
neighbours for cluster graphs; ROOT's neighbourhood grown breadth-first for item graphs) and
draws a batch from it; then ROOT moves to a neighbour. By default an epoch visits every item
exactly once (without replacement); ``replacement=True`` draws every batch from full communities
for a user-set number of batches.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler

from graphwalk.errors import InputError
from graphwalk.index import GraphIndex
from graphwalk.kernels import cluster_batches, item_batches, max_degree, seed_state
from graphwalk.policy import WalkPolicy
from graphwalk.validation import check_positive_int

__all__ = ["BatchInfo", "GraphWalkBatchSampler", "GraphWalkSampler", "batch_sizes"]

_STATE_VERSION = 1


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
    """What a batch came from: for logging, never needed by the plain path."""

    batch: int
    root: int
    community_size: int
    size: int
    homophily: float | None = None


@dataclass
class _Plan:
    epoch: int
    items: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]
    roots: npt.NDArray[np.int64]
    community: npt.NDArray[np.int64]
    done: int  # global batches computed so far (online policies compute lazily)
    walker: Any = None


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
        k: neighbours of ROOT sampled into each community (cluster graphs). Nodes with fewer
            neighbours that still have items contribute all of them.
        mix: share of each batch drawn from outside the community (0 = pure homophily,
            1 = a random batch), against single-community batches that can zero the gradient of
            contrastive losses or skew BatchNorm statistics.
        restart: probability of teleporting to a random node instead of moving to a neighbour.
        weighted: sample neighbours and moves by edge weight instead of uniformly.
        replacement: draw each batch from full communities (items may repeat across batches);
            an epoch is then ``num_batches`` batches per rank.
        num_batches: batches per rank per epoch in ``replacement`` mode (default: as many as
            an epoch without replacement).
        drop_last: drop the last, incomplete round of batches (see :func:`batch_sizes`).
        seed: the walk is a function of ``(seed, epoch)`` only: every rank computes the same global
            walk and takes every ``world_size``-th batch from it.
        rank, world_size: default from ``torch.distributed`` when initialised, else 0 and 1.
        dataset: if given, its length must equal the index's number of items.
        policy: an online :class:`~graphwalk.policy.WalkPolicy` choosing each ROOT (default: the
            built-in static walk, computed for a whole epoch at once by a Numba kernel).
        labels: label set used for :attr:`BatchInfo.homophily` (default: ``"label"`` if present).

    Every new pass (``iter()``) advances the epoch by itself, unless :meth:`set_epoch` or
    :meth:`load_state_dict` set it since the last pass (as with ``DistributedSampler``, call
    ``set_epoch`` before each pass to choose epochs yourself). Loops that stop after ``len()``
    batches without exhausting the iterator (Lightning) therefore still see a new walk each epoch.

    .. warning:: Batches depend on ``(seed, epoch, rank, world_size)`` and on the settings above,
       not on the number of threads or on global random state.
    """

    def __init__(
        self,
        index: GraphIndex | str | Path,
        batch_size: int,
        *,
        graph: str | None = None,
        k: int = 4,
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
    ) -> None:
        if isinstance(index, (str, Path)):
            index = GraphIndex.load(index)
        if not isinstance(index, GraphIndex):
            raise TypeError(
                f"index should be a GraphIndex or a path, but got {type(index).__name__}"
            )
        self.index = index
        self.batch_size = check_positive_int("batch_size", batch_size)
        n = index.n_items
        if self.batch_size > n:
            raise InputError(
                f"batch_size={batch_size} is larger than the {n} items of the index; "
                f"use batch_size <= {n}"
            )
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise InputError(f"k should be a non-negative integer, but got k={k!r}")
        for name, v in (("mix", mix), ("restart", restart)):
            if not (isinstance(v, (int, float)) and 0.0 <= float(v) <= 1.0):
                raise InputError(f"{name} should be in [0, 1], but got {name}={v!r}")
        if dataset is not None and len(dataset) != n:
            raise InputError(
                f"the dataset has {len(dataset)} items but the index was built from {n}; "
                "rebuild the index from this dataset (or pass the matching one)"
            )
        g = index.graph(graph)
        self.graph_name = graph if graph is not None else next(iter(index.graphs))
        self.kind = g.kind
        self.k, self.mix, self.restart, self.weighted = (
            int(k),
            float(mix),
            float(restart),
            bool(weighted),
        )
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
        self._offsets = np.zeros(self._sizes.size + 1, np.int64)
        np.cumsum(self._sizes, out=self._offsets[1:])
        self._offsets_list: list[int] = self._offsets.tolist()
        if g.kind == "cluster":
            assert g.level is not None
            self._mem_indptr, self._members = index.members(g.level)
            self._arrays: tuple[npt.NDArray[Any], ...] = (
                g.indptr,
                g.indices,
                g.weights,
                index.levels[g.level].assignment,
            )
        else:
            if g.n_nodes != n:
                raise InputError(
                    f"item graph {g.name!r} has {g.n_nodes} nodes but the index has {n} items"
                )
            self._arrays = (g.indptr, g.indices)
        self._graph = g
        # item graphs: nodes a batch may expand before it fills up from random unused items; an
        # unused neighbourhood fills a batch after about batch_size / degree expansions
        mean_deg = max(1.0, g.n_edges / max(1, g.n_nodes))
        self._budget = max(16, int(2 * self.batch_size / mean_deg))
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

    # ------------------------------------------------------------------ protocol
    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next pass (as ``DistributedSampler.set_epoch``)."""
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
        if self.policy is None:  # the hot path: the epoch is already walked
            for i in range(start, self.num_batches):
                gb = r + i * W
                self._yielded = i + 1
                yield items[bounds[gb] : bounds[gb + 1]].tolist()
            return
        for i in range(start, self.num_batches):
            gb = r + i * W
            if plan.done <= gb:
                self._advance(plan, gb + 1)
            self._yielded = i + 1
            yield items[bounds[gb] : bounds[gb + 1]].tolist()

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
                state=state,
                root=-1,
                o=0,
            )
        else:
            n = self.index.n_items
            plan.walker = dict(
                flags=np.zeros(n, np.uint8),  # used this epoch (bit 7), batch mark (bits 0-6)
                order=_epoch_order(n, self.seed, epoch),
                state=state,
                root=-1,
                o=0,
                queue=np.empty(
                    max(64, 8 * int(self._sizes.max(initial=1))) + int(max_degree(g.indptr)),
                    np.int32,
                ),
            )
        if self.policy is not None:
            self.policy.reset(epoch, self.seed)
        else:
            self._advance(plan, nb)
        self._plan = plan
        return plan

    def _advance(self, plan: _Plan, upto: int) -> None:
        """Compute global batches ``[plan.done, upto)``."""
        given = np.full(self._sizes.size, -1, np.int64)
        if self.policy is None:
            self._run(plan, plan.done, upto, given)
            return
        for b in range(plan.done, upto):
            given[b] = self._policy_root(plan, b)
            self._run(plan, b, b + 1, given)

    def _run(self, plan: _Plan, b0: int, b1: int, given: npt.NDArray[np.int64]) -> None:
        w = plan.walker
        g = self._graph
        if self.kind == "cluster":
            root, w["n_alive"], w["o"] = cluster_batches(
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
                given,
                self.k,
                self.mix,
                self.restart,
                self.weighted,
                not self.replacement,
                plan.items,
                w["o"],
                plan.roots,
                plan.community,
            )
        else:
            root, w["o"] = item_batches(
                g.indptr,
                g.indices,
                w["flags"],
                w["order"],
                w["queue"],
                w["state"],
                self._sizes,
                b0,
                b1,
                w["root"],
                given,
                self.mix,
                self.restart,
                self._budget,
                not self.replacement,
                plan.items,
                w["o"],
                plan.roots,
                plan.community,
            )
        w["root"] = int(root)
        plan.done = b1

    def _policy_root(self, plan: _Plan, b: int) -> int:
        assert self.policy is not None
        w = plan.walker
        g = self._graph
        prev = int(plan.roots[b - 1]) if b > 0 else -1
        if prev >= 0:
            nbrs = g.indices[g.indptr[prev] : g.indptr[prev + 1]].astype(np.int64)
        else:
            nbrs = np.empty(0, np.int64)
        if self.kind == "cluster":
            rem = np.diff(self._mem_indptr)[nbrs] - (0 if self.replacement else w["taken"][nbrs])
        else:
            rem = (w["flags"][nbrs] < 0x80).astype(np.int64)  # bit 7 clear: unused
        keep = rem > 0
        choice = int(self.policy.choose(b, prev, nbrs[keep], rem[keep]))
        if choice >= g.n_nodes or choice < -1:
            raise InputError(f"policy chose node {choice}, outside the graph's {g.n_nodes} nodes")
        return choice

    # ------------------------------------------------------------------ logging
    def batch_info(self, i: int | None = None) -> BatchInfo:
        """Where a batch came from: this rank's batch ``i`` of the epoch being (or last) walked,
        by default the batch yielded last (also after its epoch ended)."""
        plan = self._last_plan
        if plan is None or (i is None and self._yielded == 0):
            raise InputError("no batch has been yielded yet: iterate the sampler first")
        i = self._yielded - 1 if i is None else int(i)
        if not 0 <= i < self.num_batches:
            raise InputError(f"batch {i} is outside this rank's {self.num_batches} batches")
        gb = self.rank + i * self.world_size
        if gb >= plan.done:
            raise InputError(f"batch {i} has not been walked yet")
        items = plan.items[self._offsets[gb] : self._offsets[gb + 1]]
        hom = None
        if self.labels is not None and items.size > 1:
            counts = np.unique(self.index.labels[self.labels][items], return_counts=True)[1]
            hom = float((counts * (counts - 1)).sum() / (items.size * (items.size - 1)))
        return BatchInfo(i, int(plan.roots[gb]), int(plan.community[gb]), int(items.size), hom)

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
            "index": self._index_id,
        }

    def state_dict(self) -> dict[str, Any]:
        """Small, picklable state: the epoch and how many batches of it this rank has yielded."""
        state = {
            "version": _STATE_VERSION,
            "epoch": self._epoch,
            "yielded": self._yielded,
            "settings": self._settings(),
        }
        if self.policy is not None:
            state["policy"] = self.policy.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume where :meth:`state_dict` was taken: the next iteration yields the rest of that epoch."""
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise InputError(
                f"not a GraphWalkBatchSampler state (version {_STATE_VERSION} expected)"
            )
        mine = self._settings()
        theirs = state.get("settings", {})
        diff = [key for key in mine if theirs.get(key) != mine[key]]
        if diff:
            key = diff[0]
            raise InputError(
                f"the state was saved with {key}={theirs.get(key)!r} but this sampler has "
                f"{key}={mine[key]!r}; resume with the same index and settings"
            )
        self._epoch = int(state["epoch"])
        self._explicit = True
        self._resume = int(state["yielded"])
        self._yielded = self._resume
        if self.policy is not None and "policy" in state:
            self.policy.load_state_dict(state["policy"])

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_plan"] = None
        d["_last_plan"] = None
        return d


class _BatchIterator(Iterator[list[int]]):
    """The iterator of one pass; stateful for torchdata's ``StatefulDataLoader``."""

    def __init__(self, sampler: GraphWalkBatchSampler) -> None:
        self.sampler = sampler
        self._gen = sampler._batches(sampler._start_pass())

    def __iter__(self) -> _BatchIterator:
        return self

    def __next__(self) -> list[int]:
        return next(self._gen)

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

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

    def state_dict(self) -> dict[str, Any]:
        return self.batches.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches.load_state_dict(state)
