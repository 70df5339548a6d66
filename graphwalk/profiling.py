"""What ``graphwalk bench`` measures: sampler throughput beside PyTorch's samplers, walk steps per
second, Numba compile time and memory, all in one run (compare ratios, not absolute times); and
what the batches are: label homophily per tenth of an epoch, beside the reference walk's."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from torch.utils.data import Dataset

from graphwalk.benchmark import Table
from graphwalk.cluster import Level
from graphwalk.graphs import Graph, er_graph
from graphwalk.index import GraphIndex

__all__ = [
    "compare_lifts",
    "homophily_by_tenth",
    "homophily_table",
    "profile_homophily",
    "profile_sampler",
    "synthetic_index",
    "walk_steps_per_second",
]

TENTHS = 10


def homophily_by_tenth(
    batches: Sequence[Sequence[int] | npt.NDArray[np.integer]], labels: npt.ArrayLike
) -> dict[str, Any]:
    """Label homophily of an epoch's batches, per tenth of the epoch, against random batches.

    A batch's homophily is the share of same-label pairs among its pairs (batches of one item have
    no pairs and are skipped). A batch belongs to tenth ``floor(10 * (items before it + size / 2) /
    total items)`` (0-based). The random level is the same share for a uniformly random batch of
    the walked items, ``sum_c n_c (n_c - 1) / (n (n - 1))``; the lift is homophily minus it.

    Args:
        batches: the epoch's batches of item ids, in order.
        labels: one int label per item id.

    Returns:
        ``tenths`` (mean batch homophily per tenth, ``None`` where a tenth has no batch of two or
        more items), ``lift`` (the same minus ``random``), ``batches`` (counted batches per tenth),
        ``random``, ``overall`` (mean over all counted batches), ``overall_lift``, ``n_items`` and
        ``n_batches``.
    """
    y = np.asarray(labels)
    sizes = [len(b) for b in batches]
    total = sum(sizes)
    sums = [0.0] * TENTHS
    counts = [0] * TENTHS
    before = 0
    for b, m in zip(batches, sizes, strict=True):
        # floor(10 * (before + m / 2) / total) in integers
        tenth = min(TENTHS - 1, (2 * TENTHS * before + TENTHS * m) // (2 * total))
        before += m
        if m < 2:
            continue
        n_c = np.unique(y[np.asarray(b, dtype=np.int64)], return_counts=True)[1]
        sums[tenth] += float((n_c * (n_c - 1)).sum()) / (m * (m - 1))
        counts[tenth] += 1
    walked = np.concatenate([np.zeros(0, np.int64), *(np.asarray(b, np.int64) for b in batches)])
    n_c = np.unique(y[walked], return_counts=True)[1].astype(np.float64)
    n = float(total)
    rand = float((n_c * (n_c - 1)).sum() / (n * (n - 1))) if total > 1 else float("nan")
    tenths = [s / c if c else None for s, c in zip(sums, counts, strict=True)]
    overall = sum(sums) / sum(counts) if sum(counts) else None
    return {
        "tenths": tenths,
        "lift": [None if h is None else h - rand for h in tenths],
        "batches": counts,
        "random": rand,
        "overall": overall,
        "overall_lift": None if overall is None else overall - rand,
        "n_items": total,
        "n_batches": len(sizes),
    }


def compare_lifts(
    ours: dict[str, Any], reference: dict[str, Any], *, target: float = 0.9
) -> dict[str, Any]:
    """Compare two :func:`homophily_by_tenth` results: ``ours``'s lift over random as a share of
    ``reference``'s, per tenth.

    The target is met when, in every tenth but the last (the 10th) where both have batches,
    ``ours``'s lift is at least ``target`` times the reference's. A tenth where the reference has
    no lift (``<= 0``) has no ratio (``None``) and counts as met.

    Returns:
        ``ratio`` per tenth (``None`` where empty or undefined), ``met`` per tenth (``None`` where
        empty), ``target`` and ``all_met`` (over the tenths checked).
    """
    ratio: list[float | None] = []
    met: list[bool | None] = []
    for a, r in zip(ours["lift"], reference["lift"], strict=True):
        if a is None or r is None:
            ratio.append(None)
            met.append(None)
        elif r <= 0:
            ratio.append(None)
            met.append(True)
        else:
            ratio.append(a / r)
            met.append(a >= target * r - 1e-12)  # a ratio of exactly ``target`` is met
    checked = [m for m in met[: TENTHS - 1] if m is not None]
    return {"ratio": ratio, "met": met, "target": target, "all_met": bool(checked) and all(checked)}


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
    for arr in (assign, indices, indptr, knn.weights, er.indptr, er.indices, er.weights):
        arr.flags.writeable = False  # as in a loaded index (Numba specialises on it)
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

    from graphwalk.kernels import random_walks

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
        "from graphwalk.profiling import synthetic_index\n"
        "from graphwalk.sampler import GraphWalkBatchSampler\n"
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


def homophily_table(hom: dict[str, Any], title: str) -> Table:
    """The ``"homophily"`` part of :func:`profile_sampler` as a table: one row per walk with its
    mean batch homophily in tenths 1-10 of the epoch, the random level and the mean over the
    epoch; then, per item graph, the ratio of the sampler's lift over random to the reference's,
    and whether the target is met (:func:`compare_lifts`)."""
    t = Table(title, ["walk", *(str(i + 1) for i in range(TENTHS)), "random", "epoch", "seconds"])

    def cell(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    for r in hom["rows"]:
        t.add(
            r["sampler"],
            *(cell(h) for h in r["tenths"]),
            cell(r["random"]),
            cell(r["overall"]),
            f"{r['seconds']:.3f}",
        )
    for c in hom["checks"]:
        t.add(
            f"lift / reference lift ({c['graph']}, {c['reference']} move)",
            *("-" if v is None else f"{v:.2f}" for v in c["ratio"]),
            "",
            f">= {c['target']:.2f} in 1-{TENTHS - 1}: {'yes' if c['all_met'] else 'NO'}",
            "",
        )
    t.notes.append(
        f"homophily: share of same-{hom['labels']!r} pairs in a batch, averaged over the batches "
        "of each tenth of the epoch; random: the same share for uniformly random batches; lift: "
        "homophily - random"
    )
    return t


def _pooled(results: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`homophily_by_tenth` of several epochs as one: per tenth, the mean over all their
    batches; the random level and the totals averaged over the epochs."""
    if len(results) == 1:
        return results[0]
    counts = [sum(r["batches"][t] for r in results) for t in range(TENTHS)]
    tenths = [
        sum(r["tenths"][t] * r["batches"][t] for r in results if r["batches"][t]) / c if c else None
        for t, c in enumerate(counts)
    ]
    rand = float(np.mean([r["random"] for r in results]))
    n_counted = sum(counts)
    overall = (
        sum(h * c for h, c in zip(tenths, counts, strict=True) if h is not None) / n_counted
        if n_counted
        else None
    )
    return {
        "tenths": tenths,
        "lift": [None if h is None else h - rand for h in tenths],
        "batches": counts,
        "random": rand,
        "overall": overall,
        "overall_lift": None if overall is None else overall - rand,
        "n_items": float(np.mean([r["n_items"] for r in results])),
        "n_batches": float(np.mean([r["n_batches"] for r in results])),
        "epochs": len(results),
    }


def profile_homophily(
    index: GraphIndex,
    graph: str,
    *,
    batch_size: int = 256,
    labels: str | None = None,
    epochs: int = 1,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Label homophily per tenth of an epoch (:func:`homophily_by_tenth`) of the walk sampler over
    ``graph`` and, on an item graph, of the reference walk
    (:func:`graphwalk.reference.reference_item_batches`, once per ROOT ``move``) given the same
    batch sizes, with the ratio of their lifts over random (:func:`compare_lifts`).

    Args:
        index: an index with labels (``None`` is returned without).
        graph: the graph walked.
        batch_size: as for :class:`~graphwalk.GraphWalkBatchSampler` (``mix=0``, no restart).
        labels: the label set (default ``"label"`` if present, else the first).
        epochs: epochs pooled per tenth (epochs ``0..epochs-1`` of the sampler with ``seed``, the
            reference with seeds ``seed..seed+epochs-1``).

    Returns:
        ``labels``, ``rows`` (one per walk: ``sampler``, ``graph``, ``seconds`` spent walking its
        epochs, the reference's ``move``, and the figures of :func:`homophily_by_tenth`) and, on
        item graphs, ``checks`` (per reference move, :func:`compare_lifts` of the sampler
        against it, with ``graph`` and ``reference``).
    """
    from graphwalk.reference import MOVES, reference_item_batches
    from graphwalk.sampler import GraphWalkBatchSampler

    if not index.labels:
        return None
    lab = labels or ("label" if "label" in index.labels else next(iter(index.labels)))
    y = index.labels[lab]
    g = index.graph(graph)
    s = GraphWalkBatchSampler(index, min(batch_size, index.n_items), graph=graph, seed=seed)
    ours: list[dict[str, Any]] = []
    sizes: list[list[int]] = []
    seconds = 0.0
    for e in range(epochs):
        s.set_epoch(e)
        t0 = time.perf_counter()
        batches = list(s)
        seconds += time.perf_counter() - t0
        sizes.append([len(b) for b in batches])
        ours.append(homophily_by_tenth(batches, y))
    rows = [
        {
            "sampler": f"GraphWalkBatchSampler ({graph}, {g.kind})",
            "graph": graph,
            "seconds": seconds,
            **_pooled(ours),
        }
    ]
    out: dict[str, Any] = {"labels": lab, "rows": rows}
    if g.kind == "item":
        out["checks"] = []
        for move in MOVES:
            ref = []
            seconds = 0.0
            for e in range(epochs):
                t0 = time.perf_counter()
                ref_batches = reference_item_batches(
                    g.indptr, g.indices, g.weights, sizes[e], seed=seed + e, move=move
                )
                seconds += time.perf_counter() - t0
                ref.append(homophily_by_tenth(ref_batches, y))
            row = {
                "sampler": f"reference BFS ({graph}, {move} move)",
                "graph": graph,
                "move": move,
                "seconds": seconds,
                **_pooled(ref),
            }
            rows.append(row)
            out["checks"].append({"graph": graph, "reference": move, **compare_lifts(rows[0], row)})
    return out


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
    homophily_epochs: int = 1,
) -> dict[str, Any]:
    """Measure the samplers over ``index`` beside ``RandomSampler`` + ``BatchSampler``.

    With ``homophily`` and an index with labels, ``"homophily"`` holds, per profiled graph, the
    batches' label homophily per tenth of the epoch (``homophily_epochs`` epochs pooled), and on
    item graphs the reference walk's in the same process and the ratio of their lifts (see
    :func:`profile_homophily`): ``labels``, ``rows`` and ``checks``.
    """
    import torch
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler

    from graphwalk.sampler import GraphWalkBatchSampler

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
        hom: dict[str, Any] = {"labels": None, "rows": [], "checks": []}
        for name in graphs or list(index.graphs):
            h = profile_homophily(index, name, batch_size=batch_size, epochs=homophily_epochs)
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
