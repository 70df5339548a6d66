"""Reading item vectors and labels from ``.npy``, ``.npz`` and Parquet files."""

from __future__ import annotations

import os
from pathlib import Path

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


def _read_parquet(path: Path, what: str, *, column: str | None) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{what} file {path} is not a readable Parquet file: {exc}") from exc
    if table.num_columns == 0:
        raise InputError(f"{what} file {path} has no columns")
    if column is not None:
        if column not in table.column_names:
            raise InputError(
                f"{what} file {path} has no column {column!r}; it has {table.column_names}"
            )
        table = table.select([column])
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
                f"{what} file {path} has several list columns {lists}; choose one with --column"
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
        )
    for name in numeric:
        if table.column(name).null_count:
            raise InputError(f"{what} column {name!r} in {path} has null values")
    return np.column_stack([table.column(n).to_numpy() for n in numeric])


def _read_any(path: str | os.PathLike[str], what: str, column: str | None = None) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} file {p} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.asarray(np.load(p, allow_pickle=False))
        if suffix == ".npz":
            return _read_npz(p, what)
    except (ValueError, OSError) as exc:
        raise InputError(f"{what} file {p} could not be read as {suffix}: {exc}") from exc
    if suffix in (".parquet", ".pq"):
        return _read_parquet(p, what, column=column)
    raise InputError(f"{what} file {p} has unknown type {suffix!r}; use .npy, .npz or .parquet")


def read_vectors(
    path: str | os.PathLike[str], *, column: str | None = None
) -> npt.NDArray[np.generic]:
    """Read a matrix of item vectors.

    ``.npy``; ``.npz`` (the array named ``embeddings``/``x``, or its only array); Parquet with one
    fixed-size-list (or list) column, or several numeric columns that form the vector.
    """
    return _read_any(path, "embeddings", column)


def read_labels(
    path: str | os.PathLike[str], *, column: str | None = None
) -> npt.NDArray[np.generic]:
    """Read one label per item (``.npy``, ``.npz`` or a one-column Parquet file)."""
    arr = _read_any(path, "labels", column)
    return arr
