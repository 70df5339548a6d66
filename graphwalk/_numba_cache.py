"""Make sure Numba can cache graphwalk's kernels before any of them is defined.

The kernels are ``@njit(cache=True)``. Numba stores their machine code in ``NUMBA_CACHE_DIR``
when set, else in the package's ``__pycache__``, else under ``~/.cache/numba``; when none of these
can be written, *defining* a cached function raises ``RuntimeError`` and ``import graphwalk``
fails (a system-wide install used from an account without a writable home: containers, CI, batch
jobs). Imported first by every module that defines kernels (not by ``import graphwalk``, which
stays light), this module asks Numba itself whether it can
cache a function of this package and, when it cannot, points ``NUMBA_CACHE_DIR`` at a private
directory under the system temporary directory, or, when even that cannot be written, turns
caching off. Either fallback warns once per process; ``NUMBA_CACHE_DIR`` is set in ``os.environ``
too, so child processes (``DataLoader`` workers) find the same directory without warning again.
"""

from __future__ import annotations

import os
import stat
import tempfile
import warnings
from typing import Any

__all__ = ["CACHE_STATUS", "ensure_numba_cache"]

#: How this process caches compiled kernels: ``"numba"`` (Numba's own choice, or the user's
#: ``NUMBA_CACHE_DIR``), ``"temp"`` (graphwalk's fallback directory) or ``"off"``.
CACHE_STATUS = "numba"


#: the package's directories whose modules define ``cache=True`` kernels
_KERNEL_DIRS = ("", "index", "build", "walk", "walk/kernels")


def _can_cache() -> bool:
    """Whether Numba finds a writable cache location for functions defined in each directory of
    this package that holds kernels (Numba locates a cache from the function's source file)."""
    import os

    import numba

    base = os.path.dirname(os.path.abspath(__file__))
    for sub in _KERNEL_DIRS:
        src = os.path.join(base, sub, "__init__.py")
        if not os.path.exists(src):
            continue
        ns: dict[str, Any] = {}
        exec(compile("def _probe():\n    pass\n", src, "exec"), ns)
        try:
            numba.njit(cache=True)(ns["_probe"])  # finds the locator now; compiles nothing
        except RuntimeError:
            return False
    return True


def _private_dir(parent: str) -> str | None:
    """``parent/graphwalk-numba-<user>``, created ``0o700``; one that another user could write
    (someone may have planted a crafted cache file, which Numba would unpickle) is not used: a
    fresh ``mkdtemp`` directory is made instead. ``None`` when ``parent`` cannot be written."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = os.path.join(parent, f"graphwalk-numba-{uid if uid is not None else 'user'}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
        safe = stat.S_ISDIR(st.st_mode) and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if uid is not None:
            safe = safe and st.st_uid == uid
        if not safe:
            path = tempfile.mkdtemp(prefix="graphwalk-numba-", dir=parent)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return None
    return path


def _set_cache_dir(path: str | None) -> None:
    """Point Numba at ``path`` (``None``: unset)."""
    import numba

    # Numba reads the variable when it is first imported and again whenever the NUMBA_* variables
    # change, so both the environment and the live configuration are set.
    if path is None:
        os.environ.pop("NUMBA_CACHE_DIR", None)
    else:
        os.environ["NUMBA_CACHE_DIR"] = path
    numba.config.CACHE_DIR = path or ""  # type: ignore[attr-defined]


def _disable_caching() -> bool:
    """Make ``cache=True`` a no-op in this process (``Dispatcher.enable_caching`` keeps its
    ``NullCache``). Returns whether it could."""
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - a Numba whose layout changed
        return False

    def enable_caching(self: Any) -> None:
        pass

    Dispatcher.enable_caching = enable_caching  # type: ignore[method-assign]
    return True


def ensure_numba_cache() -> str:
    """Check that Numba can cache graphwalk's kernels, falling back when it cannot.

    Returns:
        :data:`CACHE_STATUS` after the check.
    """
    global CACHE_STATUS
    if _can_cache():
        CACHE_STATUS = "numba"
        return CACHE_STATUS
    user_dir = os.environ.get("NUMBA_CACHE_DIR")
    where = "the package's __pycache__ or ~/.cache/numba"
    where += f" or NUMBA_CACHE_DIR={user_dir!r}" if user_dir else " (NUMBA_CACHE_DIR is not set)"
    try:
        parent: str | None = tempfile.gettempdir()
    except OSError:  # no usable temporary directory at all
        parent = None
    path = _private_dir(parent) if parent is not None else None
    if path is not None:
        _set_cache_dir(path)
        if _can_cache():
            CACHE_STATUS = "temp"
            warnings.warn(
                f"graphwalk: Numba cannot write its cache to {where}; compiled kernels are "
                f"cached in {path} instead (lost when it is cleaned). Set NUMBA_CACHE_DIR to a "
                "writable directory to choose where.",
                RuntimeWarning,
                stacklevel=4,
            )
            return CACHE_STATUS
        _set_cache_dir(user_dir)
    if _disable_caching():
        CACHE_STATUS = "off"
        warnings.warn(
            f"graphwalk: Numba cannot write its cache to {where}, nor to a temporary directory; "
            "kernels are compiled without a cache in every new process (seconds each). Set "
            "NUMBA_CACHE_DIR to a writable directory to keep them.",
            RuntimeWarning,
            stacklevel=4,
        )
    return CACHE_STATUS


ensure_numba_cache()
