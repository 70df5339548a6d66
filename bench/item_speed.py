"""µs per batch of the item-graph sampler beside RandomSampler + BatchSampler, in one process
(epochs alternated, best of N), as ``profile_sampler`` measures it: ``for batch in sampler``
over whole epochs. Run it with PYTHONPATH pointing at two versions of graphwalk, back to back.

    PYTHONPATH=. python bench/item_speed.py                       # 1M benchmark, batch 256
    PYTHONPATH=. python bench/item_speed.py --index out/mnist1d.gw --batch 64 --epochs 200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--index", default=None)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args(argv)
    import torch
    from torch.utils.data import BatchSampler, RandomSampler

    import graphwalk
    from graphwalk import GraphIndex
    from graphwalk.walk.sampler import GraphWalkBatchSampler

    if args.index:
        index = GraphIndex.load(args.index)
    else:
        from data import benchmark_index

        index = benchmark_index(progress=False)
    n = index.n_items
    gen = torch.Generator().manual_seed(0)
    s = GraphWalkBatchSampler(index, args.batch, graph="knn")
    next(iter(s))
    best_t = best_s = float("inf")
    nb = len(s)
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        k = sum(1 for _ in BatchSampler(RandomSampler(range(n), generator=gen), args.batch, False))
        best_t = min(best_t, (time.perf_counter() - t0) / k)
        t0 = time.perf_counter()
        k = sum(1 for _ in s)
        best_s = min(best_s, (time.perf_counter() - t0) / k)
    print(
        f"{graphwalk.__file__}: {n:,} items, batch {args.batch}, {nb} batches, best of "
        f"{args.epochs}: torch {best_t * 1e6:.2f} µs, knn {best_s * 1e6:.2f} µs, "
        f"{best_t / best_s:.2f}x torch"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
