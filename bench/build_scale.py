"""The cost of growing: the sharded build's stages at several sizes, in process and on Ray, a
cost model fitted to them, and its predictions beside the published anchors.

For each size, clustered 64-d vectors (bench/data.py) are written as Parquet shards of 250,000
rows, then indexed (a k-means level of n/1,000 clusters, an ER graph over it, the item kNN graph,
k=10) by ``graphwalk.build.shards.build_sharded_index`` in a fresh process, once with the local
engine and once on Ray (``num_cpus`` = this machine's CPUs), with the same ``--worker-memory``
(so the number of partitions grows with the items and each partition's kNN stays the same
size). Recorded per run: each stage's seconds, the driver's peak memory per stage, recall
against exact search on 1,000 items, the partitions, and whether both engines built the same
index (the fingerprint of its tables).

The cost models, per engine: each stage's seconds fitted as ``a + b * n`` over the sizes
(non-negative least squares), and the same with a k-means term in the sample stage
(``c * rows * centroids``: the driver's k-means trains on ``max(100,000, 256 x clusters)`` rows,
so with n/1,000 clusters it grows as n^2). The distributed stages (assign, partition kNN, merge)
divide by the workers; the sample stage (its k-means) and the driver's (scan, finish, write) do
not. Each model's error is stated on the largest size measured, fitted without it. Predictions
for 100M and 1B items at 64 and 768 dimensions (the distance work scales with the dimension) on
N workers of one CPU each, with n/1,000 clusters and with 10,000, are set beside autofaiss on
Spark (5.55B x 768 in 6 h on 10 x 16-core nodes) and faiss's distributed k-means (50M points to
1M centroids in 899 s). ``--merge`` adds the runs of an earlier record, so that one size can be
measured at a time; each run says when and at which commit it was made.

    python bench/build_scale.py                          # 300k, 1M, 3M (about 55 min on 2 cores)
    python bench/build_scale.py --sizes 10000000 --merge bench/results/build-scale.json
                                                         # 10M added to the record (about 2 h)
    python bench/build_scale.py --render --merge bench/results/build-scale.json   # tables only
    python bench/build_scale.py --sizes 100000,300000    # quick
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from graphwalk.benchmark import Table  # noqa: E402

STAGES = ["scan", "sample", "assign", "partition_knn", "merge", "finish", "write"]
PARALLEL = {"assign", "partition_knn", "merge"}
SHARD_ROWS = 250_000


def write_shards(n: int, dim: int, folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from data import clustered_vectors

    folder.mkdir(parents=True, exist_ok=True)
    x, _ = clustered_vectors(n, dim, centers=max(10, n // 1000), seed=0)
    for i, s in enumerate(range(0, n, SHARD_ROWS)):
        xs = x[s : s + SHARD_ROWS]
        col = pa.FixedSizeListArray.from_arrays(pa.array(xs.reshape(-1)), dim)
        pq.write_table(pa.table({"emb": col}), folder / f"part-{i:05d}.parquet")


def child(args: argparse.Namespace) -> dict:
    """One build in this (fresh) process."""
    from graphwalk.build.shards import build_sharded_index

    n = args.n
    kw = {}
    if args.engine == "ray":
        import ray

        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        kw["engine"] = "ray"
    idx = build_sharded_index(
        args.shards,
        out=args.out,
        clusters=max(10, n // 1000),
        graphs=["knn", "er"],
        k=10,
        worker_memory=args.worker_memory,
        refine=args.refine if args.refine == "auto" else int(args.refine),
        knn_backend=args.knn_backend,
        seed=0,
        overwrite=True,
        **kw,
    )
    sh = idx.build_params["sharded"]
    g = idx.graphs["knn"]
    return {
        "n": n,
        "engine": args.engine,
        "timings": idx.build_params["timings_s"],
        "peak_rss_mib": sh["peak_rss_mib"],
        "partitions": sh["partitions"]["partitions"],
        "largest_partition": sh["partitions"]["sizes"]["max"],
        "largest_estimate_mib": sh["partitions"]["tried"][-1]["bytes"] / 2**20,
        "knn_task_peak_mib": sh["partitions"].get("knn_task_peak_mib"),
        "knn_methods": sh["partitions"].get("knn_methods"),
        "recall": g.params["recall"],
        "refine_rows_changed": sh["counts"].get("refine_rows_changed"),
        "recall_by_round": g.params.get("recall_by_round"),
        "workers": sh["workers"],
        "fingerprint": idx.fingerprint,
        "settings": {k: getattr(args, k) for k in SETTINGS},
    }


def run_child(n: int, engine: str, shards: Path, out: Path, a: argparse.Namespace) -> dict:
    cmd = [
        sys.executable, __file__, "--child", "--n", str(n), "--engine", engine,
        "--shards", str(shards), "--out", str(out), "--worker-memory", a.worker_memory,
        "--refine", str(a.refine), "--cpus", str(a.cpus), "--knn-backend", a.knn_backend,
        "--dim", str(a.dim),
    ]  # fmt: skip
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


SETTINGS = ("dim", "worker_memory", "refine", "cpus", "knn_backend")


def clusters_of(n: float) -> float:
    """The benchmark's k-means level: n/1,000 clusters (at least 10)."""
    return max(10.0, n // 1000)


#: each model's terms per stage: "linear" is a + b n everywhere; "clusters" adds what grows with
#: the clusters: the driver's k-means (rows x centroids: it trains on max(100,000, 256 x
#: clusters) rows, at most all) and the assignment of every item to its nearest centroid
TERMS = {
    "linear": {s: ["1", "n"] for s in STAGES},
    "clusters": {
        **{s: ["1", "n"] for s in STAGES},
        "sample": ["1", "n", "rows x clusters"],
        "assign": ["1", "n", "n x clusters"],
    },
}


def term(name: str, n: float, clusters: float | None = None) -> float:
    c = clusters_of(n) if clusters is None else clusters
    if name == "1":
        return 1.0
    if name == "n":
        return n
    if name == "rows x clusters":
        return min(n, max(100_000.0, 256.0 * c)) * c
    if name == "n x clusters":
        return n * c
    raise ValueError(name)


def fit(terms: list[str], ns: list[int], ts: list[float]) -> list[float]:
    """Non-negative least squares of seconds on the terms (columns scaled to one so that none
    dominates); a single point fits the last term through it."""
    from scipy.optimize import nnls

    X = np.asarray([[term(t, n) for t in terms] for n in ns], float)
    y = np.asarray(ts, float)
    if len(ns) == 1:
        coef = np.zeros(X.shape[1])
        coef[-1] = y[0] / X[0, -1]
        return coef.tolist()
    scale = X.max(axis=0)
    coef, _ = nnls(X / scale, y)
    return (coef / scale).tolist()


def model(
    runs: list[dict], engine: str, exclude: int | None = None, kind: str = "clusters"
) -> dict[str, dict]:
    """Per stage: its terms and their fitted coefficients, over the engine's runs."""
    pts = [r for r in runs if r["engine"] == engine and r["n"] != exclude]
    out = {}
    for s in STAGES:
        terms = TERMS[kind][s]
        coef = fit(terms, [r["n"] for r in pts], [r["timings"].get(s, 0.0) for r in pts])
        out[s] = {"terms": terms, "coef": coef}
    return out


def stage_cost(m: dict[str, dict], s: str, n: float, clusters: float | None = None) -> float:
    pairs = zip(m[s]["terms"], m[s]["coef"], strict=True)
    return float(sum(c * term(t, n, clusters) for t, c in pairs))


def predict(
    m: dict[str, dict],
    n: float,
    workers: int,
    measured_workers: int,
    dim_scale: float = 1.0,
    clusters: float | None = None,
) -> float:
    """Seconds for ``n`` items on ``workers`` one-CPU workers, from a model measured with
    ``measured_workers``; distance work (partition kNN, merge's refinement, assignment, finish's
    recall, the k-means) scales with ``dim_scale``. The distributed stages divide by the
    workers; the sample stage (its k-means runs on the driver) and the driver's stages do not."""
    t = 0.0
    for s in m:
        cost = stage_cost(m, s, n, clusters)
        if s in ("partition_knn", "merge", "assign", "finish", "sample"):
            cost *= dim_scale
        if s in PARALLEL:
            cost *= measured_workers / workers
        t += cost
    return t


def load_runs(paths: list[str]) -> list[dict]:
    """Runs recorded by earlier invocations (their JSON), each tagged with when it was recorded
    and, for records older than the settings field, the settings of the record's command."""
    runs = []
    for p in paths:
        d = json.loads(Path(p).read_text())
        old = parser().parse_args(shlex.split(d["command"])[2:])
        for r in d["runs"]:
            r.setdefault("recorded", d["machine"]["date_utc"])
            r.setdefault("commit", "?")
            r.setdefault("settings", {k: getattr(old, k) for k in SETTINGS})
            r["from"] = str(p)
            runs.append(r)
    return runs


def merge_runs(made: list[dict], paths: list[str]) -> list[dict]:
    """The runs made now, then those of the ``--merge`` files: a run of the same size and
    engine made now, or in a later file, wins. Runs made with other settings are refused."""
    runs = list(made)
    seen = {(r["n"], r["engine"]) for r in runs}
    for path in reversed(paths):
        for r in load_runs([path]):
            if (r["n"], r["engine"]) not in seen:
                seen.add((r["n"], r["engine"]))
                runs.append(r)
    if runs:
        ref = runs[0]
        for r in runs[1:]:
            for k in SETTINGS:
                if str(r["settings"][k]) != str(ref["settings"][k]):
                    raise SystemExit(
                        f"build_scale.py: the run of {r['n']:,} on {r['engine']} "
                        f"({r.get('from', 'made now')}) has {k}={r['settings'][k]!r}, the run "
                        f"of {ref['n']:,} on {ref['engine']} ({ref.get('from', 'made now')}) "
                        f"{ref['settings'][k]!r}: merge records made with the same settings"
                    )
    return runs


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def tables_of(runs: list[dict]) -> tuple[list[Table], dict]:
    """The stage tables, the cost models' errors and their predictions; the fits. The runs
    share their settings (:func:`merge_runs` checks)."""
    runs = sorted(runs, key=lambda r: (r["n"], r["engine"]))
    engines = sorted({r["engine"] for r in runs})
    st = runs[0]["settings"]
    tables = []
    t = Table(
        f"the sharded build per stage (seconds), {st['dim']}-d, worker memory "
        f"{st['worker_memory']}, refine {st['refine']}, kNN backend {st['knn_backend']}, "
        f"{st['cpus']} CPUs",
        ["items", "engine", "partitions", "largest", "recall", *STAGES, "total",
         "same index", "recorded (commit)"],
    )  # fmt: skip
    mem = Table(
        "the driver's peak memory per stage (MiB), and the partition kNN task's own: the "
        "estimate that sized the partitions beside the largest rise of any task's process "
        "(recorded from commit 13cbf80 on)",
        ["items", "engine", *STAGES[:-1], "driver's peak", "worker memory",
         "largest partition's estimate", "a kNN task's peak rise"],
    )  # fmt: skip
    for r in runs:
        other = [q for q in runs if q["n"] == r["n"] and q is not r]
        same = (
            "-" if not other else ("yes" if other[0]["fingerprint"] == r["fingerprint"] else "no")
        )
        t.add(
            f"{r['n']:,}", r["engine"], r["partitions"], f"{r['largest_partition']:,}",
            r["recall"], *[r["timings"].get(s, 0.0) for s in STAGES], r["timings"]["total"],
            same, f"{r.get('recorded', '?')} ({r.get('commit', '?')})",
        )  # fmt: skip
        pk = r["peak_rss_mib"] or {}
        est = r.get("largest_estimate_mib")
        mem.add(
            f"{r['n']:,}", r["engine"], *[pk.get(s, "-") for s in STAGES[:-1]],
            max(pk.values()) if pk else "-", r["settings"]["worker_memory"],
            "-" if est is None else round(est, 1),
            "-" if r.get("knn_task_peak_mib") is None else r["knn_task_peak_mib"],
        )  # fmt: skip
    t.notes.append(
        "same index: the two engines' tables are identical (fingerprint); NN-descent inside a "
        "partition is multi-threaded and not bit-reproducible, so 'no' is possible where it ran"
    )
    tables += [t, mem]

    err = Table(
        "cost models: error on each engine's largest size when fitted without it",
        ["engine", "fitted on", "largest", "measured (s)", "linear: predicted (s)", "error",
         "with the cluster terms: predicted (s)", "error"],
    )  # fmt: skip
    per_stage = Table(
        "the same, per stage (seconds at the largest size)",
        ["engine", "stage", "measured", "linear", "with the cluster terms"],
    )
    pred = Table(
        "predictions of the model fitted on every size, on N one-CPU workers (hours)",
        ["engine", "k-means level", "100M x 64, 16 workers", "100M x 64, 160 workers",
         "1B x 64, 160 workers", "5.55B x 768, 160 workers", "of which the driver's k-means "
         "(1B x 64)"],
    )  # fmt: skip
    fits = {}
    for engine in engines:
        mine = [r for r in runs if r["engine"] == engine]
        workers = mine[0]["workers"]
        if any(r["workers"] != workers for r in mine):  # cpus is one of the settings
            raise SystemExit(f"build_scale.py: the {engine} runs had different worker counts")
        largest = max(r["n"] for r in mine)
        last = next(r for r in mine if r["n"] == largest)
        rest = [r for r in mine if r["n"] != largest]
        if rest:
            lin = model(runs, engine, exclude=largest, kind="linear")
            km = model(runs, engine, exclude=largest) if len(rest) >= 3 else None  # 3 terms
            measured = last["timings"]["total"]
            p_lin = predict(lin, largest, workers, workers)
            p_km = predict(km, largest, workers, workers) if km else float("nan")
            err.add(
                engine, ", ".join(f"{r['n']:,}" for r in rest), f"{largest:,}",
                round(measured, 1), round(p_lin, 1), f"{(p_lin - measured) / measured:+.0%}",
                round(p_km, 1) if km else "- (needs 3 other sizes)",
                f"{(p_km - measured) / measured:+.0%}" if km else "-",
            )  # fmt: skip
            for s in STAGES:
                per_stage.add(
                    engine, s, last["timings"].get(s, 0.0), stage_cost(lin, s, largest),
                    stage_cost(km, s, largest) if km else "-",
                )  # fmt: skip
        kind = "clusters" if len(mine) >= 3 else "linear"
        full = model(runs, engine, kind=kind)
        fits[engine] = full
        for label, c in (("n/1,000 clusters", None), ("10,000 clusters", 10_000.0)):

            def hours(
                n: float,
                w: int,
                dim_scale: float = 1.0,
                c: float | None = c,
                m: dict = full,
                mw: int = workers,
            ) -> str:
                return f"{predict(m, n, w, mw, dim_scale, c) / 3600:,.2f}"

            km_1b = stage_cost(full, "sample", 1e9, c) / 3600
            pred.add(
                f"{engine} ({kind})", label, hours(1e8, 16), hours(1e8, 160), hours(1e9, 160),
                hours(5.55e9, 160, 768 / st["dim"]), f"{km_1b:,.2f}",
            )  # fmt: skip
    err.notes += [
        "linear: every stage a + b x items. With the cluster terms the sample stage adds c x "
        "rows x centroids of the driver's k-means (it trains on max(100,000, 256 x clusters) "
        "rows, so with n/1,000 clusters it grows as n^2) and the assign stage c x items x "
        "centroids (each item's nearest centroid); non-negative least squares",
        "three terms pass through three sizes exactly, so that model's error on a held-out "
        "size needs four sizes; with fewer the predictions below use the linear model",
    ]
    pred.notes += [
        "anchors: autofaiss on Spark built 5.55B x 768 in 6 h on 10 x 16-core nodes (160 "
        "cores); faiss's distributed k-means trained 50M points to 1M centroids in 899 s",
        "the model assumes the distributed stages (assign, partition kNN, merge) scale "
        "perfectly with workers; the sample stage's k-means and the driver's stages (scan, "
        "finish: recall, walk order, cluster graphs; write) run on one driver with this "
        "machine's CPUs. With n/1,000 clusters the k-means at 1B would train 1M centroids on "
        "256M rows (65 GB at 64-d): a driver does not hold that, so that column says why a "
        "fixed cluster count (or --kmeans-sample) is the setting at that scale",
        "at 1B the driver also holds the kNN lists (80 bytes per item at k=10), the next "
        "limit to meet",
    ]
    tables += [err, per_stage, pred]
    return tables, fits


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="300000,1000000,3000000")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--worker-memory", default="256M")
    ap.add_argument("--refine", default="1", help="rounds, or auto (the library's default)")
    ap.add_argument("--knn-backend", default="auto", help="inside each partition (default auto)")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--record", default=str(HERE / "results" / "build-scale.md"))
    ap.add_argument(
        "--merge",
        action="append",
        default=[],
        metavar="JSON",
        help="add the runs of an earlier record (its .json; repeatable); a run of the same size "
        "and engine made now, or in a later --merge file, replaces it. Use the same "
        "--dim/--worker-memory/--refine/--cpus as those runs: the tables' titles take them",
    )
    ap.add_argument(
        "--render", action="store_true", help="build nothing: the tables of the --merge runs"
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--shards", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a)))
        return 0
    if a.render and not a.merge:
        ap.error("--render needs --merge JSON (the runs to render)")
    sizes = [] if a.render else [int(s) for s in a.sizes.split(",")]
    engines = a.engines.split(",")
    runs: list[dict] = []
    commit = git_commit()
    work = Path(tempfile.mkdtemp(prefix="gw-build-scale-"))
    try:
        for n in sizes:
            print(f"writing {n:,} x {a.dim} shards ...", flush=True)
            shards = work / f"s{n}"
            write_shards(n, a.dim, shards)
            for engine in engines:
                print(f"  building on {engine} ...", flush=True)
                r = run_child(n, engine, shards, work / f"{n}-{engine}.gw", a)
                r["commit"] = commit
                r["recorded"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
                runs.append(r)
                print(f"  {json.dumps(r)}", flush=True)
                shutil.rmtree(work / f"{n}-{engine}.gw", ignore_errors=True)
            shutil.rmtree(shards)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    runs = merge_runs(runs, a.merge)
    tables, fits = tables_of(runs)
    body = "\n\n".join(x.markdown() for x in tables)
    print(body)
    from graphwalk.benchmark import record_markdown

    record_markdown(
        a.record,
        "the cost of growing: the sharded build",
        body,
        command="python bench/build_scale.py " + " ".join(argv or sys.argv[1:]),
        data={"runs": runs, "fits": fits, "sizes": sorted({r["n"] for r in runs})},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
