"""File helpers shared by the stages: the one way graphwalk writes a file.

Every file graphwalk writes outside an index directory (run files, checkpoints, reports, plots,
benchmark records, a rewritten manifest) goes through :func:`atomic_write` or :func:`atomic_save`:
a hidden temporary sibling, written, flushed and fsynced, given the mode a plain ``open()`` would
have given it, renamed over the target, and the directory fsynced; on any failure (Ctrl-C
included) the temporary file is removed and the target is left as it was. A killed process
therefore leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_save", "atomic_write", "publish_mode", "umask_mode"]


def umask_mode(base: int) -> int:
    """``base`` less the process's umask (what ``open()`` or ``mkdir()`` would give)."""
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


def publish_mode(path: str | os.PathLike[str]) -> None:
    """Give a file made by ``tempfile.mkstemp`` (mode 0600) the mode a plain ``open()`` would
    have given it (0666 less the umask), before it is renamed into place: reports and plots are
    for others to read too."""
    os.chmod(path, umask_mode(0o666))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_save(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Write ``path`` atomically with ``write(tmp)``, which writes the whole file at ``tmp`` (a
    hidden sibling with the same suffix, so writers that infer the format from the name, such as
    ``Figure.savefig``, still do). Creates the parent directory. Returns ``path`` as a ``Path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=f".tmp{out.suffix}", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # whatever wrote it, its bytes reach the disk before rename
            os.fsync(f.fileno())
        publish_mode(tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(out.parent)
    return out


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically (see :func:`atomic_save`)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(raw)

    return atomic_save(path, write)
