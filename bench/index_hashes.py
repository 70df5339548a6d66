"""SHA-256 of everything `build_index` makes: the proof that a restructuring of the builder kept
behaviour.

For every configuration of a grid over small data (sklearn digits, and synthetic blobs with two
label sets and two vector spaces: ER graphs with and without ``degree``/``p``/``connect``,
``knn-clusters`` and ``knn`` under both metrics and every kNN backend, k-means and label levels,
``graph_level`` and ``cluster_space`` choices, seeds 0 and 1, a write to disk), it hashes what
the index holds: the labels, each level (name, source, space, params, assignment, centroids,
values), each graph (name, kind, level, space, params, CSR arrays and the walk order's arrays),
the build parameters (the step names of ``timings_s``, not their seconds), ``index_stats``, the
written manifest (less its creation time; its table checksums included), the warnings the build
gave and the steps its progress bar counted. Refused arguments are hashed too: the error's type
and message, and that no step ran.

    .venv/bin/python bench/index_hashes.py --out bench/results/index-hashes.json
    ... change the build package ...
    .venv/bin/python bench/index_hashes.py --compare bench/results/index-hashes.json

Exit status 1 when ``--compare`` finds a configuration whose hash differs. About 45 s on 2
cores, most of it NN-descent's compilation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import graphwalk as gw
import graphwalk.build.builder as builder
from graphwalk.index.stats import index_stats


def _blobs(n: int, dim: int, centers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = rng.normal(scale=6.0, size=(centers, dim))
    y = rng.integers(0, centers, size=n)
    return (c[y] + rng.normal(size=(n, dim))).astype(np.float32), y.astype(np.int64)


def _data() -> dict[str, tuple[Any, Any]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    digits = (d.data.astype(np.float32), d.target.astype(np.int64))
    x, y = _blobs(900, 8, 12, 0)
    proj = np.random.default_rng(1).normal(size=(8, 5)).astype(np.float32)
    return {
        "digits": digits,
        "blobs": (x, y),
        # two label sets; two spaces (a second "layer": a random projection of the first)
        "blobs2": (x, {"label": y, "coarse": y // 4}),
        "spaces": ({"input": x, "proj": np.tanh(x @ proj)}, {"label": y}),
    }


def configurations() -> dict[str, tuple[str, dict[str, Any]]]:
    c: dict[str, tuple[str, dict[str, Any]]] = {}
    for s in (0, 1):
        c[f"digits/er/s{s}"] = ("digits", dict(clusters=30, graphs="er", seed=s))
        c[f"digits/knn-exact/s{s}"] = (
            "digits",
            dict(graphs="knn", k=8, knn_backend="exact", seed=s),
        )
        c[f"digits/all/s{s}"] = (
            "digits",
            dict(
                clusters=20,
                groups="labels",
                graphs=["er", "knn-clusters", "knn"],
                k=6,
                knn_backend="exact",
                seed=s,
                out=True,
            ),
        )
        c[f"spaces/all/s{s}"] = (
            "spaces",
            dict(clusters=15, groups="labels", graphs=["knn", "er", "knn-clusters"], k=5, seed=s),
        )
    c["digits/er-degree"] = ("digits", dict(clusters=30, graphs="er", degree=3.5))
    c["digits/er-p"] = ("digits", dict(clusters=30, graphs=["er"], p=0.2, seed=1))
    c["digits/er-noconnect"] = ("digits", dict(clusters=40, graphs="er", degree=1.2, connect=False))
    c["digits/er-connect-sparse"] = ("digits", dict(clusters=40, graphs="er", degree=1.2))
    c["digits/er-degree-clamped"] = ("digits", dict(clusters=8, graphs="er", degree=100))
    for metric in ("l2", "cosine"):
        c[f"digits/knn-clusters-{metric}"] = (
            "digits",
            dict(clusters=25, graphs="knn-clusters", k=4, metric=metric),
        )
        c[f"digits/knn-clusters-{metric}-noconnect"] = (
            "digits",
            dict(clusters=25, graphs="knn-clusters", k=1, metric=metric, connect=False),
        )
        for backend in ("exact", "nndescent", "faiss-hnsw", "auto"):
            c[f"digits/knn-{backend}-{metric}"] = (
                "digits",
                dict(clusters=12, graphs="knn", k=7, metric=metric, knn_backend=backend),
            )
    c["digits/knn-recall-sample"] = ("digits", dict(graphs="knn", k=5, recall_sample=50, seed=3))
    c["digits/knn-clusters-k-capped"] = ("digits", dict(clusters=5, graphs="knn-clusters", k=10))
    c["digits/labels-only"] = ("digits", dict(groups=["labels"], graphs=["er", "knn-clusters"]))
    c["digits/labels-by-name"] = ("digits", dict(groups="label", graphs="er", k=3))
    c["digits/kmeans-and-labels"] = (
        "digits",
        dict(clusters=10, groups="labels", graphs=["er", "knn-clusters"]),
    )
    c["digits/graph-level-labels"] = (
        "digits",
        dict(clusters=10, groups="labels", graphs=["knn-clusters", "er"], graph_level="labels"),
    )
    c["digits/levels-only"] = ("digits", dict(clusters=10, groups="labels", graphs=()))
    c["digits/progress"] = (
        "digits",
        dict(clusters=10, graphs=["er", "knn"], k=4, knn_backend="exact", progress=True, out=True),
    )
    c["digits/extra-params"] = (
        "digits",
        dict(clusters=6, graphs="er", extra_params={"dataset": "digits", "note": [1, 2]}, out=True),
    )
    c["blobs/knn-only"] = ("blobs", dict(graphs="knn", k=5))
    c["blobs/knn-and-kmeans"] = ("blobs", dict(clusters=9, graphs=["knn", "er"], k=5, seed=1))
    c["blobs/duplicate-kinds"] = ("blobs", dict(clusters=9, graphs=["er", "knn", "er"], k=4))
    c["blobs2/two-label-sets"] = ("blobs2", dict(groups="labels", graphs=["er", "knn-clusters"]))
    c["blobs2/graph-level-coarse"] = (
        "blobs2",
        dict(clusters=7, groups=["label", "coarse"], graphs="er", graph_level="coarse", k=2),
    )
    c["blobs2/one-set-named"] = ("blobs2", dict(groups="coarse", graphs="knn-clusters", k=2))
    c["blobs2/labels-and-name"] = ("blobs2", dict(groups=["coarse", "labels"], graphs="er"))
    c["spaces/cluster-space-proj"] = (
        "spaces",
        dict(clusters=10, graphs=["er", "knn"], k=4, cluster_space="proj", metric="cosine"),
    )
    c["spaces/knn-nndescent"] = ("spaces", dict(graphs="knn", k=4, knn_backend="nndescent"))
    c["spaces/labels-graph-level"] = (
        "spaces",
        dict(clusters=6, groups="labels", graphs="knn-clusters", graph_level="kmeans", k=3),
    )
    # warned about (the warnings are part of the hash)
    c["warn/p-without-er"] = ("blobs", dict(graphs="knn", k=3, p=0.5))
    c["warn/degree-without-er"] = ("blobs", dict(clusters=5, graphs="knn-clusters", degree=2.0))
    c["warn/graph-level-unused"] = (
        "blobs",
        dict(clusters=4, graphs="knn", k=3, graph_level="kmeans"),
    )
    # refused (the error's type and message are the hash)
    bad: dict[str, dict[str, Any]] = {
        "graphs-type": dict(graphs=5),
        "groups-type": dict(groups=[1]),
        "metric": dict(clusters=3, metric="dot"),
        "backend": dict(graphs="knn", knn_backend="annoy"),
        "kind": dict(clusters=3, graphs=["er", "walk"]),
        "k-float": dict(graphs="knn", k=10.0),
        "k-zero": dict(graphs="knn", k=0),
        "recall-sample": dict(graphs="knn", recall_sample=0),
        "seed-negative": dict(clusters=3, seed=-1),
        "seed-large": dict(clusters=3, seed=2**32),
        "clusters-zero": dict(clusters=0),
        "clusters-bool": dict(clusters=True),
        "degree-zero": dict(clusters=3, degree=0),
        "degree-nan": dict(clusters=3, degree=float("nan")),
        "p-large": dict(clusters=3, p=1.5),
        "degree-and-p": dict(clusters=3, degree=2.0, p=0.1),
        "groups-no-labels": dict(groups="labels"),
        "groups-unknown": dict(groups="nope", labels=True),
        "cluster-space": dict(clusters=3, cluster_space="layer9"),
        "clusters-too-many": dict(clusters=10**6),
        "er-without-level": dict(graphs="er"),
        "knn-clusters-without-level": dict(graphs=["knn", "knn-clusters"]),
        "k-too-large": dict(graphs="knn", k=10**6),
        "graph-level-unknown": dict(clusters=3, graph_level="labels"),
        "out-exists": dict(clusters=3, out="exists"),
        "vectors-nan": dict(clusters=3, vectors="nan"),
        "vectors-1d": dict(clusters=3, vectors="1d"),
        "vectors-zero-cosine": dict(clusters=3, vectors="zero", metric="cosine"),
        "vectors-empty-mapping": dict(clusters=3, vectors="empty"),
        "vectors-counts-differ": dict(clusters=3, vectors="ragged"),
        "labels-length": dict(clusters=3, labels="short"),
        "labels-float": dict(clusters=3, labels="float", groups="labels"),
        "nan-and-bad-level": dict(clusters=3, vectors="nan", graph_level="x"),
        "k-and-metric": dict(graphs="knn", k=0, metric="dot"),
    }
    for name, kw in bad.items():
        c[f"refused/{name}"] = ("blobs", {"refused": True, **kw})
    return c


class _Bar:
    """Stands in for the build's tqdm bar and records what it is told."""

    def __init__(self, log: list[Any], **kw: Any) -> None:
        self.log = log
        log.append(("bar", sorted(kw.items())))

    def set_postfix_str(self, s: str) -> None:
        self.log.append(("step", s))

    def update(self, n: int) -> None:
        self.log.append(("update", n))

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self.log.append(("close",))


def _arr(h: Any, a: Any) -> None:
    a = np.ascontiguousarray(a)
    h.update(repr((a.dtype.str, a.shape)).encode())
    h.update(a.tobytes())


def _untimed(obj: Any) -> Any:
    """``obj`` with every duration (a key ending in ``_s``: ``recall_check_s``, ``timings_s``)
    replaced by what it names: the seconds differ from run to run, the steps timed do not."""
    if isinstance(obj, dict):
        return {
            k: (list(v) if isinstance(v, dict) else "s")
            if isinstance(k, str) and k.endswith("_s")
            else _untimed(v)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [_untimed(v) for v in obj]
    return obj


def _json(h: Any, obj: Any) -> None:
    h.update(json.dumps(_untimed(obj), sort_keys=True, default=repr).encode())


def _hash_index(idx: gw.GraphIndex, h: Any, tmp: Path) -> None:
    _json(h, [idx.n_items, idx.spaces, list(idx.labels)])
    for name, y in idx.labels.items():
        h.update(name.encode())
        _arr(h, y)
    for name, lv in idx.levels.items():
        _json(h, [name, lv.name, lv.source, lv.space, lv.params])
        for a in (lv.assignment, lv.centroids, lv.values):
            _arr(h, a)
    for name, g in idx.graphs.items():
        _json(h, [name, g.describe()])
        for a in (g.indptr, g.indices, g.weights):
            _arr(h, a)
        if g.walk is not None:
            w = g.walk
            h.update(w.method.encode())
            for a in (w.order, w.position, w.indptr, w.indices, w.weights):
                _arr(h, a)
    _json(h, idx.build_params)
    stats = index_stats(idx)
    stats["path"] = stats["path"] is not None
    _json(h, stats)
    if idx.manifest:
        m = json.loads((tmp / "o.gw" / "manifest.json").read_text())
        assert m["build"]["timings_s"].keys() == idx.build_params["timings_s"].keys()
        assert m == json.loads(json.dumps(idx.manifest)), "the manifest on disk is behind"
        m.pop("created_utc")
        _json(h, m)
        again = gw.GraphIndex.load(tmp / "o.gw")
        assert again.graphs.keys() == idx.graphs.keys() and again.levels.keys() == idx.levels.keys()


def _bad_input(kw: dict[str, Any], data: dict[str, tuple[Any, Any]], tmp: Path) -> dict[str, Any]:
    x, y = data["blobs"]
    vectors: Any = x
    v = kw.pop("vectors", None)
    if v == "nan":
        vectors = x.copy()
        vectors[5, 1] = np.nan
    elif v == "1d":
        vectors = x[:, 0]
    elif v == "zero":
        vectors = x.copy()
        vectors[3] = 0
    elif v == "empty":
        vectors = {}
    elif v == "ragged":
        vectors = {"a": x, "b": x[:-1]}
    lab = kw.pop("labels", None)
    labels: Any = None
    if lab is True:
        labels = y
    elif lab == "short":
        labels = y[:-2]
    elif lab == "float":
        labels = y + 0.5
    if kw.get("out") == "exists":
        (tmp / "o.gw").mkdir()
        kw["out"] = tmp / "o.gw"
    return dict(kw, vectors=vectors, labels=labels)


def _run(
    data: dict[str, tuple[Any, Any]], dataset: str, kw: dict[str, Any], tmp: Path
) -> tuple[str, str]:
    kw = dict(kw)
    h = hashlib.sha256()
    log: list[Any] = []
    refused = kw.pop("refused", False)
    if refused:
        kw = _bad_input(kw, data, tmp)
        vectors, labels = kw.pop("vectors"), kw.pop("labels")
    else:
        vectors, labels = data[dataset]
    if kw.get("out") is True:
        kw["out"] = tmp / "o.gw"
    ran: list[str] = []

    def spy(fn: Callable[..., Any], what: str) -> Callable[..., Any]:
        def wrapped(*a: Any, **k: Any) -> Any:
            ran.append(what)
            return fn(*a, **k)

        return wrapped

    saved = {n: getattr(builder, n) for n in ("kmeans_level", "label_level", "progress_bar")}
    builder.kmeans_level = spy(saved["kmeans_level"], "kmeans")
    builder.label_level = spy(saved["label_level"], "labels")
    builder.progress_bar = lambda **k: _Bar(log, **k) if k["enabled"] else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                idx = gw.build_index(vectors, labels=labels, **kw)
            except Exception as exc:  # a refusal is the configuration's result
                if not refused:
                    raise
                msg = str(exc).replace(str(tmp), "<tmp>")
                _json(h, ["refused", type(exc).__name__, msg, ran])
                return h.hexdigest(), f"{type(exc).__name__}: {msg}"
            if refused:
                raise AssertionError(f"not refused: {kw}")
        _hash_index(idx, h, tmp)
        notes = [
            (w.category.__name__, str(w.message))
            for w in caught
            if not issubclass(w.category, DeprecationWarning)
        ]
        _json(h, ["warnings", notes, "bar", log, "ran", ran])
        return h.hexdigest(), "; ".join(m for _, m in notes)
    finally:
        for name, attr in saved.items():
            setattr(builder, name, attr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="write the hashes here (JSON)")
    p.add_argument("--compare", type=Path, default=None, help="hashes recorded before (JSON)")
    p.add_argument("--only", default=None, help="configurations whose name contains this")
    p.add_argument("-v", "--verbose", action="store_true", help="print warnings and errors")
    a = p.parse_args(argv)
    data = _data()
    print("SHA-256 (first 16 hex digits) of each index built:", flush=True)
    result: dict[str, str] = {}
    for name, (dataset, kw) in configurations().items():
        if a.only and a.only not in name:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            result[name], note = _run(data, dataset, kw, Path(tmp))
        print(f"{result[name][:16]}  {name}" + (f"  [{note}]" if a.verbose and note else ""))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    if a.compare:
        before = json.loads(a.compare.read_text())
        diff = [k for k in result if k in before and before[k] != result[k]]
        missing = [k for k in before if k not in result]
        same = sum(1 for k in result if k in before and before[k] == result[k])
        print(f"identical: {same}; different: {len(diff)} {diff}; not run: {len(missing)}")
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
