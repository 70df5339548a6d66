"""What a run with an ``episodes`` sampler adds to a training run: the class split, the episode
sampler over the run's index, the meta-learner's loss for one episode, and the evaluation as the
field reports it (mean query accuracy over held-out episodes with a 95% confidence interval).

Meta-training draws episodes from the train split's items: over the classes trained on (level
``labels``, the split's training classes) or over k-means clusters of the train split (level
``kmeans``: unsupervised, as CACTUs). Every evaluation averages the same ``test_episodes``
episodes (uniform classes, the run's ``n_way`` / ``k_shot`` / ``q_query``) drawn from the test
split's items of the test classes: held-out items, and held-out classes when the split holds some
out. The split is written to the run directory as ``class-split.json``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from graphwalk._files import atomic_write
from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.train.config import TrainConfig
from graphwalk.train.spec import SamplerSpec

__all__ = ["EpisodeTask", "held_out_episodes", "make_learner", "run_class_split"]

SPLIT_FILE = "class-split.json"
_TEST_STREAM = 0x7E57  # the test episodes' seed: the run's seed xor this


def make_learner(cfg: TrainConfig) -> Any:
    """The meta-learner ``--meta`` names."""
    from graphwalk.tasks.meta import MAML, ProtoNet

    if cfg.meta == "protonet":
        return ProtoNet()
    return MAML(
        inner_steps=cfg.inner_steps, inner_lr=cfg.inner_lr, first_order=cfg.meta == "fomaml"
    )


def run_class_split(cfg: TrainConfig, train_y: npt.ArrayLike, test_y: npt.ArrayLike) -> Any:
    """The run's :class:`~graphwalk.tasks.ClassSplit`, in label values (the dataset's class ids):
    ``none`` trains on every class of the train split and tests on every class of the test split
    (its ``val`` empty); ``A/B/C`` a split seeded by the run's seed; ``cifar-fs`` the standard
    one."""
    from graphwalk.tasks.splits import ClassSplit, cifar_fs_split, parse_split, split_classes

    kind, sizes = parse_split(cfg.class_split)
    values = np.union1d(np.unique(train_y), np.unique(test_y))
    if kind == "none":
        return ClassSplit(
            level="labels",
            train=np.unique(train_y),
            val=np.zeros(0, np.int64),
            test=np.unique(test_y),
            source="none",
        )
    if kind == "cifar-fs":
        if cfg.dataset != "cifar100" or cfg.classes != "label":
            raise InputError(
                "--class-split cifar-fs splits CIFAR-100's 100 classes: use --dataset cifar100 "
                "(with --classes label)"
            )
        return cifar_fs_split(values, level="labels")
    return split_classes(values, sizes, level="labels", seed=cfg.seed)


def _clusters_of(index: GraphIndex, level: str, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The clusters of a label level whose label values are in ``values``."""
    return np.flatnonzero(np.isin(index.level(level).values, np.asarray(values)))


def held_out_episodes(
    cfg: TrainConfig, split: Any, test_y: npt.ArrayLike, test_features: npt.ArrayLike
) -> list[torch.Tensor]:
    """The test episodes every evaluation of a run averages: ``cfg.test_episodes`` episodes of
    uniform classes among ``split.test``, drawn from the test split's items with the run's shape
    and a seed of their own (the same for every sampler of a seed: paired). Each is a tensor of
    test-split item ids in the episode layout."""
    from graphwalk.build.builder import build_index
    from graphwalk.tasks.episodes import EpisodeSampler

    y = np.asarray(test_y)
    test_index = build_index(
        test_features, labels={"label": y}, groups=["labels"], graphs=[], seed=cfg.seed
    )
    test_classes = _clusters_of(test_index, "labels", split.test)
    if test_classes.size < cfg.n_way:
        raise InputError(
            f"the test split has {test_classes.size} test classes, fewer than n_way="
            f"{cfg.n_way}: use a --class-split with at least {cfg.n_way} test classes, or a "
            "smaller --n-way"
        )
    sampler = EpisodeSampler(
        test_index,
        level="labels",
        n_way=cfg.n_way,
        k_shot=cfg.k_shot,
        q_query=cfg.q_query,
        episodes=cfg.test_episodes,
        split=test_classes,
        seed=cfg.seed ^ _TEST_STREAM,
        rank=0,
        world_size=1,
    )
    return [torch.as_tensor(ep) for ep in sampler]


class EpisodeTask:
    """The episodes of one run: its sampler, the learner's loss and the held-out evaluation.

    Args:
        cfg: the resolved configuration (an ``episodes`` sampler and ``--meta``).
        spec: the parsed sampler spec.
        index: the run's index of the train split (levels ``labels``, ``parent`` and, for
            unsupervised episodes, ``kmeans``; a cluster graph over the episode level for walks).
        train_y, test_y: the classes of the train and the test split's items (label values).
        test_features: the test split's feature vectors (for the test episodes' index).
        out: the run directory (``class-split.json`` is written there by rank 0).
        rank, world: this process's rank and the number of processes.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        spec: SamplerSpec,
        index: GraphIndex,
        train_y: npt.NDArray[np.int64],
        test_y: npt.NDArray[np.int64],
        test_features: npt.ArrayLike,
        out: Path,
        *,
        rank: int,
        world: int,
    ) -> None:
        from graphwalk.tasks.episodes import EpisodeSampler

        self.cfg = cfg
        self.learner = make_learner(cfg)
        self.split = run_class_split(cfg, train_y, test_y)
        if rank == 0:
            atomic_write(out / SPLIT_FILE, json.dumps(self.split.to_dict(), indent=2) + "\n")
        if spec.level == "labels":
            train_classes: npt.NDArray[np.int64] | None = _clusters_of(
                index, "labels", self.split.train
            )
        else:  # unsupervised episodes over clusters: the labels stay unused in training
            train_classes = None
        self.sampler = EpisodeSampler(
            index,
            level=spec.level,
            n_way=cfg.n_way,
            k_shot=cfg.k_shot,
            q_query=cfg.q_query,
            episodes=cfg.episodes,
            classes=spec.classes,
            split=train_classes,
            small="drop" if cfg.drop_small_classes else "error",
            seed=cfg.seed,
            rank=rank,
            world_size=world,
        )
        self.test_ids = held_out_episodes(cfg, self.split, test_y, test_features)

    def loss(self, net: Any, x: torch.Tensor) -> torch.Tensor:
        """The meta-learner's loss on one episode (``x``: its items in the sampler's layout)."""
        from graphwalk.tasks.meta import split_episode

        c = self.cfg
        sx, sy, qx, qy = split_episode(x, c.n_way, c.k_shot, c.q_query)
        loss, _ = self.learner.loss(net, sx, sy, qx, qy)
        return loss  # type: ignore[no-any-return]

    def evaluate(self, net: Any, test_x: torch.Tensor) -> dict[str, float | None]:
        """Mean query accuracy over the held-out episodes, with its 95% interval's half-width."""
        from graphwalk.tasks.meta import evaluate_episodes, split_episode

        c = self.cfg
        episodes = (
            split_episode(test_x[ids.to(test_x.device)], c.n_way, c.k_shot, c.q_query)
            for ids in self.test_ids
        )
        with warnings.catch_warnings():  # fewer than 600 is the user's choice, said at set-up
            warnings.simplefilter("ignore", UserWarning)
            res = evaluate_episodes(self.learner, net, episodes)
        return {
            "test_acc": float(res["accuracy"]),
            "test_ci95": float(res["ci95"]),
            "test_loss": None,
        }
