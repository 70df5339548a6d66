"""What a batch came from (:class:`BatchInfo`): for logging and for the learned walker's
rewards, never needed on the plain path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.homophily import homophily

__all__ = ["BatchInfo"]


@dataclass
class BatchInfo:
    """What a batch came from: for logging, never needed by the plain path.

    ``batch`` is this rank's batch index in the epoch, ``global_batch`` its index in the walk
    (``rank + batch * world_size``). ``delay`` (set by :meth:`GraphWalkBatchSampler.report`) is
    how many batches the sampler had yielded after this one when its reward arrived.
    ``random_fill`` (item graphs) counts the items completed at random because the search budget
    ran out (late in an epoch, when the unused items are scattered)."""

    batch: int
    root: int
    community_size: int
    size: int
    epoch: int = 0
    global_batch: int = 0
    teleported: bool = False
    random_fill: int = 0
    delay: int | None = None
    #: (every item's label, the batch's items), from which :attr:`homophily` is computed on
    #: first access (report() returns a BatchInfo every step; most loops never read it)
    _source: tuple[npt.NDArray[np.int64], npt.NDArray[Any]] | None = field(
        default=None, repr=False, compare=False
    )
    _homophily: float | None = field(default=None, repr=False, compare=False)

    @property
    def homophily(self) -> float | None:
        """Label homophily of the batch (:func:`graphwalk.homophily.homophily`: the share of
        same-label pairs; ``None`` without labels or for a batch of one item)."""
        if self._homophily is None and self._source is not None:
            self._homophily = homophily(self._source[0][self._source[1]])
        return self._homophily
