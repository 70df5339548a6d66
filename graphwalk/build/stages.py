"""The stages of the sharded build (:func:`graphwalk.build.shards.build_sharded_index`).

Each stage is a plain function of paths and a few numbers that reads and writes files in a work
directory; an engine (:mod:`graphwalk.build.engines`: in this process, or Ray tasks on a cluster)
only decides where each call runs. The stages:

1. **scan** (driver): every shard's row count, vector width and type from its Parquet footer;
   item ``i`` is row ``i`` of the shards in sorted path order (``first`` of each shard is stored
   in the manifest); ids, if an id column is named, are checked to be unique across shards.
2. **sample** (one task per shard): a seeded sample of rows, returned to the driver, where
   faiss k-means trains the level's centroids and ``P`` coarse partition centroids on it (see
   :func:`choose_partitions`).
3. **assign** (one task per shard): each item's cluster, its vector copied into its 2 nearest
   partitions (DiskANN's overlap: partitions without overlap lose many true neighbours at their
   borders), and into one memory-mapped ``vectors.npy`` used by the last stages.
4. **partition kNN** (one task per partition): the ``k`` nearest neighbours inside the partition
   (:func:`~graphwalk.build.graphs.knn_lists`: exact when small, else NN-descent or HNSW), out as
   candidate edges in files bucketed by item range.
5. **merge** (one task per item range): each item's ``k`` nearest distinct candidates; then
   ``refine`` rounds of neighbours-of-neighbours (each item's candidates are its neighbours and
   theirs), for what partition borders lost.
6. **finish** (driver): recall against exact search on a seeded sample (:func:`recall_truth`,
   :func:`recall_of`); the driver then adds the walk order and the cluster graphs and saves the
   index.

No stage depends on how many workers run it, so the same seed gives the same index on 1 or 100
workers (identical with the exact backend; NN-descent, multi-threaded, is not bit-reproducible).
"""

from __future__ import annotations

import contextlib
import glob as _glob
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.benchmark import measure
from graphwalk.build.graphs import (
    _drop_self,
    knn_lists,
)
from graphwalk.build.kernels import refine_rows
from graphwalk.errors import InputError

__all__ = [
    "ShardInfo",
    "assign_shard",
    "choose_partitions",
    "find_shards",
    "knn_partition",
    "merge_range",
    "parse_bytes",
    "refine_range",
    "sample_shard",
    "scan_shards",
    "sharded_recall",
]

#: bytes a partition's kNN search needs per item beyond its vector (ids, distances, the search's
#: own graph): the estimate ``worker_memory`` is compared with
KNN_BYTES_PER_ITEM = 400
DEFAULT_WORKER_MEMORY = 2 << 30
MERGE_RANGE = 1 << 18  # items per merge task
MAX_AUTO_REFINE = 4  # refine="auto": at most this many rounds ...
MIN_REFINE_GAIN = 0.005  # ... stopping when one adds less recall than this


@dataclass(frozen=True)
class ShardInfo:
    """One input shard: its path, its rows, and the id of its first item."""

    path: str
    rows: int
    first: int


@dataclass(frozen=True)
class _Spec:
    """What every stage needs to read a shard."""

    column: str
    dim: int
    label_column: str | None
    metric: str


def parse_bytes(text: str | int) -> int:
    """``"2G"``, ``"512M"``, ``"1.5GiB"`` or a number of bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        s = str(text).strip().upper().removesuffix("IB").removesuffix("B")
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(s[-1:], 1)
        try:
            value = int(float(s[:-1] if mult > 1 else s) * mult)
        except ValueError:
            raise InputError(
                f"--worker-memory should be a size such as 2G or 512M, but got {text!r}"
            ) from None
    if value < (1 << 20):
        raise InputError(f"--worker-memory should be at least 1M, but got {text!r}")
    return int(value)


# ------------------------------------------------------------------------------------- 1 scan
def find_shards(embeddings: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """The shard paths: a glob pattern (``"shards/*.parquet"``), a directory (its ``*.parquet``),
    one file, or a list of paths; sorted, so the item numbering does not depend on the listing."""
    if isinstance(embeddings, (str, os.PathLike)):
        text = os.fspath(embeddings)
        if any(c in text for c in "*?["):
            paths = sorted(_glob.glob(text))
            if not paths:
                raise InputError(f"--embeddings {text!r} matches no files; check the pattern")
        elif os.path.isdir(text):
            paths = sorted(str(p) for p in Path(text).glob("*.parquet"))
            if not paths:
                raise InputError(f"--embeddings {text}: the directory holds no *.parquet shards")
        else:
            paths = [text]
    else:
        paths = sorted(os.fspath(p) for p in embeddings)
        if not paths:
            raise InputError("no shards given: pass at least one Parquet file")
    for p in paths:
        if not os.path.isfile(p):
            raise InputError(f"shard {p} does not exist (or is not a file)")
    if len(set(paths)) != len(paths):
        raise InputError("a shard is listed twice; list each file once")
    return paths


def _vector_column(schema: Any, column: str | None, path: str) -> tuple[str, int | None, str]:
    """The vector column's name, width (None for variable-size lists) and value type."""
    import pyarrow as pa

    lists = [
        f.name for f in schema if pa.types.is_fixed_size_list(f.type) or pa.types.is_list(f.type)
    ]
    if column is None:
        if len(lists) != 1:
            raise InputError(
                f"shard {path} has {'no' if not lists else 'several'} list columns "
                f"{lists or ''}; name the vectors' column with --column NAME (a list of floats "
                "per row)"
            )
        column = lists[0]
    if column not in schema.names:
        raise InputError(f"shard {path} has no column {column!r}; it has {schema.names}")
    typ = schema.field(column).type
    if column not in lists or not (
        pa.types.is_floating(typ.value_type) or pa.types.is_integer(typ.value_type)
    ):
        raise InputError(
            f"column {column!r} of shard {path} has type {typ}; the vectors should be a list of "
            "numbers per row (fixed_size_list<float> or list<float>)"
        )
    width = typ.list_size if pa.types.is_fixed_size_list(typ) else None
    return column, width, str(typ.value_type)


def scan_shards(
    paths: Sequence[str],
    *,
    column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
) -> tuple[list[ShardInfo], str, int]:
    """Stage 1: row counts, the vector column, its width and type from the footers (one
    row read per shard whose vectors are variable-size lists); ids checked unique.

    Returns ``(shards, column, dim)``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    shards: list[ShardInfo] = []
    first = 0
    dim: int | None = None
    vtype: str | None = None
    first_path = ""
    ids: list[npt.NDArray[np.int64]] = []
    for path in paths:
        try:
            f = pq.ParquetFile(path)
            schema = f.schema_arrow
            rows = int(f.metadata.num_rows)
        except (pa.ArrowException, OSError) as exc:
            hint = "remove it or rewrite it"
            if Path(path).suffix.lower() in (".npy", ".npz", ".csv", ".txt", ".pt"):
                hint = (
                    "the sharded build (--engine, a directory or a pattern) reads Parquet "
                    "shards; for one .npy/.npz file drop --engine and the sharded options"
                )
            raise InputError(
                f"shard {path} is not a readable Parquet file ({' '.join(str(exc).split())}); "
                + hint
            ) from exc
        col, width, value_type = _vector_column(schema, column, path)
        column = col
        if rows == 0:
            raise InputError(f"shard {path} is empty (0 rows); remove it from the shards")
        if width is None:
            first_row = f.read_row_group(0, columns=[col]).column(col)[0].as_py()
            width = len(first_row) if first_row is not None else 0
        if width < 1:
            raise InputError(f"shard {path}: the vectors in column {col!r} have no dimensions")
        if dim is None:
            dim, vtype, first_path = width, value_type, path
        elif width != dim:
            raise InputError(
                f"shard {path} has {width}-d vectors, but {first_path} has {dim}-d: every shard "
                "must hold vectors of the same width"
            )
        elif value_type != vtype:
            raise InputError(
                f"shard {path} stores its vectors as {value_type}, but {first_path} as {vtype}: "
                "write every shard with the same type"
            )
        for extra, what in ((label_column, "--label-column"), (id_column, "--id-column")):
            if extra is None:
                continue
            if extra not in schema.names:
                raise InputError(f"shard {path} has no {what} {extra!r}; it has {schema.names}")
            if not pa.types.is_integer(schema.field(extra).type):
                raise InputError(
                    f"{what} {extra!r} of shard {path} has type {schema.field(extra).type}; it "
                    "should hold integers"
                )
        if id_column is not None:
            col_ids = pq.read_table(path, columns=[id_column]).column(id_column)
            if col_ids.null_count:
                raise InputError(f"--id-column {id_column!r} of shard {path} has null ids")
            ids.append(np.asarray(col_ids.to_numpy(), np.int64))
        shards.append(ShardInfo(path, rows, first))
        first += rows
    assert column is not None and dim is not None
    if ids:
        every = np.concatenate(ids)
        uniq, counts = np.unique(every, return_counts=True)
        if (counts > 1).any():
            dup = int(uniq[counts > 1][0])
            where = [s.path for s, a in zip(shards, ids, strict=True) if (a == dup).any()]
            raise InputError(
                f"id {dup} appears {int(counts[counts > 1][0])} times (in {', '.join(where[:3])}); "
                f"{int((counts > 1).sum())} ids are repeated across shards: each item once"
            )
    return shards, column, dim


def _read_shard(
    shard: ShardInfo, spec: _Spec
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64] | None]:
    """A shard's vectors (float32, finite, unit length for cosine) and labels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = [spec.column] + ([spec.label_column] if spec.label_column else [])
    try:
        t = pq.read_table(shard.path, columns=cols)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(
            f"shard {shard.path} cannot be read ({' '.join(str(exc).split())}); was it changed "
            "during the build?"
        ) from exc
    if t.num_rows != shard.rows:
        raise InputError(
            f"shard {shard.path} has {t.num_rows} rows, {shard.rows} when the build started: "
            "it changed during the build; rerun"
        )
    col = t.column(spec.column).combine_chunks()
    if col.null_count:
        raise InputError(f"column {spec.column!r} of shard {shard.path} has null rows")
    values = col.flatten()
    if values.null_count or len(values) != shard.rows * spec.dim:
        raise InputError(
            f"column {spec.column!r} of shard {shard.path} has rows that are not {spec.dim} "
            "numbers each (null values or rows of other lengths)"
        )
    x = np.asarray(values.to_numpy(zero_copy_only=False), np.float32).reshape(shard.rows, spec.dim)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"shard {shard.path} has {int(bad.sum())} vectors with NaN or infinite values (the "
            f"first at row {row}, item {shard.first + row}); clean or drop them"
        )
    if spec.metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if (norms == 0).any():
            row = int(np.flatnonzero(norms[:, 0] == 0)[0])
            raise InputError(
                f"shard {shard.path} has a zero vector at row {row}: cosine needs a direction; "
                "drop it or use --metric l2"
            )
        x = (x / norms).astype(np.float32)
    labels = None
    if spec.label_column:
        lab = t.column(spec.label_column)
        if lab.null_count:
            raise InputError(f"--label-column of shard {shard.path} has null labels")
        labels = np.asarray(lab.to_numpy(), np.int64)
    return np.ascontiguousarray(x), labels


# ----------------------------------------------------------------------------------- 2 sample
def sample_shard(shard: ShardInfo, spec: _Spec, rows: npt.NDArray[np.int64]) -> Any:
    """Stage 2 (a task per shard): the vectors of the sampled rows (global ids) of this shard."""
    x, _ = _read_shard(shard, spec)
    return x[rows - shard.first]


def _kmeans(x: npt.NDArray[np.float32], k: int, seed: int) -> npt.NDArray[np.float32]:
    from graphwalk.build.cluster import kmeans_level

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty clusters are dropped; the count is what is used
        return kmeans_level(x, k, seed=seed).centroids


def _nearest(x: npt.NDArray[np.float32], c: npt.NDArray[np.float32], m: int) -> Any:
    import faiss

    _, ids = faiss.knn(x, c, m)
    return ids


def choose_partitions(
    sample: npt.NDArray[np.float32],
    n: int,
    *,
    budget: int,
    overlap: int,
    seed: int,
    partitions: int | None = None,
) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
    """The coarse partition centroids: ``partitions`` of them, or the fewest (grown by half
    each time) whose largest partition, with its overlap, fits ``budget`` bytes, estimated
    from the sample's 2-nearest assignment. The growth stops, with a warning, when 2.25 times
    the partitions leave the largest not a tenth smaller (or reach a quarter of the sample)."""
    d = sample.shape[1]
    per_item = 4 * d + KNN_BYTES_PER_ITEM
    scale = n / sample.shape[0]
    p = partitions or max(1, math.ceil(overlap * n * per_item / budget))
    if partitions is None and 1 < p <= overlap:
        p = overlap + 1  # with P <= overlap every partition would hold every item
    tried = []
    while True:
        if p == 1:
            cent = sample.mean(axis=0, keepdims=True).astype(np.float32)
            largest = n
        else:
            cent = _kmeans(sample, min(p, sample.shape[0]), seed)
            near = _nearest(sample, cent, min(overlap, cent.shape[0]))
            most = int(np.bincount(near.reshape(-1), minlength=len(cent)).max())
            largest = math.ceil(most * scale)
        est = largest * per_item
        tried.append({"partitions": int(cent.shape[0]), "largest_estimate": largest, "bytes": est})
        if partitions is not None or est <= budget or p >= sample.shape[0] // 4:
            break
        if len(tried) >= 3 and largest > 0.9 * tried[-3]["largest_estimate"]:
            break  # 2.25 times the partitions, not a tenth smaller: many items at one point
        p = max(p + 1, math.ceil(p * 1.5))
        if p <= overlap:
            p = overlap + 1
    if partitions is None and tried[-1]["bytes"] > budget:
        warnings.warn(
            f"the largest of {cent.shape[0]} partitions is estimated at "
            f"{tried[-1]['bytes'] / 2**20:,.0f} MiB, over the worker memory "
            f"{budget / 2**20:,.0f} MiB, and more partitions do not shrink it (many items at "
            "one point?): raise --worker-memory, or check the vectors",
            stacklevel=2,
        )
    info = {
        "partitions": int(cent.shape[0]),
        "overlap": int(min(overlap, cent.shape[0])),
        "worker_memory": int(budget),
        "bytes_per_item": per_item,
        "tried": tried,
        "fits": bool(tried[-1]["bytes"] <= budget),
    }
    return cent, info


# ----------------------------------------------------------------------------------- 3 assign
def assign_shard(
    i: int,
    shard: ShardInfo,
    spec: _Spec,
    level_centroids: npt.NDArray[np.float32] | None,
    part_centroids: npt.NDArray[np.float32],
    overlap: int,
    n: int,
    work: str,
) -> dict[str, Any]:
    """Stage 3 (a task per shard): cluster of each item, its vector into its ``overlap``
    nearest partitions (``part-P/sNNNNN.{ids,vec}.npy``), and into the shared ``vectors.npy``."""
    root = Path(work)
    x, labels = _read_shard(shard, spec)
    if level_centroids is not None:
        np.save(
            root / f"assign-{i:06d}.npy", _nearest(x, level_centroids, 1)[:, 0].astype(np.int32)
        )
    if labels is not None:
        np.save(root / f"labels-{i:06d}.npy", labels)
    vec = np.load(root / "vectors.npy", mmap_mode="r+")
    vec[shard.first : shard.first + shard.rows] = x
    vec.flush()
    del vec
    ids = np.arange(shard.first, shard.first + shard.rows, dtype=np.int64)
    if part_centroids.shape[0] == 1:
        near = np.zeros((shard.rows, 1), np.int64)
    else:
        near = _nearest(x, part_centroids, overlap)
    counts = []
    for p in range(part_centroids.shape[0]):
        rows = np.flatnonzero((near == p).any(axis=1))
        counts.append(int(rows.size))
        if rows.size:
            d = root / f"part-{p:05d}"
            d.mkdir(exist_ok=True)
            np.save(d / f"s{i:06d}.ids.npy", ids[rows])
            np.save(d / f"s{i:06d}.vec.npy", x[rows])
    return {"partition_counts": counts}


# ------------------------------------------------------------------------------- 4 partition
def knn_partition(
    p: int, work: str, k: int, backend: str, seed: int, n: int, range_size: int
) -> dict[str, Any]:
    """Stage 4 (a task per partition): kNN inside the partition; candidate edges out, bucketed by
    the merge range of their source item (``cand/rR-pP.npz``). Returns its items, method,
    seconds and how far the process's resident memory rose above its start (``peak_mib``;
    None where /proc does not tell): the memory the partition took, which
    ``--worker-memory`` sizes."""
    with measure() as used:
        out = _knn_partition(p, work, k, backend, seed, n, range_size)
    out["peak_mib"] = used.peak_increase_mib
    return out


def _knn_partition(
    p: int, work: str, k: int, backend: str, seed: int, n: int, range_size: int
) -> dict[str, Any]:
    root = Path(work)
    d = root / f"part-{p:05d}"
    files = sorted(d.glob("s*.ids.npy"))
    if not files:
        return {"items": 0}
    ids = np.concatenate([np.load(f) for f in files])
    x = np.concatenate([np.load(str(f).replace(".ids.npy", ".vec.npy")) for f in files])
    m = ids.shape[0]
    kk = min(k, m - 1)
    t0 = time.perf_counter()
    if kk < 1:
        return {"items": int(m), "method": "none", "seconds": 0.0}
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        local, dist, params = knn_lists(x, kk, backend=backend, seed=seed)
    # the distances again, in one fixed order of operations: faiss's BLAS search rounds
    # differently with another thread count (a Ray task runs single-threaded), and the merge,
    # the refinement and the weights must not depend on where a partition ran
    dist = _sq_dists(x, local)
    order = np.lexsort((local, dist), axis=1)  # nearest first, ties by position
    local = np.take_along_axis(local, order, axis=1)
    dist = np.take_along_axis(dist, order, axis=1)
    src = np.repeat(ids, kk)
    dst = ids[local.reshape(-1)]
    dd = dist.reshape(-1).astype(np.float32)
    bucket = src // range_size
    order = np.argsort(bucket, kind="stable")
    src, dst, dd, bucket = src[order], dst[order], dd[order], bucket[order]
    cut = np.flatnonzero(np.diff(bucket)) + 1
    (root / "cand").mkdir(exist_ok=True)
    for s, e in zip(np.r_[0, cut], np.r_[cut, src.size], strict=True):
        r = int(bucket[s])
        np.savez(root / "cand" / f"r{r:06d}-p{p:05d}.npz", src=src[s:e], dst=dst[s:e], dist=dd[s:e])
    shutil.rmtree(d)  # the partition's copy of the vectors is no longer needed
    return {"items": int(m), "method": params["method"], "seconds": time.perf_counter() - t0}


def _sq_dists(x: npt.NDArray[np.float32], nbr: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Squared L2 distance from each row of ``x`` to its neighbours ``nbr`` (rows of ``x``),
    summed in NumPy's fixed order (the same result on any machine and thread count)."""
    out = np.empty(nbr.shape, np.float32)
    step = max(1, (1 << 24) // max(1, nbr.shape[1] * x.shape[1]))
    for s in range(0, nbr.shape[0], step):
        e = min(nbr.shape[0], s + step)
        diff = x[nbr[s:e]] - x[s:e, None, :]
        out[s:e] = np.einsum("ijk,ijk->ij", diff, diff)
    return out


# ------------------------------------------------------------------------------------ 5 merge
def _best_k(
    src: npt.NDArray[np.int64],
    dst: npt.NDArray[np.int64],
    dist: npt.NDArray[np.float32],
    lo: int,
    hi: int,
    k: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Rows ``lo..hi``: each item's ``k`` nearest distinct candidates (ties: smaller id first);
    ``-1`` where fewer were found."""
    keep = src != dst
    src, dst, dist = src[keep], dst[keep], dist[keep]
    # a pair found twice (in two partitions, or again through a neighbour): its smallest distance
    order = np.lexsort((dist, dst, src))
    src, dst, dist = src[order], dst[order], dist[order]
    first = np.ones(src.size, bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    src, dst, dist = src[first], dst[first], dist[first]
    order = np.lexsort((dst, dist, src))  # nearest first, ties by smaller id
    src, dst, dist = src[order], dst[order], dist[order]
    rows = hi - lo
    out_ids = np.full((rows, k), -1, np.int64)
    out_d = np.full((rows, k), np.inf, np.float32)
    if src.size:
        starts = np.searchsorted(src, np.arange(lo, hi))
        rank = np.arange(src.size) - starts[src - lo]
        take = rank < k
        out_ids[src[take] - lo, rank[take]] = dst[take]
        out_d[src[take] - lo, rank[take]] = dist[take]
    return out_ids, out_d


def merge_range(r: int, lo: int, hi: int, work: str, k: int) -> int:
    """Stage 5 (a task per item range): the ``k`` best distinct candidates of items ``lo..hi``
    from every partition, into rows of ``knn_ids.npy``/``knn_dist.npy``. Returns the number of
    rows left short of ``k``."""
    root = Path(work)
    parts = [np.load(f) for f in sorted((root / "cand").glob(f"r{r:06d}-p*.npz"))]
    if parts:
        src = np.concatenate([q["src"] for q in parts])
        dst = np.concatenate([q["dst"] for q in parts])
        dist = np.concatenate([q["dist"] for q in parts])
    else:
        src = dst = np.empty(0, np.int64)
        dist = np.empty(0, np.float32)
    ids, dd = _best_k(src, dst, dist, lo, hi, k)
    out_i = np.load(root / "knn_ids.npy", mmap_mode="r+")
    out_d = np.load(root / "knn_dist.npy", mmap_mode="r+")
    out_i[lo:hi], out_d[lo:hi] = ids, dd
    out_i.flush()
    out_d.flush()
    return int((ids < 0).any(axis=1).sum())


def refine_range(lo: int, hi: int, work: str, k: int, src_name: str, dst_name: str) -> int:
    """Stage 5b (a task per item range): neighbours of neighbours. Each item's candidates are
    its ``k`` neighbours and theirs; the ``k`` nearest are kept. Returns how many rows changed."""
    root = Path(work)
    vec = np.load(root / "vectors.npy", mmap_mode="r")
    ids_in = np.load(root / f"{src_name}_ids.npy", mmap_mode="r")
    d_in = np.load(root / f"{src_name}_dist.npy", mmap_mode="r")
    out_i = np.load(root / f"{dst_name}_ids.npy", mmap_mode="r+")
    out_d = np.load(root / f"{dst_name}_dist.npy", mmap_mode="r+")
    changed = 0
    chunk = 65536
    v, ii, dd = np.asarray(vec), np.asarray(ids_in), np.asarray(d_in)
    for s in range(lo, hi, chunk):
        e = min(hi, s + chunk)
        bi = np.empty((e - s, k), np.int64)
        bd = np.empty((e - s, k), np.float32)
        changed += int(refine_rows(v, ii, dd, s, e, bi, bd))
        out_i[s:e], out_d[s:e] = bi, bd
    out_i.flush()
    out_d.flush()
    return changed


# ----------------------------------------------------------------------------------- 6 finish
def _exact_chunked(
    vectors: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], m: int, chunk: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The ``m`` nearest of all ``vectors`` (a memory map is enough: read ``chunk`` rows at a
    time) to each of ``rows``, exact: ``(ids, squared distances)``, nearest first."""
    import faiss

    q = np.asarray(vectors[rows], np.float32)
    best_d = np.full((rows.size, m), np.inf, np.float32)
    best_i = np.full((rows.size, m), -1, np.int64)
    for s in range(0, vectors.shape[0], chunk):
        block = np.ascontiguousarray(vectors[s : s + chunk], np.float32)
        d, i = faiss.knn(q, block, min(m, block.shape[0]))
        d_all = np.concatenate([best_d, d], axis=1)
        i_all = np.concatenate([best_i, i + s], axis=1)
        order = np.argsort(d_all, axis=1, kind="stable")[:, :m]
        best_d = np.take_along_axis(d_all, order, axis=1)
        best_i = np.take_along_axis(i_all, order, axis=1)
    return best_i, best_d


def recall_truth(
    vectors: npt.NDArray[np.float32], k: int, *, sample: int, seed: int, chunk: int = 1 << 20
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A seeded sample of rows (the sample of :func:`~graphwalk.build.graphs.knn_recall`, so
    the two builds are checked on the same items) and their true ``k`` neighbours, by exact
    search over all ``vectors`` (read in chunks: a memory map is enough)."""
    n = vectors.shape[0]
    m = min(sample, n)
    rows = np.sort(np.random.default_rng([int(seed), 0x7263]).choice(n, size=m, replace=False))
    best_i, best_d = _exact_chunked(vectors, rows, k + 1, chunk)
    true_ids, _ = _drop_self(best_i, best_d, k, rows)
    return rows, true_ids


def recall_of(ids: Any, rows: npt.NDArray[np.int64], true_ids: npt.NDArray[np.int64]) -> float:
    """The share of the sampled rows' true neighbours found in their lists ``ids[rows]``."""
    found = np.asarray(ids[rows])
    hits = sum(np.intersect1d(a, b).size for a, b in zip(found, true_ids, strict=True))
    return hits / float(true_ids.size)


def sharded_recall(
    vectors: npt.NDArray[np.float32],
    ids: npt.NDArray[np.integer],
    *,
    sample: int,
    seed: int,
    chunk: int = 1 << 20,
) -> tuple[float, int]:
    """Recall of the kNN lists ``ids`` against exact search over all ``vectors`` on a seeded
    sample of rows: ``(recall, sample size)``."""
    rows, truth = recall_truth(vectors, ids.shape[1], sample=sample, seed=seed, chunk=chunk)
    return recall_of(ids, rows, truth), int(rows.size)


def _fill_short_rows(
    vectors: npt.NDArray[np.float32], ids: Any, dist: Any, k: int, chunk: int = 1 << 20
) -> int:
    """Rows with fewer than ``k`` neighbours (tiny partitions): exact search over everything."""
    short = np.flatnonzero((np.asarray(ids) < 0).any(axis=1))
    if not short.size:
        return 0
    best_i, best_d = _exact_chunked(vectors, short, k + 1, chunk)
    fi, fd = _drop_self(best_i, best_d, k, short)
    ids[short], dist[short] = fi, fd
    return int(short.size)
