"""Cluster assignments ("levels"): k-means with faiss, or groups given by labels.

An index can hold several levels over the same items (fine k-means clusters, label groups, CIFAR-100
superclasses), so that later features can walk a hierarchy.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.index.types import Level
from graphwalk.validation import check_int

__all__ = ["kmeans_level", "label_level"]


def _means(
    x: npt.NDArray[np.float32], assign: npt.NDArray[np.int32], k: int
) -> npt.NDArray[np.float32]:
    sums = np.zeros((k, x.shape[1]), dtype=np.float64)
    np.add.at(sums, assign, x)
    counts = np.bincount(assign, minlength=k).astype(np.float64)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


def kmeans_level(
    x: npt.NDArray[np.float32],
    n_clusters: int,
    *,
    seed: int = 0,
    niter: int = 20,
    max_points_per_centroid: int = 256,
    name: str = "kmeans",
    space: str = "input",
    spherical: bool = False,
    verbose: bool = False,
) -> Level:
    """Cluster ``x`` with faiss k-means (seeded, deterministic for a seed and a thread count).

    faiss trains on a subsample of ``max_points_per_centroid * n_clusters`` points (its default,
    within 0.7% of the objective on all points for 1,000 clusters of 1M x 384 in our measurements), then every item is assigned to its
    nearest centroid. Clusters left empty by the final assignment are dropped and the rest
    renumbered (reported in ``params["dropped_empty"]`` and as a warning).

    Raises:
        InputError: fewer items than clusters, or all vectors identical (with ``n_clusters > 1``).
    """
    import faiss

    n, d = x.shape
    check_int("clusters", n_clusters, minimum=1)
    if n < n_clusters:
        raise InputError(
            f"cannot make {n_clusters} clusters from {n} items; use --clusters {max(1, n // 10)} "
            f"or fewer (at most the number of items)"
        )
    if n_clusters > 1 and n > 0 and not (x != x[0]).any():
        raise InputError(
            f"all {n} vectors are identical (constant input: check the file or the column), so "
            f"k-means cannot make {n_clusters} clusters from them"
        )
    km = faiss.Kmeans(
        d,
        int(n_clusters),
        niter=niter,
        seed=int(seed) % (2**31),
        verbose=verbose,
        spherical=spherical,
        max_points_per_centroid=max_points_per_centroid,
        # faiss prints "WARNING clustering N points to K centroids: please provide at least ..."
        # from C++ straight to stderr below 39 points per centroid; few points per cluster is a
        # legitimate choice here, and a raw C++ line cannot be caught or formatted.
        min_points_per_centroid=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km.train(x)
    _, assign2d = km.index.search(x, 1)
    assign = assign2d[:, 0].astype(np.int64)
    counts = np.bincount(assign, minlength=n_clusters)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        warnings.warn(
            f"k-means left {empty.size} of {n_clusters} clusters empty (too few distinct vectors?); "
            "they were dropped and the rest renumbered",
            stacklevel=2,
        )
        remap = np.cumsum(counts > 0) - 1
        assign = remap[assign]
    k = int((counts > 0).sum())
    assert km.centroids is not None  # set by train()
    obj = list(km.obj) if km.obj is not None else []
    assignment = assign.astype(np.int32)
    centroids = np.ascontiguousarray(km.centroids[counts > 0], dtype=np.float32)
    params = {
        "method": "faiss-kmeans",
        "clusters": int(n_clusters),
        "niter": niter,
        "seed": int(seed),
        "max_points_per_centroid": max_points_per_centroid,
        "spherical": spherical,
        "dropped_empty": int(empty.size),
        "objective": float(obj[-1]) if obj else None,
    }
    return Level(name, assignment, centroids, np.arange(k, dtype=np.int64), "kmeans", space, params)


def label_level(
    x: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    *,
    name: str = "labels",
    space: str = "input",
) -> Level:
    """One cluster per distinct label value, numbered in sorted order of the values."""
    values, assign = np.unique(labels, return_inverse=True)
    assignment = assign.astype(np.int32).reshape(-1)
    centroids = _means(x, assignment, values.size)
    return Level(
        name,
        assignment,
        centroids,
        values.astype(np.int64),
        "labels",
        space,
        {"method": "labels", "clusters": int(values.size)},
    )
