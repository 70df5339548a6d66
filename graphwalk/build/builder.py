"""`build_index`: vectors (+ labels) → cluster levels → graphs → a `GraphIndex` (saved atomically)."""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk._files import atomic_write
from graphwalk.build.cluster import kmeans_level, label_level
from graphwalk.build.graphs import (
    KNN_BACKENDS,
    er_graph,
    knn_clusters_graph,
    knn_items_graph,
    walk_order,
)
from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.index.storage import MANIFEST, check_output
from graphwalk.index.types import Graph, Level
from graphwalk.progress import progress_bar, ticking
from graphwalk.validation import as_labels, as_vectors, check_int, check_real

__all__ = ["GRAPH_KINDS", "SEED_MAX", "build_index", "check_writable"]

GRAPH_KINDS = ("er", "knn-clusters", "knn")
SEED_MAX = 2**32 - 1  # pynndescent and NumPy seeds are 32-bit unsigned


def _names(what: str, value: object) -> tuple[str, ...]:
    """``graphs``/``groups``: one name or a sequence of names (a lone string is one name)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    kind = "graph kind" if what == "graphs" else "label set name"
    raise TypeError(
        f"{what} should be a {kind} or a list of them, but got {what}={value!r} "
        f"({type(value).__name__})"
    )


def _ignored(what: str, why: str) -> None:
    warnings.warn(f"{what} is ignored: this build has {why}", UserWarning, stacklevel=3)


def check_writable(out: Path) -> None:
    """Refuse an output whose directory cannot be written, before any work.

    Creates and removes a probe directory in ``out``'s parent (or, when the parent does not exist
    yet, in its nearest existing ancestor, where the parents would be created).

    Raises:
        InputError: naming the directory and the reason (permission, read-only file system, ...).
    """
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {out}: {parent} is not a directory")
    try:
        probe = tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=parent)
        os.rmdir(probe)
    except OSError as exc:
        raise InputError(
            f"cannot write {out}: {parent} is not writable ({exc.strerror or exc}); "
            "choose another --out"
        ) from exc


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
    graphs = _names("graphs", graphs)
    groups = _names("groups", groups)
    if out is not None:
        check_output(Path(out), overwrite)
        check_writable(Path(out))
    if metric not in ("l2", "cosine"):
        raise InputError(f"metric should be 'l2' or 'cosine', but got {metric!r}")
    if knn_backend not in KNN_BACKENDS:
        raise InputError(f"knn_backend should be one of {KNN_BACKENDS}, but got {knn_backend!r}")
    bad = [g for g in graphs if g not in GRAPH_KINDS]
    if bad:
        raise InputError(f"unknown graph kind {bad[0]!r}; choose from {GRAPH_KINDS}")
    k = check_int("k", k, minimum=1)
    recall_sample = check_int("recall_sample", recall_sample, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=SEED_MAX)
    if clusters is not None:
        clusters = check_int("clusters", clusters, minimum=1)
    if degree is not None:
        degree = check_real("degree", degree, low=0.0, low_open=True)
    if p is not None:
        p = check_real("p", p, low=0.0, high=1.0, low_open=True)
    if degree is not None and p is not None:
        raise InputError("give the ER graph's mean degree or its edge probability p, not both")
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
    if clusters is not None and clusters > n:
        raise InputError(f"cannot make {clusters} clusters from {n} items; use at most {n}")
    needs_level = [g for g in graphs if g in ("er", "knn-clusters")]
    if needs_level and clusters is None and not group_sets:
        raise InputError(
            f"graph {needs_level[0]!r} is built over clusters: give clusters=K "
            "(--clusters K) or groups=('labels',) (--groups labels)"
        )
    if "knn" in graphs and k >= n:
        raise InputError(
            f"k={k} neighbours asked for, but there are only {n} items; "
            f"k must be between 1 and {n - 1}"
        )
    planned = (["kmeans"] if clusters is not None else []) + [
        "labels" if g == "label" else g for g in group_sets
    ]
    if graph_level is not None:
        if graph_level not in planned:
            raise InputError(
                f"graph_level {graph_level!r} is not one of the levels this build makes "
                f"{planned} (--clusters makes 'kmeans', --groups NAME makes NAME)"
            )
        if not needs_level:
            _ignored(f"graph_level {graph_level!r}", "no cluster graph ('er', 'knn-clusters')")
    for pname, pval in (("degree", degree), ("p", p)):
        if pval is not None and "er" not in graphs:
            _ignored(f"{pname}={pval:g}", "no 'er' graph")

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

    bar = progress_bar(
        enabled=progress, total=len(steps), desc="graphwalk index", unit="step", leave=True
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
            with ticking(bar):  # one bar: the step's name and its elapsed time, kept moving
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
    if out is not None:
        _rewrite_manifest(Path(out), index.manifest)
    return index


def _rewrite_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest again, now that the write step's time and the total are known.

    The manifest is the last file ``GraphIndex.save`` writes, so the timings it holds could not
    include the write itself. ``manifest["build"]`` shares ``timings_s`` with the build, so only
    the file is behind. It is replaced atomically (:func:`~graphwalk._files.atomic_write`): a
    crash in between leaves the first, complete manifest, lacking only ``write`` and ``total``.
    """
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
