"""The argparse types every subcommand shares: numbers checked at the command line, refused
with the range they must be in (argparse turns the refusal into one usage line)."""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = ["int_in", "real_in"]


def int_in(low: int, high: int | None = None) -> Any:
    """An argparse ``type=`` for an integer in ``[low, high]`` (refused with the range)."""
    rng = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rng}, but got {text!r}") from None
        if v < low or (high is not None and v > high):
            raise argparse.ArgumentTypeError(f"must be {rng}, but got {v}")
        return v

    return parse


def real_in(*, high: float | None = None, zero: bool = False) -> Any:
    """An argparse ``type=`` for a finite number > 0 (>= 0 with ``zero``; and <= ``high``)."""
    low = "[0" if zero else "(0"
    rng = f"a number {'>=' if zero else '>'} 0" if high is None else f"a number in {low}, {high:g}]"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rng}, but got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, but got {text!r}")
        if not ((v >= 0 if zero else v > 0) and (high is None or v <= high)):
            raise argparse.ArgumentTypeError(f"must be {rng}, but got {v:g}")
        return v

    return parse
