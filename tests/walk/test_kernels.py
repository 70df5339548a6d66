import itertools
import subprocess
import sys

import numpy as np

from graphwalk.build.graphs import csr_from_edges
from graphwalk.walk.kernels import random_walks, seed_state


def _walk(indptr, indices, starts, length, seed):
    out = np.empty((len(starts), length + 1), np.int64)
    return random_walks(indptr, indices, np.asarray(starts, np.int64), length, seed, out)


def test_golden_walks_on_a_cycle_and_a_dead_end():
    # directed cycle 0->1->2->0 and node 3 -> 2; node 4 has no out-edge
    indptr, indices, _ = csr_from_edges(5, [0, 1, 2, 3], [1, 2, 0, 2])
    w = _walk(indptr, indices, [0, 3, 4], 4, seed=1)
    assert w.tolist() == [[0, 1, 2, 0, 1], [3, 2, 0, 1, 2], [4, 4, 4, 4, 4]]


def test_every_step_follows_an_edge_and_walks_are_seeded():
    rng = np.random.default_rng(0)
    n = 500
    src = rng.integers(0, n, 4000)
    dst = rng.integers(0, n, 4000)
    indptr, indices, _ = csr_from_edges(
        n, np.r_[src, np.arange(n)], np.r_[dst, (np.arange(n) + 1) % n]
    )
    starts = rng.integers(0, n, 300)
    w = _walk(indptr, indices, starts, 20, seed=7)
    edges = set(
        zip(np.repeat(np.arange(n), np.diff(indptr)).tolist(), indices.tolist(), strict=True)
    )
    for row in w:
        assert all((a, b) in edges for a, b in itertools.pairwise(row))
    assert (w == _walk(indptr, indices, starts, 20, seed=7)).all()
    assert not (w == _walk(indptr, indices, starts, 20, seed=8)).all()
    # the walk's next step is uniform over the neighbours: a star with 4 leaves
    ip, ix, _ = csr_from_edges(5, [0, 0, 0, 0], [1, 2, 3, 4])
    first = _walk(ip, ix, np.zeros(40000, np.int64), 1, seed=3)[:, 1]
    counts = np.bincount(first, minlength=5)[1:]
    assert counts.min() > 9500 and counts.max() < 10500


def test_results_do_not_depend_on_the_thread_count():
    code = (
        "import numpy as np, numba, sys\n"
        "from graphwalk.walk.kernels import random_walks\n"
        "numba.set_num_threads(int(sys.argv[1]))\n"
        "rng = np.random.default_rng(0); n = 2000\n"
        "from graphwalk.build.graphs import csr_from_edges\n"
        "ip, ix, _ = csr_from_edges(n, rng.integers(0, n, 20000), rng.integers(0, n, 20000))\n"
        "out = np.empty((1000, 11), np.int64)\n"
        "random_walks(ip, ix, rng.integers(0, n, 1000), 10, 5, out)\n"
        "import hashlib; print(hashlib.sha256(out.tobytes()).hexdigest())\n"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code, str(t)], capture_output=True, text=True, check=True
        ).stdout
        for t in (1, 2)
    }
    assert len(runs) == 1


def test_seed_state_is_nonzero_and_depends_on_every_word():
    a = seed_state(0, 0, 0)
    assert a.dtype == np.uint64 and a[0] != 0
    assert seed_state(0, 1, 0)[0] != a[0] and seed_state(1, 0, 0)[0] != a[0]
