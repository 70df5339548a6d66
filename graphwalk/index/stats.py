"""Statistics of an index (sizes, degrees, components, homophily) and its overview plot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk._extras import require
from graphwalk._files import atomic_save
from graphwalk.homophily import homophily
from graphwalk.index.artifact import GraphIndex
from graphwalk.index.types import Graph, Level

__all__ = ["index_stats", "plot_index"]


def _summary(x: npt.NDArray[Any]) -> dict[str, float]:
    if x.size == 0:
        return {"min": 0, "median": 0, "mean": 0, "max": 0}
    return {
        "min": float(x.min()),
        "median": float(np.median(x)),
        "mean": round(float(x.mean()), 4),
        "max": float(x.max()),
    }


def _pair_rate(h: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per row of a (communities × labels) count matrix: same-label pairs and all pairs."""
    h = h.tocsr().astype(np.float64)
    same = np.asarray(h.multiply(h).sum(axis=1)).ravel() - np.asarray(h.sum(axis=1)).ravel()
    tot = np.asarray(h.sum(axis=1)).ravel()
    return same, tot * (tot - 1)


def _random_rate(y: npt.NDArray[np.int64]) -> float:
    """The random level: the homophily of the whole dataset (NaN without two items)."""
    h = homophily(y)
    return float("nan") if h is None else h


def _homophily(comm: Any, member_labels: Any, y: npt.NDArray[np.int64]) -> dict[str, float]:
    same, pairs = _pair_rate(comm @ member_labels)
    ok = pairs > 0
    within = float((same[ok] / pairs[ok]).mean()) if ok.any() else 0.0
    rnd = _random_rate(y)
    return {
        "community": round(within, 5),
        "random": round(rnd, 5),
        "lift": round(within / rnd, 4) if rnd > 0 else float("nan"),
    }


def _onehot(y: npt.NDArray[np.int64]) -> Any:
    import scipy.sparse as sp

    _, inv = np.unique(y, return_inverse=True)
    inv = inv.reshape(-1)
    return sp.csr_matrix(
        (np.ones(y.size), (np.arange(y.size), inv)), shape=(y.size, int(inv.max()) + 1)
    )


def _graph_stats(index: GraphIndex, g: Graph) -> dict[str, Any]:
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    deg = g.degrees
    adj = sp.csr_matrix((np.ones(g.n_edges), g.indices, g.indptr), shape=(g.n_nodes,) * 2)
    n_comp, comp = connected_components(adj, directed=True, connection="weak")
    indeg = np.bincount(g.indices, minlength=g.n_nodes)
    out: dict[str, Any] = {
        **g.describe(),
        "degree": _summary(deg),
        "isolated_nodes": int(((deg == 0) & (indeg == 0)).sum()),
        "components": int(n_comp),
        "largest_component": int(np.bincount(comp).max()),
    }
    if g.directed:
        out["in_degree"] = _summary(indeg)
    comm = adj + sp.identity(g.n_nodes, format="csr")
    comm.data[:] = 1.0
    hom = {}
    for name, y in index.labels.items():
        if g.kind == "item":
            hom[name] = _homophily(comm, _onehot(y), y)
        elif g.level is not None:
            lv = index.levels[g.level]
            counts = sp.csr_matrix(
                (np.ones(y.size), (lv.assignment, np.arange(y.size))), shape=(lv.n_clusters, y.size)
            ) @ _onehot(y)
            hom[name] = _homophily(comm, counts, y)
    if hom:
        out["homophily"] = hom
    return out


def index_stats(index: GraphIndex) -> dict[str, Any]:
    """Everything ``graphwalk inspect`` reports, as a JSON-ready dict.

    Homophily: how often two items of one community share a label, against two random items.
    A cluster level's community is one cluster; a graph's community is a node and its neighbours
    (for cluster graphs, all items of those clusters), averaged over nodes.
    """
    import scipy.sparse as sp

    levels: dict[str, Any] = {}
    for name, lv in index.levels.items():
        sizes = lv.sizes
        entry: dict[str, Any] = {
            "source": lv.source,
            "space": lv.space,
            "n_clusters": lv.n_clusters,
            "size": _summary(sizes),
            "empty": int((sizes == 0).sum()),
            "params": lv.params,
        }
        hom = {}
        for lname, y in index.labels.items():
            counts = sp.csr_matrix(
                (np.ones(y.size), (lv.assignment, np.arange(y.size))), shape=(lv.n_clusters, y.size)
            ) @ _onehot(y)
            hom[lname] = _homophily(sp.identity(lv.n_clusters, format="csr"), counts, y)
        if hom:
            entry["homophily"] = hom
        levels[name] = entry
    return {
        "path": str(index.path) if index.path else None,
        "format_version": index.manifest.get("format_version"),
        "graphwalk_version": index.manifest.get("graphwalk_version"),
        "n_items": index.n_items,
        "spaces": index.spaces,
        "labels": {k: int(np.unique(v).size) for k, v in index.labels.items()},
        "levels": levels,
        "graphs": {name: _graph_stats(index, g) for name, g in index.graphs.items()},
    }


def plot_index(index: GraphIndex, path: str | os.PathLike[str]) -> Path:
    """Save a PNG with cluster sizes, degree distributions and a 2-D map of centroids and edges."""
    matplotlib = require("matplotlib", "graphwalk inspect --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    out = Path(path)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axes[0]
    for name, level in index.levels.items():
        ax.hist(level.sizes, bins=min(50, max(5, level.n_clusters // 2)), alpha=0.6, label=name)
    ax.set(title="cluster sizes", xlabel="items per cluster", ylabel="clusters")
    if index.levels:
        ax.legend()
    ax = axes[1]
    for name, g in index.graphs.items():
        deg = g.degrees if not g.directed else np.bincount(g.indices, minlength=g.n_nodes)
        ax.hist(
            deg,
            bins=np.arange(int(deg.max(initial=0)) + 2) - 0.5,
            alpha=0.6,
            label=f"{name} ({'in-' if g.directed else ''}degree)",
            density=True,
        )
    ax.set(title="degree distribution", xlabel="degree", ylabel="fraction of nodes")
    if index.graphs:
        ax.legend()
    ax = axes[2]
    cluster_graphs = [g for g in index.graphs.values() if g.kind == "cluster" and g.level]
    lv: Level | None = None
    if cluster_graphs and cluster_graphs[0].level is not None:
        lv = index.levels[cluster_graphs[0].level]
    elif index.levels:
        lv = next(iter(index.levels.values()))
    if lv is not None and lv.n_clusters >= 2:
        c = lv.centroids - lv.centroids.mean(axis=0)
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        xy = c @ vt[:2].T if vt.shape[0] >= 2 else np.column_stack([c @ vt[0], np.zeros(len(c))])
        if cluster_graphs:
            g = cluster_graphs[0]
            src = np.repeat(np.arange(g.n_nodes), g.degrees)
            segs = np.stack([xy[src], xy[g.indices]], axis=1)
            ax.add_collection(LineCollection(list(segs), colors="0.6", linewidths=0.4, alpha=0.5))
        sc = ax.scatter(
            xy[:, 0],
            xy[:, 1],
            s=8 + 60 * lv.sizes / max(1, lv.sizes.max()),
            c=np.arange(lv.n_clusters),
            cmap="tab20",
            zorder=2,
        )
        del sc
        title = f"centroids of {lv.name!r} (PCA)" + (
            f", edges of {cluster_graphs[0].name!r}" if cluster_graphs else ""
        )
        ax.set(title=title, xlabel="PC 1", ylabel="PC 2")
    else:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no cluster level", ha="center")
    fig.suptitle(
        f"graphwalk index: {index.n_items:,} items"
        + (f" — {index.path.name}" if index.path else "")
    )
    fig.tight_layout()
    try:
        atomic_save(out, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)
    return out
