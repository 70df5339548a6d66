"""Benchmark data: synthetic clustered vectors with labels, the 1,000,000-item benchmark index
with a real kNN item graph (built once, cached under ``bench/.cache/``), and scikit-learn digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphwalk import GraphIndex, build_index

CACHE = Path(__file__).resolve().parent / ".cache"


def clustered_vectors(
    n: int, dim: int = 64, centers: int = 1000, *, spread: float = 1.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors around ``centers`` random directions, normalised; labels are the centre ids.

    ``spread=1.2`` is calibrated so pynndescent on 100,000 x 64 lands near the figures of ../shared/ANCHORS.md (its
    recall rises steeply from 11 to 30 candidates), not on trivially separable blobs.

    Generated in blocks so the float64 temporaries stay small.
    """
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    y = rng.integers(0, centers, size=n)
    x = np.empty((n, dim), np.float32)
    block = 200_000
    for s in range(0, n, block):
        e = min(n, s + block)
        noise = rng.standard_normal((e - s, dim), dtype=np.float32) * (spread / np.sqrt(dim))
        v = c[y[s:e]] + noise
        x[s:e] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return x, y.astype(np.int64)


def benchmark_index(
    n: int = 1_000_000, *, k: int = 10, cache: Path | None = None, progress: bool = True
) -> GraphIndex:
    """The benchmark index: ``n`` x 64 :func:`clustered_vectors` (labels = centre ids), 1,000
    k-means clusters, an ``er`` cluster graph and a ``knn`` item graph (nndescent, ``k``).

    Built once (about 2 minutes at 1,000,000 items on 2 cores) into
    ``bench/.cache/clustered-N-kK.gw`` (written atomically by ``build_index``), loaded from
    there afterwards.
    """
    path = (cache or CACHE) / f"clustered-{n}-k{k}.gw"
    if not path.exists():
        x, y = clustered_vectors(n)
        path.parent.mkdir(parents=True, exist_ok=True)
        build_index(
            x,
            labels=y,
            clusters=1000,
            graphs=["er", "knn"],
            k=k,
            seed=0,
            out=path,
            progress=progress,
        )
    index = GraphIndex.load(path)
    if any(g.kind == "item" and g.walk is None for g in index.graphs.values()):
        # cached by a graphwalk that stored no walk order: add it (same kNN graph), save again
        from graphwalk.build.graphs import walk_order

        for g in index.graphs.values():
            if g.kind == "item" and g.walk is None:
                g.walk = walk_order(g, index.levels["kmeans"].assignment)
        index.save(path, overwrite=True)
        index = GraphIndex.load(path)
    return index


def digits_index(*, k: int = 10, seed: int = 0) -> GraphIndex:
    """scikit-learn's digits (1,797 x 64, labels 0-9) indexed in memory: 40 k-means clusters,
    an ``er`` cluster graph and a ``knn`` item graph with ``k`` neighbours."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return build_index(
        d.data.astype(np.float32),
        labels=d.target,
        clusters=40,
        graphs=["er", "knn"],
        k=k,
        seed=seed,
    )
