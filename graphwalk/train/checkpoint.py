"""The checkpoint format of a training run: data only, loadable without running code.

A checkpoint is ``torch.save`` of an envelope ``{"format", "version", "sha256", "payload"}``
whose payload is ``torch.save`` of the run's state. Both are read with
``torch.load(..., weights_only=True)``, which accepts tensors and plain containers only, so a
checkpoint from someone else cannot run code when a run is resumed. The state's NumPy parts (the
sampler's and the policy's arrays, NumPy's global RNG state) are converted to that vocabulary on
the way in (:func:`to_plain`: an array becomes ``{"__ndarray__": tensor}``, a NumPy scalar
``{"__npscalar__": dtype, "value": python number}``) and back on the way out
(:func:`from_plain`). The SHA-256 of the payload is checked before it is read.

Version 3 is this format; version 2 checkpoints (pickled NumPy objects) are refused with a
message: resume them with graphwalk 0.1's pickled loader, or start the run again.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphwalk._files import atomic_write
from graphwalk.errors import InputError

__all__ = ["CHECKPOINT", "from_plain", "load_checkpoint", "save_checkpoint", "to_plain"]

CHECKPOINT = "checkpoint.pt"
FORMAT = "graphwalk-checkpoint"
VERSION = 3  # 3: data only (weights_only); 2: the state inside a checksummed envelope (pickled)


def to_plain(obj: Any) -> Any:
    """``obj`` with every NumPy array and scalar replaced by tensors and plain values."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"a checkpoint holds numeric arrays only, not dtype {obj.dtype}")
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(obj).copy())}
    if isinstance(obj, np.generic):
        return {"__npscalar__": obj.dtype.str, "value": obj.item()}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(v) for v in obj)
    return obj


def from_plain(obj: Any) -> Any:
    """The inverse of :func:`to_plain`."""
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__"} and isinstance(obj["__ndarray__"], torch.Tensor):
            return obj["__ndarray__"].numpy().copy()
        if set(obj) == {"__npscalar__", "value"}:
            return np.dtype(obj["__npscalar__"]).type(obj["value"])
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_plain(v) for v in obj)
    return obj


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """The state as data, with its SHA-256 beside it (a flipped bit is refused on resume),
    written atomically."""
    buf = io.BytesIO()
    torch.save(to_plain(state), buf)
    payload = buf.getvalue()
    outer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "version": VERSION,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "payload": payload,
        },
        outer,
    )
    atomic_write(path, outer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a run's checkpoint (data only: nothing in it can run code); a truncated, corrupt,
    foreign or code-carrying file is one ``InputError``."""
    corrupt = (
        f"checkpoint {path} is corrupt or truncated ({{}}); it cannot be resumed: start the run "
        "again with --overwrite"
    )
    try:
        outer = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(corrupt.format(type(exc).__name__)) from exc
    if not isinstance(outer, dict) or outer.get("format") != FORMAT:
        raise InputError(
            f"{path} is not a graphwalk training checkpoint; start the run again with --overwrite"
        )
    if outer.get("version") != VERSION:
        raise InputError(
            f"checkpoint {path} has version {outer.get('version')!r}; this graphwalk reads "
            f"version {VERSION} (data only; version 2 held pickled objects, which are not loaded "
            "any more): start the run again with --overwrite"
        )
    payload = outer.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != outer.get("sha256"):
        raise InputError(corrupt.format("its SHA-256 does not match its content"))
    try:
        ck = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            f"checkpoint {path} holds something other than tensors and plain data "
            f"({type(exc).__name__}); it is not loaded (it could run code): start the run again "
            "with --overwrite"
        ) from exc
    if not isinstance(ck, dict):
        raise InputError(corrupt.format("no state inside"))
    out: dict[str, Any] = from_plain(ck)
    return out
