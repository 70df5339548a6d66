"""What the learned walker's feedback costs a training step (issue 9, "Cost"): computing the
reward and updating the policy, against the same loop without them, mnist1d, the ``cnn1d`` model
(the issue's target: at most 5% of its step) and the ``mlp``, CPU, one torch thread, denormals
flushed (as ``graphwalk.train.loop`` trains), Adam as ``graphwalk train`` uses it.

Arms, each training its own copy of the model (the same initialisation) on a walk of the ``er``
graph of one index (``graphwalk.train.indexing.default_index``), built by
``graphwalk.train.loop.make_sampler`` from a sampler spec:

- A ``er:policy=exp3s``, no reward computed and nothing reported: the online policy still
  decides every batch, it never learns. The reference ("the same loop without it").
- B A + the ``grad-norm`` reward + ``sampler.report`` every step (the policy learns): the
  overhead the issue bounds by 5% of a step.
- C A + ``loss-drop`` (``er:policy=exp3s:reward=loss-drop``); D A + ``gar``.
- E the plain ``er`` walk, no policy (the Numba walk plans the whole epoch at its first batch):
  what the online policy's per-batch decision costs, against A.
- F ``er:policy=pg`` + ``grad-norm``: the policy-gradient walker's cost.

The timed step is ``graphwalk.train.loop``'s: the next batch from the sampler's iterator, the
in-memory tensors indexed, forward, cross-entropy, ``zero_grad``, backward,
[``reward.after_backward``], Adam's step, the schedule's step, the loss read back,
[``reward.after_step`` when the reward is not in yet, ``sampler.report``], ``batch_homophily``;
at the end of every epoch [``reward.finish()`` reported, ``sampler.flush_rewards()``]. Whole
epochs are timed after one warm-up epoch per arm, in rounds that give every arm
``--epochs-per-round`` epochs in an order rotated each round (load from other processes falls on
all arms alike); every step is also timed on its own, for the rounds' median steps (robust to
preemptions). Inside the step the reward's calls, ``sampler.report`` and the policy's
``select`` and ``learn`` (the sampler hands rewards to ``learn`` at its next decision, inside
``next()``, or at ``flush_rewards``) are timed on their own, so the cost of the feedback is also
given as its parts, free of the rounds' noise.

    python bench/learn_overhead.py                         # the full run (a few minutes)
    python bench/learn_overhead.py --quick --out-dir /tmp/l  # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from graphwalk.benchmark import Table, record_markdown
from graphwalk.datasets import load_dataset
from graphwalk.train.data import batch_homophily
from graphwalk.train.indexing import default_index
from graphwalk.train.models import build_model, default_optim

TARGET = 0.05  # the feedback may cost at most 5% of a cnn1d step (issue 9)
MODELS = ("cnn1d", "mlp")


@dataclass(frozen=True)
class Arm:
    key: str
    name: str
    spec: str
    reward: str | None  # None: nothing computed, nothing reported


ARMS = (
    Arm("A", "exp3s, no reward (reference)", "er:policy=exp3s", None),
    Arm("B", "exp3s + grad-norm", "er:policy=exp3s", "grad-norm"),
    Arm("C", "exp3s + loss-drop", "er:policy=exp3s:reward=loss-drop", "loss-drop"),
    Arm("D", "exp3s + gar", "er:policy=exp3s:reward=gar", "gar"),
    Arm("E", "er walk, no policy", "er", None),
    Arm("F", "pg + grad-norm", "er:policy=pg", "grad-norm"),
)


class _Clock:
    """µs of every call of a wrapped method (while ``on``)."""

    def __init__(self) -> None:
        self.on = False
        self.calls: list[float] = []

    def wrap(self, fn: Any) -> Any:
        def timed(*a: Any, **kw: Any) -> Any:
            if not self.on:
                return fn(*a, **kw)
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.calls.append((time.perf_counter() - t0) * 1e6)

        return timed


@dataclass
class Run:
    """One arm training its own copy of one model."""

    arm: Arm
    sampler: Any
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    reward: Any
    select: _Clock
    learn: _Clock
    epoch: int = 0
    # one per round: the round's epochs timed whole (wall clock, thread CPU time) per step, and
    # the median of the round's steps timed one by one
    step_us: list[float] = field(default_factory=list)
    cpu_step_us: list[float] = field(default_factory=list)
    median_step_us: list[float] = field(default_factory=list)
    # every timed step, µs
    steps: list[float] = field(default_factory=list)
    next_us: list[float] = field(default_factory=list)  # next(iterator): walk, select, learn
    reward_us: list[float] = field(default_factory=list)  # after_backward + after_step, a step
    report_us: list[float] = field(default_factory=list)  # every sampler.report call
    homophily_us: list[float] = field(default_factory=list)  # batch_homophily, a step
    finish_s: float = 0.0  # reward.finish reported + sampler.flush_rewards, at epoch ends


def _new_run(
    arm: Arm, model: str, index: Any, shape: tuple[int, ...], n: int, args: argparse.Namespace
) -> Run:
    from graphwalk.learn import make_reward
    from graphwalk.train.loop import make_sampler
    from graphwalk.train.spec import parse_spec

    sampler = make_sampler(parse_spec(arm.spec), index, n, args.batch_size, args.seed, 0, 1)
    select, learn = _Clock(), _Clock()
    policy = getattr(sampler, "policy", None)
    if policy is not None:  # instance attributes: the sampler's calls go through the clocks
        policy.select = select.wrap(policy.select)
        policy.learn = learn.wrap(policy.learn)
    torch.manual_seed(args.seed)  # the same initial model for every arm, as the loop does
    net = build_model(model, shape, 10)
    _, lr, wd = default_optim(model)  # Adam 1e-2 for the mnist1d models
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=wd)
    steps_epoch = math.ceil(n / args.batch_size)
    if args.max_steps:
        steps_epoch = min(steps_epoch, args.max_steps)
    total = steps_epoch * (1 + args.rounds * args.epochs_per_round)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))
    )
    reward = None if arm.reward is None else make_reward(arm.reward)
    return Run(arm, sampler, net, opt, sched, reward, select, learn)


def _epoch(
    run: Run,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    y_np: np.ndarray,
    max_steps: int | None,
    record: bool,
) -> tuple[list[float], float, float]:
    """Train one epoch as graphwalk.train.loop steps; ``(µs of every step, seconds of the
    whole epoch, its CPU seconds)``."""
    s, reward = run.sampler, run.reward
    s.set_epoch(run.epoch)
    run.epoch += 1
    net, opt, sched = run.net, run.opt, run.sched
    loss_fn = F.cross_entropy
    run.select.on = run.learn.on = record
    steps: list[float] = []
    nxt: list[float] = []
    rew: list[float] = []
    rep: list[float] = []
    hom: list[float] = []
    perf = time.perf_counter
    c_start = time.thread_time()
    t_start = perf()
    it = iter(s)
    while True:
        t_step = perf()
        try:
            idx = next(it)
        except StopIteration:
            break
        t1 = perf()
        nxt.append(t1 - t_step)
        ids = torch.as_tensor(idx)
        x, y = x_all[ids], y_all[ids]
        loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        rw = None
        if reward is not None:
            t0 = perf()
            rw = reward.after_backward(net)
            r_s = perf() - t0
        opt.step()
        sched.step()
        lv = float(loss.detach())
        if reward is not None:
            if rw is None:
                t0 = perf()
                rw = reward.after_step(net, x, y, lv, loss_fn)
                r_s += perf() - t0
            rew.append(r_s)
            if rw is not None:  # the oldest batch not yet reported (gar: the previous)
                t0 = perf()
                s.report(rw)
                rep.append(perf() - t0)
        t0 = perf()
        batch_homophily(y_np[np.asarray(idx)], 10)
        t1 = perf()
        hom.append(t1 - t0)
        steps.append(t1 - t_step)
        if max_steps is not None and len(steps) >= max_steps:
            break
    t_end = perf()
    if reward is not None:  # rewards still awaited (gar: the epoch's last batch)
        for rw in reward.finish():
            s.report(rw)
        s.flush_rewards()
    seconds = perf() - t_start
    cpu = time.thread_time() - c_start
    run.select.on = run.learn.on = False
    if record:
        run.steps += [t * 1e6 for t in steps]
        run.next_us += [t * 1e6 for t in nxt]
        run.reward_us += [t * 1e6 for t in rew]
        run.report_us += [t * 1e6 for t in rep]
        run.homophily_us += [t * 1e6 for t in hom]
        run.finish_s += seconds - (t_end - t_start)
    return [t * 1e6 for t in steps], seconds, cpu


def _quartiles(v: list[float]) -> tuple[float, float]:
    if len(v) < 2:
        return v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], q[2]


def _verdict(med: float, q1: float) -> str:
    if med <= TARGET:
        return "yes"
    if q1 <= TARGET:
        return "within noise"
    return "NO"


def _rewards_learned(run: Run) -> int:
    policy = getattr(run.sampler, "policy", None)
    diag = getattr(policy, "diagnostics", None)
    return int(diag()["rewards_seen"]) if callable(diag) else 0


def _median(v: list[float]) -> float:
    return statistics.median(v) if v else 0.0


def _mean(v: list[float]) -> float:
    return statistics.fmean(v) if v else 0.0


def _paired(run: list[float], ref: list[float]) -> dict[str, float]:
    """Per-round overhead ``run / ref - 1``: median, q1, q3, min, max."""
    v = [a / b - 1.0 for a, b in zip(run, ref, strict=True)]
    q1, q3 = _quartiles(v)
    return {"median": statistics.median(v), "q1": q1, "q3": q3, "min": min(v), "max": max(v)}


def _bench(model: str, ds: Any, index: Any, args: argparse.Namespace) -> dict[str, Any]:
    n = len(ds)
    x_all = ds.inputs
    y_np = np.asarray(ds.labels["label"], dtype=np.int64)
    y_all = torch.as_tensor(y_np)
    shape = tuple(x_all.shape[1:])
    runs = [_new_run(arm, model, index, shape, n, args) for arm in ARMS]
    for r in runs:  # warm-up: Numba compilation, Adam's state, the reward's first calls
        _epoch(r, x_all, y_all, y_np, args.max_steps, record=False)
    for rnd in range(args.rounds):
        k = rnd % len(runs)
        for r in runs[k:] + runs[:k]:
            steps: list[float] = []
            secs, cpu = 0.0, 0.0
            for _ in range(args.epochs_per_round):
                st, sc, cp = _epoch(r, x_all, y_all, y_np, args.max_steps, record=True)
                steps, secs, cpu = steps + st, secs + sc, cpu + cp
            r.step_us.append(secs / len(steps) * 1e6)
            r.cpu_step_us.append(cpu / len(steps) * 1e6)
            r.median_step_us.append(statistics.median(steps))
        if (rnd + 1) % 10 and rnd + 1 != args.rounds:
            continue
        print(
            f"  {model} round {rnd + 1}/{args.rounds}: µs/step "
            + ", ".join(f"{r.arm.key} {r.step_us[-1]:.0f}" for r in runs),
            flush=True,
        )
    ref = runs[0]
    ref_med = statistics.median(ref.step_us)
    ref_step_med = statistics.median(ref.steps)
    ref_hom = _median(ref.homophily_us)
    rows = []
    for r in runs:
        n_steps = len(r.steps)
        epochs = _paired(r.step_us, ref.step_us)
        medians = _paired(r.median_step_us, ref.median_step_us)
        cpu = _paired(r.cpu_step_us, ref.cpu_step_us)
        learn_per_step = len(r.learn.calls) / n_steps
        report_per_step = len(r.report_us) / n_steps
        reward_per_step = len(r.reward_us) / n_steps
        # the feedback's own cost per step, reward + report + the policy's learn: typical
        # (medians per call, times calls per step) and on average (means, preemptions included)
        fb_median = (
            _median(r.reward_us) * reward_per_step
            + _median(r.report_us) * report_per_step
            + _median(r.learn.calls) * learn_per_step
        )
        # the first NumPy call after the optimizer's step is slow (a CPU state change after
        # torch's kernels): A pays it in batch_homophily, the reward arms in the feedback
        fb_net = fb_median - (ref_hom - _median(r.homophily_us))
        fb_mean = (sum(r.reward_us) + sum(r.report_us) + sum(r.learn.calls)) / n_steps
        is_b = r.arm.key == "B"
        rows.append(
            {
                "arm": r.arm.key,
                "name": r.arm.name,
                "spec": r.arm.spec,
                "reward": r.arm.reward,
                "step_us_median": statistics.median(r.step_us),
                "step_us_min": min(r.step_us),
                "step_us_max": max(r.step_us),
                "step_us_rounds": r.step_us,
                "ratio_of_medians": statistics.median(r.step_us) / ref_med,
                "overhead": epochs,
                "median_step_us": statistics.median(r.steps),
                "median_step_us_rounds": r.median_step_us,
                "overhead_median_steps": medians,
                "cpu_step_us_median": statistics.median(r.cpu_step_us),
                "cpu_step_us_rounds": r.cpu_step_us,
                "overhead_cpu": cpu,
                "steps": n_steps,
                "next_us": {"median": _median(r.next_us), "mean": _mean(r.next_us)},
                "select_us": {
                    "median": _median(r.select.calls),
                    "mean": _mean(r.select.calls),
                    "per_step": len(r.select.calls) / n_steps,
                },
                "learn_us": {
                    "median": _median(r.learn.calls),
                    "mean": _mean(r.learn.calls),
                    "per_step": learn_per_step,
                },
                "reward_us": {
                    "median": _median(r.reward_us),
                    "mean": _mean(r.reward_us),
                    "per_step": reward_per_step,
                },
                "report_us": {
                    "median": _median(r.report_us),
                    "mean": _mean(r.report_us),
                    "per_step": report_per_step,
                },
                "homophily_us": {"median": _median(r.homophily_us), "mean": _mean(r.homophily_us)},
                "epoch_end_us_per_step": r.finish_s * 1e6 / n_steps,
                "feedback_us_median": fb_median,
                "feedback_us_mean": fb_mean,
                "feedback_us_net": fb_net,
                "feedback_share_net": fb_net / ref_step_med,
                "feedback_share_median": fb_median / ref_step_med,
                "feedback_share_mean": fb_mean / ref_med,
                "rewards_learned": _rewards_learned(r),
                "verdict": _verdict(epochs["median"], epochs["q1"]) if is_b else None,
                "verdict_median_steps": (
                    _verdict(medians["median"], medians["q1"]) if is_b else None
                ),
            }
        )
    return {"model": model, "rows": rows}


def _pct(d: dict[str, float]) -> str:
    return f"{d['median']:+.1%} ({d['q1']:+.1%} – {d['q3']:+.1%})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--epochs-per-round", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None, help="cut every epoch at this many")
    ap.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated (default {','.join(MODELS)})"
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds of short epochs")
    ap.add_argument("--out-dir", default="bench/results")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.epochs_per_round = 2, 1
        args.max_steps = args.max_steps or 8
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; choose from {', '.join(MODELS)}")
    torch.set_num_threads(args.threads)
    # as graphwalk.train.loop trains: subnormal floats flushed (they slow x86 arithmetic many
    # times, and how many a model holds depends on the batches it was trained on)
    torch.set_flush_denormal(True)

    ds = load_dataset("mnist1d")
    n = len(ds)
    results = []
    load_before = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="gw-bench-learn-") as td:
            t0 = time.perf_counter()
            index = default_index(ds, Path(td) / "index.gw", clusters=None, k=10, seed=args.seed)
            index_s = time.perf_counter() - t0
            n_nodes = index.graph("er").n_nodes
            for model in models:
                print(f"{model}: {len(ARMS)} arms x {args.rounds} rounds ...", flush=True)
                results.append(_bench(model, ds, index, args))
    finally:
        torch.set_flush_denormal(False)

    load_after = os.getloadavg()[0]
    steps_epoch = math.ceil(n / args.batch_size)
    cut = f", epochs cut at {args.max_steps} steps" if args.max_steps else ""
    t1 = Table(
        f"the learned walker's feedback against the same loop without it: mnist1d ({n:,} items, "
        f"{steps_epoch} steps an epoch), batch {args.batch_size}, er graph ({n_nodes} clusters), "
        f"CPU, torch threads: {args.threads}, denormals flushed, Adam; {args.rounds} rounds x "
        f"{args.epochs_per_round} epoch(s) per arm{cut}",
        [
            "model",
            "arm",
            "sampler spec",
            "reward",
            "µs / step, epochs timed (median of rounds)",
            "spread (min–max)",
            "overhead vs A: per-round median (q1–q3)",
            "µs / step, median step",
            "overhead vs A by median steps (q1–q3)",
            "overhead vs A, CPU time",
            f"overhead <= {TARGET:.0%}? (epochs; median steps)",
        ],
    )
    t2 = Table(
        "where the time goes: µs per call (median), timed inside the same runs",
        [
            "model",
            "arm",
            "next() (walk + select + learn)",
            "policy select",
            "policy learn",
            "reward",
            "sampler.report",
            "feedback = reward + report + learn",
            "feedback / A's median step",
            "feedback, means / A's step",
            "batch_homophily",
            "feedback less batch_homophily's saving / A's median step",
            "rewards learned",
        ],
    )
    for res in results:
        for r in res["rows"]:
            verdict = "-"
            if r["arm"] == "A":
                verdict = "reference"
            elif r["verdict"] is not None:
                verdict = f"{r['verdict']}; {r['verdict_median_steps']}"
            t1.add(
                res["model"],
                f"{r['arm']}: {r['name']}",
                r["spec"],
                r["reward"] or "-",
                r["step_us_median"],
                f"{r['step_us_min']:,.0f}–{r['step_us_max']:,.0f}",
                _pct(r["overhead"]),
                r["median_step_us"],
                _pct(r["overhead_median_steps"]),
                f"{r['overhead_cpu']['median']:+.1%}",
                verdict,
            )
            policy = "policy" in r["spec"]
            fb = r["reward"] is not None
            t2.add(
                res["model"],
                f"{r['arm']}: {r['name']}",
                r["next_us"]["median"],
                r["select_us"]["median"] if policy else "-",
                r["learn_us"]["median"] if policy else "-",
                r["reward_us"]["median"] if fb else "-",
                r["report_us"]["median"] if fb else "-",
                r["feedback_us_median"] if fb else "-",
                f"{r['feedback_share_median']:.1%}" if fb else "-",
                f"{r['feedback_share_mean']:.1%}" if fb else "-",
                r["homophily_us"]["median"],
                f"{r['feedback_us_net']:.0f} µs = {r['feedback_share_net']:.1%}" if fb else "-",
                r["rewards_learned"],
            )
    for res in results:
        rows = {r["arm"]: r for r in res["rows"]}
        a, b, e = rows["A"], rows["B"], rows["E"]
        t1.notes.append(
            f"{res['model']}: B (grad-norm + report + exp3s learning) costs "
            f"{_pct(b['overhead'])} of A's step by the epochs timed, "
            f"{_pct(b['overhead_median_steps'])} by the median steps; its parts, timed inside "
            f"the step, {b['feedback_us_median']:.0f} µs a step (medians per call) = "
            f"{b['feedback_share_median']:.1%} of A's median step of "
            f"{a['median_step_us']:.0f} µs; the online policy's per-batch decisions (A against "
            f"the planned walk E): next() {a['next_us']['median']:.0f} against "
            f"{e['next_us']['median']:.0f} µs (medians; E's mean, its epoch plan included: "
            f"{e['next_us']['mean']:.0f} µs), A {-e['overhead']['median']:+.1%} against E's "
            f"step by the epochs timed"
        )
    t1.notes += [
        "the timed step is graphwalk.train.loop's: next batch from the sampler's iterator, "
        "index the in-memory tensors, forward, cross-entropy, zero_grad, backward, "
        "[reward.after_backward], Adam step, LR schedule step, loss read back, "
        "[reward.after_step when the reward is not in yet, sampler.report], batch_homophily; at "
        "each epoch's end [reward.finish() reported, sampler.flush_rewards()]; each arm trains "
        "its own copy of the model (same initialisation) on its own sampler from "
        "graphwalk.train.loop.make_sampler",
        "A is the reference, 'the same loop without it': the exp3s policy decides every batch "
        "but no reward is computed or reported, so it never learns; E is the er walk without a "
        "policy (the epoch walked by Numba at its first batch)",
        "rounds interleave the arms (order rotated each round) after one warm-up epoch each; "
        "'epochs timed': each round's epochs timed whole (epoch ends included) per step; "
        "'overhead vs A' pairs each round with A's same round (step time / A's - 1) and gives "
        "the median and the middle half (q1–q3) of the rounds; 'median steps': the same with "
        "each round's median step (every step timed on its own: robust to the preemptions of "
        "a shared machine, but blind to the rare slow steps, such as E's epoch plan and the "
        "epoch ends); 'CPU time': the epochs timed by the thread's CPU time; a miss of the 5% "
        "target reads 'within noise' when q1 is within it",
        f"index: graphwalk.train.indexing.default_index (k-means, er and exact kNN k=10), built "
        f"once in {index_s:.2f} s",
        f"load average of the machine ({os.cpu_count()} CPUs): {load_before:.2f} at the start, "
        f"{load_after:.2f} at the end; on a shared machine whole rounds can run much slower "
        "than others (other processes' load comes and goes over seconds), which widens the "
        "per-round q1–q3 and can shift a round's median step; the parts in the table below "
        "are the steadier figure",
    ]
    t2.notes += [
        "µs per call, the median of every call in the timed epochs: next() is the sampler's "
        "iterator (the walk, the policy's select, and learn: the sampler hands the rewards that "
        "arrived to the policy at its next decision, the last ones at flush_rewards); policy "
        "select / learn: the policy's own calls, timed by wrapping them; reward: after_backward "
        "+ after_step of a step; sampler.report: one report",
        "feedback = reward + report + learn, each median times its calls per step: what the "
        "learning adds to A's step, measured directly (free of the rounds' noise; it leaves out "
        "the sampler's bookkeeping of rewards and the cache misses the feedback causes in the "
        "rest of the step, which the rounds include); 'means': the same with mean times per "
        "call (preemptions by other processes included) against A's epoch-timed step",
        "batch_homophily (the loop's, after the step): the first NumPy call after the "
        "optimizer's step pays for a change of the CPU's state after torch's kernels (measured "
        "alone: np.arange(10).sum() took 25 µs as the first call after Adam's step, 2 µs as the "
        "second): A and E pay it in batch_homophily, the reward arms in the reward or "
        "sampler.report, whose batch_homophily is then cheaper; 'feedback less "
        "batch_homophily's saving' subtracts the difference from the feedback (the feedback's "
        "marginal cost, as the rounds measure it)",
        "rewards learned: rewards the policy received over the whole run, warm-up included "
        "(A: 0, it never learns; gar's reward arrives one step late and the epoch's last batch "
        "has none)",
    ]
    body = "\n\n".join([t1.markdown(), t2.markdown()])
    print()
    print(body)
    record = Path(args.out_dir) / "learn-overhead.md"
    record_markdown(
        record,
        "the learned walker's overhead per training step (mnist1d, CPU)",
        body,
        command="python bench/learn_overhead.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        data={
            "args": vars(args),
            "target": TARGET,
            "index_s": index_s,
            "load_average": [load_before, load_after],
            "er_nodes": n_nodes,
            "results": results,
        },
    )
    print(f"\nrecorded {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
