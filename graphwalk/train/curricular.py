"""What a run with a ``curriculum=...`` sampler adds to a training run: the curriculum laid out
over the run's steps, its sampler over the run's index, and the task in force at each step for
the logs (``task``: the stage, or the bandit's task; ``pool``: the share of the training items
the task holds). A stage whose task holds some of the classes trains a classifier among those:
the other classes' logits are masked (:meth:`CurriculumRun.mask_logits`).

The run's own index (when no ``--index`` is given) holds the classes trained on as level
``labels``, the dataset's other label sets (CIFAR-100's ``superclass``), a ``parent`` level of
the class centroids merged by Ward clustering (about two classes per parent: the hierarchy of
data without one) and a kNN graph over the items (``walk`` orders, ``graph`` scores).

Items are ranked by the labels trained on (label noise included: a user does not know which are
flipped) and the run's inputs (``transfer`` scores), with the run's seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.train.config import TrainConfig
from graphwalk.train.spec import SamplerSpec

__all__ = ["CurriculumRun", "curriculum_index", "make_curriculum"]

#: the bandit's tasks when ``bands`` is not given
DEFAULT_BANDS = 5


def curriculum_index(train: Any, out: Path, *, classes: str, k: int, seed: int) -> GraphIndex:
    """The index a curriculum run builds (see the module docstring), written to ``out``."""
    from graphwalk.build.builder import build_index
    from graphwalk.train.indexing import derived_parents

    y = train.labels[classes]
    labels = {
        "label": y,
        **{k2: v for k2, v in train.labels.items() if k2 not in ("label", classes)},
    }
    n_classes = int(np.unique(y).size)
    labels["parent"] = derived_parents(train.features, y, 1, n_parents=max(2, n_classes // 2))
    n = len(train)
    return build_index(
        train.features,
        labels=labels,
        groups=["labels"],
        graphs=["knn"],
        k=min(k, n - 1),
        knn_backend="exact",
        seed=seed,
        out=out,
        overwrite=True,
        extra_params={"dataset": train.name, "split": "train"},
    )


def hierarchy_level(spec: SamplerSpec, index: GraphIndex) -> str:
    """The coarser level of a hierarchy curriculum: the spec's, else ``superclass``, else
    ``parent``."""
    if spec.coarse is not None:
        if spec.coarse not in index.levels:
            raise InputError(
                f"sampler {str(spec)!r}: the index has no level {spec.coarse!r} (it has "
                f"{', '.join(index.levels)}); name one of them with level=NAME"
            )
        return spec.coarse
    for name in ("superclass", "parent"):
        if name in index.levels:
            return name
    raise InputError(
        f"sampler {str(spec)!r}: the index has no coarser level (superclass or parent; it has "
        f"{', '.join(index.levels)}); name one with level=NAME, or leave --index out to build one"
    )


def make_curriculum(spec: SamplerSpec, index: GraphIndex, steps: int) -> Any:
    """The :class:`~graphwalk.tasks.Curriculum` a spec names, laid out over ``steps``."""
    from graphwalk.tasks.curriculum import Curriculum

    data_order = "walk" if spec.walk else "shuffle"
    name = spec.curriculum
    assert name is not None and name != "agent"
    if name == "hierarchy":
        level = hierarchy_level(spec, index)
        n_groups = int(np.unique(index.level(level).assignment).size)
        start = int(spec.start) if spec.start is not None else 2
        if start > n_groups:
            raise InputError(
                f"sampler {str(spec)!r}: start={start} groups but level {level!r} has "
                f"{n_groups}; use start <= {n_groups}"
            )
        cur = Curriculum.hierarchy(
            level,
            n_groups,
            steps=max(2, steps),
            start=start,
            inc=spec.inc or 2.0,
            order=spec.order,
            score=spec.score,
            data_order=data_order,
        )
    elif name.lower().endswith((".json", ".toml")):
        cur = Curriculum.load(name)
        if spec.order != "easy":
            cur = cur.with_order(spec.order)
        if spec.score != "transfer":
            from dataclasses import replace

            cur = replace(cur, score=spec.score)
    else:
        cur = Curriculum.pacing(
            name,
            steps=max(2, steps),
            start=spec.start if spec.start is not None else 0.1,
            inc=spec.inc or 2.0,
            order=spec.order,
            score=spec.score,
            data_order=data_order,
        )
    return cur if spec.order == "easy" else cur.with_order(spec.order)


class CurriculumRun:
    """The sampler of a ``curriculum=...`` run and what its logs say about the task in force.

    Args:
        cfg: the run's configuration.
        spec: its ``curriculum=...`` sampler spec.
        index: the run's index.
        features: the training items' vectors (for ``transfer`` scores and the bandit's index).
        labels: the labels trained on (noise included).
        steps_per_epoch: the sampler's ``len`` (as shuffling: the same budget).
        rank, world: this process's share.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        spec: SamplerSpec,
        index: GraphIndex,
        features: npt.ArrayLike,
        labels: npt.ArrayLike,
        *,
        steps_per_epoch: int,
        rank: int,
        world: int,
    ) -> None:
        from graphwalk.tasks.difficulty import difficulty_scores, rank_items

        self.spec = spec
        self.steps_per_epoch = steps_per_epoch
        y = np.asarray(labels, np.int64)
        self.n = y.size
        scores = difficulty_scores(spec.score, y, index=index, vectors=features, seed=cfg.seed)
        self.curriculum: Any = None
        if spec.is_agent:
            from graphwalk.tasks.bandit import difficulty_bands, task_bandit_sampler, task_index

            bands = spec.bands or DEFAULT_BANDS
            self.tasks = difficulty_bands(y, rank_items(scores, "easy", seed=cfg.seed), bands)
            tindex = task_index(features, self.tasks, seed=cfg.seed)
            self.sampler = task_bandit_sampler(
                tindex,
                cfg.batch_size,
                policy=spec.policy or "exp3s",
                num_batches=steps_per_epoch,
                seed=cfg.seed,
                rank=rank,
                world_size=world,
            )
            self._task_share = np.bincount(self.tasks) / self.n
        else:
            from graphwalk.tasks.curriculum_sampler import CurriculumSampler

            total = steps_per_epoch * cfg.epochs
            self.curriculum = make_curriculum(spec, index, total)
            if self.curriculum.length >= total and rank == 0:
                import warnings

                last = self.curriculum.stage_at(total - 1)
                warnings.warn(
                    f"the curriculum's last stage starts at step {self.curriculum.length} but the "
                    f"run has {total} steps ({cfg.epochs} epochs of {steps_per_epoch}): it ends "
                    f"in stage {last} of {len(self.curriculum.stages)} "
                    f"({self.curriculum.stages[last].task.describe()}); lay the file's schedule "
                    "out over the run's steps, or train longer",
                    UserWarning,
                    stacklevel=2,
                )
            self.sampler = CurriculumSampler(
                self.curriculum,
                index,
                cfg.batch_size,
                labels=y,
                scores=scores,
                num_batches=steps_per_epoch,
                seed=cfg.seed,
                rank=rank,
                world_size=world,
            )
            self._pool_share = np.asarray(self.sampler.pool_sizes, np.float64) / self.n
            n_classes = int(y.max()) + 1
            self._masks: list[Any] = []
            for i in range(len(self.curriculum.stages)):
                present = np.zeros(n_classes, bool)
                present[np.unique(y[self.sampler.pool(i)])] = True
                self._masks.append(None if present.all() else present)
            self._mask_cache: dict[tuple[int, Any], Any] = {}

    def mask_logits(self, logits: Any, step: int) -> Any:
        """The logits of training step ``step`` with the classes its task leaves out set to
        ``-inf``: a task that holds some classes is a classification among those (the model is
        not pushed to never predict the classes still to come; without this, the logits of
        classes introduced later start far below and their first batches blow the loss up)."""
        if self.curriculum is None:
            return logits
        s = self.sampler.stage_at(step)
        mask = self._masks[s]
        if mask is None or logits.shape[-1] != mask.size:
            return logits
        import torch

        key = (s, logits.device)
        if key not in self._mask_cache:
            self._mask_cache[key] = torch.as_tensor(~mask, device=logits.device)
        return logits.masked_fill(self._mask_cache[key], float("-inf"))

    def log_fields(self, step: int, idx: list[int]) -> dict[str, Any]:
        """``task`` and ``pool`` of training step ``step`` (0-based) whose batch is ``idx``."""
        if self.curriculum is not None:
            s = self.sampler.stage_at(step)
            return {"task": s, "pool": round(float(self._pool_share[s]), 5)}
        t = int(np.bincount(self.tasks[np.asarray(idx)]).argmax())
        return {"task": t, "pool": round(float(self._task_share[t]), 5)}

    def describe(self) -> list[dict[str, Any]]:
        """The schedule's stages (a curriculum: ``stage``, ``start`` (0-based: the step logged as
        ``start + 1`` in metrics.jsonl is its first), ``steps``, ``task``) or tasks (the bandit:
        ``task``, ``what``), each with ``pool_items`` and ``pool_share`` (the ``pool`` of the
        step records), for ``curriculum.json``."""
        if self.curriculum is not None:
            rows = self.curriculum.describe()
            for r, size in zip(rows, self.sampler.pool_sizes, strict=True):
                r["pool_items"] = size
                r["pool_share"] = round(size / self.n, 5)
            return rows
        return [
            {
                "task": int(t),
                "what": f"difficulty band {t} (0: the easiest)",
                "pool_items": int(c),
                "pool_share": round(int(c) / self.n, 5),
            }
            for t, c in enumerate(np.bincount(self.tasks))
        ]
