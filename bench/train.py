"""Training steps per second with graphwalk's samplers against torch's ``RandomSampler`` +
``BatchSampler`` on the same model and data in the same run (issue 8, "Speed"): mnist1d, the
``mlp`` and ``cnn1d`` models, CPU, Adam as ``graphwalk train`` uses it.

Samplers: ``BatchSampler(RandomSampler(ds), batch_size, drop_last=False)`` (the reference),
graphwalk's shuffling (``random``: ShuffleBatchSampler) and walks on the ``er`` and ``knn`` graphs
of an index built once with ``graphwalk.train.indexing.default_index`` (exact kNN, in a temporary
directory). Each sampler trains its own copy of the model (the same initialisation) through the
step ``graphwalk.train.loop`` takes: the next batch from the sampler's iterator, the in-memory
tensors indexed, forward, cross-entropy, ``zero_grad``, backward, ``opt.step``, ``sched.step``,
the loss read back, and the batch homophily the loop logs. Whole epochs are timed (a walk plans
its epoch at the first batch: that cost is in), after one warm-up epoch per sampler (Numba), in
rounds: every round gives each sampler ``--epochs-per-round`` epochs, in an order rotated each
round, so that load from other processes falls on all samplers alike. Target: steps/s >= 0.98x the
reference's.

Second table: an activation refresh (``graphwalk.train.indexing.activation_index``: capture the
activations, build the index) against one training epoch of the same model. Third table:
``graphwalk.train.loop.train`` end to end for ``random`` and ``er``: its summary's ``steps_per_s``
(which counts the sampler and the step, not the per-step logging), the epoch loop's own wall time
(the whole ``for`` over the batches, logging included), and the per-step logging on its own.

    python bench/train.py                       # the full run (a few minutes)
    python bench/train.py --quick --out-dir /tmp/t   # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, RandomSampler

from graphwalk.benchmark import Table, record_markdown
from graphwalk.datasets import load_dataset
from graphwalk.train.data import batch_homophily
from graphwalk.train.indexing import activation_index, default_index
from graphwalk.train.models import build_model, default_optim

TARGET = 0.98
MODELS = ("mlp", "cnn1d")
#: the layer an activation refresh indexes, per model (``body.act3`` is the cnn1d body's last
#: layer; ``body.flatten`` after it only reshapes it to the same 125 values)
REFRESH_LAYER = {"mlp": "body.act2", "cnn1d": "body.act3"}
REFERENCE = "torch RandomSampler + BatchSampler"
SAMPLERS = (REFERENCE, "random (ShuffleBatchSampler)", "er (walk)", "knn (walk)")
SPECS = {SAMPLERS[1]: "random", SAMPLERS[2]: "er", SAMPLERS[3]: "knn"}


@dataclass
class Run:
    """One sampler training its own copy of one model."""

    name: str
    sampler: Any
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    epoch: int = 0
    steps_per_s: list[float] = field(default_factory=list)  # one per round
    cpu_steps_per_s: list[float] = field(default_factory=list)  # the same, on thread CPU time
    epoch_s: list[float] = field(default_factory=list)  # every timed epoch
    sampler_s: float = 0.0
    steps: int = 0
    homophily: list[float] = field(default_factory=list)


def _make_sampler(name: str, index: Any, n: int, batch_size: int, seed: int) -> Any:
    if name == REFERENCE:
        g = torch.Generator().manual_seed(seed)
        return BatchSampler(RandomSampler(range(n), generator=g), batch_size, drop_last=False)
    from graphwalk.train.loop import make_sampler
    from graphwalk.train.spec import parse_spec

    return make_sampler(parse_spec(SPECS[name]), index, n, batch_size, seed, 0, 1)


def _new_run(name: str, model: str, sampler: Any, seed: int, total_steps: int) -> Run:
    torch.manual_seed(seed)  # the same initial model for every sampler, as the loop does
    net = build_model(model, (40,), 10)
    _, lr, wd = default_optim(model)  # Adam 1e-2 for the mnist1d models
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )
    return Run(name, sampler, net, opt, sched)


def _epoch(
    run: Run,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    y_np: np.ndarray,
    max_steps: int | None,
    record: bool,
) -> tuple[int, float, float]:
    """Train one epoch the way graphwalk.train.loop steps; ``(steps, seconds, CPU seconds)``."""
    s = run.sampler
    if hasattr(s, "set_epoch"):
        s.set_epoch(run.epoch)
    run.epoch += 1
    net, opt, sched = run.net, run.opt, run.sched
    steps, samp = 0, 0.0
    homs: list[float] = []
    c_start = time.thread_time()
    t_start = time.perf_counter()
    it = iter(s)
    while True:
        t0 = time.perf_counter()
        try:
            idx = next(it)
        except StopIteration:
            samp += time.perf_counter() - t0
            break
        samp += time.perf_counter() - t0
        ids = torch.as_tensor(idx)
        x, y = x_all[ids], y_all[ids]
        z = net(x)
        loss = F.cross_entropy(z, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        float(loss.detach())
        homs.append(batch_homophily(y_np[np.asarray(idx)], 10))
        steps += 1
        if max_steps is not None and steps >= max_steps:
            break
    seconds = time.perf_counter() - t_start
    cpu = time.thread_time() - c_start
    if record:
        run.epoch_s.append(seconds)
        run.sampler_s += samp
        run.steps += steps
        run.homophily.extend(h for h in homs if not math.isnan(h))
    return steps, seconds, cpu


def _denormal_share(run: Run) -> float:
    """Share of the model's parameters, gradients and Adam moments that are subnormal floats
    (arithmetic on them is many times slower on x86 unless flushed to zero)."""
    tiny = torch.finfo(torch.float32).tiny
    n_sub, n_all = 0, 0
    for p in run.net.parameters():
        state = run.opt.state.get(p, {})
        for t in (p.detach(), p.grad, state.get("exp_avg"), state.get("exp_avg_sq")):
            if t is None:
                continue
            a = t.abs()
            n_sub += int(((a > 0) & (a < tiny)).sum())
            n_all += a.numel()
    return n_sub / max(n_all, 1)


def _quartiles(v: list[float]) -> tuple[float, float]:
    if len(v) < 2:
        return v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], q[2]


def _speed(
    model: str,
    ds: Any,
    index: Any,
    args: argparse.Namespace,
) -> tuple[list[Run], dict[str, Any]]:
    n = len(ds)
    x_all = ds.inputs
    y_np = np.asarray(ds.labels["label"], dtype=np.int64)
    y_all = torch.as_tensor(y_np)
    steps_per_epoch = math.ceil(n / args.batch_size)
    total = steps_per_epoch * (1 + args.rounds * args.epochs_per_round)
    runs = [
        _new_run(
            name,
            model,
            _make_sampler(name, index, n, args.batch_size, args.seed),
            args.seed,
            total,
        )
        for name in SAMPLERS
    ]
    for r in runs:  # warm-up: Numba compilation, Adam's state, allocator
        _epoch(r, x_all, y_all, y_np, args.max_steps, record=False)
    for rnd in range(args.rounds):
        k = rnd % len(runs)
        for r in runs[k:] + runs[:k]:
            steps, secs, cpu = 0, 0.0, 0.0
            for _ in range(args.epochs_per_round):
                st, sc, cp = _epoch(r, x_all, y_all, y_np, args.max_steps, record=True)
                steps, secs, cpu = steps + st, secs + sc, cpu + cp
            r.steps_per_s.append(steps / secs)
            r.cpu_steps_per_s.append(steps / cpu)
        if (rnd + 1) % 10 and rnd + 1 != args.rounds:
            continue
        print(
            f"  {model}{' (flushed)' if args.flush else ''} round {rnd + 1}/{args.rounds}: "
            + ", ".join(f"{r.name.split()[0]} {r.steps_per_s[-1]:.0f}" for r in runs),
            flush=True,
        )
    ref = runs[0]
    res: dict[str, Any] = {"model": model, "flush_denormal": args.flush, "rows": []}
    for r in runs:
        paired = [a / b for a, b in zip(r.steps_per_s, ref.steps_per_s, strict=True)]
        med = statistics.median(r.steps_per_s)
        ratio = med / statistics.median(ref.steps_per_s)
        q1, q3 = _quartiles(paired)
        cpu_ratio = statistics.median(r.cpu_steps_per_s) / statistics.median(ref.cpu_steps_per_s)
        if r is ref:
            verdict = "reference"
        elif ratio >= TARGET:
            verdict = "yes"
        elif q3 >= TARGET:
            verdict = "within noise"
        else:
            verdict = "NO"
        res["rows"].append(
            {
                "sampler": r.name,
                "steps_per_s_median": med,
                "steps_per_s_min": min(r.steps_per_s),
                "steps_per_s_max": max(r.steps_per_s),
                "steps_per_s_rounds": r.steps_per_s,
                "cpu_steps_per_s_median": statistics.median(r.cpu_steps_per_s),
                "cpu_steps_per_s_rounds": r.cpu_steps_per_s,
                "cpu_ratio": cpu_ratio,
                "epoch_s_median": statistics.median(r.epoch_s),
                "sampler_us_per_step": r.sampler_s / r.steps * 1e6,
                "homophily_mean": float(np.mean(r.homophily)) if r.homophily else None,
                "denormal_share": _denormal_share(r),
                "ratio": ratio,
                "paired_ratio_q1": q1,
                "paired_ratio_q3": q3,
                "paired_ratio_min": min(paired),
                "paired_ratio_max": max(paired),
                "verdict": verdict,
            }
        )
    return runs, res


def _refresh(
    model: str, net: torch.nn.Module, ds: Any, tmp: Path, repeats: int, epoch_s: float
) -> dict[str, Any]:
    """An activation refresh of the trained ``net``: median seconds over ``repeats`` (after one
    untimed warm-up when repeats > 1)."""
    layer = REFRESH_LAYER[model]
    costs = []
    for i in range(repeats + (1 if repeats > 1 else 0)):
        _, cost = activation_index(
            net, ds, [layer], tmp / f"act-{model}-{i}.gw", clusters=None, k=10, seed=0
        )
        costs.append(cost)
    if repeats > 1:
        costs = costs[1:]
    med = {key: statistics.median(c[key] for c in costs) for key in costs[0]}
    return {
        "model": model,
        "layer": layer,
        **med,
        "epoch_s": epoch_s,
        "ratio": med["seconds"] / epoch_s,
        "repeats": repeats,
    }


class _EpochClock:
    """A batch sampler wrapped to time the training loop's ``for`` over it: from the first batch
    asked for to the end of the epoch (every step and its logging)."""

    def __init__(self, sampler: Any, sink: list[tuple[int, float]]) -> None:
        self._s, self._sink = sampler, sink

    def __len__(self) -> int:
        return len(self._s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)

    def __iter__(self) -> Iterator[list[int]]:
        t0, n = time.perf_counter(), 0
        for batch in self._s:
            n += 1
            yield batch
        self._sink.append((n, time.perf_counter() - t0))


def _end_to_end(
    model: str, specs: list[str], tb_modes: list[bool], epochs: int, repeats: int, tmp: Path
) -> list[dict[str, Any]]:
    """``graphwalk.train.loop.train`` for each spec with and without TensorBoard, ``repeats``
    times, the runs of a repeat in an order rotated each repeat; without TensorBoard the loop
    finds it missing (as where it is not installed)."""
    import graphwalk.train.loop as loop
    import graphwalk.train.run as run
    from graphwalk.train.config import TrainConfig

    real = run.make_sampler
    configs = [(spec, tb) for tb in tb_modes for spec in specs]
    out: dict[tuple[str, bool], list[dict[str, Any]]] = {c: [] for c in configs}
    try:
        for rep in range(repeats):
            k = rep % len(configs)
            for spec, tensorboard in configs[k:] + configs[:k]:
                sink: list[tuple[int, float]] = []

                def wrapped(*a: Any, _sink: list[tuple[int, float]] = sink, **kw: Any) -> Any:
                    return _EpochClock(real(*a, **kw), _sink)

                run.make_sampler = wrapped  # type: ignore[assignment]
                cfg = TrainConfig(
                    dataset="mnist1d", model=model, sampler=spec, epochs=epochs, device="cpu"
                )
                hidden = sys.modules.get("torch.utils.tensorboard")
                if not tensorboard:
                    sys.modules["torch.utils.tensorboard"] = None  # type: ignore[assignment]
                run_dir = tmp / f"run-{model}-{spec}-tb{int(tensorboard)}-{rep}"
                try:
                    t0 = time.perf_counter()
                    s = loop.train(cfg, run_dir, progress=False)
                    call_s = time.perf_counter() - t0
                finally:
                    if hidden is None:
                        sys.modules.pop("torch.utils.tensorboard", None)
                    else:
                        sys.modules["torch.utils.tensorboard"] = hidden
                if tensorboard != (run_dir / "tb").is_dir():
                    raise RuntimeError(f"tensorboard={tensorboard} but {run_dir / 'tb'} says not")
                steps = sum(n for n, _ in sink)
                loop_s = sum(t for _, t in sink)
                out[spec, tensorboard].append(
                    {
                        "steps": s["steps"],
                        "summary_steps_per_s": s["steps_per_s"],
                        "train_s": s["train_s"],
                        "loop_steps_per_s": steps / loop_s,
                        "loop_s": loop_s,
                        "wall_s": s["wall_s"],
                        "call_s": call_s,
                        "sampler_us_median": s["sampler_us_median"],
                    }
                )
    finally:
        run.make_sampler = real
    rows = []
    for (spec, tensorboard), reps in out.items():
        row: dict[str, Any] = {
            "sampler": spec,
            "model": model,
            "tensorboard": tensorboard,
            "epochs": epochs,
            "runs": reps,
        }
        for key in ("summary_steps_per_s", "loop_steps_per_s", "wall_s", "call_s", "train_s"):
            row[key] = statistics.median(r[key] for r in reps)
        row["loop_steps_per_s_min"] = min(r["loop_steps_per_s"] for r in reps)
        row["loop_steps_per_s_max"] = max(r["loop_steps_per_s"] for r in reps)
        row["steps"] = reps[0]["steps"]
        row["sampler_us_median"] = statistics.median(r["sampler_us_median"] for r in reps)
        row["logging_share"] = statistics.median(
            1 - r["loop_steps_per_s"] / r["summary_steps_per_s"] for r in reps
        )
        rows.append(row)
    return rows


def _logging_cost(tmp: Path, n: int) -> dict[str, float]:
    """µs per step record of the loop's ``MetricsWriter.write`` (metrics.jsonl, and TensorBoard's four
    ``add_scalar`` when tensorboard is installed), and of ``batch_homophily``."""
    from graphwalk.train.metrics import MetricsWriter

    rec = {
        "event": "step",
        "epoch": 0,
        "step": 0,
        "loss": 0.123456789,
        "lr": 0.00987654321,
        "sampler_us": 12.34,
        "homophily": 0.12345,
    }
    res: dict[str, float] = {}
    for name, tb in (("json", False), ("json_tb", True)):
        d = tmp / f"log-{name}"
        d.mkdir()
        log = MetricsWriter(d, True, None)
        if not tb:
            if log.tb is not None:
                log.tb.close()
            log.tb = None
        elif log.tb is None:
            log.close()
            continue
        t0 = time.perf_counter()
        for i in range(n):
            rec["step"] = i + 1
            log.write(rec)
        res[f"{name}_us"] = (time.perf_counter() - t0) / n * 1e6
        log.close()
    labels = np.random.default_rng(0).integers(0, 10, 64)
    t0 = time.perf_counter()
    for _ in range(n):
        batch_homophily(labels[np.asarray(list(range(64)))], 10)
    res["homophily_us"] = (time.perf_counter() - t0) / n * 1e6
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--epochs-per-round", type=int, default=1)
    ap.add_argument("--e2e-epochs", type=int, default=10, help="epochs of each train() run")
    ap.add_argument("--e2e-repeats", type=int, default=5, help="train() runs per sampler")
    ap.add_argument("--refresh-repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None, help="cut every epoch at this many")
    ap.add_argument(
        "--no-flush-control",
        action="store_true",
        help="skip the second pass with torch.set_flush_denormal(True)",
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run: 1 round of short epochs")
    ap.add_argument("--out-dir", default="bench/results")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.epochs_per_round = 1, 1
        args.max_steps = args.max_steps or 8
        args.e2e_epochs, args.e2e_repeats, args.refresh_repeats = 1, 1, 1
    torch.set_num_threads(args.threads)

    ds = load_dataset("mnist1d")
    n = len(ds)
    speed_res, refresh_res, e2e_res = [], [], []
    with tempfile.TemporaryDirectory(prefix="gw-bench-train-") as td:
        tmp = Path(td)
        t0 = time.perf_counter()
        index = default_index(ds, tmp / "index.gw", clusters=None, k=10, seed=args.seed)
        index_s = time.perf_counter() - t0
        modes = [False] if args.no_flush_control else [False, True]
        for flush in modes:
            args.flush = flush
            torch.set_flush_denormal(flush)
            try:
                for model in MODELS:
                    print(
                        f"{model}, denormals {'flushed' if flush else 'kept'}: "
                        f"{len(SAMPLERS)} samplers x {args.rounds} rounds ...",
                        flush=True,
                    )
                    runs, res = _speed(model, ds, index, args)
                    speed_res.append(res)
                    if flush:
                        continue
                    ref = runs[0]
                    print(f"{model}: activation refresh ...", flush=True)
                    refresh_res.append(
                        _refresh(
                            model,
                            ref.net,
                            ds,
                            tmp,
                            args.refresh_repeats,
                            statistics.median(ref.epoch_s),
                        )
                    )
            finally:
                torch.set_flush_denormal(False)
        print("end to end through graphwalk.train.loop.train ...", flush=True)
        e2e_models = MODELS[:1] if args.quick else MODELS
        tb_modes = [True, False] if importlib.util.find_spec("tensorboard") else [False]
        for model in e2e_models:
            e2e_res += _end_to_end(
                model, ["random", "er"], tb_modes, args.e2e_epochs, args.e2e_repeats, tmp
            )
        log_cost = _logging_cost(tmp, 200 if args.quick else 2000)

    steps_epoch = math.ceil(n / args.batch_size)
    cut = f", epochs cut at {args.max_steps} steps" if args.max_steps else ""
    t1 = Table(
        f"training steps / s by sampler: mnist1d ({n:,} items, {steps_epoch} steps an epoch), "
        f"batch {args.batch_size}, CPU, torch threads: {args.threads}, Adam; {args.rounds} rounds "
        f"x {args.epochs_per_round} epoch(s) per sampler{cut}",
        [
            "model",
            "denormals",
            "sampler",
            "steps / s (median)",
            "spread (min–max)",
            "sampler µs / step",
            "batch homophily",
            "vs torch",
            "per-round ratio (q1–q3)",
            f"target >= {TARGET}",
            "vs torch, CPU time",
            "subnormal share",
        ],
    )
    for res in speed_res:
        for r in res["rows"]:
            t1.add(
                res["model"],
                "flushed" if res["flush_denormal"] else "kept",
                r["sampler"],
                r["steps_per_s_median"],
                f"{r['steps_per_s_min']:,.0f}–{r['steps_per_s_max']:,.0f}",
                r["sampler_us_per_step"],
                "-" if r["homophily_mean"] is None else round(r["homophily_mean"], 3),
                f"{r['ratio']:.3f}x",
                f"{r['paired_ratio_q1']:.3f}–{r['paired_ratio_q3']:.3f}",
                r["verdict"],
                f"{r['cpu_ratio']:.3f}x",
                f"{r['denormal_share']:.1%}",
            )
    t1.notes += [
        "the timed step is graphwalk.train.loop's: next batch from the sampler's iterator, index "
        "the in-memory tensors, forward, cross-entropy, zero_grad, backward, Adam step, LR "
        "schedule step, loss read back, batch_homophily; each sampler trains its own copy of the "
        "model (same initialisation); whole epochs timed, the walk's epoch plan at its first "
        "batch included",
        f"rounds interleave the samplers (order rotated each round) after one warm-up epoch "
        f"each; steps / s per round; 'vs torch' is the ratio of medians; the per-round ratio "
        f"pairs each round with the reference's same round; a miss reads 'within noise' when "
        f"{TARGET} lies within the per-round ratios' middle half (q1–q3)",
        f"index: graphwalk.train.indexing.default_index (k-means, er and exact kNN k=10), built "
        f"once in {index_s:.2f} s",
        "sampler µs / step: time in next(iterator) per step, the epoch's planning included",
        "vs torch, CPU time: the same ratio of medians with each epoch timed by the thread's "
        "CPU time (time.thread_time) instead of the wall clock: blind to the time the process "
        "waits for a core that other processes hold, so less noisy on a shared machine, but not "
        "what a user waits for",
        "denormals 'kept': as training runs by default; 'flushed': a second pass under "
        "torch.set_flush_denormal(True), every model trained afresh, to tell the sampler's own "
        "cost from the model's arithmetic; subnormal share: of the model's parameters, gradients "
        "and Adam moments at the end (subnormal floats make x86 arithmetic many times slower, "
        "and how many there are depends on what the model was trained on)",
    ]
    t2 = Table(
        "activation refresh vs one training epoch (same model, CPU, torch threads: "
        f"{args.threads})",
        [
            "model",
            "layer",
            "activations (s)",
            "build (s)",
            "refresh (s)",
            "epoch (s)",
            "refresh / epoch",
        ],
    )
    for r in refresh_res:
        t2.add(
            r["model"],
            r["layer"],
            r["activations_s"],
            r["build_s"],
            r["seconds"],
            r["epoch_s"],
            f"{r['ratio']:.2f}x",
        )
    t2.notes += [
        "refresh: graphwalk.train.indexing.activation_index on the model trained by the "
        "reference sampler above (k-means, er, exact kNN k=10, written to disk), median of "
        f"{refresh_res[0]['repeats']} after one untimed call"
        if refresh_res[0]["repeats"] > 1
        else "refresh: one call of graphwalk.train.indexing.activation_index",
        "epoch: median seconds of one epoch with the reference sampler in the table above",
    ]
    t3 = Table(
        f"end to end through graphwalk.train.loop.train: mnist1d, {args.e2e_epochs} epoch(s), "
        f"batch 64, CPU, torch threads: {args.threads}, median of {args.e2e_repeats} run(s)",
        [
            "model",
            "TensorBoard",
            "sampler",
            "steps",
            "summary steps_per_s",
            "loop steps / s (with logging)",
            "spread (min–max)",
            "logging share",
            "sampler µs (median)",
            "train() s",
        ],
    )
    for r in e2e_res:
        t3.add(
            r["model"],
            "on" if r["tensorboard"] else "off",
            r["sampler"],
            r["steps"],
            r["summary_steps_per_s"],
            r["loop_steps_per_s"],
            f"{r['loop_steps_per_s_min']:,.0f}–{r['loop_steps_per_s_max']:,.0f}",
            f"{r['logging_share']:.0%}",
            r["sampler_us_median"],
            r["call_s"],
        )
    for model in e2e_models:
        for tb_on in tb_modes:
            rs = {
                r["sampler"]: r
                for r in e2e_res
                if r["model"] == model and r["tensorboard"] == tb_on
            }
            summ = rs["er"]["summary_steps_per_s"] / rs["random"]["summary_steps_per_s"]
            lp = rs["er"]["loop_steps_per_s"] / rs["random"]["loop_steps_per_s"]
            t3.notes.append(
                f"{model}, TensorBoard {'on' if tb_on else 'off'}: er / random = {summ:.3f}x "
                f"(summary), {lp:.3f}x (loop with logging)"
            )
    tb = log_cost.get("json_tb_us")
    t3.notes += [
        "summary steps_per_s is steps / train_s, and train_s counts the sampler and the step "
        "only: not the per-step metrics.jsonl line, TensorBoard scalars or batch_homophily; "
        "'loop steps / s' times the loop's whole for over each epoch's batches (a wrapper "
        "around the sampler), logging included; 'logging share' = 1 - loop / summary per run "
        "(median over runs: both come from the same run, so the share is steadier than the "
        "rates, which move with the load from other processes; the er / random ratios below are "
        "rough: table 1, interleaved epoch by epoch, is the comparison of samplers)",
        f"per step record, measured alone: metrics.jsonl line {log_cost['json_us']:.1f} µs"
        + (
            f", with TensorBoard's four add_scalar {tb:.1f} µs"
            if tb is not None
            else " (tensorboard not installed)"
        )
        + f"; batch_homophily {log_cost['homophily_us']:.1f} µs",
        "train() s: the whole call (dataset, the er index build, evaluation, checkpoints)",
    ]
    body = "\n\n".join([t1.markdown(), t2.markdown(), t3.markdown()])
    print()
    print(body)
    record = Path(args.out_dir) / "train-speed.md"
    record_markdown(
        record,
        "training speed by sampler (mnist1d, CPU)",
        body,
        command="python bench/train.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        data={
            "args": vars(args),
            "index_s": index_s,
            "speed": speed_res,
            "refresh": refresh_res,
            "end_to_end": e2e_res,
            "logging_us": log_cost,
        },
    )
    print(f"\nrecorded {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
