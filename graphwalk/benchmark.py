"""Timing and memory harness shared by ``bench/`` scripts and ``graphwalk bench``.

Benchmarks print a table and record it; they never assert on time. Peak memory is read from the
kernel (``VmHWM``), reset before each measured call through ``/proc/self/clear_refs``, so
allocations made by native code (faiss, Numba, Arrow) are counted too.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphwalk._files import atomic_write

__all__ = [
    "Measurement",
    "Table",
    "machine_info",
    "measure",
    "record_markdown",
    "rss_mib",
    "take_peak_rss_mib",
]


def _status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_mib() -> float:
    """Current resident memory of this process in MiB (0 where /proc is unavailable)."""
    return (_status("VmRSS:") or 0) / 2**20


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# The peak a nested measure() found before restarting the count, so that the enclosing
# take_peak_rss_mib still sees it (a task measured inside a stage of the same process).
_held_peak = 0


def _hold_peak() -> None:
    global _held_peak
    _held_peak = max(_held_peak, _status("VmHWM:") or 0)


def take_peak_rss_mib() -> float | None:
    """The peak resident memory of this process since the last call (or since it started), in
    MiB, and the count restarted; None where Linux's /proc does not allow it. A
    :func:`measure` inside the interval does not hide an earlier peak."""
    global _held_peak
    hwm = _status("VmHWM:")
    if hwm is None or not _reset_peak():
        return None
    peak, _held_peak = max(hwm, _held_peak), 0
    return peak / 2**20


@dataclass
class Measurement:
    """Wall time and memory of one measured block."""

    seconds: float = 0.0
    rss_before_mib: float = 0.0
    peak_mib: float | None = None

    @property
    def peak_increase_mib(self) -> float | None:
        return None if self.peak_mib is None else max(0.0, self.peak_mib - self.rss_before_mib)


@contextmanager
def measure() -> Iterator[Measurement]:
    """Time a block and record the peak resident memory reached inside it."""
    m = Measurement(rss_before_mib=rss_mib())
    _hold_peak()
    can_peak = _reset_peak()
    t0 = time.perf_counter()
    try:
        yield m
    finally:
        m.seconds = time.perf_counter() - t0
        hwm = _status("VmHWM:")
        m.peak_mib = hwm / 2**20 if (can_peak and hwm) else None
        _hold_peak()


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """The fastest of ``repeat`` timed calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def machine_info() -> dict[str, Any]:
    import numpy as np

    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


@dataclass
class Table:
    """Rows of a benchmark table, printable as Markdown and savable with its context."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *row: Any) -> None:
        self.rows.append(list(row))

    def markdown(self) -> str:
        def fmt(v: Any) -> str:
            if isinstance(v, float):
                return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.1f}"
            return str(v)

        lines = [
            f"### {self.title}",
            "",
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" for _ in self.columns) + "|",
        ]
        lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in self.rows]
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines)

    def record(
        self,
        path: str | os.PathLike[str],
        *,
        extra: dict[str, Any] | None = None,
        command: str = "",
    ) -> Path:
        """Write the table as Markdown (``path``) and JSON (same name, ``.json``)."""
        return record_markdown(
            path,
            self.title,
            self.markdown(),
            command=command,
            data={"columns": self.columns, "rows": self.rows, "notes": self.notes, **(extra or {})},
        )


def record_markdown(
    path: str | os.PathLike[str],
    title: str,
    body: str,
    *,
    command: str = "",
    data: dict[str, Any] | None = None,
) -> Path:
    """Record a benchmark's printed tables: Markdown at ``path``, JSON beside it, atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    head = f"Recorded {info['date_utc']} UTC on {info.get('cpu', '?')} ({info['cpus']} CPUs)"
    text = "\n\n".join([f"# {title}", head + (f"; command: `{command}`" if command else ""), body])
    atomic_write(p, text + "\n")
    payload = {"title": title, "machine": info, "command": command, **(data or {})}
    atomic_write(p.with_suffix(".json"), json.dumps(payload, indent=2, default=str) + "\n")
    return p
