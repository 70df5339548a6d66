"""The reference item-graph walk: golden walks on tiny graphs, and its promises over seeds."""

from collections import deque
from itertools import pairwise

import numpy as np
import pytest

from graphwalk.errors import InputError
from graphwalk.walk.reference import (
    _walk,
    mix_counts,
    reference_item_batches,
    reference_item_walk,
)


def csr(n, edges, *, undirected=True, weights=None):
    """CSR arrays of a graph given by its edges; neighbours in increasing order."""
    adj = [[] for _ in range(n)]
    for e, (a, b) in enumerate(edges):
        w = 1.0 if weights is None else weights[e]
        adj[a].append((b, w))
        if undirected:
            adj[b].append((a, w))
    adj = [sorted(a) for a in adj]
    indptr = np.zeros(n + 1, np.int64)
    indptr[1:] = np.cumsum([len(a) for a in adj])
    indices = np.array([b for a in adj for b, _ in a], np.int32)
    w = np.array([w for a in adj for _, w in a], np.float32)
    return indptr, indices, w


def random_graph(n, degree, seed):
    """A directed random graph with ``degree`` out-neighbours per node (self-loops included)."""
    rng = np.random.default_rng(seed)
    indptr = np.arange(0, n * degree + 1, degree, dtype=np.int64)
    indices = rng.integers(0, n, n * degree).astype(np.int32)
    return indptr, indices, rng.random(n * degree).astype(np.float32) + 0.1


def connected_graph(n, extra, seed):
    """An undirected ring with ``extra`` random chords: connected."""
    rng = np.random.default_rng(seed)
    edges = [(i, (i + 1) % n) for i in range(n)]
    edges += [tuple(rng.choice(n, 2, replace=False)) for _ in range(extra)]
    return csr(n, edges)


def ring_of_cliques(cliques, size):
    edges = []
    for c in range(cliques):
        base = c * size
        edges += [(base + i, base + j) for i in range(size) for j in range(i + 1, size)]
        edges.append((base + size - 1, ((c + 1) % cliques) * size))
    return csr(cliques * size, edges)


def distances_to(indptr, indices, targets):
    """Directed hop distance from every node to the nearest node of ``targets`` (-1: none)."""
    n = indptr.size - 1
    rev = [[] for _ in range(n)]
    for v in range(n):
        for w in indices[indptr[v] : indptr[v + 1]]:
            rev[w].append(v)
    dist = np.full(n, -1)
    q = deque(np.flatnonzero(targets))
    dist[list(q)] = 0
    while q:
        w = q.popleft()
        for v in rev[w]:
            if dist[v] < 0:
                dist[v] = dist[w] + 1
                q.append(v)
    return dist


PATH = csr(8, [(i, i + 1) for i in range(7)])
TRIANGLES = csr(6, [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)])
STAR = csr(6, [(0, i) for i in range(1, 6)])


def as_lists(batches):
    return [b.tolist() for b in batches]


def test_path_golden():
    # seed 0 teleports to item 6 (default_rng(0).integers(0, 8)); from there the path leaves
    # no choice: take 6 and its neighbours, then ROOT steps towards the unused side each time
    assert np.random.default_rng(0).integers(0, 8) == 6
    batches, roots = reference_item_walk(*PATH, [3, 3, 2], seed=0, move="shortest-path")
    assert as_lists(batches) == [[6, 5, 7], [4, 3, 2], [1, 0]]
    assert roots.tolist() == [6, 5, 4]  # ROOT passes through used items


def test_path_golden_passes_through_used_items():
    # from 3: [3, 2, 4]; both neighbours lead to unused items, seed 1 picks 4, whose search
    # passes through used 3 and 2 to take 1 (breadth-first: 5, then 6 and 1 at distance 2)
    batches, roots = reference_item_walk(*PATH, [3, 3, 2], seed=1, move="shortest-path")
    assert as_lists(batches) == [[3, 2, 4], [5, 6, 1], [7, 0]]
    assert roots.tolist() == [3, 4, 5]


@pytest.mark.parametrize("seed", range(6))
def test_two_triangles_are_the_two_batches(seed):
    batches, roots = reference_item_walk(*TRIANGLES, [3, 3], seed=seed, move="shortest-path")
    assert sorted(map(sorted, as_lists(batches))) == [[0, 1, 2], [3, 4, 5]]
    # the second ROOT is the next node on the way to the other triangle: an end of the bridge
    assert roots[1] == {0: 2, 1: 2, 2: 3, 3: 2, 4: 3, 5: 3}[int(roots[0])]


def test_two_triangles_golden():
    batches, roots = reference_item_walk(*TRIANGLES, [3, 3], seed=0, move="shortest-path")
    assert as_lists(batches) == [[5, 3, 4], [2, 0, 1]] and roots.tolist() == [5, 3]


def test_star_golden():
    # leaf 5, the centre; ROOT moves to the centre (the only neighbour), which takes leaves 1, 2
    # in CSR order; then to leaf 3 or 4 (both next to unused items): seed 0 picks 4
    batches, roots = reference_item_walk(*STAR, [2, 2, 2], seed=0, move="shortest-path")
    assert as_lists(batches) == [[5, 0], [1, 2], [4, 3]]
    assert roots.tolist() == [5, 0, 4]


def test_compiled_walk_is_the_plain_python_walk():
    """Numba only compiles the plain loops: the Python function gives the same batches."""
    g = random_graph(120, 4, seed=3)
    sizes = np.full(12, 10, np.int64)
    for restart, weighted, replacement, two_hop in [
        (0.0, False, False, False),
        (0.3, True, False, False),
        (0.0, True, True, False),
        (0.0, False, False, True),
        (0.2, True, False, True),
    ]:
        outs = []
        for fn in (_walk, _walk.py_func):
            out = np.empty(120, np.int64)
            roots = np.empty(12, np.int64)
            n_out = mix_counts(sizes, 0.2)
            rng = np.random.default_rng(7)
            fn(*g, sizes, n_out, restart, weighted, replacement, two_hop, rng, out, roots)
            outs.append((out, roots))
        assert (outs[0][0] == outs[1][0]).all() and (outs[0][1] == outs[1][1]).all()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind", ["random", "sparse", "connected"])
def test_every_item_once_per_epoch(seed, kind):
    g = {
        "random": lambda: random_graph(500, 5, seed),
        "sparse": lambda: random_graph(500, 1, seed),  # many nodes unreachable: restarts
        "connected": lambda: connected_graph(500, 100, seed),
    }[kind]()
    sizes = [37] * 13 + [500 - 37 * 13]
    for kw in [
        {},
        {"restart": 0.2, "weighted": True},
        {"n_out": mix_counts(sizes, 0.3)},
        {"move": "two-hop"},
        {"move": "two-hop", "n_out": mix_counts(sizes, 0.1), "weighted": True},
    ]:
        batches = reference_item_batches(*g, sizes, seed=seed, **kw)
        assert [len(b) for b in batches] == sizes
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(500))


@pytest.mark.parametrize("seed", range(5))
def test_root_moves_along_a_shortest_path_to_the_nearest_unused_items(seed):
    indptr, indices, w = connected_graph(300, 60, seed)
    sizes = [16] * 18
    batches, roots = reference_item_walk(indptr, indices, w, sizes, seed=seed, move="shortest-path")
    used = np.zeros(300, bool)
    moves = 0
    for b in range(len(sizes) - 1):
        used[batches[b]] = True
        dist = distances_to(indptr, indices, ~used)
        root, nxt = roots[b], roots[b + 1]
        # connected: unused items are always reachable, so ROOT never teleports
        assert nxt in indices[indptr[root] : indptr[root + 1]]
        assert dist[nxt] == dist[root] - 1, (b, root, nxt, dist[root], dist[nxt])
        moves += 1
    assert moves == len(sizes) - 1


def test_root_moves_to_every_neighbour_towards_unused_items():
    """On the path, from the middle, both sides are unused: both moves happen over seeds."""
    firsts = set()
    for seed in range(40):
        _, roots = reference_item_walk(*PATH, [3, 3, 2], seed=seed, move="shortest-path")
        if roots[0] == 3:
            firsts.add(int(roots[1]))
    assert firsts == {2, 4}


def test_two_hop_golden():
    # from 6: [6, 5, 7]; 5 has unused 4 next to it, 7 nothing within two hops: ROOT moves to 5,
    # whose search takes 4, 3, 2; then neither 4 nor 6 has an unused item within two hops
    batches, roots = reference_item_walk(*PATH, [3, 3, 2], seed=0, move="two-hop")
    assert as_lists(batches)[:2] == [[6, 5, 7], [4, 3, 2]] and roots[:2].tolist() == [6, 5]
    assert roots[2] in (0, 1) and sorted(batches[2].tolist()) == [0, 1]  # a teleport


@pytest.mark.parametrize("seed", range(4))
def test_two_hop_moves_to_neighbours_with_unused_items_within_two_hops(seed):
    indptr, indices, w = random_graph(400, 4, seed)
    sizes = [25] * 16
    batches, roots = reference_item_walk(indptr, indices, w, sizes, seed=seed, move="two-hop")
    used = np.zeros(400, bool)
    moves = teleports = 0
    for b in range(len(sizes) - 1):
        used[batches[b]] = True
        dist = distances_to(indptr, indices, ~used)
        nbrs = indices[indptr[roots[b]] : indptr[roots[b] + 1]]
        near = [u for u in nbrs if 0 <= dist[u] <= 2]
        if near:
            assert roots[b + 1] in near
            moves += 1
        else:  # a teleport to an unused item
            assert not used[roots[b + 1]]
            teleports += 1
    assert moves > teleports


def test_replacement_walks_are_not_stuck():
    g = ring_of_cliques(40, 5)
    batches, roots = reference_item_walk(*g, [5] * 2000, seed=0, replacement=True)
    assert len(set(roots.tolist())) > 50
    assert all(len(set(b.tolist())) == 5 for b in batches)  # no repeat inside a batch
    for a, b in pairwise(roots):  # every move goes to a neighbour (restart=0)
        assert b in g[1][g[0][a] : g[0][a + 1]]


def test_replacement_with_restart_teleports():
    g = ring_of_cliques(40, 5)
    _, roots = reference_item_walk(*g, [5] * 2000, seed=0, replacement=True, restart=0.5)
    jumps = sum(b not in g[1][g[0][a] : g[0][a + 1]] for a, b in pairwise(roots))
    assert 0.35 * 1999 < jumps < 0.65 * 1999  # teleports land on a neighbour ~4 times in 200


def test_weighted_moves_follow_edge_weights():
    from scipy.stats import chisquare

    weights = [1.0, 2.0, 3.0, 4.0, 10.0]
    g = csr(6, [(0, i) for i in range(1, 6)], weights=weights)
    _, roots = reference_item_walk(*g, [1] * 4001, seed=0, weighted=True, replacement=True)
    centre = np.flatnonzero(roots[:-1] == 0)
    assert centre.size > 1500  # from a leaf the only move is back to the centre
    counts = np.bincount(roots[centre + 1], minlength=6)[1:]
    expected = np.array(weights) / sum(weights) * counts.sum()
    assert chisquare(counts, expected).pvalue > 0.01
    # and uniformly without weights
    _, roots = reference_item_walk(*g, [1] * 4001, seed=0, replacement=True)
    centre = np.flatnonzero(roots[:-1] == 0)
    counts = np.bincount(roots[centre + 1], minlength=6)[1:]
    assert chisquare(counts).pvalue > 0.01
    heavy = counts[-1] / counts.sum()
    assert heavy < 0.3  # weighted it would be 0.5


def test_n_out_items_come_from_outside_the_walk():
    # two components: the walk stays in the first batch's component, the mix does not
    g = csr(200, [(i, i + 1) for i in range(99)] + [(i, i + 1) for i in range(100, 199)])
    sizes = [20] * 10
    n_out = mix_counts(sizes, 0.25)
    assert n_out.tolist() == [5] * 10
    other = 0
    for seed in range(20):
        plain = reference_item_batches(*g, sizes, seed=seed)
        mixed = reference_item_batches(*g, sizes, seed=seed, n_out=n_out)
        walk, mix = mixed[0][:15], mixed[0][15:]
        # the same teleport, then the same breadth-first items (the walk part comes first)
        assert walk.tolist() == plain[0][:15].tolist()
        assert not set(mix.tolist()) & set(walk.tolist())
        other += int(((mix < 100) != (walk[0] < 100)).sum())
        assert np.array_equal(np.sort(np.concatenate(mixed)), np.arange(200))
    # uniform over the 185 unused items: ~100 of them in the other component, 54% of 100
    assert 35 < other < 75


def test_mix_counts_are_exact_on_average():
    assert mix_counts([2] * 8, 0.25).tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert mix_counts([3] * 10, 0.1).tolist() == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1]
    assert mix_counts([100], 0.29).tolist() == [29]
    sizes = np.random.default_rng(0).integers(1, 300, 500)
    for mix in (0.0, 0.07, 0.5, 1.0):
        n_out = mix_counts(sizes, mix)
        assert ((n_out >= 0) & (n_out <= sizes)).all()
        assert n_out.sum() == int(np.floor(mix * sizes.sum() + 1e-9))
    with pytest.raises(InputError, match="mix"):
        mix_counts([3], 1.5)


def test_bad_input():
    with pytest.raises(InputError, match="more than the graph"):
        reference_item_batches(*PATH, [5, 5])
    with pytest.raises(InputError, match="sizes"):
        reference_item_batches(*PATH, [0])
    with pytest.raises(InputError, match="n_out"):
        reference_item_batches(*PATH, [3], n_out=[4])
    with pytest.raises(InputError, match="node ids"):
        reference_item_batches(PATH[0], PATH[1] + 8, PATH[2], [3])
    assert reference_item_batches(*PATH, []) == []
