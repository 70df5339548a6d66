"""`build_index`: vectors (+ labels) → cluster levels → graphs → a `GraphIndex` (saved atomically)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.cluster import Level, kmeans_level, label_level
from graphwalk.errors import InputError
from graphwalk.graphs import (
    KNN_BACKENDS,
    Graph,
    er_graph,
    knn_clusters_graph,
    knn_items_graph,
    walk_order,
)
from graphwalk.index import GraphIndex
from graphwalk.storage import check_output
from graphwalk.validation import as_labels, as_vectors

__all__ = ["GRAPH_KINDS", "build_index"]

GRAPH_KINDS = ("er", "knn-clusters", "knn")


def _spaces(vectors: Any, metric: str) -> dict[str, npt.NDArray[np.float32]]:
    if isinstance(vectors, Mapping):
        if not vectors:
            raise InputError("no vectors given: the mapping of layer name to vectors is empty")
        out = {
            str(k): as_vectors(v, name=f"vectors of {k!r}", metric=metric)
            for k, v in vectors.items()
        }
        ns = {k: v.shape[0] for k, v in out.items()}
        if len(set(ns.values())) != 1:
            raise InputError(f"every layer needs one vector per item, but the counts differ: {ns}")
        return out
    return {"input": as_vectors(vectors, metric=metric)}


def _labels(labels: Any, n: int) -> dict[str, npt.NDArray[np.int64]]:
    if labels is None:
        return {}
    if isinstance(labels, Mapping):
        return {str(k): as_labels(v, n, name=f"labels {k!r}") for k, v in labels.items()}
    return {"label": as_labels(labels, n)}


def build_index(
    vectors: npt.ArrayLike | Mapping[str, npt.ArrayLike],
    *,
    labels: npt.ArrayLike | Mapping[str, npt.ArrayLike] | None = None,
    clusters: int | None = None,
    groups: Sequence[str] = (),
    graphs: Sequence[str] = ("er",),
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
) -> GraphIndex:
    """Cluster item vectors, build graphs over clusters and items, and (optionally) save.

    Args:
        vectors: ``(n_items, dim)`` array, or a mapping of space name (a layer) to such arrays;
            kNN item graphs are built once per space (``knn`` or ``knn@NAME``).
        labels: one int label per item, or a mapping of label-set name to labels
            (e.g. ``{"label": fine, "superclass": coarse}``).
        clusters: build a ``kmeans`` level with this many faiss k-means clusters.
        groups: label sets to turn into levels (one cluster per label value); ``"labels"`` means all.
        graphs: any of ``"er"`` (Erdős–Rényi over clusters), ``"knn-clusters"`` (k nearest
            centroids) and ``"knn"`` (k nearest items, per space).
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
        out: directory to write (``NAME.gw``); checked before any work starts.
        overwrite: replace an existing index at ``out``.
        progress: show progress bars on stderr.

    Returns:
        The built :class:`GraphIndex` (saved if ``out`` was given).
    """
    t_start = time.perf_counter()
    if out is not None:
        check_output(Path(out), overwrite)
    if metric not in ("l2", "cosine"):
        raise InputError(f"metric should be 'l2' or 'cosine', but got {metric!r}")
    if knn_backend not in KNN_BACKENDS:
        raise InputError(f"knn_backend should be one of {KNN_BACKENDS}, but got {knn_backend!r}")
    bad = [g for g in graphs if g not in GRAPH_KINDS]
    if bad:
        raise InputError(f"unknown graph kind {bad[0]!r}; choose from {GRAPH_KINDS}")
    spaces = _spaces(vectors, metric)
    first = next(iter(spaces))
    n = spaces[first].shape[0]
    labs = _labels(labels, n)
    group_sets: list[str] = []
    for gname in groups:
        names = list(labs) if gname == "labels" and "labels" not in labs and labs else [gname]
        for name in names:
            if name not in labs:
                raise InputError(
                    f"groups={name!r} needs labels of that name, but "
                    + (
                        f"the labels are {sorted(labs)}"
                        if labs
                        else "no labels were given (--labels)"
                    )
                )
            if name not in group_sets:
                group_sets.append(name)
    cspace = cluster_space or first
    if cspace not in spaces:
        raise InputError(f"cluster_space {cspace!r} is not one of the spaces {sorted(spaces)}")
    if clusters is not None:
        if (
            isinstance(clusters, bool)
            or not isinstance(clusters, (int, np.integer))
            or clusters < 1
        ):
            raise InputError(
                f"clusters should be a positive integer, but got clusters={clusters!r}"
            )
        if clusters > n:
            raise InputError(f"cannot make {clusters} clusters from {n} items; use at most {n}")
    needs_level = [g for g in graphs if g in ("er", "knn-clusters")]
    if needs_level and clusters is None and not group_sets:
        raise InputError(
            f"graph {needs_level[0]!r} is built over clusters: give clusters=K "
            "(--clusters K) or groups=('labels',) (--groups labels)"
        )
    if "knn" in graphs and not (isinstance(k, (int, np.integer)) and 1 <= k < n):
        raise InputError(
            f"k={k} neighbours asked for, but there are only {n} items; "
            f"k must be between 1 and {n - 1}"
        )

    levels: dict[str, Level] = {}
    built: dict[str, Graph] = {}
    timings: dict[str, float] = {}
    steps: list[tuple[str, Any]] = []
    if clusters is not None:
        steps.append(
            (
                "k-means",
                lambda: levels.__setitem__(
                    "kmeans", kmeans_level(spaces[cspace], int(clusters), seed=seed, space=cspace)
                ),
            )
        )
    for gname in group_sets:
        lname = "labels" if gname == "label" else gname
        steps.append(
            (
                f"groups {lname}",
                lambda g=gname, ln=lname: levels.__setitem__(
                    ln, label_level(spaces[cspace], labs[g], name=ln, space=cspace)
                ),
            )
        )

    def base_level() -> Level:
        name = graph_level or ("kmeans" if "kmeans" in levels else next(iter(levels)))
        if name not in levels:
            raise InputError(f"graph_level {name!r} is not one of the levels {sorted(levels)}")
        return levels[name]

    if "er" in graphs:
        steps.append(
            (
                "ER graph",
                lambda: built.__setitem__(
                    "er",
                    er_graph(
                        base_level().n_clusters,
                        degree=degree,
                        p=p,
                        seed=seed,
                        connect=connect,
                        level=base_level().name,
                    ),
                ),
            )
        )
    if "knn-clusters" in graphs:
        steps.append(
            (
                "kNN over centroids",
                lambda: built.__setitem__(
                    "knn-clusters",
                    knn_clusters_graph(
                        base_level().centroids,
                        min(k, base_level().n_clusters - 1),
                        metric=metric,
                        connect=connect,
                        level=base_level().name,
                    ),
                ),
            )
        )
    if "knn" in graphs:
        for sname in spaces:
            gname = "knn" if len(spaces) == 1 else f"knn@{sname}"
            steps.append(
                (
                    f"kNN {gname}",
                    lambda s=sname, gn=gname: built.__setitem__(
                        gn,
                        knn_items_graph(
                            spaces[s],
                            k,
                            metric=metric,
                            backend=knn_backend,
                            seed=seed,
                            recall_sample=recall_sample,
                            name=gn,
                            space=s,
                            show_progress=progress,
                        ),
                    ),
                )
            )
            # the order samplers walk it in: breadth-first within the k-means clusters of the
            # same vectors (when there are), so that a batch reads contiguous memory
            steps.append(
                (
                    f"walk order {gname}",
                    lambda s=sname, gn=gname: setattr(
                        built[gn],
                        "walk",
                        walk_order(
                            built[gn],
                            levels["kmeans"].assignment
                            if "kmeans" in levels and levels["kmeans"].space == s
                            else None,
                        ),
                    ),
                )
            )
    if out is not None:
        steps.append(("write", None))

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(steps),
            desc="graphwalk index",
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
        )
    params: dict[str, Any] = dict(
        clusters=clusters,
        groups=list(group_sets),
        graphs=list(graphs),
        graph_level=graph_level,
        cluster_space=cspace,
        degree=degree,
        p=p,
        connect=connect,
        k=k,
        metric=metric,
        knn_backend=knn_backend,
        recall_sample=recall_sample,
        seed=seed,
        **(extra_params or {}),
        timings_s=timings,
    )
    index = GraphIndex(
        n, labels=labs, spaces={s: int(v.shape[1]) for s, v in spaces.items()}, build_params=params
    )
    try:
        for label, fn in steps:
            if bar is not None:
                bar.set_postfix_str(label)
            t0 = time.perf_counter()
            if fn is None:
                index.levels, index.graphs = levels, built
                assert out is not None
                index.save(out, overwrite=overwrite)
            else:
                fn()
            timings[label] = round(time.perf_counter() - t0, 4)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    index.levels, index.graphs = levels, built
    timings["total"] = round(time.perf_counter() - t_start, 4)
    return index
