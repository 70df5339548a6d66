import itertools
import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

import graphwalk as gw
from graphwalk.build.graphs import csr_from_edges, er_graph
from graphwalk.errors import InputError
from graphwalk.index.types import Graph, Level
from graphwalk.walk.policy import WalkPolicy
from graphwalk.walk.sampler import GraphWalkBatchSampler, GraphWalkSampler, batch_sizes
from tests.conftest import make_blobs


@pytest.fixture(scope="module")
def index():
    x, y = make_blobs(n=700, dim=6, centers=7)
    return gw.build_index(
        x,
        labels=y,
        clusters=20,
        groups=["labels"],
        graphs=["er", "knn-clusters", "knn"],
        k=5,
        seed=1,
    )


GRAPHS = ["er", "knn-clusters", "knn"]


def _flat(batches):
    return [i for b in batches for i in b]


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("mix", [0.0, 0.3])
def test_an_epoch_visits_every_item_exactly_once(index, graph, mix):
    kw = {} if graph == "knn" else {"k": 3}
    s = GraphWalkBatchSampler(index, 64, graph=graph, mix=mix, restart=0.1, **kw)
    batches = list(s)
    assert len(batches) == len(s) == 11
    assert [len(b) for b in batches] == [64] * 10 + [60]
    assert sorted(_flat(batches)) == list(range(700))


@pytest.mark.parametrize("graph", GRAPHS)
def test_same_seed_and_epoch_same_batches_other_epoch_other_batches(index, graph):
    a = list(GraphWalkBatchSampler(index, 50, graph=graph, seed=3))
    b = GraphWalkBatchSampler(index, 50, graph=graph, seed=3)
    assert list(b) == a
    assert list(b) != a  # the epoch advanced by itself
    b.set_epoch(0)
    assert list(b) == a
    assert list(GraphWalkBatchSampler(index, 50, graph=graph, seed=4)) != a


def test_batches_are_homophilous_and_mix_dilutes_them(index):
    def mean_hom(mix):
        s = GraphWalkBatchSampler(index, 32, graph="er", k=0, mix=mix)
        vals = []
        for i, _ in enumerate(s):
            if i < len(s) // 2:  # before communities start running dry
                vals.append(s.batch_info().homophily)
        return np.mean(vals)

    pure, mixed, rnd = mean_hom(0.0), mean_hom(0.5), mean_hom(1.0)
    assert pure > mixed > rnd
    assert rnd < 0.3 < pure


def test_batch_info(index):
    s = GraphWalkBatchSampler(index, 32, graph="knn-clusters", k=2)
    it = iter(s)
    first = next(it)
    info = s.batch_info()
    level = index.levels["kmeans"]
    assert info.batch == 0 and info.size == 32 and 0 <= info.root < level.n_clusters
    assert info.community_size >= level.sizes[info.root]
    assert level.assignment[first].tolist().count(info.root) > 0
    with pytest.raises(InputError, match="outside"):
        s.batch_info(99)


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("graph", ["er", "knn"])
def test_ranks_get_equal_disjoint_shares(index, world, graph):
    per_rank = [
        list(GraphWalkBatchSampler(index, 48, graph=graph, rank=r, world_size=world))
        for r in range(world)
    ]
    counts = {len(b) for b in per_rank}
    assert len(counts) == 1 and counts == {
        len(GraphWalkBatchSampler(index, 48, rank=0, world_size=world, graph=graph))
    }
    flat = [i for b in per_rank for i in _flat(b)]
    assert sorted(flat) == list(range(700))


def test_batch_sizes_never_repeat_or_drop():
    sizes, per = batch_sizes(10, 3, 4, drop_last=False)  # rest 10 < 4*3 but >= 4
    assert per == 1 and sizes.tolist() == [3, 3, 2, 2]
    sizes, per = batch_sizes(26, 3, 4, drop_last=False)  # 2 left after 2 rounds: added one each
    assert per == 2 and sizes.sum() == 26 and sizes.tolist() == [3, 3, 3, 3, 4, 4, 3, 3]
    sizes, per = batch_sizes(26, 3, 4, drop_last=True)
    assert per == 2 and sizes.tolist() == [3] * 8
    with pytest.raises(InputError, match="no batch can be made"):
        batch_sizes(5, 3, 2, drop_last=True)


def test_drop_last_gives_full_batches(index):
    s = GraphWalkBatchSampler(index, 64, drop_last=True, graph="er")
    batches = list(s)
    assert len(batches) == len(s) == 10 and {len(b) for b in batches} == {64}
    assert len(set(_flat(batches))) == 640


def test_replacement_mode(index):
    s = GraphWalkBatchSampler(index, 100, graph="er", replacement=True, num_batches=30, k=1)
    batches = list(s)
    assert len(batches) == 30 and all(len(b) == 100 and len(set(b)) == 100 for b in batches)
    assert len(set(_flat(batches))) < 3000  # items repeat across batches
    s = GraphWalkBatchSampler(index, 650, graph="knn", replacement=True, num_batches=3)
    assert all(len(set(b)) == 650 for b in s)  # a community grows beyond any neighbourhood


def test_resume_mid_epoch_sees_exactly_the_rest(index):
    for graph in GRAPHS:
        full = list(GraphWalkBatchSampler(index, 40, graph=graph, seed=5))
        s = GraphWalkBatchSampler(index, 40, graph=graph, seed=5)
        it = iter(s)
        head = [next(it) for _ in range(7)]
        state = pickle.loads(pickle.dumps(s.state_dict()))
        t = GraphWalkBatchSampler(index, 40, graph=graph, seed=5)
        t.load_state_dict(state)
        assert head + list(t) == full
        t.set_epoch(1)
        u = GraphWalkBatchSampler(index, 40, graph=graph, seed=5)
        u.set_epoch(1)
        assert list(t) == list(u)


def test_state_from_other_settings_or_index_is_refused(index):
    s = GraphWalkBatchSampler(index, 40, graph="er")
    state = s.state_dict()
    with pytest.raises(InputError, match="batch_size=40 but this sampler has batch_size=41"):
        GraphWalkBatchSampler(index, 41, graph="er").load_state_dict(state)
    with pytest.raises(InputError, match="graph="):
        GraphWalkBatchSampler(index, 40, graph="knn").load_state_dict(state)
    x, _ = make_blobs(n=700, dim=6, centers=7, seed=9)
    other = gw.build_index(x, clusters=20, graphs=["er"])
    with pytest.raises(InputError, match="index="):
        GraphWalkBatchSampler(other, 40, graph="er").load_state_dict(state)
    with pytest.raises(InputError, match="not a GraphWalkBatchSampler state"):
        s.load_state_dict({"epoch": 1})


def test_pickle_and_dataloader_with_workers(index):
    ds = TensorDataset(torch.arange(700))
    s = GraphWalkBatchSampler(index, 64, graph="knn", seed=2)
    want = list(GraphWalkBatchSampler(index, 64, graph="knn", seed=2))
    clone = pickle.loads(pickle.dumps(s))
    assert list(clone) == want
    got = [b[0].tolist() for b in DataLoader(ds, batch_sampler=s, num_workers=2)]
    assert got == want


def test_flat_sampler(index):
    s = GraphWalkSampler(index, 64, graph="er", seed=1)
    items = list(s)
    assert len(items) == len(s) == 700 and sorted(items) == list(range(700))
    dl = DataLoader(
        TensorDataset(torch.arange(700)),
        sampler=GraphWalkSampler(index, 64, graph="er", seed=1),
        batch_size=64,
    )
    assert [b[0].tolist() for b in dl] == list(GraphWalkBatchSampler(index, 64, graph="er", seed=1))
    assert len(GraphWalkSampler(index, 64, graph="er", rank=1, world_size=2)) == 350


def test_stateful_dataloader_resume(index):
    from torchdata.stateful_dataloader import StatefulDataLoader

    ds = TensorDataset(torch.arange(700))
    for workers in (0, 2):

        def make(workers=workers):
            return StatefulDataLoader(
                ds,
                batch_sampler=GraphWalkBatchSampler(index, 32, graph="er", seed=7),
                num_workers=workers,
            )

        full = [b[0].tolist() for b in make()]
        dl = make()
        it = iter(dl)
        head = [next(it)[0].tolist() for _ in range(9)]
        state = dl.state_dict()
        dl2 = make()
        dl2.load_state_dict(state)
        rest = [b[0].tolist() for b in dl2]
        assert head + rest == full, workers


def test_bad_input(index):
    with pytest.raises(InputError, match="batch_size=701 is larger than the 700 items"):
        GraphWalkBatchSampler(index, 701, graph="er")
    with pytest.raises(ValueError, match="batch_size=0"):
        GraphWalkBatchSampler(index, 0, graph="er")
    with pytest.raises(InputError, match="no graph 'metis'"):
        GraphWalkBatchSampler(index, 10, graph="metis")
    with pytest.raises(InputError, match="name the one to use"):
        GraphWalkBatchSampler(index, 10)
    with pytest.raises(InputError, match="dataset has 5 items but the index was built from 700"):
        GraphWalkBatchSampler(index, 10, graph="er", dataset=list(range(5)))
    with pytest.raises(InputError, match="rank should be in \\[0, world_size=2\\), but got rank=2"):
        GraphWalkBatchSampler(index, 10, graph="er", rank=2, world_size=2)
    with pytest.raises(InputError, match="mix should be a number in \\[0, 1\\]"):
        GraphWalkBatchSampler(index, 10, graph="er", mix=1.5)
    with pytest.raises(InputError, match="k should be"):
        GraphWalkBatchSampler(index, 10, graph="er", k=-1)
    with pytest.raises(InputError, match="num_batches sets the epoch length"):
        GraphWalkBatchSampler(index, 10, graph="er", num_batches=3)
    with pytest.raises(TypeError, match="GraphIndex or a path"):
        GraphWalkBatchSampler([1, 2], 10)


def test_a_mutated_index_is_detected(blobs):
    x, _ = blobs
    idx = gw.build_index(x, clusters=10, graphs=["er"])
    s = GraphWalkBatchSampler(idx, 50)
    list(s)
    idx.graphs["er"].indices[0] = (idx.graphs["er"].indices[0] + 1) % 10
    with pytest.raises(InputError, match="changed since this sampler was created"):
        list(s)


def _literal(n_clusters, edges, sizes):
    assign = np.repeat(np.arange(n_clusters), sizes).astype(np.int32)
    lv = Level(
        "c", assign, np.zeros((n_clusters, 1), np.float32), np.arange(n_clusters), "kmeans", "input"
    )
    src = [a for a, b in edges] + [b for a, b in edges]
    dst = [b for a, b in edges] + [a for a, b in edges]
    ip, ix, w = csr_from_edges(n_clusters, src, dst)
    return gw.GraphIndex(
        int(assign.size),
        levels={"c": lv},
        graphs={"g": Graph("g", "cluster", ip, ix, w, level="c")},
    )


def test_isolated_nodes_and_k_beyond_degree():
    idx = _literal(4, [(0, 1)], [5, 5, 5, 5])  # clusters 2 and 3 are isolated
    s = GraphWalkBatchSampler(idx, 4, k=10)
    assert sorted(_flat(s)) == list(range(20))


def test_walk_follows_the_only_path():
    # a path 0-1-2-3, 4 items each, batch = one cluster, k = 0: the walk must sweep the path
    idx = _literal(4, [(0, 1), (1, 2), (2, 3)], [4, 4, 4, 4])
    s = GraphWalkBatchSampler(idx, 4, k=0, seed=0)
    batches = list(s)
    clusters = [sorted({i // 4 for i in b}) for b in batches]
    assert all(len(c) == 1 for c in clusters)
    seq = [c[0] for c in clusters]
    steps = [abs(a - b) for a, b in itertools.pairwise(seq)]
    # moves are to neighbours, except a teleport when a dead end has no neighbour with items left
    assert steps.count(1) >= 2


class ScriptedPolicy(WalkPolicy):
    def __init__(self, order):
        self.order = order
        self.calls = []

    def select(self, step):
        self.calls.append((step.batch, step.previous_root, step.candidates.tolist()))
        return self.order[step.batch]


def test_an_online_policy_chooses_every_root():
    idx = _literal(4, [(0, 1), (1, 2), (2, 3), (3, 0)], [4, 4, 4, 4])
    pol = ScriptedPolicy([2, 3, 0, 1])
    s = GraphWalkBatchSampler(idx, 4, k=0, policy=pol)
    batches = list(s)
    assert [sorted({i // 4 for i in b}) for b in batches] == [[2], [3], [0], [1]]
    assert pol.calls[1] == (1, 2, [1, 3])  # neighbours of 2 with items left
    assert pol.calls[3] == (3, 0, [1])  # 3 is exhausted by then; only 1 has items left
    with pytest.raises(TypeError, match="WalkPolicy"):
        GraphWalkBatchSampler(idx, 4, policy=object())


@st.composite
def walk_case(draw):
    n_clusters = draw(st.integers(2, 12))
    sizes = draw(st.lists(st.integers(1, 15), min_size=n_clusters, max_size=n_clusters))
    n = sum(sizes)
    world = draw(st.integers(1, 4).filter(lambda w: w <= n))
    bs = draw(st.integers(1, max(1, n // world)))
    degree = draw(st.floats(0.5, 4.0))
    seed = draw(st.integers(0, 2**16))
    return n_clusters, sizes, world, bs, degree, seed


@given(walk_case(), st.floats(0, 1), st.booleans())
def test_property_invariants(case, mix, connect):
    n_clusters, sizes, world, bs, degree, seed = case
    g = er_graph(n_clusters, degree=min(degree, n_clusters - 1), seed=seed, connect=connect)
    assign = np.repeat(np.arange(n_clusters), sizes).astype(np.int32)
    lv = Level(
        "c", assign, np.zeros((n_clusters, 1), np.float32), np.arange(n_clusters), "kmeans", "input"
    )
    g.level = "c"
    idx = gw.GraphIndex(int(assign.size), levels={"c": lv}, graphs={"g": g})
    n = idx.n_items
    per_rank = []
    for r in range(world):
        s = GraphWalkBatchSampler(idx, bs, rank=r, world_size=world, mix=mix, seed=seed)
        batches = list(s)
        assert len(batches) == len(s)
        for b in batches:
            assert all(0 <= i < n for i in b) and len(set(b)) == len(b)
        per_rank.append(batches)
        # resume at a random point gives the same rest
        cut = seed % (len(batches) + 1)
        t = GraphWalkBatchSampler(idx, bs, rank=r, world_size=world, mix=mix, seed=seed)
        it = iter(t)
        head = [next(it) for _ in range(cut)]
        u = GraphWalkBatchSampler(idx, bs, rank=r, world_size=world, mix=mix, seed=seed)
        u.load_state_dict(t.state_dict())
        assert head + list(u) == batches
    assert len({len(b) for b in per_rank}) == 1
    flat = sorted(i for b in per_rank for i in _flat(b))
    assert flat == list(range(n))


def test_state_saved_after_the_last_batch_resumes_empty_then_next_epoch(index):
    s = GraphWalkBatchSampler(index, 100, graph="er")
    it = iter(s)
    epoch0 = [next(it) for _ in range(len(s))]
    t = GraphWalkBatchSampler(index, 100, graph="er")
    t.load_state_dict(s.state_dict())
    assert list(t) == []
    ref = GraphWalkBatchSampler(index, 100, graph="er")
    ref.set_epoch(1)
    assert list(t) == list(ref) != epoch0


@st.composite
def item_case(draw):
    n = draw(st.integers(2, 300))
    degree = draw(st.integers(0, 6))
    world = draw(st.integers(1, 3).filter(lambda w: w <= n))
    bs = draw(st.integers(1, max(1, n // world)))
    seed = draw(st.integers(0, 2**16))
    return n, degree, world, bs, seed


@given(item_case(), st.floats(0, 1), st.floats(0, 0.5))
def test_property_invariants_item_graphs(case, mix, restart):
    n, degree, world, bs, seed = case
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n), degree)
    dst = rng.integers(0, n, src.size)
    ip, ix, w = csr_from_edges(n, src, dst)  # self-loops dropped: some nodes end up isolated
    idx = gw.GraphIndex(
        n, graphs={"knn": Graph("knn", "item", ip, ix, w, space="input", directed=True)}
    )
    per_rank = []
    for r in range(world):
        kw = dict(rank=r, world_size=world, mix=mix, restart=restart, seed=seed)
        s = GraphWalkBatchSampler(idx, bs, **kw)
        batches = list(s)
        assert len(batches) == len(s)
        assert all(len(set(b)) == len(b) and all(0 <= i < n for i in b) for b in batches)
        cut = seed % (len(batches) + 1)
        t = GraphWalkBatchSampler(idx, bs, **kw)
        it = iter(t)
        head = [next(it) for _ in range(cut)]
        u = GraphWalkBatchSampler(idx, bs, **kw)
        u.load_state_dict(t.state_dict())
        assert head + list(u) == batches
        per_rank.append(batches)
        rep = list(GraphWalkBatchSampler(idx, bs, replacement=True, num_batches=3, **kw))
        assert all(len(b) == bs and len(set(b)) == bs for b in rep)
    assert len({len(b) for b in per_rank}) == 1
    assert sorted(i for b in per_rank for i in _flat(b)) == list(range(n))


def test_item_walk_over_many_batches_wraps_its_marks(index):
    # more than 127 batches per epoch: the per-batch marks wrap around several times
    s = GraphWalkBatchSampler(index, 2, graph="knn", mix=0.2)
    batches = list(s)
    assert len(batches) == 350 and sorted(_flat(batches)) == list(range(700))


# ---------------------------------------------------------------------------------------------
# Issue 6: item-graph walks keep their promise (each test failed on the walk before the issue)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    idx = gw.build_index(x.astype(np.float32), labels=y, graphs=["knn"], k=10, seed=0)
    return idx, y


def _hom(items, y):
    counts = np.unique(y[np.asarray(items)], return_counts=True)[1]
    n = len(items)
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def _by_tenth(batches, y):
    """Mean share of same-label pairs per tenth of the epoch (NaN where a tenth has no batch)."""
    total = sum(len(b) for b in batches)
    tenths = [[] for _ in range(10)]
    pos = 0
    for b in batches:
        tenths[min(9, int(10 * (pos + len(b) / 2) / total))].append(_hom(b, y))
        pos += len(b)
    return np.array([np.mean(t) if t else np.nan for t in tenths])


def test_item_batches_are_neighbourhoods_on_digits(digits):
    # before: 0.18 on average, 0.10-0.13 after the first third (random batches: 0.10)
    idx, y = digits
    rand = _hom(np.arange(len(y)), y)
    per_seed = np.array(  # 20 seeds: a tenth holds about 3 batches of 64
        [_by_tenth(list(GraphWalkBatchSampler(idx, 64, seed=s)), y) for s in range(20)]
    )
    mean = np.nanmean(per_seed, axis=0)
    assert rand < 0.11
    assert mean[0] > 0.8 and np.nanmean(mean) > 0.6
    assert (mean[:8] > 0.5).all(), mean  # every tenth until the last ones stays homophilous


def _pure_blobs(n=3000, centers=6, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(scale=50.0, size=(centers, 8))
    y = np.repeat(np.arange(centers), n // centers)
    x = (c[y] + rng.normal(size=(y.size, 8))).astype(np.float32)
    return x, y


def test_item_batches_stay_near_root_on_pure_blobs():
    # a kNN graph that is 100% same-label: before, batches of 256 were at the random level from
    # the second batch on, most items more than 4 hops from ROOT
    import scipy.sparse.csgraph as csg

    x, y = _pure_blobs()
    idx = gw.build_index(x, labels=y, graphs=["knn"], k=10, seed=0)
    g = idx.graphs["knn"]
    assert (y[g.indices] == np.repeat(y, np.diff(g.indptr))).all()  # the premise: pure graph
    hom, near = [], []
    for seed in range(3):
        s = GraphWalkBatchSampler(idx, 256, seed=seed)
        batches = list(s)
        for i, b in enumerate(batches[: len(batches) // 2]):
            hom.append(_hom(b, y))
            root = s.batch_info(i).root
            hops = csg.shortest_path(g.to_scipy(), unweighted=True, indices=[root])[0][b]
            near.append(np.mean(hops <= 4))
    # a batch spills into another blob only when ROOT's blob runs out of unused items
    assert np.mean(hom) > 0.9 and np.median(hom) > 0.99, hom
    assert np.mean(near) > 0.85 and np.median(near) > 0.95, near


def test_item_root_moves_to_neighbours_or_teleports(digits):
    # before: the next ROOT was an unused node 2-3 hops away, never a neighbour
    idx, _ = digits
    g = idx.graphs["knn"]
    s = GraphWalkBatchSampler(idx, 8, seed=0)
    list(s)
    roots = [s.batch_info(i).root for i in range(len(s))]
    moves = [r in set(g.neighbors(p).tolist()) for p, r in itertools.pairwise(roots)]
    assert np.mean(moves) > 0.3  # small batches leave unused items near ROOT: the walk moves
    # restart=1 always teleports: the next ROOT is a uniformly random unused item, rarely adjacent
    t = GraphWalkBatchSampler(idx, 8, seed=0, restart=1.0)
    list(t)
    roots = [t.batch_info(i).root for i in range(len(t))]
    assert np.mean([r in set(g.neighbors(p).tolist()) for p, r in itertools.pairwise(roots)]) < 0.1


def _ring_of_cliques(n_cliques=20, size=10):
    src, dst = [], []
    for c in range(n_cliques):
        base = c * size
        for a in range(size):
            for b in range(size):
                if a != b:
                    src.append(base + a)
                    dst.append(base + b)
        nxt = ((c + 1) % n_cliques) * size
        src += [base, nxt]
        dst += [nxt, base]
    n = n_cliques * size
    ip, ix, w = csr_from_edges(n, src, dst)
    return gw.GraphIndex(n, graphs={"knn": Graph("knn", "item", ip, ix, w, space="input")})


def test_item_walk_with_replacement_is_not_periodic():
    # before: period 4, 7 distinct ROOTs in 20,000 batches on a 200-node graph
    idx = _ring_of_cliques()
    s = GraphWalkBatchSampler(idx, 5, replacement=True, num_batches=20_000, seed=3)
    list(s)
    roots = np.array([s.batch_info(i).root for i in range(len(s))])
    assert len(set(roots.tolist())) == 200  # the walk covers the whole ring
    g = idx.graphs["knn"]
    moved = [r in set(g.neighbors(p).tolist()) for p, r in itertools.pairwise(roots)]
    assert np.mean(moved) > 0.99  # restart=0: every step is a move to a neighbour
    # long-run visits of a random walk are proportional to degree: on a well-mixing graph (ER,
    # undirected) the visit counts pass a chi-square test against deg / sum(deg)
    er = er_graph(200, degree=8, seed=1)
    er_idx = gw.GraphIndex(
        200, graphs={"knn": Graph("knn", "item", er.indptr, er.indices, er.weights, space="x")}
    )
    t = GraphWalkBatchSampler(er_idx, 1, replacement=True, num_batches=40_000, seed=3)
    list(t)
    roots = np.array([t.batch_info(i).root for i in range(len(t))])
    deg = np.diff(er.indptr)
    visits = np.bincount(roots, minlength=200)
    expected = deg / deg.sum() * roots.size
    chi2 = ((visits - expected) ** 2 / expected).sum()
    assert chi2 < 300, chi2  # 199 degrees of freedom: ~200 expected; a periodic walk gives ~1e6


def test_item_teleports_are_uniform_and_never_stuck():
    # before: with mix=0 every teleport returned to the same item
    from scipy.stats import chisquare

    idx = _ring_of_cliques()
    s = GraphWalkBatchSampler(idx, 5, replacement=True, num_batches=20_000, restart=1.0, seed=4)
    list(s)
    roots = np.array([s.batch_info(i).root for i in range(len(s))])
    assert chisquare(np.bincount(roots, minlength=200)).pvalue > 1e-3


def test_item_weighted_moves_follow_edge_weights():
    # before: weighted=True was silently ignored on item graphs
    from scipy.stats import chisquare

    weights = np.array([1.0, 2.0, 7.0])
    src = [0, 0, 0, 1, 2, 3]
    dst = [1, 2, 3, 0, 0, 0]
    w = np.concatenate([weights, [1.0, 1.0, 1.0]])
    ip, ix, ww = csr_from_edges(4, src, dst, w)
    idx = gw.GraphIndex(4, graphs={"knn": Graph("knn", "item", ip, ix, ww, space="input")})
    s = GraphWalkBatchSampler(idx, 1, replacement=True, num_batches=12_000, weighted=True, seed=5)
    list(s)
    roots = np.array([s.batch_info(i).root for i in range(len(s))])
    after_centre = roots[1:][roots[:-1] == 0]
    counts = np.bincount(after_centre, minlength=4)[1:]
    assert chisquare(counts, weights / weights.sum() * counts.sum()).pvalue > 1e-3
    uniform = GraphWalkBatchSampler(idx, 1, replacement=True, num_batches=12_000, seed=5)
    list(uniform)
    r2 = np.array([uniform.batch_info(i).root for i in range(len(uniform))])
    c2 = np.bincount(r2[1:][r2[:-1] == 0], minlength=4)[1:]
    assert chisquare(c2).pvalue > 1e-3  # and uniformly without weights


def test_mix_is_exact_on_average():
    # before: rounded per batch (batch 2, mix 0.25 gave 0.5; batch 3, mix 0.1 gave 0)
    from graphwalk.walk.kernels import mix_counts

    for size, mix in ((2, 0.25), (3, 0.1), (64, 0.3), (7, 0.29)):
        sizes = np.full(1000, size, np.int64)
        n_out = mix_counts(sizes, mix)
        assert n_out.sum() == int(np.floor(mix * sizes.sum() + 1e-9))
        assert (n_out >= 0).all() and (n_out <= sizes).all()
        assert np.abs(np.cumsum(n_out) - mix * np.cumsum(sizes)).max() < 1
    # through the walk: with k=0 an item comes from outside ROOT's cluster only as a mix item
    idx = _literal(10, [(i, (i + 1) % 10) for i in range(10)], [200] * 10)
    s = GraphWalkBatchSampler(idx, 2, k=0, mix=0.25, seed=0)
    batches = list(s)[:400]  # early on, before communities run dry
    outside = sum(
        sum(1 for i in b if i // 200 != s.batch_info(j).root) for j, b in enumerate(batches)
    )
    assert outside == 200  # exactly 0.25 of 800 items


def test_k_on_an_item_graph_is_refused(digits):
    idx, _ = digits
    with pytest.raises(InputError, match="k=4 applies to cluster graphs"):
        GraphWalkBatchSampler(idx, 64, k=4)


def test_len_formula_when_leftovers_fold_into_the_previous_round():
    # the README's formula: ceil(n / (batch_size * world_size)), minus one when the last round
    # would hold fewer than world_size items (they join the previous round's batches)
    for n, bs, world in itertools.product([26, 50, 97, 100], [3, 7, 10], [1, 2, 4]):
        if n < world:
            continue
        per = math.ceil(n / (bs * world))
        if n - (per - 1) * bs * world < world:
            per -= 1
        assert batch_sizes(n, bs, world, drop_last=False)[1] == per


class _RandomLearner(WalkPolicy):
    """Chooses from the candidates (sometimes a node with items left, sometimes a teleport) with
    its own RNG and scores that rewards change: every choice depends on its state."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.score = {}

    def select(self, step):
        u = self.rng.random()
        if len(step.candidates) and u < 0.7:
            s = np.array([self.score.get(int(c), 0.0) for c in step.candidates])
            p = np.exp(s - s.max())
            return int(self.rng.choice(step.candidates, p=p / p.sum()))
        if u < 0.85:
            alive = step.alive()
            if len(alive):
                return int(self.rng.choice(alive))
        return -1

    def learn(self, step, reward):
        self.score[step.root] = self.score.get(step.root, 0.0) + reward

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state, "score": dict(self.score)}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["rng"]
        self.score = dict(state["score"])


def _run_with_rewards(sampler, n_batches=None, lag=0):
    """Iterate like a loader running ``lag`` batches ahead, reporting a reward per batch."""
    out, it, ahead = [], iter(sampler), []
    for b in it:
        ahead.append(b)
        if len(ahead) > lag:
            done = ahead.pop(0)
            out.append(done)
            sampler.report(float(sum(done) % 5))
            if n_batches is not None and len(out) == n_batches:
                return out
    for done in ahead:
        out.append(done)
        sampler.report(float(sum(done) % 5))
        if n_batches is not None and len(out) == n_batches:
            break
    return out


@given(item_case(), st.booleans(), st.integers(0, 3))
def test_property_learning_policy_keeps_coverage_and_resumes_exactly(case, item_graph, lag):
    n, degree, _, bs, seed = case
    rng = np.random.default_rng(seed)
    if item_graph:
        src = np.repeat(np.arange(n), degree)
        ip, ix, w = csr_from_edges(n, src, rng.integers(0, n, src.size))
        idx = gw.GraphIndex(n, graphs={"g": Graph("g", "item", ip, ix, w, space="x")})
    else:
        k = max(2, min(12, n // 3))
        idx = _literal(
            k, [(i, (i + 1) % k) for i in range(k)], np.bincount(rng.integers(0, k, n), minlength=k)
        )
    for replacement in (False, True):
        kw = dict(seed=seed, replacement=replacement)
        if replacement:
            kw["num_batches"] = 6
        full_s = GraphWalkBatchSampler(idx, bs, policy=_RandomLearner(seed), **kw)
        full = _run_with_rewards(full_s, lag=lag)
        assert len(full) == len(full_s)
        if not replacement:
            assert sorted(_flat(full)) == list(range(idx.n_items))
        assert all(len(set(b)) == len(b) for b in full)
        cut = seed % (len(full) + 1)
        head_s = GraphWalkBatchSampler(idx, bs, policy=_RandomLearner(seed), **kw)
        head = _run_with_rewards(head_s, n_batches=cut, lag=lag) if cut else []
        state = pickle.loads(pickle.dumps(head_s.state_dict()))
        rest_s = GraphWalkBatchSampler(idx, bs, policy=_RandomLearner(seed + 1), **kw)
        rest_s.load_state_dict(state)
        assert head + _run_with_rewards(rest_s, lag=lag) == full


def test_resume_through_a_dataloader_with_workers_keeps_the_epoch(index):
    # torch's DataLoader with workers calls iter() twice: the first call must not use up the resume
    ds = TensorDataset(torch.arange(700))
    full = list(GraphWalkBatchSampler(index, 40, graph="knn", seed=5))
    s = GraphWalkBatchSampler(index, 40, graph="knn", seed=5)
    it = iter(s)
    head = [next(it) for _ in range(7)]
    t = GraphWalkBatchSampler(index, 40, graph="knn", seed=5)
    t.load_state_dict(s.state_dict())
    rest = [b[0].tolist() for b in DataLoader(ds, batch_sampler=t, num_workers=2)]
    assert t.epoch == 0 and head + rest == full


@pytest.mark.parametrize("batch_size", [64, 256])
def test_item_homophily_is_within_the_target_of_the_reference_walk(digits, batch_size):
    # the target: in every tenth of the epoch but the last, the sampler's lift over random
    # is at least 90% of the plain reference walk's (means over 100 seeds each, same batch sizes;
    # a tenth of digits holds 1-3 batches, so fewer seeds leave a +-10% noise on the ratio)
    from graphwalk.walk.homophily import compare_lifts, homophily_by_tenth
    from graphwalk.walk.reference import reference_item_batches

    idx, y = digits
    g = idx.graphs["knn"]
    SEEDS = 100

    def pooled(runs):
        res = [homophily_by_tenth(b, y) for b in runs]
        tenths = [
            None
            if any(r["tenths"][t] is None for r in res)
            else float(np.mean([r["tenths"][t] for r in res]))
            for t in range(10)
        ]
        rand = res[0]["random"]
        return {"tenths": tenths, "lift": [None if h is None else h - rand for h in tenths]}

    ours = [list(GraphWalkBatchSampler(idx, batch_size, seed=s)) for s in range(SEEDS)]
    sizes = [len(b) for b in ours[0]]
    ref = [
        reference_item_batches(g.indptr, g.indices, g.weights, sizes, seed=s, move="two-hop")
        for s in range(SEEDS)
    ]
    cmp = compare_lifts(pooled(ours), pooled(ref))
    assert cmp["all_met"], cmp["ratio"]


def test_flat_sampler_with_a_policy_reports_per_batch(index):
    pol = _RandomLearner(0)
    s = GraphWalkSampler(index, 64, graph="knn", policy=pol, seed=0)
    dl = DataLoader(TensorDataset(torch.arange(700)), sampler=s, batch_size=64)
    seen = []
    for (x,) in dl:
        info = s.report(float(x.float().mean()))
        assert info.size == len(x) and s.batch_info(info.batch).root == info.root
        seen += x.tolist()
    assert sorted(seen) == list(range(700)) and pol.score  # every item once; rewards reached it


def test_late_batches_are_completed_from_the_walk_order(digits):
    # when a batch's search budget is spent, the rest of the batch is the unused items that follow
    # ROOT in the stored walk order (ROOT's cluster, breadth-first): every item between ROOT and a
    # filled item in that order was used before
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    idx = gw.build_index(x.astype(np.float32), labels=y, clusters=30, graphs=["knn"], k=10, seed=0)
    w = idx.graphs["knn"].walk
    assert w is not None and w.method == "cluster-bfs"
    s = GraphWalkBatchSampler(idx, 64, seed=0)
    batches = list(s)
    n = idx.n_items
    used_before = np.zeros(n, bool)
    filled = 0
    for i, b in enumerate(batches):
        info = s.batch_info(i)
        if info.random_fill:
            fill = b[len(b) - info.random_fill :]  # mix=0: the fill ends the batch
            root_pos = int(w.position[info.root])
            in_batch = np.zeros(n, bool)
            in_batch[b] = True
            for item in fill:
                gap = (int(w.position[item]) - root_pos) % n
                between = w.order[(root_pos + 1 + np.arange(gap)) % n]
                assert (used_before[between] | in_batch[between]).all()
            filled += len(fill)
        used_before[b] = True
    assert filled > 0  # the late epoch did run out of budget


def test_reports_make_a_plain_dataloader_with_workers_resume_exactly(index):
    # without reports the sampler's own state counts the batches the workers prefetched
    ds = TensorDataset(torch.arange(700))
    full = list(GraphWalkBatchSampler(index, 40, graph="er", seed=2))
    s = GraphWalkBatchSampler(index, 40, graph="er", seed=2)
    head = []
    for (x,) in DataLoader(ds, batch_sampler=s, num_workers=2):
        head.append(x.tolist())
        s.report()  # trained: no policy, no reward
        if len(head) == 5:
            state = s.state_dict()
            break
    assert state["yielded"] == 5
    t = GraphWalkBatchSampler(index, 40, graph="er", seed=2)
    t.load_state_dict(state)
    rest = [x.tolist() for (x,) in DataLoader(ds, batch_sampler=t, num_workers=2)]
    assert head + rest == full
    with pytest.raises(InputError, match="no policy to learn from a reward"):
        t.report(1.0)
    with pytest.raises(ValueError, match="epoch should be an integer >= 0"):
        t.set_epoch(-1)


def test_flush_rewards_hands_over_the_last_ones(index):
    pol = _RandomLearner(0)
    learned = []
    pol.learn = lambda step, reward: learned.append((step.epoch, step.batch))
    s = GraphWalkBatchSampler(index, 64, graph="knn", policy=pol, seed=0)
    for _ in s:
        s.report(1.0)
    assert len(learned) < len(s)  # the last round's reward waits for a next decision
    s.flush_rewards()
    assert learned == [(0, b) for b in range(len(s))]


# ---------------------------------------------------------------------------------------------
# issue 7: walking a subset of the indexed items (a train split of an index over the whole data)


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("mix", [0.0, 0.3])
def test_a_subset_is_walked_once_per_epoch_with_exact_length_and_resume(index, graph, mix):
    ids = np.random.default_rng(0).choice(700, 450, replace=False)
    kw = dict(graph=graph, mix=mix, seed=3, items=ids)
    s = GraphWalkBatchSampler(index, 32, **kw)
    batches = list(s)
    assert len(batches) == len(s) == 15 and s.n_walked == 450
    assert sorted(_flat(batches)) == sorted(ids.tolist())
    t = GraphWalkBatchSampler(index, 32, **kw)
    it = iter(t)
    head = [next(it) for _ in range(6)]
    u = GraphWalkBatchSampler(index, 32, **kw)
    u.load_state_dict(t.state_dict())
    assert head + list(u) == batches
    other = GraphWalkBatchSampler(index, 32, graph=graph, mix=mix, seed=3, items=ids[:-1])
    with pytest.raises(InputError, match="items="):
        other.load_state_dict(t.state_dict())
    # ranks share the subset
    per_rank = [
        list(GraphWalkBatchSampler(index, 32, rank=r, world_size=2, **kw)) for r in range(2)
    ]
    assert sorted(i for b in per_rank for i in _flat(b)) == sorted(ids.tolist())


def test_a_subset_item_walk_stays_homophilous(digits):
    idx, y = digits
    train = np.random.default_rng(1).permutation(len(y))[:1400]
    batches = list(GraphWalkBatchSampler(idx, 64, items=train, seed=0))
    hom = _by_tenth(batches, y)
    assert np.nanmean(hom[:8]) > 0.6  # neighbourhoods of the split, not random batches


def test_a_torch_subset_yields_positions_in_it(index):
    from torch.utils.data import Subset

    full = TensorDataset(torch.arange(700) * 10)
    ids = np.random.default_rng(2).choice(700, 300, replace=False).tolist()
    sub = Subset(full, ids)
    s = GraphWalkBatchSampler(index, 50, graph="knn", dataset=sub, seed=0)
    got = [b[0].tolist() for b in DataLoader(sub, batch_sampler=s, num_workers=2)]
    assert sorted(v // 10 for b in got for v in b) == sorted(ids)  # every item of the split once
    same = list(GraphWalkBatchSampler(index, 50, graph="knn", items=ids, seed=0))
    assert [[v // 10 for v in b] for b in got] == same  # the same walk, as positions


def test_bad_subsets_are_refused(index):
    with pytest.raises(InputError, match="outside the index's 700 items"):
        GraphWalkBatchSampler(index, 10, graph="er", items=[0, 700])
    with pytest.raises(InputError, match="duplicate"):
        GraphWalkBatchSampler(index, 10, graph="er", items=[1, 1, 2])
    with pytest.raises(InputError, match="empty"):
        GraphWalkBatchSampler(index, 10, graph="er", items=np.array([], np.int64))
    with pytest.raises(TypeError, match="integer item ids"):
        GraphWalkBatchSampler(index, 10, graph="er", items=[0.5, 1.5])
    with pytest.raises(InputError, match="larger than the 3 items of the items walked"):
        GraphWalkBatchSampler(index, 10, graph="er", items=[0, 1, 2])
    with pytest.raises(InputError, match="Subset"):
        GraphWalkBatchSampler(index, 10, graph="er", dataset=list(range(5)))


def test_a_batch_larger_than_a_community_is_announced(index):
    # issue 7: clusters smaller than the batch dilute every batch with random clusters' items
    x, y = make_blobs(n=700, dim=6, centers=7)
    small = gw.build_index(x, labels=y, clusters=50, graphs=["er"], seed=1)
    with pytest.warns(RuntimeWarning, match=r"batches of 256 are larger than a typical community"):
        s = GraphWalkBatchSampler(small, 256, k=4)
    assert 15 < s.clusters_per_batch < 21  # 256 / (700 / 50)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = GraphWalkBatchSampler(index, 32, graph="er", k=4)  # 20 clusters of 35: fits
    assert t.clusters_per_batch < 1


def test_state_fields_out_of_range_are_refused(index):
    # issue 7: yielded=-3 was accepted, then an empty batch and repeated items followed
    s = GraphWalkBatchSampler(index, 40, graph="er")
    state = s.state_dict()
    for key, bad in (("yielded", -3), ("yielded", 10_000), ("yielded", 2.5), ("epoch", -1)):
        with pytest.raises(InputError, match=f"state field '{key}'"):
            GraphWalkBatchSampler(index, 40, graph="er").load_state_dict({**state, key: bad})


def test_numpy_scalars_are_accepted_where_numbers_are(index):
    # issue 7: mix=np.float32(0.1) was refused as out of range
    s = GraphWalkBatchSampler(index, np.int64(40), graph="er", mix=np.float32(0.1), k=np.int32(2))
    assert abs(s.mix - 0.1) < 1e-6 and s.k == 2 and s.batch_size == 40
    assert sorted(_flat(s)) == list(range(700))


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, None, True])
def test_the_seed_is_checked(index, seed):
    with pytest.raises((InputError, TypeError), match="seed"):
        GraphWalkBatchSampler(index, 50, graph="er", seed=seed)


def test_a_state_taken_before_the_index_was_saved_loads_after(tmp_path):
    x, y = make_blobs(n=300, dim=4, centers=3)
    idx = gw.build_index(x, labels=y, clusters=6, graphs=["er", "knn"], k=4, seed=0)
    for graph in ("er", "knn"):
        kw = {"k": 2} if graph == "er" else {}
        s = GraphWalkBatchSampler(idx, 16, graph=graph, **kw)
        it = iter(s)
        head = [next(it) for _ in range(5)]
        state = s.state_dict()
        rest = list(it)
        idx.save(tmp_path / f"{graph}.gw")
        for target in (idx, gw.GraphIndex.load(tmp_path / f"{graph}.gw")):
            t = GraphWalkBatchSampler(target, 16, graph=graph, **kw)
            t.load_state_dict(state)
            assert head + list(t) == head + rest
        other = gw.build_index(x[::-1].copy(), labels=y, clusters=6, graphs=[graph], k=4, seed=0)
        with pytest.raises(InputError, match="the state was saved with index="):
            GraphWalkBatchSampler(other, 16, graph=graph, **kw).load_state_dict(state)
