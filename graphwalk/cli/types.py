"""The argparse types every subcommand shares: numbers checked at the command line, refused
with the range they must be in (argparse turns the refusal into one usage line). The parsing and
the range's wording are :mod:`graphwalk.validation`'s, shared with sampler specs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from graphwalk.validation import parse_int, parse_real

__all__ = ["int_in", "real_in"]


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def typed(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return typed


def int_in(low: int, high: int | None = None) -> Any:
    """An argparse ``type=`` for an integer in ``[low, high]`` (refused with the range)."""
    return _argparse_type(lambda text: parse_int(text, low, high))


def real_in(*, high: float | None = None, zero: bool = False) -> Any:
    """An argparse ``type=`` for a finite number > 0 (>= 0 with ``zero``; and <= ``high``)."""
    return _argparse_type(lambda text: parse_real(text, 0.0, high, low_open=not zero))
