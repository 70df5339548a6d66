"""The parts the sampler is a facade over: the epoch layout, the shared weighted draw, and the
walkers' interface (the candidates a policy is offered are what the graph and the items left
say, however the kernel computes them)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import graphwalk as gw
from graphwalk.errors import InputError
from graphwalk.walk.epoch import EpochLayout
from graphwalk.walk.kernels import seed_state, weighted_pick
from graphwalk.walk.policy import TELEPORT, WalkPolicy, WalkStep
from graphwalk.walk.sampler import GraphWalkBatchSampler
from tests.conftest import make_blobs


@njit(cache=True)
def _picks(weights, lo, hi, n, seed_words):
    state = seed_words.copy()
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = weighted_pick(state, weights, lo, hi)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_pick_follows_the_weights_and_never_picks_a_zero(seed):
    w = np.array([5.0, 0.0, 1.0, 2.0, 0.0, 4.0, 8.0])
    n = 60000
    got = np.bincount(_picks(w, 1, 6, n, seed_state(seed, 7)), minlength=7)
    assert got[0] == got[6] == 0  # outside [lo, hi)
    assert got[1] == got[4] == 0  # zero weight
    expected = n * w[1:6] / w[1:6].sum()
    for j in (2, 3, 5):  # within 5 standard deviations of the binomial count
        sd = np.sqrt(expected[j - 1] * (1 - w[j] / w[1:6].sum()))
        assert abs(got[j] - expected[j - 1]) < 5 * sd


def test_weighted_pick_is_a_function_of_the_state():
    w = np.arange(1.0, 9.0)
    a = _picks(w, 0, 8, 500, seed_state(3))
    assert (a == _picks(w, 0, 8, 500, seed_state(3))).all()
    assert (a != _picks(w, 0, 8, 500, seed_state(4))).any()


def test_epoch_layout_shares_batches_between_ranks():
    lays = [
        EpochLayout.build(
            1001,
            64,
            rank=r,
            world_size=3,
            mix=0.25,
            replacement=False,
            num_batches=None,
            drop_last=False,
        )
        for r in range(3)
    ]
    assert len({lay.num_batches for lay in lays}) == 1
    assert sum(lay.rank_items() for lay in lays) == 1001 == lays[0].total
    assert lays[0].n_out.sum() == int(0.25 * 1001)  # the mix share, exact over the epoch
    assert [lays[1].global_batch(i) for i in range(3)] == [1, 4, 7]
    rep = EpochLayout.build(
        100, 8, rank=0, world_size=2, mix=0.0, replacement=True, num_batches=5, drop_last=False
    )
    assert rep.num_batches == 5 and rep.n_global == 10 and (rep.sizes == 8).all()
    with pytest.raises(InputError, match="num_batches sets the epoch length"):
        EpochLayout.build(
            100, 8, rank=0, world_size=1, mix=0.0, replacement=False, num_batches=5, drop_last=False
        )


@pytest.fixture(scope="module")
def index():
    x, y = make_blobs(n=600, dim=6, centers=6)
    return gw.build_index(x, labels=y, clusters=15, graphs=["er", "knn"], k=5, seed=2)


class _Checking(WalkPolicy):
    """Checks every step's candidates against the graph and the items left, recomputed here
    from the batches drawn so far; chooses among them at random (or teleports)."""

    def __init__(self, index, graph, replacement):
        self.index, self.g, self.replacement = index, index.graph(graph), replacement
        self.rng = np.random.default_rng(5)
        self.used: set[int] = set()
        self.prev = -1
        self.checked = 0

    def reset(self, epoch, seed):
        self.used = set()

    def select(self, step: WalkStep) -> int:
        if step.batch > 0 and self.g.kind == "cluster":
            assign = self.index.levels[self.g.level].assignment
            left = np.bincount(assign, minlength=self.g.n_nodes)
            if not self.replacement:
                for i in self.used:
                    left[assign[i]] -= 1
            nbrs = self.g.neighbors(step.previous_root).astype(np.int64)
            keep = left[nbrs] > 0
            assert step.candidates.tolist() == nbrs[keep].tolist()
            assert step.remaining.tolist() == left[nbrs][keep].tolist()
            self.checked += 1
        elif step.batch > 0:  # item graph: neighbours of the previous ROOT, unused near them
            nbrs = set(self.g.neighbors(step.previous_root).tolist())
            assert set(step.candidates.tolist()) <= nbrs
            self.checked += 1
        if step.candidates.size and self.rng.random() < 0.9:
            return int(self.rng.choice(step.candidates))
        return TELEPORT

    def observe(self, step: WalkStep) -> None:
        pass


@pytest.mark.parametrize("graph", ["er", "knn"])
@pytest.mark.parametrize("replacement", [False, True])
def test_the_candidates_offered_are_what_the_graph_and_the_items_left_say(
    index, graph, replacement
):
    pol = _Checking(index, graph, replacement)
    kw = {"k": 2} if graph == "er" else {}
    if replacement:
        kw["num_batches"] = 20
    s = GraphWalkBatchSampler(
        index, 16, graph=graph, policy=pol, replacement=replacement, restart=0.1, **kw
    )
    for epoch in range(2):
        s.set_epoch(epoch)
        for batch in s:
            pol.used.update(batch)
            s.report(0.0)
    assert pol.checked >= 20
