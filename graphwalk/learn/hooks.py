"""Feed a walk policy its rewards from any training loop: the core the library callbacks share.

:class:`RewardReporter` turns a reward of :mod:`graphwalk.learn.rewards` into the calls the
sampler's protocol asks for (``sampler.report(reward)`` once per trained batch, in batch order, and
``sampler.flush_rewards()`` at the end; see :mod:`graphwalk.walk.policy`). A loop calls it at three
points::

    reporter = RewardReporter(sampler, reward="grad-norm")   # or "gar"
    for epoch in range(epochs):
        for x, y in DataLoader(dataset, batch_sampler=sampler):
            loss = loss_fn(model(x), y)
            loss.backward()
            reporter.after_backward(model)   # after backward, before the optimiser step
            opt.step()
            reporter.after_step()            # reports the rewards that became available
            opt.zero_grad()
        reporter.end_epoch()                 # reports what is still awaited, flushes the rewards

:class:`graphwalk.learn.lightning.GraphWalkRewardCallback` (PyTorch Lightning) and
:class:`graphwalk.learn.hf.GraphWalkRewardCallback` (Hugging Face ``Trainer``) make these calls
from the libraries' hooks.

- **One report per trained batch, in order.** ``grad-norm``'s reward is ready right after the
  backward pass and credits that batch. ``gar``'s reward of a batch arrives one step late, with the
  next batch's gradient; at :meth:`RewardReporter.end_epoch` the last batch of the epoch has none
  and is reported without a reward (``report(None)``: marked trained, no ``learn()`` call).
  The sampler credits every report to the oldest batch not reported yet, so the reporter only has
  to keep the order.
- **Gradient accumulation.** Every micro-batch is one batch of the sampler and gets one report.
  Called after each micro-batch's backward, :meth:`RewardReporter.after_backward` rewards that
  micro-batch with the gradient accumulated so far (``grad-norm`` then grows within an
  accumulation window; ``gar`` compares consecutive partial sums). The library callbacks instead
  read the gradient once per optimiser step (the whole window's, unscaled, before clipping) and
  report it once for each of the window's micro-batches: they pass ``batches=`` the window's size.
- **``loss-drop`` is not supported here**: it needs the batch and the loss function for its second
  forward pass, which a hook does not see. Compute it in your own loop with
  ``make_reward("loss-drop")`` (the loop in :mod:`graphwalk.learn.rewards`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from graphwalk.errors import InputError
from graphwalk.learn.rewards import REWARDS, Reward, make_reward
from graphwalk.validation import check_int
from graphwalk.walk.sampler import GraphWalkBatchSampler, GraphWalkSampler

__all__ = ["CALLBACK_REWARDS", "RewardReporter", "check_reward", "find_sampler"]

#: The rewards a :class:`RewardReporter` (and so the library callbacks) can compute.
CALLBACK_REWARDS = ("grad-norm", "gar")

#: Attributes through which loaders, wrappers and shards hold the sampler they draw from
#: (torch's ``DataLoader``: ``batch_sampler``, ``sampler``; accelerate's ``DataLoaderShard``:
#: ``base_dataloader``; its ``BatchSamplerShard``: ``batch_sampler``; others keep the original
#: under ``_orig_...``).
_WRAPPER_ATTRS = (
    "batch_sampler",
    "sampler",
    "base_dataloader",
    "_orig_batch_sampler",
    "_orig_sampler",
    "_orig_dataloader",
    "dataloader",
)

_LOSS_DROP = (
    "the 'loss-drop' reward needs the batch and the loss function for a second forward pass after "
    "the optimiser step, which a training hook does not see: compute it in your own loop with "
    "graphwalk.learn.rewards.make_reward('loss-drop') (reward.after_step(model, x, y, loss, "
    "loss_fn), then sampler.report(r)); the callbacks support " + " and ".join(CALLBACK_REWARDS)
)


def check_reward(reward: str | Reward) -> Reward:
    """The reward ``reward`` names (a new one), or ``reward`` itself if it is a :class:`Reward`.

    Raises:
        InputError: an unknown name (the message lists them), or ``loss-drop`` (it needs the batch
            and the loss function: see the module docstring).
        TypeError: neither a name nor a :class:`Reward`.
    """
    if isinstance(reward, Reward):
        r = reward
    elif isinstance(reward, str):
        if reward == "loss-drop":
            raise InputError(_LOSS_DROP)
        if reward not in REWARDS:
            raise InputError(
                f"unknown reward {reward!r}; choose one of {', '.join(CALLBACK_REWARDS)}"
            )
        r = make_reward(reward)
    else:
        raise TypeError(
            f"reward should be a reward name ({', '.join(CALLBACK_REWARDS)}) or a "
            f"graphwalk.learn.rewards.Reward, but got {type(reward).__name__}"
        )
    if r.needs_second_forward or r.name == "loss-drop":
        raise InputError(_LOSS_DROP)
    return r


def _batch_sampler(sampler: Any) -> GraphWalkBatchSampler:
    """The :class:`GraphWalkBatchSampler` behind ``sampler`` (a :class:`GraphWalkSampler` holds
    one), or a ``TypeError`` that says what to pass instead."""
    if isinstance(sampler, GraphWalkBatchSampler):
        return sampler
    if isinstance(sampler, GraphWalkSampler):
        return sampler.batches
    raise TypeError(
        "sampler should be a graphwalk GraphWalkBatchSampler or GraphWalkSampler (with a "
        f"policy), but got {type(sampler).__name__}: build the DataLoader with "
        "batch_sampler=graphwalk.GraphWalkBatchSampler(index, batch_size, policy=...) and pass "
        "that sampler"
    )


def find_sampler(loader: Any, *, max_depth: int = 6) -> GraphWalkBatchSampler | GraphWalkSampler:
    """The graphwalk sampler a data loader draws from, unwrapping wrappers.

    Follows the attributes loaders and their wrappers keep the sampler under (``batch_sampler``,
    ``sampler``, accelerate's ``base_dataloader``, ``_orig_...``), and the elements of lists,
    tuples and dicts (Lightning's several train loaders), breadth first, ``max_depth`` levels deep.

    Raises:
        InputError: no graphwalk sampler was found, or several different ones (the message says
            to pass ``sampler=`` to the callback).
    """
    found: list[Any] = []
    seen: set[int] = set()
    level: list[Any] = [loader]
    for _ in range(max_depth + 1):
        nxt: list[Any] = []
        for obj in level:
            if obj is None or id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, (GraphWalkBatchSampler, GraphWalkSampler)):
                if not any(f is obj for f in found):
                    found.append(obj)
                continue
            if isinstance(obj, dict):
                nxt.extend(obj.values())
                continue
            if isinstance(obj, (list, tuple)):
                nxt.extend(obj)
                continue
            for name in _WRAPPER_ATTRS:
                try:
                    child = getattr(obj, name, None)
                except Exception:  # a property that fails outside iteration
                    child = None
                if child is not None and child is not obj:
                    nxt.append(child)
        level = nxt
        if not level:
            break
    what = "nothing" if loader is None else type(loader).__name__
    if not found:
        raise InputError(
            f"no graphwalk sampler found in the training data loader ({what}): pass sampler= "
            "(the GraphWalkBatchSampler or GraphWalkSampler the loader draws from) to the callback"
        )
    if len(found) > 1:
        raise InputError(
            f"the training data loader ({what}) draws from {len(found)} graphwalk samplers: pass "
            "sampler= (the one whose policy should learn) to the callback"
        )
    return found[0]


@dataclass
class _Entry:
    """Batches trained on one gradient, in order, and their reward once known."""

    batches: int
    reward: float | None = None
    resolved: bool = False


class RewardReporter:
    """Computes a reward after each backward pass and reports it to a graphwalk sampler.

    The loop-agnostic core of the library callbacks (see the module docstring for the loop).

    Args:
        sampler: the :class:`~graphwalk.walk.sampler.GraphWalkBatchSampler` (or
            :class:`~graphwalk.walk.sampler.GraphWalkSampler`) the training loader draws from;
            it must have a policy (the rewards are its).
        reward: ``"grad-norm"`` (default) or ``"gar"`` (see :mod:`graphwalk.learn.rewards`), or a
            :class:`~graphwalk.learn.rewards.Reward`. ``"loss-drop"`` is refused: see the module
            docstring.

    Attributes:
        sampler: the sampler passed.
        reward: the :class:`~graphwalk.learn.rewards.Reward` computed.
        reports: ``sampler.report()`` calls made so far (one per trained batch).

    Raises:
        TypeError: ``sampler`` is not a graphwalk sampler.
        InputError: the sampler has no policy, or the reward is ``loss-drop`` or unknown.
    """

    def __init__(
        self, sampler: GraphWalkBatchSampler | GraphWalkSampler, reward: str | Reward = "grad-norm"
    ) -> None:
        self.reward = check_reward(reward)
        self._sampler = _batch_sampler(sampler)
        self.sampler = sampler
        self._check_policy()
        self._queue: deque[_Entry] = deque()  # batches trained and not reported, in order
        self.reports = 0

    def _check_policy(self) -> None:
        if self._sampler.policy is None:
            raise InputError(
                "the sampler has no policy to learn from the rewards: create it with "
                "policy=... (a graphwalk.WalkPolicy, e.g. graphwalk.learn.make_policy(...))"
            )

    def use_sampler(self, sampler: GraphWalkBatchSampler | GraphWalkSampler) -> None:
        """Report to ``sampler`` from now on (a loader rebuilt between epochs). Only between
        epochs: every batch trained so far must have been reported (:meth:`end_epoch`)."""
        inner = _batch_sampler(sampler)
        if inner is self._sampler:
            self.sampler = sampler
            return
        if self._queue:
            raise InputError(
                f"{self.pending_batches()} trained batches still await their report: call "
                "end_epoch() before switching samplers"
            )
        self._sampler, self.sampler = inner, sampler
        self._check_policy()

    # ------------------------------------------------------------------ the loop's calls
    def after_backward(self, model: Any, *, batches: int = 1) -> float | None:
        """Call after ``loss.backward()`` and before the optimiser step: computes the reward.

        Args:
            model: the ``torch.nn.Module`` whose parameters hold the gradient.
            batches: the sampler batches this gradient was accumulated over (1: one batch per
                backward pass; the callbacks pass the micro-batches of an accumulation window,
                which then each get the window's reward).

        Returns:
            The reward that became available (``grad-norm``: this gradient's; ``gar``: the
            previous gradient's, ``None`` at the first), reported by the next :meth:`after_step`.
        """
        n = self._check_batches(batches)
        self._queue.append(_Entry(n))
        value = self.reward.after_backward(model)
        if value is not None:
            self._resolve(value)
        return value

    def add(self, value: float, *, batches: int = 1) -> None:
        """Queue a ``grad-norm`` reward the caller computed for the gradient just computed (the
        Hugging Face callback reads the norm before the ``Trainer`` clips the gradient), instead
        of :meth:`after_backward`. Only for rewards that are ready at once (``grad-norm``)."""
        if self.reward.name != "grad-norm":
            raise InputError(
                f"add() takes a grad-norm reward computed by the caller; the {self.reward.name!r} "
                "reward is computed by after_backward(model)"
            )
        n = self._check_batches(batches)
        self._queue.append(_Entry(n))
        self._resolve(float(value))

    def skip(self, batches: int = 1) -> None:
        """Mark ``batches`` trained without a reward (no gradient: a skipped step); they are
        reported with ``None`` in their turn."""
        n = self._check_batches(batches)
        self._queue.append(_Entry(n, None, resolved=True))

    def after_step(self, model: Any = None) -> int:
        """Call after the optimiser step: reports every reward that became available, in batch
        order (each once for every batch of its gradient). Returns the reports made.

        ``model`` is accepted for symmetry with :meth:`~graphwalk.learn.rewards.Reward.after_step`;
        the rewards supported here are all known after the backward pass."""
        del model
        return self._report_ready()

    def end_epoch(self) -> int:
        """Call at the end of every epoch (and of training): reports the batches still awaiting a
        reward (``gar``: the last one, without a reward), then ``sampler.flush_rewards()`` so the
        policy has learned from every batch before it is saved or the next epoch's walk starts.
        Returns the reports made."""
        for value in self.reward.finish():
            self._resolve(value)
        for e in self._queue:  # none left unless a custom reward under-delivers
            if not e.resolved:
                e.resolved = True
        made = self._report_ready()
        self._sampler.flush_rewards()
        return made

    def pending_batches(self) -> int:
        """Trained batches not reported yet."""
        return sum(e.batches for e in self._queue)

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _check_batches(batches: int) -> int:
        return check_int("batches", batches, minimum=1)

    def _resolve(self, value: float | None) -> None:
        """``value`` is the reward of the oldest gradient still awaiting one."""
        for e in self._queue:
            if not e.resolved:
                e.reward, e.resolved = value, True
                return
        raise InputError(
            "a reward arrived but no trained batch awaits one: call after_backward() once per "
            "backward pass"
        )

    def _report_ready(self) -> int:
        made = 0
        while self._queue and self._queue[0].resolved:
            e = self._queue.popleft()
            for _ in range(e.batches):
                self._sampler.report(e.reward)
                made += 1
        self.reports += made
        return made
