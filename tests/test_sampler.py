import itertools
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

import graphwalk as gw
from graphwalk.cluster import Level
from graphwalk.errors import InputError
from graphwalk.graphs import Graph, csr_from_edges, er_graph
from graphwalk.policy import WalkPolicy
from graphwalk.sampler import GraphWalkBatchSampler, GraphWalkSampler, batch_sizes
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
    with pytest.raises(InputError, match="mix should be in"):
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

    def choose(self, batch, previous_root, candidates, remaining):
        self.calls.append((batch, previous_root, candidates.tolist()))
        return self.order[batch]


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
