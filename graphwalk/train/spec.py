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

Examples: ``er``, ``er:k=4:mix=0.1``, ``knn:mix=0.25:weighted``, ``knn@body.act2:restart=0.1``.
The canonical text of a spec (``str(spec)``) lists its options in a fixed order, so two spellings
of one sampler compare equal and name the same run directory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphwalk.errors import InputError

__all__ = ["SamplerSpec", "parse_spec", "parse_specs"]

_OPTIONS = ("k", "mix", "restart", "weighted", "replacement")
_GRAPH = re.compile(r"^[A-Za-z0-9_.@\-]+$")
_SYNTAX = (
    "a sampler spec is 'random' or GRAPH[:k=INT][:mix=REAL][:restart=REAL][:weighted]"
    "[:replacement], e.g. 'er:k=4:mix=0.1' or 'knn:mix=0.25'"
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

    @property
    def is_random(self) -> bool:
        """Whether this is plain shuffling."""
        return self.graph is None

    def __str__(self) -> str:
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
        return kw


def _num(v: float) -> str:
    """The shortest text that reads back as ``v`` (``0.1``, ``0.1234567``, ``1``)."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _real(text: str, spec: str, name: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"sampler spec {spec!r}: {name}={text!r} is not a number") from None
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise InputError(f"sampler spec {spec!r}: {name} should be in [0, 1], but got {text}")
    return v


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
        elif name == "k":
            if not value.isdigit():
                raise InputError(
                    f"sampler spec {spec!r}: k should be a non-negative integer, but got {value!r}"
                )
            values["k"] = int(value)
        else:
            values[name] = _real(value, spec, name)
    return SamplerSpec(graph=head, **values)


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
