"""What a walk's batches are: label homophily per tenth of an epoch, against random batches and
against the plain reference walk (:mod:`graphwalk.walk.reference`), for ``graphwalk bench`` and the
benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.benchmark import Table
from graphwalk.homophily import homophily
from graphwalk.index.artifact import GraphIndex

__all__ = ["TENTHS", "compare_lifts", "homophily_by_tenth", "homophily_table", "profile_homophily"]

TENTHS = 10


def homophily_by_tenth(
    batches: Sequence[Sequence[int] | npt.NDArray[np.integer]], labels: npt.ArrayLike
) -> dict[str, Any]:
    """Label homophily of an epoch's batches, per tenth of the epoch, against random batches.

    A batch's homophily is the share of same-label pairs among its pairs (batches of one item have
    no pairs and are skipped). A batch belongs to tenth ``floor(10 * (items before it + size / 2) /
    total items)`` (0-based). The random level is the same share for a uniformly random batch of
    the walked items, ``sum_c n_c (n_c - 1) / (n (n - 1))``; the lift is homophily minus it.

    Args:
        batches: the epoch's batches of item ids, in order.
        labels: one int label per item id.

    Returns:
        ``tenths`` (mean batch homophily per tenth, ``None`` where a tenth has no batch of two or
        more items), ``lift`` (the same minus ``random``), ``batches`` (counted batches per tenth),
        ``random``, ``overall`` (mean over all counted batches), ``overall_lift``, ``n_items``,
        ``n_batches`` and ``sq`` (per tenth, the sum of squared batch homophilies: for standard
        errors).
    """
    y = np.asarray(labels)
    sizes = [len(b) for b in batches]
    total = sum(sizes)
    sums = [0.0] * TENTHS
    sq = [0.0] * TENTHS
    counts = [0] * TENTHS
    before = 0
    for b, m in zip(batches, sizes, strict=True):
        # floor(10 * (before + m / 2) / total) in integers
        tenth = min(TENTHS - 1, (2 * TENTHS * before + TENTHS * m) // (2 * total))
        before += m
        h = homophily(y[np.asarray(b, dtype=np.int64)])
        if h is None:  # a batch of one item has no pairs
            continue
        sums[tenth] += h
        sq[tenth] += h * h
        counts[tenth] += 1
    walked = np.concatenate([np.zeros(0, np.int64), *(np.asarray(b, np.int64) for b in batches)])
    r = homophily(y[walked])
    rand = float("nan") if r is None else r
    tenths = [s / c if c else None for s, c in zip(sums, counts, strict=True)]
    overall = sum(sums) / sum(counts) if sum(counts) else None
    return _result(tenths, counts, sq, rand, overall, n_items=total, n_batches=len(sizes))


def _result(
    tenths: list[float | None],
    counts: list[int],
    sq: list[float],
    rand: float,
    overall: float | None,
    **extra: Any,
) -> dict[str, Any]:
    """The figures of :func:`homophily_by_tenth` (one epoch or several pooled)."""
    return {
        "tenths": tenths,
        "lift": [None if h is None else h - rand for h in tenths],
        "batches": counts,
        "random": rand,
        "overall": overall,
        "overall_lift": None if overall is None else overall - rand,
        "sq": sq,
        **extra,
    }


def _se(res: dict[str, Any], t: int) -> float:
    """Standard error of the mean batch homophily of tenth ``t`` (0 with under 2 batches)."""
    if "sq" not in res or "batches" not in res:
        return 0.0
    c = res["batches"][t]
    if c < 2:
        return 0.0
    mean = res["tenths"][t]
    var = max(0.0, (res["sq"][t] - c * mean * mean) / (c - 1))
    return float(np.sqrt(var / c))


def compare_lifts(
    ours: dict[str, Any], reference: dict[str, Any], *, target: float = 0.9
) -> dict[str, Any]:
    """Compare two :func:`homophily_by_tenth` results: ``ours``'s lift over random as a share of
    ``reference``'s, per tenth.

    The target is met when, in every tenth but the last (the 10th) where both have batches,
    ``ours``'s lift is at least ``target`` times the reference's. A tenth where the reference has
    no lift (``<= 0``) has no ratio (``None``) and counts as met. Each ratio comes with its
    standard error (from the batches' spread, by the delta method): where a ratio misses the
    target by less than two standard errors the verdict is ``within noise`` (pool more epochs),
    not a failure.

    Returns:
        ``ratio`` and ``ratio_se`` per tenth (``None`` where empty or undefined), ``met`` per
        tenth (``None`` where empty), ``target``, ``all_met`` (over the tenths checked),
        ``noise`` (the tenths that miss within two standard errors) and ``verdict``
        (``"yes"``, ``"within noise"`` or ``"NO"``).
    """
    ratio: list[float | None] = []
    ratio_se: list[float | None] = []
    met: list[bool | None] = []
    for t, (a, r) in enumerate(zip(ours["lift"], reference["lift"], strict=True)):
        if a is None or r is None:
            ratio.append(None)
            ratio_se.append(None)
            met.append(None)
        elif r <= 0:
            ratio.append(None)
            ratio_se.append(None)
            met.append(True)
        else:
            q = a / r
            ratio.append(q)
            sa, sr = _se(ours, t), _se(reference, t)
            ratio_se.append(abs(q) * float(np.hypot(sa / a, sr / r)) if a else sr / r)
            met.append(a >= target * r - 1e-12)  # a ratio of exactly ``target`` is met
    checked = [m for m in met[: TENTHS - 1] if m is not None]
    all_met = bool(checked) and all(checked)
    noise = [
        t
        for t in range(TENTHS - 1)
        if met[t] is False and (ratio[t] or 0.0) + 2 * (ratio_se[t] or 0.0) >= target
    ]
    failed = [t for t in range(TENTHS - 1) if met[t] is False and t not in noise]
    verdict = "yes" if all_met else ("within noise" if not failed else "NO")
    return {
        "ratio": ratio,
        "ratio_se": ratio_se,
        "met": met,
        "target": target,
        "all_met": all_met,
        "noise": noise,
        "verdict": verdict,
    }


def homophily_table(hom: dict[str, Any], title: str) -> Table:
    """The ``"homophily"`` part of :func:`profile_sampler` as a table: one row per walk with its
    mean batch homophily in tenths 1-10 of the epoch, the random level and the mean over the
    epoch; then, per item graph, the ratio of the sampler's lift over random to the reference's,
    and whether the target is met (:func:`compare_lifts`)."""
    t = Table(title, ["walk", *(str(i + 1) for i in range(TENTHS)), "random", "epoch", "seconds"])

    def cell(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    for r in hom["rows"]:
        t.add(
            r["sampler"],
            *(cell(h) for h in r["tenths"]),
            cell(r["random"]),
            cell(r["overall"]),
            f"{r['seconds']:.3f}",
        )
    for c in hom["checks"]:
        t.add(
            f"lift / reference lift ({c['graph']}, {c['reference']} move)",
            *("-" if v is None else f"{v:.2f}" for v in c["ratio"]),
            "",
            (
                f">= {c['target']:.2f} in 1-{TENTHS - 1}: {c.get('verdict', 'yes' if c['all_met'] else 'NO')}"
                if c.get("is_target", True)
                else "ablation (no target)"
            ),
            "",
        )
    t.notes.append(
        f"homophily: share of same-{hom['labels']!r} pairs in a batch, averaged over the batches "
        "of each tenth of the epoch; random: the same share for uniformly random batches; lift: "
        "homophily - random"
    )
    return t


def _pooled(results: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`homophily_by_tenth` of several epochs as one: per tenth, the mean over all their
    batches; the random level and the totals averaged over the epochs."""
    if len(results) == 1:
        return results[0]
    counts = [sum(r["batches"][t] for r in results) for t in range(TENTHS)]
    tenths = [
        sum(r["tenths"][t] * r["batches"][t] for r in results if r["batches"][t]) / c if c else None
        for t, c in enumerate(counts)
    ]
    sq = [sum(r.get("sq", [0.0] * TENTHS)[t] for r in results) for t in range(TENTHS)]
    rand = float(np.mean([r["random"] for r in results]))
    n_counted = sum(counts)
    overall = (
        sum(h * c for h, c in zip(tenths, counts, strict=True) if h is not None) / n_counted
        if n_counted
        else None
    )
    return _result(
        tenths,
        counts,
        sq,
        rand,
        overall,
        n_items=float(np.mean([r["n_items"] for r in results])),
        n_batches=float(np.mean([r["n_batches"] for r in results])),
        epochs=len(results),
    )


def profile_homophily(
    index: GraphIndex,
    graph: str,
    *,
    batch_size: int = 256,
    labels: str | None = None,
    epochs: int = 1,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Label homophily per tenth of an epoch (:func:`homophily_by_tenth`) of the walk sampler over
    ``graph`` and, on an item graph, of the reference walk
    (:func:`graphwalk.reference.reference_item_batches`, once per ROOT ``move``) given the same
    batch sizes, with the ratio of their lifts over random (:func:`compare_lifts`).

    Args:
        index: an index with labels (``None`` is returned without).
        graph: the graph walked.
        batch_size: as for :class:`~graphwalk.GraphWalkBatchSampler` (``mix=0``, no restart).
        labels: the label set (default ``"label"`` if present, else the first).
        epochs: epochs pooled per tenth (epochs ``0..epochs-1`` of the sampler with ``seed``, the
            reference with seeds ``seed..seed+epochs-1``).

    Returns:
        ``labels``, ``rows`` (one per walk: ``sampler``, ``graph``, ``seconds`` spent walking its
        epochs, the reference's ``move``, and the figures of :func:`homophily_by_tenth`) and, on
        item graphs, ``checks`` (per reference move, :func:`compare_lifts` of the sampler
        against it, with ``graph`` and ``reference``).
    """
    from graphwalk.walk.reference import MOVES, reference_item_batches
    from graphwalk.walk.sampler import GraphWalkBatchSampler

    if not index.labels:
        return None
    lab = labels or ("label" if "label" in index.labels else next(iter(index.labels)))
    y = index.labels[lab]
    g = index.graph(graph)
    s = GraphWalkBatchSampler(index, min(batch_size, index.n_items), graph=graph, seed=seed)
    ours: list[dict[str, Any]] = []
    sizes: list[list[int]] = []
    seconds = 0.0
    for e in range(epochs):
        s.set_epoch(e)
        t0 = time.perf_counter()
        batches = list(s)
        seconds += time.perf_counter() - t0
        sizes.append([len(b) for b in batches])
        ours.append(homophily_by_tenth(batches, y))
    rows = [
        {
            "sampler": f"GraphWalkBatchSampler ({graph}, {g.kind})",
            "graph": graph,
            "seconds": seconds,
            **_pooled(ours),
        }
    ]
    out: dict[str, Any] = {"labels": lab, "rows": rows}
    if g.kind == "item":
        out["checks"] = []
        tiny = np.array([0, 1, 2], np.int64), np.array([1, 0], np.int32), np.ones(2, np.float32)
        for move in MOVES:  # compile (or load from Numba's cache) before the timed runs
            reference_item_batches(*tiny, [1, 1], move=move)
        for move in MOVES:
            ref = []
            seconds = 0.0
            for e in range(epochs):
                t0 = time.perf_counter()
                ref_batches = reference_item_batches(
                    g.indptr, g.indices, g.weights, sizes[e], seed=seed + e, move=move
                )
                seconds += time.perf_counter() - t0
                ref.append(homophily_by_tenth(ref_batches, y))
            row = {
                "sampler": f"reference BFS ({graph}, {move} move)",
                "graph": graph,
                "move": move,
                "seconds": seconds,
                **_pooled(ref),
            }
            rows.append(row)
            out["checks"].append(
                {
                    "graph": graph,
                    "reference": move,
                    "is_target": move == MOVES[0],  # the other move is an ablation
                    **compare_lifts(rows[0], row),
                }
            )
    return out
