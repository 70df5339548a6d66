"""The arrays layout of an index (format version 2): every array one uncompressed ``.npy`` file,
memory-mapped when the index is opened.

Opening reads the manifest and each file's 128-byte ``.npy`` header, nothing else: sizes, dtypes
and shapes are checked against the manifest (and against each other: a graph's ``indptr`` has one
more entry than it has nodes, ...), so a truncated, swapped or foreign file is refused at once,
and the open costs the same at 1M and at 100M items. DataLoader workers forked after the open share
the pages. What needs every byte (the SHA-256 checksums, and the structure: ids in range, rows
without self-loops or repeats, the walk order a permutation of the graph's rows) is
:func:`verify_arrays`, run by :meth:`GraphIndex.verify` (or ``graphwalk inspect --verify``),
which records its result in ``verified.json`` beside the manifest.

Files (``NNN`` is the entry's position in the manifest)::

    label-NNN.npy                         int64 (n_items,)      one per label set
    level-NNN-assignment.npy              int32 (n_items,)      each item's cluster
    level-NNN-centroids.npy               float32 (k, dim)
    level-NNN-values.npy                  int64 (k,)
    level-NNN-members.npy                 int32 (n_items,)      items grouped by cluster (CSR)
    level-NNN-members_indptr.npy          int64 (k + 1,)
    graph-NNN-indptr.npy                  int64 (n_nodes + 1,)  CSR
    graph-NNN-indices.npy                 int32 (n_edges,)
    graph-NNN-weights.npy                 float32 (n_edges,)
    graph-NNN-walk_order.npy ...          item graphs: the walk order (order, position, and the
                                          graph renumbered: walk_indptr, walk_indices, walk_weights)
"""

from __future__ import annotations

import os
import tokenize
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import IndexFormatError
from graphwalk.index.kernels import first_bad_row, group_members
from graphwalk.index.storage import (
    GraphEntry,
    Manifest,
    TableEntry,
    file_digest,
)
from graphwalk.index.types import Graph, Level, WalkOrder

if TYPE_CHECKING:
    from graphwalk.index.artifact import GraphIndex

__all__ = [
    "check_structure",
    "graph_from_entry",
    "open_arrays",
    "save_arrays",
    "verify_arrays",
    "write_array",
]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_array(path: Path, arr: npt.ArrayLike, dtype: Any) -> dict[str, Any]:
    """Write one C-ordered array as ``.npy`` (fsynced); its manifest entry: rows, bytes, SHA-256,
    dtype and shape."""
    a = np.ascontiguousarray(arr, dtype=dtype)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, a, allow_pickle=False)
    _fsync(path)
    return {
        "rows": int(a.shape[0]),
        "bytes": path.stat().st_size,
        "sha256": file_digest(path),
        "dtype": a.dtype.str,
        "shape": [int(s) for s in a.shape],
    }


def _index_dtype(n: int) -> Any:
    return np.int32 if n < 2**31 else np.int64


def save_arrays(index: GraphIndex, tmp: Path) -> dict[str, Any]:
    """Write every array of ``index`` into the directory ``tmp``; the manifest's entries."""
    tables: dict[str, Any] = {}

    def put(fname: str, arr: npt.ArrayLike, dtype: Any) -> str:
        tables[fname] = write_array(tmp / fname, arr, dtype)
        return fname

    label_arrays = {
        name: put(f"label-{i:03d}.npy", y, np.int64)
        for i, (name, y) in enumerate(index.labels.items())
    }
    level_meta = []
    for i, (name, lv) in enumerate(index.levels.items()):
        indptr, members = index.members(name)
        stem = f"level-{i:03d}"
        files = {
            "assignment": put(f"{stem}-assignment.npy", lv.assignment, np.int32),
            "centroids": put(f"{stem}-centroids.npy", lv.centroids, np.float32),
            "values": put(f"{stem}-values.npy", lv.values, np.int64),
            "members": put(f"{stem}-members.npy", members, _index_dtype(index.n_items)),
            "members_indptr": put(f"{stem}-members_indptr.npy", indptr, np.int64),
        }
        level_meta.append(
            {
                "name": name,
                "arrays": files,
                "source": lv.source,
                "space": lv.space,
                "n_clusters": lv.n_clusters,
                "dim": int(lv.centroids.shape[1]),
                "params": lv.params,
            }
        )
    graph_meta = []
    for i, (name, g) in enumerate(index.graphs.items()):
        stem = f"graph-{i:03d}"
        files = {
            "indptr": put(f"{stem}-indptr.npy", g.indptr, np.int64),
            "indices": put(f"{stem}-indices.npy", g.indices, np.int32),
            "weights": put(f"{stem}-weights.npy", g.weights, np.float32),
        }
        meta: dict[str, Any] = {"name": name, "arrays": files, **g.describe()}
        if g.walk is not None:
            w = g.walk
            for key, arr, dt in (
                ("walk_order", w.order, np.int32),
                ("walk_position", w.position, np.int32),
                ("walk_indptr", w.indptr, np.int64),
                ("walk_indices", w.indices, np.int32),
                ("walk_weights", w.weights, np.float32),
            ):
                files[key] = put(f"{stem}-{key}.npy", arr, dt)
            meta["walk"] = {"method": w.method}
        graph_meta.append(meta)
    return {
        "label_arrays": label_arrays,
        "levels": level_meta,
        "graphs": graph_meta,
        "tables": tables,
    }


# ---------------------------------------------------------------------------------------- open
def _open(
    root: Path, fname: str, entry: TableEntry, dtype: Any, shape: tuple[int, ...]
) -> npt.NDArray[Any]:
    """One array, memory-mapped read-only, after checking (from its header alone) that it is the
    file the manifest lists: its size, and the dtype and shape the index needs."""
    where = f"array {fname} of index {root}"
    f = root / fname
    if not f.is_file():
        raise IndexFormatError(f"index {root} is missing its array {fname}; rebuild the index")
    size = f.stat().st_size
    if size != entry.bytes:
        raise IndexFormatError(
            f"{where} has {size} bytes, the manifest says {entry.bytes}: the file is truncated "
            "or was replaced; rebuild the index"
        )
    want = np.dtype(dtype)
    try:
        with open(f, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            got_shape, fortran, got_dtype = read(fh, max_header_size=10_000)
            offset = fh.tell()
    except (ValueError, OSError, SyntaxError, TypeError, tokenize.TokenError) as exc:
        # NumPy's header parser falls back to tokenize when ast rejects a damaged header
        raise IndexFormatError(
            f"{where} is not a readable .npy file ({' '.join(str(exc).split())}); rebuild the index"
        ) from exc
    if got_dtype != want or fortran:
        raise IndexFormatError(
            f"{where} holds {got_dtype}{' (Fortran order)' if fortran else ''}, expected {want}; "
            "rebuild the index"
        )
    if tuple(got_shape) != tuple(shape) or list(got_shape) != list(entry.shape or []):
        raise IndexFormatError(
            f"{where} has shape {tuple(got_shape)}, expected {tuple(shape)} (manifest: "
            f"{tuple(entry.shape or [])}); rebuild the index"
        )
    if offset + want.itemsize * int(np.prod(shape)) != size:
        raise IndexFormatError(
            f"{where}: {size} bytes do not hold a {tuple(shape)} {want} array; rebuild the index"
        )
    if int(np.prod(shape)) == 0:
        out = np.empty(shape, want)
    else:
        out = np.asarray(np.memmap(f, dtype=want, mode="r", offset=offset, shape=shape))
    out.flags.writeable = False
    return out


def open_arrays(cls: type[GraphIndex], root: Path, raw: dict[str, Any], m: Manifest) -> GraphIndex:
    """Open an index of the arrays layout: O(1) in its size (headers and a few scalars read)."""
    n = m.n_items
    tables = m.tables

    def arr(fname: str, dtype: Any, shape: tuple[int, ...]) -> npt.NDArray[Any]:
        return _open(root, fname, tables[fname], dtype, shape)

    idx = cls(n, spaces=dict(m.spaces), build_params=dict(m.build))
    for name in m.labels:
        idx.labels[name] = arr(m.label_arrays[name], np.int64, (n,))
    for lm in m.levels:
        k, d = lm.n_clusters, lm.dim
        a = lm.arrays or {}
        level = Level(
            lm.name,
            arr(a["assignment"], np.int32, (n,)),
            arr(a["centroids"], np.float32, (k, d)),
            arr(a["values"], np.int64, (k,)),
            lm.source,
            lm.space,
            dict(lm.params),
        )
        members_indptr = arr(a["members_indptr"], np.int64, (k + 1,))
        members = arr(a["members"], _index_dtype(n), (n,))
        _ends(members_indptr, n, root, a["members_indptr"], f"level {lm.name!r}")
        idx.levels[lm.name] = level
        idx._members[lm.name] = (members_indptr, members)
    for gm in m.graphs:
        nn_, ne = gm.n_nodes, gm.n_edges
        a = gm.arrays or {}
        indptr = arr(a["indptr"], np.int64, (nn_ + 1,))
        _ends(indptr, ne, root, a["indptr"], f"graph {gm.name!r}")
        walk = None
        if gm.walk is not None:
            w_indptr = arr(a["walk_indptr"], np.int64, (nn_ + 1,))
            _ends(w_indptr, ne, root, a["walk_indptr"], f"graph {gm.name!r}")
            walk = WalkOrder(
                arr(a["walk_order"], np.int32, (nn_,)),
                arr(a["walk_position"], np.int32, (nn_,)),
                w_indptr,
                arr(a["walk_indices"], np.int32, (ne,)),
                arr(a["walk_weights"], np.float32, (ne,)),
                gm.walk.method,
            )
        idx.graphs[gm.name] = graph_from_entry(
            gm,
            indptr,
            arr(a["indices"], np.int32, (ne,)),
            arr(a["weights"], np.float32, (ne,)),
            walk,
        )
    idx.manifest = raw
    idx.path = root
    return idx


def graph_from_entry(
    gm: GraphEntry,
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    weights: npt.NDArray[np.float32],
    walk: WalkOrder | None,
) -> Graph:
    """A stored graph from its manifest entry and its arrays (both layouts)."""
    return Graph(
        gm.name,
        gm.kind,
        indptr,
        indices,
        weights,
        level=gm.level if gm.kind == "cluster" else None,
        space=gm.space if gm.kind == "item" else None,
        directed=gm.directed,
        params=dict(gm.params),
        walk=walk,
    )


def _ends(indptr: npt.NDArray[np.int64], total: int, root: Path, fname: str, what: str) -> None:
    """A CSR ``indptr`` starts at 0 and ends at its entry count (two reads: O(1))."""
    if indptr[0] != 0 or indptr[-1] != total:
        raise IndexFormatError(
            f"array {fname} of index {root} ({what}) runs from {int(indptr[0])} to "
            f"{int(indptr[-1])}, not from 0 to {total}; rebuild the index"
        )


# -------------------------------------------------------------------------------------- verify
def verify_arrays(index: GraphIndex, root: Path, m: Manifest) -> None:
    """Every byte of an arrays-layout index: checksums, then the structure the open could not
    check (O(items + edges)). Raises :class:`IndexFormatError` naming the first problem."""
    for fname, entry in m.tables.items():
        if file_digest(root / fname) != entry.sha256:
            raise IndexFormatError(
                f"array {fname} of index {root} fails its SHA-256 checksum: the file is "
                "corrupted or was modified; rebuild the index"
            )
    check_structure(index, root, m)


def check_structure(index: GraphIndex, root: Path, m: Manifest) -> None:
    """The structure of an arrays-layout index (ids in range, rows without self-loops or
    repeats, walk orders, members), without the checksums: what anything that reads every
    array anyway (``graphwalk inspect``) checks first, since out-of-range ids would send
    compiled code outside its arrays."""

    def bad(fname: str, msg: str) -> IndexFormatError:
        return IndexFormatError(f"array {fname} of index {root}: {msg}; rebuild the index")

    for lm in m.levels:
        a, lv = lm.arrays or {}, index.levels[lm.name]
        k = lv.n_clusters
        if lv.assignment.size and (lv.assignment.min() < 0 or lv.assignment.max() >= k):
            raise bad(a["assignment"], f"assigns items to clusters outside [0, {k})")
        if not np.isfinite(lv.centroids).all():
            raise bad(a["centroids"], "centroids are not finite")
        indptr = np.zeros(k + 1, np.int64)
        members = np.empty(index.n_items, _index_dtype(index.n_items))
        group_members(np.ascontiguousarray(lv.assignment), indptr, members)
        got_indptr, got_members = index.members(lm.name)
        if not np.array_equal(indptr, got_indptr) or not np.array_equal(members, got_members):
            raise bad(a["members"], f"does not group the items of level {lm.name!r} by cluster")
    for gm in m.graphs:
        a, g = gm.arrays or {}, index.graphs[gm.name]
        _check_csr(g.indptr, g.indices, g.weights, root, a, "", gm.name)
        if g.walk is not None:
            w, n = g.walk, g.n_nodes
            if n and (
                w.position.min() < 0
                or w.position.max() >= n
                or (np.bincount(w.position, minlength=n) != 1).any()
            ):
                raise bad(a["walk_position"], "is not a permutation of the graph's nodes")
            if not np.array_equal(w.order[w.position], np.arange(n, dtype=np.int32)):
                raise bad(a["walk_order"], "is not the inverse of walk_position")
            _check_csr(w.indptr, w.indices, w.weights, root, a, "walk_", gm.name)
            same = np.array_equal(np.diff(w.indptr), np.diff(g.indptr)[w.order]) and (
                np.array_equal(w.order[w.indices], g.indices[_renumbered_edges(g, w)])
            )
            if not same:
                raise bad(a["walk_indices"], f"is not graph {gm.name!r} in its walk order")


def _renumbered_edges(g: Graph, w: WalkOrder) -> npt.NDArray[np.int64]:
    """For each edge of the walk's CSR, the position of the same edge in the graph's CSR."""
    deg = np.diff(w.indptr)
    off = np.arange(int(deg.sum())) - np.repeat(w.indptr[:-1], deg)
    return np.repeat(g.indptr[w.order], deg) + off


def _check_csr(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    weights: npt.NDArray[np.float32],
    root: Path,
    files: dict[str, str],
    prefix: str,
    name: str,
) -> None:
    n = indptr.shape[0] - 1

    def bad(key: str, msg: str) -> IndexFormatError:
        return IndexFormatError(
            f"array {files[prefix + key]} of index {root} (graph {name!r}): {msg}; rebuild the index"
        )

    if (np.diff(indptr) < 0).any():
        raise bad("indptr", "is not non-decreasing")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise bad("indices", f"has node ids outside [0, {n})")
    if weights.size and not (np.isfinite(weights).all() and (weights > 0).all()):
        raise bad("weights", "has edge weights that are NaN, infinite, zero or negative")
    u = int(first_bad_row(indptr, indices))
    if u >= 0:
        raise bad("indices", f"node {u} has a self-loop or a repeated neighbour")
