"""Benchmark `graphwalk index` against the bare library calls it makes, in one process.

On N clustered vectors (default 1,000,000 x 64, with labels): faiss k-means with 1,000 clusters,
an Erdős–Rényi graph over the clusters and an item kNN graph (k=10) at recall >= 0.95.
Checks, as ratios measured in the same run (../shared/ANCHORS.md, issue "The foundation and graphwalk index"):

- the whole ``graphwalk index`` command within 1.25x the sum of its bare calls;
- its kNN step no slower than a bare pynndescent build at the same recall;
- peak memory of the command at most 3x the size of the vectors;
- ``GraphIndex.load`` of the result under one second.

    python bench/index.py                  # 1,000,000 x 64 (about 5 minutes on 2 cores)
    python bench/index.py --n 100000       # quicker
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import clustered_vectors

from graphwalk.benchmark import Table, best_of, measure, record_markdown


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument(
        "--record", default=None, help="Markdown file to record (default bench/results/index-N.md)"
    )
    args = ap.parse_args(argv)

    import faiss
    import networkx as nx
    from pynndescent import NNDescent

    from graphwalk.build.graphs import knn_recall
    from graphwalk.cli import main as cli_main
    from graphwalk.index.artifact import GraphIndex

    work = Path(tempfile.mkdtemp(prefix="gw-bench-index-"))
    try:
        print(f"generating {args.n:,} x {args.dim} clustered vectors ...", flush=True)
        x, y = clustered_vectors(args.n, args.dim, centers=args.clusters, seed=0)
        np.save(work / "x.npy", x)
        np.save(work / "y.npy", y)
        vec_mib = x.nbytes / 2**20

        print("warming up (Numba compilation of pynndescent and graphwalk) ...", flush=True)
        xs, _ = clustered_vectors(min(args.n, 30000), args.dim, centers=20, seed=1)
        np.save(work / "xs.npy", xs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _ = NNDescent(
                xs, n_neighbors=30, random_state=0, low_memory=True, compressed=True
            ).neighbor_graph
        cli_main(
            [
                "index",
                "--embeddings",
                str(work / "xs.npy"),
                "--clusters",
                "20",
                "--graph",
                "er",
                "--graph",
                "knn",
                "--knn-backend",
                "nndescent",
                "--out",
                str(work / "warm.gw"),
                "--no-progress",
            ]
        )

        print("bare calls ...", flush=True)
        with measure() as m_km:
            km = faiss.Kmeans(args.dim, args.clusters, niter=20, seed=0)
            km.train(x)
            km.index.search(x, 1)
        with measure() as m_er:
            nx.fast_gnp_random_graph(args.clusters, 10 / (args.clusters - 1), seed=0)
        with measure() as m_nnd, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nnd = NNDescent(
                x,
                n_neighbors=30,
                metric="euclidean",
                random_state=0,
                low_memory=True,
                compressed=True,
            )
            ids, _ = nnd.neighbor_graph
        del nnd
        trimmed = ids[:, 1 : args.k + 1]
        with measure() as m_rec:
            bare_recall, _ = knn_recall(x, trimmed, sample=1000, seed=0)
        del ids, trimmed
        bare_total = m_km.seconds + m_er.seconds + m_nnd.seconds + m_rec.seconds

        print("graphwalk index ...", flush=True)
        out = work / "bench.gw"
        cmd = [
            "index",
            "--embeddings",
            str(work / "x.npy"),
            "--labels",
            str(work / "y.npy"),
            "--clusters",
            str(args.clusters),
            "--graph",
            "er",
            "--graph",
            "knn",
            "--k",
            str(args.k),
            "--out",
            str(out),
            "--knn-backend",
            "nndescent",
            "--no-progress",
        ]
        with measure() as m_gw:
            rc = cli_main(cmd)
        if rc != 0:
            print("graphwalk index failed", file=sys.stderr)
            return rc
        load_s = best_of(lambda: GraphIndex.load(out), repeat=3)
        load_nv = best_of(lambda: GraphIndex.load(out, verify=False), repeat=3)
        idx = GraphIndex.load(out)
        t = idx.build_params["timings_s"]
        gw_knn = t.get("kNN knn", float("nan"))
        g = idx.graphs["knn"]
        size_mib = sum(v["bytes"] for v in idx.manifest["tables"].values()) / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = Table(
        f"graphwalk index vs its bare calls ({args.n:,} x {args.dim}, K={args.clusters}, k={args.k})",
        ["step", "bare library call (s)", "graphwalk (s)", "peak RAM increase (MiB)"],
    )
    table.add(
        "k-means (faiss, 20 iter) + assign",
        m_km.seconds,
        t.get("k-means", float("nan")),
        m_km.peak_increase_mib,
    )
    table.add(
        "ER graph (networkx)", m_er.seconds, t.get("ER graph", float("nan")), m_er.peak_increase_mib
    )
    gw_check = float(g.params.get("recall_check_s", 0.0))
    gw_build = gw_knn - gw_check
    table.add(
        "kNN graph build (pynndescent, n_neighbors 30)",
        m_nnd.seconds,
        gw_build,
        m_nnd.peak_increase_mib,
    )
    table.add(
        "kNN recall check (exact, 1,000 items)", m_rec.seconds, gw_check, m_rec.peak_increase_mib
    )
    rest = m_gw.seconds - sum(t.get(s, 0.0) for s in ("k-means", "ER graph", "kNN knn"))
    table.add("rest: read .npy, validate, write Parquet + SHA-256", "-", rest, "-")
    table.add(
        "**whole `graphwalk index` command**", bare_total, m_gw.seconds, m_gw.peak_increase_mib
    )

    ratios = Table("targets (ratios from this run)", ["check", "measured", "target", "met"])
    r_total = m_gw.seconds / bare_total
    r_build = gw_build / m_nnd.seconds
    r_knn = gw_knn / (m_nnd.seconds + m_rec.seconds)
    r_mem = (m_gw.peak_increase_mib or float("nan")) / vec_mib
    recall = g.params["recall"]
    ratios.add(
        "command / sum of bare calls",
        f"{r_total:.3f}x",
        "<= 1.25x",
        "yes" if r_total <= 1.25 else "NO",
    )
    ratios.add(
        "kNN build / bare pynndescent build",
        f"{r_build:.3f}x",
        "<= 1.0x (same recall)",
        "yes" if r_build <= 1.0 else "NO",
    )
    ratios.add(
        "kNN step incl. recall check / bare build + check",
        f"{r_knn:.3f}x",
        "<= 1.0x",
        "yes" if r_knn <= 1.0 else "NO",
    )
    ratios.add(
        "kNN recall (graphwalk / bare)",
        f"{recall:.4f} / {bare_recall:.4f}",
        ">= 0.95",
        "yes" if recall >= 0.95 else "NO",
    )
    ratios.add(
        "peak memory / vectors",
        f"{r_mem:.2f}x ({m_gw.peak_increase_mib:.0f} / {vec_mib:.0f} MiB)",
        "<= 3x",
        "yes" if r_mem <= 3 else "NO",
    )
    ratios.add(
        "GraphIndex.load (verify checksums)",
        f"{load_s:.3f} s",
        "< 1 s",
        "yes" if load_s < 1 else "NO",
    )
    ratios.add(
        "GraphIndex.load (verify=False)",
        f"{load_nv:.3f} s",
        "< 1 s",
        "yes" if load_nv < 1 else "NO",
    )
    ratios.notes.append(
        f"index on disk: {size_mib:.1f} MiB; {g.n_edges:,} kNN edges; "
        f"ER edges added to connect: {idx.graphs['er'].params['edges_added_to_connect']}"
    )
    ratios.notes.append(
        "peak memory is the rise of the kernel's VmHWM over RSS before the call "
        "(reset via /proc/self/clear_refs), native allocations included; the command "
        "loads its own copy of the vectors from .npy, which is counted"
    )
    print()
    print(table.markdown())
    print()
    print(ratios.markdown())
    record = args.record or f"bench/results/index-{args.n}.md"
    p = Path(record)
    p.parent.mkdir(parents=True, exist_ok=True)
    body = table.markdown() + "\n\n" + ratios.markdown()
    record_markdown(
        p,
        table.title,
        body,
        command="python " + " ".join(["bench/index.py", *(argv or sys.argv[1:])]),
        data={"steps": table.rows, "ratios": ratios.rows},
    )
    print(f"\nrecorded {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
