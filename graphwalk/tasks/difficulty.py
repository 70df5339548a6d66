"""Difficulty scores for curricula: which items are easy (low score) and which are hard.

- ``"transfer"`` (Hacohen & Weinshall 2019's transfer scoring): one minus the probability a simple
  classifier gives an item's own label, the classifier (multinomial logistic regression on the
  standardised vectors) trained on the other folds of a 5-fold split, so that no item scores
  itself. Mislabelled items get low probabilities: an easy-first order sees them last.
- ``"graph"``: the share of an item's neighbours in the index's item graph (``knn``) whose label
  is another class: items far from other classes' clusters are easy. Costs no training.

Ties are broken by a seeded random jitter smaller than any gap between distinct scores, so the
ranking is a strict order that depends only on the scores and the seed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex

__all__ = ["difficulty_scores", "graph_difficulty", "rank_items", "transfer_difficulty"]


def transfer_difficulty(
    vectors: npt.ArrayLike, labels: npt.ArrayLike, *, seed: int = 0, folds: int = 5
) -> npt.NDArray[np.float64]:
    """``1 - p(label)`` from a logistic regression trained on the other folds (see the module
    docstring)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(vectors, np.float64).reshape(len(np.asarray(labels)), -1)
    y = np.asarray(labels, np.int64)
    counts = np.bincount(y)
    k = int(min(folds, counts[counts > 0].min())) if y.size else 0
    if k < 2:
        raise InputError(
            "transfer scoring needs at least 2 items of every class (a class has "
            f"{int(counts[counts > 0].min()) if y.size else 0}); use score='graph'"
        )
    out = np.empty(y.size, np.float64)
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train, test in split.split(x, y):
        scaler = StandardScaler().fit(x[train])
        clf = LogisticRegression(max_iter=300)
        clf.fit(scaler.transform(x[train]), y[train])
        proba = clf.predict_proba(scaler.transform(x[test]))
        col = {int(c): j for j, c in enumerate(clf.classes_)}
        idx = np.array([col.get(int(c), -1) for c in y[test]])
        p = np.where(idx >= 0, proba[np.arange(test.size), np.maximum(idx, 0)], 0.0)
        out[test] = 1.0 - p
    return out


def graph_difficulty(
    index: GraphIndex, labels: npt.ArrayLike, *, graph: str | None = None
) -> npt.NDArray[np.float64]:
    """The share of each item's neighbours in an item graph of ``index`` with another label."""
    y = np.asarray(labels, np.int64)
    items = [g for g in index.graphs.values() if g.kind == "item"]
    if graph is not None:
        g = index.graph(graph)
        if g.kind != "item":
            raise InputError(
                f"graph scoring needs an item graph (knn), but {graph!r} is over clusters; name "
                "a knn graph"
            )
    elif not items:
        raise InputError(
            "graph scoring needs an item graph (knn) in the index, but it has "
            f"{', '.join(index.graphs) or 'no graphs'}; build one with --graph knn, or use "
            "score='transfer'"
        )
    else:
        g = items[0]
    if y.size != index.n_items:
        raise InputError(
            f"labels have {y.size} items but the index {index.n_items}; give the labels the "
            "index was built from"
        )
    indptr = np.asarray(g.indptr, np.int64)
    nbr = np.asarray(g.indices, np.int64)
    owner = np.repeat(np.arange(y.size), np.diff(indptr))
    other = (y[nbr] != y[owner]).astype(np.float64)
    deg = np.maximum(np.diff(indptr), 1)
    return np.bincount(owner, weights=other, minlength=y.size) / deg


def difficulty_scores(
    score: str,
    labels: npt.ArrayLike,
    *,
    index: GraphIndex | None = None,
    vectors: npt.ArrayLike | None = None,
    graph: str | None = None,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """The ``score`` of every item (``"transfer"`` needs ``vectors``, ``"graph"`` an index with
    an item graph)."""
    if score == "transfer":
        if vectors is None:
            raise InputError(
                "score='transfer' needs the items' vectors (vectors=...); or use score='graph'"
            )
        return transfer_difficulty(vectors, labels, seed=seed)
    if score == "graph":
        if index is None:
            raise InputError("score='graph' needs the index (index=...)")
        return graph_difficulty(index, labels, graph=graph)
    raise InputError(f"score should be 'transfer' or 'graph', but got score={score!r}")


def rank_items(scores: npt.ArrayLike, order: str, *, seed: int = 0) -> npt.NDArray[np.int64]:
    """Each item's rank (0 = first in play) for ``order``: ``easy`` (lowest score first),
    ``hard`` (highest first) or ``random`` (a seeded permutation: the control)."""
    if order not in ("easy", "random", "hard"):
        raise InputError(f"order should be easy, random or hard, but got order={order!r}")
    s = np.asarray(scores, np.float64)
    if not np.isfinite(s).all():
        raise InputError("difficulty scores should be finite numbers; some are NaN or inf")
    rng = np.random.default_rng([int(seed), 0x43555252])  # "CURR"
    if order == "random":
        perm = rng.permutation(s.size)
    else:
        jitter = rng.random(s.size)
        key = s if order == "easy" else -s
        perm = np.lexsort((jitter, key))
    rank = np.empty(s.size, np.int64)
    rank[perm] = np.arange(s.size)
    return rank
