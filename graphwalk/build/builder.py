"""`build_index`: vectors (+ labels) → cluster levels → graphs → a `GraphIndex` (saved atomically).

The build is planned first (:func:`~graphwalk.build.plan.plan_build`: every argument checked, every
level and graph named), then made by step functions that each return one level or one graph.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from graphwalk._files import atomic_write
from graphwalk.build.cluster import kmeans_level, label_level
from graphwalk.build.graphs import er_graph, knn_clusters_graph, knn_items_graph, walk_order
from graphwalk.build.plan import (
    GRAPH_KINDS,
    SEED_MAX,
    BuildInputs,
    BuildPlan,
    GraphPlan,
    LevelPlan,
    check_writable,
    plan_build,
)
from graphwalk.index.artifact import GraphIndex, resolve_layout
from graphwalk.index.storage import MANIFEST
from graphwalk.index.types import Graph, Level
from graphwalk.progress import progress_bar, ticking

__all__ = [
    "GRAPH_KINDS",
    "SEED_MAX",
    "build_cluster_graph",
    "build_index",
    "build_item_graph",
    "build_level",
    "check_writable",
    "with_walk_order",
]

P = ParamSpec("P")
T = TypeVar("T")


def build_level(plan: BuildPlan, level: LevelPlan, inputs: BuildInputs) -> Level:
    """Make one planned level: k-means over the level's space, or one cluster per label value."""
    x = inputs.spaces[level.space]
    if level.source == "kmeans":
        assert level.clusters is not None  # planned so
        return kmeans_level(x, level.clusters, seed=plan.seed, space=level.space)
    assert level.label_set is not None
    return label_level(x, inputs.labels[level.label_set], name=level.name, space=level.space)


def build_cluster_graph(plan: BuildPlan, graph: GraphPlan, level: Level) -> Graph:
    """Make one planned cluster graph over the clusters of ``level``: Erdős–Rényi, or each
    cluster joined to its ``k`` nearest centroids (``k`` capped at ``n_clusters - 1``)."""
    if graph.kind == "er":
        return er_graph(
            level.n_clusters,
            degree=plan.degree,
            p=plan.p,
            seed=plan.seed,
            connect=plan.connect,
            level=level.name,
        )
    return knn_clusters_graph(
        level.centroids,
        min(plan.k, level.n_clusters - 1),
        metric=plan.metric,
        connect=plan.connect,
        level=level.name,
    )


def build_item_graph(plan: BuildPlan, graph: GraphPlan, x: npt.NDArray[np.float32]) -> Graph:
    """Make one planned kNN item graph over the vectors ``x`` of its space (no walk order yet)."""
    assert graph.space is not None
    return knn_items_graph(
        x,
        plan.k,
        metric=plan.metric,
        backend=plan.knn_backend,
        seed=plan.seed,
        recall_sample=plan.recall_sample,
        name=graph.name,
        space=graph.space,
        show_progress=plan.progress,
    )


def with_walk_order(graph: Graph, assignment: npt.NDArray[np.integer] | None) -> Graph:
    """``graph`` with the order samplers walk it in: breadth-first within the clusters of
    ``assignment`` (k-means of the same vectors) when given, so that a batch reads contiguous
    memory (see :func:`~graphwalk.build.graphs.walk_order`)."""
    return dataclasses.replace(graph, walk=walk_order(graph, assignment))


class _Steps:
    """Runs the build's steps on its one progress bar, and times each into ``timings``."""

    def __init__(self, bar: Any, timings: dict[str, float]) -> None:
        self.bar = bar
        self.timings = timings

    def __call__(self, label: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.bar is not None:
            self.bar.set_postfix_str(label)
        t0 = time.perf_counter()
        with ticking(self.bar):  # one bar: the step's name and its elapsed time, kept moving
            result = fn(*args, **kwargs)
        self.timings[label] = round(time.perf_counter() - t0, 4)
        if self.bar is not None:
            self.bar.update(1)
        return result


@contextmanager
def _steps(plan: BuildPlan, timings: dict[str, float]) -> Iterator[_Steps]:
    bar = progress_bar(
        enabled=plan.progress,
        total=len(plan.steps),
        desc="graphwalk index",
        unit="step",
        leave=True,
    )
    try:
        yield _Steps(bar, timings)
    finally:
        if bar is not None:
            bar.close()


def build_index(
    vectors: npt.ArrayLike | Mapping[str, npt.ArrayLike],
    *,
    labels: npt.ArrayLike | Mapping[str, npt.ArrayLike] | None = None,
    clusters: int | None = None,
    groups: str | Sequence[str] = (),
    graphs: str | Sequence[str] = ("er",),
    graph_level: str | None = None,
    cluster_space: str | None = None,
    degree: float | None = None,
    p: float | None = None,
    connect: bool = True,
    k: int = 10,
    metric: str = "l2",
    knn_backend: str = "auto",
    recall_sample: int = 1000,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    extra_params: Mapping[str, Any] | None = None,
    layout: str = "auto",
) -> GraphIndex:
    """Cluster item vectors, build graphs over clusters and items, and (optionally) save.

    Args:
        vectors: ``(n_items, dim)`` array, or a mapping of space name (a layer) to such arrays;
            kNN item graphs are built once per space (``knn`` or ``knn@NAME``).
        labels: one int label per item, or a mapping of label-set name to labels
            (e.g. ``{"label": fine, "superclass": coarse}``).
        clusters: build a ``kmeans`` level with this many faiss k-means clusters.
        groups: label sets to turn into levels (one cluster per label value); ``"labels"`` means all.
            A single string is one name.
        graphs: any of ``"er"`` (Erdős–Rényi over clusters), ``"knn-clusters"`` (k nearest
            centroids) and ``"knn"`` (k nearest items, per space); a single string is one kind.
        graph_level: the level cluster graphs are built over (default: ``kmeans`` if built,
            else the first label level).
        cluster_space: the space k-means runs in (default: the first).
        degree, p: ER parameters (see :func:`graphwalk.graphs.er_graph`).
        connect: make the cluster graphs (``er`` and ``knn-clusters``) one connected component
            (default); false keeps them as built. The edges added are counted in each graph's
            ``params["edges_added_to_connect"]`` (see :func:`graphwalk.graphs.er_graph` and
            :func:`graphwalk.graphs.knn_clusters_graph`).
        k, metric, knn_backend, recall_sample: kNN parameters (``knn-clusters`` uses ``k`` too,
            capped at ``n_clusters - 1``).
        seed: seeds k-means, the ER graph and the recall sample.
        out: directory to write (``NAME.gw``); checked before any work starts (existing
            output, and a probe directory created and removed where it will be written).
        overwrite: replace an existing index at ``out``.
        progress: show progress bars on stderr.
        layout: how ``out`` stores the arrays (:meth:`GraphIndex.save`): ``"parquet"``,
            ``"arrays"`` (memory-mapped, opened in O(1)) or ``"auto"`` (arrays from 1M items).

    ``build_params["timings_s"]`` holds the seconds of each step, ``write`` and the ``total``
    (everything from the call on, checks and the write included).

    Raises:
        TypeError: a parameter of the wrong type (``k=10.0``, ``graphs=5``).
        InputError: a value out of range (``p`` outside ``(0, 1]``, ``seed < 0``, ...), checked
            before any work starts; bad vectors or labels; an output that exists or cannot be
            written.

    Warns:
        UserWarning: a parameter that this build does not use (``p`` or ``degree`` without an
        ``er`` graph, ``graph_level`` without a cluster graph).

    Returns:
        The built :class:`GraphIndex` (saved if ``out`` was given).
    """
    t_start = time.perf_counter()
    resolve_layout(layout, 0)  # an unknown layout is refused before any work
    plan, inputs = plan_build(
        vectors,
        labels=labels,
        clusters=clusters,
        groups=groups,
        graphs=graphs,
        graph_level=graph_level,
        cluster_space=cluster_space,
        degree=degree,
        p=p,
        connect=connect,
        k=k,
        metric=metric,
        knn_backend=knn_backend,
        recall_sample=recall_sample,
        seed=seed,
        out=out,
        overwrite=overwrite,
        progress=progress,
    )
    for message in plan.ignored:
        warnings.warn(message, UserWarning, stacklevel=2)
    timings: dict[str, float] = {}
    index = GraphIndex(
        plan.n_items,
        labels=dict(inputs.labels),
        spaces=dict(plan.spaces),
        build_params=plan.build_params(extra_params, timings),
    )
    with _steps(plan, timings) as step:
        levels = {lv.name: step(lv.step, build_level, plan, lv, inputs) for lv in plan.levels}
        built: dict[str, Graph] = {}
        for g in plan.graph_plans:
            if g.kind == "knn":
                assert g.space is not None
                graph = step(g.steps[0], build_item_graph, plan, g, inputs.spaces[g.space])
                order = None if g.walk_level is None else levels[g.walk_level].assignment
                built[g.name] = step(g.steps[1], with_walk_order, graph, order)
            else:
                assert g.level is not None
                built[g.name] = step(g.steps[0], build_cluster_graph, plan, g, levels[g.level])
        index.levels, index.graphs = levels, built
        if plan.out is not None:
            step("write", index.save, plan.out, overwrite=plan.overwrite, layout=layout)
    timings["total"] = round(time.perf_counter() - t_start, 4)
    if plan.out is not None:
        _rewrite_manifest(plan.out, index.manifest)
    return index


def _rewrite_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest again, now that the write step's time and the total are known.

    The manifest is the last file ``GraphIndex.save`` writes, so the timings it holds could not
    include the write itself. ``manifest["build"]`` shares ``timings_s`` with the build, so only
    the file is behind. It is replaced atomically (:func:`~graphwalk._files.atomic_write`): a
    crash in between leaves the first, complete manifest, lacking only ``write`` and ``total``.
    """
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
