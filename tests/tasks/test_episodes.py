"""EpisodeSampler: the layout, the class choices, determinism, ranks, workers, resume, and every
bad input (graphwalk/tasks/episodes.py)."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import graphwalk as gw
from graphwalk.errors import InputError
from graphwalk.tasks import EpisodeLabels, EpisodeSampler, collate_episode, split_classes


def _blobs(n_classes=40, per=30, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=8.0, size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), per)
    x = centres[y] + rng.normal(size=(y.size, dim))
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def index():
    """40 label classes of 30 items, a parent label (4 groups of 10 classes) and a sparse
    cluster graph over the classes (each class to its 3 nearest)."""
    x, y = _blobs()
    parent = y // 10
    return gw.build_index(
        x,
        labels={"label": y, "group": parent},
        groups=["labels"],
        graphs=["knn-clusters"],
        graph_level="labels",
        k=3,
        seed=0,
    )


def _sampler(index, **kw):
    settings = {"level": "labels", "n_way": 5, "k_shot": 2, "q_query": 3, "episodes": 50}
    return EpisodeSampler(index, **{**settings, **kw})


# ----------------------------------------------------------------------------- layout


def test_layout_support_then_query_grouped_by_label(index):
    s = _sampler(index)
    label_of = index.level("labels").assignment
    eps = list(s)
    assert len(eps) == len(s) == 50
    for ep, classes in zip(eps, s.episode_classes(), strict=True):
        assert len(ep) == 5 * (2 + 3) == s.episode_size
        assert len(set(ep)) == len(ep)  # no item twice in an episode
        assert len(set(classes.tolist())) == 5
        support, query = ep[:10], ep[10:]
        for j, c in enumerate(classes):
            assert {int(label_of[i]) for i in support[2 * j : 2 * j + 2]} == {int(c)}
            assert {int(label_of[i]) for i in query[3 * j : 3 * j + 3]} == {int(c)}


def test_collate_gives_episode_labels_and_the_classes(index):
    x, y = _blobs()
    s = _sampler(index)
    ds = EpisodeLabels(TensorDataset(torch.as_tensor(x), torch.as_tensor(y)), s)
    loader = DataLoader(ds, batch_sampler=s, collate_fn=collate_episode(5, 2, 3))
    sx, sy, qx, qy, ids = next(iter(loader))
    assert sx.shape == (10, 6) and qx.shape == (15, 6)
    assert sy.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert qy.tolist() == [j for j in range(5) for _ in range(3)]
    assert ids.tolist() == s.episode_classes(0)[0].tolist()
    # the support items of label j are items of class ids[j]
    centre = {c: x[y == c].mean(0) for c in range(40)}
    for j in range(5):
        d = {c: np.linalg.norm(sx[2 * j].numpy() - centre[c]) for c in range(40)}
        assert min(d, key=d.get) == int(ids[j])


def test_collate_refuses_a_batch_of_another_size():
    with pytest.raises(InputError, match="has 25 items, but the batch has 3"):
        collate_episode(5, 2, 3)([(torch.zeros(2), 0)] * 3)


# ----------------------------------------------------------------------------- randomness


def test_classes_uniform_and_labels_in_random_order(index):
    s = _sampler(index, episodes=4000, seed=3)
    classes = s.episode_classes()
    counts = np.bincount(classes.ravel(), minlength=40)
    expected = 4000 * 5 / 40
    # chi-square with 39 degrees of freedom: 99.9% quantile is about 72.1
    assert ((counts - expected) ** 2 / expected).sum() < 72.1
    # label 0 is not favoured by any class: its class is uniform too
    c0 = np.bincount(classes[:, 0], minlength=40)
    assert ((c0 - 100) ** 2 / 100).sum() < 72.1


def test_items_drawn_fresh_when_a_class_recurs(index):
    s = _sampler(index, episodes=2000, k_shot=1, q_query=1, seed=1)
    items, classes = s.plan(0)
    seen = Counter(items[:, :5][classes == 7].tolist())  # the support items
    assert len(seen) == 30  # every item of class 7 was drawn
    n = sum(seen.values())
    assert max(seen.values()) < 2 * n / 30  # none much more often than the others


def test_deterministic_per_seed_and_epoch(index):
    a, b = _sampler(index, seed=5), _sampler(index, seed=5)
    assert list(a) == list(b)
    e1 = list(a)  # a second pass without set_epoch is epoch 1
    assert a.epoch == 1
    b.set_epoch(1)
    assert list(b) == e1
    c = _sampler(index, seed=6)
    assert list(c) != list(_sampler(index, seed=5))
    d = _sampler(index, seed=5)
    d.set_epoch(1)
    assert list(d) == e1
    d.set_epoch(0)
    assert list(d) != e1


def test_a_second_pass_advances_the_epoch_and_set_epoch_pins_it(index):
    s = _sampler(index)
    first, second = list(s), list(s)
    assert first != second and s.epoch == 1
    s.set_epoch(0)
    assert list(s) == first


# ----------------------------------------------------------------------------- class choices


def _distances(index):
    import networkx as nx

    g = index.graph("knn-clusters")
    G = nx.Graph()
    for v in range(g.n_nodes):
        for u in g.indices[g.indptr[v] : g.indptr[v + 1]]:
            G.add_edge(v, int(u))
    return dict(nx.all_pairs_shortest_path_length(G))


def _mean_spread(classes, dist):
    return np.mean(
        [
            np.mean([dist[a][b] for a, b in itertools.combinations(row.tolist(), 2)])
            for row in classes
        ]
    )


def test_walk_episodes_hold_neighbouring_classes(index):
    dist = _distances(index)
    walk = _sampler(index, classes="walk", episodes=500, seed=2).episode_classes()
    uni = _sampler(index, classes="uniform", episodes=500, seed=2).episode_classes()
    assert _mean_spread(walk, dist) < 0.7 * _mean_spread(uni, dist)
    # each walk episode's classes lie within 2 hops of one of them (ROOT)
    for row in walk[:100].tolist():
        assert any(all(dist[r][c] <= 2 for c in row) for r in row)
    # ROOT moves: the episodes do not keep one neighbourhood
    assert len({frozenset(r) for r in walk.tolist()}) > 100


def test_within_a_parent_level(index):
    s = _sampler(index, classes="within:group", episodes=300)
    group = index.level("group").values  # cluster -> label value
    parent_of = {c: int(c) // 10 for c in range(40)}
    for row in s.episode_classes().tolist():
        assert len({parent_of[c] for c in row}) == 1
    assert set(np.asarray(group).tolist()) == {0, 1, 2, 3}
    # every parent is used
    assert {parent_of[row[0]] for row in s.episode_classes().tolist()} == {0, 1, 2, 3}


def test_a_split_limits_the_classes(index):
    sp = split_classes(40, (24, 8, 8), level="labels", seed=0)
    train = set(sp.train.tolist())
    s = _sampler(index, split=sp.train, episodes=300)
    assert set(s.episode_classes().ravel().tolist()) <= train
    t = _sampler(index, split=sp.test, n_way=5, episodes=300)
    assert set(t.episode_classes().ravel().tolist()) <= set(sp.test.tolist())


# ----------------------------------------------------------------------------- ranks, workers


def test_ranks_get_disjoint_equal_shares_of_the_epoch(index):
    full = _sampler(index, episodes=53, seed=4)
    items, _ = full.plan(0)
    shards = [list(_sampler(index, episodes=53, seed=4, rank=r, world_size=3)) for r in range(3)]
    assert (
        [len(s) for s in shards]
        == [17, 17, 17]
        == [len(_sampler(index, episodes=53, rank=r, world_size=3)) for r in range(3)]
    )
    rows = [tuple(e) for s in shards for e in s]
    assert len(set(rows)) == 51
    assert set(rows) <= {tuple(r) for r in items.tolist()}


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_workers_do_not_repeat_episodes(index, workers):
    s = _sampler(index, episodes=40, seed=8)
    expected = list(_sampler(index, episodes=40, seed=8))
    ds = TensorDataset(torch.arange(index.n_items))
    loader = DataLoader(ds, batch_sampler=s, num_workers=workers, collate_fn=lambda b: b)
    got = [[int(t[0]) for t in batch] for batch in loader]
    assert got == expected


# ----------------------------------------------------------------------------- resume


def test_resume_in_the_middle_of_an_epoch(index):
    s = _sampler(index, seed=9)
    s.set_epoch(3)
    full = list(s)
    s.set_epoch(3)
    it = iter(s)
    head = [next(it) for _ in range(17)]
    state = s.state_dict()
    t = _sampler(index, seed=9)
    t.load_state_dict(state)
    assert head + list(t) == full
    assert t.epoch == 3
    # the pass after the resumed one is the next epoch, whole
    u = _sampler(index, seed=9)
    u.set_epoch(4)
    v = _sampler(index, seed=9)
    v.load_state_dict(state)
    list(v)
    assert list(v) == list(u)


def test_a_stateful_dataloader_resumes_exactly(index):
    tdl = pytest.importorskip(
        "torchdata.stateful_dataloader",
        reason="StatefulDataLoader comes with torchdata ([dev] extra)",
    )
    ds = TensorDataset(torch.arange(index.n_items))
    s = _sampler(index, seed=11)
    loader = tdl.StatefulDataLoader(ds, batch_sampler=s, num_workers=2, collate_fn=lambda b: b)
    it = iter(loader)
    head = [next(it) for _ in range(12)]
    state = loader.state_dict()
    s2 = _sampler(index, seed=11)
    loader2 = tdl.StatefulDataLoader(ds, batch_sampler=s2, num_workers=2, collate_fn=lambda b: b)
    loader2.load_state_dict(state)
    rest = list(loader2)
    flat = [[int(t[0]) for t in b] for b in head + rest]
    assert flat == list(_sampler(index, seed=11))


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_are_one_clear_error(index):
    with pytest.raises(InputError, match=r"n_way=41 but only 40 classes .* use n_way <= 40"):
        _sampler(index, n_way=41)
    with pytest.raises(InputError, match=r"40 classes of level 'labels' have fewer than"):
        _sampler(index, k_shot=20, q_query=20)
    with pytest.raises(InputError, match="classes should be one of"):
        _sampler(index, classes="nearest")
    with pytest.raises(InputError, match="within:labels' names the level itself"):
        _sampler(index, classes="within:labels")
    with pytest.raises(InputError, match="within:labels needs a level coarser than 'group'"):
        EpisodeSampler(index, level="group", n_way=2, k_shot=1, q_query=1, classes="within:labels")
    with pytest.raises(InputError, match="no parent of level 'group' has n_way=11"):
        _sampler(index, n_way=11, classes="within:group")
    with pytest.raises(InputError, match="split names classes"):
        _sampler(index, split=[0, 1, 99])
    with pytest.raises(InputError, match=r"n_way=5 but only 3 classes"):
        _sampler(index, split=[0, 1, 2])
    with pytest.raises(InputError, match="graph='knn-clusters' is for classes='walk' only"):
        _sampler(index, graph="knn-clusters")
    with pytest.raises(InputError, match="episodes=2 cannot be shared by world_size=3"):
        _sampler(index, episodes=2, rank=0, world_size=3)
    with pytest.raises(InputError, match="index has no level 'kmeans'"):
        _sampler(index, level="kmeans")


def test_walk_needs_a_graph_over_the_level():
    x, y = _blobs()
    idx = gw.build_index(x, labels=y, groups=["labels"], clusters=20, graphs=["er"], seed=0)
    with pytest.raises(
        InputError, match="needs a cluster graph over level 'labels'.*--graph-level labels"
    ):
        EpisodeSampler(idx, level="labels", n_way=5, k_shot=1, q_query=1, classes="walk")
    with pytest.raises(InputError, match="graph 'er' is over kmeans, not over the classes"):
        EpisodeSampler(
            idx, level="labels", n_way=5, k_shot=1, q_query=1, classes="walk", graph="er"
        )
    # over the k-means level the er graph serves (unsupervised episodes, as CACTUs)
    s = EpisodeSampler(idx, level="kmeans", n_way=5, k_shot=1, q_query=1, classes="walk")
    assert s.graph_name == "er" and len(list(s)) == len(s)


def test_small_classes_dropped_with_a_warning_on_request():
    x, y = _blobs(n_classes=12, per=10)
    y = y.copy()
    y[:8] = 1  # class 0 keeps 2 items
    idx = gw.build_index(x, labels=y, groups=["labels"], graphs=[], seed=0)
    with pytest.raises(
        InputError, match=r"1 classes of level 'labels' have fewer than .*: 0 \(2\)"
    ):
        EpisodeSampler(idx, level="labels", n_way=5, k_shot=2, q_query=2)
    with pytest.warns(RuntimeWarning, match="left out 1 classes"):
        s = EpisodeSampler(idx, level="labels", n_way=5, k_shot=2, q_query=2, small="drop")
    assert 0 not in set(s.episode_classes().ravel().tolist())


def test_a_state_from_another_sampler_or_settings_is_refused(index):
    walk = gw.GraphWalkBatchSampler(index, 16, graph="knn-clusters", seed=0)
    s = _sampler(index)
    with pytest.raises(InputError, match="not an EpisodeSampler state"):
        s.load_state_dict(walk.state_dict())
    with pytest.raises(InputError, match="saved with n_way=4 but this sampler has n_way=5"):
        s.load_state_dict(_sampler(index, n_way=4).state_dict())
    with pytest.raises(InputError, match="saved with the classes allowed"):
        s.load_state_dict(_sampler(index, split=np.arange(30)).state_dict())
