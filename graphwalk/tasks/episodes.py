"""N-way K-shot episodes drawn from an index: a batch sampler for meta-learners.

Each element :class:`EpisodeSampler` yields is one episode's item indices, in this layout::

    support: class 0's k_shot items, class 1's k_shot items, ..., class N-1's k_shot items
    query:   class 0's q_query items, ..., class N-1's q_query items

so that episode label ``j`` is the ``j``-th class drawn (labels are assigned per episode in random
order: the same classes in another order are another task). :func:`collate_episode` turns the
items a ``DataLoader`` fetched into ``(support_x, support_y, query_x, query_y, class_ids)``.

Classes are the clusters of any level of the index: a label level (supervised few-shot
learning), or a k-means level (unsupervised meta-learning from clusters of embeddings, as
CACTUs: Hsu, Levine and Finn 2019). How an episode's classes are chosen:

- ``"uniform"``: ``n_way`` distinct classes, uniformly.
- ``"walk"``: ROOT and ``n_way - 1`` of its neighbours on a cluster graph over the level
  (neighbours in random order, then their neighbours when ROOT has too few; semantically close,
  hard episodes); ROOT then moves to a random neighbour, as the walk sampler's ROOT does.
- ``"within:LEVEL"``: ``n_way`` classes under one parent of a coarser ``LEVEL`` (each class's
  parent is the parent most of its items belong to), e.g. the classes of one CIFAR-100
  superclass, as Meta-Dataset samples ImageNet's hierarchy.

Examples are drawn fresh every time a class recurs. The episodes of an epoch depend only on
``(seed, epoch)``; under ``torch.distributed`` rank ``r`` of ``W`` takes episodes
``r, r + W, ...`` of the epoch (disjoint, the same number on every rank), and a ``DataLoader``'s
workers never draw episodes (the batch sampler runs in the main process), so they cannot repeat
one another's. ``state_dict()`` / ``load_state_dict()`` resume in the middle of an epoch.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.tasks.passes import PassSampler
from graphwalk.validation import check_int

__all__ = ["EpisodeLabels", "EpisodeSampler", "collate_episode"]

MODES = ("uniform", "walk", "within:LEVEL")


class EpisodeSampler(PassSampler):
    """Episodes of ``n_way`` classes with ``k_shot`` support and ``q_query`` query items each.

    Args:
        index: a :class:`~graphwalk.GraphIndex` or the path of one.
        level: the level whose clusters are the classes (a label level or a k-means level).
        n_way, k_shot, q_query: the episode's shape.
        episodes: episodes per epoch (over all ranks; each rank gets ``episodes // world_size``).
        classes: ``"uniform"``, ``"walk"`` or ``"within:LEVEL"`` (see the module docstring).
        graph: the cluster graph over ``level`` for ``"walk"`` (default: the only one).
        split: the class ids an episode may use (e.g. a :class:`~graphwalk.tasks.ClassSplit`'s
            ``train``); default all.
        small: a class with fewer than ``k_shot + q_query`` items: ``"error"`` (default: refused,
            listing them) or ``"drop"`` (left out, with a warning).
        seed: in ``[0, 2**32)``.
        rank, world_size: this process's share (default: ``torch.distributed``'s, else 0 of 1).
    """

    def __init__(
        self,
        index: GraphIndex | str | Path,
        *,
        level: str,
        n_way: int = 5,
        k_shot: int = 1,
        q_query: int = 15,
        episodes: int = 1000,
        classes: str = "uniform",
        graph: str | None = None,
        split: npt.ArrayLike | None = None,
        small: str = "error",
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        from graphwalk.walk.epoch import dist_default

        if isinstance(index, (str, Path)):
            index = GraphIndex.load(index)
        if not isinstance(index, GraphIndex):
            raise TypeError(
                f"index should be a GraphIndex or a path, but got {type(index).__name__}"
            )
        self.index = index
        lv = index.level(level)
        self.level = level
        self.n_way = check_int("n_way", n_way, minimum=2)
        self.k_shot = check_int("k_shot", k_shot, minimum=1)
        self.q_query = check_int("q_query", q_query, minimum=1)
        self.episodes = check_int("episodes", episodes, minimum=1)
        self.seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
        self.rank, self.world_size = dist_default(rank, world_size)
        if self.episodes < self.world_size:
            raise InputError(
                f"episodes={self.episodes} cannot be shared by world_size={self.world_size} "
                f"ranks; use episodes >= {self.world_size}"
            )
        if small not in ("error", "drop"):
            raise InputError(f"small should be 'error' or 'drop', but got small={small!r}")
        self.classes = str(classes)
        self.graph_name: str | None = None

        indptr, members = index.members(level)
        self._indptr = np.ascontiguousarray(indptr, np.int64)
        self._members = np.ascontiguousarray(members, np.int64)
        n_classes = lv.n_clusters
        allowed = self._allowed(split, n_classes)
        per = self.k_shot + self.q_query
        sizes = np.diff(self._indptr)
        too_small = allowed[sizes[allowed] < per]
        if too_small.size:
            listed = ", ".join(f"{int(c)} ({int(sizes[c])})" for c in too_small[:8])
            more = f" and {too_small.size - 8} more" if too_small.size > 8 else ""
            if small == "error":
                raise InputError(
                    f"{too_small.size} classes of level {level!r} have fewer than k_shot + "
                    f"q_query = {per} items: {listed}{more} (class (items)); use smaller "
                    "k_shot / q_query, or small='drop' (--drop-small-classes) to leave them out"
                )
            warnings.warn(
                f"left out {too_small.size} classes of level {level!r} with fewer than {per} "
                f"items: {listed}{more}",
                RuntimeWarning,
                stacklevel=2,
            )
            allowed = np.setdiff1d(allowed, too_small)
        if allowed.size < self.n_way:
            raise InputError(
                f"n_way={self.n_way} but only {allowed.size} classes of level {level!r} are "
                f"available (of {n_classes}, after the split and the classes with fewer than "
                f"{per} items); use n_way <= {allowed.size}"
            )
        self._eligible = allowed
        self._ok = np.zeros(n_classes, np.uint8)
        self._ok[allowed] = 1
        empty64 = np.zeros(1, np.int64)
        self._g_indptr, self._g_indices = empty64, empty64
        self._p_indptr, self._p_children = np.zeros(2, np.int64), empty64
        if self.classes == "uniform":
            self._mode = 0
        elif self.classes == "walk":
            self._mode = 1
            self._set_graph(graph)
        elif self.classes.startswith("within:"):
            self._mode = 2
            self._set_parents(self.classes.split(":", 1)[1])
        else:
            raise InputError(
                f"classes should be one of {', '.join(MODES)}, but got classes={classes!r}"
            )
        if self._mode != 1 and graph is not None:
            raise InputError(f"graph={graph!r} is for classes='walk' only; leave it out")
        self._plan: tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None

    # ------------------------------------------------------------------ set-up
    def _allowed(self, split: npt.ArrayLike | None, n_classes: int) -> npt.NDArray[np.int64]:
        if split is None:
            return np.arange(n_classes, dtype=np.int64)
        arr = np.asarray(split)
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise InputError(
                f"split should be a 1-D array of class ids of level {self.level!r} (e.g. a "
                f"ClassSplit's train), but got shape {arr.shape} dtype {arr.dtype}"
            )
        ids = np.unique(arr.astype(np.int64))
        bad = ids[(ids < 0) | (ids >= n_classes)]
        if bad.size:
            raise InputError(
                f"split names classes {bad[:5].tolist()} but level {self.level!r} has classes "
                f"0..{n_classes - 1}; was the split made for another level?"
            )
        return ids

    def _set_graph(self, name: str | None) -> None:
        index = self.index
        over = [g for g in index.graphs.values() if g.kind == "cluster" and g.level == self.level]
        if name is None:
            if len(over) != 1:
                have = ", ".join(
                    f"{g.name} (over {g.level or 'items'})" for g in index.graphs.values()
                )
                raise InputError(
                    f"classes='walk' needs a cluster graph over level {self.level!r}; "
                    + (
                        f"there are {len(over)} ({', '.join(g.name for g in over)}): name one "
                        "with graph=NAME"
                        if over
                        else f"the index has {have or 'no graphs'}: build one with graphwalk "
                        f"index --graph er --graph-level {self.level} (or build_index(..., "
                        f"graph_level={self.level!r}))"
                    )
                )
            g = over[0]
        else:
            g = index.graph(name)
            if g.kind != "cluster" or g.level != self.level:
                raise InputError(
                    f"graph {name!r} is over {g.level or 'items'}, not over the classes of level "
                    f"{self.level!r}: classes='walk' needs a cluster graph over {self.level!r}"
                )
        self.graph_name = g.name
        self._g_indptr = np.ascontiguousarray(g.indptr, np.int64)
        self._g_indices = np.ascontiguousarray(g.indices, np.int64)

    def _set_parents(self, parent: str) -> None:
        index = self.index
        if parent == self.level:
            raise InputError(
                f"classes='within:{parent}' names the level itself; name a coarser one"
            )
        plv = index.level(parent)
        child = index.level(self.level)
        if plv.n_clusters >= child.n_clusters:
            raise InputError(
                f"within:{parent} needs a level coarser than {self.level!r}, but {parent!r} has "
                f"{plv.n_clusters} clusters and {self.level!r} {child.n_clusters}"
            )
        # each class's parent: where most of its items are
        pairs = child.assignment.astype(np.int64) * plv.n_clusters + plv.assignment
        counts = np.bincount(pairs, minlength=child.n_clusters * plv.n_clusters)
        parent_of = counts.reshape(child.n_clusters, plv.n_clusters).argmax(axis=1)
        kids = self._eligible[np.argsort(parent_of[self._eligible], kind="stable")]
        sizes = np.bincount(parent_of[kids], minlength=plv.n_clusters)
        usable = np.flatnonzero(sizes >= self.n_way)
        if usable.size == 0:
            raise InputError(
                f"no parent of level {parent!r} has n_way={self.n_way} eligible classes of level "
                f"{self.level!r} under it (the most: {int(sizes.max())}); use n_way <= "
                f"{int(sizes.max())} or another level"
            )
        keep = np.isin(parent_of[kids], usable)
        kids = kids[keep]
        self._p_children = np.ascontiguousarray(kids, np.int64)
        indptr = np.zeros(usable.size + 1, np.int64)
        np.cumsum(sizes[usable], out=indptr[1:])
        self._p_indptr = indptr
        self.parent_level = parent
        self.parents = usable

    # ------------------------------------------------------------------ protocol
    def __len__(self) -> int:
        return self.episodes // self.world_size

    @property
    def episode_size(self) -> int:
        """Items in one episode: ``n_way * (k_shot + q_query)``."""
        return self.n_way * (self.k_shot + self.q_query)

    def _pass(self, start: int) -> Iterator[list[int]]:
        n = len(self)
        if start >= n:
            return
        items, _ = self.plan(self._epoch)
        self._consumed = True
        W, r = self.world_size, self.rank
        for i in range(start, n):
            self._yielded = i + 1
            yield items[r + i * W].tolist()

    def plan(self, epoch: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """All ranks' episodes of ``epoch``: item ids ``(episodes, episode_size)`` and the class
        of each label ``(episodes, n_way)`` (what every rank draws alike; rank ``r`` yields rows
        ``r, r + W, ...``)."""
        if self._plan is not None and self._plan[0] == epoch:
            return self._plan[1], self._plan[2]
        from graphwalk.tasks.kernels import draw_episodes
        from graphwalk.walk.kernels.rng import seed_state

        n_global = len(self) * self.world_size
        items = np.empty((n_global, self.episode_size), np.int64)
        classes = np.empty((n_global, self.n_way), np.int64)
        draw_episodes(
            seed_state(self.seed, epoch, 0x45504953),  # "EPIS": a stream of its own
            self._mode,
            self._eligible.copy(),
            self._ok,
            self._indptr,
            self._members.copy(),
            self._g_indptr,
            self._g_indices,
            self._p_indptr,
            self._p_children.copy(),
            self.n_way,
            self.k_shot,
            self.q_query,
            items,
            classes,
        )
        self._plan = (epoch, items, classes)
        return items, classes

    def episode_classes(self, epoch: int | None = None) -> npt.NDArray[np.int64]:
        """This rank's episodes' classes for ``epoch`` (default: the current one),
        ``(len(self), n_way)``: row ``i`` is the class of each label of episode ``i``."""
        _, classes = self.plan(self._epoch if epoch is None else epoch)
        return classes[self.rank :: self.world_size][: len(self)]

    # ------------------------------------------------------------------ state
    def _settings(self) -> dict[str, Any]:
        h = hashlib.sha256(self._eligible.tobytes())
        h.update(self._indptr.tobytes())
        return {
            "kind": "episodes",
            "n_items": self.index.n_items,
            "level": self.level,
            "n_way": self.n_way,
            "k_shot": self.k_shot,
            "q_query": self.q_query,
            "episodes": self.episodes,
            "classes": self.classes,
            "graph": self.graph_name,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "eligible": h.hexdigest()[:16],
        }

    def _mismatch(self, key: str, saved: Any, mine: Any) -> str:
        what = "the classes allowed" if key == "eligible" else f"{key}={saved!r}"
        return (
            f"the state was saved with {what} but this sampler has "
            f"{'other classes' if key == 'eligible' else f'{key}={mine!r}'}; resume with the "
            "same index, split and settings"
        )


class EpisodeLabels(torch.utils.data.Dataset[tuple[Any, int]]):
    """A dataset's items with the class each has in a level: ``(x, class_id)``, for
    :func:`collate_episode` to report which classes an episode holds (k-means classes are not
    the dataset's labels). ``x`` is the dataset's item, or its first field when it is a tuple."""

    def __init__(self, dataset: Any, sampler: EpisodeSampler) -> None:
        if len(dataset) != sampler.index.n_items:
            raise InputError(
                f"the dataset has {len(dataset)} items but the index was built from "
                f"{sampler.index.n_items}; give the dataset the index was built from"
            )
        self.dataset = dataset
        self.assignment = np.asarray(sampler.index.level(sampler.level).assignment)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        item = self.dataset[i]
        x = item[0] if isinstance(item, (tuple, list)) else item
        return x, int(self.assignment[i])


def collate_episode(n_way: int, k_shot: int, q_query: int) -> Any:
    """A ``collate_fn`` for one episode in :class:`EpisodeSampler`'s layout:
    ``(support_x, support_y, query_x, query_y, class_ids)``, labels ``0..n_way-1`` by position
    (:func:`graphwalk.tasks.meta.split_episode`) and ``class_ids[j]`` the class of label ``j``
    (from an :class:`EpisodeLabels` dataset, or the second field of each item; ``None`` when
    items have no second field)."""
    from graphwalk.tasks.meta import split_episode

    n_way = check_int("n_way", n_way, minimum=2)
    k_shot = check_int("k_shot", k_shot, minimum=1)
    q_query = check_int("q_query", q_query, minimum=1)
    size = n_way * (k_shot + q_query)

    def collate(items: Sequence[Any]) -> tuple[Any, ...]:
        if len(items) != size:
            raise InputError(
                f"an episode of {n_way}-way {k_shot}-shot {q_query}-query has {size} items, but "
                f"the batch has {len(items)}: pass the EpisodeSampler as batch_sampler= with the "
                "same n_way, k_shot and q_query"
            )
        first = items[0]
        pairs = isinstance(first, (tuple, list))
        x = torch.stack([torch.as_tensor(it[0] if pairs else it) for it in items])
        ids = None
        if pairs and len(first) > 1:
            ids = torch.as_tensor([int(items[j * k_shot][1]) for j in range(n_way)])
        return (*split_episode(x, n_way, k_shot, q_query), ids)

    return collate
