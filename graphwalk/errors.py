"""Exceptions raised by graphwalk.

Every error that a user can cause derives from :class:`GraphwalkError`, so the command line can
print it as one line without a traceback. They also derive from the builtin a Python user would
expect (``ValueError`` for bad values, ``FileExistsError`` for an existing output, ...).
"""

from __future__ import annotations

__all__ = [
    "GraphwalkError",
    "IndexFormatError",
    "InputError",
    "InputTypeError",
    "OutputExistsError",
    "Preempted",
]


class GraphwalkError(Exception):
    """Base class of the errors graphwalk raises on bad input or bad files."""


class InputError(GraphwalkError, ValueError):
    """Input data or parameters are invalid (NaNs, wrong shapes, impossible sizes, ...)."""


class InputTypeError(InputError, TypeError):
    """A parameter of the wrong type (a float where an integer is needed, a string for a
    number): a ``TypeError`` as Python expects, and an :class:`InputError` like every other bad
    parameter (one line on the command line)."""


class IndexFormatError(GraphwalkError, ValueError):
    """A stored index is missing, truncated, corrupted, foreign or from a newer format."""


class OutputExistsError(GraphwalkError, FileExistsError):
    """The output path exists and overwriting was not asked for."""


class Preempted(KeyboardInterrupt):
    """A training run stopped on a SIGTERM after writing its checkpoint at ``step`` in ``out``
    (a ``KeyboardInterrupt``: whatever stops a run on Ctrl-C also stops it on this)."""

    def __init__(self, step: int, out: object) -> None:
        super().__init__(f"stopped by SIGTERM after step {step}; checkpoint in {out}")
        self.step, self.out = step, out
