"""Progress display, one way for every stage: tqdm bars on stderr that can be switched off
(:func:`progress` wraps an iterable, :func:`progress_bar` makes a bar a loop updates itself), and
:func:`ticking`, which keeps a bar's elapsed time moving through a long step."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["progress", "progress_bar", "ticking"]


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


def progress_bar(
    *,
    enabled: bool,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    initial: int = 0,
    leave: bool = False,
) -> Any:
    """A tqdm bar on stderr (``None`` when not ``enabled``) for a loop that calls ``update``;
    ``leave``: keep the finished bar on screen (the build's one bar does)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=leave,
        dynamic_ncols=True,
    )


def progress(
    it: Iterable[T], *, enabled: bool, desc: str, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """Wrap ``it`` in a tqdm bar on stderr when ``enabled`` (see :func:`progress_bar`)."""
    if total is None and isinstance(it, Sized):
        total = len(it)  # as tqdm(it) would infer it
    bar = progress_bar(enabled=enabled, desc=desc, total=total, unit=unit)
    if bar is None:
        yield from it
        return
    try:
        for x in it:
            yield x
            bar.update(1)
    finally:
        bar.close()
