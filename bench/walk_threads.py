"""Scaling of ``random_walks`` (parallel=True) from 1 to 2 threads on the 1,000,000-node graph of
degree 10 (the synthetic graph of bench/sampler.py), alternating thread counts, best of N; checks
that the walks do not depend on the thread count or the block size.

    PYTHONPATH=. python bench/walk_threads.py --repeat 5 --blocks 64,16,256,1024

The machine must be otherwise idle: with another process on the second core, 2 threads ran at
1.01x one thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numba
import numpy as np

from graphwalk.walk.kernels import random_walks
from graphwalk.walk.profiling import synthetic_index


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--walks", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=80)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--blocks", default="64")
    args = ap.parse_args(argv)
    g = synthetic_index(args.n).graphs["knn"]
    rng = np.random.default_rng(0)
    starts = rng.integers(0, g.n_nodes, args.walks).astype(np.int64)
    ref = None
    print(
        f"load average before: {os.getloadavg()}, Numba threads: {numba.config.NUMBA_NUM_THREADS}"
    )
    for block in [int(b) for b in args.blocks.split(",")]:
        best = {1: np.inf, 2: np.inf}
        for r in range(args.repeat + 1):
            for th in (1, 2):
                numba.set_num_threads(th)
                out = np.empty((args.walks, args.length + 1), np.int32)
                t0 = time.perf_counter()
                random_walks(g.indptr, g.indices, starts, args.length, 0, out, block)
                dt = time.perf_counter() - t0
                if r:
                    best[th] = min(best[th], dt)
                if ref is None:
                    ref = out.copy()
                elif not np.array_equal(ref, out):
                    print(f"DIFFERENT walks at block {block}, {th} thread(s)")
                    return 1
        steps = args.walks * args.length
        print(
            f"block {block}: 1 thread {steps / best[1] / 1e6:.1f} M steps/s, 2 threads "
            f"{steps / best[2] / 1e6:.1f} M steps/s, scaling {best[1] / best[2]:.2f}x"
        )
    print(f"load average after: {os.getloadavg()}; walks identical across threads and blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
