"""What every walker (one per graph kind) offers the sampler, and the plan of one epoch's walk.

A walker holds a graph's arrays and the epoch layout, and knows how to walk them: it starts an
epoch (:meth:`Walker.start`), walks global batches into the epoch's plan (:meth:`Walker.run`:
the whole epoch at once on the static path, one batch at a time under a policy), and, for a
policy, lists the candidates and the nodes that still have items, checks a choice and says what a
batch's community was. The sampler (:mod:`graphwalk.walk.sampler`) chooses the walker once, from
the graph's kind, and never branches on the kind itself.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from graphwalk.walk.epoch import EpochLayout
from graphwalk.walk.kernels import ROOT_DEFAULT

__all__ = ["EpochPlan", "Walker", "crc"]

#: the stream of the walk's xorshift state, beside (seed, epoch)
WALK_STREAM = 0x67770A1C


def crc(*arrays: npt.NDArray[Any]) -> int:
    """CRC-32 over the bytes of ``arrays`` (no copy when contiguous)."""
    c = 0
    for a in arrays:
        c = zlib.crc32(np.ascontiguousarray(a).data.cast("B"), c)
    return c


@dataclass
class EpochPlan:
    """One epoch's walk, as far as it has been computed.

    Attributes:
        epoch: the epoch walked.
        items: the epoch's items; global batch ``g`` is ``items[offsets[g]:offsets[g + 1]]``.
        roots: ROOT per global batch (in the walker's numbering; -1 until walked).
        community: per global batch, the community's size (see :class:`BatchInfo`).
        given: ROOT per global batch as given to the kernel: a node, ``ROOT_DEFAULT`` or
            ``ROOT_TELEPORT``.
        state: the walker's own state (kept between calls of :meth:`Walker.run`).
        done: global batches walked so far (a policy's epoch is walked lazily).
        fill: item graphs: per global batch, the items completed at random.
        choices: what the policy returned, per global batch.
    """

    epoch: int
    items: npt.NDArray[np.int32]
    roots: npt.NDArray[np.int64]
    community: npt.NDArray[np.int64]
    given: npt.NDArray[np.int64]
    state: Any
    done: int = 0
    fill: npt.NDArray[np.int64] | None = None
    choices: list[int] = field(default_factory=list)

    @classmethod
    def empty(cls, epoch: int, layout: EpochLayout, state: Any) -> EpochPlan:
        nb = layout.n_global
        return cls(
            epoch,
            np.empty(layout.total, np.int32),
            np.full(nb, -1, np.int64),
            np.zeros(nb, np.int64),
            np.full(nb, ROOT_DEFAULT, np.int64),
            state,
        )


class Walker(ABC):
    """The walk over one kind of graph (see the module docstring).

    Attributes:
        kind: the graph kind walked (``"cluster"`` or ``"item"``).
        arrays: the arrays the walk reads (checksummed, see :meth:`check_unchanged`).
    """

    kind: ClassVar[str]
    arrays: tuple[npt.NDArray[Any], ...]

    def __init__(self, name: str, layout: EpochLayout, seed: int) -> None:
        self.name = name
        self.layout = layout
        self.seed = seed
        self._crc: int | None = None

    def fingerprint(self) -> int | None:
        """Remember a CRC of the arrays when they are writable (an index built in this process,
        which its owner could still change), and return it; ``None`` for read-only arrays."""
        if any(a.flags.writeable for a in self.arrays):
            self._crc = crc(*self.arrays)
        return self._crc

    def check_unchanged(self) -> None:
        """Refuse to walk arrays that changed since the walker was made."""
        from graphwalk.errors import InputError

        if self._crc is not None and crc(*self.arrays) != self._crc:
            raise InputError(
                f"the arrays of graph {self.name!r} changed since this sampler was "
                "created; indexes are immutable: build a new index and a new sampler"
            )

    @abstractmethod
    def start(self, epoch: int) -> EpochPlan:
        """A new, unwalked plan for ``epoch``."""

    @abstractmethod
    def run(self, plan: EpochPlan, b0: int, b1: int) -> None:
        """Walk global batches ``[b0, b1)`` into ``plan`` (``plan.done`` becomes ``b1``)."""

    @abstractmethod
    def candidates(
        self, plan: EpochPlan, b: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The nodes a policy may move to before global batch ``b`` (the previous ROOT's
        neighbours with items left near them) and their items left."""

    @abstractmethod
    def alive(self, plan: EpochPlan) -> Callable[[], npt.NDArray[np.int64]]:
        """A function listing the nodes with items left (sorted), for ``WalkStep.alive()``."""

    def check_choice(self, plan: EpochPlan, b: int, node: int, who: str) -> None:
        """Refuse a node (already in range) that a policy may not choose for batch ``b``."""
        del plan, b, node, who

    @abstractmethod
    def community(self, plan: EpochPlan, b: int) -> npt.NDArray[np.int64]:
        """What global batch ``b`` (just walked) drew from: clusters or items."""

    def to_walk(self, node: int) -> int:
        """A node id (as policies and users see it) in the walker's numbering."""
        return node

    def item(self, node: int) -> int:
        """A node of the walker's numbering as policies and users see it (-1 stays -1)."""
        return node
