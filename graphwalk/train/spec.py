"""Sampler specs: one short string per sampler, for the command line and comparison lists.

Grammar (no commas or spaces, so that ``--compare random,er:mix=0.1,knn`` splits on commas)::

    random                      shuffling: every item once per epoch, a new permutation each epoch
    GRAPH[:OPTION[:OPTION...]]  a walk over the index's graph GRAPH (``er``, ``knn-clusters``,
                                ``knn``, ``knn@LAYER``), with options
        k=INT                   cluster graphs: neighbour clusters per community
        mix=REAL                share of each batch drawn from outside the community, in [0, 1]
        restart=REAL            teleport probability, in [0, 1]
        weighted                choose neighbours and moves by edge weight
        replacement             draw every batch from full communities (an epoch has as many
                                batches as one without replacement)
        policy=NAME             a learned walker chooses each ROOT (graphwalk.learn: uniform,
                                exp3s, pg, odm), rewarded by the training loop
        reward=NAME             what the loop reports to the policy: grad-norm (default),
                                loss-drop, gar
        budget=INT              budgeted mode: an epoch is INT batches drawn with replacement
                                (implies ``replacement``), placed by the policy
        floor=INT               coverage floor of a policy: a node left out of every community
                                for INT batches is chosen next (default with replacement: twice
                                the graph's nodes; reorder-only epochs cover everything anyway)

    episodes[:OPTION...]        N-way K-shot episodes for a meta-learner (``--meta``; the shape
                                from ``--n-way/--k-shot/--q-query/--episodes``), with options
        walk                    an episode's classes are ROOT and its neighbours on a class graph
                                (default: uniform)
        within=LEVEL            an episode's classes share one parent of the coarser LEVEL
        level=LEVEL             the level whose clusters are the classes: ``labels`` (default,
                                supervised) or ``kmeans`` (unsupervised, as CACTUs)

    curriculum=NAME[:OPTION...] a curriculum (:mod:`graphwalk.tasks.curriculum`): NAME is a pacing
                                (``exp``, ``varexp``, ``step``, ``linear``, ``root``: the share of
                                every class in play grows over the run, easiest items first),
                                ``hierarchy`` (coarse to fine: the classes of 2 groups of a
                                coarser level first, then more), ``agent`` (a bandit over
                                difficulty bands that learns the schedule), or a curriculum file
                                (``.json`` / ``.toml``), with options
        order=ORDER             easy (default), random (the control with the same pacing) or hard
                                (the anti-curriculum)
        score=SCORE             difficulty: transfer (default: a linear classifier's confidence)
                                or graph (neighbours of another class in the kNN graph)
        start=REAL              pacing: the first share, in (0, 1] (default 0.1); hierarchy: the
                                first number of groups (default 2)
        inc=REAL                exp / varexp / hierarchy: the growth factor, > 1 (default 2)
        walk                    the data order inside a task is a walk on the kNN graph
        level=LEVEL             hierarchy: the coarser level (default superclass when the dataset
                                has it, else parent: class centroids merged by Ward clustering)
        bands=INT               agent: difficulty bands, the bandit's tasks (default 5)
        policy=NAME, reward=NAME
                                agent: the learner (exp3s default; uniform: the no-learning
                                control) and its reward (grad-norm default: gradient prediction
                                gain; loss-drop: prediction gain)

Examples: ``er``, ``er:k=4:mix=0.1``, ``knn:mix=0.25:weighted``, ``knn@body.act2:restart=0.1``,
``er:policy=exp3s:reward=gar``, ``er:policy=exp3s:budget=500``, ``episodes``, ``episodes:walk``,
``episodes:within=parent``, ``episodes:level=kmeans``, ``curriculum=linear``,
``curriculum=linear:order=random``, ``curriculum=hierarchy``, ``curriculum=agent:policy=uniform``,
``curriculum=my-schedule.toml``.
The canonical text of a spec (``str(spec)``) lists its options in a fixed order, so two spellings
of one sampler compare equal and name the same run directory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from graphwalk.errors import InputError
from graphwalk.validation import parse_int, parse_real

__all__ = ["CURRICULA", "SamplerSpec", "parse_spec", "parse_specs"]

_OPTIONS = ("k", "mix", "restart", "weighted", "replacement", "policy", "reward", "budget", "floor")
_EPISODE_OPTIONS = ("walk", "within", "level")
_CURRICULUM_OPTIONS = (
    "order",
    "score",
    "start",
    "inc",
    "walk",
    "level",
    "bands",
    "policy",
    "reward",
)
#: The curriculum names of ``curriculum=NAME`` besides a file.
CURRICULA = ("exp", "varexp", "step", "linear", "root", "hierarchy", "agent")
_PATH = re.compile(r"^[A-Za-z0-9_./@~\-]+$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]*$")
_GRAPH = re.compile(r"^[A-Za-z0-9_.@\-]+$")
_SYNTAX = (
    "a sampler spec is 'random' or GRAPH[:k=INT][:mix=REAL][:restart=REAL][:weighted]"
    "[:replacement][:policy=NAME][:reward=NAME][:budget=INT][:floor=INT], e.g. "
    "'er:k=4:mix=0.1', 'knn:mix=0.25' or 'er:policy=exp3s'; or episodes[:walk][:within=LEVEL]"
    "[:level=LEVEL] for a meta-learner; or curriculum=NAME|FILE[:order=easy|random|hard]"
    "[:score=transfer|graph][:start=REAL][:inc=REAL][:walk][:level=LEVEL][:bands=INT]"
    "[:policy=NAME][:reward=NAME]"
)


@dataclass(frozen=True)
class SamplerSpec:
    """A parsed sampler spec (see the module docstring for the grammar).

    Attributes:
        graph: the graph walked, or ``None`` for ``random`` (shuffling).
        k, mix, restart, weighted, replacement: the walk's settings
            (:class:`~graphwalk.GraphWalkBatchSampler`'s arguments of the same names).
    """

    graph: str | None = None
    k: int | None = None
    mix: float = 0.0
    restart: float = 0.0
    weighted: bool = False
    replacement: bool = False
    policy: str | None = None
    reward: str | None = None
    budget: int | None = None
    floor: int | None = None
    episodes: bool = False
    classes: str = "uniform"
    level: str = "labels"
    curriculum: str | None = None
    order: str = "easy"
    score: str = "transfer"
    start: float | None = None
    inc: float | None = None
    walk: bool = False
    coarse: str | None = None
    bands: int | None = None

    @property
    def is_random(self) -> bool:
        """Whether this is plain shuffling."""
        return self.graph is None and not self.episodes and self.curriculum is None

    @property
    def is_curriculum(self) -> bool:
        """Whether this follows a curriculum (:mod:`graphwalk.tasks.curriculum`)."""
        return self.curriculum is not None

    @property
    def is_agent(self) -> bool:
        """Whether this is the bandit over tasks (``curriculum=agent``)."""
        return self.curriculum == "agent"

    @property
    def is_episodes(self) -> bool:
        """Whether this draws episodes for a meta-learner (:mod:`graphwalk.tasks`)."""
        return self.episodes

    def __str__(self) -> str:
        if self.curriculum is not None:
            parts = [f"curriculum={self.curriculum}"]
            if self.order != "easy":
                parts.append(f"order={self.order}")
            if self.score != "transfer":
                parts.append(f"score={self.score}")
            if self.start is not None:
                parts.append(f"start={_num(self.start)}")
            if self.inc is not None:
                parts.append(f"inc={_num(self.inc)}")
            if self.walk:
                parts.append("walk")
            if self.coarse is not None:
                parts.append(f"level={self.coarse}")
            if self.bands is not None:
                parts.append(f"bands={self.bands}")
            if self.policy is not None:
                parts.append(f"policy={self.policy}")
            if self.reward is not None:
                parts.append(f"reward={self.reward}")
            return ":".join(parts)
        if self.episodes:
            parts = ["episodes"]
            if self.classes == "walk":
                parts.append("walk")
            elif self.classes.startswith("within:"):
                parts.append(f"within={self.classes.split(':', 1)[1]}")
            if self.level != "labels":
                parts.append(f"level={self.level}")
            return ":".join(parts)
        if self.graph is None:
            return "random"
        parts = [self.graph]
        if self.k is not None:
            parts.append(f"k={self.k}")
        if self.mix:
            parts.append(f"mix={_num(self.mix)}")
        if self.restart:
            parts.append(f"restart={_num(self.restart)}")
        if self.weighted:
            parts.append("weighted")
        if self.replacement:
            parts.append("replacement")
        if self.policy is not None:
            parts.append(f"policy={self.policy}")
        if self.reward is not None:
            parts.append(f"reward={self.reward}")
        if self.budget is not None:
            parts.append(f"budget={self.budget}")
        if self.floor is not None:
            parts.append(f"floor={self.floor}")
        return ":".join(parts)

    @property
    def slug(self) -> str:
        """A file-name-safe form of the spec (for run directories)."""
        return re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(self).replace(":", "_").replace("=", "-"))

    def sampler_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~graphwalk.GraphWalkBatchSampler` (walks only)."""
        if self.graph is None:
            raise InputError("the random spec has no walk settings")
        kw: dict[str, Any] = {
            "graph": self.graph,
            "mix": self.mix,
            "restart": self.restart,
            "weighted": self.weighted,
            "replacement": self.replacement,
        }
        if self.k is not None:
            kw["k"] = self.k
        if self.budget is not None:
            kw["num_batches"] = self.budget
        return kw


def _num(v: float) -> str:
    """The shortest text that reads back as ``v`` (``0.1``, ``0.1234567``, ``1``)."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _number(spec: str, name: str, parse: Callable[[], Any]) -> Any:
    """A number of a spec, parsed as :mod:`graphwalk.validation` parses text (the command line
    too); a refusal names the spec, the option and the range."""
    try:
        return parse()
    except ValueError as e:
        raise InputError(f"sampler spec {spec!r}: {name} {e}") from None


def parse_spec(text: str) -> SamplerSpec:
    """Parse one sampler spec; errors name the spec and give the grammar."""
    if not isinstance(text, str):
        raise TypeError(f"a sampler spec should be a string, but got {type(text).__name__}")
    spec = text.strip()
    if not spec:
        raise InputError(f"empty sampler spec; {_SYNTAX}")
    if spec == "random":
        return SamplerSpec()
    head, *options = spec.split(":")
    if head.startswith("curriculum"):
        return _parse_curriculum(spec, head, options)
    if head == "episodes":
        return _parse_episodes(spec, options)
    if head == "random":
        raise InputError(f"sampler spec {spec!r}: 'random' takes no options")
    if not _GRAPH.match(head):
        raise InputError(f"sampler spec {spec!r}: {head!r} is not a graph name; {_SYNTAX}")
    values: dict[str, Any] = {}
    for opt in options:
        name, eq, value = opt.partition("=")
        if name not in _OPTIONS:
            raise InputError(
                f"sampler spec {spec!r}: unknown option {name!r}; options are {', '.join(_OPTIONS)}"
            )
        if name in values:
            raise InputError(f"sampler spec {spec!r}: option {name!r} given twice")
        if name in ("weighted", "replacement"):
            if eq and value.lower() not in ("true", "false", "1", "0"):
                raise InputError(f"sampler spec {spec!r}: {name} takes no value (or true/false)")
            values[name] = not eq or value.lower() in ("true", "1")
        elif not eq or not value:
            raise InputError(f"sampler spec {spec!r}: {name} needs a value, e.g. {name}=0.1")
        elif name in ("k", "budget", "floor"):
            low = 0 if name == "k" else 1
            values[name] = _number(spec, name, partial(parse_int, value, low))
        elif name in ("policy", "reward"):
            if not _NAME.match(value):
                raise InputError(f"sampler spec {spec!r}: {name}={value!r} is not a name")
            values[name] = value
        else:
            values[name] = _number(spec, name, partial(parse_real, value, 0.0, 1.0))
    if "budget" in values:
        values["replacement"] = True
    for name in ("reward", "floor"):
        if name in values and "policy" not in values:
            raise InputError(
                f"sampler spec {spec!r}: {name} goes with a learned walker; add policy=NAME "
                "(e.g. policy=exp3s)"
            )
    if "policy" in values:
        _check_learning(spec, values)
    return SamplerSpec(graph=head, **values)


def _parse_episodes(spec: str, options: Sequence[str]) -> SamplerSpec:
    classes, level, seen = "uniform", "labels", set()
    for opt in options:
        name, eq, value = opt.partition("=")
        if name not in _EPISODE_OPTIONS:
            raise InputError(
                f"sampler spec {spec!r}: unknown option {name!r}; episodes take "
                f"{', '.join(_EPISODE_OPTIONS)}"
            )
        if name in seen:
            raise InputError(f"sampler spec {spec!r}: option {name!r} given twice")
        seen.add(name)
        if name == "walk":
            if eq:
                raise InputError(f"sampler spec {spec!r}: walk takes no value")
            classes = "walk"
            continue
        if not value or not _GRAPH.match(value):
            raise InputError(
                f"sampler spec {spec!r}: {name} needs a level name, e.g. {name}=parent"
            )
        if name == "within":
            classes = f"within:{value}"
        else:
            level = value
    if "walk" in seen and "within" in seen:
        raise InputError(
            f"sampler spec {spec!r}: walk and within are two ways to choose classes; pick one"
        )
    return SamplerSpec(episodes=True, classes=classes, level=level)


def _parse_curriculum(spec: str, head: str, options: Sequence[str]) -> SamplerSpec:
    name = head.partition("=")[2]
    if not head.startswith("curriculum=") or not name:
        raise InputError(
            f"sampler spec {spec!r}: name the curriculum, curriculum=NAME or curriculum=FILE "
            f"(NAME: {', '.join(CURRICULA)}; FILE: a .json or .toml file)"
        )
    is_file = name not in CURRICULA
    if is_file and not (_PATH.match(name) and name.lower().endswith((".json", ".toml"))):
        raise InputError(
            f"sampler spec {spec!r}: unknown curriculum {name!r}; name one of "
            f"{', '.join(CURRICULA)} or a .json / .toml curriculum file"
        )
    values: dict[str, Any] = {}
    for opt in options:
        key, eq, value = opt.partition("=")
        if key not in _CURRICULUM_OPTIONS:
            raise InputError(
                f"sampler spec {spec!r}: unknown option {key!r}; curricula take "
                f"{', '.join(_CURRICULUM_OPTIONS)}"
            )
        if key in values:
            raise InputError(f"sampler spec {spec!r}: option {key!r} given twice")
        if key == "walk":
            if eq:
                raise InputError(f"sampler spec {spec!r}: walk takes no value")
            values["walk"] = True
            continue
        if not value:
            raise InputError(f"sampler spec {spec!r}: {key} needs a value, e.g. {key}=...")
        if key == "order":
            from graphwalk.tasks.curriculum import ORDERS

            if value not in ORDERS:
                raise InputError(
                    f"sampler spec {spec!r}: order={value!r}; choose {', '.join(ORDERS)}"
                )
        elif key == "score":
            from graphwalk.tasks.curriculum import SCORES

            if value not in SCORES:
                raise InputError(
                    f"sampler spec {spec!r}: score={value!r}; choose {', '.join(SCORES)}"
                )
        elif key == "start":
            values[key] = _number(spec, key, partial(parse_real, value, 0.0, None, low_open=True))
            continue
        elif key == "inc":
            values[key] = _number(spec, key, partial(parse_real, value, 1.0, None, low_open=True))
            continue
        elif key == "bands":
            values[key] = _number(spec, key, partial(parse_int, value, 2))
            continue
        elif key in ("policy", "reward", "level"):
            if not _GRAPH.match(value):
                raise InputError(f"sampler spec {spec!r}: {key}={value!r} is not a name")
        values[key] = value
    agent_only = [k for k in ("bands", "policy", "reward") if k in values]
    if agent_only and name != "agent":
        raise InputError(
            f"sampler spec {spec!r}: {agent_only[0]} goes with curriculum=agent (the bandit over "
            "tasks)"
        )
    if "level" in values and name != "hierarchy":
        raise InputError(f"sampler spec {spec!r}: level goes with curriculum=hierarchy")
    if name in ("step", "linear", "root") or is_file:
        if "inc" in values:
            raise InputError(
                f"sampler spec {spec!r}: inc goes with exp, varexp and hierarchy curricula"
            )
    if is_file and "start" in values:
        raise InputError(f"sampler spec {spec!r}: a curriculum file sets its own start")
    if "start" in values:
        start = values["start"]
        if name == "hierarchy":
            if start != int(start) or start < 1:
                raise InputError(
                    f"sampler spec {spec!r}: a hierarchy's start is a number of groups, an "
                    f"integer >= 1, but got start={_num(start)}"
                )
        elif start > 1.0:
            raise InputError(
                f"sampler spec {spec!r}: start is the first share of the data, a number in "
                f"(0, 1], but got start={_num(start)}"
            )
    if name == "agent":
        if "order" in values or "walk" in values:
            raise InputError(
                f"sampler spec {spec!r}: the agent chooses its own order; its control is "
                "policy=uniform"
            )
        values["policy"] = values.get("policy", "exp3s")
        _check_learning(spec, values)
    return SamplerSpec(
        curriculum=name,
        order=values.get("order", "easy"),
        score=values.get("score", "transfer"),
        start=values.get("start"),
        inc=values.get("inc"),
        walk=values.get("walk", False),
        coarse=values.get("level"),
        bands=values.get("bands"),
        policy=values.get("policy"),
        reward=values.get("reward"),
    )


def _check_learning(spec: str, values: dict[str, Any]) -> None:
    from graphwalk.learn import POLICIES, REWARDS

    if values["policy"] not in POLICIES:
        raise InputError(
            f"sampler spec {spec!r}: unknown policy {values['policy']!r}; choose from "
            f"{', '.join(POLICIES)}"
        )
    if values.get("reward", "grad-norm") not in REWARDS:
        raise InputError(
            f"sampler spec {spec!r}: unknown reward {values['reward']!r}; choose from "
            f"{', '.join(REWARDS)}"
        )


def parse_specs(text: str | Sequence[str]) -> list[SamplerSpec]:
    """Parse a comma-separated list of specs (or a sequence of spec strings); duplicates (after
    canonicalisation) are an error."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    specs = [parse_spec(p) for p in parts]
    if not specs:
        raise InputError(f"no sampler specs given; {_SYNTAX}")
    seen: set[str] = set()
    for s in specs:
        if str(s) in seen:
            raise InputError(f"sampler spec {str(s)!r} is listed twice")
        seen.add(str(s))
    return specs
