"""The training loop behind ``graphwalk train``: one run of one sampler with one seed.

A run directory holds ``config.json`` (the resolved configuration: enough to reproduce the run),
``metrics.jsonl`` (one JSON object per step, evaluation and refresh, written as the run goes),
``metrics.csv`` / ``steps.csv`` (the evaluations and the steps as tables, written when the run ends
or stops), ``summary.json`` (when it ends), ``checkpoint.pt`` (after every epoch, written
atomically), TensorBoard event files under ``tb/`` when ``tensorboard`` is installed, and the index
the run built (``index.gw``, or ``index-epoch-NNN.gw`` for activation graphs).
"""

from __future__ import annotations

import collections
import csv
import io
import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
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
)
from graphwalk.train.metrics import METRICS, MetricsWriter, read_metrics
from graphwalk.train.rundir import config_diff, prepare_run_dir
from graphwalk.train.spec import SamplerSpec, parse_spec

__all__ = ["CHECKPOINT", "evaluate", "make_sampler", "train"]


# ----------------------------------------------------------------------------- set-up helpers


def _dist() -> tuple[int, int]:
    """``(rank, world_size)``; initialises the process group under ``torchrun`` (gloo on the
    CPU, NCCL when every rank has a GPU)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def _device(name: str, rank: int) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but no GPU is visible; use --device cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    return torch.device("cpu")


class _SigTerm:
    """Turns a SIGTERM (what cluster schedulers send before they kill a job) into a request to
    checkpoint at the next step and stop. Installed for the run on the main thread only (signal
    handlers can be set nowhere else), the previous handler restored after it."""

    def __init__(self) -> None:
        self.flag = False
        self.previous: Any = None
        self.installed = False

    @classmethod
    def install(cls) -> _SigTerm:
        st = cls()
        if threading.current_thread() is threading.main_thread():

            def handler(signum: int, frame: Any) -> None:
                del signum, frame
                st.flag = True

            st.previous = signal.signal(signal.SIGTERM, handler)
            st.installed = True
        return st

    def requested(self, world: int, *, at_boundary: bool) -> bool:
        """Whether to stop now. One process: as soon as the signal came. Under
        ``torch.distributed`` the ranks agree (the signal may reach them at different steps) at
        checkpoint boundaries and epoch ends only, with one ``all_reduce``."""
        if world == 1:
            return self.flag
        if not at_boundary:
            return False
        import torch.distributed as dist

        t = torch.tensor([1.0 if self.flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def restore(self) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self.previous)
            self.installed = False


def _before(rec: dict[str, Any], done: tuple[int, int]) -> bool:
    """Whether a recorded batch (``epoch``, ``batch``) comes before ``done`` = (epoch, batch)."""
    return (int(rec["epoch"]), int(rec.get("batch", 0))) < done


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


# ----------------------------------------------------------------------------- evaluation


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


# ----------------------------------------------------------------------------- the run


def _write_tables(out: Path) -> None:
    """metrics.csv (evaluations, refreshes) and steps.csv from metrics.jsonl."""
    metrics = read_metrics(out / METRICS)
    rows = {"eval": metrics.of("eval"), "step": metrics.of("step")}
    for name, recs in (("metrics.csv", rows["eval"]), ("steps.csv", rows["step"])):
        buf = io.StringIO()
        keys: list[str] = []
        for r in recs:
            keys += [k for k in r if k not in keys]
        w = csv.DictWriter(buf, fieldnames=keys or ["event"], lineterminator="\n")
        w.writeheader()
        w.writerows(recs)
        atomic_write(out / name, buf.getvalue())


def _rng_state() -> dict[str, Any]:
    st: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the global generator a user may use)
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])  # noqa: NPY002
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def train(
    config: TrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    stop_after_steps: int | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train one model with one sampler and seed; write the run directory ``out``.

    Args:
        config: the run's settings (resolved here); with ``resume`` the run's own
            ``config.json`` is used instead.
        out: the run directory.
        resume: continue from ``out/checkpoint.pt`` (the last complete epoch): model, optimiser
            and schedule, sampler, every RNG; the metrics logged after that checkpoint are
            dropped and redone, so the finished run's metrics equal an uninterrupted run's.
        overwrite: replace a run directory holding another run.
        progress: a progress bar with live loss and accuracy (default: when stderr is a terminal).
        stop_after_steps: raise ``KeyboardInterrupt`` after this many steps (tests of Ctrl-C).
        threads: torch's CPU threads during the run (restored after it). Default: 1 for models
            under a million parameters, whose steps are too small to share (two threads made the
            mnist1d MLP 20x slower on a busy 2-core machine), else torch's own default.

    Returns:
        The run's summary (also written to ``summary.json``).
    """
    out = Path(out)
    rank, world = _dist()
    if resume:
        from graphwalk.train.config import load_config

        prepare_run_dir(out, config, resume=True, overwrite=False)
        cfg = load_config(out).resolved()
        if config.device != "auto":  # the one setting a resumed run may change
            cfg.device = config.device
    else:
        cfg = config.resolved()
        if rank == 0:
            prepare_run_dir(out, cfg, resume=False, overwrite=overwrite)
    fresh = rank == 0 and not resume
    created = fresh and not out.exists()
    threads_before = torch.get_num_threads()
    try:
        return _train(cfg, out, rank, world, resume, progress, stop_after_steps, threads, fresh)
    except BaseException:
        # a run refused, failed or stopped before its first checkpoint leaves nothing in the way
        # of the command run again (after a checkpoint everything is kept: it can resume)
        if fresh and not (out / CHECKPOINT).exists():
            if created:
                shutil.rmtree(out, ignore_errors=True)
            elif out.is_dir():
                for child in out.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    finally:  # process-wide settings the run changed, whatever stopped it
        torch.set_num_threads(threads_before)
        torch.set_flush_denormal(False)


def _train(
    cfg: TrainConfig,
    out: Path,
    rank: int,
    world: int,
    resume: bool,
    progress: bool | None,
    stop_after_steps: int | None,
    threads: int | None,
    fresh: bool,
) -> dict[str, Any]:
    from graphwalk.train.models import build_model

    spec = parse_spec(cfg.sampler)
    if not spec.is_random and cfg.index is None:
        where = "the activation index" if cfg.layers else "the index"
        check_spec_graph(spec, own_graphs(cfg.layers), f"{where} built for the run")
    device = _device(cfg.device, rank)
    show = sys.stderr.isatty() if progress is None else progress
    show = show and rank == 0

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
    noisy = y_train != y_clean
    n = len(train_ds)
    train_x = train_ds.inputs.to(device)
    test_x = test_ds.inputs.to(device)
    train_y = torch.as_tensor(y_train, device=device)
    test_y = torch.as_tensor(test_ds.labels[classes], device=device)

    torch.manual_seed(cfg.seed)  # the same initial model for every sampler of a seed
    net = build_model(
        cfg.model or "mlp", tuple(train_ds.inputs.shape[1:]), n_classes, loss=cfg.loss
    ).to(device)
    model: Any = net
    if device.type == "cpu":
        small = sum(p.numel() for p in net.parameters()) < 1_000_000
        torch.set_num_threads(threads or (1 if small else torch.get_num_threads()))
        # subnormal floats make x86 arithmetic many times slower, and how many a model holds
        # depends on what it was trained on (the MLP trained on knn-walk batches held twice as
        # many as with shuffling, and stepped 5% slower): flush them, for every sampler alike
        torch.set_flush_denormal(True)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )

    out.mkdir(parents=True, exist_ok=True)

    def activations(path: Path) -> tuple[GraphIndex, dict[str, float]]:
        """The index of the model's activations now (at the start, and at every refresh)."""
        return activation_index(
            net,
            train_ds,
            cfg.layers,
            path,
            clusters=cfg.index_clusters,
            k=cfg.index_k,
            seed=cfg.seed,
            device=device,
        )

    ck = load_checkpoint(out / CHECKPOINT) if resume else None
    if ck is not None and int(ck.get("world_size", 1)) != world:
        n = int(ck.get("world_size", 1))
        how = f"torchrun --nproc-per-node {n} -m graphwalk train" if n > 1 else "graphwalk train"
        raise InputError(
            f"the run was trained by {n} process{'es' if n > 1 else ''}, this is {world}: resume "
            f"it the same way ({how} --resume {out})"
        )
    if ck is not None:
        diff = config_diff(TrainConfig.from_dict(ck["config"]).resolved().to_dict(), cfg.to_dict())
        diff = [k for k in diff if k not in ("device", "data_dir", "download")]
        if diff:
            raise InputError(
                f"{out / 'config.json'} was changed after the checkpoint was written (it differs "
                f"in {', '.join(diff[:4])}): --resume continues the run as it was; restore the "
                "setting, or start a new run with --config and the change"
            )
    index: GraphIndex | None = None
    index_path: Path | None = None
    refreshes: list[dict[str, Any]] = []
    if ck is not None and ck.get("index"):
        index_path = out / ck["index"]
        index = GraphIndex.load(index_path)
    elif cfg.index is not None:
        index_path = Path(cfg.index)
        index = GraphIndex.load(index_path)
        check_index(index, cfg.dataset, n, cfg.index)
        check_spec_graph(spec, list(index.graphs), f"index {cfg.index}")
    elif not spec.is_random:
        index_path = out / ("index-epoch-000.gw" if cfg.layers else "index.gw")
        if rank == 0:
            if cfg.layers:
                index, cost = activations(index_path)
                refreshes.append({"epoch": 0, "step": 0, **cost, "graphs": graph_homophily(index)})
            else:
                index = default_index(
                    train_ds, index_path, clusters=cfg.index_clusters, k=cfg.index_k, seed=cfg.seed
                )
        _barrier(world)
        if index is None:
            index = GraphIndex.load(index_path)
    sampler = make_sampler(spec, index, n, cfg.batch_size, cfg.seed, rank, world)
    if fresh:  # written once everything is known to work: a refused run leaves nothing behind
        atomic_write(out / "config.json", cfg.to_json())

    steps_per_epoch = len(sampler)
    total_steps = steps_per_epoch * cfg.epochs
    params = net.parameters()
    opt: torch.optim.Optimizer
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr or 1e-3, weight_decay=cfg.weight_decay or 0.0)
    else:
        opt = torch.optim.SGD(
            params, lr=cfg.lr or 0.1, momentum=cfg.momentum, weight_decay=cfg.weight_decay or 0.0
        )
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
        )
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)

    epoch, step, wall_before = 0, 0, 0.0
    train_s = 0.0
    in_epoch: dict[str, Any] | None = None
    if ck is not None:
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        sampler.load_state_dict(ck["sampler"])
        _set_rng_state(ck["rng"])
        epoch, step = int(ck["epoch"]), int(ck["step"])
        wall_before, train_s = float(ck["wall_s"]), float(ck.get("train_s", 0.0))
        in_epoch = ck.get("in_epoch")  # a checkpoint taken inside an epoch (--checkpoint-every)
        if rank == 0:
            with open(out / METRICS, "r+b") as f:  # drop what came after the checkpoint
                f.truncate(int(ck["metrics_bytes"]))
    log = MetricsWriter(out, rank == 0, purge_step=step + 1 if ck is not None else None)
    batches_f = None
    if cfg.record_batches:
        rec = out / f"batches-rank{rank}.jsonl"
        if ck is not None and rec.exists():  # keep the batches the checkpoint holds
            done = (epoch, int(in_epoch["batch"]) if in_epoch is not None else 0)
            kept = [
                line
                for line in rec.read_text(encoding="utf-8").splitlines(keepends=True)
                if line.endswith("\n") and _before(json.loads(line), done)
            ]
            atomic_write(rec, "".join(kept))
        batches_f = open(rec, "a", encoding="utf-8")
    t_start = time.perf_counter()

    def wall() -> float:
        return wall_before + time.perf_counter() - t_start

    last_acc: float | None = None
    ema: float | None = None

    def do_eval(epoch_now: int, train_loss: float | None) -> None:
        nonlocal last_acc
        if rank != 0:
            return
        ev = evaluate(
            net,
            cfg.loss,
            train_x,
            train_y,
            test_x,
            test_y,
            knn_k=cfg.knn_k,
            temperature=cfg.temperature,
        )
        last_acc = ev["test_acc"]
        log.write(
            {
                "event": "eval",
                "epoch": epoch_now,
                "step": step,
                **ev,
                "train_loss": train_loss,
                "wall_s": round(wall(), 4),
            }
        )

    for r in refreshes:
        log.write({"event": "refresh", **r})
    if ck is None:
        do_eval(0, None)

    bar: Any = progress_bar(
        enabled=show,
        total=total_steps,
        initial=step,
        desc=f"{cfg.sampler} seed {cfg.seed}",
        unit="step",
    )
    y_np = y_clean
    if cfg.loss == "ce":
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
    else:
        from graphwalk.train.losses import supcon_loss

        def loss_fn(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return supcon_loss(z, y, cfg.temperature)

    reward = None
    unreported: collections.deque[float] = collections.deque()  # losses awaiting their reward
    record_loss = None
    if spec.policy is not None:
        from graphwalk.learn import make_reward

        reward = make_reward(spec.reward or "grad-norm")
        learner = sampler.policy
        while learner is not None and not hasattr(learner, "record_loss"):
            learner = getattr(learner, "policy", None)  # inside a CoverageFloor
        # the per-node loss feature is local to a rank: fed on one process only, where every
        # rank's policy would otherwise diverge
        record_loss = getattr(learner, "record_loss", None) if world == 1 else None
    if in_epoch is not None and reward is not None and "reward" in in_epoch:
        reward.load_state_dict(in_epoch["reward"])
    sigterm = _SigTerm.install()

    def checkpoint(in_epoch_state: dict[str, Any] | None) -> None:
        """Write the checkpoint (rank 0): at an epoch's end, or inside one."""
        if batches_f is not None:  # every rank's record holds what the checkpoint holds
            batches_f.flush()
        if rank != 0:
            return
        state = {
            "world_size": world,
            "config": cfg.to_dict(),
            "epoch": epoch,
            "step": step,
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "sampler": sampler.state_dict(),
            "rng": _rng_state(),
            "metrics_bytes": log.position(),
            "index": None if index_path is None or cfg.index else index_path.name,
            "wall_s": wall(),
            "train_s": train_s,
        }
        if in_epoch_state is not None:
            state["in_epoch"] = in_epoch_state
        save_checkpoint(out / CHECKPOINT, state)

    try:
        while epoch < cfg.epochs:
            times: list[float] = []
            if in_epoch is None:
                sampler.set_epoch(epoch)
                t_epoch = time.perf_counter()
                eval_in_loop = 0.0
                losses: list[float] = []
                b0 = 0
            else:  # resumed inside this epoch: the sampler's state holds the rest of it
                t_epoch = time.perf_counter() - float(in_epoch["elapsed"])
                eval_in_loop = float(in_epoch["eval_in_loop"])
                losses = [float(v) for v in in_epoch["losses"]]
                b0 = int(in_epoch["batch"])
                in_epoch = None
            for b, idx in enumerate(_timed(iter(sampler), times), start=b0):
                ids = torch.as_tensor(idx, device=device)
                x, y = train_x[ids], train_y[ids]
                loss = loss_fn(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                rw = None if reward is None else reward.after_backward(net)
                opt.step()
                sched.step()
                step += 1
                lv = float(loss.detach())
                if reward is not None:
                    if rw is None:
                        rw = reward.after_step(net, x, y, lv, loss_fn)
                    unreported.append(lv)
                    if rw is not None:  # the oldest batch not yet reported (gar: the previous)
                        info = sampler.report(rw)
                        loss_of = unreported.popleft()
                        if record_loss is not None:  # pg's per-node loss feature
                            record_loss(info.root, loss_of)
                losses.append(lv)
                ema = lv if ema is None else 0.95 * ema + 0.05 * lv
                rows = np.asarray(idx)
                hom = batch_homophily(y_np[rows], n_classes)
                log.write(
                    {
                        "event": "step",
                        "epoch": epoch,
                        "step": step,
                        "loss": lv,
                        "lr": sched.get_last_lr()[0],
                        "sampler_us": round(times[-1], 2),
                        "homophily": None if hom is None else round(hom, 5),
                        **(
                            {}
                            if reward is None
                            else {"reward": _finite(rw), "entropy": _entropy(sampler)}
                        ),
                        **(
                            {"noisy": round(float(noisy[rows].mean()), 4)}
                            if cfg.label_noise
                            else {}
                        ),
                    }
                )
                if batches_f is not None:
                    batches_f.write(json.dumps({"epoch": epoch, "batch": b, "items": idx}) + "\n")
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{ema:.3f}",
                        acc="-" if last_acc is None else f"{100 * last_acc:.1f}%",
                        refresh=False,
                    )
                if cfg.eval_every and step % cfg.eval_every == 0:
                    t_ev = time.perf_counter()
                    do_eval(epoch, float(np.mean(losses)))
                    eval_in_loop += time.perf_counter() - t_ev
                if stop_after_steps is not None and step >= stop_after_steps:
                    raise KeyboardInterrupt
                due = bool(cfg.checkpoint_every) and step % cfg.checkpoint_every == 0
                stop = sigterm.requested(world, at_boundary=due)
                if (due or stop) and not unreported:  # no reward in flight: an exact state
                    checkpoint(
                        {
                            "batch": b + 1,
                            "losses": losses,
                            "eval_in_loop": eval_in_loop,
                            "elapsed": time.perf_counter() - t_epoch,
                            **({} if reward is None else {"reward": reward.state_dict()}),
                        }
                    )
                    _barrier(world)
                    if stop:
                        raise Preempted(step, out)
            if reward is not None:  # rewards still awaited (gar: the epoch's last batch)
                for rw in reward.finish():
                    sampler.report(rw)
                unreported.clear()
                sampler.flush_rewards()
            epoch_s = time.perf_counter() - t_epoch
            train_s += epoch_s - eval_in_loop  # steps with their logging, evaluations excluded
            epoch += 1
            if not (cfg.eval_every and step % cfg.eval_every == 0):
                do_eval(epoch, float(np.mean(losses)) if losses else None)
            old_index = None
            if cfg.refresh_every and epoch % cfg.refresh_every == 0 and epoch < cfg.epochs:
                old_index, index_path = index_path, out / f"index-epoch-{epoch:03d}.gw"
                if rank == 0:
                    index, cost = activations(index_path)
                    log.write(
                        {
                            "event": "refresh",
                            "epoch": epoch,
                            "step": step,
                            **cost,
                            "epoch_seconds": epoch_s,
                            "graphs": graph_homophily(index),
                        }
                    )
                _barrier(world)
                if rank != 0:
                    index = GraphIndex.load(index_path)
                sampler = make_sampler(spec, index, n, cfg.batch_size, cfg.seed, rank, world)
                sampler.set_epoch(epoch)
            checkpoint(None)
            if rank == 0:
                if old_index is not None and old_index.parent == out:
                    remove_index(old_index)
            _barrier(world)
            if epoch < cfg.epochs and sigterm.requested(world, at_boundary=True):
                raise Preempted(step, out)  # (rewards were in flight inside the epoch)
    finally:
        sigterm.restore()
        if bar is not None:
            bar.close()
        if batches_f is not None:
            batches_f.close()
        log.close()
        if rank == 0 and (out / METRICS).exists():
            _write_tables(out)
    if rank == 0 and getattr(sampler, "policy", None) is not None and spec.graph is not None:
        assert index is not None
        _policy_files(out, sampler.policy, index, spec, sampler.skipped_rewards)
    summary = _summary(out, cfg, step, wall(), train_s) if rank == 0 else {}
    _barrier(world)
    return summary


def _policy_files(
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


def _summary(
    out: Path, cfg: TrainConfig, steps: int, wall_s: float, train_s: float
) -> dict[str, Any]:
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
        "refresh_s_mean": round(float(np.mean([r["seconds"] for r in refresh])), 3)
        if refresh
        else None,
        "files": {
            "metrics": str(out / METRICS),
            "csv": str(out / "metrics.csv"),
            "checkpoint": str(out / CHECKPOINT),
        },
    }
    atomic_write(out / "summary.json", json.dumps(s, indent=2) + "\n")
    return s
