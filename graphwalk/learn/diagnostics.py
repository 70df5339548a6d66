"""What a learned walker did: reward and entropy curves, visit counts, and a visit heat map over
the graph, drawn on the same 2-D map of centroids as ``graphwalk inspect --plot``.

:func:`policy_report` turns a policy's :meth:`diagnostics` and a run's per-step log into numbers
(how unequal the visits are, which nodes starved) and :func:`plot_policy` into one PNG.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk._extras import require
from graphwalk._files import atomic_save
from graphwalk.index.artifact import GraphIndex

__all__ = ["plot_policy", "policy_report"]


def _gini(x: npt.NDArray[np.float64]) -> float:
    """0: every node visited equally often; near 1: all visits on one node."""
    if x.size == 0 or x.sum() <= 0:
        return 0.0
    s = np.sort(x)
    n = s.size
    return float((2 * np.arange(1, n + 1) - n - 1).dot(s) / (n * s.sum()))


def _node_values(index: GraphIndex, graph: str, visits: npt.NDArray[Any]) -> tuple[Any, Any, str]:
    """Visits per cluster of the level drawn on the map, and that level's centroids."""
    g = index.graph(graph)
    if g.kind == "cluster":
        assert g.level is not None
        return visits.astype(np.float64), index.levels[g.level].centroids, g.level
    # item graphs: visits of each item summed over the k-means clusters (or the first level)
    if not index.levels:
        return visits.astype(np.float64), None, ""
    name = "kmeans" if "kmeans" in index.levels else next(iter(index.levels))
    lv = index.levels[name]
    per = np.bincount(lv.assignment, weights=visits, minlength=lv.n_clusters)
    return per.astype(np.float64), lv.centroids, name


def policy_report(diagnostics: Mapping[str, Any], *, floor: int | None = None) -> dict[str, Any]:
    """Numbers about the visits: their spread (min, max, Gini), the nodes never in a community
    (starved) and, with a coverage ``floor``, how many were forced."""
    visits = np.asarray(diagnostics.get("community_visits", diagnostics.get("visits", [])))
    roots = np.asarray(diagnostics.get("visits", []))
    return {
        "nodes": int(visits.size),
        "decisions": int(diagnostics.get("decisions", 0)),
        "rewards_seen": int(diagnostics.get("rewards_seen", 0)),
        "skipped_rewards": int(diagnostics.get("skipped", 0)),
        "forced": int(diagnostics.get("forced", 0)),
        "floor": floor,
        "root_visits": {
            "min": int(roots.min()) if roots.size else 0,
            "max": int(roots.max()) if roots.size else 0,
            "gini": round(_gini(roots.astype(np.float64)), 4),
        },
        "community_visits": {
            "min": int(visits.min()) if visits.size else 0,
            "max": int(visits.max()) if visits.size else 0,
            "gini": round(_gini(visits.astype(np.float64)), 4),
            "never": int((visits == 0).sum()),
        },
    }


def _smooth(y: npt.NDArray[np.float64], w: int) -> npt.NDArray[np.float64]:
    if y.size < w or w <= 1:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    return np.asarray((c[w:] - c[:-w]) / w)


def plot_policy(
    diagnostics: Mapping[str, Any],
    steps: Mapping[str, Sequence[Any]],
    index: GraphIndex,
    graph: str,
    path: str | os.PathLike[str],
    *,
    title: str = "",
) -> Path:
    """Four panels: the raw reward per step (and its moving mean), the entropy of the policy's
    choices, the visit counts per node (sorted), and the visit heat map over the 2-D PCA map of
    the centroids with the graph's edges. ``steps`` holds the run's per-step ``step``, ``reward``
    and ``entropy`` (``None`` where absent). Written atomically; returns the path."""
    require("matplotlib", "the learned walker's plot (policy.png)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 9), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    st = np.asarray(steps.get("step", []), np.float64)

    def series(key: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        vals = np.array([np.nan if v is None else float(v) for v in steps.get(key, [])])
        ok = np.isfinite(vals)
        return st[: vals.size][ok], vals[ok]

    ax = axes[0, 0]
    x, r = series("reward")
    if r.size:
        ax.plot(x, r, ".", ms=2, alpha=0.3, color="tab:blue", label="reward (raw)")
        w = max(1, r.size // 50)
        ax.plot(x[w - 1 :] if r.size >= w else x, _smooth(r, w), color="tab:blue", label="mean")
        ax.legend(loc="best", fontsize=8)
    ax.set(xlabel="step", ylabel="reward", title="reward per batch")
    ax = axes[0, 1]
    x, h = series("entropy")
    if h.size:
        w = max(1, h.size // 50)
        ax.plot(x[w - 1 :] if h.size >= w else x, _smooth(h, w), color="tab:orange")
    ax.set(xlabel="step", ylabel="entropy (nats)", title="entropy of the walker's choices")

    visits = np.asarray(diagnostics.get("community_visits", diagnostics.get("visits", [])))
    ax = axes[1, 0]
    if visits.size:
        order = np.sort(visits)[::-1]
        ax.bar(np.arange(order.size), order, width=1.0, color="tab:green")
        ax.axhline(order.mean(), ls="--", color="k", lw=1, label=f"mean {order.mean():.1f}")
        never = int((visits == 0).sum())
        ax.set_title(f"visits per node, sorted ({never} never visited)")
        ax.legend(loc="best", fontsize=8)
    ax.set(xlabel="node (by visits)", ylabel="batches whose community held it")

    ax = axes[1, 1]
    values, centroids, level = _node_values(index, graph, visits)
    if centroids is not None and len(centroids) >= 2:
        c = np.asarray(centroids, np.float64)
        c = c - c.mean(0)
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        xy = c @ vt[:2].T if vt.shape[0] >= 2 else np.c_[c @ vt[:1].T, np.zeros(len(c))]
        g = index.graph(graph)
        if g.kind == "cluster":
            src = np.repeat(np.arange(g.n_nodes), np.diff(g.indptr))
            for a, b in zip(src[:2000], g.indices[:2000], strict=False):
                ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="0.85", lw=0.5, zorder=0)
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=40, cmap="viridis", zorder=1)
        fig.colorbar(sc, ax=ax, label="visits")
        ax.set_title(f"visits on the map of {level} centroids (PCA)")
    else:
        ax.set_title("no centroids to map")
    fig.suptitle(title or "learned walker")
    fig.tight_layout()
    return atomic_save(path, fig.savefig)
