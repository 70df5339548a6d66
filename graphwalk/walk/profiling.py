"""What ``graphwalk bench`` measures: sampler throughput beside PyTorch's samplers, walk steps per
second, Numba compile time and memory, all in one run (compare ratios, not absolute times); and
what the batches are (:mod:`graphwalk.walk.homophily`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from graphwalk.build.graphs import er_graph, walk_order
from graphwalk.index.artifact import GraphIndex
from graphwalk.index.types import Graph, Level
from graphwalk.walk.homophily import (
    TENTHS,
    compare_lifts,
    homophily_by_tenth,
    homophily_table,
    profile_homophily,
)

__all__ = [
    "TENTHS",
    "compare_lifts",
    "homophily_by_tenth",
    "homophily_table",
    "profile_homophily",
    "profile_sampler",
    "synthetic_index",
    "walk_steps_per_second",
]


def synthetic_index(
    n_items: int, *, clusters: int | None = None, degree: int = 10, seed: int = 0
) -> GraphIndex:
    """An in-memory index without data: random clusters with an ER graph, and a random item graph
    with ``degree`` out-neighbours per item (the shape of a kNN graph), for profiling. Its
    arrays are read-only, like those of a loaded index."""
    rng = np.random.default_rng(seed)
    k = clusters or max(2, n_items // 1000)
    assign = rng.integers(0, k, n_items).astype(np.int32)
    assign[:k] = np.arange(k, dtype=np.int32)
    lv = Level(
        "kmeans",
        assign,
        np.zeros((k, 1), np.float32),
        np.arange(k, dtype=np.int64),
        "kmeans",
        "input",
    )
    er = er_graph(k, degree=min(10, k - 1), seed=seed, level="kmeans")
    indices = rng.integers(0, n_items, n_items * degree).astype(np.int32)
    indptr = np.arange(0, n_items * degree + 1, degree, dtype=np.int64)
    knn = Graph(
        "knn",
        "item",
        indptr,
        indices,
        np.ones(indices.size, np.float32),
        space="input",
        directed=True,
        params={"method": "synthetic", "k": degree},
    )
    knn.walk = walk_order(knn)  # as build_index does (breadth-first: random clusters mean nothing)
    w = knn.walk
    for arr in (assign, indices, indptr, knn.weights, er.indptr, er.indices, er.weights):
        arr.flags.writeable = False  # as in a loaded index (Numba specialises on it)
    for arr in (w.order, w.position, w.indptr, w.indices, w.weights):
        arr.flags.writeable = False
    return GraphIndex(n_items, levels={"kmeans": lv}, graphs={"er": er, "knn": knn})


def walk_steps_per_second(
    graph: Graph,
    *,
    n_walks: int = 100_000,
    length: int = 80,
    threads: int = 1,
    seed: int = 0,
    repeat: int = 3,
) -> float:
    """Million steps per second of :func:`graphwalk.kernels.random_walks` (best of ``repeat``)."""
    import numba

    from graphwalk.walk.kernels import random_walks

    rng = np.random.default_rng(seed)
    starts = rng.integers(0, graph.n_nodes, n_walks).astype(np.int64)
    out = np.empty((n_walks, length + 1), np.int32)
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        random_walks(graph.indptr, graph.indices, starts[:64], 2, seed, out[:64, :3])  # compile
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            random_walks(graph.indptr, graph.indices, starts, length, seed, out)
            best = min(best, time.perf_counter() - t0)
    finally:
        numba.set_num_threads(old)
    return n_walks * length / best / 1e6


class _Trivial(Dataset):  # type: ignore[type-arg]
    """A dataset whose items are their indices, with a batched fetch (``__getitems__``)."""

    def __init__(self, n: int) -> None:
        import torch

        self.data = torch.arange(n)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, i: int) -> Any:
        return self.data[i]

    def __getitems__(self, idx: list[int]) -> Any:
        return self.data[idx]


def _identity(batch: Any) -> Any:
    return batch


def _per_batch_us(make_iter: Any, epochs: int) -> tuple[float, int]:
    best = float("inf")
    n = 0
    for _ in range(epochs):
        t0 = time.perf_counter()
        n = sum(1 for _ in make_iter())
        best = min(best, time.perf_counter() - t0)
    return best / max(n, 1) * 1e6, n


def _compile_seconds() -> float | None:
    """Cold Numba compile of the sampler kernels, in a subprocess with an empty cache."""
    code = (
        "import time; t=time.perf_counter()\n"
        "from graphwalk.walk.profiling import synthetic_index\n"
        "from graphwalk.walk.sampler import GraphWalkBatchSampler\n"
        "idx = synthetic_index(5000)\n"
        "t0 = time.perf_counter()\n"
        "for g in ('er', 'knn'): list(GraphWalkBatchSampler(idx, 64, graph=g))\n"
        "print(time.perf_counter() - t0)\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        try:
            out = subprocess.run(
                [sys.executable, "-c", code],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
        except (subprocess.SubprocessError, OSError):
            return None
    return float(out.stdout.strip().splitlines()[-1])


def profile_sampler(
    index: GraphIndex,
    *,
    batch_size: int = 256,
    graphs: list[str] | None = None,
    epochs: int = 3,
    dataloader: bool = True,
    walks: bool = True,
    compile_time: bool = True,
    homophily: bool = True,
    homophily_epochs: int | None = None,
) -> dict[str, Any]:
    """Measure the samplers over ``index`` beside ``RandomSampler`` + ``BatchSampler``.

    With ``homophily`` and an index with labels, ``"homophily"`` holds, per profiled graph, the
    batches' label homophily per tenth of the epoch (``homophily_epochs`` epochs pooled; default:
    enough for about 500 batches per tenth, at most 100 epochs and 2M items), and on
    item graphs the reference walk's in the same process and the ratio of their lifts (see
    :func:`profile_homophily`): ``labels``, ``rows`` and ``checks``.
    """
    import torch
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler

    from graphwalk.walk.sampler import GraphWalkBatchSampler

    n = index.n_items
    batch_size = min(batch_size, n)
    ds = _Trivial(n)
    res: dict[str, Any] = {"n_items": n, "batch_size": batch_size, "rows": []}
    gen = torch.Generator().manual_seed(0)

    def torch_batches() -> Any:
        return iter(BatchSampler(RandomSampler(range(n), generator=gen), batch_size, False))

    us, nb = _per_batch_us(torch_batches, epochs)
    base: dict[str, Any] = {
        "sampler": "RandomSampler + BatchSampler",
        "us_per_batch": us,
        "batches": nb,
    }
    if dataloader:
        base["dataloader_us_per_batch"] = _per_batch_us(
            lambda: iter(
                DataLoader(
                    ds,
                    batch_sampler=BatchSampler(
                        RandomSampler(range(n), generator=gen), batch_size, False
                    ),
                    collate_fn=_identity,
                )
            ),
            epochs,
        )[0]
    res["rows"].append(base)
    for name in graphs or list(index.graphs):
        # a warm process: the kernels are compiled (or loaded from Numba's cache) for these very
        # arrays (loaded indexes are read-only, a separate specialization) and members are cached
        next(iter(GraphWalkBatchSampler(index, batch_size, graph=name)))
        t0 = time.perf_counter()
        tracemalloc.start()  # NumPy reports its allocations to tracemalloc; RSS would miss
        try:  # memory the allocator recycles from an earlier sampler
            s = GraphWalkBatchSampler(index, batch_size, graph=name)
            it = iter(s)
            next(it)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        first = time.perf_counter() - t0
        rest = sum(1 for _ in it)
        del rest
        us, nb = _per_batch_us(lambda s=s: iter(s), epochs)
        row: dict[str, Any] = {
            "sampler": f"GraphWalkBatchSampler ({name}, {index.graphs[name].kind})",
            "us_per_batch": us,
            "batches": nb,
            "first_batch_s": first,
            "bytes_per_item": peak / n,
            "speedup_vs_torch": float(base["us_per_batch"]) / us,
        }
        if dataloader:
            row["dataloader_us_per_batch"] = _per_batch_us(
                lambda s=s: iter(DataLoader(ds, batch_sampler=s, collate_fn=_identity)), epochs
            )[0]
        res["rows"].append(row)
    if homophily and index.labels:
        # enough batches per tenth for the lift ratios to be more than noise: about 500 pooled
        # (a small index pools epochs: at most 100, and at most 2M items walked; the 1M
        # benchmark at batch 256 is one epoch). Small lifts (weakly homophilous data) still
        # leave the ratio a few percent of noise.
        hom_epochs = homophily_epochs or max(
            1, min(100, -(-2_000_000 // n), -(-5000 * batch_size // n))
        )
        hom: dict[str, Any] = {"labels": None, "rows": [], "checks": [], "epochs": hom_epochs}
        for name in graphs or list(index.graphs):
            h = profile_homophily(index, name, batch_size=batch_size, epochs=hom_epochs)
            if h is None:  # no labels
                continue
            hom["labels"] = h["labels"]
            hom["rows"] += h["rows"]
            hom["checks"] += h.get("checks", [])
        res["homophily"] = hom
    if walks:
        items = [gr for gr in index.graphs.values() if gr.kind == "item"]
        walk_graph = items[0] if items else next(iter(index.graphs.values()))
        res["walk_graph"] = walk_graph.name
        res["walk_msteps_per_s_1_thread"] = walk_steps_per_second(walk_graph)
    if compile_time:
        res["numba_compile_s"] = _compile_seconds()
    return res
