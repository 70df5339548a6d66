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

Examples: ``er``, ``er:k=4:mix=0.1``, ``knn:mix=0.25:weighted``, ``knn@body.act2:restart=0.1``,
``er:policy=exp3s:reward=gar``, ``er:policy=exp3s:budget=500``, ``episodes``, ``episodes:walk``,
``episodes:within=parent``, ``episodes:level=kmeans``.
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

__all__ = ["SamplerSpec", "parse_spec", "parse_specs"]

_OPTIONS = ("k", "mix", "restart", "weighted", "replacement", "policy", "reward", "budget", "floor")
_EPISODE_OPTIONS = ("walk", "within", "level")
_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]*$")
_GRAPH = re.compile(r"^[A-Za-z0-9_.@\-]+$")
_SYNTAX = (
    "a sampler spec is 'random' or GRAPH[:k=INT][:mix=REAL][:restart=REAL][:weighted]"
    "[:replacement][:policy=NAME][:reward=NAME][:budget=INT][:floor=INT], e.g. "
    "'er:k=4:mix=0.1', 'knn:mix=0.25' or 'er:policy=exp3s'; or episodes[:walk][:within=LEVEL]"
    "[:level=LEVEL] for a meta-learner"
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

    @property
    def is_random(self) -> bool:
        """Whether this is plain shuffling."""
        return self.graph is None and not self.episodes

    @property
    def is_episodes(self) -> bool:
        """Whether this draws episodes for a meta-learner (:mod:`graphwalk.tasks`)."""
        return self.episodes

    def __str__(self) -> str:
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
