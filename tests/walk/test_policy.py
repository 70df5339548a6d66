"""The online-policy protocol (graphwalk.walk.policy) as a learner relies on it.

A :class:`LearningPolicy` that learns from rewards and draws from its own RNG steers walks over a
cluster graph ("er") and an item graph ("knn"). The tests check that every reward reaches
``learn()`` with the step of the very batch it rewards, whatever the loader's delay (and give the
delay as a figure), that resume replays the decided choices and continues exactly (plain
``DataLoader`` and ``StatefulDataLoader``, 0 and 2 workers), that ``observe()`` tells what was
actually used, that ``select()`` can steer (teleports, ``alive()``) and is refused when it
returns nonsense, and how non-finite rewards and misuse of ``report()`` are handled. The two-rank
version is in ``test_distributed.py``.
"""

from __future__ import annotations

import itertools
import pickle
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import graphwalk as gw
from graphwalk.build.graphs import csr_from_edges
from graphwalk.errors import InputError
from graphwalk.index.types import Graph, Level
from graphwalk.walk.policy import TELEPORT, WalkPolicy, WalkStep
from graphwalk.walk.sampler import GraphWalkBatchSampler
from tests.conftest import make_blobs

N = 700
BATCH = 32
GRAPHS = ["er", "knn"]


@pytest.fixture(scope="module")
def index():
    x, y = make_blobs(n=N, dim=6, centers=7)
    return gw.build_index(x, labels=y, clusters=20, graphs=["er", "knn"], k=5, seed=1)


class LearningPolicy(WalkPolicy):
    """Chooses among the candidates with softmax probabilities over its own learned per-node
    scores (running mean of the rewards of the batches rooted there), drawing from its own
    generator. With no candidate it teleports or picks a node of ``step.alive()``, half the time
    each. Records every call it gets."""

    def __init__(self, n_nodes: int, seed: int = 0, temperature: float = 0.5) -> None:
        self.scores = np.zeros(n_nodes)
        self.counts = np.zeros(n_nodes, np.int64)
        self.rng = np.random.default_rng(seed)
        self.temperature = temperature
        self.resets: list[tuple[int, int]] = []
        self.selects: list[dict[str, Any]] = []  # what select() saw and returned
        self.observed: list[WalkStep] = []
        self.learned: list[tuple[WalkStep, float]] = []

    def reset(self, epoch: int, seed: int) -> None:
        self.resets.append((epoch, seed))

    def select(self, step: WalkStep) -> int:
        record = {
            "epoch": step.epoch,
            "batch": step.batch,
            "previous_root": step.previous_root,
            "candidates": step.candidates.tolist(),
            "remaining": step.remaining.tolist(),
            "learned": [(s.epoch, s.batch) for s, _ in self.learned],
        }
        self.selects.append(record)
        if step.candidates.size:
            pool = step.candidates
        elif self.rng.random() < 0.5:
            record["choice"] = TELEPORT
            return TELEPORT
        else:
            pool = step.alive()
        z = self.scores[pool] / self.temperature
        p = np.exp(z - z.max())
        choice = int(pool[self.rng.choice(pool.size, p=p / p.sum())])
        record["choice"] = choice
        return choice

    def observe(self, step: WalkStep) -> None:
        self.observed.append(step)

    def learn(self, step: WalkStep, reward: float) -> None:
        self.learned.append((step, reward))
        self.counts[step.root] += 1
        self.scores[step.root] += (reward - self.scores[step.root]) / self.counts[step.root]

    def state_dict(self) -> dict[str, Any]:
        return {
            "scores": self.scores.copy(),
            "counts": self.counts.copy(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scores = np.array(state["scores"], dtype=np.float64)
        self.counts = np.array(state["counts"], dtype=np.int64)
        self.rng.bit_generator.state = state["rng"]


class Scripted(WalkPolicy):
    """Returns the given choices in turn (then TELEPORT)."""

    def __init__(self, choices: list[Any]) -> None:
        self.choices = list(choices)
        self.n = 0

    def select(self, step: WalkStep) -> Any:
        self.n += 1
        return self.choices[self.n - 1] if self.n <= len(self.choices) else TELEPORT


def _reward(items: list[int]) -> float:
    """A deterministic function of a batch's items."""
    return float(np.mean(items)) % 7


def _sampler(index, graph, policy, **kw) -> GraphWalkBatchSampler:
    if graph != "knn":
        kw.setdefault("k", 2)
    return GraphWalkBatchSampler(
        index, kw.pop("batch_size", BATCH), graph=graph, policy=policy, **kw
    )


def _node_of(index, graph: str) -> np.ndarray:
    """The graph node of every item: its cluster (cluster graphs) or itself (item graphs)."""
    g = index.graph(graph)
    if g.kind == "item":
        return np.arange(index.n_items)
    return index.levels[g.level].assignment.astype(np.int64)


def _literal(n_clusters: int, edges: list[tuple[int, int]], sizes: list[int]) -> gw.GraphIndex:
    """A hand-made cluster graph: cluster c holds the next ``sizes[c]`` item ids."""
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


def _dataset() -> TensorDataset:
    return TensorDataset(torch.arange(N))


# ----------------------------------------------------------------------------- late rewards
@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize(("workers", "prefetch"), [(0, None), (2, 2), (2, 4)])
def test_rewards_are_credited_exactly_whatever_the_delay(index, graph, workers, prefetch):
    pol = LearningPolicy(index.graph(graph).n_nodes, seed=3)
    s = _sampler(index, graph, pol, seed=5)
    loader = DataLoader(_dataset(), batch_sampler=s, num_workers=workers, prefetch_factor=prefetch)
    nb = len(s)
    ahead = workers * (prefetch or 0)  # batches the loader runs ahead of the training step
    node = _node_of(index, graph)
    batches: dict[tuple[int, int], list[int]] = {}
    rewards: dict[tuple[int, int], float] = {}
    roots: dict[tuple[int, int], int] = {}
    for epoch in range(2):
        s.set_epoch(epoch)
        delays = []
        for i, (x,) in enumerate(loader):
            items = x.tolist()
            r = _reward(items)
            info = s.report(r)
            assert (info.epoch, info.batch, info.global_batch, info.size) == (
                epoch,
                i,
                i,
                len(items),
            )
            key = (epoch, i)
            batches[key], rewards[key], roots[key] = items, r, info.root
            delays.append(info.delay)
        # the figure: 0 without workers, num_workers * prefetch_factor with them (fewer at the
        # end of the epoch, when fewer batches are left to prefetch)
        assert delays == [min(ahead, nb - 1 - i) for i in range(nb)], (workers, prefetch)
    # the last batches' rewards are handed over when the walk goes on: start the next epoch
    s.set_epoch(2)
    next(iter(s))

    keys = [(e, b) for e in range(2) for b in range(nb)]
    # every reward reached learn() once, in batch order ...
    assert [(step.epoch, step.batch) for step, _ in pol.learned] == keys
    observed = {(st.epoch, st.batch): st for st in pol.observed}
    for step, r in pol.learned:
        key = (step.epoch, step.batch)
        # ... with the reward computed from that very batch, and the step that drew it
        assert r == rewards[key], key
        assert step is observed[key]
        assert step.root == roots[key] and step.size == len(batches[key])
        if graph == "er":  # mix=0: the batch's items come from the community's clusters
            assert set(node[batches[key]]) <= set(step.community.tolist()), key
    # ... and no earlier than the delay says: when batch b is chosen, the policy has learned
    # from every batch up to b - 1 - delay (all of them without workers)
    for rec in (r for r in pol.selects if r["epoch"] < 2):
        e, b = rec["epoch"], rec["batch"]
        want = [(e0, b0) for e0, b0 in keys if e0 < e or (e0 == e and b0 < b - ahead)]
        assert rec["learned"] == want, (e, b)


# ----------------------------------------------------------------------------- resume
def _loader(kind: str, sampler, workers: int):
    if kind == "stateful":
        from torchdata.stateful_dataloader import StatefulDataLoader

        return StatefulDataLoader(_dataset(), batch_sampler=sampler, num_workers=workers)
    return DataLoader(_dataset(), batch_sampler=sampler, num_workers=workers)


def _train(index, graph, kind, workers, *, stop=None, checkpoint=None, policy_seed=3, tamper=None):
    """Two epochs with a reward per batch. ``stop=j``: return a pickled checkpoint after the
    reward of epoch 0's batch j. ``checkpoint``: resume from one first (with a fresh policy,
    sampler and loader). Returns (batches per epoch, checkpoint, policy, sampler)."""
    pol = LearningPolicy(index.graph(graph).n_nodes, seed=policy_seed)
    s = _sampler(index, graph, pol, seed=5)
    loader = _loader(kind, s, workers)
    out: list[list[list[int]]] = [[], []]
    first = 0
    if checkpoint is not None:
        ckpt = pickle.loads(checkpoint)
        if kind == "stateful":  # the documented recipe: the walk first, then the loader
            s.load_state_dict(ckpt["walk"])
            loader.load_state_dict(ckpt["loader"])
        else:
            s.load_state_dict(ckpt)
        if tamper is not None:
            tamper(pol)
        first = s.epoch
    for epoch in range(first, 2):
        if checkpoint is None or epoch != first:  # set_epoch would restart the resumed epoch
            s.set_epoch(epoch)
        it = iter(loader)
        for i, (x,) in enumerate(it):
            items = x.tolist()
            s.report(_reward(items))
            out[epoch].append(items)
            if stop is not None and epoch == 0 and i == stop:
                if kind == "stateful":
                    state = {"loader": loader.state_dict(), "walk": s.state_dict()}
                else:
                    state = s.state_dict()
                del it  # the run stops here (workers shut down)
                return out, pickle.dumps(state), pol, s
    return out, None, pol, s


def _flush(s: GraphWalkBatchSampler) -> None:
    """Hand the last rewards over by starting the next epoch."""
    s.set_epoch(2)
    next(iter(s))


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("kind", ["plain", "stateful"])
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_with_a_learning_policy_is_exact(index, graph, kind, workers):
    stop = 9
    full, _, pol_full, s_full = _train(index, graph, kind, workers)
    head, ckpt, pol_head, _ = _train(index, graph, kind, workers, stop=stop)
    assert head[0] == full[0][: stop + 1]
    # a fresh policy with another seed: only what the checkpoint restores can make it match
    rest, _, pol, s = _train(index, graph, kind, workers, checkpoint=ckpt, policy_seed=99)
    nb = len(full[0])
    assert len(rest[0]) == nb - stop - 1, (len(rest[0]), nb - stop - 1)
    assert rest[0] == full[0][stop + 1 :]
    assert rest[1] == full[1]
    epoch0 = [i for b in head[0] + rest[0] for i in b]
    assert sorted(epoch0) == list(range(N))  # every item exactly once in the resumed epoch
    # the policy is not asked again about the batches decided before the checkpoint (with
    # workers, batches beyond the last trained one), nor reset for the resumed epoch
    decided = max(r["batch"] for r in pol_head.selects if r["epoch"] == 0)
    assert decided >= stop + (2 * 2 if workers else 0)
    asked = [r["batch"] for r in pol.selects if r["epoch"] == 0]
    assert asked == list(range(decided + 1, nb))
    assert [e for e, _ in pol.resets] == [1]
    # it was asked the same questions and gave the same answers as in the uninterrupted run
    strip = [{k: v for k, v in r.items() if k != "learned"} for r in pol.selects]
    want = [
        {k: v for k, v in r.items() if k != "learned"}
        for r in pol_full.selects
        if (r["epoch"], r["batch"]) > (0, decided)
    ]
    assert strip == want
    # and ends in the same state
    _flush(s)
    _flush(s_full)
    assert np.array_equal(pol.scores, pol_full.scores)
    assert np.array_equal(pol.counts, pol_full.counts)
    assert pol.rng.bit_generator.state == pol_full.rng.bit_generator.state


def test_resume_is_sensitive_to_the_policy_state(index):
    """The resume test above would catch a lost policy state: the choices depend on it."""
    stop = 9
    full, _, _, _ = _train(index, "er", "plain", 0)
    _, ckpt, _, _ = _train(index, "er", "plain", 0, stop=stop)
    fresh = LearningPolicy(index.graph("er").n_nodes, seed=99).state_dict()

    def new_rng(p):
        p.rng.bit_generator.state = fresh["rng"]

    def no_scores(p):
        p.scores[:] = 0.0
        p.counts[:] = 0

    for tamper in (new_rng, no_scores):
        rest, _, _, _ = _train(index, "er", "plain", 0, checkpoint=ckpt, tamper=tamper)
        assert rest[0] + rest[1] != full[0][stop + 1 :] + full[1], tamper.__name__


# ----------------------------------------------------------------------------- seeing and steering
@pytest.mark.parametrize("graph", GRAPHS)
def test_observe_reports_the_root_chosen_and_the_community_used(index, graph):
    pol = LearningPolicy(index.graph(graph).n_nodes, seed=1)
    s = _sampler(index, graph, pol, seed=2)
    node = _node_of(index, graph)
    teleports = chosen = 0
    for epoch in range(8):
        s.set_epoch(epoch)
        previous = -1
        for i, items in enumerate(s):
            rec, step = pol.selects[-1], pol.observed[-1]
            assert (rec["epoch"], rec["batch"]) == (step.epoch, step.batch) == (epoch, i)
            assert step.choice == rec["choice"]
            assert step.previous_root == previous == rec["previous_root"]
            if rec["choice"] == TELEPORT:
                teleports += 1
                assert step.teleported
            else:
                chosen += 1
                assert step.root == rec["choice"] and not step.teleported
            assert step.size == len(items)
            info = s.batch_info(i)
            assert (info.root, info.teleported) == (step.root, step.teleported)
            if graph == "knn":  # the items the search took: with mix=0, the whole batch
                assert step.community.tolist() == items
            else:
                assert (
                    step.root in step.community.tolist()
                )  # mix=0: the batch comes from the community's clusters, which are distinct
                comm = step.community.tolist()
                assert len(set(comm)) == len(comm)
                assert set(node[items].tolist()) <= set(comm)
            previous = step.root
    assert teleports > 0 and chosen > 0  # the test saw both kinds of step


class AlwaysTeleport(WalkPolicy):
    def __init__(self) -> None:
        self.observed: list[WalkStep] = []

    def select(self, step: WalkStep) -> int:
        return TELEPORT

    def observe(self, step: WalkStep) -> None:
        self.observed.append(step)


@pytest.mark.parametrize("graph", GRAPHS)
def test_a_teleport_draws_a_random_root_with_items_left(index, graph):
    node = _node_of(index, graph)
    g = index.graph(graph)
    firsts = []
    for epoch in range(30):
        pol = AlwaysTeleport()
        s = _sampler(index, graph, pol, seed=4)
        s.set_epoch(epoch)
        used = np.zeros(N, bool)
        for i, items in enumerate(s):
            step = pol.observed[-1]
            assert step.teleported and step.choice == TELEPORT
            assert s.batch_info(i).teleported
            # the root still had items when it was drawn
            assert (~used[node == step.root]).any(), (epoch, i)
            if graph == "knn":
                assert step.root in items  # an unused ROOT is taken first
            used[items] = True
        firsts.append(pol.observed[0].root)
        roots = [st.root for st in pol.observed]
        assert len(set(roots)) > len(roots) // 3  # not always the same node
        if graph == "knn":  # not a move to a neighbour in disguise
            near = sum(b.root in g.neighbors(a.root) for a, b in itertools.pairwise(pol.observed))
            assert near < len(roots) // 5
    # over epochs the first ROOT is spread over the nodes
    assert len(set(firsts)) >= (10 if graph == "er" else 25)


def test_a_cluster_with_no_items_left_is_refused():
    idx = _literal(4, [(0, 1), (1, 2), (2, 3)], [4, 4, 4, 4])
    s = GraphWalkBatchSampler(idx, 4, k=0, policy=Scripted([0, 0]))
    it = iter(s)
    assert sorted(next(it)) == [0, 1, 2, 3]  # cluster 0, used up
    with pytest.raises(InputError, match=r"cluster 0\b.*no items left"):
        next(it)


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("choice", ["outside", -3])
def test_a_node_outside_the_graph_is_refused(index, graph, choice):
    n_nodes = index.graph(graph).n_nodes
    choice = n_nodes if choice == "outside" else choice
    s = _sampler(index, graph, Scripted([choice]))
    with pytest.raises(InputError, match=rf"node {choice}\b.*outside the graph"):
        next(iter(s))


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("choice", [1.0, "1", None, True, np.float64(2.0)])
def test_a_choice_that_is_not_an_int_is_refused(index, graph, choice):
    s = _sampler(index, graph, Scripted([choice]))
    with pytest.raises(TypeError, match="int"):
        next(iter(s))
    ok = _sampler(index, graph, Scripted([np.int64(3), np.int32(4)]))
    it = iter(ok)
    next(it)
    next(it)
    assert ok.batch_info(0).root == 3 and ok.batch_info(1).root == 4


class AliveRecorder(WalkPolicy):
    """Asks ``step.alive()`` at every step and picks a node from it at random (a way to steer
    without candidates); with ``only_alive`` it ignores the candidates."""

    def __init__(self, seed: int, only_alive: bool = True) -> None:
        self.rng = np.random.default_rng(seed)
        self.only_alive = only_alive
        self.seen: list[tuple[int, list[int], list[int]]] = []
        self.observed: list[WalkStep] = []

    def select(self, step: WalkStep) -> int:
        alive = step.alive()
        self.seen.append((step.batch, alive.tolist(), step.candidates.tolist()))
        pool = alive if self.only_alive or step.candidates.size == 0 else step.candidates
        return int(self.rng.choice(pool))

    def observe(self, step: WalkStep) -> None:
        self.observed.append(step)


def _check_alive(s, pol, node, n_nodes, replacement=False):
    used = np.zeros(node.size, bool)
    for i, items in enumerate(s):
        b, alive, _ = pol.seen[i]
        assert b == i
        if replacement:
            want = np.unique(node)
        else:
            want = np.unique(node[~used])  # nodes holding items not yielded yet this epoch
        assert alive == want.tolist(), i
        assert pol.observed[i].root == pol.observed[i].choice  # the alive node chosen is used
        used[items] = True
    assert used.all() or replacement


def test_alive_lists_the_nodes_with_items_left_without_candidates():
    # isolated clusters: never a candidate, so alive() is the policy's only guide
    sizes = [5, 3, 7, 2, 4, 6]
    idx = _literal(6, [], sizes)
    pol = AliveRecorder(seed=0)
    s = GraphWalkBatchSampler(idx, 3, k=0, policy=pol)
    _check_alive(s, pol, np.repeat(np.arange(6), sizes), 6)
    assert all(cands == [] for _, _, cands in pol.seen)
    assert pol.seen[-1][1] != pol.seen[0][1]  # clusters were used up along the way


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("replacement", [False, True])
def test_alive_lists_the_nodes_with_items_left(index, graph, replacement):
    pol = AliveRecorder(seed=1, only_alive=False)
    kw = {"replacement": True, "num_batches": 10} if replacement else {}
    s = _sampler(index, graph, pol, seed=3, **kw)
    node = _node_of(index, graph)
    _check_alive(s, pol, node, index.graph(graph).n_nodes, replacement)
    # steps where there was no candidate were seen too (at least the first one)
    assert any(cands == [] for _, _, cands in pol.seen)


def test_alive_is_only_available_inside_select(index):
    class Probe(LearningPolicy):
        def observe(self, step):
            super().observe(step)
            with pytest.raises(RuntimeError, match="select"):
                step.alive()

        def learn(self, step, reward):
            super().learn(step, reward)
            with pytest.raises(RuntimeError, match="select"):
                step.alive()

    pol = Probe(index.graph("er").n_nodes)
    s = _sampler(index, "er", pol)
    for _ in s:
        s.report(1.0)
    _flush(s)
    assert len(pol.observed) == len(s) + 1 and len(pol.learned) == len(s)
    with pytest.raises(RuntimeError, match="select"):
        pol.observed[0].alive()
    with pytest.raises(RuntimeError, match="select"):
        WalkStep(0, 0, -1, np.empty(0, np.int64), np.empty(0, np.int64)).alive()


# ----------------------------------------------------------------------------- candidates
def test_cluster_graph_candidates_are_the_previous_roots_neighbours_with_items_left(index):
    g = index.graph("er")
    node = _node_of(index, "er")
    sizes = np.bincount(node, minlength=g.n_nodes)
    pol = LearningPolicy(g.n_nodes, seed=7)
    s = _sampler(index, "er", pol, seed=1)
    taken = np.zeros(g.n_nodes, np.int64)
    nonempty = 0
    for i, items in enumerate(s):
        rec = pol.selects[i]
        prev = rec["previous_root"]
        if i:
            assert prev == pol.observed[i - 1].root
            nbrs = g.neighbors(prev)
            left = sizes[nbrs] - taken[nbrs]
            assert rec["candidates"] == nbrs[left > 0].tolist(), i
            assert rec["remaining"] == left[left > 0].tolist(), i
            nonempty += bool(rec["candidates"])
        else:
            assert prev == -1 and rec["candidates"] == []
        taken += np.bincount(node[items], minlength=g.n_nodes)
    assert nonempty >= len(s) // 2


def test_item_graph_candidates_are_neighbours_of_the_previous_root(index):
    """As the README says: ROOT's neighbours with unused items within two hops, with how many
    unused items are within one hop of each (the neighbour itself and its neighbours)."""
    g = index.graph("knn")
    pol = LearningPolicy(g.n_nodes, seed=7)
    s = GraphWalkBatchSampler(index, 8, graph="knn", policy=pol, seed=1)
    used = np.zeros(N, bool)
    nonempty = 0
    for i, items in enumerate(s):
        rec = pol.selects[i]
        prev, cands = rec["previous_root"], rec["candidates"]
        if i == 0:
            assert prev == -1 and cands == []
        else:
            assert prev == pol.observed[i - 1].root
            assert set(cands) <= set(g.neighbors(prev).tolist()), i
            want, near = [], []
            for u in g.neighbors(prev).tolist():
                one_hop = [u, *g.neighbors(u).tolist()]
                two_hops = one_hop + [w for v in g.neighbors(u) for w in g.neighbors(v).tolist()]
                if (~used[two_hops]).any():
                    want.append(u)
                    near.append(int((~used[one_hop]).sum()))
            assert cands == want, i
            assert rec["remaining"] == near, i
            nonempty += bool(cands)
        used[items] = True
    assert len(s) == 88
    assert nonempty >= len(s) // 2, nonempty  # 52 of 88 when written


def test_item_graph_with_replacement_offers_all_neighbours_of_the_previous_root(index):
    g = index.graph("knn")
    pol = LearningPolicy(g.n_nodes, seed=8)
    s = GraphWalkBatchSampler(
        index, 8, graph="knn", policy=pol, seed=1, replacement=True, num_batches=200
    )
    assert len(list(s)) == 200
    for i, rec in enumerate(pol.selects[1:], start=1):
        prev = rec["previous_root"]
        assert prev == pol.observed[i - 1].root
        assert sorted(rec["candidates"]) == sorted(set(g.neighbors(prev).tolist())), i
    roots = [st.root for st in pol.observed]
    # after the first batch there is always a candidate: the policy never teleports
    assert all(st.root == st.choice for st in pol.observed[1:])
    assert len(set(roots)) > 50  # the walk moves (no short cycle)


# ----------------------------------------------------------------------------- reward misuse
def test_non_finite_rewards_are_skipped_counted_and_warned_once(index):
    pol = LearningPolicy(index.graph("er").n_nodes)
    s = _sampler(index, "er", pol)
    it = iter(s)
    for _ in range(4):
        next(it)
    with pytest.warns(RuntimeWarning, match="not finite"):
        s.report(float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second one is counted silently
        s.report(float("inf"))
    s.report(2.5)
    s.report(torch.tensor(1.5))  # a 0-d tensor is a number
    assert s.skipped_rewards == 2
    next(it)  # the rewards are handed over when the next batch is chosen
    assert [(st.batch, r) for st, r in pol.learned] == [(2, 2.5), (3, 1.5)]


def test_report_refuses_misuse(index):
    with pytest.raises(InputError, match="policy"):
        _sampler(index, "er", None).report(1.0)
    pol = LearningPolicy(index.graph("er").n_nodes)
    s = _sampler(index, "er", pol)
    with pytest.raises(InputError, match="no batch is waiting"):
        s.report(1.0)
    it = iter(s)
    next(it)
    next(it)
    with pytest.raises(InputError, match="batch 5"):
        s.report(1.0, batch=5)  # not yielded yet
    with pytest.raises(TypeError, match="reward"):
        s.report("high")
    info = s.report(3.0, batch=1)  # out of order, named
    assert (info.batch, info.delay) == (1, 0)
    with pytest.raises(InputError, match="batch 1"):
        s.report(1.0, batch=1)  # reported already
    assert s.report(4.0).batch == 0
    with pytest.raises(InputError, match="no batch is waiting"):
        s.report(1.0)
    next(it)
    assert [(st.batch, r) for st, r in pol.learned] == [(0, 4.0), (1, 3.0)]


def test_the_retired_hooks_are_refused_with_their_replacement(index):
    class OldChoose(WalkPolicy):
        def choose(self, batch, previous_root, candidates, remaining):
            return TELEPORT

    class OldUpdate(Scripted):
        def update(self, batch, reward):
            pass

    class NoSelect(WalkPolicy):
        pass

    with pytest.raises(
        TypeError, match=r"OldChoose defines choose\(\), a hook.*rename choose\(\) to select"
    ):
        _sampler(index, "er", OldChoose())
    with pytest.raises(TypeError, match=r"OldUpdate defines update\(\).*learn\(step, reward\)"):
        _sampler(index, "knn", OldUpdate([]))
    with pytest.raises(TypeError, match=r"NoSelect should override select"):
        _sampler(index, "er", NoSelect())


@pytest.mark.parametrize("graph", GRAPHS)
def test_a_policy_never_reported_to_resumes_after_the_last_batch_yielded(index, graph):
    """The bug of the retired update() protocol: a loop that trains without report() got a state
    that resumed at the epoch's first batch, so it trained every batch of the epoch again."""
    whole = list(_sampler(index, graph, LearningPolicy(index.graph(graph).n_nodes, seed=3)))
    s = _sampler(index, graph, LearningPolicy(index.graph(graph).n_nodes, seed=3))
    it = iter(s)
    head = [next(it) for _ in range(11)]
    with pytest.warns(RuntimeWarning, match=r"without a single sampler.report\(\).*after batch 11"):
        state = s.state_dict()
    assert state["yielded"] == 11
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        s.state_dict()
    resumed = _sampler(index, graph, LearningPolicy(index.graph(graph).n_nodes, seed=3))
    resumed.load_state_dict(pickle.loads(pickle.dumps(state)))
    tail = list(resumed)
    assert head + tail == whole  # nothing trained twice, nothing skipped
    # once the loop reports, the state resumes after the last batch reported
    s.report(1.0)
    s.report(1.0)
    assert s.state_dict()["yielded"] == 2


def test_a_policy_for_another_graph_is_refused_when_the_sampler_is_made(index):
    from graphwalk.learn import make_policy

    with pytest.raises(InputError, match=r"made for graph 'er' but the sampler walks graph 'knn'"):
        _sampler(index, "knn", make_policy("exp3s", index, "er"))
    with pytest.raises(InputError, match=r"made for graph 'knn'.*walks graph 'er'"):
        _sampler(index, "er", make_policy("exp3s", index, "knn", floor="auto"))  # wrapped too


def test_both_retired_hooks_are_named_and_a_non_policy_is_told_to_subclass(index):
    class Old(WalkPolicy):
        def choose(self, batch, previous_root, candidates, remaining):
            return TELEPORT

        def update(self, batch, reward):
            pass

    class Duck:
        def choose(self, batch, previous_root, candidates, remaining):
            return TELEPORT

    with pytest.raises(TypeError, match=r"Old defines choose\(\) and update\(\).*select.*learn"):
        _sampler(index, "er", Old())
    with pytest.raises(TypeError, match=r"Duck \(it defines choose\(\).*subclass graphwalk"):
        _sampler(index, "er", Duck())


def test_a_policy_sampler_never_reported_to_says_so_at_the_end_of_the_epoch(index):
    s = _sampler(index, "er", LearningPolicy(index.graph("er").n_nodes))
    with pytest.warns(RuntimeWarning, match=r"walked epoch 0 without a single sampler.report"):
        list(s)
    r = _sampler(index, "er", LearningPolicy(index.graph("er").n_nodes))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a loop that reports hears nothing
        for _ in r:
            r.report(None)
