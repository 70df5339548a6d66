"""A batch sampler that follows a curriculum: each step's batch comes from the task in force.

Training step ``t`` (counted over epochs: ``epoch * len(sampler) + i``) is in the stage whose
start is the last one ``<= t`` (:meth:`Curriculum.stage_at`); its batch is drawn from the stage's
*pool*, the items of its task (:meth:`CurriculumSampler.pool`). Inside a stage the pool is gone
through in passes: each pass a fresh permutation of the pool (``data_order="shuffle"``) or an
epoch of a walk over the index's item graph restricted to the pool (``"walk"``), cut into
``len(pool) // batch_size`` whole batches (rounded down to a multiple of ``world_size``); the
next pass starts where one ends, so every item of a pool is seen once before any is seen twice.
All batches have ``batch_size`` items.

Guarantees, as for the walk sampler: ``len()`` is exact (``num_batches`` per rank per epoch, by
default as many as shuffling the whole dataset gives, so a curriculum and its controls train for
the same number of steps); the batches depend only on ``(seed, step, rank)`` (a stage's pass is
seeded by ``(seed, stage, pass)``); ``set_epoch``; ``state_dict()`` / ``load_state_dict()`` resume
mid-epoch, across a change of task; under ``torch.distributed`` rank ``r`` of ``W`` takes the
stage's global batch ``(t - start) * W + r``, so at every step the ranks train on disjoint batches
of the same task (a pool holds at least ``W`` batches).

A pool always holds at least ``batch_size * world_size`` items: a share smaller than that is
raised to the smallest share that gives them (a pacing that starts at 4% of a small dataset
starts at one batch).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.tasks.curriculum import Curriculum, Task
from graphwalk.tasks.difficulty import difficulty_scores, rank_items
from graphwalk.tasks.passes import PassSampler
from graphwalk.validation import check_int, check_positive_int

__all__ = ["CurriculumSampler"]

_TAG = 0x43555252  # "CURR"


class CurriculumSampler(PassSampler):
    """Batches of the task in force at each training step (see the module docstring).

    Args:
        curriculum: a :class:`~graphwalk.tasks.Curriculum`, or the path of a curriculum file.
        index: a :class:`~graphwalk.GraphIndex` (or its path) over the dataset's items: its
            levels give ``groups`` / ``classes`` of coarser levels, its item graph the ``walk``
            order and the ``graph`` score.
        batch_size: items per batch.
        labels: the class of every item, what ``share`` balances over (default: the level
            ``curriculum.class_level``, else ``labels``, of the index: the level a label set
            named ``label`` becomes).
        scores: each item's difficulty (lower: easier); default: the curriculum's ``score``
            computed from ``vectors`` (``transfer``) or the index (``graph``).
        vectors: the items' vectors, for ``score="transfer"``.
        graph: the item graph for ``walk`` orders and ``graph`` scores (default: the index's
            first item graph).
        num_batches: batches per rank per epoch (default: as many as shuffling all items).
        seed: in ``[0, 2**32)``.
        rank, world_size: this process's share (default: ``torch.distributed``'s, else 0 of 1).
    """

    def __init__(
        self,
        curriculum: Curriculum | str | Path,
        index: GraphIndex | str | Path,
        batch_size: int,
        *,
        labels: npt.ArrayLike | None = None,
        scores: npt.ArrayLike | None = None,
        vectors: npt.ArrayLike | None = None,
        graph: str | None = None,
        num_batches: int | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        from graphwalk.walk.epoch import batch_sizes, dist_default

        if isinstance(curriculum, (str, Path)):
            curriculum = Curriculum.load(curriculum)
        if not isinstance(curriculum, Curriculum):
            raise TypeError(
                f"curriculum should be a Curriculum or a path, but got {type(curriculum).__name__}"
            )
        if isinstance(index, (str, Path)):
            index = GraphIndex.load(index)
        if not isinstance(index, GraphIndex):
            raise TypeError(
                f"index should be a GraphIndex or a path, but got {type(index).__name__}"
            )
        self.curriculum = curriculum
        self.index = index
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
        self.rank, self.world_size = dist_default(rank, world_size)
        n = index.n_items
        self.class_level = curriculum.class_level or (
            "labels" if "labels" in index.levels or "label" not in index.levels else "label"
        )
        if labels is None:
            if self.class_level not in index.levels:
                raise InputError(
                    f"the index has no level {self.class_level!r} to take the classes from "
                    f"(levels: {', '.join(index.levels)}); pass labels=... or set the "
                    "curriculum's class_level"
                )
            labels = index.level(self.class_level).assignment
        y = np.asarray(labels)
        if y.ndim != 1 or y.size != n or y.dtype.kind not in "iu":
            raise InputError(
                f"labels should be one integer class per item of the index ({n}), but got shape "
                f"{y.shape} dtype {y.dtype}"
            )
        self.labels = y.astype(np.int64)
        if scores is None:
            scores = difficulty_scores(
                curriculum.score,
                self.labels,
                index=index,
                vectors=vectors,
                graph=graph,
                seed=self.seed,
            )
        s = np.asarray(scores, np.float64)
        if s.shape != (n,):
            raise InputError(f"scores should be one number per item ({n}), but got shape {s.shape}")
        self.scores = s
        self.ranks = rank_items(s, curriculum.order, seed=self.seed)
        self.graph_name = graph
        if num_batches is None:
            num_batches = batch_sizes(n, self.batch_size, self.world_size, False)[1]
        self.num_batches = check_int("num_batches", num_batches, minimum=1)
        self._pools = [self._resolve(i, st.task) for i, st in enumerate(curriculum.stages)]
        self._starts = curriculum.starts
        self._cache: dict[tuple[int, int], Any] = {}
        self._per_pass: list[int] = []
        W = self.world_size
        for i, st in enumerate(curriculum.stages):
            if st.task.data_order == "walk":
                m = len(self._walker(i, 0))
            else:
                m = self._pools[i].size // self.batch_size
            # whole rounds of W batches per pass: the ranks' batches of a step are one pass's,
            # so they never share an item
            self._per_pass.append(max(W, m // W * W))

    # ------------------------------------------------------------------ pools
    def _assignment(self, level: str) -> npt.NDArray[np.int64]:
        if level == self.class_level:
            return self.labels
        if level not in self.index.levels:
            raise InputError(
                f"the curriculum names level {level!r} but the index has "
                f"{', '.join(self.index.levels)}; name one of them"
            )
        return np.asarray(self.index.level(level).assignment, np.int64)

    def _resolve(self, i: int, task: Task) -> npt.NDArray[np.int64]:
        where = f"stage {i} ({task.describe()})"
        level = task.level or self.class_level
        a = self._assignment(level)
        n_values = int(a.max()) + 1 if a.size else 0
        if task.classes is not None:
            bad = [c for c in task.classes if c >= n_values or not (a == c).any()]
            if bad:
                raise InputError(
                    f"{where} names classes {bad[:5]} of level {level!r}, which has classes "
                    f"0..{n_values - 1} (with items); name classes that exist"
                )
            play = np.isin(a, np.asarray(task.classes, np.int64))
        elif task.groups is not None:
            n_cls = int(np.unique(self.labels).size)
            n_grp = int(np.unique(a).size)
            if level == self.class_level or n_grp >= n_cls:
                raise InputError(
                    f"{where}: groups of level {level!r} ({n_grp} clusters) should come from a "
                    f"level coarser than the classes trained on ({n_cls}); name a coarser level "
                    "(e.g. superclass or parent)"
                )
            if task.groups > n_grp:
                raise InputError(
                    f"{where} asks for {task.groups} groups but level {level!r} has {n_grp}; use "
                    f"groups <= {n_grp}"
                )
            ids = np.unique(a)
            mean_rank = (
                np.bincount(a, weights=self.ranks, minlength=n_values)[ids]
                / np.bincount(a, minlength=n_values)[ids]
            )
            first = ids[np.argsort(mean_rank, kind="stable")[: task.groups]]
            play = np.isin(a, first)
        else:
            if level != self.class_level:
                self._assignment(level)  # the level must exist
            play = np.ones(a.size, bool)
        items = np.flatnonzero(play)
        need = self.batch_size * self.world_size
        if items.size < need:
            raise InputError(
                f"{where} has {items.size} items, fewer than batch_size x world_size = {need}; "
                "give the task more classes or use a smaller batch size"
                if items.size
                else f"{where} has no items; name classes or groups that have items"
            )
        return self._share(items, task.share, need)

    def _share(
        self, items: npt.NDArray[np.int64], share: float, need: int
    ) -> npt.NDArray[np.int64]:
        """The first ``share`` of each class of ``items`` in rank order (raised to ``need``)."""
        if share >= 1.0:
            return items
        y = self.labels[items]
        order = np.lexsort((self.ranks[items], y))
        ys = y[order]
        starts = np.r_[0, np.flatnonzero(np.diff(ys)) + 1]
        counts = np.diff(np.r_[starts, ys.size])
        pos = np.arange(ys.size) - np.repeat(starts, counts)

        def keep(s: float) -> npt.NDArray[np.bool_]:
            return pos < np.repeat(np.ceil(s * counts - 1e-9), counts)

        k = keep(share)
        if int(k.sum()) < need:  # the smallest share with a batch per rank
            lo, hi = share, 1.0
            for _ in range(40):
                mid = (lo + hi) / 2
                if int(keep(mid).sum()) >= need:
                    hi = mid
                else:
                    lo = mid
            k = keep(hi)
        return np.sort(items[order[k]])

    def pool(self, stage: int) -> npt.NDArray[np.int64]:
        """The items stage ``stage`` draws its batches from (sorted ids)."""
        return self._pools[stage].copy()

    @property
    def pool_sizes(self) -> list[int]:
        """Items in each stage's pool."""
        return [int(p.size) for p in self._pools]

    # ------------------------------------------------------------------ batches
    def _walker(self, stage: int, pass_: int) -> list[list[int]]:
        key = (stage, -1 - pass_)
        if key not in self._cache:
            from graphwalk.walk.sampler import GraphWalkBatchSampler

            if len(self._cache) > 8:
                self._cache.clear()
            ws = GraphWalkBatchSampler(
                self.index,
                self.batch_size,
                graph=self._walk_graph(),
                items=self._pools[stage],
                drop_last=True,
                seed=(self.seed * 1_000_003 + stage) % 2**32,
                rank=0,
                world_size=1,
            )
            ws.set_epoch(pass_)
            self._cache[key] = list(ws)
        out: list[list[int]] = self._cache[key]
        return out

    def _walk_graph(self) -> str:
        if self.graph_name is not None:
            return self.graph_name
        items = [g.name for g in self.index.graphs.values() if g.kind == "item"]
        if not items:
            raise InputError(
                "data_order='walk' needs an item graph (knn) in the index, but it has "
                f"{', '.join(self.index.graphs) or 'no graphs'}; build one with --graph knn"
            )
        return items[0]

    def _perm(self, stage: int, pass_: int) -> npt.NDArray[np.int64]:
        key = (stage, pass_)
        if key not in self._cache:
            if len(self._cache) > 8:
                self._cache.clear()
            rng = np.random.Generator(
                np.random.PCG64(np.random.SeedSequence([self.seed, stage, pass_, _TAG]))
            )
            self._cache[key] = self._pools[stage][rng.permutation(self._pools[stage].size)]
        out: npt.NDArray[np.int64] = self._cache[key]
        return out

    def stage_at(self, step: int) -> int:
        """The stage in force at training step ``step`` (``epoch * len(self) + batch``)."""
        return self.curriculum.stage_at(step)

    def batch_at(self, step: int, rank: int | None = None) -> list[int]:
        """Rank ``rank``'s batch (default: this rank's) at training step ``step``."""
        r = self.rank if rank is None else rank
        s = self.stage_at(step)
        j = (step - self._starts[s]) * self.world_size + r
        m = self._per_pass[s]
        p, k = divmod(j, m)
        if self.curriculum.stages[s].task.data_order == "walk":
            return list(self._walker(s, p)[k])
        b = self.batch_size
        out: list[int] = self._perm(s, p)[k * b : (k + 1) * b].tolist()
        return out

    # ------------------------------------------------------------------ protocol
    def __len__(self) -> int:
        return self.num_batches

    def _pass(self, start: int) -> Iterator[list[int]]:
        n = len(self)
        base = self._epoch * n
        for i in range(start, n):
            self._consumed = True
            self._yielded = i + 1
            yield self.batch_at(base + i)

    # ------------------------------------------------------------------ state
    def _settings(self) -> dict[str, Any]:
        h = hashlib.sha256(json.dumps(self.curriculum.to_dict(), sort_keys=True).encode())
        h.update(self.ranks.tobytes())
        h.update(self.labels.tobytes())
        return {
            "kind": "curriculum",
            "n_items": self.index.n_items,
            "batch_size": self.batch_size,
            "num_batches": self.num_batches,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "curriculum": h.hexdigest()[:16],
        }

    def _mismatch(self, key: str, saved: Any, mine: Any) -> str:
        return (
            f"the state was saved with {key}={saved!r} but this sampler has {key}={mine!r}"
            + (" (another curriculum, order, score or labels)" if key == "curriculum" else "")
            + "; resume with the same curriculum, index and settings"
        )
