"""Epoch arithmetic: how many batches of which sizes, how they are shared by ranks, and how many
items of each come from outside the community (``mix``).

An epoch is a sequence of *global* batches; global batch ``g`` goes to rank ``g % world_size``, so
every rank gets the same number of whole batches and the walk itself is the same on every rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.validation import check_int, check_positive_int

__all__ = ["EpochLayout", "batch_sizes", "dist_default", "mix_counts", "walked_items"]


def batch_sizes(
    n_items: int, batch_size: int, world_size: int, drop_last: bool
) -> tuple[npt.NDArray[np.int64], int]:
    """Sizes of an epoch's global batches and the number of batches per rank.

    Global batch ``g`` goes to rank ``g % world_size``, so every rank gets the same number of whole
    batches. Without ``drop_last`` every item is used once: the last round of ``world_size``
    batches shares what is left evenly, and when fewer than ``world_size`` items are left they go
    one each to the previous round's batches (``batch_size + 1``) rather than being repeated.
    With ``drop_last`` all batches are full and the remainder (different items each epoch) waits.
    """
    per_round = batch_size * world_size
    if drop_last:
        per_rank = n_items // per_round
        if per_rank == 0:
            raise InputError(
                f"batch_size={batch_size} x world_size={world_size} = {per_round} exceeds the "
                f"{n_items} items with drop_last=True: no batch can be made; use a smaller batch_size"
            )
        return np.full(per_rank * world_size, batch_size, np.int64), per_rank
    per_rank = math.ceil(n_items / per_round)
    rest = n_items - (per_rank - 1) * per_round
    sizes = np.full(per_rank * world_size, batch_size, np.int64)
    if rest >= world_size:
        last = np.full(world_size, rest // world_size, np.int64)
        last[: rest % world_size] += 1
        sizes[-world_size:] = last
    else:
        per_rank -= 1
        sizes = sizes[: per_rank * world_size]
        sizes[-world_size:][:rest] += 1
    return sizes, per_rank


def mix_counts(sizes: npt.NDArray[np.int64], mix: float) -> npt.NDArray[np.int64]:
    """Items drawn from outside the community in each batch: ``mix`` of every batch on average,
    exactly (``floor(mix * items so far)`` carried from batch to batch, not rounded per batch)."""
    cum = np.zeros(sizes.shape[0] + 1, np.int64)
    np.cumsum(sizes, out=cum[1:])
    # float64 is exact for the counts of any real epoch (< 2**53 items)
    floors = np.floor(float(mix) * cum.astype(np.float64) + 1e-9).astype(np.int64)
    return np.minimum(np.diff(floors), sizes).astype(np.int64)


def dist_default(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: the values given, else ``torch.distributed``'s when initialised,
    else 0 and 1; checked."""
    if rank is None or world_size is None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
        else:
            rank = 0 if rank is None else rank
            world_size = 1 if world_size is None else world_size
    check_int("world_size", world_size, minimum=1)
    if (
        isinstance(rank, bool)
        or not isinstance(rank, (int, np.integer))
        or not 0 <= rank < world_size
    ):
        raise InputError(f"rank should be in [0, world_size={world_size}), but got rank={rank!r}")
    return int(rank), int(world_size)


@dataclass(frozen=True)
class EpochLayout:
    """The batches of every epoch: their sizes, ``mix`` shares and offsets into the epoch's
    items, and this rank's share of them.

    Attributes:
        sizes: items per global batch.
        n_out: items per global batch drawn from outside the community (``mix``).
        offsets: global batch ``g`` is ``items[offsets[g]:offsets[g + 1]]`` of the epoch.
        bounds: ``offsets`` as Python ints (cheaper to index on the hot path).
        num_batches: batches per rank.
        rank, world_size: this rank and the number of ranks.
    """

    sizes: npt.NDArray[np.int64]
    n_out: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    bounds: list[int]
    num_batches: int
    rank: int
    world_size: int

    @classmethod
    def build(
        cls,
        n: int,
        batch_size: int,
        *,
        rank: int,
        world_size: int,
        mix: float,
        replacement: bool,
        num_batches: int | None,
        drop_last: bool,
    ) -> EpochLayout:
        """The layout of an epoch over ``n`` items: one pass over them (every item once), or with
        ``replacement`` ``num_batches`` full batches per rank (default: as many as one pass)."""
        if replacement:
            nb = math.ceil(n / (batch_size * world_size)) if num_batches is None else num_batches
            per_rank = check_positive_int("num_batches", nb)
            sizes = np.full(per_rank * world_size, batch_size, np.int64)
        else:
            if num_batches is not None:
                raise InputError(
                    "num_batches sets the epoch length with replacement=True only; "
                    "without replacement an epoch is one pass over the items"
                )
            sizes, per_rank = batch_sizes(n, batch_size, world_size, drop_last)
        offsets = np.zeros(sizes.size + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        return cls(
            sizes, mix_counts(sizes, mix), offsets, offsets.tolist(), per_rank, rank, world_size
        )

    @property
    def n_global(self) -> int:
        """Global batches per epoch (all ranks)."""
        return int(self.sizes.size)

    @property
    def total(self) -> int:
        """Items in an epoch's global batches."""
        return int(self.offsets[-1])

    def global_batch(self, i: int) -> int:
        """The global batch of this rank's ``i``-th batch."""
        return self.rank + i * self.world_size

    def rank_items(self) -> int:
        """Items in this rank's batches of an epoch."""
        gbs = self.rank + np.arange(self.num_batches) * self.world_size
        return int(self.sizes[gbs].sum())


def walked_items(
    index: GraphIndex, items: Any, dataset: Any
) -> tuple[npt.NDArray[np.int64] | None, bool]:
    """The item ids to walk (``None``: all) and whether to yield positions in a ``Subset``."""
    n = index.n_items
    positions = False
    if dataset is not None:
        inner, idx = getattr(dataset, "dataset", None), getattr(dataset, "indices", None)
        if inner is not None and idx is not None:  # a torch.utils.data.Subset
            if len(inner) != n:
                raise InputError(
                    f"the Subset's dataset has {len(inner)} items but the index was built from "
                    f"{n}; index the dataset the Subset is taken from"
                )
            if items is not None:
                raise InputError("give items= or a Subset as dataset=, not both")
            items, positions = idx, True
        elif len(dataset) != n:
            raise InputError(
                f"the dataset has {len(dataset)} items but the index was built from {n}; "
                "rebuild the index from this dataset, or walk part of the indexed dataset with "
                "items=ids or dataset=torch.utils.data.Subset(indexed_dataset, ids)"
            )
    if items is None:
        return None, False
    arr = np.asarray(items)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(
            f"items should be a 1-D sequence of integer item ids, but got shape {arr.shape} "
            f"and dtype {arr.dtype}"
        )
    arr = arr.astype(np.int64)
    if arr.size == 0:
        raise InputError("items is empty: give at least one item id to walk")
    if arr.min() < 0 or arr.max() >= n:
        bad = int(arr[(arr < 0) | (arr >= n)][0])
        raise InputError(f"items holds id {bad}, outside the index's {n} items [0, {n})")
    if np.unique(arr).size != arr.size:
        raise InputError("items holds duplicate ids: every item is walked once per epoch")
    arr.flags.writeable = False
    return arr, positions
