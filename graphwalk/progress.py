"""Progress bars (tqdm) that can be switched off, and a tiny step timer."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["progress"]


def progress(
    it: Iterable[T], *, enabled: bool, desc: str, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """Wrap ``it`` in a tqdm bar on stderr when ``enabled``."""
    if not enabled:
        yield from it
        return
    from tqdm.auto import tqdm

    yield from tqdm(
        it, desc=desc, total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True
    )
