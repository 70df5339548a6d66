"""Learned walkers: policies that choose every batch's ROOT from training feedback.

They plug into the sampler's policy protocol (:mod:`graphwalk.walk.policy`): ``select`` chooses a
ROOT among the step's candidates (the previous ROOT's neighbours with items left), ``observe``
records what was used, ``learn`` receives the raw reward of a batch, however late, with the very
step that drew it. Every policy normalises rewards itself with a
:class:`~graphwalk.learn.rewards.RewardNormalizer` and draws from its own generator, and its
:meth:`~graphwalk.walk.policy.WalkPolicy.state_dict` holds everything its future choices depend
on, so that a resumed run continues exactly.

The policies (``--policy NAME``; :func:`make_policy`):

- ``exp3s`` (:class:`Exp3SWalker`): a bandit over the nodes in the spirit of Exp3.S (Graves et al.
  2017, "Automated Curriculum Learning for Neural Networks"): the step's candidates are the awake
  arms (sleeping arms: a neighbour with nothing left is not offered),
  ``p = (1 - gamma) softmax(w[candidates]) + gamma / |candidates|``, the chosen arm's weight
  moves by ``eta`` times its importance-weighted normalised reward, and weight sharing (``alpha``)
  mixes every weight towards the others so that an arm left behind can come back when the rewards
  change (they do: what the model learns from a cluster falls as it learns it).
- ``uniform`` (:class:`UniformWalker`): the control. The same code path as ``exp3s`` with learning
  switched off: uniform over the same candidates, the same random draws (with the same seed it
  makes the very choices ``exp3s`` makes until ``exp3s`` has learned something).
- ``pg`` (:class:`PolicyGradientWalker`): a linear softmax policy over candidate features
  (centroid, visit count, recency, the node's running reward and loss, items left), trained by
  REINFORCE (Williams 1992, "Simple statistical gradient-following algorithms for connectionist
  reinforcement learning") with a running-mean baseline and an entropy bonus, Adam on the weights.
- ``odm`` (:class:`GlobalBandit`): the graph-free anchor, Online Data Mixing (Albalak et al. 2023,
  "Efficient Online Data Mixing For Language Model Pre-Training"): Exp3 over all clusters at once,
  ignoring the graph. The walk on the graph has to beat it.

:class:`CoverageFloor` wraps any policy and guarantees that no node starves: in budgeted mode
(``replacement=True``) every node is visited (ROOT or in the community) at least once every
``floor`` batches.

Defaults, and why:

- ``exp3s``: ``gamma=0.05``: 5% of decisions explore uniformly, which keeps every awake arm's
  probability at least ``0.05 / |candidates|`` (bounding the importance weights at
  ``20 |candidates|``) at little cost to exploitation.
- ``exp3s``: ``eta=0.05``: an arm whose reward is at the top of the window (``+1``) and that was
  chosen with probability ``1 / |candidates|`` gains ``0.05 |candidates|`` in log-weight, so a
  consistently better neighbour dominates after tens of its batches, while single noisy rewards
  move the weights little; on the tests' 6-cluster graph the walker prefers the better node
  within about 100 batches.
- ``exp3s``: ``alpha=1e-3``: weight sharing gives back about a thousandth of the total weight per
  update, so an abandoned arm regains a fair chance within about a thousand updates (a few epochs
  of the benchmarks): slow enough not to undo what was learned, fast enough to follow rewards that
  change over training.
- ``pg``: ``lr=0.02`` (Adam): each weight moves by at most about 0.02 per reward, so the policy
  goes from uniform to strongly peaked within a few hundred consistent rewards (about 100 batches
  on the tests' 6-cluster graph), while noisy rewards, whose Adam steps cancel, move it little.
- ``pg``: ``entropy=0.1``: the entropy bonus coefficient. A3C's 0.01 (Mnih et al. 2016) let the
  policy collapse on the first good node and miss a change of the best node half-way through a
  noisy run (measured: the new best node stayed at its uniform rate for 2000 batches); 0.1
  follows the change within about 1000 batches and still learns as fast on stationary rewards.
- ``pg``: ``baseline=0.05``: the baseline is a running mean over about the last 20 normalised
  rewards, enough to centre the advantage while following the non-stationary reward.
- ``pg``: ``node_rate=0.2``: a node's running reward and loss average about its last 5 visits,
  because a node is visited rarely (once in ``n_nodes`` batches on average).
- ``odm``: ``smoothing=0.9``: the smoothing of the estimated reward in Albalak et al. 2023's
  update ``R <- smoothing R + (1 - smoothing) r / p``, averaging about a cluster's last 10
  rewards.
- ``odm``: ``eta=10``: a multiplier of the recipe's learning rate ``eps_{t-1}``. The recipe's
  rewards are raw language-model losses (several nats, differing by about a nat between
  domains), ours are normalised to ``[-1, 1]``: with ``eta=1`` the anchor stayed within a few
  percent of uniform (measured on the tests' 6-cluster graph: the best cluster at 21% of 1000
  batches against 17% for uniform), with ``eta=10`` it learns (about 85%), so the graph is
  compared against a bandit that does something.
- all: ``window=1000`` rewards for the normaliser (see :mod:`graphwalk.learn.rewards`).
- :class:`CoverageFloor`: ``floor=2 * n_nodes``: twice the shortest interval at which every node
  can be visited (one node per batch), so at most about half of the decisions are forced
  (``n_nodes`` per ``floor`` batches when the policy never visits a due node by itself); measured
  on the tests' 6-cluster graph while a learner chases one node: 22-32% forced, the node still
  chosen at 0.42-0.50 of the batches against 0.49-0.50 without the floor. The guarantee needs
  ``floor >= n_nodes``.

Cost: ``exp3s`` updates every node's weight per reward (weight sharing), ``O(n_nodes)``;
:class:`CoverageFloor` looks at every node's age per decision. Both are microseconds on cluster
graphs; on item graphs (a node per item) they grow with the number of items.

Diagnostics (for plots): every policy has :meth:`~Exp3SWalker.diagnostics` (visit counts per
node, the rewards seen, raw and normalised, the entropy of every decision, counters) and an
``entropy`` attribute (the entropy of the last decision's distribution). The curves are of this
run only: they are not part of the state (a resumed run starts new ones); the visit counts are.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.index.types import Graph
from graphwalk.learn.rewards import RewardNormalizer
from graphwalk.validation import check_int, check_real
from graphwalk.walk.policy import WalkPolicy, WalkStep

__all__ = [
    "POLICIES",
    "CoverageFloor",
    "Exp3SWalker",
    "GlobalBandit",
    "PolicyGradientWalker",
    "UniformWalker",
    "make_policy",
]

#: The policy names :func:`make_policy` knows.
POLICIES = ("uniform", "exp3s", "pg", "odm")

_MASK64 = (1 << 64) - 1
_RNG_TAG = 0x1EA27ED


def _as_index(index: GraphIndex | str | Path) -> GraphIndex:
    if isinstance(index, (str, Path)):
        return GraphIndex.load(index)
    if not isinstance(index, GraphIndex):
        raise TypeError(f"index should be a GraphIndex or a path, but got {type(index).__name__}")
    return index


def _graph_id(g: Graph) -> str:
    """What a saved state must match: the graph's kind, size and a checksum of its edges."""
    c = zlib.crc32(np.ascontiguousarray(g.indptr).data.cast("B"))
    c = zlib.crc32(np.ascontiguousarray(g.indices).data.cast("B"), c)
    return f"{g.kind}:{g.n_nodes}:{c:08x}"


def _softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    e = np.exp(z - z.max())
    out: npt.NDArray[np.float64] = e / e.sum()
    return out


def _entropy(p: npt.NDArray[np.float64]) -> float:
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def _check_state(state: Any, owner: str) -> dict[str, Any]:
    if not isinstance(state, dict) or "policy" not in state:
        raise InputError(
            f"not a policy state (a dict from {owner}.state_dict() expected, got "
            f"{type(state).__name__})"
        )
    if state["policy"] != owner:
        raise InputError(
            f"the state is of a {state['policy']} policy but this policy is a {owner}; resume "
            f"with the policy the state was saved with (--policy), or start afresh"
        )
    return state


class _NodePolicy(WalkPolicy):
    """What the learned walkers share: the graph they walk, their generator, the reward
    normaliser, visit counts, the decisions awaiting their reward, diagnostics and state."""

    def __init__(
        self,
        index: GraphIndex | str | Path,
        graph: str | None = None,
        *,
        seed: int = 0,
        learning: bool = True,
        window: int = 1000,
    ) -> None:
        index = _as_index(index)
        g = index.graph(graph)
        self.graph_name = graph if graph is not None else next(iter(index.graphs))
        self.kind = g.kind
        self.n_nodes = g.n_nodes
        self._graph = _graph_id(g)
        self.seed = check_int("seed", seed, minimum=0)
        if not isinstance(learning, (bool, np.bool_)):
            raise TypeError(f"learning should be True or False, but got learning={learning!r}")
        self.learning = bool(learning)
        self.normalizer = RewardNormalizer(window)
        self.rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([self.seed, _RNG_TAG]))
        )
        self.visits = np.zeros(self.n_nodes, np.int64)  # times ROOT
        self.community_visits = np.zeros(self.n_nodes, np.int64)  # times in the community
        self._pending: dict[tuple[int, int], dict[str, Any]] = {}  # decided, not rewarded
        self._decisions = 0
        self._rewards = 0
        self._unmatched = 0  # rewards of batches this policy did not choose (forced, replayed)
        self._skipped = 0  # non-finite rewards (the sampler skips them before they get here)
        self.entropy = float("nan")  # of the last decision's distribution
        # curves for plots (this run only; not in the state)
        self._entropy_curve: list[float] = []
        self._reward_curve: list[float] = []
        self._scaled_curve: list[float] = []

    # ------------------------------------------------------------------ hooks for subclasses
    def _settings(self) -> dict[str, Any]:
        return {"learning": self.learning, "window": self.normalizer.window}

    def _pool(self, step: WalkStep) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
        """The nodes to choose from and the items left at each (None: unknown)."""
        if step.candidates.size:
            return step.candidates, step.remaining
        return step.alive(), None

    def _distribution(
        self, pool: npt.NDArray[np.int64], remaining: npt.NDArray[np.int64] | None
    ) -> tuple[npt.NDArray[np.float64], Any]:
        raise NotImplementedError

    def _record(
        self, pool: npt.NDArray[np.int64], p: npt.NDArray[np.float64], i: int, context: Any
    ) -> dict[str, Any]:
        return {"arm": int(pool[i]), "p": float(p[i])}

    def _update(self, step: WalkStep, scaled: float, record: dict[str, Any] | None) -> None:
        """Learn from the normalised reward of ``step`` (``record``: what the policy saw when it
        chose, None when it did not choose)."""

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, state: dict[str, Any]) -> None:
        del state

    # ------------------------------------------------------------------ the protocol
    def reset(self, epoch: int, seed: int) -> None:
        """Reseed the generator from ``(policy seed, sampler seed, epoch)`` and forget the
        decisions of epochs before the previous one (their rewards can no longer arrive)."""
        ss = np.random.SeedSequence([self.seed, int(seed) & _MASK64, int(epoch), _RNG_TAG])
        self.rng = np.random.Generator(np.random.PCG64(ss))
        self._pending = {k: v for k, v in self._pending.items() if k[0] >= epoch - 1}

    def select(self, step: WalkStep) -> int:
        pool, remaining = self._pool(step)
        if pool.size == 0:
            raise InputError(
                f"batch {step.batch} of epoch {step.epoch}: no node has items left to choose"
            )
        p, context = self._distribution(pool, remaining)
        c = np.cumsum(p)
        i = min(int(np.searchsorted(c, self.rng.random() * c[-1], side="right")), pool.size - 1)
        self._pending[(int(step.epoch), int(step.batch))] = self._record(pool, p, i, context)
        self.entropy = _entropy(p)
        self._entropy_curve.append(self.entropy)
        self._decisions += 1
        return int(pool[i])

    def observe(self, step: WalkStep) -> None:
        if 0 <= step.root < self.n_nodes:
            self.visits[step.root] += 1
        comm = step.community[(step.community >= 0) & (step.community < self.n_nodes)]
        np.add.at(self.community_visits, comm, 1)

    def learn(self, step: WalkStep, reward: float) -> None:
        r = float(reward)
        if not math.isfinite(r):
            self._skipped += 1
            return
        scaled = self.normalizer(r)
        self._rewards += 1
        self._reward_curve.append(r)
        self._scaled_curve.append(scaled)
        record = self._pending.pop((int(step.epoch), int(step.batch)), None)
        if record is None:
            self._unmatched += 1
        self._update(step, scaled, record)

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> dict[str, Any]:
        """For plots: ``visits`` (times each node was ROOT), ``community_visits`` (times it was
        in a batch's community), ``rewards`` and ``scaled_rewards`` (raw and normalised, in the
        order learned), ``entropy`` (of every decision's distribution, nats), and the counts
        ``decisions``, ``rewards_seen``, ``unmatched`` (rewards of batches the policy did not
        choose: forced by a :class:`CoverageFloor`), ``skipped`` (non-finite) and ``forced``."""
        return {
            "visits": self.visits.copy(),
            "community_visits": self.community_visits.copy(),
            "rewards": np.array(self._reward_curve, np.float64),
            "scaled_rewards": np.array(self._scaled_curve, np.float64),
            "entropy": np.array(self._entropy_curve, np.float64),
            "decisions": self._decisions,
            "rewards_seen": self._rewards,
            "unmatched": self._unmatched,
            "skipped": self._skipped,
            "forced": 0,
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        pending = [
            [e, b, {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in rec.items()}]
            for (e, b), rec in sorted(self._pending.items())
        ]
        state = {
            "policy": type(self).__qualname__,
            "graph": self._graph,
            "n_nodes": self.n_nodes,
            "settings": self._settings(),
            "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "normalizer": self.normalizer.state_dict(),
            "visits": self.visits.copy(),
            "community_visits": self.community_visits.copy(),
            "pending": pending,
            "counts": [self._decisions, self._rewards, self._unmatched, self._skipped],
        }
        state.update(self._extra_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`. Refuses a state of another policy class, of a graph
        with another number of nodes or other edges, or saved with other settings."""
        owner = type(self).__qualname__
        state = _check_state(state, owner)
        missing = [k for k in ("graph", "n_nodes", "settings", "rng", "pending") if k not in state]
        if missing:
            raise InputError(f"the {owner} state lacks {missing}: not a state of this version")
        if int(state["n_nodes"]) != self.n_nodes:
            raise InputError(
                f"the {owner} state was saved on a graph of {state['n_nodes']} nodes but this "
                f"policy walks graph {self.graph_name!r} of {self.n_nodes} nodes; load a state "
                "saved on the same index and graph"
            )
        if state["graph"] != self._graph:
            raise InputError(
                f"the {owner} state was saved on another graph than {self.graph_name!r} (same "
                f"number of nodes, other edges: {state['graph']} vs {self._graph}); load a state "
                "saved on the same index and graph"
            )
        mine = self._settings()
        theirs = dict(state["settings"])
        for key in mine:
            if theirs.get(key) != mine[key]:
                raise InputError(
                    f"the {owner} state was saved with {key}={theirs.get(key)!r} but this policy "
                    f"has {key}={mine[key]!r}; create the policy with the same settings to resume"
                )
        self.seed = int(state["seed"])
        self.rng = np.random.Generator(np.random.PCG64())
        self.rng.bit_generator.state = state["rng"]
        self.normalizer.load_state_dict(state["normalizer"])
        self.visits = np.array(state["visits"], np.int64)
        self.community_visits = np.array(state["community_visits"], np.int64)
        self._pending = {
            (int(e), int(b)): {
                k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in rec.items()
            }
            for e, b, rec in state["pending"]
        }
        self._decisions, self._rewards, self._unmatched, self._skipped = (
            int(c) for c in state["counts"]
        )
        self._load_extra(state)


def node_of_items(index: GraphIndex, graph: str | None) -> npt.NDArray[np.int64]:
    """The node of every item on ``graph`` of ``index``: the item itself on an item graph, its
    cluster on a cluster graph."""
    g = index.graph(graph)
    if g.kind == "item":
        return np.arange(index.n_items, dtype=np.int64)
    assert g.level is not None
    return np.asarray(index.level(g.level).assignment, np.int64)


def carry_over(
    new: WalkPolicy,
    old: WalkPolicy,
    old_nodes: npt.ArrayLike,
    new_nodes: npt.ArrayLike,
) -> None:
    """Hand what ``old`` learned on one graph to ``new`` on a rebuilt graph over the same items
    (an activation or vector graph refreshed between epochs): ``old_nodes`` and ``new_nodes``
    give every item's node on each (:func:`node_of_items`).

    ``exp3s`` and ``uniform`` carry their reward normaliser and counts, and each new node starts
    from the mean log-weight of its items' old nodes (an item graph maps node to node); visit
    counts and a :class:`CoverageFloor`'s ages start over on the new nodes.

    Raises:
        InputError: the policies are not ``exp3s`` / ``uniform`` of the same settings, or the
            node maps do not cover the same items.
    """
    inner_new, inner_old = _inner(new), _inner(old)
    if not (isinstance(inner_new, Exp3SWalker) and isinstance(inner_old, Exp3SWalker)):
        raise InputError(
            f"a {type(inner_old).__name__} cannot follow a graph rebuilt between epochs (only "
            "exp3s and uniform carry what they learned to the new nodes); use policy=exp3s"
        )
    if type(inner_new) is not type(inner_old) or inner_new._settings() != inner_old._settings():
        raise InputError("carry_over needs the same policy with the same settings on both graphs")
    on, nn_ = np.asarray(old_nodes, np.int64), np.asarray(new_nodes, np.int64)
    if on.shape != nn_.shape:
        raise InputError(
            f"the node maps cover {on.size} and {nn_.size} items; both graphs must be over the "
            "same items"
        )
    sums = np.zeros(inner_new.n_nodes, np.float64)
    counts = np.zeros(inner_new.n_nodes, np.int64)
    np.add.at(sums, nn_, inner_old.weights[on])
    np.add.at(counts, nn_, 1)
    w = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    inner_new.weights = w - w.max() if w.size else w
    inner_new.normalizer.load_state_dict(inner_old.normalizer.state_dict())
    inner_new._decisions, inner_new._rewards = inner_old._decisions, inner_old._rewards
    inner_new._unmatched, inner_new._skipped = inner_old._unmatched, inner_old._skipped


def _inner(policy: WalkPolicy) -> WalkPolicy:
    """The learner inside a :class:`CoverageFloor` (or the policy itself)."""
    while isinstance(policy, CoverageFloor):
        policy = policy.policy
    return policy


class Exp3SWalker(_NodePolicy):
    """A bandit over the nodes in the spirit of Exp3.S (Graves et al. 2017).

    The arms are the graph's nodes; at each step only the candidates (the previous ROOT's
    neighbours with items left) are awake. With ``w`` the log-weights,
    ``p = (1 - gamma) softmax(w[candidates]) + gamma / |candidates|``; the chosen arm ``a``
    receives the importance-weighted normalised reward ``r / p_a`` (``p_a`` as it was when the
    batch was chosen, however late the reward arrives) and every weight is then shared:
    ``w_i <- log((1 - alpha) e^{u_i} + alpha / (N - 1) sum_{j != i} e^{u_j})`` with
    ``u = w + eta r / p_a`` at ``a`` (Exp3.S's fixed-share step, for non-stationary rewards).
    With no candidate (the first batch of an epoch, a node whose neighbours are used up) the same
    bandit chooses among all nodes with items left (``step.alive()``).

    Args:
        index: the index (or its path) whose graph the sampler walks.
        graph: the graph's name (default: the index's only graph).
        seed: the policy's seed; with the sampler's seed and the epoch it seeds the generator at
            every :meth:`reset`.
        gamma: share of uniform exploration, in ``(0, 1]``.
        eta: learning rate, ``> 0``.
        alpha: weight sharing per update, in ``[0, 1)`` (``0``: plain Exp3).
        learning: ``False`` gives the control (:class:`UniformWalker`): the same code path with
            weights that never change, i.e. uniform over the same candidates.
        window: rewards the normaliser keeps.

    The module docstring gives the defaults and why.
    """

    def __init__(
        self,
        index: GraphIndex | str | Path,
        graph: str | None = None,
        *,
        seed: int = 0,
        gamma: float = 0.05,
        eta: float = 0.05,
        alpha: float = 1e-3,
        learning: bool = True,
        window: int = 1000,
    ) -> None:
        super().__init__(index, graph, seed=seed, learning=learning, window=window)
        self.gamma = check_real("gamma", gamma, low=0.0, high=1.0, low_open=True)
        self.eta = check_real("eta", eta, low=0.0, low_open=True)
        self.alpha = check_real("alpha", alpha, low=0.0, high=1.0, high_open=True)
        if self.n_nodes > 1 and self.alpha > (self.n_nodes - 1) / self.n_nodes:
            raise InputError(
                f"alpha={alpha} shares more than all of the weight on a graph of "
                f"{self.n_nodes} nodes; use alpha <= {(self.n_nodes - 1) / self.n_nodes:g}"
            )
        self.weights = np.zeros(self.n_nodes, np.float64)  # log-weights

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "gamma": self.gamma, "eta": self.eta, "alpha": self.alpha}

    def _distribution(
        self, pool: npt.NDArray[np.int64], remaining: npt.NDArray[np.int64] | None
    ) -> tuple[npt.NDArray[np.float64], Any]:
        p = (1.0 - self.gamma) * _softmax(self.weights[pool]) + self.gamma / pool.size
        return p, None

    def _update(self, step: WalkStep, scaled: float, record: dict[str, Any] | None) -> None:
        if record is None or not self.learning:
            return
        u = self.weights
        u[record["arm"]] += self.eta * scaled / record["p"]
        n = self.n_nodes
        if n > 1 and self.alpha > 0.0:
            m = float(u.max())
            e = np.exp(u - m)
            total = float(e.sum())
            v = (1.0 - self.alpha * n / (n - 1)) * e + self.alpha * total / (n - 1)
            self.weights = np.log(v)
        self.weights -= self.weights.max()

    def probabilities(self, nodes: Any) -> npt.NDArray[np.float64]:
        """The distribution the walker would choose from if ``nodes`` were the candidates."""
        pool = np.asarray(nodes, np.int64)
        return self._distribution(pool, None)[0]

    def diagnostics(self) -> dict[str, Any]:
        d = super().diagnostics()
        d["weights"] = self.weights.copy()
        return d

    def _extra_state(self) -> dict[str, Any]:
        return {"weights": self.weights.copy()}

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.weights = np.array(state["weights"], np.float64)


class UniformWalker(Exp3SWalker):
    """The control: :class:`Exp3SWalker` with learning switched off (``"uniform"``).

    Uniform over the same candidates (all nodes with items left when there is none), through the
    same code path and the same random draws: the reference that shows whether learning did
    anything. It still normalises and records the rewards (for the same diagnostics)."""

    def __init__(
        self,
        index: GraphIndex | str | Path,
        graph: str | None = None,
        *,
        seed: int = 0,
        window: int = 1000,
    ) -> None:
        super().__init__(index, graph, seed=seed, learning=False, window=window)


def _centroid_features(index: GraphIndex, g: Graph, dims: int) -> npt.NDArray[np.float64]:
    """Every node's centroid reduced to at most ``dims`` standardised principal components.

    Cluster graphs: the centroids of the graph's level. Item graphs: the index does not store
    item vectors, so an item has the centroid of its cluster in the level built in the graph's
    space (else the first level); no level: no centroid features."""
    if g.kind == "cluster":
        assert g.level is not None
        lv = index.level(g.level)
        cent, assign = lv.centroids.astype(np.float64), None
    else:
        levels = [lv for lv in index.levels.values() if lv.space == g.space] or list(
            index.levels.values()
        )
        if not levels or dims == 0:
            return np.zeros((g.n_nodes, 0), np.float64)
        lv = levels[0]
        cent, assign = lv.centroids.astype(np.float64), lv.assignment
    if dims == 0 or cent.shape[0] < 2:
        return np.zeros((g.n_nodes, 0), np.float64)
    centred = cent - cent.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    keep = int(min(dims, (sv > 1e-9 * max(1.0, float(sv[0]))).sum()))
    vt = vt[:keep]
    vt *= np.where(vt[np.arange(keep), np.abs(vt).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
    z = centred @ vt.T
    z /= np.maximum(z.std(axis=0), 1e-12)
    return z if assign is None else z[assign]


class PolicyGradientWalker(_NodePolicy):
    """A linear softmax policy over candidate features, trained by REINFORCE (Williams 1992).

    Each candidate ``v`` has features ``phi(v)``: its centroid's coordinates on the (at most
    ``pca_dims``) principal components of the centroids, fixed at construction and standardised
    (item graphs: the centroid of the item's cluster, see :func:`_centroid_features`);
    ``log1p(visits_v) - log1p(mean visits)`` (times ROOT, relative to the average node); recency
    ``log1p((t - last_v) / n_nodes)`` (``t`` decisions so far, ``last_v`` the last one that had
    ``v`` as ROOT or in the community); the node's running normalised reward (0 if unseen); its
    running loss relative to the mean running loss (0 if unseen or never given, see
    :meth:`record_loss`); and its items left relative to the most among the candidates.

    ``pi = softmax(phi theta)`` over the candidates (with none: over at most ``max_pool`` nodes
    drawn from ``step.alive()``). For a reward ``r`` (normalised) of a batch chosen with features
    ``Phi``, probabilities ``pi`` and choice ``a`` (as they were when it was chosen, however late
    the reward arrives), the ascent direction is ``(r - b) (phi_a - pi Phi) + entropy dH/dtheta``
    with ``b`` a running mean of the rewards, and Adam (Kingma and Ba 2015; betas 0.9, 0.999)
    takes the step.

    Args:
        index, graph, seed, learning, window: as for :class:`Exp3SWalker`.
        lr: Adam's learning rate, ``> 0``.
        entropy: the entropy bonus coefficient, ``>= 0``.
        baseline: the rate of the baseline's running mean, in ``(0, 1]``.
        node_rate: the rate of the nodes' running reward and loss, in ``(0, 1]``.
        pca_dims: principal components of the centroids used as features, ``>= 0``.
        max_pool: nodes drawn from ``step.alive()`` when there is no candidate, ``>= 1``.
    """

    _N_OWN = 5  # visits, recency, reward, loss, items left

    def __init__(
        self,
        index: GraphIndex | str | Path,
        graph: str | None = None,
        *,
        seed: int = 0,
        lr: float = 0.02,
        entropy: float = 0.1,
        baseline: float = 0.05,
        node_rate: float = 0.2,
        pca_dims: int = 8,
        max_pool: int = 64,
        learning: bool = True,
        window: int = 1000,
    ) -> None:
        index = _as_index(index)
        super().__init__(index, graph, seed=seed, learning=learning, window=window)
        self.lr = check_real("lr", lr, low=0.0, low_open=True)
        self.entropy_coef = check_real("entropy", entropy, low=0.0)
        self.baseline_rate = check_real("baseline", baseline, low=0.0, high=1.0, low_open=True)
        self.node_rate = check_real("node_rate", node_rate, low=0.0, high=1.0, low_open=True)
        self.pca_dims = check_int("pca_dims", pca_dims, minimum=0)
        self.max_pool = check_int("max_pool", max_pool, minimum=1)
        self._centroids = _centroid_features(index, index.graph(graph), self.pca_dims)
        d = self._centroids.shape[1] + self._N_OWN
        self.theta = np.zeros(d, np.float64)
        self._adam = np.zeros((2, d), np.float64)  # first and second moments
        self._adam_t = 0
        self._baseline = 0.0
        self._t = 0  # decisions observed
        self._last = np.full(self.n_nodes, -1, np.int64)
        self._reward = np.zeros(self.n_nodes, np.float64)
        self._loss = np.zeros(self.n_nodes, np.float64)
        self._seen = np.zeros((2, self.n_nodes), bool)  # has a running reward, a running loss
        self._loss_sum, self._loss_count = 0.0, 0  # of the running losses seen (their mean)

    @property
    def feature_names(self) -> list[str]:
        """The names of the features, in the order of :attr:`theta`."""
        pcs = [f"centroid_pc{i + 1}" for i in range(self._centroids.shape[1])]
        return [*pcs, "visits", "recency", "reward", "loss", "items_left"]

    def _settings(self) -> dict[str, Any]:
        return {
            **super()._settings(),
            "lr": self.lr,
            "entropy": self.entropy_coef,
            "baseline": self.baseline_rate,
            "node_rate": self.node_rate,
            "pca_dims": self.pca_dims,
            "max_pool": self.max_pool,
        }

    def record_loss(self, node: int, loss: float) -> None:
        """Give the training loss of a batch rooted at ``node`` (``BatchInfo.root`` of the batch,
        returned by ``sampler.report``) to the node's running loss feature. Optional: without it
        the feature is 0. Under ``torch.distributed`` every rank must make the same calls (e.g.
        with every rank's ``(root, loss)`` gathered), or the ranks' policies would diverge."""
        n = check_int("node", node, minimum=0, maximum=self.n_nodes - 1)
        v = float(loss)
        if not math.isfinite(v):
            return
        before = self._loss[n]
        if self._seen[1, n]:
            self._loss[n] += self.node_rate * (v - self._loss[n])
        else:
            self._loss[n], self._seen[1, n] = v, True
            self._loss_count += 1
            before = 0.0
        self._loss_sum += float(self._loss[n] - before)

    def features(self, nodes: Any, remaining: Any = None) -> npt.NDArray[np.float64]:
        """The feature matrix of ``nodes`` (rows) as the policy sees it now."""
        pool = np.asarray(nodes, np.int64)
        n = pool.size
        vis = np.log1p(self.visits[pool]) - np.log1p(self._t / self.n_nodes)  # t: visits
        rec = np.log1p((self._t - self._last[pool]) / self.n_nodes)
        rew = self._reward[pool]
        loss = np.zeros(n)
        if self._loss_count:
            mean = self._loss_sum / self._loss_count
            if mean > 0:
                loss = np.where(self._seen[1, pool], self._loss[pool] / mean - 1.0, 0.0)
        left = np.ones(n)
        if remaining is not None:
            rem = np.asarray(remaining, np.float64)
            if rem.size and rem.max() > 0:
                left = rem / rem.max()
        return np.column_stack([self._centroids[pool], vis, rec, rew, loss, left])

    def _pool(self, step: WalkStep) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
        if step.candidates.size:
            return step.candidates, step.remaining
        alive = step.alive()
        if alive.size > self.max_pool:
            alive = np.sort(self.rng.choice(alive, self.max_pool, replace=False))
        return alive, None

    def _distribution(
        self, pool: npt.NDArray[np.int64], remaining: npt.NDArray[np.int64] | None
    ) -> tuple[npt.NDArray[np.float64], Any]:
        phi = self.features(pool, remaining)
        return _softmax(phi @ self.theta), phi

    def _record(
        self, pool: npt.NDArray[np.int64], p: npt.NDArray[np.float64], i: int, context: Any
    ) -> dict[str, Any]:
        return {"arm": int(pool[i]), "phi": context, "pi": p, "i": i}

    def observe(self, step: WalkStep) -> None:
        super().observe(step)
        comm = step.community[(step.community >= 0) & (step.community < self.n_nodes)]
        self._last[comm] = self._t
        if 0 <= step.root < self.n_nodes:
            self._last[step.root] = self._t
        self._t += 1

    def gradient(
        self,
        phi: npt.NDArray[np.float64],
        pi: npt.NDArray[np.float64],
        i: int,
        advantage: float,
    ) -> npt.NDArray[np.float64]:
        """The ascent direction of ``advantage * log pi_i + entropy * H(pi)`` with respect to
        ``theta``, for ``pi = softmax(phi theta)`` (REINFORCE's score-function term and the
        entropy bonus): ``advantage (phi_i - pi phi) - entropy sum_k pi_k (log pi_k + H) phi_k``."""
        grad: npt.NDArray[np.float64] = advantage * (phi[i] - pi @ phi)
        if self.entropy_coef > 0.0:
            logp = np.log(np.maximum(pi, 1e-300))
            h = -float((pi * logp).sum())
            grad = grad + self.entropy_coef * ((-pi * (logp + h)) @ phi)
        return grad

    def _update(self, step: WalkStep, scaled: float, record: dict[str, Any] | None) -> None:
        node = int(step.root)
        if 0 <= node < self.n_nodes:
            if self._seen[0, node]:
                self._reward[node] += self.node_rate * (scaled - self._reward[node])
            else:
                self._reward[node], self._seen[0, node] = scaled, True
        if record is None or not self.learning:
            return
        advantage = scaled - self._baseline
        self._baseline += self.baseline_rate * (scaled - self._baseline)
        grad = self.gradient(record["phi"], record["pi"], int(record["i"]), advantage)
        b1, b2, eps = 0.9, 0.999, 1e-8
        self._adam_t += 1
        m, v = self._adam
        m += (1.0 - b1) * (grad - m)
        v += (1.0 - b2) * (grad * grad - v)
        mhat = m / (1.0 - b1**self._adam_t)
        vhat = v / (1.0 - b2**self._adam_t)
        self.theta += self.lr * mhat / (np.sqrt(vhat) + eps)

    def diagnostics(self) -> dict[str, Any]:
        d = super().diagnostics()
        d["theta"] = self.theta.copy()
        d["feature_names"] = self.feature_names
        return d

    def _extra_state(self) -> dict[str, Any]:
        return {
            "theta": self.theta.copy(),
            "adam": self._adam.copy(),
            "adam_t": self._adam_t,
            "baseline_value": self._baseline,
            "t": self._t,
            "last": self._last.copy(),
            "node_reward": self._reward.copy(),
            "node_loss": self._loss.copy(),
            "seen": self._seen.copy(),
        }

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.theta = np.array(state["theta"], np.float64)
        self._adam = np.array(state["adam"], np.float64)
        self._adam_t = int(state["adam_t"])
        self._baseline = float(state["baseline_value"])
        self._t = int(state["t"])
        self._last = np.array(state["last"], np.int64)
        self._reward = np.array(state["node_reward"], np.float64)
        self._loss = np.array(state["node_loss"], np.float64)
        self._seen = np.array(state["seen"], bool)
        self._loss_count = int(self._seen[1].sum())
        self._loss_sum = float(self._loss[self._seen[1]].sum())


class GlobalBandit(_NodePolicy):
    """Online Data Mixing (Albalak et al. 2023): Exp3 over all clusters, ignoring the graph.

    Every decision chooses among all clusters with items left (``step.alive()``; the candidates
    are ignored): with ``K`` of them and ``t`` decisions so far,
    ``eps_t = min(1 / K, sqrt(ln K / (K t)))`` and
    ``p = (1 - K eps_t) softmax(eta eps_{t-1} R) + eps_t``; the chosen cluster's estimated reward
    becomes ``R_a <- smoothing R_a + (1 - smoothing) r / p_a`` (``r`` normalised, ``p_a`` as it
    was when the batch was chosen). The anchor the walk on the graph has to beat: it spends the
    budget where the model learns, with no notion of neighbourhood.

    Args:
        index, graph, seed, learning, window: as for :class:`Exp3SWalker`; the graph must be a
            cluster graph (on an item graph every item would be an arm).
        smoothing: the smoothing of the estimated rewards, in ``[0, 1)``.
        eta: a multiplier of the learning rate ``eps_{t-1}``, ``> 0`` (1: the paper's; see the
            module docstring for the default).
    """

    def __init__(
        self,
        index: GraphIndex | str | Path,
        graph: str | None = None,
        *,
        seed: int = 0,
        smoothing: float = 0.9,
        eta: float = 10.0,
        learning: bool = True,
        window: int = 1000,
    ) -> None:
        super().__init__(index, graph, seed=seed, learning=learning, window=window)
        if self.kind != "cluster":
            raise InputError(
                f"the odm policy mixes clusters, but graph {self.graph_name!r} is an item graph "
                "(every item would be an arm); use a cluster graph (e.g. graph='er')"
            )
        self.smoothing = check_real("smoothing", smoothing, low=0.0, high=1.0, high_open=True)
        self.eta = check_real("eta", eta, low=0.0, low_open=True)
        self.estimates = np.zeros(self.n_nodes, np.float64)
        self._t = 0  # decisions so far

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "smoothing": self.smoothing, "eta": self.eta}

    def _pool(self, step: WalkStep) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
        return step.alive(), None

    @staticmethod
    def _eps(k: int, t: int) -> float:
        if t <= 0 or k <= 1:
            return 1.0 / k
        return min(1.0 / k, math.sqrt(math.log(k) / (k * t)))

    def _distribution(
        self, pool: npt.NDArray[np.int64], remaining: npt.NDArray[np.int64] | None
    ) -> tuple[npt.NDArray[np.float64], Any]:
        k, t = int(pool.size), self._t + 1
        eps, lr = self._eps(k, t), self._eps(k, t - 1)
        p = (1.0 - k * eps) * _softmax(self.eta * lr * self.estimates[pool]) + eps
        return p, None

    def _record(
        self, pool: npt.NDArray[np.int64], p: npt.NDArray[np.float64], i: int, context: Any
    ) -> dict[str, Any]:
        self._t += 1
        return super()._record(pool, p, i, context)

    def _update(self, step: WalkStep, scaled: float, record: dict[str, Any] | None) -> None:
        if record is None or not self.learning:
            return
        a = record["arm"]
        self.estimates[a] = (
            self.smoothing * self.estimates[a] + (1.0 - self.smoothing) * scaled / record["p"]
        )

    def diagnostics(self) -> dict[str, Any]:
        d = super().diagnostics()
        d["estimates"] = self.estimates.copy()
        return d

    def _extra_state(self) -> dict[str, Any]:
        return {"estimates": self.estimates.copy(), "t": self._t}

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.estimates = np.array(state["estimates"], np.float64)
        self._t = int(state["t"])


class CoverageFloor(WalkPolicy):
    """Wraps a policy so that no node starves: a documented, tunable coverage guarantee.

    Tracks, for every node, the last decision at which it was ROOT or in the community
    (:meth:`observe`); its deadline is that decision plus ``floor``. The wrapped policy chooses
    freely as long as the nodes with items left, sorted by deadline, can still each be visited in
    time at one node per batch; when that becomes tight (the ``j``-th earliest deadline is the
    ``j``-th decision from now), the node with the earliest deadline is chosen instead (the lowest
    id among ties; counted in :attr:`forced`): a lazy earliest-deadline-first schedule, which
    leaves the policy every decision the guarantee does not need. The wrapped policy still
    observes every step and receives every reward (learned walkers count the rewards of forced
    batches as ``unmatched`` and do not update on them, their choice probability being unknown).

    Guarantee: in budgeted mode (``replacement=True``, every node with items always available),
    every node with items is visited at least once every ``floor`` batches, counted across
    epochs. Proof: at the start every deadline is ``floor - 1 >= n_nodes - 1``, so the schedule is
    feasible (the ``j``-th earliest deadline is at least ``j - 1`` decisions away). A free
    decision is only taken when no deadline is tight, so feasibility survives it (a visit only
    moves deadlines later); a forced decision serves the earliest deadline, and the others keep
    their places one decision closer, while the served node's new deadline, ``floor >= n_nodes``
    away, is feasible at any place. So no deadline is ever missed. Without replacement, nodes used
    up are not available and the floor applies to the others (best effort after a new epoch
    makes them available again). Checking costs a sort of the nodes' deadlines, done only when
    the oldest node is ``floor - n_nodes + 1`` decisions old (before that nothing can be tight).

    Args:
        policy: the policy to wrap (any :class:`~graphwalk.walk.policy.WalkPolicy`).
        n_nodes: the graph's number of nodes (default: ``policy.n_nodes``, which the policies of
            this module have).
        floor: the guarantee, ``>= n_nodes`` (default ``2 * n_nodes``; see the module docstring).
    """

    def __init__(
        self, policy: WalkPolicy, n_nodes: int | None = None, *, floor: int | None = None
    ) -> None:
        if not isinstance(policy, WalkPolicy):
            raise TypeError(f"policy should be a WalkPolicy, but got {type(policy).__name__}")
        if n_nodes is None:
            n_nodes = getattr(policy, "n_nodes", None)
            if n_nodes is None:
                raise InputError(
                    f"CoverageFloor cannot tell how many nodes {type(policy).__name__} walks: "
                    "pass n_nodes=index.graph(name).n_nodes"
                )
        self.policy = policy
        self.n_nodes = check_int("n_nodes", n_nodes, minimum=1)
        self.floor = 2 * self.n_nodes if floor is None else check_int("floor", floor)
        if self.floor < self.n_nodes:
            raise InputError(
                f"floor={self.floor} is below the graph's {self.n_nodes} nodes: no walk can visit "
                f"every node every {self.floor} batches (a batch has one ROOT); use "
                f"floor >= {self.n_nodes} (default {2 * self.n_nodes})"
            )
        self._due = self.floor - self.n_nodes + 1  # age before which no deadline is tight
        self._last = np.full(self.n_nodes, -1, np.int64)
        self._t = 0  # decisions observed
        self.forced = 0

    @property
    def entropy(self) -> float:
        """The wrapped policy's entropy of its last decision (NaN if it has none)."""
        return float(getattr(self.policy, "entropy", float("nan")))

    def reset(self, epoch: int, seed: int) -> None:
        self.policy.reset(epoch, seed)

    def select(self, step: WalkStep) -> int:
        t = self._t
        if t - int(self._last.min()) >= self._due:  # else every deadline is n_nodes away
            alive = step.alive()
            alive = alive[(alive >= 0) & (alive < self.n_nodes)]
            if alive.size:
                last = self._last[alive]
                order = np.argsort(last, kind="stable")  # alive is sorted: ties by lowest id
                slack = last[order] + self.floor - (t + np.arange(alive.size))
                if (slack <= 0).any():
                    self.forced += 1
                    return int(alive[order[0]])
        return self.policy.select(step)

    def observe(self, step: WalkStep) -> None:
        comm = step.community[(step.community >= 0) & (step.community < self.n_nodes)]
        self._last[comm] = self._t
        if 0 <= step.root < self.n_nodes:
            self._last[step.root] = self._t
        self._t += 1
        self.policy.observe(step)

    def learn(self, step: WalkStep, reward: float) -> None:
        self.policy.learn(step, reward)

    def ages(self) -> npt.NDArray[np.int64]:
        """Decisions since each node's last visit (never visited: since the start, plus one)."""
        out: npt.NDArray[np.int64] = self._t - self._last
        return out

    def diagnostics(self) -> dict[str, Any]:
        """The wrapped policy's diagnostics (if it has any) with ``forced`` and ``floor``."""
        inner = getattr(self.policy, "diagnostics", None)
        d: dict[str, Any] = dict(inner()) if callable(inner) else {}
        d["forced"] = self.forced
        d["floor"] = self.floor
        return d

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": type(self).__qualname__,
            "inner_policy": type(self.policy).__qualname__,
            "n_nodes": self.n_nodes,
            "floor": self.floor,
            "last": self._last.copy(),
            "t": self._t,
            "forced": self.forced,
            "inner": self.policy.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`; refuses a state with another wrapped policy, number
        of nodes or floor (and the wrapped policy refuses another graph)."""
        state = _check_state(state, type(self).__qualname__)
        inner = type(self.policy).__qualname__
        if state["inner_policy"] != inner:
            raise InputError(
                f"the CoverageFloor state wraps a {state['inner_policy']} policy but this one "
                f"wraps a {inner}; resume with the policy the state was saved with"
            )
        if int(state["n_nodes"]) != self.n_nodes:
            raise InputError(
                f"the CoverageFloor state was saved on a graph of {state['n_nodes']} nodes but "
                f"this one has n_nodes={self.n_nodes}; load a state saved on the same graph"
            )
        if int(state["floor"]) != self.floor:
            raise InputError(
                f"the CoverageFloor state was saved with floor={state['floor']} but this one has "
                f"floor={self.floor}; create it with floor={state['floor']} to resume"
            )
        self.policy.load_state_dict(state["inner"])
        self._last = np.array(state["last"], np.int64)
        self._t = int(state["t"])
        self.forced = int(state["forced"])


_CLASSES: dict[str, type[_NodePolicy]] = {
    "uniform": UniformWalker,
    "exp3s": Exp3SWalker,
    "pg": PolicyGradientWalker,
    "odm": GlobalBandit,
}


def make_policy(
    name: str,
    index: GraphIndex | str | Path,
    graph_name: str | None = None,
    *,
    seed: int = 0,
    floor: int | Literal["auto"] | None = None,
    **kw: Any,
) -> WalkPolicy:
    """The policy called ``name`` (one of :data:`POLICIES`) for graph ``graph_name`` of ``index``.

    Args:
        name: ``"uniform"``, ``"exp3s"``, ``"pg"`` or ``"odm"``.
        index: the index (or its path) the sampler walks.
        graph_name: the graph the sampler walks (default: the index's only graph).
        seed: the policy's seed.
        floor: wrap the policy in a :class:`CoverageFloor` with this floor (``"auto"``: the
            default ``2 * n_nodes``; ``None``: no floor).
        **kw: the policy's own settings (e.g. ``eta=0.1`` for ``exp3s``).

    Raises:
        InputError: ``name`` is not a known policy (the message lists them), or a setting is out
            of range.
    """
    if name not in _CLASSES:
        raise InputError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    policy: WalkPolicy = _CLASSES[name](index, graph_name, seed=seed, **kw)
    if isinstance(floor, str):
        if floor != "auto":
            raise InputError(
                f"floor={floor!r} should be an integer >= the graph's nodes, 'auto' or None"
            )
        policy = CoverageFloor(policy)
    elif floor is not None:
        policy = CoverageFloor(policy, floor=floor)
    return policy
