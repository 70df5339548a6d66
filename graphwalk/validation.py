"""Checks on user input, shared by every stage: vectors, labels and numbers.

Numbers have one home: :func:`check_int` / :func:`check_real` for values passed from Python
(a wrong type is a ``TypeError``, a value out of range an :class:`~graphwalk.errors.InputError`),
:func:`parse_int` / :func:`parse_real` for numbers given as text (the command line's argparse
types in :mod:`graphwalk.cli.types`, sampler specs), and :func:`int_range` / :func:`real_range`
for how a range reads in every message (``an integer >= 1``, ``a number in (0, 1]``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError, InputTypeError

__all__ = [
    "as_labels",
    "as_vectors",
    "check_bool",
    "check_int",
    "check_positive_int",
    "check_real",
    "int_range",
    "parse_int",
    "parse_real",
    "real_range",
]


def int_range(minimum: int | None = None, maximum: int | None = None) -> str:
    """How an integer range reads in messages: ``an integer >= 1``, ``an integer in [0, 9]``."""
    if minimum is None and maximum is None:
        return "an integer"
    if maximum is None:
        return f"an integer >= {minimum}"
    if minimum is None:
        return f"an integer <= {maximum}"
    return f"an integer in [{minimum}, {maximum}]"


def _fmt(x: float) -> str:
    return f"{x:g}"


def real_range(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> str:
    """How a range of real numbers reads in messages: ``a number > 0``, ``a number in [0, 1]``."""
    if low is not None and high is not None:
        return (
            f"a number in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}"
            f"{')' if high_open else ']'}"
        )
    if low is not None:
        return f"a number {'>' if low_open else '>='} {_fmt(low)}"
    if high is not None:
        return f"a number {'<' if high_open else '<='} {_fmt(high)}"
    return "a number"


def _in_real_range(
    v: float, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> bool:
    return not (
        (low is not None and (v <= low if low_open else v < low))
        or (high is not None and (v >= high if high_open else v > high))
    )


def parse_int(text: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer given as text, within ``[minimum, maximum]``.

    Raises:
        ValueError: ``must be <range>, but got <text>`` (the caller adds whose value it is).
    """
    rng = int_range(minimum, maximum)
    try:
        v = int(text)
    except ValueError:
        raise ValueError(f"must be {rng}, but got {text!r}") from None
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise ValueError(f"must be {rng}, but got {v}")
    return v


def parse_real(
    text: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number given as text, within the range.

    Raises:
        ValueError: ``must be <range>, but got <text>`` (the caller adds whose value it is).
    """
    rng = real_range(low, high, low_open=low_open, high_open=high_open)
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"must be {rng}, but got {text!r}") from None
    if not math.isfinite(v):
        raise ValueError(
            f"must be {rng.replace('a number', 'a finite number', 1)}, but got {text!r}"
        )
    if not _in_real_range(v, low, high, low_open, high_open):
        raise ValueError(f"must be {rng}, but got {_fmt(v)}")
    return v


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` (a Python or NumPy bool) as a bool.

    Raises:
        InputTypeError: anything else (``"yes"``, ``1``, ``None``), which ``bool()`` would
            silently take (``bool("no")`` is ``True``).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(
            f"{name} should be True or False, but got {name}={value!r} ({type(value).__name__})"
        )
    return bool(value)


def check_positive_int(name: str, value: object) -> int:
    """:func:`check_int` with ``minimum=1``."""
    return check_int(name, value, minimum=1)


def check_int(
    name: str, value: object, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` (a Python or NumPy integer) as an int within ``[minimum, maximum]``.

    Raises:
        InputTypeError: ``value`` is not an integer (a float such as ``10.0``, a bool, a string);
            a ``TypeError`` and an ``InputError``.
        InputError: ``value`` is out of range; the message gives the range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(
            f"{name} should be an integer, but got {name}={value!r} ({type(value).__name__})"
        )
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise InputError(f"{name} should be {int_range(minimum, maximum)}, but got {name}={v}")
    return v


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
        InputTypeError: ``value`` is not a real number (a ``TypeError`` and an ``InputError``).
        InputError: ``value`` is NaN, infinite or out of range; the message gives the range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputTypeError(
            f"{name} should be a number, but got {name}={value!r} ({type(value).__name__})"
        )
    v = float(value)
    rng = real_range(low, high, low_open=low_open, high_open=high_open)
    if not np.isfinite(v):
        finite = rng.replace("a number", "a finite number", 1)
        raise InputError(f"{name} should be {finite}, but got {name}={v}")
    if not _in_real_range(v, low, high, low_open, high_open):
        raise InputError(f"{name} should be {rng}, but got {name}={_fmt(v)}")
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
            raise InputError(
                f"{name} must be integers, but contain non-integer floats; pass integer class "
                "ids (e.g. np.unique(labels, return_inverse=True)[1])"
            )
    elif arr.dtype.kind not in "iub":
        raise InputError(f"{name} must be integers, but have dtype {arr.dtype}")
    return arr.astype(np.int64)
