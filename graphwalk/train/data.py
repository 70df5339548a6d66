"""Data for the training driver: the splits as tensors, seeded label noise, the shuffling
baseline sampler, and the batch statistics logged per step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Sampler

from graphwalk.datasets import VectorDataset, load_dataset
from graphwalk.errors import InputError
from graphwalk.homophily import homophily_of_counts
from graphwalk.walk.sampler import batch_sizes

__all__ = [
    "ShuffleBatchSampler",
    "batch_homophily",
    "flip_labels",
    "flip_labels_in_clusters",
    "load_splits",
]


def load_splits(
    dataset: str, *, classes: str = "label", data_dir: str = "datasets", download: bool = False
) -> tuple[VectorDataset, VectorDataset, str]:
    """The train and test splits of ``dataset`` and the label set trained on."""
    train = load_dataset(dataset, data_dir=data_dir, download=download, split="train")
    test = load_dataset(dataset, data_dir=data_dir, download=download, split="test")
    if classes not in train.labels:
        raise InputError(
            f"dataset {dataset!r} has no label set {classes!r}; it has {sorted(train.labels)}"
        )
    return train, test, classes


def flip_labels(
    labels: npt.NDArray[np.int64], share: float, n_classes: int, seed: int
) -> npt.NDArray[np.int64]:
    """Flip ``round(share * n)`` labels, chosen uniformly, each to a uniformly random *other*
    class; the same ``seed`` flips the same items the same way."""
    y = np.array(labels, dtype=np.int64, copy=True)
    n_flip = round(share * y.size)
    if n_flip == 0:
        return y
    if n_classes < 2:
        raise InputError("label noise needs at least 2 classes")
    rng = np.random.default_rng([seed, 0x6E6F69])  # its own stream: "noi"
    rows = rng.choice(y.size, size=n_flip, replace=False)
    shift = rng.integers(1, n_classes, size=n_flip)
    y[rows] = (y[rows] + shift) % n_classes
    return y


def flip_labels_in_clusters(
    labels: npt.NDArray[np.int64],
    features: npt.NDArray[np.float32],
    share: float,
    n_classes: int,
    seed: int,
) -> npt.NDArray[np.int64]:
    """Flip ``round(share * n)`` labels concentrated in a few clusters: the items of k-means
    clusters of ``features`` (one per 100 items, seeded by ``seed``: the clusters of the index a
    run builds for that seed) taken in a seeded random order, every label of a chosen cluster
    flipped to another random class, until the count is reached (the last cluster partly).
    Noise that a walker can find, or be drawn to."""
    from graphwalk.build.cluster import kmeans_level
    from graphwalk.train.indexing import default_clusters

    y = np.array(labels, dtype=np.int64, copy=True)
    n_flip = round(share * y.size)
    if n_flip == 0:
        return y
    if n_classes < 2:
        raise InputError("label noise needs at least 2 classes")
    assign = kmeans_level(features, default_clusters(y.size), seed=seed).assignment
    rng = np.random.default_rng([seed, 0x636C75])  # "clu"
    rows: list[npt.NDArray[np.int64]] = []
    left = n_flip
    for c in rng.permutation(int(assign.max()) + 1):
        members = np.flatnonzero(assign == c)
        if left <= 0:
            break
        take = members if members.size <= left else rng.choice(members, left, replace=False)
        rows.append(take)
        left -= take.size
    chosen = np.concatenate(rows)
    y[chosen] = (y[chosen] + rng.integers(1, n_classes, size=chosen.size)) % n_classes
    return y


def batch_homophily(labels: npt.NDArray[np.int64], n_classes: int) -> float | None:
    """:func:`graphwalk.homophily.homophily` of a batch's labels, counted with ``bincount`` over
    ``n_classes`` (the training loop's per-step figure); ``None`` for a batch of one item."""
    return homophily_of_counts(np.bincount(labels, minlength=n_classes))


class ShuffleBatchSampler(Sampler[list[int]]):
    """The baseline: every item once per epoch in a fresh random order, cut into batches the way
    :class:`~graphwalk.GraphWalkBatchSampler` cuts an epoch (same sizes, global batch ``g`` to rank
    ``g % world_size``), so the two differ only in which items go together.

    The order is ``torch.randperm`` with a generator seeded by ``(seed, epoch)``: deterministic,
    independent of the global RNG, and resumable from ``(epoch, batches yielded)``. A finished
    pass moves on to the next epoch; :meth:`set_epoch` chooses one.
    """

    def __init__(
        self,
        n_items: int,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if batch_size > n_items:
            raise InputError(
                f"batch_size={batch_size} is larger than the {n_items} training items; "
                f"use batch_size <= {n_items}"
            )
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self._sizes, self.num_batches = batch_sizes(n_items, batch_size, world_size, drop_last)
        self._offsets = np.concatenate([[0], np.cumsum(self._sizes)])
        self._epoch = 0
        self._start = 0  # batches of this epoch already yielded (resume)

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)
        self._start = 0

    def _order(self) -> npt.NDArray[np.int64]:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self._epoch) % 2**63)
        return torch.randperm(self.n_items, generator=g).numpy()

    def __iter__(self) -> Iterator[list[int]]:
        order = self._order()
        offsets: list[int] = self._offsets.tolist()
        start, self._start = self._start, 0
        for b in range(start, self.num_batches):
            gb = b * self.world_size + self.rank
            self._start = b + 1  # state_dict() during the epoch resumes after this batch
            yield order[offsets[gb] : offsets[gb + 1]].tolist()
        self._epoch, self._start = self._epoch + 1, 0  # a finished pass moves to the next epoch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "start": self._start, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("seed") != self.seed:
            raise InputError(
                f"shuffle state has seed {state.get('seed')!r}, this sampler {self.seed}"
            )
        self._epoch, self._start = int(state["epoch"]), int(state["start"])
