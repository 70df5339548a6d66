"""Progress bars (tqdm) that can be switched off, and a tiny step timer."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["progress", "ticking"]


@contextmanager
def ticking(bar: Any, interval: float = 0.5) -> Iterator[None]:
    """Refresh ``bar`` (a tqdm bar, or ``None``) every ``interval`` seconds while the block runs,
    so a long step without progress of its own (k-means, NN-descent) still shows its elapsed
    time on the one bar of the build."""
    if bar is None:
        yield
        return
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval):
            bar.refresh()

    t = threading.Thread(target=tick, name="graphwalk-progress", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


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
