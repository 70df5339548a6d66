"""Curricula as data: tasks, pacing functions, hierarchies, and the files that hold them.

A :class:`Task` is ``(classes, share of examples, data order)``: which items are in play (the
classes of a level, or the first ``groups`` clusters of a coarser level in the curriculum's
order), what share of each class's items (the easiest first when the curriculum's ``order`` is
``"easy"``), and in what order they are seen inside the task (``"shuffle"`` or a ``"walk"`` over
the index's item graph). A :class:`Curriculum` is a list of :class:`Stage` s, each a task and the
training steps it lasts; the last stage lasts until training ends.

Curricula are written by hand (a small JSON or TOML file: :meth:`Curriculum.load`) or generated:

- :meth:`Curriculum.pacing`: a pacing function over an easy-first order (Hacohen & Weinshall 2019,
  "On the power of curriculum learning in training deep networks": fixed exponential
  ``min(1, start * inc ** (i // step))``, varied exponential, single step; Platanios et al. 2019,
  "Competence-based curriculum learning": linear ``min(1, start + (1 - start) i / ramp)`` and root
  ``min(1, sqrt(start^2 + (1 - start^2) i / ramp))``);
- :meth:`Curriculum.hierarchy`: coarse to fine over a level of the index (CIFAR-100's
  superclasses, or a parent level derived from the class centroids), growing the set of classes:
  ``start`` groups first, ``inc`` times more at every stage, then all of them.

Every curriculum has its controls built in (:meth:`Curriculum.controls`): the same stages with
``order="random"`` (random order with the same pacing: Wu, Dyer and Neyshabur 2021, "When do
curricula work?", found it matches most curricula) and ``order="hard"`` (anti-curriculum); plain
shuffling is the ``random`` sampler. A control differs from its curriculum in ``order`` only: the
same stages, the same pool sizes at every step, other items.

The items a stage draws from are resolved by :class:`~graphwalk.tasks.CurriculumSampler` against an
index and a difficulty score (:mod:`graphwalk.tasks.difficulty`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomllib

from graphwalk._files import atomic_write
from graphwalk.errors import InputError
from graphwalk.validation import check_int, check_real

__all__ = [
    "DATA_ORDERS",
    "ORDERS",
    "PACINGS",
    "SCORES",
    "Curriculum",
    "Stage",
    "Task",
    "pacing_share",
]

#: How a curriculum ranks items and groups: easy first (the curriculum), random (the control with
#: the same pacing), hard first (the anti-curriculum).
ORDERS = ("easy", "random", "hard")
#: The difficulty scores (:mod:`graphwalk.tasks.difficulty`).
SCORES = ("transfer", "graph")
#: The data order inside a task.
DATA_ORDERS = ("shuffle", "walk")
#: The pacing functions of :meth:`Curriculum.pacing`.
PACINGS = ("exp", "varexp", "step", "linear", "root")
_STAGE_KEYS = ("steps", "classes", "groups", "level", "share", "data_order", "name")
_TOP_KEYS = ("name", "order", "score", "class_level", "stage", "stages", "pacing", "hierarchy")


@dataclass(frozen=True)
class Task:
    """What a stage trains on.

    Attributes:
        classes: cluster ids of ``level`` whose items are in play (``None``: all).
        groups: instead of ``classes``: the first ``groups`` clusters of ``level`` in the
            curriculum's order (easiest first for ``order="easy"``; ``None``: all).
        level: the level ``classes`` / ``groups`` name (default: the curriculum's class level).
        share: the share of each class's items in play, in ``(0, 1]`` (the first of each class
            in the curriculum's order).
        data_order: ``"shuffle"`` or ``"walk"`` (a walk over the index's item graph restricted
            to the task's items).
        name: a label for logs and plots.
    """

    classes: tuple[int, ...] | None = None
    groups: int | None = None
    level: str | None = None
    share: float = 1.0
    data_order: str = "shuffle"
    name: str = ""

    def __post_init__(self) -> None:
        if self.classes is not None and self.groups is not None:
            raise InputError(
                "a task names its items by classes=[...] or by groups=N, not both; keep one"
            )
        if self.classes is not None:
            ids = tuple(int(check_int("task classes", c, minimum=0)) for c in self.classes)
            if not ids:
                raise InputError("a task with classes=[] has no items; name at least one class")
            object.__setattr__(self, "classes", tuple(sorted(set(ids))))
        if self.groups is not None:
            check_int("task groups", self.groups, minimum=1)
        share = check_real("task share", self.share, low=0.0, high=1.0, low_open=True)
        object.__setattr__(self, "share", share)
        if self.data_order not in DATA_ORDERS:
            raise InputError(
                f"data_order should be one of {', '.join(DATA_ORDERS)}, but got "
                f"data_order={self.data_order!r}"
            )

    def describe(self) -> str:
        """A short text for logs: ``2 groups of superclass, 25% shuffle``."""
        what = "all classes" if self.level is None else f"all of {self.level}"
        if self.classes is not None:
            what = f"{self.level or 'classes'} {list(self.classes)}"
        elif self.groups is not None:
            what = f"{self.groups} groups of {self.level or 'classes'}"
        return self.name or f"{what}, {100 * self.share:.3g}% {self.data_order}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.classes is not None:
            d["classes"] = list(self.classes)
        if self.groups is not None:
            d["groups"] = self.groups
        if self.level is not None:
            d["level"] = self.level
        if self.share != 1.0:
            d["share"] = self.share
        if self.data_order != "shuffle":
            d["data_order"] = self.data_order
        if self.name:
            d["name"] = self.name
        return d


@dataclass(frozen=True)
class Stage:
    """A task and the training steps it lasts (the last stage of a curriculum lasts until
    training ends, whatever its ``steps``)."""

    task: Task
    steps: int = 1

    def __post_init__(self) -> None:
        check_int("stage steps", self.steps, minimum=1)


def pacing_share(
    kind: str,
    i: int,
    *,
    start: float,
    inc: float,
    step: int,
    ramp: int,
    lengths: Sequence[int] = (),
) -> float:
    """The share of the data in play at step ``i`` of a pacing function (see the module
    docstring; ``varexp`` multiplies by ``inc`` at the cumulative sums of ``lengths``)."""
    if kind == "exp":
        return min(1.0, start * inc ** (i // step))
    if kind == "varexp":
        k, edge = 0, 0
        for n in lengths:
            edge += n
            if i >= edge:
                k += 1
        return min(1.0, start * inc**k)
    if kind == "step":
        return start if i < step else 1.0
    if kind == "linear":
        return min(1.0, start + (1.0 - start) * i / ramp)
    if kind == "root":
        return min(1.0, math.sqrt(start**2 + (1.0 - start**2) * i / ramp))
    raise InputError(f"pacing should be one of {', '.join(PACINGS)}, but got pacing={kind!r}")


@dataclass(frozen=True)
class Curriculum:
    """A schedule of tasks over training steps (see the module docstring).

    Attributes:
        stages: the stages in order; the last lasts until training ends.
        order: ``"easy"`` (the curriculum), ``"random"`` or ``"hard"`` (its controls): how a
            task's ``share`` picks items of each class and how ``groups`` picks clusters.
        score: the difficulty score that ranks items: ``"transfer"`` (a simple classifier's
            confidence on the index's vectors) or ``"graph"`` (neighbours of another class).
        class_level: what "each class" means for ``share`` (default: the labels trained on).
        name: a label for tables and plots.
    """

    stages: tuple[Stage, ...]
    order: str = "easy"
    score: str = "transfer"
    class_level: str | None = None
    name: str = ""
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        stages = tuple(self.stages)
        if not stages:
            raise InputError("a curriculum needs at least one stage")
        for s in stages:
            if not isinstance(s, Stage):
                raise TypeError(f"stages should be Stage objects, but got {type(s).__name__}")
        object.__setattr__(self, "stages", stages)
        if self.order not in ORDERS:
            raise InputError(
                f"order should be one of {', '.join(ORDERS)}, but got order={self.order!r}"
            )
        if self.score not in SCORES:
            raise InputError(
                f"score should be one of {', '.join(SCORES)}, but got score={self.score!r}"
            )

    # ------------------------------------------------------------------ the schedule
    @property
    def starts(self) -> list[int]:
        """The step at which each stage starts."""
        out, t = [], 0
        for s in self.stages:
            out.append(t)
            t += s.steps
        return out

    @property
    def length(self) -> int:
        """Steps until the last stage starts (the schedule's length before it settles)."""
        return self.starts[-1]

    def stage_at(self, step: int) -> int:
        """The stage in force at training step ``step`` (0-based)."""
        import bisect

        return max(0, bisect.bisect_right(self.starts, int(step)) - 1)

    def with_order(self, order: str) -> Curriculum:
        """The same stages ranked by ``order`` (the controls)."""
        name = self.name.rsplit("/", 1)[0] if self.name else "curriculum"
        return replace(self, order=order, name=f"{name}/{order}" if order != "easy" else name)

    def controls(self) -> dict[str, Curriculum]:
        """This curriculum and its controls by order: ``easy``, ``random``, ``hard``."""
        return {o: self.with_order(o) for o in ORDERS}

    # ------------------------------------------------------------------ generators
    @classmethod
    def pacing(
        cls,
        kind: str,
        *,
        steps: int,
        start: float = 0.1,
        inc: float = 2.0,
        step: int | None = None,
        lengths: Sequence[int] = (),
        order: str = "easy",
        score: str = "transfer",
        data_order: str = "shuffle",
        resolution: float = 0.01,
    ) -> Curriculum:
        """A pacing curriculum over ``steps`` training steps: the share of every class in play
        at step ``i`` is the pacing function's value (module docstring), over the items ranked
        by ``score`` in ``order``.

        Args:
            kind: ``exp`` (fixed exponential), ``varexp`` (varied exponential: ``inc`` at the
                cumulative sums of ``lengths``), ``step`` (single step: ``start`` until ``step``,
                then all), ``linear``, ``root``.
            steps: the training budget the schedule is laid out for (linear and root reach all
                the data at ``steps // 2``; ``exp`` steps default to ``steps // 10``).
            start: the share at the first step, in ``(0, 1]``.
            inc: the exponential's factor, ``> 1``.
            step: steps between increases (``exp``) or of the low share (``step``); default:
                ``steps // 10`` and ``steps // 2``.
            resolution: shares are rounded up to multiples of this (stages of equal share are
                merged; at most ``1 / resolution`` stages).
        """
        steps = check_int("pacing steps", steps, minimum=2)
        start = check_real("pacing start", start, low=0.0, high=1.0, low_open=True)
        inc = check_real("pacing inc", inc, low=1.0, low_open=True)
        resolution = check_real("resolution", resolution, low=0.0, high=1.0, low_open=True)
        if kind not in PACINGS:
            raise InputError(
                f"pacing should be one of {', '.join(PACINGS)}, but got pacing={kind!r}"
            )
        if step is None:
            step = max(1, steps // (10 if kind == "exp" else 2))
        step = check_int("pacing step", step, minimum=1)
        lengths = tuple(check_int("varexp lengths", n, minimum=1) for n in lengths)
        if kind == "varexp" and not lengths:
            n_inc = max(1, math.ceil(math.log(1.0 / start) / math.log(inc)))
            # growing step lengths (Hacohen & Weinshall's varied exponential pacing)
            weights = [1.5**j for j in range(n_inc)]
            total = sum(weights)
            lengths = tuple(max(1, int(steps // 2 * w / total)) for w in weights)
        ramp = max(1, steps // 2)
        shares: list[float] = []
        for i in range(steps):
            s = pacing_share(kind, i, start=start, inc=inc, step=step, ramp=ramp, lengths=lengths)
            s = min(1.0, math.ceil(s / resolution - 1e-9) * resolution)
            shares.append(round(s, 10))
            if s >= 1.0:
                break
        stages: list[Stage] = []
        i = 0
        while i < len(shares):
            j = i
            while j < len(shares) and shares[j] == shares[i]:
                j += 1
            stages.append(Stage(Task(share=shares[i], data_order=data_order), steps=j - i))
            i = j
        source = {
            "pacing": {"kind": kind, "steps": steps, "start": start, "inc": inc, "step": step},
        }
        if kind == "varexp":
            source["pacing"]["lengths"] = list(lengths)
        if data_order != "shuffle":
            source["pacing"]["data_order"] = data_order
        return cls(tuple(stages), order=order, score=score, name=kind, source=source)

    @classmethod
    def hierarchy(
        cls,
        level: str,
        n_groups: int,
        *,
        steps: int,
        start: int = 2,
        inc: float = 2.0,
        order: str = "easy",
        score: str = "transfer",
        data_order: str = "shuffle",
    ) -> Curriculum:
        """Coarse to fine over ``level`` (``n_groups`` clusters, e.g. 20 superclasses): the
        items of ``start`` groups first, ``inc`` times more groups at each stage, then all; the
        first half of ``steps`` is shared equally by the stages before the last.

        Which groups come first is the curriculum's ``order`` over the groups' mean difficulty
        (easiest first; random; hardest first)."""
        n_groups = check_int("hierarchy groups", n_groups, minimum=2)
        steps = check_int("hierarchy steps", steps, minimum=2)
        start = check_int("hierarchy start", start, minimum=1, maximum=n_groups)
        inc = check_real("hierarchy inc", inc, low=1.0, low_open=True)
        counts: list[int] = []
        g = float(start)
        while round(g) < n_groups:
            if not counts or round(g) > counts[-1]:
                counts.append(round(g))
            g *= inc
        ramp = max(len(counts), steps // 2)
        per = [ramp // max(1, len(counts))] * len(counts)
        stages = [
            Stage(Task(groups=c, level=level, data_order=data_order), steps=max(1, n))
            for c, n in zip(counts, per, strict=True)
        ]
        stages.append(Stage(Task(level=level, data_order=data_order), steps=1))
        source = {
            "hierarchy": {
                "level": level,
                "groups": n_groups,
                "steps": steps,
                "start": start,
                "inc": inc,
            }
        }
        if data_order != "shuffle":
            source["hierarchy"]["data_order"] = data_order
        return cls(tuple(stages), order=order, score=score, name="hierarchy", source=source)

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """The curriculum as plain data (what :meth:`save` writes and :meth:`from_dict` reads)."""
        d: dict[str, Any] = {"name": self.name, "order": self.order, "score": self.score}
        if self.class_level is not None:
            d["class_level"] = self.class_level
        d["stages"] = [{"steps": s.steps, **s.task.to_dict()} for s in self.stages]
        return d

    def save(self, path: str | Path) -> Path:
        """Write the curriculum as JSON (atomically)."""
        return atomic_write(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "the curriculum") -> Curriculum:
        """A curriculum from plain data: ``stages`` (a list of ``{steps, classes | groups, level,
        share, data_order, name}``), or a ``pacing`` / ``hierarchy`` table with the arguments of
        :meth:`pacing` / :meth:`hierarchy`; and ``order``, ``score``, ``class_level``, ``name``."""
        if not isinstance(data, Mapping):
            raise InputError(
                f"{where} should be a table of settings, but got {type(data).__name__}"
            )
        unknown = [k for k in data if k not in _TOP_KEYS]
        if unknown:
            raise InputError(
                f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(_TOP_KEYS)}"
            )
        common = {k: data[k] for k in ("order", "score") if k in data}
        kinds = [k for k in ("stage", "stages", "pacing", "hierarchy") if k in data]
        if len(kinds) != 1:
            raise InputError(
                f"{where} should have exactly one of [[stage]] tables (JSON: stages = [...]), "
                "[pacing] or [hierarchy], "
                f"but has {', '.join(kinds) or 'none'}"
            )
        kind = kinds[0]
        try:
            if kind == "pacing":
                args = dict(_table(data[kind], where, "pacing"))
                pk = args.pop("kind", None)
                if pk is None:
                    raise InputError(f"{where}: [pacing] needs kind = one of {', '.join(PACINGS)}")
                if "steps" not in args:
                    raise InputError(
                        f"{where}: [pacing] needs steps = N (the training steps the schedule is "
                        "laid out over: epochs x batches per epoch)"
                    )
                cur = cls.pacing(str(pk), **args, **common)
            elif kind == "hierarchy":
                args = dict(_table(data[kind], where, "hierarchy"))
                if "level" not in args or "groups" not in args or "steps" not in args:
                    raise InputError(
                        f"{where}: [hierarchy] needs level = NAME, groups = N (the level's "
                        "clusters) and steps = N (the training steps it is laid out over)"
                    )
                cur = cls.hierarchy(str(args.pop("level")), args.pop("groups"), **args, **common)
            else:
                rows = data[kind]
                if not isinstance(rows, list) or not rows:
                    raise InputError(f"{where}: stages should be a non-empty list of tables")
                stages = [_stage(row, where, i) for i, row in enumerate(rows)]
                cur = cls(tuple(stages), **common)
        except TypeError as e:
            raise InputError(f"{where}: {e}") from None
        except InputError as e:
            if str(e).startswith(where):
                raise
            raise InputError(f"{where}: {e}") from None
        return replace(
            cur,
            name=str(data.get("name", cur.name) or cur.name),
            class_level=data.get("class_level"),
            source=dict(data),
        )

    @classmethod
    def load(cls, path: str | Path) -> Curriculum:
        """Read a curriculum file (``.json`` or ``.toml``); errors name the file and the fix."""
        p = Path(path)
        if not p.is_file():
            raise InputError(
                f"curriculum file {str(p)!r} does not exist; give a .json or .toml file"
            )
        text = p.read_text(encoding="utf-8", errors="replace")
        try:
            if p.suffix.lower() == ".toml":
                data: Any = tomllib.loads(text)
            else:
                data = json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as e:
            kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
            raise InputError(
                f"curriculum file {str(p)!r} is not valid {kind}: {e}; fix the file"
            ) from None
        cur = cls.from_dict(data, where=f"curriculum file {str(p)!r}")
        return replace(cur, name=cur.name or p.stem)

    def describe(self) -> list[dict[str, Any]]:
        """One row per stage: its start step, steps and task text (for logs and plots)."""
        return [
            {"stage": i, "start": t, "steps": s.steps, "task": s.task.describe()}
            for i, (t, s) in enumerate(zip(self.starts, self.stages, strict=True))
        ]


def _table(value: Any, where: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: [{what}] should be a table, but got {type(value).__name__}")
    return value


def _stage(row: Any, where: str, i: int) -> Stage:
    if not isinstance(row, Mapping):
        raise InputError(f"{where}: stage {i} should be a table, but got {type(row).__name__}")
    unknown = [k for k in row if k not in _STAGE_KEYS]
    if unknown:
        raise InputError(
            f"{where}: stage {i} has unknown key {unknown[0]!r}; a stage has "
            f"{', '.join(_STAGE_KEYS)}"
        )
    classes = row.get("classes")
    if classes is not None and not isinstance(classes, list):
        raise InputError(f"{where}: stage {i} classes should be a list of class ids")
    try:
        task = Task(
            classes=None if classes is None else tuple(classes),
            groups=row.get("groups"),
            level=row.get("level"),
            share=row.get("share", 1.0),
            data_order=row.get("data_order", "shuffle"),
            name=str(row.get("name", "")),
        )
        return Stage(task, steps=row.get("steps", 1))
    except InputError as e:
        raise InputError(f"{where}: stage {i}: {e}") from None
