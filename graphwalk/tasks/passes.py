"""What the task samplers share: epochs made of passes that resume in the middle.

:class:`PassSampler` holds the epoch and the position inside it (``set_epoch``, the double
``iter()`` torch's ``DataLoader`` makes when it starts, a resumed pass that starts after the
batches already yielded); :class:`PassIterator` is the iterator of one pass, stateful for
torchdata's ``StatefulDataLoader``. A subclass yields its batches from ``_pass(start)``, setting
``_yielded`` as it goes, and defines ``_settings()`` (what a saved state must match, with its ``kind``) and ``_mismatch(key, saved,
mine)`` (the message of a state saved with other settings); ``state_dict`` /
``load_state_dict`` are shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import Sampler

from graphwalk.errors import InputError
from graphwalk.validation import check_int

__all__ = ["STATE_VERSION", "PassIterator", "PassSampler"]

STATE_VERSION = 1


class PassSampler(Sampler[list[int]]):
    """An epoch-based batch sampler whose passes resume mid-epoch (see the module docstring)."""

    _epoch: int = 0
    _explicit: bool = False
    _consumed: bool = False
    _resume: int = 0
    _yielded: int = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next pass (as ``DistributedSampler.set_epoch``)."""
        check_int("epoch", epoch, minimum=0)
        self._resume = 0
        self._epoch = int(epoch)
        self._explicit = True

    def __iter__(self) -> Iterator[list[int]]:
        return PassIterator(self)

    def _start_pass(self) -> int:
        # torch's DataLoader calls iter() twice when it starts: an iterator that yielded nothing
        # is not a pass
        if not self._explicit and self._consumed:
            self._epoch += 1
        self._explicit = False
        start = self._resume
        self._resume = 0
        self._yielded = start
        self._consumed = start > 0
        return start

    def _resume_at(self, epoch: int, yielded: int) -> None:
        """Make the next pass yield the rest of ``epoch`` after ``yielded`` batches."""
        self._epoch, self._resume = epoch, yielded
        self._explicit = True

    def _pass(self, start: int) -> Iterator[list[int]]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def _settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def _mismatch(self, key: str, saved: Any, mine: Any) -> str:
        return (
            f"the state was saved with {key}={saved!r} but this sampler has {key}={mine!r}; "
            "resume with the same index and settings"
        )

    def state_dict(self) -> dict[str, Any]:
        """The epoch and how many of its batches this rank yielded (small, picklable)."""
        return {
            "version": STATE_VERSION,
            "epoch": self._epoch,
            "yielded": self._yielded,
            "settings": self._settings(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume where ``state`` was taken: the next pass yields the rest of its epoch."""
        mine = self._settings()
        if (
            not isinstance(state, dict)
            or state.get("version") != STATE_VERSION
            or not isinstance(state.get("settings"), dict)
            or state["settings"].get("kind") != mine["kind"]
        ):
            name = type(self).__name__
            article = "an" if name[0] in "AEIOU" else "a"
            raise InputError(
                f"not {article} {name} state (another sampler's, or another version?): "
                "load the state its own kind of sampler saved"
            )
        theirs = state["settings"]
        diff = [k for k in mine if theirs.get(k) != mine[k]]
        if diff:
            raise InputError(self._mismatch(diff[0], theirs.get(diff[0]), mine[diff[0]]))
        epoch = check_int("state epoch", state.get("epoch"), minimum=0)
        yielded = check_int("state yielded", state.get("yielded"), minimum=0, maximum=len(self))
        self._resume_at(epoch, yielded)


class PassIterator(Iterator[list[int]]):
    """The iterator of one pass; stateful for torchdata's ``StatefulDataLoader``."""

    def __init__(self, sampler: PassSampler) -> None:
        self.sampler = sampler
        self._gen: Iterator[list[int]] | None = None

    def __iter__(self) -> PassIterator:
        return self

    def __next__(self) -> list[int]:
        if self._gen is None:
            self._gen = self.sampler._pass(self.sampler._start_pass())
        return next(self._gen)

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
        self._gen = None
