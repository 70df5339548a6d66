"""`GraphIndex`: the immutable, checked artifact that the indexer writes and samplers read.

On disk (``NAME.gw/``, format version 1)::

    manifest.json        format, versions, parameters, tables with row counts, sizes, SHA-256
    items.parquet        item int64, label.<NAME> int64 per label set, cluster.<LEVEL> int32 per
                         level, walk.<GRAPH> int32 per item graph (the item's node in its walk order)
    level-NNN.parquet    cluster int32, size int64, value int64, centroid fixed_size_list<float32>
    graph-NNN.parquet    src int32, dst int32, weight float32 (rows sorted by src: CSR order)
    graph-NNN-walk.parquet  an item graph renumbered in its walk order (same columns; optional)

See the README for the full schema.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk._files import atomic_write
from graphwalk.errors import IndexFormatError, InputError
from graphwalk.index.arrays import (
    check_structure,
    graph_from_entry,
    open_arrays,
    save_arrays,
    verify_arrays,
)
from graphwalk.index.kernels import first_bad_row, group_members
from graphwalk.index.storage import (
    ARRAYS_FORMAT_VERSION,
    FORMAT_NAME,
    LAYOUTS,
    MANIFEST,
    PARQUET_FORMAT_VERSION,
    GraphEntry,
    TableEntry,
    atomic_directory,
    check_manifest,
    file_digest,
    read_manifest,
    write_json,
    write_parquet,
)
from graphwalk.index.types import Graph, Level, WalkOrder

__all__ = ["ARRAYS_FROM", "GraphIndex", "resolve_layout"]

ITEMS = "items.parquet"
VERIFIED = "verified.json"  # the last verify()'s result, beside the manifest
ARRAYS_FROM = 1_000_000  # save(layout="auto") writes the arrays layout from this many items on


def resolve_layout(layout: str, n_items: int) -> str:
    """The layout ``save`` writes for ``layout`` (``"auto"``: arrays from ARRAYS_FROM items)."""
    if layout == "auto":
        return "arrays" if n_items >= ARRAYS_FROM else "parquet"
    if layout not in LAYOUTS:
        raise InputError(f"layout should be one of {('auto', *LAYOUTS)}, but got {layout!r}")
    return layout


def _version() -> str:
    from graphwalk import __version__

    return __version__


class GraphIndex:
    """Items, their cluster levels and the graphs over them.

    Build one with :func:`graphwalk.build_index`, or read one with :meth:`GraphIndex.load`.
    Arrays are read-only views of what was loaded; samplers never mutate an index.

    Attributes:
        n_items: number of items (rows of the dataset the index was built from).
        labels: label sets by name (``"label"``, ``"superclass"``...), int64 arrays of length n_items.
        levels: cluster levels by name.
        graphs: graphs by name.
        manifest: the manifest (after :meth:`save` or :meth:`load`), including build parameters.
        path: where the index lives on disk, if anywhere.
    """

    def __init__(
        self,
        n_items: int,
        *,
        labels: dict[str, npt.NDArray[np.int64]] | None = None,
        levels: dict[str, Level] | None = None,
        graphs: dict[str, Graph] | None = None,
        spaces: dict[str, int] | None = None,
        build_params: dict[str, Any] | None = None,
    ):
        self.n_items = int(n_items)
        self.labels = dict(labels or {})
        self.levels = dict(levels or {})
        self.graphs = dict(graphs or {})
        self.spaces = dict(spaces or {})
        self.build_params = dict(build_params or {})
        self.manifest: dict[str, Any] = {}
        self.path: Path | None = None
        self._members: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.integer]]] = {}
        self._verification: dict[str, Any] | None = None

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return (
            f"GraphIndex(n_items={self.n_items}, levels={list(self.levels)}, "
            f"graphs={list(self.graphs)}{where})"
        )

    # ------------------------------------------------------------------ access
    def graph(self, name: str | None = None) -> Graph:
        """The graph called ``name`` (the only graph when ``name`` is None and there is one)."""
        if name is None:
            if len(self.graphs) != 1:
                raise InputError(
                    f"this index has graphs {sorted(self.graphs)}; name the one to use"
                )
            return next(iter(self.graphs.values()))
        try:
            return self.graphs[name]
        except KeyError:
            raise InputError(f"index has no graph {name!r}; it has {sorted(self.graphs)}") from None

    def level(self, name: str) -> Level:
        try:
            return self.levels[name]
        except KeyError:
            raise InputError(f"index has no level {name!r}; it has {sorted(self.levels)}") from None

    def members(self, level: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.integer]]:
        """CSR ``(indptr, items)`` of the items in each cluster of ``level``, items ascending
        within a cluster (int32 below 2**31 items; cached)."""
        if level not in self._members:
            lv = self.level(level)
            indptr = np.zeros(lv.n_clusters + 1, np.int64)
            order: npt.NDArray[np.integer] = np.empty(
                self.n_items, np.int32 if self.n_items < 2**31 else np.int64
            )
            group_members(np.ascontiguousarray(lv.assignment), indptr, order)
            order.flags.writeable = False
            indptr.flags.writeable = False
            self._members[level] = (indptr, order)
        return self._members[level]

    @property
    def fingerprint(self) -> str:
        """A short id of the stored content (from the table checksums); empty if never saved."""
        tables = self.manifest.get("tables", {})
        if not tables:
            return ""
        import hashlib

        h = hashlib.sha256("".join(t["sha256"] for _, t in sorted(tables.items())).encode())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ save
    def save(
        self, path: str | os.PathLike[str], *, overwrite: bool = False, layout: str = "auto"
    ) -> GraphIndex:
        """Write the index to the directory ``path`` (atomically: temp name, then rename).

        Args:
            layout: ``"parquet"`` (format version 1: compressed tables, read and checked whole at
                every load), ``"arrays"`` (format version 2: uncompressed ``.npy`` arrays,
                memory-mapped, so :meth:`load` is O(1) in the number of items; checksums by
                :meth:`verify`), or ``"auto"``: arrays from :data:`ARRAYS_FROM` items on.

        Raises:
            OutputExistsError: ``path`` exists and ``overwrite`` is false, or it is not an index.
            InputError: an unknown ``layout``.
        """
        chosen = resolve_layout(layout, self.n_items)
        out = Path(path)
        with atomic_directory(out, overwrite=overwrite) as tmp:
            if chosen == "arrays":
                parts = save_arrays(self, tmp)
                version = ARRAYS_FORMAT_VERSION
            else:
                parts = self._save_parquet(tmp)
                version = PARQUET_FORMAT_VERSION
            manifest = {
                "format": FORMAT_NAME,
                "format_version": version,
                "graphwalk_version": _version(),
                "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                **({"layout": "arrays"} if chosen == "arrays" else {}),
                "n_items": self.n_items,
                "spaces": self.spaces,
                "labels": list(self.labels),
                **({"label_arrays": parts["label_arrays"]} if chosen == "arrays" else {}),
                "levels": parts["levels"],
                "graphs": parts["graphs"],
                "tables": parts["tables"],
                "build": self.build_params,
            }
            write_json(manifest, tmp / MANIFEST)
        self.manifest = manifest
        self.path = out
        self._verification = None
        return self

    def _save_parquet(self, tmp: Path) -> dict[str, Any]:
        import pyarrow as pa

        tables: dict[str, Any] = {}
        cols: dict[str, Any] = {"item": pa.array(np.arange(self.n_items, dtype=np.int64))}
        for name, y in self.labels.items():
            cols[f"label.{name}"] = pa.array(np.asarray(y, np.int64))
        for name, lv in self.levels.items():
            cols[f"cluster.{name}"] = pa.array(np.asarray(lv.assignment, np.int32))
        for name, g in self.graphs.items():
            if g.walk is not None:
                cols[f"walk.{name}"] = pa.array(np.asarray(g.walk.position, np.int32))
        tables[ITEMS] = write_parquet(pa.table(cols), tmp / ITEMS, delta=["item"])
        level_meta = []
        for i, (name, lv) in enumerate(self.levels.items()):
            fname = f"level-{i:03d}.parquet"
            d = lv.centroids.shape[1]
            cent = pa.FixedSizeListArray.from_arrays(
                pa.array(np.ascontiguousarray(lv.centroids, np.float32).reshape(-1)), d
            )
            t = pa.table(
                {
                    "cluster": pa.array(np.arange(lv.n_clusters, dtype=np.int32)),
                    "size": pa.array(lv.sizes),
                    "value": pa.array(lv.values),
                    "centroid": cent,
                }
            )
            tables[fname] = write_parquet(t, tmp / fname)
            level_meta.append(
                {
                    "name": name,
                    "file": fname,
                    "source": lv.source,
                    "space": lv.space,
                    "n_clusters": lv.n_clusters,
                    "dim": d,
                    "params": lv.params,
                }
            )
        graph_meta = []
        for i, (name, g) in enumerate(self.graphs.items()):
            fname = f"graph-{i:03d}.parquet"
            tables[fname] = _write_edges(tmp / fname, g.indptr, g.indices, g.weights)
            meta = {"name": name, "file": fname, **g.describe()}
            if g.walk is not None:
                wname = f"graph-{i:03d}-walk.parquet"
                w = g.walk
                tables[wname] = _write_edges(tmp / wname, w.indptr, w.indices, w.weights)
                meta["walk"] = {"file": wname, "column": f"walk.{name}", "method": w.method}
            graph_meta.append(meta)
        return {"levels": level_meta, "graphs": graph_meta, "tables": tables}

    # ------------------------------------------------------------------ verify
    @property
    def layout(self) -> str | None:
        """``"parquet"`` or ``"arrays"`` once saved or loaded, else None."""
        if not self.manifest:
            return None
        return str(self.manifest.get("layout", "parquet"))

    def verify(self, *, record: bool = True) -> dict[str, Any]:
        """Check every byte of the saved index: each file's SHA-256 and (arrays layout) the
        structure an O(1) open cannot check: ids in range, no self-loops or repeated neighbours,
        each walk order a permutation of its graph's rows, members grouped by cluster.

        With ``record`` the result, success or failure, is written (atomically) to
        ``verified.json`` in the index directory, with the time, the graphwalk version and the
        index's fingerprint; :attr:`verification` reads it back. A directory that cannot be
        written is not an error: the report then says ``"recorded": false``.

        Returns:
            The report: ``ok``, ``checked_utc``, ``seconds``, ``files``, ``bytes``, ``fingerprint``.

        Raises:
            InputError: the index was never saved or loaded.
            IndexFormatError: the first problem found (after recording it).
        """
        if self.path is None or not self.manifest:
            raise InputError(
                "this index has no files to verify: save it (index.save(path)) or load one "
                "(GraphIndex.load(path)) first"
            )
        import time

        root = self.path
        m = check_manifest(self.manifest, root / MANIFEST)
        t0 = time.perf_counter()
        report: dict[str, Any] = {
            "ok": False,
            "checked_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "graphwalk_version": _version(),
            "fingerprint": self.fingerprint,
            "layout": m.layout,
            "files": len(m.tables),
            "bytes": sum(t.bytes for t in m.tables.values()),
        }
        try:
            if m.layout == "arrays":
                verify_arrays(self, root, m)
            else:  # the structure was checked when it was read
                for fname, meta in m.tables.items():
                    if file_digest(root / fname) != meta.sha256:
                        raise IndexFormatError(
                            f"table {fname} of index {root} fails its SHA-256 checksum: the file "
                            "is corrupted or was modified; rebuild the index"
                        )
        except (IndexFormatError, OSError) as exc:
            report["error"] = str(exc)
            report["seconds"] = round(time.perf_counter() - t0, 3)
            if record:
                self._record(report)
            if isinstance(exc, OSError):
                raise IndexFormatError(f"cannot read index {root}: {exc}") from exc
            raise
        report["ok"] = True
        report["seconds"] = round(time.perf_counter() - t0, 3)
        if record:
            self._record(report)
        return report

    def check_structure(self) -> None:
        """An arrays-layout index's structure (every array read, no checksums): ids in range,
        rows without self-loops or repeats, walk orders, members. A Parquet index's was checked
        when it was read. Raises :class:`IndexFormatError` naming the first problem."""
        if self.layout == "arrays" and self.path is not None:
            check_structure(self, self.path, check_manifest(self.manifest, self.path / MANIFEST))

    def _file_stats(self) -> dict[str, list[int]]:
        """Each file's size and modification time: a record made for other files is stale."""
        assert self.path is not None
        out = {}
        for fname in sorted(self.manifest.get("tables", {})):
            try:
                st = (self.path / fname).stat()
                out[fname] = [int(st.st_size), int(st.st_mtime_ns)]
            except OSError:
                out[fname] = [-1, -1]
        return out

    def _record(self, report: dict[str, Any]) -> None:
        import json

        assert self.path is not None
        report["file_stats"] = self._file_stats()
        try:
            atomic_write(self.path / VERIFIED, json.dumps(report, indent=2) + "\n")
            report["recorded"] = True
        except OSError:
            report["recorded"] = False
        self._verification = dict(report)

    @property
    def verification(self) -> dict[str, Any] | None:
        """The last recorded :meth:`verify` of these files (``verified.json``), or None when
        there is none, or it was made for other content: another fingerprint, or a file whose
        size or modification time has changed since (checked at every call: a few ``stat``)."""
        if self.path is None:
            return None
        rec = self._verification
        if rec is None:
            import json

            try:
                rec = json.loads((self.path / VERIFIED).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
        if (
            not isinstance(rec, dict)
            or rec.get("fingerprint") != self.fingerprint
            or rec.get("file_stats") != self._file_stats()
        ):
            return None
        self._verification = rec
        return rec

    # ------------------------------------------------------------------ load
    @classmethod
    def load(cls, path: str | os.PathLike[str], *, verify: bool | None = None) -> GraphIndex:
        """Read an index, checking its manifest, tables, row counts and (if ``verify``) checksums.

        A Parquet index (format version 1) is read whole: arrays come from Arrow without a copy
        where Arrow allows (one chunk, no nulls), the structure is checked, and ``verify``
        (default true) checks the SHA-256 of every table. An arrays index (version 2) is
        memory-mapped: the open checks the manifest and every file's size, dtype and shape, in
        time independent of the index's size; ``verify=True`` also runs :meth:`verify` (every
        byte: checksums and structure; default false). Arrays are read-only.

        Raises:
            IndexFormatError: naming the missing, truncated, corrupted or foreign table, or a
                newer format version.
        """
        root = Path(path)
        raw = read_manifest(root)
        m = check_manifest(raw, root / MANIFEST)
        if m.layout == "arrays":
            idx = open_arrays(cls, root, raw, m)
            if verify:
                idx.verify()
            return idx
        verify = True if verify is None else verify
        tables = m.tables
        n = m.n_items
        for fname, meta in tables.items():
            f = root / fname
            if not f.is_file():
                raise IndexFormatError(
                    f"index {root} is missing its table {fname}; rebuild the index"
                )
            size = f.stat().st_size
            if size != meta.bytes:
                raise IndexFormatError(
                    f"table {fname} of index {root} has {size} bytes, the manifest says "
                    f"{meta.bytes}: the file is truncated or was replaced; rebuild the index"
                )
            if verify and file_digest(f) != meta.sha256:
                raise IndexFormatError(
                    f"table {fname} of index {root} fails its SHA-256 checksum: the file is "
                    "corrupted or was modified; rebuild the index"
                )

        items = _read_table(root, ITEMS, tables, {"item": "int64"})
        idx = cls(n, spaces=dict(m.spaces), build_params=dict(m.build))
        item = _col(items, "item", root, ITEMS, "int64")
        if item.shape[0] != n or (item != np.arange(n)).any():
            raise IndexFormatError(
                f"column 'item' of table {ITEMS} of index {root} is not 0..{n - 1}; "
                "rebuild the index"
            )
        for name in m.labels:
            idx.labels[name] = _col(items, f"label.{name}", root, ITEMS, "int64")
        for lm in m.levels:
            name, k, d = lm.name, lm.n_clusters, lm.dim
            lfile = _named(lm.file)
            assign = _col(items, f"cluster.{name}", root, ITEMS, "int32")
            t = _read_table(
                root, lfile, tables, {"cluster": "int32", "size": "int64", "value": "int64"}
            )
            if t.num_rows != k:
                raise IndexFormatError(
                    f"table {lfile} has {t.num_rows} clusters, manifest says {k}"
                )
            if assign.size and (assign.min() < 0 or assign.max() >= k):
                raise IndexFormatError(
                    f"level {name!r} of index {root} assigns items to clusters outside [0, {k})"
                )
            centroids = _centroids(t, root, lfile, k, d)
            if (_col(t, "cluster", root, lfile, "int32") != np.arange(k)).any() or (
                _col(t, "size", root, lfile, "int64") != np.bincount(assign, minlength=k)
            ).any():
                raise IndexFormatError(
                    f"table {lfile} of index {root} does not list clusters 0..{k - 1} with "
                    f"the sizes of level {name!r}; rebuild the index"
                )
            idx.levels[name] = Level(
                name,
                assign,
                centroids,
                _col(t, "value", root, lfile, "int64"),
                lm.source,
                lm.space,
                dict(lm.params),
            )
        for gm in m.graphs:
            nn_, ne = gm.n_nodes, gm.n_edges
            gfile = _named(gm.file)
            t = _read_table(
                root, gfile, tables, {"src": "int32", "dst": "int32", "weight": "float"}
            )
            src = _col(t, "src", root, gfile, "int32")
            dst = _col(t, "dst", root, gfile, "int32")
            weights = _weights(t, root, gfile)
            if src.shape[0] != ne:
                raise IndexFormatError(
                    f"table {gfile} has {src.shape[0]} edges, manifest says {ne}"
                )
            if ne and (
                dst.min() < 0
                or dst.max() >= nn_
                or src.min() < 0
                or src.max() >= nn_
                or (np.diff(src) < 0).any()
            ):
                raise IndexFormatError(
                    f"graph {gm.name!r} of index {root} has edges outside "
                    f"[0, {nn_}) or out of order; rebuild the index"
                )
            indptr = np.zeros(nn_ + 1, np.int64)
            np.cumsum(np.bincount(src, minlength=nn_), out=indptr[1:])
            indptr.flags.writeable = False
            _check_rows(indptr, dst, root, gfile, gm.name)
            walk = None
            if gm.walk is not None:
                walk = _read_walk(root, gm, items, tables, nn_, ne, indptr, dst)
            idx.graphs[gm.name] = graph_from_entry(gm, indptr, dst, weights, walk)
        idx.manifest = raw
        idx.path = root
        return idx


def _named(fname: str | None) -> str:
    """A name that :func:`check_manifest` has made sure is there (Parquet layout)."""
    assert fname is not None
    return fname


def _write_edges(
    path: Path,
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    weights: npt.NDArray[np.float32],
) -> dict[str, Any]:
    import pyarrow as pa

    src = np.repeat(np.arange(indptr.shape[0] - 1, dtype=np.int32), np.diff(indptr))
    t = pa.table(
        {
            "src": pa.array(src),
            "dst": pa.array(np.asarray(indices, np.int32)),
            "weight": pa.array(np.asarray(weights, np.float32)),
        }
    )
    return write_parquet(t, path, byte_stream_split=["weight"], delta=["src"])


def _read_walk(
    root: Path,
    gm: GraphEntry,
    items: Any,
    tables: dict[str, TableEntry],
    n: int,
    ne: int,
    indptr: npt.NDArray[np.int64],
    graph_dst: npt.NDArray[np.int32],
) -> WalkOrder:
    """The walk order of an item graph: the renumbered edges and each item's node, checked to be
    a permutation and the same graph renumbered (row lengths agree)."""
    assert gm.walk is not None
    fname, column, method = _named(gm.walk.file), _named(gm.walk.column), gm.walk.method
    position = _col(items, column, root, ITEMS, "int32")
    if position.shape[0] != n:
        raise IndexFormatError(f"column {column} of {ITEMS} in {root} is not {n} int32 node ids")
    if n and (
        position.min() < 0 or position.max() >= n or (np.bincount(position, minlength=n) != 1).any()
    ):
        raise IndexFormatError(
            f"column {column} of {ITEMS} in {root} is not a permutation of the graph's nodes; "
            "rebuild the index"
        )
    order = np.empty(n, np.int32)
    order[position] = np.arange(n, dtype=np.int32)
    t = _read_table(root, fname, tables, {"src": "int32", "dst": "int32", "weight": "float"})
    src = _col(t, "src", root, fname, "int32")
    dst = _col(t, "dst", root, fname, "int32")
    weights = _weights(t, root, fname)
    if src.shape[0] != ne or (
        ne and (dst.min() < 0 or dst.max() >= n or src.min() < 0 or (np.diff(src) < 0).any())
    ):
        raise IndexFormatError(
            f"table {fname} of index {root} is not the graph {gm.name!r} renumbered "
            f"({src.shape[0]} edges for {ne}, or ids out of range or order); rebuild the index"
        )
    w_indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=w_indptr[1:])
    _check_rows(w_indptr, dst, root, fname, gm.name)
    same = np.array_equal(np.diff(w_indptr), np.diff(indptr)[order])
    # row v must be row order[v] of the graph, renamed: checked exactly on every row up to
    # 100,000 nodes, else on 20,000 rows drawn with a fixed seed (a walk table of another graph
    # or order differs in nearly every row; byte-level damage is the checksums' job)
    rows = (
        np.arange(n) if n <= 100_000 else np.random.default_rng(0).choice(n, 20_000, replace=False)
    )
    if same and ne:
        deg = w_indptr[rows + 1] - w_indptr[rows]
        off = np.arange(int(deg.sum())) - np.repeat(np.cumsum(deg) - deg, deg)
        e_w = np.repeat(w_indptr[rows], deg) + off
        e_g = np.repeat(indptr[order[rows]], deg) + off
        same = np.array_equal(order[dst[e_w]], graph_dst[e_g])
    if not same:
        raise IndexFormatError(
            f"table {fname} of index {root} does not have the rows of graph {gm.name!r} "
            "in its walk order; rebuild the index"
        )
    for a in (order, w_indptr):
        a.flags.writeable = False
    return WalkOrder(order, position, w_indptr, dst, weights, method)


def _read_table(
    root: Path, fname: str, tables: dict[str, TableEntry], schema: dict[str, str]
) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(root / fname, memory_map=True)
    except (pa.ArrowException, OSError) as exc:
        raise IndexFormatError(
            f"table {fname} of index {root} is not a readable Parquet file (truncated or foreign): "
            f"{' '.join(str(exc).split())}; rebuild the index"
        ) from exc
    for col, kind in schema.items():
        if col not in t.column_names:
            raise IndexFormatError(
                f"table {fname} of index {root} has no column {col!r} (it has {t.column_names}): "
                "a foreign file; rebuild the index"
            )
        typ = t.schema.field(col).type
        if str(typ) != kind:
            raise IndexFormatError(
                f"column {col!r} of table {fname} has type {typ}, expected {kind}"
            )
    if t.num_rows != tables[fname].rows:
        raise IndexFormatError(
            f"table {fname} of index {root} has {t.num_rows} rows, "
            f"the manifest says {tables[fname].rows}"
        )
    return t


def _col(t: Any, name: str, root: Path, fname: str, kind: str) -> npt.NDArray[Any]:
    """Column ``name`` as a read-only NumPy array, checked to have Arrow type ``kind``, no nulls."""
    if name not in t.column_names:
        raise IndexFormatError(
            f"table {fname} of index {root} has no column {name!r}: rebuild the index"
        )
    typ = t.schema.field(name).type
    if str(typ) != kind:
        raise IndexFormatError(
            f"column {name!r} of table {fname} of index {root} has type {typ}, expected {kind}; "
            "rebuild the index"
        )
    col = t.column(name)
    if col.null_count:
        raise IndexFormatError(f"column {name!r} of table {fname} has {col.null_count} nulls")
    arr = col.chunk(0).to_numpy(zero_copy_only=True) if col.num_chunks == 1 else col.to_numpy()
    if arr.flags.writeable:
        arr.flags.writeable = False
    return arr


def _weights(t: Any, root: Path, fname: str) -> npt.NDArray[np.float32]:
    """Edge weights: float32, finite and positive (the walk draws neighbours in proportion)."""
    w = _col(t, "weight", root, fname, "float")
    if w.size and not (np.isfinite(w).all() and (w > 0).all()):
        raise IndexFormatError(
            f"table {fname} of index {root} has edge weights that are NaN, infinite, zero or "
            "negative; rebuild the index"
        )
    return w


def _centroids(t: Any, root: Path, fname: str, k: int, d: int) -> npt.NDArray[np.float32]:
    """The ``(k, d)`` float32 centroids of a level table, finite."""
    import pyarrow as pa

    if "centroid" not in t.column_names:
        raise IndexFormatError(
            f"table {fname} of index {root} has no column 'centroid': rebuild the index"
        )
    typ = t.schema.field("centroid").type
    if not (
        pa.types.is_fixed_size_list(typ)
        and typ.list_size == d
        and pa.types.is_float32(typ.value_type)
    ):
        raise IndexFormatError(
            f"column 'centroid' of table {fname} of index {root} has type {typ}, expected "
            f"fixed_size_list<float>[{d}] (the level's dim); rebuild the index"
        )
    cent = t.column("centroid").combine_chunks()
    values = cent.flatten()
    if cent.null_count or values.null_count or len(values) != k * d:
        raise IndexFormatError(f"column 'centroid' of table {fname} of index {root} has nulls")
    out = np.asarray(values.to_numpy(zero_copy_only=False), np.float32).reshape(k, d)
    if not np.isfinite(out).all():
        raise IndexFormatError(
            f"column 'centroid' of table {fname} of index {root} is not finite; rebuild the index"
        )
    out.flags.writeable = False
    return out


def _check_rows(
    indptr: npt.NDArray[np.int64], indices: npt.NDArray[np.int32], root: Path, fname: str, name: str
) -> None:
    """A stored graph has no self-loops and no repeated edges (the builder never writes them; a
    walk would take a node twice)."""
    u = int(first_bad_row(indptr, indices))
    if u >= 0:
        raise IndexFormatError(
            f"table {fname} of index {root}: node {u} of graph {name!r} has a self-loop or a "
            "repeated neighbour; rebuild the index"
        )
