"""One training run as an object with small steps: set up, resume, one epoch of steps, refresh,
checkpoint, finish.

:func:`graphwalk.train.loop.train` resolves the configuration and the run directory and hands
them to a :class:`Run`; :meth:`Run.execute` is the whole run::

    set up      data (labels with their noise), model (threads, DDP), the checkpoint to resume,
                the index (given, built, or the model's activations), sampler, optimiser
    resume      model, optimiser, schedule, sampler, every RNG, the metrics cut back to the
                checkpoint, the recorded batches it holds, and where inside an epoch it was
    epochs      each step: batch -> loss -> backward -> (reward) -> step -> log; a checkpoint
                every --checkpoint-every steps and on SIGTERM; at the epoch's end the
                evaluation, an activation refresh when one is due, and the checkpoint
    finish      metrics.csv / steps.csv, policy.json / policy.png, summary.json

Only rank 0 writes files and evaluates (:attr:`Run.lead`); every rank trains.
"""

from __future__ import annotations

import collections
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from graphwalk._files import atomic_write
from graphwalk.errors import InputError, Preempted
from graphwalk.index.artifact import GraphIndex
from graphwalk.progress import progress_bar
from graphwalk.train.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from graphwalk.train.config import TrainConfig
from graphwalk.train.data import (
    ShuffleBatchSampler,
    batch_homophily,
    flip_labels,
    flip_labels_in_clusters,
    load_splits,
)
from graphwalk.train.indexing import (
    activation_index,
    check_index,
    check_spec_graph,
    default_index,
    graph_homophily,
    own_graphs,
    remove_index,
    vector_index,
)
from graphwalk.train.metrics import METRICS, MetricsWriter, read_metrics, write_tables
from graphwalk.train.rundir import config_diff
from graphwalk.train.runtime import SigTerm, barrier, pick_device, rng_state, set_rng_state
from graphwalk.train.spec import SamplerSpec, parse_spec

__all__ = ["Run", "evaluate", "make_sampler"]


# ----------------------------------------------------------------------------- pieces


def make_sampler(
    spec: SamplerSpec,
    index: GraphIndex | None,
    n_items: int,
    batch_size: int,
    seed: int,
    rank: int,
    world: int,
) -> Any:
    """The batch sampler a spec names: shuffling, or a walk over ``index``."""
    if spec.is_random:
        return ShuffleBatchSampler(n_items, batch_size, seed=seed, rank=rank, world_size=world)
    from graphwalk.walk.sampler import GraphWalkBatchSampler

    assert index is not None
    policy = None
    if spec.policy is not None:
        from graphwalk.learn import CoverageFloor, make_policy

        policy = make_policy(spec.policy, index, spec.graph, seed=seed)
        n_nodes = index.graph(spec.graph).n_nodes
        floor = (
            spec.floor if spec.floor is not None else (2 * n_nodes if spec.replacement else None)
        )
        if floor is not None:
            policy = CoverageFloor(policy, n_nodes, floor=floor)
    return GraphWalkBatchSampler(
        index,
        batch_size,
        seed=seed,
        rank=rank,
        world_size=world,
        policy=policy,
        **spec.sampler_kwargs(),
    )


@torch.no_grad()
def _in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(x[s : s + 1024]) for s in range(0, int(x.shape[0]), 1024)])


def evaluate(
    net: Any,
    loss: str,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    knn_k: int = 20,
    temperature: float = 0.1,
) -> dict[str, float | None]:
    """Test accuracy (and loss for ``ce``): argmax of the logits for cross-entropy; a
    cosine-weighted kNN classifier over the body's features (training items as references, with
    the labels trained on) for ``supcon``."""
    from graphwalk.train.losses import knn_accuracy

    was = net.training
    net.eval()
    try:
        if loss == "ce":
            logits = _in_chunks(net, test_x)
            acc = float((logits.argmax(1) == test_y).float().mean())
            return {"test_acc": acc, "test_loss": float(F.cross_entropy(logits, test_y))}
        ftrain = _in_chunks(net.body, train_x)
        ftest = _in_chunks(net.body, test_x)
        acc = knn_accuracy(ftrain, train_y, ftest, test_y, k=knn_k, temperature=temperature)
        return {"test_acc": float(acc), "test_loss": None}
    finally:
        net.train(was)


def _average_gradients(net: Any, world: int) -> None:
    """Average the gradients over the ranks (what DDP does, for models trained without its
    wrapper: a meta-learner calls the network through its own functions)."""
    import torch.distributed as dist

    for p in net.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world


def _finite(v: float | None) -> float | None:
    """``v``, or ``None`` for a missing or non-finite value (strict JSON has no NaN)."""
    return None if v is None or not math.isfinite(v) else float(v)


def _entropy(sampler: Any) -> float | None:
    """The entropy of the learned walker's last choice (``None`` when it has none)."""
    policy = getattr(sampler, "policy", None)
    while policy is not None and not hasattr(policy, "entropy"):
        policy = getattr(policy, "policy", None)  # a CoverageFloor wraps the learner
    h = getattr(policy, "entropy", None)
    return None if h is None or not math.isfinite(h) else round(float(h), 5)


def _timed(it: Iterator[list[int]], sink: list[float]) -> Iterator[list[int]]:
    """Yield from a batch sampler's iterator, appending each batch's µs to ``sink``."""
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return
        sink.append((time.perf_counter() - t0) * 1e6)
        yield batch


def _before(rec: dict[str, Any], done: tuple[int, int]) -> bool:
    """Whether a recorded batch (``epoch``, ``batch``) comes before ``done`` = (epoch, batch)."""
    return (int(rec["epoch"]), int(rec.get("batch", 0))) < done


@dataclass
class RunData:
    """The run's dataset on its device: the training items with the labels trained on (noise
    included), the clean labels (for homophily and the noise column), the test split."""

    train_ds: Any
    test_ds: Any
    n: int
    n_classes: int
    y_clean: np.ndarray
    noisy: np.ndarray
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @classmethod
    def load(cls, cfg: TrainConfig, device: torch.device) -> RunData:
        train_ds, test_ds, classes = load_splits(
            cfg.dataset, classes=cfg.classes, data_dir=cfg.data_dir, download=cfg.download
        )
        y_clean = train_ds.labels[classes]
        n_classes = int(max(y_clean.max(), test_ds.labels[classes].max())) + 1
        if cfg.noise_in_clusters:
            y_train = flip_labels_in_clusters(
                y_clean, train_ds.features, cfg.label_noise, n_classes, cfg.seed
            )
        else:
            y_train = flip_labels(y_clean, cfg.label_noise, n_classes, cfg.seed)
        return cls(
            train_ds=train_ds,
            test_ds=test_ds,
            n=len(train_ds),
            n_classes=n_classes,
            y_clean=y_clean,
            noisy=y_train != y_clean,
            train_x=train_ds.inputs.to(device),
            train_y=torch.as_tensor(y_train, device=device),
            test_x=test_ds.inputs.to(device),
            test_y=torch.as_tensor(test_ds.labels[classes], device=device),
        )


class RewardFeed:
    """The learned walker's rewards: computed after each step (after the backward pass, or after
    the optimiser step), reported to the sampler oldest batch first, and the batch's loss given to
    a policy that keeps a per-node loss feature (``pg``, one process only: the feature is local to
    a rank, and every rank's policy would otherwise diverge). :class:`NoRewards` stands in when
    the run has no policy."""

    def __init__(self, spec: SamplerSpec, sampler: Any, world: int) -> None:
        from graphwalk.learn import make_reward

        self.reward = make_reward(spec.reward or "grad-norm")
        learner = sampler.policy
        while learner is not None and not hasattr(learner, "record_loss"):
            learner = getattr(learner, "policy", None)  # inside a CoverageFloor
        self.record_loss = getattr(learner, "record_loss", None) if world == 1 else None
        self.unreported: collections.deque[float] = collections.deque()  # losses awaiting theirs

    @property
    def in_flight(self) -> bool:
        """Whether a batch's reward is still awaited (a checkpoint now would not be exact)."""
        return bool(self.unreported)

    def after_backward(self, net: Any) -> float | None:
        return self.reward.after_backward(net)

    def after_step(
        self,
        sampler: Any,
        rw: float | None,
        net: Any,
        x: torch.Tensor,
        y: torch.Tensor,
        loss: float,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> float | None:
        """The step's reward (``rw`` from :meth:`after_backward`, else computed now), reported
        for the oldest batch not yet reported (``gar``: the previous one)."""
        if rw is None:
            rw = self.reward.after_step(net, x, y, loss, loss_fn)
        self.unreported.append(loss)
        if rw is not None:
            info = sampler.report(rw)
            loss_of = self.unreported.popleft()
            if self.record_loss is not None:  # pg's per-node loss feature
                self.record_loss(info.root, loss_of)
        return rw

    def log_fields(self, rw: float | None, sampler: Any) -> dict[str, Any]:
        return {"reward": _finite(rw), "entropy": _entropy(sampler)}

    def end_epoch(self, sampler: Any) -> None:
        """Report the rewards still awaited (``gar``: the epoch's last batch)."""
        for rw in self.reward.finish():
            sampler.report(rw)
        self.unreported.clear()
        sampler.flush_rewards()

    def checkpoint_fields(self) -> dict[str, Any]:
        return {"reward": self.reward.state_dict()}

    def restore(self, in_epoch: dict[str, Any]) -> None:
        if "reward" in in_epoch:
            self.reward.load_state_dict(in_epoch["reward"])


class NoRewards:
    """The :class:`RewardFeed` of a run without a learned walker: nothing to compute or report."""

    in_flight = False

    def after_backward(self, net: Any) -> float | None:
        return None

    def after_step(self, sampler: Any, rw: float | None, *args: Any) -> float | None:
        return None

    def log_fields(self, rw: float | None, sampler: Any) -> dict[str, Any]:
        return {}

    def end_epoch(self, sampler: Any) -> None:
        pass

    def checkpoint_fields(self) -> dict[str, Any]:
        return {}

    def restore(self, in_epoch: dict[str, Any]) -> None:
        pass


@dataclass
class EpochProgress:
    """Where the run is inside the current epoch (what a checkpoint inside one holds)."""

    batch: int = 0  # the next batch's number
    losses: list[float] = field(default_factory=list)
    eval_in_loop: float = 0.0  # seconds of evaluations inside the epoch (not training time)
    started: float = field(default_factory=time.perf_counter)  # perf_counter at the start

    @classmethod
    def restored(cls, saved: dict[str, Any]) -> EpochProgress:
        return cls(
            batch=int(saved["batch"]),
            losses=[float(v) for v in saved["losses"]],
            eval_in_loop=float(saved["eval_in_loop"]),
            started=time.perf_counter() - float(saved["elapsed"]),
        )

    def saved(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "losses": self.losses,
            "eval_in_loop": self.eval_in_loop,
            "elapsed": time.perf_counter() - self.started,
        }

    def mean_loss(self) -> float | None:
        return float(np.mean(self.losses)) if self.losses else None


# ----------------------------------------------------------------------------- the run


class Run:
    """One run of one sampler with one seed (see the module docstring); :meth:`execute` runs it.

    Args:
        cfg: the resolved configuration.
        out: the run directory (prepared by the caller).
        rank, world: this process's rank and the number of processes.
        resume: continue from ``out/checkpoint.pt``.
        progress: a progress bar (default: when stderr is a terminal; rank 0 only).
        stop_after_steps: raise ``KeyboardInterrupt`` after this many steps (tests of Ctrl-C).
        threads: torch's CPU threads (see :func:`graphwalk.train.loop.train`).
        fresh: a new run whose ``config.json`` this process writes.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        out: Path,
        *,
        rank: int,
        world: int,
        resume: bool,
        progress: bool | None,
        stop_after_steps: int | None,
        threads: int | None,
        fresh: bool,
    ) -> None:
        self.cfg, self.out, self.rank, self.world = cfg, out, rank, world
        self.lead = rank == 0  # writes the files and evaluates
        self.resume, self.stop_after_steps, self.threads, self.fresh = (
            resume,
            stop_after_steps,
            threads,
            fresh,
        )
        show = sys.stderr.isatty() if progress is None else progress
        self.show = show and self.lead
        self.spec = parse_spec(cfg.sampler)
        self.epoch, self.step = 0, 0
        self.wall_before, self.train_s = 0.0, 0.0
        self.last_acc: float | None = None
        self.ema: float | None = None
        self.index: GraphIndex | None = None
        self.index_path: Path | None = None
        self.refreshes: list[dict[str, Any]] = []
        self.batches_f: Any = None
        self.bar: Any = None
        self.task: Any = None  # an EpisodeTask when the sampler draws episodes
        self.curriculum: Any = None  # a CurriculumRun when the sampler follows a curriculum
        self.item_vectors: Any = None  # a RunVectors with --vectors grad|learned

    # ------------------------------------------------------------------------- set up

    def execute(self) -> dict[str, Any]:
        """Set up (or resume), train every epoch left, finish; the run's summary."""
        ck = self.set_up()
        self.open_logs(ck)
        self.sigterm = SigTerm.install()
        try:
            while self.epoch < self.cfg.epochs:
                self.run_epoch()
        finally:
            self.close()
        return self.finish()

    def set_up(self) -> dict[str, Any] | None:
        """Everything before the first step; the checkpoint resumed from (``None``: a new run)."""
        cfg = self.cfg
        if not self.spec.is_random and cfg.index is None:
            where = "the index"
            if cfg.layers or cfg.vectors:
                where = (
                    "the activation index" if cfg.layers else f"the index of {cfg.vectors} vectors"
                )
            check_spec_graph(self.spec, own_graphs(cfg.layers), f"{where} built for the run")
        self.device = pick_device(cfg.device, self.rank)
        self.data = RunData.load(cfg, self.device)
        self.build_model()
        if cfg.vectors:
            from graphwalk.train.itemvectors import RunVectors

            self.item_vectors = RunVectors(
                cfg.vectors,
                self.net,
                self.data.n,
                self.data.n_classes,
                dim=cfg.vectors_dim,
                lr=cfg.vectors_lr,
                seed=cfg.seed,
                device=self.device,
            )
        self.out.mkdir(parents=True, exist_ok=True)
        ck = self.read_checkpoint() if self.resume else None
        self.open_index(ck)
        if self.spec.is_episodes:
            self.set_up_episodes()
        elif self.spec.is_curriculum:
            self.set_up_curriculum()
        else:
            self.sampler = make_sampler(
                self.spec, self.index, self.data.n, cfg.batch_size, cfg.seed, self.rank, self.world
            )
        if self.fresh:  # written once everything is known to work: a refused run leaves nothing
            atomic_write(self.out / "config.json", cfg.to_json())
        self.make_optimiser()
        self.in_epoch: dict[str, Any] | None = None
        if ck is not None:
            self.restore(ck)
        return ck

    def set_up_episodes(self) -> None:
        """The episode sampler, the class split and the held-out test episodes."""
        from graphwalk.train.episodic import EpisodeTask

        cfg, d = self.cfg, self.data
        assert self.index is not None
        if cfg.test_episodes < 600 and self.lead:
            warnings.warn(
                f"--test-episodes {cfg.test_episodes}: the field reports accuracy over at least "
                "600 test episodes",
                UserWarning,
                stacklevel=2,
            )
        self.task = EpisodeTask(
            cfg,
            self.spec,
            self.index,
            d.train_ds.labels[cfg.classes],
            d.test_ds.labels[cfg.classes],
            d.test_ds.features,
            self.out,
            rank=self.rank,
            world=self.world,
        )
        self.sampler = self.task.sampler

    def set_up_curriculum(self) -> None:
        """The curriculum's sampler over the run's index (curriculum.json: its stages)."""
        from graphwalk.train.curricular import CurriculumRun
        from graphwalk.walk.epoch import batch_sizes

        cfg, d = self.cfg, self.data
        assert self.index is not None
        steps = batch_sizes(d.n, cfg.batch_size, self.world, False)[1]
        self.curriculum = CurriculumRun(
            cfg,
            self.spec,
            self.index,
            d.train_ds.features,
            d.train_y.cpu().numpy(),
            steps_per_epoch=steps,
            rank=self.rank,
            world=self.world,
        )
        self.sampler = self.curriculum.sampler
        if self.lead:
            atomic_write(
                self.out / "curriculum.json",
                json.dumps(
                    {"sampler": str(self.spec), "stages": self.curriculum.describe()}, indent=2
                )
                + "\n",
            )

    def build_model(self) -> None:
        """The model (the same initial weights for every sampler of a seed), torch's threads,
        and DDP's wrapper under ``torchrun``."""
        from graphwalk.train.models import build_model

        cfg, device = self.cfg, self.device
        torch.manual_seed(cfg.seed)
        shape = tuple(self.data.train_ds.inputs.shape[1:])
        # a meta-learner's head has one output per episode label
        n_out = cfg.n_way if self.spec.is_episodes else self.data.n_classes
        self.net = build_model(cfg.model or "mlp", shape, n_out, loss=cfg.loss)
        self.net = self.net.to(device)
        self.model: Any = self.net
        if device.type == "cpu":
            small = sum(p.numel() for p in self.net.parameters()) < 1_000_000
            torch.set_num_threads(self.threads or (1 if small else torch.get_num_threads()))
            # subnormal floats make x86 arithmetic many times slower, and how many a model holds
            # depends on what it was trained on (the MLP trained on knn-walk batches held twice
            # as many as with shuffling, and stepped 5% slower): flush them, for every sampler
            torch.set_flush_denormal(True)
        if self.world > 1 and not self.spec.is_episodes:  # episodes: gradients averaged by hand
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None
            )

    def read_checkpoint(self) -> dict[str, Any]:
        """The checkpoint to resume, refused when another number of processes wrote it or when
        ``config.json`` was changed after it."""
        out, world = self.out, self.world
        ck = load_checkpoint(out / CHECKPOINT)
        if int(ck.get("world_size", 1)) != world:
            n = int(ck.get("world_size", 1))
            how = (
                f"torchrun --nproc-per-node {n} -m graphwalk train" if n > 1 else "graphwalk train"
            )
            raise InputError(
                f"the run was trained by {n} process{'es' if n > 1 else ''}, this is {world}: "
                f"resume it the same way ({how} --resume {out})"
            )
        diff = config_diff(
            TrainConfig.from_dict(ck["config"]).resolved().to_dict(), self.cfg.to_dict()
        )
        diff = [k for k in diff if k not in ("device", "data_dir", "download")]
        if diff:
            raise InputError(
                f"{out / 'config.json'} was changed after the checkpoint was written (it differs "
                f"in {', '.join(diff[:4])}): --resume continues the run as it was; restore the "
                "setting, or start a new run with --config and the change"
            )
        return ck

    def own_index(self, path: Path) -> tuple[GraphIndex | None, dict[str, Any]]:
        """The index of the model's own vectors now (at the start, and at every refresh): its
        activations (``--layers``), or its gradient sketches or learned vectors (``--vectors``,
        gathered over the ranks first: every rank calls this, rank 0 builds and gets the index)."""
        cfg = self.cfg
        if cfg.vectors:
            t0 = time.perf_counter()
            self.item_vectors.gather(self.world)
            stats = self.item_vectors.stats(self.step)
            index: GraphIndex | None = None
            if self.lead:
                index = vector_index(
                    self.item_vectors.vectors(),
                    self.data.train_ds,
                    path,
                    clusters=cfg.index_clusters,
                    k=cfg.index_k,
                    seed=cfg.seed,
                    extra={"vectors": cfg.vectors, "vectors_dim": cfg.vectors_dim},
                )
                self.item_vectors.save(self.out, cfg.dataset, self.step, self.epoch)
            self.item_vectors.seconds = 0.0
            seconds = time.perf_counter() - t0
            return index, {**stats, "build_s": seconds, "seconds": seconds}
        return activation_index(
            self.net,
            self.data.train_ds,
            cfg.layers,
            path,
            clusters=cfg.index_clusters,
            k=cfg.index_k,
            seed=cfg.seed,
            device=self.device,
        )

    def open_index(self, ck: dict[str, Any] | None) -> None:
        """The index walked: the checkpoint's, the one given, or one built for the run (from the
        dataset's features, or from the model's activations) by rank 0 and loaded by the rest."""
        cfg, out = self.cfg, self.out
        if ck is not None and ck.get("index"):
            self.index_path = out / ck["index"]
            self.index = GraphIndex.load(self.index_path)
        elif cfg.index is not None:
            self.index_path = Path(cfg.index)
            self.index = GraphIndex.load(self.index_path)
            check_index(self.index, cfg.dataset, self.data.n, cfg.index)
            check_spec_graph(self.spec, list(self.index.graphs), f"index {cfg.index}")
        elif not self.spec.is_random:
            own = bool(cfg.layers or cfg.vectors)
            path = out / ("index-epoch-000.gw" if own else "index.gw")
            self.index_path = path
            if own:
                if cfg.vectors:  # every rank: the same sketches of the same initial model
                    self.item_vectors.first_pass(self.net, self.data.train_x, self.data.train_y)
                if cfg.vectors or self.lead:  # vectors: every rank gathers
                    self.index, cost = self.own_index(path)
                if self.lead:
                    assert self.index is not None
                    self.refreshes.append(
                        {"epoch": 0, "step": 0, **cost, "graphs": graph_homophily(self.index)}
                    )
            elif self.lead:
                if self.spec.is_curriculum:
                    from graphwalk.train.curricular import curriculum_index

                    self.index = curriculum_index(
                        self.data.train_ds,
                        path,
                        classes=cfg.classes,
                        k=cfg.index_k,
                        seed=cfg.seed,
                    )
                elif self.spec.is_episodes:
                    from graphwalk.train.indexing import episode_index

                    self.index = episode_index(
                        self.data.train_ds,
                        path,
                        classes=cfg.classes,
                        level=self.spec.level,
                        n_way=cfg.n_way,
                        clusters=cfg.index_clusters,
                        seed=cfg.seed,
                    )
                else:
                    self.index = default_index(
                        self.data.train_ds,
                        path,
                        clusters=cfg.index_clusters,
                        k=cfg.index_k,
                        seed=cfg.seed,
                    )
            barrier(self.world)
            if self.index is None:
                self.index = GraphIndex.load(path)

    def make_optimiser(self) -> None:
        """Adam or SGD, and the learning-rate schedule (cosine to zero over the run, or none)."""
        cfg = self.cfg
        total_steps = len(self.sampler) * cfg.epochs
        params = self.net.parameters()
        self.opt: torch.optim.Optimizer
        if cfg.optimizer == "adam":
            self.opt = torch.optim.Adam(
                params, lr=cfg.lr or 1e-3, weight_decay=cfg.weight_decay or 0.0
            )
        else:
            self.opt = torch.optim.SGD(
                params,
                lr=cfg.lr or 0.1,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay or 0.0,
            )
        if cfg.schedule == "cosine":
            self.sched = torch.optim.lr_scheduler.LambdaLR(
                self.opt,
                lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps)),
            )
        else:
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: 1.0)

    def restore(self, ck: dict[str, Any]) -> None:
        """Model, optimiser, schedule, sampler, every RNG and the counters from the checkpoint;
        the metrics written after it are cut off."""
        self.net.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.sampler.load_state_dict(ck["sampler"])
        if self.item_vectors is not None:
            if "vectors" not in ck:
                raise InputError(
                    f"{self.out / CHECKPOINT} holds no --vectors {self.cfg.vectors} state (it "
                    "was written by another version); start a new run"
                )
            self.item_vectors.load_state_dict(ck["vectors"])
        set_rng_state(ck["rng"])
        self.epoch, self.step = int(ck["epoch"]), int(ck["step"])
        self.wall_before, self.train_s = float(ck["wall_s"]), float(ck.get("train_s", 0.0))
        self.in_epoch = ck.get("in_epoch")  # a checkpoint taken inside an epoch
        if self.lead:
            with open(self.out / METRICS, "r+b") as f:  # drop what came after the checkpoint
                f.truncate(int(ck["metrics_bytes"]))

    def open_logs(self, ck: dict[str, Any] | None) -> None:
        """metrics.jsonl, the recorded batches (cut back to the checkpoint), the first
        evaluation of a new run, the progress bar, the loss and the reward feed."""
        cfg, out = self.cfg, self.out
        self.log = MetricsWriter(
            out, self.lead, purge_step=self.step + 1 if ck is not None else None
        )
        if cfg.record_batches:
            rec = out / f"batches-rank{self.rank}.jsonl"
            if ck is not None and rec.exists():  # keep the batches the checkpoint holds
                done = (self.epoch, int(self.in_epoch["batch"]) if self.in_epoch is not None else 0)
                kept = [
                    line
                    for line in rec.read_text(encoding="utf-8").splitlines(keepends=True)
                    if line.endswith("\n") and _before(json.loads(line), done)
                ]
                atomic_write(rec, "".join(kept))
            self.batches_f = open(rec, "a", encoding="utf-8")
        self.t_start = time.perf_counter()
        for r in self.refreshes:
            self.log.write({"event": "refresh", **r})
        if ck is None:
            self.evaluate(0, None)
        self.bar = progress_bar(
            enabled=self.show,
            total=len(self.sampler) * cfg.epochs,
            initial=self.step,
            desc=f"{cfg.sampler} seed {cfg.seed}",
            unit="step",
        )
        self.loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
        if cfg.loss == "ce":
            self.loss_fn = F.cross_entropy
        else:
            from graphwalk.train.losses import supcon_loss

            def supcon(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                return supcon_loss(z, y, cfg.temperature)

            self.loss_fn = supcon
        self.rewards: RewardFeed | NoRewards = (
            NoRewards()
            if self.spec.policy is None
            else RewardFeed(self.spec, self.sampler, self.world)
        )
        if self.in_epoch is not None:
            self.rewards.restore(self.in_epoch)

    # ------------------------------------------------------------------------- training

    def wall(self) -> float:
        """Seconds of the run so far, those before a resume included."""
        return self.wall_before + time.perf_counter() - self.t_start

    def evaluate(self, epoch: int, train_loss: float | None) -> None:
        """Evaluate on the test split and log it (rank 0)."""
        if not self.lead:
            return
        cfg, d = self.cfg, self.data
        if self.task is not None:
            ev = self.task.evaluate(self.net, d.test_x)
        else:
            ev = evaluate(
                self.net,
                cfg.loss,
                d.train_x,
                d.train_y,
                d.test_x,
                d.test_y,
                knn_k=cfg.knn_k,
                temperature=cfg.temperature,
            )
        self.last_acc = ev["test_acc"]
        self.log.write(
            {
                "event": "eval",
                "epoch": epoch,
                "step": self.step,
                **ev,
                "train_loss": train_loss,
                "wall_s": round(self.wall(), 4),
            }
        )

    def run_epoch(self) -> None:
        """One epoch (or the rest of one, resumed inside it), then its end."""
        if self.in_epoch is None:
            self.sampler.set_epoch(self.epoch)
            progress = EpochProgress()
        else:  # resumed inside this epoch: the sampler's state holds the rest of it
            progress = EpochProgress.restored(self.in_epoch)
            self.in_epoch = None
        times: list[float] = []
        for idx in _timed(iter(self.sampler), times):
            self.train_step(idx, progress, times[-1])
            progress.batch += 1
            self.maybe_stop(progress)
        self.end_epoch(progress)

    def train_step(self, idx: list[int], progress: EpochProgress, sampler_us: float) -> None:
        """One batch: forward, backward, reward, optimiser step, log."""
        d = self.data
        ids = torch.as_tensor(idx, device=self.device)
        x, y = d.train_x[ids], d.train_y[ids]
        if self.item_vectors is not None:
            self.item_vectors.arm()
        if self.task is not None:  # one episode, the meta-learner's loss
            loss = self.task.loss(self.net, x)
        elif self.curriculum is not None:  # the classes of the task in force
            loss = self.loss_fn(self.curriculum.mask_logits(self.model(x), self.step), y)
        else:
            loss = self.loss_fn(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.task is not None and self.world > 1:
            _average_gradients(self.net, self.world)
        rw = self.rewards.after_backward(self.net)
        self.opt.step()
        self.sched.step()
        self.step += 1
        if self.item_vectors is not None:  # what this step's forward pass gives the sketches
            self.item_vectors.observe(ids, y, self.step - 1)
        lv = float(loss.detach())
        rw = self.rewards.after_step(self.sampler, rw, self.net, x, y, lv, self.loss_fn)
        progress.losses.append(lv)
        self.ema = lv if self.ema is None else 0.95 * self.ema + 0.05 * lv
        self.log_step(idx, progress.batch, lv, rw, sampler_us)
        if self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
            t_ev = time.perf_counter()
            self.evaluate(self.epoch, progress.mean_loss())
            progress.eval_in_loop += time.perf_counter() - t_ev

    def log_step(
        self, idx: list[int], batch: int, loss: float, rw: float | None, sampler_us: float
    ) -> None:
        """The step's record in metrics.jsonl, the recorded batch, the progress bar."""
        d = self.data
        rows = np.asarray(idx)
        hom = batch_homophily(d.y_clean[rows], d.n_classes)
        self.log.write(
            {
                "event": "step",
                "epoch": self.epoch,
                "step": self.step,
                "loss": loss,
                "lr": self.sched.get_last_lr()[0],
                "sampler_us": round(sampler_us, 2),
                "homophily": None if hom is None else round(hom, 5),
                **self.rewards.log_fields(rw, self.sampler),
                **(
                    self.curriculum.log_fields(self.step - 1, idx)
                    if self.curriculum is not None
                    else {}
                ),
                **(
                    {"noisy": round(float(d.noisy[rows].mean()), 4)} if self.cfg.label_noise else {}
                ),
            }
        )
        if self.batches_f is not None:
            self.batches_f.write(
                json.dumps({"epoch": self.epoch, "batch": batch, "items": idx}) + "\n"
            )
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(
                loss=f"{self.ema:.3f}",
                acc="-" if self.last_acc is None else f"{100 * self.last_acc:.1f}%",
                refresh=False,
            )

    def maybe_stop(self, progress: EpochProgress) -> None:
        """After a step: Ctrl-C in tests, a checkpoint every --checkpoint-every steps, and on
        SIGTERM a checkpoint and :class:`Preempted` (at the first step with no reward in flight,
        whose state is exact)."""
        if self.stop_after_steps is not None and self.step >= self.stop_after_steps:
            raise KeyboardInterrupt
        every = self.cfg.checkpoint_every
        due = bool(every) and self.step % every == 0
        stop = self.sigterm.requested(self.world, at_boundary=due)
        if (due or stop) and not self.rewards.in_flight:
            self.checkpoint({**progress.saved(), **self.rewards.checkpoint_fields()})
            barrier(self.world)
            if stop:
                raise Preempted(self.step, self.out)

    def end_epoch(self, progress: EpochProgress) -> None:
        """The rewards still awaited, the evaluation, a refresh when due, the checkpoint; a
        SIGTERM that came while rewards were in flight stops the run here."""
        cfg = self.cfg
        self.rewards.end_epoch(self.sampler)
        epoch_s = time.perf_counter() - progress.started
        self.train_s += epoch_s - progress.eval_in_loop  # steps with their logging
        self.epoch += 1
        if not (cfg.eval_every and self.step % cfg.eval_every == 0):
            self.evaluate(self.epoch, progress.mean_loss())
        old_index = None
        if cfg.refresh_every and self.epoch % cfg.refresh_every == 0 and self.epoch < cfg.epochs:
            old_index = self.refresh(epoch_s)
        self.checkpoint(None)
        if self.lead and old_index is not None and old_index.parent == self.out:
            remove_index(old_index)
        barrier(self.world)
        if self.epoch < cfg.epochs and self.sigterm.requested(self.world, at_boundary=True):
            raise Preempted(self.step, self.out)

    def refresh(self, epoch_s: float) -> Path | None:
        """Rebuild the index from the model's activations now, and a sampler over it; the index
        file replaced (removed once the checkpoint no longer names it)."""
        old_index, path = self.index_path, self.out / f"index-epoch-{self.epoch:03d}.gw"
        old = self.index
        self.index_path = path
        if self.cfg.vectors or self.lead:  # vectors: every rank gathers
            self.index, cost = self.own_index(path)
        if self.lead:
            assert self.index is not None
            self.log.write(
                {
                    "event": "refresh",
                    "epoch": self.epoch,
                    "step": self.step,
                    **cost,
                    "epoch_seconds": epoch_s,
                    "graphs": graph_homophily(self.index),
                }
            )
        barrier(self.world)
        if not self.lead:
            self.index = GraphIndex.load(path)
        cfg = self.cfg
        old_sampler = self.sampler
        self.sampler = make_sampler(
            self.spec, self.index, self.data.n, cfg.batch_size, cfg.seed, self.rank, self.world
        )
        if self.spec.policy is not None:  # what the learned walker learned, on the new nodes
            from graphwalk.learn import carry_over, node_of_items

            assert old is not None and self.index is not None
            carry_over(
                self.sampler.policy,
                old_sampler.policy,
                node_of_items(old, self.spec.graph),
                node_of_items(self.index, self.spec.graph),
            )
        self.sampler.set_epoch(self.epoch)
        return old_index

    def checkpoint(self, in_epoch: dict[str, Any] | None) -> None:
        """Write the checkpoint (rank 0): at an epoch's end, or inside one (``in_epoch``)."""
        if self.batches_f is not None:  # every rank's record holds what the checkpoint holds
            self.batches_f.flush()
        if self.item_vectors is not None:  # every rank: the tables merged
            self.item_vectors.gather(self.world)
        if not self.lead:
            return
        cfg, path = self.cfg, self.index_path
        state = {
            "world_size": self.world,
            "config": cfg.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rng_state(),
            "metrics_bytes": self.log.position(),
            "index": None if path is None or cfg.index else path.name,
            "wall_s": self.wall(),
            "train_s": self.train_s,
        }
        if self.item_vectors is not None:
            state["vectors"] = self.item_vectors.state_dict()
        if in_epoch is not None:
            state["in_epoch"] = in_epoch
        save_checkpoint(self.out / CHECKPOINT, state)

    # ------------------------------------------------------------------------- finish

    def close(self) -> None:
        """Whatever stopped the run: the signal handler, the bar and the files closed, the
        tables written from what metrics.jsonl holds."""
        self.sigterm.restore()
        if self.item_vectors is not None:
            self.item_vectors.close()
        if self.bar is not None:
            self.bar.close()
        if self.batches_f is not None:
            self.batches_f.close()
        self.log.close()
        if self.lead and (self.out / METRICS).exists():
            write_tables(self.out)

    def finish(self) -> dict[str, Any]:
        """policy.json / policy.png and summary.json (rank 0); the summary."""
        policy = getattr(self.sampler, "policy", None)
        if self.lead and policy is not None and self.spec.graph is not None:
            assert self.index is not None
            write_policy_files(
                self.out, policy, self.index, self.spec, self.sampler.skipped_rewards
            )
        if self.item_vectors is not None:  # what graphwalk index --vectors-from reads
            self.item_vectors.gather(self.world)
            if self.lead:
                self.item_vectors.save(self.out, self.cfg.dataset, self.step, self.epoch)
        summary = (
            write_summary(self.out, self.cfg, self.step, self.wall(), self.train_s)
            if self.lead
            else {}
        )
        barrier(self.world)
        return summary


def write_policy_files(
    out: Path, policy: Any, index: GraphIndex, spec: SamplerSpec, skipped: int
) -> None:
    """policy.json (visit counts and their spread) and policy.png (reward and entropy curves,
    visits per node, the visit heat map over the centroids' map)."""
    from graphwalk.learn.diagnostics import plot_policy, policy_report

    diag = policy.diagnostics()
    steps: dict[str, list[Any]] = {"step": [], "reward": [], "entropy": []}
    for rec in read_metrics(out / METRICS).of("step"):
        for key in steps:
            steps[key].append(rec.get(key))
    report = policy_report(diag, floor=getattr(policy, "floor", None))
    report["skipped_rewards"] = int(skipped)  # the sampler drops them before the policy
    report["root_visits_per_node"] = np.asarray(diag.get("visits", [])).tolist()
    report["community_visits_per_node"] = np.asarray(diag.get("community_visits", [])).tolist()
    atomic_write(out / "policy.json", json.dumps(report, indent=2) + "\n")
    assert spec.graph is not None
    try:
        plot_policy(diag, steps, index, spec.graph, out / "policy.png", title=str(spec))
    except ImportError as e:  # graphwalk without its plots extra: policy.json is written
        warnings.warn(f"{e}; policy.png is not drawn", RuntimeWarning, stacklevel=2)


def write_summary(
    out: Path, cfg: TrainConfig, steps: int, wall_s: float, train_s: float
) -> dict[str, Any]:
    """summary.json: the run's final and best accuracy, its speed and its homophily."""
    metrics = read_metrics(out / METRICS)
    evals, refresh = metrics.of("eval"), metrics.of("refresh")
    us, hom = [], []
    for rec in metrics.of("step"):
        us.append(rec["sampler_us"])
        if rec["homophily"] is not None:
            hom.append(rec["homophily"])
    accs = [e["test_acc"] for e in evals]
    s: dict[str, Any] = {
        "complete": True,
        "sampler": cfg.sampler,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "steps": steps,
        "final_test_acc": accs[-1],
        "best_test_acc": max(accs),
        "wall_s": round(wall_s, 3),
        "train_s": round(train_s, 3),
        "steps_per_s": round(steps / train_s, 2) if train_s > 0 else None,
        "sampler_us_mean": round(float(np.mean(us)), 3) if us else None,
        "sampler_us_median": round(float(np.median(us)), 3) if us else None,
        "homophily_mean": round(float(np.mean(hom)), 5) if hom else None,
        "refreshes": len(refresh),
        "vectors": cfg.vectors,
        "refresh_s_mean": round(float(np.mean([r["seconds"] for r in refresh])), 3)
        if refresh
        else None,
        "files": {
            "metrics": str(out / METRICS),
            "csv": str(out / "metrics.csv"),
            "checkpoint": str(out / CHECKPOINT),
            **({"vectors": str(out / "vectors.npy")} if cfg.vectors else {}),
        },
    }
    if evals and evals[-1].get("test_ci95") is not None:  # episodes: the held-out interval
        s["final_test_ci95"] = evals[-1]["test_ci95"]
    atomic_write(out / "summary.json", json.dumps(s, indent=2) + "\n")
    return s
