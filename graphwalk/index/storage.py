"""Low-level pieces of the on-disk index: Parquet writing with checksums, atomic directories."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graphwalk._files import umask_mode
from graphwalk.errors import IndexFormatError, OutputExistsError

__all__ = [
    "FORMAT_NAME",
    "ARRAYS_FORMAT_VERSION",
    "FORMAT_VERSION",
    "PARQUET_FORMAT_VERSION",
    "GRAPH_ARRAYS",
    "LAYOUTS",
    "LEVEL_ARRAYS",
    "MANIFEST",
    "GraphEntry",
    "LevelEntry",
    "Manifest",
    "TableEntry",
    "WALK_ARRAYS",
    "WalkEntry",
    "atomic_directory",
    "check_manifest",
    "file_digest",
    "read_manifest",
    "write_json",
    "write_parquet",
]

FORMAT_NAME = "graphwalk-index"
FORMAT_VERSION = 2  # the newest this graphwalk reads and writes (1: Parquet, 2: + arrays)
PARQUET_FORMAT_VERSION = 1  # a Parquet index is still written as version 1 (older readers read it)
ARRAYS_FORMAT_VERSION = 2
MANIFEST = "manifest.json"
FIRST_FORMAT_VERSION = 1
LAYOUTS = ("parquet", "arrays")
# the arrays layout: what each entry stores, one .npy file per array
LEVEL_ARRAYS = ("assignment", "centroids", "values", "members", "members_indptr")
GRAPH_ARRAYS = ("indptr", "indices", "weights")
WALK_ARRAYS = ("walk_order", "walk_position", "walk_indptr", "walk_indices", "walk_weights")

# ---------------------------------------------------------------------------------- the schema
# One declared schema for manifest.json. Format version 1 is the Parquet layout (one table per
# level and graph, items.parquet); version 2 adds the "arrays" layout, where every array is an
# uncompressed .npy file that is memory-mapped on open (entries name their arrays under
# "arrays"; a Parquet index is still written as version 1, byte for byte as before). Strict: a count is a JSON integer
# (not 10.5, not 10.0, not true), a name a non-empty string; a table is a plain file name inside
# the index directory. Unknown keys are kept and ignored, so a later minor addition still loads.

_Count = Annotated[int, Field(strict=True, ge=0, le=2**62)]
_Positive = Annotated[int, Field(strict=True, ge=1, le=2**31)]
_Name = Annotated[str, Field(strict=True, min_length=1)]
_File = Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=255)]
_Sha256 = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class TableEntry(_Model):
    rows: _Count
    bytes: _Count
    sha256: _Sha256
    dtype: str | None = None  # arrays layout: the .npy's dtype ("<i8") and shape
    shape: list[_Count] | None = None


class LevelEntry(_Model):
    name: _Name
    file: _File | None = None
    arrays: dict[str, _File] | None = None
    source: _Name
    space: _Name = "input"
    n_clusters: _Count
    dim: _Positive
    params: dict[str, Any] = Field(default_factory=dict)


class WalkEntry(_Model):
    file: _File | None = None
    column: _Name | None = None
    method: _Name


class GraphEntry(_Model):
    name: _Name
    file: _File | None = None
    arrays: dict[str, _File] | None = None
    kind: Literal["cluster", "item"]
    level: _Name | None = None
    space: _Name | None = None
    directed: bool = False
    n_nodes: _Count
    n_edges: _Count
    params: dict[str, Any] = Field(default_factory=dict)
    walk: WalkEntry | None = None


class Manifest(_Model):
    """The manifest of an index, as declared (see :func:`check_manifest` for the cross-checks)."""

    format: Literal["graphwalk-index"]
    format_version: Annotated[int, Field(strict=True, ge=FIRST_FORMAT_VERSION)]
    graphwalk_version: str = "?"
    layout: Literal["parquet", "arrays"] = "parquet"
    n_items: _Count
    spaces: dict[str, _Positive]
    labels: list[_Name]
    label_arrays: dict[str, _File] = Field(default_factory=dict)
    levels: list[LevelEntry]
    graphs: list[GraphEntry]
    tables: dict[str, TableEntry]
    build: dict[str, Any] = Field(default_factory=dict)


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i and loc[i - 1] in ("tables", "spaces", "build"):
            out += f"[{part!r}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def check_manifest(manifest: Any, mpath: Path) -> Manifest:
    """Validate a manifest against the schema and check its cross-references.

    Cross-references: names unique; each level's ``space`` is one of ``spaces`` with the same
    dimension; a cluster graph names an existing level and has one node per cluster; an item
    graph names an existing space and has one node per item; only item graphs have a walk
    order; every file is listed in ``tables``, and no file serves twice.

    Raises:
        IndexFormatError: ``"manifest.json: graphs[1].n_nodes: ...; rebuild the index"``.
    """

    def bad(field: str, msg: str) -> IndexFormatError:
        return IndexFormatError(f"{mpath}: {field}: {msg}; rebuild the index")

    try:
        m = Manifest.model_validate(manifest)
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        got = repr(e.get("input"))
        got = got if len(got) <= 60 else got[:57] + "..."
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        msg = e["msg"] if e["type"] == "missing" else f"{e['msg']}, got {got}"
        if e["type"] == "string_pattern_mismatch" and e["loc"][-1] == "file":
            msg = f"should be a plain file name inside the index directory, got {got}"
        raise bad(_where(tuple(e["loc"])), msg + more) from None
    if m.format_version > FORMAT_VERSION:
        raise bad("format_version", f"{m.format_version} is newer than this graphwalk reads")
    for what, names in (
        ("labels", m.labels),
        ("levels", [lv.name for lv in m.levels]),
        ("graphs", [g.name for g in m.graphs]),
    ):
        for i, name in enumerate(names):
            if name in names[:i]:
                raise bad(
                    f"{what}[{i}].name" if what != "labels" else f"labels[{i}]",
                    f"{name!r} appears twice",
                )
    files: dict[str, str] = {}

    def uses(field: str, fname: str) -> None:
        if fname not in m.tables:
            raise bad(field, f"table {fname!r} is not listed in tables")
        if fname in files or fname == MANIFEST:
            raise bad(field, f"table {fname!r} is already used by {files.get(fname, MANIFEST)}")
        files[fname] = field

    arrays = m.layout == "arrays"
    if arrays and m.format_version < ARRAYS_FORMAT_VERSION:
        raise bad("layout", "the arrays layout needs format_version 2 or later")

    def stored(field: str, entry: Any, keys: tuple[str, ...]) -> None:
        """The entry's data: one Parquet file (``file``), or its named arrays (``arrays``)."""
        if not arrays:
            if entry.file is None:
                raise bad(f"{field}.file", "Field required (a Parquet index names a table here)")
            uses(f"{field}.file", entry.file)
            return
        got = entry.arrays or {}
        if sorted(got) != sorted(keys):
            raise bad(f"{field}.arrays", f"should name the arrays {list(keys)}, got {sorted(got)}")
        for key in keys:
            uses(f"{field}.arrays[{key!r}]", got[key])

    if arrays:
        if sorted(m.label_arrays) != sorted(m.labels):
            raise bad("label_arrays", f"should name one array per label set {m.labels}")
        for name in m.labels:
            uses(f"label_arrays[{name!r}]", m.label_arrays[name])
    levels = {lv.name: lv for lv in m.levels}
    for i, lv in enumerate(m.levels):
        stored(f"levels[{i}]", lv, LEVEL_ARRAYS)
        if lv.space not in m.spaces:
            raise bad(f"levels[{i}].space", f"{lv.space!r} is not one of spaces {sorted(m.spaces)}")
        if lv.dim != m.spaces[lv.space]:
            raise bad(
                f"levels[{i}].dim",
                f"{lv.dim}, but space {lv.space!r} has {m.spaces[lv.space]} dimensions",
            )
        if lv.n_clusters == 0 and m.n_items:
            raise bad(f"levels[{i}].n_clusters", f"0 clusters for {m.n_items} items")
    for i, g in enumerate(m.graphs):
        stored(
            f"graphs[{i}]", g, GRAPH_ARRAYS + (WALK_ARRAYS if arrays and g.walk is not None else ())
        )
        if g.kind == "cluster":
            if g.level not in levels:
                raise bad(
                    f"graphs[{i}].level", f"{g.level!r} is not one of levels {sorted(levels)}"
                )
            want, of = levels[g.level].n_clusters, f"clusters in level {g.level!r}"
            if g.walk is not None:
                raise bad(f"graphs[{i}].walk", "only item graphs have a walk order")
        else:
            if g.space not in m.spaces:
                raise bad(
                    f"graphs[{i}].space", f"{g.space!r} is not one of spaces {sorted(m.spaces)}"
                )
            want, of = m.n_items, "items (n_items)"
        if g.n_nodes != want:
            raise bad(f"graphs[{i}].n_nodes", f"{g.n_nodes}, but there are {want} {of}")
        if g.walk is not None and not arrays:
            for key in ("file", "column"):
                if getattr(g.walk, key) is None:
                    raise bad(f"graphs[{i}].walk.{key}", "Field required (in a Parquet index)")
            assert g.walk.file is not None
            uses(f"graphs[{i}].walk.file", g.walk.file)
    if not arrays and "items.parquet" not in m.tables:
        raise bad("tables", "table 'items.parquet' is not listed")
    if arrays:
        for fname, t in m.tables.items():
            if fname not in files:
                raise bad(f"tables[{fname!r}]", "is not used by any label set, level or graph")
            if t.dtype is None or t.shape is None:
                raise bad(f"tables[{fname!r}]", "an array needs its dtype and shape")
    return m


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet(
    table: Any,
    path: Path,
    *,
    byte_stream_split: list[str] | None = None,
    delta: list[str] | None = None,
) -> dict[str, Any]:
    """Write one Arrow table as a single row group (so it reads back as one contiguous chunk).

    zstd without dictionaries; ``BYTE_STREAM_SPLIT`` for float columns and ``DELTA_BINARY_PACKED``
    for sorted integer columns (measured on a 1M-node, 10M-edge graph: 59 MB against 76 MB
    with the defaults, 2.7× faster to write). Returns the table's entry for the manifest: rows, bytes and SHA-256.
    """
    import pyarrow.parquet as pq

    encodings = {c: "BYTE_STREAM_SPLIT" for c in byte_stream_split or []}
    encodings.update({c: "DELTA_BINARY_PACKED" for c in delta or []})
    pq.write_table(
        table,
        path,
        compression="zstd",
        use_dictionary=False,
        column_encoding=encodings or None,
        row_group_size=max(1, table.num_rows),
        write_statistics=False,
    )
    _fsync(path)
    return {"rows": table.num_rows, "bytes": path.stat().st_size, "sha256": file_digest(path)}


def write_json(obj: Any, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and check the manifest of the index at ``path`` (format name and version)."""
    if not path.exists():
        raise IndexFormatError(
            f"no index at {path}: the path does not exist; build one with `graphwalk index ... "
            f"--out {path}` (or graphwalk.build_index(..., out=...)), or check the path"
        )
    if not path.is_dir():
        raise IndexFormatError(
            f"{path} is not a graphwalk index: an index is a directory (NAME.gw/)"
        )
    mpath = path / MANIFEST
    if not mpath.exists():
        raise IndexFormatError(
            f"{path} is not a graphwalk index: it has no {MANIFEST} (an interrupted write leaves "
            "no directory at all, so this is a foreign or hand-edited directory)"
        )
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IndexFormatError(f"cannot read {mpath}: {exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise IndexFormatError(
            f"{mpath} is not valid JSON ({exc}); the index is corrupted, rebuild it"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(
            f'{mpath} is not a graphwalk index manifest (no "format": "{FORMAT_NAME}")'
        )
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise IndexFormatError(
            f"{mpath}: format_version: should be an integer, got {version!r}; rebuild the index"
        )
    if version < FIRST_FORMAT_VERSION:
        raise IndexFormatError(
            f"{mpath}: format_version: {version} is below the first format version "
            f"{FIRST_FORMAT_VERSION}; rebuild the index"
        )
    if version > FORMAT_VERSION:
        raise IndexFormatError(
            f"{path} uses index format version {version}, newer than this graphwalk "
            f"({manifest.get('graphwalk_version', '?')} wrote it; this one reads up to version "
            f"{FORMAT_VERSION}); upgrade graphwalk or rebuild the index"
        )
    return manifest


def _is_index_dir(path: Path) -> bool:
    try:
        read_manifest(path)
    except IndexFormatError:
        return False
    return True


def check_output(path: Path, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite``, and never overwrite a non-index path."""
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise OutputExistsError(
                f"output {path} already exists; pass --overwrite (overwrite=True) to replace it"
            )
        if not _is_index_dir(path):
            raise OutputExistsError(
                f"output {path} exists and is not a graphwalk index; refusing to replace it even "
                "with --overwrite: choose another path or remove it yourself"
            )
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputExistsError(f"cannot write {path}: {path.parent} is a file, not a directory")


@contextlib.contextmanager
def atomic_directory(path: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success rename it to ``path``.

    On any exception (Ctrl-C included) the temporary directory is removed, so no half index is
    ever visible under ``path``. With ``overwrite`` the old index is moved aside first and removed
    only after the new one is in place.
    """
    check_output(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    os.chmod(tmp, umask_mode(0o777))  # mkdtemp makes 0700; an index is an ordinary directory
    try:
        yield tmp
        old = None
        if path.exists():
            check_output(path, overwrite)
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rename(path, old / "index")
        os.rename(tmp, path)
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
