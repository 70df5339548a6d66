"""A run's ``metrics.jsonl``: the one writer and the one reader.

One JSON object per line, each with an ``event``: ``step`` (one per training step), ``eval``
(one per evaluation) and ``refresh`` (one per activation refresh); other events (from a newer
version) are kept and ignored by the readers that do not need them. The writer appends a line per
event (and mirrors the numbers to TensorBoard when it is installed); a run killed mid-write
leaves a torn last line without its newline, which :func:`read_metrics` skips (and reports as
``truncated``). Any other line that is not a JSON object with an ``event`` is an error naming the
file and the line.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphwalk._files import atomic_write
from graphwalk.errors import InputError

__all__ = ["METRICS", "Metrics", "MetricsWriter", "read_metrics", "write_tables"]

METRICS = "metrics.jsonl"


@dataclass
class Metrics:
    """The events of a ``metrics.jsonl``, in file order, with their line numbers.

    Attributes:
        path: the file read.
        events: ``(line number, event)`` for every complete line.
        truncated: whether a torn last line (an interrupted write) was skipped.
    """

    path: Path
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    truncated: bool = False

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind (``"step"``, ``"eval"``, ``"refresh"``), in order."""
        return [e for _, e in self.events if e["event"] == kind]

    def numbered(self, kind: str) -> list[tuple[int, dict[str, Any]]]:
        """The events of one kind with their line numbers (for messages naming the line)."""
        return [(n, e) for n, e in self.events if e["event"] == kind]


def read_metrics(path: str | Path) -> Metrics:
    """Read a run's ``metrics.jsonl`` (see the module docstring).

    Raises:
        InputError: the file is missing, or a line other than a torn last one is not a JSON
            object with an ``event`` field (the message names the file and the line).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"{p} is missing: the run never started training; rerun it or leave it out"
        )
    lines = p.read_bytes().split(b"\n")
    out = Metrics(p)
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            if lineno == len(lines):  # no newline after it: the write was interrupted
                out.truncated = True
                continue
            raise InputError(
                f"{p}, line {lineno}: not valid JSON ({e}); the metrics file is damaged — "
                "rerun the run, or delete that line to use the rest"
            ) from e
        if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
            raise InputError(
                f"{p}, line {lineno}: expected a JSON object with an 'event' field; "
                "the file was not written by `graphwalk train` or is damaged"
            )
        out.events.append((lineno, obj))
    return out


class MetricsWriter:
    """Appends events to ``out/metrics.jsonl`` (when ``enabled``: rank 0), mirrored to
    TensorBoard under ``out/tb`` when it is installed (``purge_step``: a resumed run's first
    step, so that TensorBoard drops what came after the checkpoint)."""

    def __init__(self, out: Path, enabled: bool, purge_step: int | None) -> None:
        self.enabled = enabled
        self.f: io.TextIOWrapper | None = None
        self.tb: Any = None
        if not enabled:
            return
        self.f = open(out / METRICS, "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        # a deep queue: with the default 10 events, add_scalar blocks on the writer thread
        # (90-190 us a step, 14% of an mnist1d MLP step; 31 us with this queue)
        self.tb = SummaryWriter(str(out / "tb"), purge_step=purge_step, max_queue=100_000)

    def write(self, rec: dict[str, Any]) -> None:
        if self.f is None:
            return
        self.f.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            ev, step = rec["event"], rec["step"]
            for key, v in rec.items():
                if key not in ("event", "step", "epoch") and isinstance(v, (int, float)):
                    if math.isfinite(v):
                        self.tb.add_scalar(f"{ev}/{key}", v, step)

    def position(self) -> int:
        """Bytes written so far (flushed): where a checkpoint's metrics end."""
        if self.f is None:
            return 0
        self.f.flush()
        return self.f.tell()

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
        if self.tb is not None:
            self.tb.close()


def write_tables(out: Path) -> None:
    """``metrics.csv`` (the evaluations) and ``steps.csv`` (the steps) from ``out/metrics.jsonl``,
    each column a key any record of its kind has (written atomically)."""
    metrics = read_metrics(out / METRICS)
    for name, recs in (("metrics.csv", metrics.of("eval")), ("steps.csv", metrics.of("step"))):
        buf = io.StringIO()
        keys: list[str] = []
        for r in recs:
            keys += [k for k in r if k not in keys]
        w = csv.DictWriter(buf, fieldnames=keys or ["event"], lineterminator="\n")
        w.writeheader()
        w.writerows(recs)
        atomic_write(out / name, buf.getvalue())
