"""Checks on user-supplied vectors and labels, shared by the indexer and the samplers."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError

__all__ = ["as_labels", "as_vectors", "check_int", "check_positive_int", "check_real"]


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int, or raise ``TypeError``/``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} should be a positive integer, but got {name}={value!r}")
    if value <= 0:
        raise InputError(f"{name} should be a positive integer, but got {name}={value}")
    return int(value)


def check_int(
    name: str, value: object, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` (a Python or NumPy integer) as an int within ``[minimum, maximum]``.

    Raises:
        TypeError: ``value`` is not an integer (a float such as ``10.0``, a bool, a string).
        InputError: ``value`` is out of range; the message gives the range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} should be an integer, but got {name}={value!r} ({type(value).__name__})"
        )
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        if maximum is None:
            what = f">= {minimum}"
        elif minimum is None:
            what = f"<= {maximum}"
        else:
            what = f"in [{minimum}, {maximum}]"
        raise InputError(f"{name} should be an integer {what}, but got {name}={v}")
    return v


def _fmt(x: float) -> str:
    return f"{x:g}"


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` (a Python or NumPy real number) as a finite float within the range.

    Raises:
        TypeError: ``value`` is not a real number.
        InputError: ``value`` is NaN, infinite or out of range; the message gives the range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"{name} should be a number, but got {name}={value!r} ({type(value).__name__})"
        )
    v = float(value)
    if low is not None and high is not None:
        rng = f"in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"
    elif low is not None:
        rng = f"{'>' if low_open else '>='} {_fmt(low)}"
    elif high is not None:
        rng = f"{'<' if high_open else '<='} {_fmt(high)}"
    else:
        rng = ""
    if not np.isfinite(v):
        raise InputError(
            f"{name} should be a finite number {rng}".rstrip() + f", but got {name}={v}"
        )
    bad = (low is not None and (v <= low if low_open else v < low)) or (
        high is not None and (v >= high if high_open else v > high)
    )
    if bad:
        raise InputError(f"{name} should be a number {rng}, but got {name}={_fmt(v)}")
    return v


def as_vectors(
    x: object, *, name: str = "embeddings", metric: str = "l2"
) -> npt.NDArray[np.float32]:
    """Validate a 2-D matrix of item vectors and return it as C-contiguous float32.

    Args:
        x: array-like of shape ``(n_items, dim)``, any real float or integer dtype.
        name: what to call the input in error messages.
        metric: ``"l2"`` or ``"cosine"``; with cosine, all-zero rows are rejected because they
            have no direction.

    Raises:
        InputError: empty, not 2-D, non-numeric, NaN/inf values or zero vectors under cosine.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{name} must be numeric, but has dtype {arr.dtype}")
    if arr.ndim != 2:
        hint = " (reshape to (n_items, 1) for scalar features)" if arr.ndim == 1 else ""
        raise InputError(
            f"{name} must be a 2-D array of shape (n_items, dim), but has shape {arr.shape}{hint}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(
            f"{name} is empty: shape {arr.shape}; at least one item and one dim needed"
        )
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    finite_rows = np.isfinite(out).all(axis=1)
    if not finite_rows.all():
        bad = np.flatnonzero(~finite_rows)
        src_bad = not np.isfinite(arr[bad[0]]).all() if arr.dtype.kind == "f" else False
        what = "NaN or infinite values" if src_bad else "values too large for float32"
        raise InputError(
            f"{name} contain {what} in {bad.size} of {out.shape[0]} rows (first: row {bad[0]}); "
            "remove or impute those rows before indexing"
        )
    if metric == "cosine":
        norms = np.einsum("ij,ij->i", out, out)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise InputError(
                f"{name} contain {zero.size} all-zero vectors (first: row {zero[0]}), which have no "
                "direction under metric='cosine'; drop them or use metric='l2'"
            )
    return out


def as_labels(y: object, n_items: int, *, name: str = "labels") -> npt.NDArray[np.int64]:
    """Validate one integer label per item and return it as int64.

    Raises:
        InputError: wrong length, not 1-D, or values that are not integers.
    """
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D with one label per item, but has shape {arr.shape}")
    if arr.shape[0] != n_items:
        raise InputError(
            f"{name} has {arr.shape[0]} entries but there are {n_items} items; "
            "pass one label per row of the embeddings"
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.all(arr == np.round(arr)):
            raise InputError(f"{name} must be integers, but contain non-integer floats")
    elif arr.dtype.kind not in "iub":
        raise InputError(f"{name} must be integers, but have dtype {arr.dtype}")
    return arr.astype(np.int64)
