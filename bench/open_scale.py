"""Opening a big index: the arrays layout's open time, first batch and sampler memory at 1M, 10M
and 100M items, against the Parquet layout where it fits.

For each size a synthetic index is written (no vectors: an item graph of degree ``k`` whose rows
are a ring with random shifts, its walk order, and a level of clusters of 1,000 items with an ER
graph over them), then measured in a fresh process for the ``er`` and ``knn`` samplers:

- ``open``: ``GraphIndex.load`` (the arrays layout reads headers only: the same at every size);
- ``first batch``: building the sampler and drawing its first batch of 256, in the new process
  (so it includes loading the compiled kernels), and ``again`` with a second sampler;
- ``bytes / item``: the peak of NumPy allocations (tracemalloc) while the sampler is built and
  draws its first batch, divided by the items: what the sampler holds beyond the mapped index;
- ``anon MiB``: the growth of the process's anonymous (not file-backed) resident memory;
- ``µs / batch``: the next 500 batches.

At 1M items the Parquet layout is opened too, and both layouts' first 2,000 batches are hashed:
the same batches (behaviour kept) at a different open cost.

    python bench/open_scale.py                        # 1M, 10M, 100M (about 15 minutes, 10 GB disk)
    python bench/open_scale.py --sizes 1000000        # quick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from graphwalk.benchmark import Table

HERE = Path(__file__).resolve().parent


def synthetic_index(n: int, k: int, path: Path, layout: str) -> float:
    """Write the synthetic index of ``n`` items; return the seconds it took."""
    from graphwalk.build.graphs import er_graph
    from graphwalk.index.artifact import GraphIndex
    from graphwalk.index.types import Graph, Level, WalkOrder

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    offsets = np.array([1, 2, 5, 11, 23, 47, 97, 193][:k], np.int64)
    shift = rng.integers(0, 1000, n, dtype=np.int64)
    indices = np.empty((n, k), np.int32)
    for s in range(0, n, 1 << 22):  # in blocks: int64 temporaries of 100M x k would not fit
        e = min(n, s + (1 << 22))
        ids = np.arange(s, e, dtype=np.int64)[:, None]
        indices[s:e] = (ids + offsets[None, :] + shift[s:e, None]) % n
    del shift
    indices = indices.reshape(-1)
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    weights = np.ones(n * k, np.float32)
    ident = np.arange(n, dtype=np.int32)
    walk = WalkOrder(ident, ident, indptr, indices, weights, "identity")
    knn = Graph("knn", "item", indptr, indices, weights, space="input", directed=True, walk=walk)
    size = 1000
    assignment = (np.arange(n, dtype=np.int64) // size).astype(np.int32)
    kc = int(assignment[-1]) + 1
    level = Level(
        "kmeans",
        assignment,
        np.zeros((kc, 1), np.float32),
        np.arange(kc, dtype=np.int64),
        "kmeans",
        "input",
        {},
    )
    er = er_graph(kc, degree=8.0, seed=0, level="kmeans")
    idx = GraphIndex(
        n, levels={"kmeans": level}, graphs={"er": er, "knn": knn}, spaces={"input": 1}
    )
    idx.save(path, layout=layout, overwrite=True)
    return time.perf_counter() - t0


def _status(key: str) -> int:
    from graphwalk.benchmark import _status as status  # the one reader of /proc/self/status

    return status(key) or 0


def child(path: str, graph: str, batches: int, hash_batches: int) -> dict[str, float | str]:
    """Measured in a fresh process: open, first batch, memory, speed, and a hash of batches."""
    import tracemalloc

    from graphwalk import GraphWalkBatchSampler
    from graphwalk.index.artifact import GraphIndex

    anon0 = _status("RssAnon:")
    t0 = time.perf_counter()
    idx = GraphIndex.load(path)
    open_s = time.perf_counter() - t0
    anon_open = _status("RssAnon:")
    t0 = time.perf_counter()
    s = GraphWalkBatchSampler(idx, 256, graph=graph, seed=0)
    next(iter(s))
    first_s = time.perf_counter() - t0  # cold: includes loading the compiled kernels
    tracemalloc.start()  # a second sampler: its own state, not the kernels' one-off loading
    t0 = time.perf_counter()
    s = GraphWalkBatchSampler(idx, 256, graph=graph, seed=0)
    it = iter(s)
    next(it)
    warm_s = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    batches = min(batches, len(s) - 1)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    per_batch = (time.perf_counter() - t0) / batches * 1e6
    anon1 = _status("RssAnon:")
    h = hashlib.sha256()
    s2 = GraphWalkBatchSampler(idx, 256, graph=graph, seed=1)
    for i, b in enumerate(s2):
        if i == hash_batches:
            break
        h.update(np.asarray(b, np.int64).tobytes())
    return {
        "open_s": open_s,
        "open_anon_mib": (anon_open - anon0) / 2**20,
        "first_batch_s": first_s,
        "first_batch_warm_s": warm_s,
        "bytes_per_item": peak / idx.n_items,
        "anon_mib": (anon1 - anon_open) / 2**20,
        "us_per_batch": per_batch,
        "hash": h.hexdigest()[:16],
    }


def measure_child(path: Path, graph: str, batches: int, hash_batches: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(path),
            "--graph",
            graph,
            "--batches",
            str(batches),
            "--hash-batches",
            str(hash_batches),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="1000000,10000000,100000000")
    ap.add_argument("--k", type=int, default=4, help="degree of the item graph (default 4)")
    ap.add_argument("--batches", type=int, default=500)
    ap.add_argument("--hash-batches", type=int, default=2000)
    ap.add_argument("--work", default=None, help="where the indexes go (default: a temp dir)")
    ap.add_argument("--record", default=str(HERE / "results" / "open-scale.md"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--graph", default="er", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.graph, args.batches, args.hash_batches)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="gw-open-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    table = Table(
        f"opening an index: arrays (memory-mapped) against Parquet, degree {args.k}, batch 256",
        [
            "items",
            "layout",
            "index MB",
            "write (s)",
            "sampler",
            "open (s)",
            "first batch (s)",
            "open + first (s)",
            "again (s)",
            "bytes / item",
            "anon MiB",
            "µs / batch",
            "batches hash",
        ],
    )
    results = []
    try:
        for n in sizes:
            layouts = ["arrays", "parquet"] if n <= 1_000_000 else ["arrays"]
            for layout in layouts:
                path = work / f"{n}-{layout}.gw"
                print(f"writing {n:,} items ({layout}) ...", flush=True)
                write_s = synthetic_index(n, args.k, path, layout)
                mb = sum(f.stat().st_size for f in path.iterdir()) / 1e6
                for graph in ("er", "knn"):
                    r = measure_child(path, graph, args.batches, args.hash_batches)
                    r.update(items=n, layout=layout, graph=graph, index_mb=mb, write_s=write_s)
                    results.append(r)
                    table.add(
                        f"{n:,}",
                        layout,
                        round(mb, 1),
                        round(write_s, 1),
                        graph,
                        round(r["open_s"], 4),
                        round(r["first_batch_s"], 3),
                        round(r["open_s"] + r["first_batch_s"], 3),
                        round(r["first_batch_warm_s"], 3),
                        round(r["bytes_per_item"], 2),
                        round(r["anon_mib"], 1),
                        round(r["us_per_batch"], 1),
                        r["hash"],
                    )
                    print(table.rows[-1], flush=True)
                shutil.rmtree(path)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    arrays = [r for r in results if r["layout"] == "arrays"]
    same = all(
        r["hash"] == q["hash"]
        for r in results
        for q in results
        if r["items"] == q["items"] and r["graph"] == q["graph"]
    )
    opens = [r["open_s"] for r in arrays]
    table.notes += [
        f"the same batches in both layouts (first {args.hash_batches} batches hashed, seed 1): "
        f"{'yes' if same else 'NO'}",
        f"arrays open: {min(opens):.4f}-{max(opens):.4f} s from {min(sizes):,} to {max(sizes):,} "
        "items (headers only; no byte of the arrays is read)",
        "bytes / item: peak NumPy allocations while a second sampler is built and draws its "
        "first batch, per item (the sampler's own state: what is left to visit this epoch); anon MiB: "
        "growth of anonymous resident memory over the next batches (file pages of the mapping "
        "are shared and not counted)",
        "the page cache is warm (the index was just written): a cold first batch also reads "
        "the pages it touches",
    ]
    print(table.markdown())
    table.record(args.record, extra={"results": results}, command="python bench/open_scale.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
