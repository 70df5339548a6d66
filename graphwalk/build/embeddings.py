"""Reading item vectors and labels from ``.npy``, ``.npz`` and Parquet files."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError

__all__ = ["read_labels", "read_vectors"]


def _read_npz(path: Path, what: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as z:
        keys = list(z.keys())
        if not keys:
            raise InputError(f"{what} file {path} holds no arrays")
        names = ("labels", "y") if what == "labels" else ("embeddings", "x", "X")
        preferred = [k for k in names if k in keys]
        key = preferred[0] if preferred else keys[0]
        if len(keys) > 1 and not preferred:
            raise InputError(
                f"{what} file {path} holds several arrays {keys}; name the one to use "
                f"{names[0]!r}, or save a single array"
            )
        return np.asarray(z[key])


def _pandas_index_columns(schema: Any) -> list[str]:
    """The columns ``DataFrame.to_parquet`` stored for the frame's index (not data)."""
    try:
        meta = schema.pandas_metadata
    except (ValueError, TypeError):  # malformed metadata: treat as none
        return []
    if not isinstance(meta, dict):
        return []
    cols = meta.get("index_columns") or []
    return [c for c in cols if isinstance(c, str) and c in schema.names]


def _check_id_column(table: Any, name: str, path: Path, what: str) -> None:
    import pyarrow as pa

    if name not in table.column_names:
        raise InputError(f"{what} file {path} has no column {name!r}; it has {table.column_names}")
    col = table.column(name)
    if not pa.types.is_integer(col.type):
        raise InputError(
            f"id column {name!r} in {path} should hold integer ids, but has type {col.type}"
        )
    if col.null_count:
        raise InputError(f"id column {name!r} in {path} has {col.null_count} null values")
    ids = col.to_numpy()
    n_unique = np.unique(ids).size
    if n_unique != ids.size:
        raise InputError(
            f"id column {name!r} in {path} is not unique: {ids.size - n_unique} repeated ids; "
            "one row per item is needed"
        )


def _looks_like_id(name: str, values: np.ndarray) -> bool:
    lowered = name.lower()
    named = lowered in ("id", "idx", "index", "key", "row") or lowered.endswith(("_id", "id_"))
    return named or (values.size > 1 and np.unique(values).size == values.size)


def _read_parquet(
    path: Path,
    what: str,
    *,
    column: str | None,
    columns: Sequence[str] | None = None,
    id_column: str | None = None,
) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{what} file {path} is not a readable Parquet file: {exc}") from exc
    if table.num_columns == 0:
        raise InputError(f"{what} file {path} has no columns")
    flag = "--label-column" if what == "labels" else "--column"
    chosen = [column] if column is not None else list(columns) if columns is not None else None
    if id_column is not None:
        _check_id_column(table, id_column, path, what)
        if chosen is not None and id_column in chosen:
            raise InputError(f"column {id_column!r} is given both as the id column and as data")
        table = table.drop([id_column])
    if chosen is not None:
        missing = [c for c in chosen if c not in table.column_names]
        if missing:
            raise InputError(
                f"{what} file {path} has no column {missing[0]!r}; it has {table.column_names}"
            )
        table = table.select(chosen)
    else:
        index_cols = _pandas_index_columns(table.schema)
        if index_cols:
            warnings.warn(
                f"{what} file {path}: ignoring the pandas index column(s) {index_cols} "
                "(DataFrame.to_parquet stores the frame's index; it is not data)",
                UserWarning,
                stacklevel=4,
            )
            table = table.drop(index_cols)
            if table.num_columns == 0:
                raise InputError(f"{what} file {path} has no columns besides the pandas index")
    if what == "labels" and table.num_columns > 1:
        raise InputError(
            f"labels file {path} has several columns {table.column_names}; choose the label "
            f"column with {flag} NAME (column=NAME)"
        )
    lists = [
        f.name
        for f in table.schema
        if pa.types.is_fixed_size_list(f.type)
        or pa.types.is_list(f.type)
        or pa.types.is_large_list(f.type)
    ]
    if lists:
        if len(lists) > 1:
            raise InputError(
                f"{what} file {path} has several list columns {lists}; choose one with {flag}"
            )
        col = table.column(lists[0]).combine_chunks()
        if col.null_count:
            raise InputError(f"{what} column {lists[0]!r} in {path} has {col.null_count} null rows")
        if pa.types.is_fixed_size_list(col.type):
            width = col.type.list_size
            flat = col.flatten().to_numpy(zero_copy_only=False)
            return flat.reshape(len(col), width)
        rows = col.to_pylist()
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            raise InputError(
                f"{what} column {lists[0]!r} in {path} has rows of different lengths {sorted(widths)[:5]}"
            )
        return np.asarray(rows)
    numeric = [
        f.name for f in table.schema if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)
    ]
    if len(numeric) != table.num_columns:
        other = [n for n in table.column_names if n not in numeric]
        raise InputError(
            f"{what} file {path} has non-numeric columns {other}; keep only the vector columns"
            + (" or name them with --columns A,B,..." if what != "labels" else "")
        )
    for name in numeric:
        if table.column(name).null_count:
            raise InputError(f"{what} column {name!r} in {path} has null values")
    arrays = {n: table.column(n).to_numpy() for n in numeric}
    if what != "labels" and chosen is None:
        floats = [n for n in numeric if pa.types.is_floating(table.schema.field(n).type)]
        ids = [n for n in numeric if n not in floats and _looks_like_id(n, arrays[n])]
        if floats and ids:
            warnings.warn(
                f"{what} file {path}: integer column {ids[0]!r} next to float columns looks like "
                f"an item id but is used as a vector dimension; pass --id-column {ids[0]} "
                "(id_column=) to ignore it, or --columns A,B,... (columns=) to name the vector",
                UserWarning,
                stacklevel=4,
            )
    return np.column_stack([arrays[n] for n in numeric])


def _read_any(
    path: str | os.PathLike[str],
    what: str,
    column: str | None = None,
    columns: Sequence[str] | None = None,
    id_column: str | None = None,
) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} file {p} does not exist")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet(p, what, column=column, columns=columns, id_column=id_column)
    if column is not None or columns is not None or id_column is not None:
        raise InputError(
            f"choosing columns (--column, --columns, --id-column, --label-column) applies to "
            f"Parquet files, but {what} file {p} is {suffix or 'not one'}"
        )
    try:
        if suffix == ".npy":
            return np.asarray(np.load(p, allow_pickle=False))
        if suffix == ".npz":
            return _read_npz(p, what)
    except (ValueError, OSError) as exc:
        raise InputError(f"{what} file {p} could not be read as {suffix}: {exc}") from exc
    raise InputError(f"{what} file {p} has unknown type {suffix!r}; use .npy, .npz or .parquet")


def read_vectors(
    path: str | os.PathLike[str],
    *,
    column: str | None = None,
    columns: Sequence[str] | None = None,
    id_column: str | None = None,
) -> npt.NDArray[np.generic]:
    """Read a matrix of item vectors.

    ``.npy``; ``.npz`` (the array named ``embeddings``/``x``, or its only array); Parquet with one
    fixed-size-list (or list) column, or several numeric columns that form the vector.

    Parquet: the columns pandas stored for a DataFrame's index (``__index_level_0__`` after a
    shuffle or a filter, named in the file's pandas metadata) are dropped with a warning. An
    integer column that looks like an item id (unique values or an id-like name) next to float
    columns is kept but warned about.

    Args:
        column: the one (list or numeric) column holding the vectors.
        columns: the numeric columns that form the vector, in this order (no column is dropped
            or warned about).
        id_column: a column of unique integer item ids to ignore (checked, then dropped).
    """
    if column is not None and columns is not None:
        raise InputError("give the vector column (--column) or the columns (--columns), not both")
    if columns is not None and (isinstance(columns, str) or not list(columns)):
        raise InputError(f"columns should be a non-empty list of names, but got {columns!r}")
    return _read_any(path, "embeddings", column, columns, id_column)


def read_labels(
    path: str | os.PathLike[str], *, column: str | None = None
) -> npt.NDArray[np.generic]:
    """Read one label per item (``.npy``, ``.npz`` or Parquet).

    Parquet: the column ``column``, else the only column once the pandas index columns are
    dropped; several columns and no ``column`` is an error.
    """
    arr = _read_any(path, "labels", column)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr
