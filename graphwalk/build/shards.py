"""The sharded build: an index from a folder of Parquet shards, stage by stage, over files.

:func:`build_sharded_index` chains the stages of :mod:`graphwalk.build.stages` (scan, sample,
assign, partition kNN, merge and refine, finish), each a plain function of paths and a few numbers
that reads and writes files in a work directory; an engine (:mod:`graphwalk.build.engines`: in
this process, or Ray tasks on a cluster) only decides where each call runs. The work directory is
removed whether the build succeeds or fails, and the index is saved atomically with its manifest
last.

No stage depends on how many workers run it, so the same seed gives the same index on 1 or 100
workers (identical with the exact backend; NN-descent, multi-threaded, is not bit-reproducible).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.benchmark import take_peak_rss_mib
from graphwalk.build.engines import Engine, make_engine
from graphwalk.build.graphs import (
    KNN_BACKENDS,
    _affinity,
    er_graph,
    knn_clusters_graph,
    walk_order,
)
from graphwalk.build.stages import (
    DEFAULT_WORKER_MEMORY,
    MAX_AUTO_REFINE,
    MERGE_RANGE,
    MIN_REFINE_GAIN,
    ShardInfo,
    _fill_short_rows,
    _kmeans,
    _Spec,
    assign_shard,
    choose_partitions,
    find_shards,
    knn_partition,
    merge_range,
    parse_bytes,
    recall_of,
    recall_truth,
    refine_range,
    sample_shard,
    scan_shards,
)
from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex, resolve_layout
from graphwalk.index.storage import check_output
from graphwalk.index.types import Graph, Level
from graphwalk.progress import progress_bar
from graphwalk.validation import check_int

__all__ = ["ShardInfo", "build_sharded_index", "find_shards", "parse_bytes", "scan_shards"]


def build_sharded_index(
    embeddings: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str],
    column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    clusters: int | None = None,
    graphs: str | Sequence[str] = ("knn",),
    k: int = 10,
    metric: str = "l2",
    knn_backend: str = "auto",
    degree: float | None = None,
    connect: bool = True,
    engine: str | Engine = "local",
    address: str | None = None,
    num_cpus: int | None = None,
    worker_memory: int | str = DEFAULT_WORKER_MEMORY,
    partitions: int | None = None,
    overlap: int = 2,
    refine: int | str = "auto",
    target_recall: float = 0.9,
    sample: int | None = None,
    recall_sample: int = 1000,
    seed: int = 0,
    overwrite: bool = False,
    layout: str = "auto",
    work_dir: str | os.PathLike[str] | None = None,
    retries: int = 2,
    progress: bool = False,
) -> GraphIndex:
    """Build an index from Parquet shards, stage by stage over files (see the module's doc).

    Args:
        embeddings: a glob pattern, a directory of ``*.parquet`` shards, a file or a list of
            files; each shard holds one row per item with its vector in ``column`` (a list of
            numbers; default: the shards' only list column).
        label_column, id_column: an integer label per item (stored as the ``label`` set), and
            integer ids that must be unique across shards (checked; items are numbered by their
            position: shard order, then row).
        clusters: a ``kmeans`` level of this many clusters, trained on a sample.
        graphs: ``"knn"`` (items), ``"er"`` and ``"knn-clusters"`` (over the level).
        engine: ``"local"`` (this process) or ``"ray"`` (``address`` of a cluster, or a local
            Ray with ``num_cpus``), or an engine object.
        worker_memory: the memory a worker may use for one partition (``"2G"``): the number of
            partitions ``P`` grows until the largest, with its overlap, fits. ``partitions``
            sets ``P`` instead.
        overlap: how many nearest partitions each item's vector goes to (2: DiskANN's choice).
        refine: rounds of neighbours-of-neighbours after the merge (0 for none), or ``"auto"``
            (default): rounds until the sampled recall reaches ``target_recall``, at most
            4, stopping when a round adds less than 0.005 (one round without a recall sample).
        sample: rows k-means trains on (default ``max(100,000, 256 x clusters)``, at most all;
            CLI ``--kmeans-sample``). The driver's k-means costs rows x clusters, so with many
            clusters it is the build's largest serial stage: fewer rows make it cheaper. The
            partitions are sized on a sample of at least 100,000 rows whatever this is.
        recall_sample: items whose neighbours are checked against exact search (0: none).
        work_dir: where the stages' files go (default: beside ``out``); on a cluster, a path
            every node can read and write.
        retries: how often a task whose worker died is rerun.

    Returns:
        The index, saved at ``out`` (``build_params["sharded"]`` has the shards, partitions, the
        stages' seconds and counts).
    """
    t_start = time.perf_counter()
    take_peak_rss_mib()  # each stage's peak memory from here
    check_int("k", k, minimum=1)
    check_int("seed", seed, minimum=0)
    check_int("overlap", overlap, minimum=1)
    if refine != "auto":
        if isinstance(refine, str):
            raise InputError(f"refine should be 'auto' or a number of rounds, but got {refine!r}")
        check_int("refine", refine, minimum=0)
    check_int("recall_sample", recall_sample, minimum=0)
    if partitions is not None:
        check_int("partitions", partitions, minimum=1)
    if clusters is not None:
        check_int("clusters", clusters, minimum=1)
    if metric not in ("l2", "cosine"):
        raise InputError(f"metric should be 'l2' or 'cosine', but got {metric!r}")
    if knn_backend not in KNN_BACKENDS:
        raise InputError(f"knn backend should be one of {KNN_BACKENDS}, but got {knn_backend!r}")
    kinds = [graphs] if isinstance(graphs, str) else list(graphs)
    for g in kinds:
        if g not in ("knn", "er", "knn-clusters"):
            raise InputError(f"graphs should be among 'knn', 'er', 'knn-clusters', but got {g!r}")
    if any(g != "knn" for g in kinds) and clusters is None:
        raise InputError("'er' and 'knn-clusters' are graphs over clusters: give --clusters N")
    budget = parse_bytes(worker_memory)
    resolve_layout(layout, 0)
    out_path = Path(out)
    check_output(out_path, overwrite)
    paths = find_shards(embeddings)
    shards, col, dim = scan_shards(
        paths, column=column, label_column=label_column, id_column=id_column
    )
    n = shards[-1].first + shards[-1].rows
    if k >= n:
        raise InputError(f"k={k} neighbours asked for, but the shards hold only {n} items")
    if clusters is not None and clusters > n:
        raise InputError(f"cannot make {clusters} clusters from {n} items; use fewer")
    if sample is not None:
        check_int("sample", sample, minimum=1)
        if clusters is None:
            raise InputError(
                f"--kmeans-sample {sample} sizes the k-means of --clusters: add --clusters N, "
                "or drop it"
            )
        if clusters is not None and sample < clusters:
            raise InputError(
                f"--kmeans-sample {sample:,} rows cannot train {clusters:,} clusters: give at "
                f"least {clusters:,} (faiss asks for 39 per cluster: {39 * clusters:,}), or "
                "fewer --clusters"
            )
    spec = _Spec(col, dim, label_column, metric)
    timings: dict[str, float] = {}
    counts: dict[str, Any] = {}
    if work_dir is not None and not Path(work_dir).is_dir():
        raise InputError(
            f"--work-dir {work_dir} is not a directory: create it first (on a cluster, one "
            "that every node reads and writes)"
        )
    if partitions is not None and partitions > max(1, n // (k + 1)):
        raise InputError(
            f"--partitions {partitions} for {n:,} items: a partition needs more than k={k} "
            f"items; use at most {max(1, n // (k + 1)):,} (or leave it to --worker-memory)"
        )
    if isinstance(engine, str) and engine == "local" and num_cpus is not None:
        raise InputError("--num-cpus sizes a Ray started here: add --engine ray, or drop it")
    parent = Path(work_dir) if work_dir is not None else out_path.parent
    parent.mkdir(parents=True, exist_ok=True)
    eng: Any = None if isinstance(engine, str) else engine
    written = False
    work = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.work-", dir=parent))
    bar = progress_bar(enabled=progress, total=6, desc="graphwalk index (sharded)", unit="stage")

    peaks: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        """End a stage: its seconds, and the driver's peak resident memory during it (MiB;
        Linux; with Ray the workers' memory is their own)."""
        timings[name] = round(time.perf_counter() - t0, 4)
        peak = take_peak_rss_mib()
        if peak is not None:
            peaks[name] = round(peak, 1)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(name)

    try:
        if isinstance(engine, str):  # inside the try: an interrupted start shuts Ray down
            eng = make_engine(engine, address=address, num_cpus=num_cpus, retries=retries)
        stage("scan", t_start)
        # 2: sample, k-means, partitions
        t0 = time.perf_counter()
        km_size = min(n, sample or max(100_000, 256 * (clusters or 1)))
        s_size = max(km_size, min(n, 100_000))  # the partitions are sized on 100,000 or more
        rows = np.sort(np.random.default_rng([seed, 0x5A4D]).choice(n, size=s_size, replace=False))
        calls = []
        for sh in shards:
            lo, hi = np.searchsorted(rows, [sh.first, sh.first + sh.rows])
            if hi > lo:
                calls.append((sh, spec, rows[lo:hi]))
        sample_x = np.concatenate(
            eng.map(sample_shard, calls, desc="sample", show=progress)
        ).astype(np.float32)
        level_centroids = None
        if clusters is not None:
            km_x = sample_x
            if km_size < s_size:  # --kmeans-sample below the partitions' sample: a seeded part
                pick = np.random.default_rng([seed, 0x4B4D]).choice(s_size, km_size, replace=False)
                km_x = sample_x[np.sort(pick)]
            level_centroids = _kmeans(km_x, clusters, seed)
            if level_centroids.shape[0] < clusters:  # as the one-machine build says it
                warnings.warn(
                    f"k-means left {clusters - level_centroids.shape[0]} of {clusters} clusters "
                    "empty (too few distinct vectors?); they were dropped and the rest renumbered",
                    stacklevel=2,
                )
            del km_x
        part_centroids, part_info = choose_partitions(
            sample_x, n, budget=budget, overlap=overlap, seed=seed, partitions=partitions
        )
        del sample_x
        stage("sample", t0)
        # 3: assign
        t0 = time.perf_counter()
        vec_file = np.lib.format.open_memmap(work / "vectors.npy", "w+", np.float32, (n, dim))
        del vec_file
        res = eng.map(
            assign_shard,
            [
                (i, sh, spec, level_centroids, part_centroids, part_info["overlap"], n, str(work))
                for i, sh in enumerate(shards)
            ],
            desc="assign",
            show=progress,
        )
        sizes = np.sum([r["partition_counts"] for r in res], axis=0)
        part_info["sizes"] = {
            "min": int(sizes.min()),
            "max": int(sizes.max()),
            "mean": round(float(sizes.mean()), 1),
            "total": int(sizes.sum()),
        }
        stage("assign", t0)
        # 4: partition kNN
        t0 = time.perf_counter()
        knn = "knn" in kinds
        if knn:
            range_size = MERGE_RANGE
            res = eng.map(
                knn_partition,
                [
                    (p, str(work), k, knn_backend, seed, n, range_size)
                    for p in range(part_centroids.shape[0])
                ],
                desc="partition kNN",
                show=progress,
            )
            methods = sorted({r.get("method", "none") for r in res if r["items"]})
            part_info["knn_methods"] = methods
            part_info["knn_task_seconds"] = round(sum(r.get("seconds", 0.0) for r in res), 3)
            used = [r["peak_mib"] for r in res if r.get("peak_mib") is not None]
            if used:  # the largest rise of any task, beside the estimate that sized them
                part_info["knn_task_peak_mib"] = round(max(used), 1)
        stage("partition_knn", t0)
        # 5: merge + refine
        t0 = time.perf_counter()
        vectors: Any = None
        if knn:
            for name in ("knn", "ref"):
                for what, dt in (("ids", np.int64), ("dist", np.float32)):
                    a = np.lib.format.open_memmap(work / f"{name}_{what}.npy", "w+", dt, (n, k))
                    del a
            ranges = [
                (r, lo, min(n, lo + range_size)) for r, lo in enumerate(range(0, n, range_size))
            ]
            short = eng.map(
                merge_range,
                [(r, lo, hi, str(work), k) for r, lo, hi in ranges],
                desc="merge",
                show=progress,
            )
            counts["short_rows_after_merge"] = int(sum(short))
            vectors = np.load(work / "vectors.npy", mmap_mode="r")
            ids = np.load(work / "knn_ids.npy", mmap_mode="r+")
            dist = np.load(work / "knn_dist.npy", mmap_mode="r+")
            counts["rows_filled_exactly"] = _fill_short_rows(vectors, ids, dist, k)
            ids.flush()
            dist.flush()
            del ids, dist
            src_name, dst_name = "knn", "ref"
            changed: list[int] = []
            by_round: list[float] = []
            truth = None
            if recall_sample:
                truth = recall_truth(vectors, k, sample=recall_sample, seed=seed)
                by_round.append(recall_of(np.load(work / "knn_ids.npy", mmap_mode="r"), *truth))
            auto = refine == "auto"
            rounds = (MAX_AUTO_REFINE if truth is not None else 1) if auto else int(refine)
            for _ in range(rounds if part_centroids.shape[0] > 1 else 0):
                if auto and by_round and by_round[-1] >= target_recall:
                    break
                rcalls = [(lo, hi, str(work), k, src_name, dst_name) for _, lo, hi in ranges]
                changed.append(
                    int(sum(eng.map(refine_range, rcalls, desc="refine", show=progress)))
                )
                src_name, dst_name = dst_name, src_name
                if truth is not None:
                    got = np.load(work / f"{src_name}_ids.npy", mmap_mode="r")
                    by_round.append(recall_of(got, *truth))
                    if auto and by_round[-1] - by_round[-2] < MIN_REFINE_GAIN:
                        break
            counts["recall_by_round"] = [round(r, 5) for r in by_round]
            counts["refine_rows_changed"] = changed
            ids = np.load(work / f"{src_name}_ids.npy", mmap_mode="r")
            dist = np.load(work / f"{src_name}_dist.npy", mmap_mode="r")
        stage("merge", t0)
        # 6: finish
        t0 = time.perf_counter()
        labels: dict[str, npt.NDArray[np.int64]] = {}
        if label_column:
            labels["label"] = np.concatenate(
                [np.load(work / f"labels-{i:06d}.npy") for i in range(len(shards))]
            )
        levels: dict[str, Level] = {}
        if level_centroids is not None:
            assignment = np.concatenate(
                [np.load(work / f"assign-{i:06d}.npy") for i in range(len(shards))]
            )
            levels["kmeans"] = Level(
                "kmeans",
                assignment,
                level_centroids,
                np.arange(level_centroids.shape[0], dtype=np.int64),
                "kmeans",
                "input",
                {
                    "method": "faiss-kmeans",
                    "clusters": int(clusters or 0),
                    "seed": int(seed),
                    "trained_on_sample": int(km_size),
                    "dropped_empty": int((clusters or 0) - level_centroids.shape[0]),
                },
            )
        built: dict[str, Graph] = {}
        for g in kinds:
            if g == "knn":
                ids_a = np.asarray(ids)
                recall = by_round[-1] if by_round else float("nan")
                m_used = int(truth[0].size) if truth is not None else 0
                params = {
                    "method": "partitioned",
                    "k": k,
                    "metric": metric,
                    "partition_knn": part_info.get("knn_methods"),
                    "partitions": part_info["partitions"],
                    "overlap": part_info["overlap"],
                    "refine": len(counts["refine_rows_changed"]),
                    "refine_asked": refine,
                    "recall_by_round": counts.get("recall_by_round"),
                    "recall": round(recall, 5) if recall_sample else None,
                    "recall_sample": m_used,
                }
                graph = Graph(
                    "knn",
                    "item",
                    np.arange(0, n * k + 1, k, dtype=np.int64),
                    ids_a.reshape(-1).astype(np.int32),
                    _affinity(np.asarray(dist).reshape(-1).astype(np.float32), metric),
                    space="input",
                    directed=True,
                    params=params,
                )
                assign = levels["kmeans"].assignment if levels else None
                built["knn"] = replace(graph, walk=walk_order(graph, assign))
                if recall_sample and recall < 0.9:
                    fewer = "--partitions" if partitions is not None else "a larger --worker-memory"
                    warnings.warn(
                        f"the sharded kNN graph has recall {recall:.3f} on {m_used} sampled "
                        f"items; raise --refine, or use fewer, larger partitions ({fewer})",
                        stacklevel=2,
                    )
            elif g == "er":
                lv = levels["kmeans"]
                built["er"] = er_graph(
                    lv.n_clusters, degree=degree, seed=seed, connect=connect, level="kmeans"
                )
            else:
                lv = levels["kmeans"]
                built["knn-clusters"] = knn_clusters_graph(
                    lv.centroids,
                    min(k, lv.n_clusters - 1),
                    metric=metric,
                    connect=connect,
                    level="kmeans",
                )
        sharded = {
            "engine": eng.name,
            "workers": eng.workers,
            "shards": [asdict(s) for s in shards],
            "column": col,
            "partitions": part_info,
            "counts": counts,
            "partition_sample": int(s_size),
            "kmeans_sample": int(km_size) if clusters is not None else None,
            "peak_rss_mib": peaks,
        }
        build = {
            "embeddings": [str(p) for p in paths] if len(paths) <= 16 else f"{len(paths)} shards",
            "clusters": clusters,
            "graphs": kinds,
            "k": k,
            "metric": metric,
            "knn_backend": knn_backend,
            "seed": seed,
            "sharded": sharded,
            "timings_s": timings,
        }
        index = GraphIndex(
            n, labels=labels, levels=levels, graphs=built, spaces={"input": dim}, build_params=build
        )
        stage("finish", t0)
        t0 = time.perf_counter()
        del vectors
        index.save(out_path, overwrite=overwrite, layout=layout)
        timings["write"] = round(time.perf_counter() - t0, 4)
        timings["total"] = round(time.perf_counter() - t_start, 4)
        from graphwalk.build.builder import _rewrite_manifest

        _rewrite_manifest(out_path, index.manifest)
        written = True
        return index
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(engine, str) and eng is not None:
            try:
                eng.close()
            except KeyboardInterrupt:
                if not written:  # Ctrl-C while Ray shuts down: the index, if made, stands
                    raise
