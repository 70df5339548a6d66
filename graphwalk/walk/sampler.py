"""`GraphWalkBatchSampler` and `GraphWalkSampler`: walk an index, yield training batches.

Each step of the walk picks a ROOT node, forms its batch community (ROOT and ``k`` sampled
neighbours for cluster graphs; ROOT's neighbourhood grown breadth-first for item graphs) and
draws a batch from it; then ROOT moves to a neighbour. By default an epoch visits every item
exactly once (without replacement); ``replacement=True`` draws every batch from full communities
for a user-set number of batches.

The sampler is a facade over parts with one duty each: the epoch layout (:mod:`.epoch`), one
walker per graph kind (:mod:`.cluster_walker`, :mod:`.item_walker`), the online path of a policy
(:mod:`.online`), the rewards in flight (:mod:`.inflight`) and the versioned state (:mod:`.state`).
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler

from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.validation import check_bool, check_int, check_positive_int, check_real
from graphwalk.walk.cluster_walker import ClusterWalker
from graphwalk.walk.epoch import EpochLayout, batch_sizes, dist_default, walked_items
from graphwalk.walk.inflight import RewardLedger, check_reward, gather_rewards
from graphwalk.walk.info import BatchInfo
from graphwalk.walk.item_walker import ItemWalker, check_item_graph
from graphwalk.walk.online import PolicyDriver
from graphwalk.walk.policy import TELEPORT, WalkPolicy, check_policy
from graphwalk.walk.state import (
    STATE_VERSION,
    check_position,
    check_settings,
    read_walk,
    walk_record,
)
from graphwalk.walk.walker import EpochPlan, Walker, crc

__all__ = ["BatchInfo", "GraphWalkBatchSampler", "GraphWalkSampler", "batch_sizes"]


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
        seed: an integer in ``[0, 2**32)``; the walk is a function of ``(seed, epoch)`` only:
            every rank computes the same global walk and takes every ``world_size``-th batch
            from it.
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
        self._subset, yield_positions = walked_items(index, items, dataset)
        n = n_index if self._subset is None else int(self._subset.size)
        self.n_walked = n
        self._to_pos: npt.NDArray[np.int64] | None = None
        if yield_positions:
            assert self._subset is not None
            self._to_pos = np.full(n_index, -1, np.int64)
            self._to_pos[self._subset] = np.arange(n)
        if self.batch_size > n:
            what = "the index" if self._subset is None else "the items walked"
            raise InputError(
                f"batch_size={batch_size} is larger than the {n} items of {what}; "
                f"use batch_size <= {n}"
            )
        if k is not None:
            check_int("k", k, minimum=0)
        for name, v in (("mix", mix), ("restart", restart)):
            check_real(name, v, low=0.0, high=1.0)
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
        self.mix, self.restart = float(mix), float(restart)
        self.weighted = check_bool("weighted", weighted)
        self.replacement = check_bool("replacement", replacement)
        self.drop_last = check_bool("drop_last", drop_last)
        #: in [0, 2**32): the epoch order is seeded with 32 bits of it
        self.seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
        self.rank, self.world_size = dist_default(rank, world_size)
        if n < self.world_size:
            raise InputError(f"{n} items cannot be shared by world_size={self.world_size} ranks")
        check_policy(policy, self.graph_name, g.n_nodes)
        self.policy = policy
        self._layout = layout = EpochLayout.build(
            n,
            self.batch_size,
            rank=self.rank,
            world_size=self.world_size,
            mix=self.mix,
            replacement=self.replacement,
            num_batches=num_batches,
            drop_last=self.drop_last,
        )
        self.num_batches = layout.num_batches
        walker: Walker
        if g.kind == "cluster":
            assert self.k is not None
            walker = ClusterWalker(
                index,
                g,
                layout,
                k=self.k,
                restart=self.restart,
                weighted=self.weighted,
                replacement=self.replacement,
                seed=self.seed,
                subset=self._subset,
            )
            #: expected clusters a batch spans (ROOT's, its neighbours', then random ones)
            self.clusters_per_batch = walker.warn_if_diluted(self.batch_size, stacklevel=2)
        else:
            check_item_graph(g, n_index)
            walker = ItemWalker(
                g,
                layout,
                batch_size=self.batch_size,
                restart=self.restart,
                weighted=self.weighted,
                replacement=self.replacement,
                seed=self.seed,
                subset=self._subset,
            )
        self._walker = walker
        self._graph = g
        # what a saved state must match: the stored index's checksums, or (for an index that was
        # never saved) a CRC of the walked arrays, computed once here, not in every state_dict()
        mine = walker.fingerprint()
        if mine is None and not index.fingerprint:
            mine = crc(*walker.arrays)
        self._index_id = index.fingerprint or f"crc:{mine}"
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
        self._plan: EpochPlan | None = None
        self._last_plan: EpochPlan | None = None  # the plan of the last batch yielded
        self._pass_start = 0
        # the policy protocol (see graphwalk.walk.policy)
        # the loop's reports (if any) say which batches were trained; until the first one, a
        # state resumes after the last batch yielded, with or without a policy
        self._ledger = RewardLedger(tracking=False)
        self._warned_unreported = False
        self._driver = (
            None if policy is None else PolicyDriver(policy, walker, self._ledger, g.n_nodes)
        )

    # ------------------------------------------------------------------ protocol
    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next pass (as ``DistributedSampler.set_epoch``)."""
        check_int("epoch", epoch, minimum=0)
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
        self._ledger.inflight.clear()  # batches of an abandoned pass are never trained
        self._pass_start = start
        return start

    def _batches(self, start: int) -> Iterator[list[int]]:
        if start >= self.num_batches:
            return
        plan = self._get_plan(self._epoch)
        items = plan.items
        W, r = self.world_size, self.rank
        bounds = self._layout.bounds  # Python ints: cheaper to index than NumPy scalars
        self._consumed = True
        self._last_plan = plan
        pos = self._to_pos  # a Subset: yield positions in it, not item ids
        inflight = self._ledger.inflight
        driver = self._driver
        if driver is None:  # the hot path: the epoch is already walked
            for i in range(start, self.num_batches):
                gb = r + i * W
                self._yielded = i + 1
                if self._ledger.tracking:  # the loop reports the batches it trained (report())
                    inflight.append((plan.epoch, gb))
                batch = items[bounds[gb] : bounds[gb + 1]]
                yield (batch if pos is None else pos[batch]).tolist()
            return
        nb = self._layout.n_global
        for i in range(start, self.num_batches):
            gb = r + i * W
            if plan.done <= gb:  # decide the whole round: every rank decides every global batch
                driver.advance(
                    plan, min(nb, (i + 1) * W)
                )  # at the same step, with the same rewards
            self._yielded = i + 1
            if self._ledger.tracking:
                inflight.append((plan.epoch, gb))
            batch = items[bounds[gb] : bounds[gb + 1]]
            yield (batch if pos is None else pos[batch]).tolist()
        if not self._ledger.tracking:
            self._warn_unreported(f"walked epoch {plan.epoch}")

    # ------------------------------------------------------------------ the walk
    def _get_plan(self, epoch: int) -> EpochPlan:
        if self._plan is not None and self._plan.epoch == epoch:
            return self._plan
        self._walker.check_unchanged()
        plan = self._walker.start(epoch)
        self._plan = plan
        if self._driver is None:
            self._walker.run(plan, 0, self._layout.n_global)
        else:
            self._driver.begin(plan, self.seed)
        return plan

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
        ledger = self._ledger
        if not ledger.tracking:  # the first report: every batch of this pass so far is in flight
            ledger.tracking = True
            plan = self._last_plan
            if plan is not None and plan.epoch == self._epoch:
                ledger.inflight.extend(
                    (plan.epoch, self.rank + i * self.world_size)
                    for i in range(self._pass_start, self._yielded)
                )
        reward = check_reward(reward)
        gb = None if batch is None else self.rank + int(batch) * self.world_size
        epoch, gb, delay = ledger.take(self._epoch, gb, batch)
        rows: list[tuple[int, int, float | None]] = [(epoch, gb, reward)]
        if self.world_size > 1 and self.policy is not None:
            rows = gather_rewards(epoch, gb, reward, self.world_size)
        ledger.receive(rows, stacklevel=2)
        info = self._info(epoch, gb)
        info.delay = delay
        return info

    def flush_rewards(self) -> None:
        """Hand every reward that has arrived to the policy now (normally they are handed over
        at the start of each round, so the last batches' rewards wait for the next epoch's first
        decision). Call it at the end of training, before saving the policy; under
        ``torch.distributed`` on every rank at the same point."""
        if self.policy is not None:
            self._ledger.hand_over(self.policy, sys.maxsize, 0, stacklevel=2)

    @property
    def skipped_rewards(self) -> int:
        """Non-finite rewards skipped by :meth:`report`."""
        return self._ledger.skipped

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
        bounds = self._layout.bounds
        items = plan.items[bounds[gb] : bounds[gb + 1]]
        source = None if self.labels is None else (self.index.labels[self.labels], items)
        choice = plan.choices[gb] if gb < len(plan.choices) else None
        return BatchInfo(
            gb // self.world_size,
            self._walker.item(int(plan.roots[gb])),
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
            else f"crc:{crc(self._subset)}:{self._subset.size}",
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
        ledger = self._ledger
        if live and ledger.tracking:
            position -= ledger.unreported(self._epoch)
        elif live and self.policy is not None and self._yielded > self._pass_start:
            self._warn_unreported("saved its state")
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "epoch": self._epoch,
            "yielded": position,
            "settings": self._settings(),
        }
        if self._driver is not None:
            plan = (
                self._plan if self._plan is not None and self._plan.epoch == self._epoch else None
            )
            replay = self._driver.replay
            if plan is not None:
                walk = walk_record(plan.choices, True, ledger.pending(self._epoch), ledger.inbox)
            elif replay is not None and replay.epoch == self._epoch:
                walk = walk_record(replay.choices, replay.started, replay.pending, ledger.inbox)
            else:
                walk = walk_record([], False, [], ledger.inbox)
            state["walk"] = walk
            state["policy"] = copy.deepcopy(self._driver.policy.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume where :meth:`state_dict` was taken: the next iteration yields the rest of that epoch.

        With a policy, a state whose choices are a prefix of the choices this sampler already
        holds for that epoch (e.g. the older copy a ``StatefulDataLoader`` with workers took when
        it prefetched the batch) only moves the position: the longer record of choices and the
        policy state that goes with it are kept."""
        mine = self._settings()
        theirs = state.get("settings") if isinstance(state, dict) else None
        theirs_index = theirs.get("index") if isinstance(theirs, dict) else None
        if (
            isinstance(theirs_index, str)
            and theirs_index.startswith("crc:")
            and not mine["index"].startswith("crc:")
            and theirs_index == f"crc:{crc(*self._walker.arrays)}"
        ):  # a state of this index taken before it was saved: the same arrays, checked
            mine["index"] = theirs_index
        check_settings(state, mine, self.kind)
        epoch, position = check_position(state, self.num_batches)
        driver = self._driver
        if driver is not None:
            replay, inbox = read_walk(state, epoch, self._graph.n_nodes, self._layout.n_global)
            choices = replay.choices
            held = self._held_choices(epoch)
            if not (
                held is not None and len(held) >= len(choices) and held[: len(choices)] == choices
            ):
                if "policy" in state:
                    driver.policy.load_state_dict(copy.deepcopy(state["policy"]))
                driver.replay = replay
                self._ledger.inbox = inbox
                self._ledger.steps = {}
                self._plan = None
        self._epoch = epoch
        self._explicit = True
        self._resume = position
        self._yielded = self._resume

    def _warn_unreported(self, what: str) -> None:
        """Say (once) that a policy's sampler gets no report(): its policy learns nothing, and
        its state resumes after the last batch *yielded*, which a loader running ahead of
        training has not all trained."""
        if self._warned_unreported:
            return
        self._warned_unreported = True
        warnings.warn(
            f"the sampler with policy {type(self.policy).__name__} {what} without a single "
            "sampler.report(): the policy gets no rewards, and a state saved now resumes after "
            f"batch {self._yielded} of epoch {self._epoch}, the last one yielded (a DataLoader "
            "with workers yields ahead of training); call sampler.report(reward), or report() "
            "without a reward, after each training step",
            RuntimeWarning,
            stacklevel=4,
        )

    def _held_choices(self, epoch: int) -> list[int] | None:
        if self._plan is not None and self._plan.epoch == epoch:
            return self._plan.choices
        replay = None if self._driver is None else self._driver.replay
        if replay is not None and replay.epoch == epoch:
            return list(replay.choices)
        return None

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_plan"] = None
        d["_last_plan"] = None
        return d


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
        return self.batches._layout.rank_items()

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
