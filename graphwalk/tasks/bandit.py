"""A bandit over tasks that learns the schedule (Graves et al. 2017, "Automated Curriculum
Learning for Neural Networks").

The tasks are disjoint sets of items, the arms: difficulty *bands* (band ``b`` of ``B`` holds, in
every class, the items ranked between ``b / B`` and ``(b + 1) / B`` by the difficulty score) or
the clusters of a coarser level (*groups*: each superclass, or each parent of a class
hierarchy). They become the one level of a small *task index*, with a complete graph over the
tasks; the schedule is then a walk on that graph in budgeted mode: every batch comes from the
task its ROOT names (``k=0``: no neighbour tasks in the batch), drawn with replacement, and ROOT
is chosen by one of graphwalk's learned walkers (:mod:`graphwalk.learn`), rewarded by the training
loop with the learning-progress signals of Graves et al.: prediction gain (``loss-drop``: the
batch's loss before minus after the step) or gradient prediction gain (``grad-norm``), rescaled by
quantiles of their recent history (:class:`~graphwalk.learn.RewardNormalizer`). ``exp3s`` is
Exp3.S; ``uniform`` is the no-learning control (the same draws without learning); a
:class:`~graphwalk.learn.CoverageFloor` makes sure that no task starves (every task at least
once every ``2 * tasks`` batches). Everything the walk sampler promises holds: exact ``len``,
resume with the policy's state, ranks that make the same choices from shared rewards.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.validation import check_int

__all__ = ["difficulty_bands", "task_bandit_sampler", "task_index"]


def difficulty_bands(
    labels: npt.ArrayLike, ranks: npt.ArrayLike, bands: int
) -> npt.NDArray[np.int64]:
    """Each item's band ``0..bands-1``: its place in its class's rank order, cut into ``bands``
    equal parts (band 0: the first ranked)."""
    bands = check_int("bands", bands, minimum=2)
    y = np.asarray(labels, np.int64)
    r = np.asarray(ranks, np.int64)
    order = np.lexsort((r, y))
    ys = y[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ys)) + 1]
    counts = np.diff(np.r_[starts, ys.size])
    if counts.min() < bands:
        raise InputError(
            f"bands={bands} but a class has only {int(counts.min())} items; use bands <= "
            f"{int(counts.min())}"
        )
    pos = np.arange(ys.size) - np.repeat(starts, counts)
    out = np.empty(y.size, np.int64)
    out[order] = (pos * bands) // np.repeat(counts, counts)
    return out


def task_index(vectors: npt.ArrayLike, tasks: npt.ArrayLike, *, seed: int = 0) -> GraphIndex:
    """An in-memory index whose level ``task`` holds the tasks (one cluster per task id) and whose
    graph ``tasks`` is complete over them."""
    t = np.asarray(tasks, np.int64)
    n_tasks = int(np.unique(t).size)
    if n_tasks < 2:
        raise InputError(f"a bandit over tasks needs at least 2 tasks, but got {n_tasks}")
    from graphwalk.build.builder import build_index

    index = build_index(
        np.asarray(vectors, np.float32).reshape(t.size, -1),
        labels={"task": t},
        groups=["task"],
        graphs=["er"],
        p=1.0,
        graph_level="task",
        seed=seed,
    )
    return index


def task_bandit_sampler(
    index: GraphIndex,
    batch_size: int,
    *,
    policy: str = "exp3s",
    num_batches: int,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    floor: int | None = None,
    **policy_kw: Any,
) -> Any:
    """The walk sampler over a :func:`task_index`'s tasks: ``num_batches`` batches per rank per
    epoch, each from the task a ``policy`` chose (a :data:`graphwalk.learn.POLICIES` name),
    under a coverage floor (default ``2 * tasks``). Report rewards with ``sampler.report()``."""
    from graphwalk.learn import CoverageFloor, make_policy
    from graphwalk.walk.sampler import GraphWalkBatchSampler

    graph = next(iter(index.graphs))
    pol = make_policy(policy, index, graph, seed=seed, **policy_kw)
    n_tasks = index.graph(graph).n_nodes
    pol = CoverageFloor(pol, n_tasks, floor=2 * n_tasks if floor is None else floor)
    return GraphWalkBatchSampler(
        index,
        batch_size,
        graph=graph,
        k=0,
        replacement=True,
        num_batches=num_batches,
        seed=seed,
        rank=rank,
        world_size=world_size,
        policy=pol,
    )
