"""The data types the index artifact holds: levels of clusters, graphs in CSR form, and the walk
order of an item graph. The builder makes them, the index stores and loads them, the samplers
read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Graph", "Level", "WalkOrder"]


@dataclass
class Level:
    """One cluster assignment of all items.

    Attributes:
        name: the level's name in the index (``"kmeans"``, ``"labels"``, ...).
        assignment: ``(n_items,)`` int32, the cluster of each item, in ``[0, n_clusters)``.
        centroids: ``(n_clusters, dim)`` float32, the mean (k-means: the centroid) of each cluster.
        values: ``(n_clusters,)`` int64, the label value a label group stands for (k-means: the
            cluster id itself).
        source: ``"kmeans"`` or ``"labels"``.
        space: the vector space (``"input"`` or a layer name) the centroids live in.
        params: how the level was built (stored in the manifest).
    """

    name: str
    assignment: npt.NDArray[np.int32]
    centroids: npt.NDArray[np.float32]
    values: npt.NDArray[np.int64]
    source: str
    space: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def sizes(self) -> npt.NDArray[np.int64]:
        return np.bincount(self.assignment, minlength=self.n_clusters).astype(np.int64)


@dataclass
class WalkOrder:
    """An item graph renumbered for walking: nodes close in the graph get close numbers, so a
    breadth-first batch reads a few contiguous stretches of memory instead of scattered ones.

    Node ``v`` of ``indptr``/``indices``/``weights`` is item ``order[v]``; ``position[i]`` is the
    node of item ``i``. Built by :func:`walk_order`, stored in the index beside the graph.

    Attributes:
        order, position: int32 permutations, inverse of each other.
        indptr, indices, weights: the graph in the new numbering (same rows, same edges).
        method: how the order was made (``"cluster-bfs"`` or ``"bfs"``).
    """

    order: npt.NDArray[np.int32]
    position: npt.NDArray[np.int32]
    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int32]
    weights: npt.NDArray[np.float32]
    method: str


@dataclass
class Graph:
    """A named graph in CSR form.

    Attributes:
        name: its name in the index (``"er"``, ``"knn"``, ``"knn@layer1"``...).
        kind: ``"cluster"`` (nodes are the clusters of ``level``) or ``"item"`` (nodes are items).
        indptr, indices, weights: the CSR arrays.
        level: for cluster graphs, the level whose clusters are the nodes.
        space: for item graphs, the vector space the neighbours were found in.
        directed: whether an edge u→v may lack its v→u twin (kNN graphs are directed).
        params: how it was built (method, degree, recall, ...), stored in the manifest.
        walk: item graphs: the same graph in a locality order (:class:`WalkOrder`) that the
            samplers walk, or ``None`` (they then walk it in item numbering).
    """

    name: str
    kind: str
    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int32]
    weights: npt.NDArray[np.float32]
    level: str | None = None
    space: str | None = None
    directed: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    walk: WalkOrder | None = field(default=None, repr=False)

    @property
    def n_nodes(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def n_edges(self) -> int:
        return int(self.indices.shape[0])

    @property
    def degrees(self) -> npt.NDArray[np.int64]:
        return np.diff(self.indptr)

    def describe(self) -> dict[str, Any]:
        """What the manifest and ``graphwalk inspect`` say about the graph."""
        return {
            "kind": self.kind,
            "level": self.level,
            "space": self.space,
            "directed": self.directed,
            "n_nodes": self.n_nodes,
            "n_edges": self.n_edges,
            "params": self.params,
        }

    def neighbors(self, node: int) -> npt.NDArray[np.int32]:
        return self.indices[self.indptr[node] : self.indptr[node + 1]]

    def to_scipy(self) -> Any:
        import scipy.sparse as sp

        return sp.csr_matrix((self.weights, self.indices, self.indptr), shape=(self.n_nodes,) * 2)
