"""Run inside a venv with pecanpy (it needs numpy<2): time its first-order walker on a CSR graph.

python _pecanpy_walks.py GRAPH.npz N_WALKS LENGTH   -> prints JSON
"""

import json
import sys
import time

import numpy as np
from pecanpy.pecanpy import FirstOrderUnweighted


def main() -> None:
    path, n_walks, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    raw = np.load(path)
    g = FirstOrderUnweighted(p=1, q=1, workers=1, verbose=False, random_state=0)
    g.indptr = raw["indptr"].astype(np.uint32)
    g.indices = raw["indices"].astype(np.uint32)
    g.data = np.ones(g.indices.size, np.float32)
    g.set_node_ids(None, implicit_ids=True, num_nodes=int(g.indptr.size - 1))
    starts = np.random.default_rng(0).integers(0, g.indptr.size - 1, n_walks).astype(np.uint32)
    move_forward = g.get_move_forward()
    has_nbrs = g.get_has_nbrs()

    class _NoProgress:
        def update(self, n):
            pass

    # its own walk loop (numba prange, np.random per step), without mapping ids to strings
    from numba_progress import ProgressBar

    with ProgressBar(total=64, disable=True) as bar:
        g._random_walks(64, 2, 0, starts[:64], has_nbrs, move_forward, bar)  # compile
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            g._random_walks(n_walks, length, 0, starts, has_nbrs, move_forward, bar)
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"msteps_per_s": n_walks * length / best / 1e6, "seconds": best}))


if __name__ == "__main__":
    main()
