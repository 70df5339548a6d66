"""File helpers shared by the stages."""

from __future__ import annotations

import os

__all__ = ["publish_mode"]


def publish_mode(path: str | os.PathLike[str]) -> None:
    """Give a file made by ``tempfile.mkstemp`` (mode 0600) the mode a plain ``open()`` would
    have given it (0666 less the umask), before it is renamed into place: reports and plots are
    for others to read too."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
