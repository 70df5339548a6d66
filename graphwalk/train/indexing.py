"""The index a run walks: checked against the dataset, built with defaults for the run, or built
from the model's own activations and refreshed as the model learns."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.build.activations import capture_activations
from graphwalk.build.builder import build_index
from graphwalk.datasets import VectorDataset
from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex

__all__ = [
    "activation_index",
    "check_index",
    "check_spec_graph",
    "default_clusters",
    "default_index",
    "derived_parents",
    "episode_index",
    "graph_homophily",
    "own_graphs",
    "vector_index",
]


def own_graphs(layers: Sequence[str]) -> list[str]:
    """The graphs of the index a run builds itself: ``er`` and ``knn`` over its inputs, or with
    activation ``layers`` ``er`` and one kNN graph per layer (``knn`` for one layer,
    ``knn@LAYER`` for several), as :func:`activation_index` names them."""
    if not layers:
        return ["er", "knn"]
    return ["er", *(["knn"] if len(layers) == 1 else [f"knn@{x}" for x in layers])]


def check_spec_graph(spec: Any, graphs: Sequence[str], where: str) -> None:
    """Refuse a sampler spec whose walk names a graph ``where`` lacks (random needs none)."""
    if spec.graph is not None and spec.graph not in graphs:
        raise InputError(
            f"sampler {str(spec)!r}: {where} has no graph {spec.graph!r}; choose random or a "
            f"walk on one of: {', '.join(graphs)}"
        )


def default_clusters(n_items: int) -> int:
    """k-means clusters of a run's own index: one per 100 items, at least 2, at most 1,000."""
    return max(2, min(1000, n_items // 100))


def check_index(index: GraphIndex, dataset: str, n_items: int, path: str) -> None:
    """Refuse an index built for another dataset or split (item count and the manifest's record of
    the dataset it was built from)."""
    built_for = index.build_params.get("dataset")
    split = index.build_params.get("split", "train")
    if built_for is not None and (built_for != dataset or split != "train"):
        raise InputError(
            f"index {path} was built for {built_for!r} ({split} split), not for the train split "
            f"of {dataset!r}; build one with graphwalk index --dataset {dataset} --out NAME.gw, or leave "
            "--index out to build one for the run"
        )
    if index.n_items != n_items:
        raise InputError(
            f"index {path} has {index.n_items:,} items but the train split of {dataset!r} has "
            f"{n_items:,}; it was built for other data: rebuild it with graphwalk index "
            f"--dataset {dataset}, or leave --index out"
        )


def default_index(
    train: VectorDataset,
    out: Path,
    *,
    clusters: int | None,
    k: int,
    seed: int,
    graphs: Sequence[str] = ("er", "knn"),
) -> GraphIndex:
    """The index a run builds when none is given: k-means on the raw inputs, an ER graph over the
    clusters and an exact kNN graph over the items (reproducible for a seed), written to ``out``."""
    n = len(train)
    return build_index(
        train.features,
        labels=train.labels,
        clusters=clusters or default_clusters(n),
        graphs=list(graphs),
        k=min(k, n - 1),
        knn_backend="exact",
        seed=seed,
        out=out,
        overwrite=True,
        extra_params={"dataset": train.name, "split": "train"},
    )


def activation_index(
    model: Any,
    train: VectorDataset,
    layers: Sequence[str],
    out: Path,
    *,
    clusters: int | None,
    k: int,
    seed: int,
    device: Any = None,
) -> tuple[GraphIndex, dict[str, float]]:
    """Index the model's activations at ``layers`` (one kNN graph per layer, ``knn`` for one
    layer, ``knn@LAYER`` for several; k-means and an ER graph over the first layer's vectors),
    written to ``out``. Returns the index and the seconds spent capturing and building."""
    t0 = time.perf_counter()
    inputs = train.inputs if device is None else train.inputs.to(device)
    acts = capture_activations(model, inputs, list(layers))
    t1 = time.perf_counter()
    index = vector_index(
        acts, train, out, clusters=clusters, k=k, seed=seed, extra={"layers": list(layers)}
    )
    t2 = time.perf_counter()
    return index, {"activations_s": t1 - t0, "build_s": t2 - t1, "seconds": t2 - t0}


def vector_index(
    vectors: npt.NDArray[np.float32] | dict[str, npt.NDArray[np.float32]],
    train: VectorDataset,
    out: Path,
    *,
    clusters: int | None,
    k: int,
    seed: int,
    extra: dict[str, Any] | None = None,
) -> GraphIndex:
    """The index of a run's own item vectors (activations, gradient sketches, learned vectors;
    ``{space: vectors}`` for several): k-means and an ER graph over the first space, an exact
    kNN graph over each (reproducible for a seed), written to ``out``."""
    named = vectors if isinstance(vectors, dict) else {"vectors": vectors}
    checked = {name: _finite(name, v) for name, v in named.items()}
    n = len(train)
    return build_index(
        checked if isinstance(vectors, dict) else checked["vectors"],
        labels=train.labels,
        clusters=clusters or default_clusters(n),
        graphs=["er", "knn"],
        k=min(k, n - 1),
        knn_backend="exact",
        seed=seed,
        out=out,
        overwrite=True,
        extra_params={"dataset": train.name, "split": "train", **(extra or {})},
    )


def _finite(name: str, v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``v`` when every value is finite and the items differ (``name``: the layer, or
    ``vectors`` for gradient and learned vectors)."""
    where = "the item vectors" if name == "vectors" else f"layer {name!r}"
    if not np.isfinite(v).all():
        raise InputError(f"{where} produced non-finite values (the model diverged?); lower --lr")
    if float(np.ptp(v)) == 0.0:
        fix = "choose another --layers module" if name != "vectors" else "lower --lr"
        raise InputError(f"{where} are the same for every item (a dead layer?); {fix}")
    return v


def graph_homophily(index: GraphIndex, label: str = "label") -> dict[str, dict[str, float]]:
    """Label homophily of each graph's communities (node + neighbours) against random pairs."""
    from graphwalk.index.stats import index_stats

    stats = index_stats(index)
    out: dict[str, dict[str, float]] = {}
    for name, g in stats.get("graphs", {}).items():
        h = g.get("homophily", {}).get(label)
        if h is not None:
            out[name] = {"homophily": h["community"], "random": h["random"], "lift": h["lift"]}
    return out


def remove_index(path: Path) -> None:
    """Delete an index directory the run made (only if it is one)."""
    if (path / "manifest.json").is_file():
        shutil.rmtree(path, ignore_errors=True)


def derived_parents(
    features: npt.ArrayLike, labels: npt.ArrayLike, n_way: int, *, n_parents: int | None = None
) -> npt.NDArray[np.int64]:
    """A coarser level derived from the classes' own geometry, for ``episodes:within=parent`` on
    data without a class hierarchy: the class means merged by Ward's agglomerative clustering into
    ``max(2, classes // (2 * n_way))`` parents (about twice ``n_way`` classes each, so that a
    parent keeps ``n_way`` classes when a split holds half of them out), or ``n_parents``.
    Returns each item's parent."""
    from sklearn.cluster import AgglomerativeClustering

    y = np.asarray(labels)
    values, inverse = np.unique(y, return_inverse=True)
    x = np.asarray(features, np.float64)
    sums = np.zeros((values.size, x.shape[1]))
    np.add.at(sums, inverse, x)
    means = sums / np.bincount(inverse)[:, None]
    if n_parents is None:
        n_parents = max(2, values.size // (2 * n_way))
    if values.size <= n_parents:
        return np.zeros(y.size, np.int64)
    parent = AgglomerativeClustering(n_clusters=n_parents, linkage="ward").fit_predict(means)
    return np.asarray(parent, np.int64)[inverse]


def episode_index(
    train: VectorDataset,
    out: Path,
    *,
    classes: str,
    level: str,
    n_way: int,
    clusters: int | None,
    seed: int,
) -> GraphIndex:
    """The index an ``episodes`` run builds: the classes trained on as level ``labels`` (the
    dataset's other label sets as their own levels), a ``parent`` level derived from the class
    means (:func:`derived_parents`), k-means clusters when ``level`` is ``kmeans`` (unsupervised
    episodes, as CACTUs), and a ``knn-clusters`` graph over ``level`` linking each class to its
    ``n_way - 1`` nearest (for ``episodes:walk``), written to ``out``."""
    y = train.labels[classes]
    labels = {"label": y, **{k: v for k, v in train.labels.items() if k not in ("label", classes)}}
    labels["parent"] = derived_parents(train.features, y, n_way)
    n = len(train)
    k_means = (clusters or default_clusters(n)) if level == "kmeans" else None
    n_classes = k_means if k_means is not None else int(np.unique(y).size)
    return build_index(
        train.features,
        labels=labels,
        groups=["labels"],
        clusters=k_means,
        graphs=["knn-clusters"],
        graph_level=level,
        k=max(1, min(n_way - 1, n_classes - 1)),
        seed=seed,
        out=out,
        overwrite=True,
        extra_params={"dataset": train.name, "split": "train"},
    )
