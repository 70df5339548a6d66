"""Rewards for the learned walker: how much the model learned from a batch, and their normaliser.

A training loop computes one reward per batch and passes it to ``sampler.report(reward)``; the
sampler hands the raw number to the policy, which maps it to ``[-1, 1]`` with a
:class:`RewardNormalizer` (rewards change scale as training goes: a gradient norm early in training
is orders of magnitude larger than late).

The rewards (``--reward NAME``; :func:`make_reward`):

- ``grad-norm`` (:class:`GradNormReward`): the global L2 norm of the batch's gradient, the
  gradient prediction gain of Graves et al. 2017 ("Automated Curriculum Learning for Neural
  Networks") in its cheapest form: the norm of the mini-batch gradient itself, free after
  ``loss.backward()`` (Graves's variant scales the gradient by the optimiser's preconditioner; with
  Adam or SGD the plain norm orders batches alike up to the per-parameter scale). Large gradients
  also come from mislabelled or noisy items, so this reward may favour them.
- ``loss-drop`` (:class:`LossDropReward`): the loss on the batch before the step minus the loss on
  the same batch after it, Graves's prediction gain; costs one extra forward pass without
  gradients. Batch-norm statistics and the random state are restored around that pass, so the
  training run is the same with or without the reward.
- ``gar`` (:class:`GradientAlignmentReward`): the gradient-alignment reward of Müller, Biedenkapp
  and Hutter 2021 ("In-Loop Meta-Learning with Gradient-Alignment Reward"): the cosine between this
  batch's flattened gradient and the next step's. We use the next training batch rather than a
  held-out batch: no extra forward or backward pass and no data set aside, at the price of a
  reward that arrives one step late (the last batch's never comes: :meth:`Reward.finish` returns
  ``None`` for it, to report it without a reward).

How a loop uses a reward (``after_backward`` after ``loss.backward()`` and before
``optimizer.step()``, ``after_step`` after it)::

    reward = make_reward("gar")
    for x, y in loader:
        loss = loss_fn(model(x), y)
        loss.backward()
        r = reward.after_backward(model)
        opt.step()
        if r is None:
            r = reward.after_step(model, x, y, float(loss), loss_fn)
        opt.zero_grad()
        if r is not None:                # a reward became available: it belongs to the oldest
            sampler.report(r)            # batch not reported yet
    for r in reward.finish():            # batches still waiting (gar: the last one)
        sampler.report(r)

Every call returns the reward of the oldest batch still awaiting one, or ``None`` when no reward
became available at that call; :meth:`Reward.pending` says how many batches are awaiting one.

Defaults of :class:`RewardNormalizer`:

- ``window=1000``: the quantiles follow the last 1000 rewards, long enough for stable 20th/80th
  percentiles (200 rewards beyond each) and short enough to track the scale of a reward that
  shrinks over a run of tens of thousands of steps (non-stationary).
- ``low=20, high=80`` (percentiles): Graves et al. 2017 rescale rewards to ``[-1, 1]`` by the 20th
  and 80th percentiles of the reward history, which makes the scale robust to outliers (the
  gradient norm of a mislabelled batch) without clipping the bulk of the rewards.
"""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.validation import check_int, check_real

if TYPE_CHECKING:  # torch is imported when a reward is computed, not with this module
    import torch

__all__ = [
    "REWARDS",
    "GradNormReward",
    "GradientAlignmentReward",
    "LossDropReward",
    "Reward",
    "RewardNormalizer",
    "make_reward",
]

#: The reward names :func:`make_reward` knows.
REWARDS = ("grad-norm", "loss-drop", "gar")


class RewardNormalizer:
    """Online, non-stationary map of raw rewards to ``[-1, 1]`` (Graves et al. 2017).

    Keeps the last ``window`` raw rewards; a reward ``r`` maps to ``-1`` below the ``low``
    percentile ``q_lo`` of that window, ``1`` above the ``high`` percentile ``q_hi`` and
    ``2 (r - q_lo) / (q_hi - q_lo) - 1`` in between. When ``q_lo == q_hi`` (a constant window, or
    binary rewards that are mostly equal) ``r`` maps to ``-1``, ``0`` or ``1`` as it is below,
    equal to or above them. Before any history every reward maps to ``0``.

    Args:
        window: raw rewards kept (see the module docstring for the default).
        low, high: the percentiles mapped to ``-1`` and ``1``, ``0 <= low < high <= 100``.
    """

    def __init__(self, window: int = 1000, low: float = 20.0, high: float = 80.0) -> None:
        self.window = check_int("window", window, minimum=1)
        self.low = check_real("low", low, low=0.0, high=100.0)
        self.high = check_real("high", high, low=0.0, high=100.0)
        if not self.low < self.high:
            raise InputError(
                f"low={low} should be below high={high} (percentiles mapped to -1 and 1); "
                "e.g. low=20, high=80"
            )
        self._ring = np.zeros(self.window, np.float64)
        self._count = 0  # rewards seen (the ring holds the last min(count, window))
        self._sorted: list[float] = []  # the window's rewards in order: quantiles in O(1)

    def __len__(self) -> int:
        """Raw rewards in the window."""
        return min(self._count, self.window)

    def history(self) -> npt.NDArray[np.float64]:
        """The raw rewards in the window, oldest first."""
        n = len(self)
        if self._count <= self.window:
            return self._ring[:n].copy()
        start = self._count % self.window
        return np.concatenate([self._ring[start:], self._ring[:start]])

    def quantiles(self) -> tuple[float, float]:
        """The ``low`` and ``high`` percentiles of the window (NumPy's default, linear
        interpolation), read from the window kept sorted as rewards arrive (this runs once per reward)."""
        n = len(self)
        if n == 0:
            raise InputError("the normaliser has no rewards yet: push() some first")
        part = self._sorted  # kept sorted by push(): the i-th smallest is part[i]
        out = []
        for q in (self.low, self.high):
            p = (n - 1) * q / 100.0
            i = math.floor(p)
            j = min(i + 1, n - 1)
            out.append(float(part[i] + (p - i) * (part[j] - part[i])))
        return out[0], out[1]

    def scale(self, reward: float) -> float:
        """``reward`` mapped to ``[-1, 1]`` by the current window (which it does not join)."""
        r = float(reward)
        if not np.isfinite(r):
            raise InputError(f"reward {r} is not finite; skip it instead of normalising it")
        n = len(self)
        if n == 0:
            return 0.0
        lo, hi = self.quantiles()
        if r <= lo:
            return -1.0 if r < lo or hi > lo else 0.0
        if r >= hi:
            return 1.0
        return 2.0 * (r - lo) / (hi - lo) - 1.0

    def push(self, reward: float) -> None:
        """Add a raw reward to the window (the oldest leaves when it is full)."""
        r = float(reward)
        if not np.isfinite(r):
            raise InputError(f"reward {r} is not finite; skip it instead of normalising it")
        slot = self._count % self.window
        if self._count >= self.window:  # the oldest leaves the sorted window too
            del self._sorted[bisect.bisect_left(self._sorted, float(self._ring[slot]))]
        bisect.insort(self._sorted, r)
        self._ring[slot] = r
        self._count += 1

    def __call__(self, reward: float) -> float:
        """Map ``reward`` by the window so far, then add it to the window."""
        out = self.scale(reward)
        self.push(reward)
        return out

    def state_dict(self) -> dict[str, Any]:
        """The window (oldest first) and the settings: enough to continue exactly."""
        return {
            "window": self.window,
            "low": self.low,
            "high": self.high,
            "history": self.history(),
            "count": self._count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (of a normaliser with the same ``window``)."""
        if int(state["window"]) != self.window:
            raise InputError(
                f"the normaliser state has window={state['window']} but this normaliser has "
                f"window={self.window}; create it with window={state['window']}"
            )
        hist = np.asarray(state["history"], np.float64)
        count = int(state["count"])
        if hist.ndim != 1 or hist.size != min(count, self.window):
            raise InputError(
                f"the normaliser state holds {hist.size} rewards but says {count} were seen "
                f"(window={self.window}): not a RewardNormalizer state"
            )
        self.low, self.high = float(state["low"]), float(state["high"])
        self._ring = np.zeros(self.window, np.float64)
        start = count % self.window if count > self.window else 0
        self._ring[start : start + hist.size] = hist[: self.window - start]
        self._ring[:start] = hist[self.window - start :]
        self._count = count
        self._sorted = sorted(float(v) for v in hist)

    @property
    def count(self) -> int:
        """Rewards pushed since the start (across resumes)."""
        return self._count


def _grads(model: Any) -> list[tuple[Any, Any]]:
    """``(parameter, gradient or None)`` for every parameter that requires a gradient; raises
    when none has one (the reward was computed before ``loss.backward()``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    pairs = [(p, p.grad) for p in params]
    if not any(g is not None for _, g in pairs):
        what = "no parameters" if not params else "no gradients"
        raise InputError(
            f"the model ({type(model).__name__}) has {what} yet: compute the reward after "
            "loss.backward() and before optimizer.zero_grad()"
        )
    return pairs


class Reward:
    """How much the model learned from a batch; the base of the rewards of :data:`REWARDS`.

    Subclasses override :meth:`after_backward` and/or :meth:`after_step`. Each call returns the
    reward of the oldest batch still awaiting one, or ``None`` when no reward became available at
    that call (see the module docstring for the loop).

    Attributes:
        name: the name :func:`make_reward` knows it by.
        needs_second_forward: whether :meth:`after_step` runs the model again (``loss-drop``).
    """

    name = ""
    needs_second_forward = False

    def __init__(self) -> None:
        self._pending = 0  # batches trained whose reward has not been returned yet

    def after_backward(self, model: torch.nn.Module) -> float | None:
        """Called after ``loss.backward()``, before ``optimizer.step()``."""
        del model
        return None

    def after_step(
        self,
        model: torch.nn.Module,
        x: Any,
        y: Any,
        loss_before: float,
        loss_fn: Any,
    ) -> float | None:
        """Called after ``optimizer.step()`` with the batch, its loss before the step and the
        loss function (``loss_fn(model(x), y)`` is the loss)."""
        del model, x, y, loss_before, loss_fn
        return None

    def pending(self) -> int:
        """Batches trained whose reward has not been returned yet."""
        return self._pending

    def finish(self) -> list[float | None]:
        """Rewards of the batches still awaiting one at the end of training, oldest first
        (``None``: the batch has no reward; report it without one)."""
        out: list[float | None] = [None] * self._pending
        self._pending = 0
        return out

    def state_dict(self) -> dict[str, Any]:
        """What the next rewards depend on (``gar``: the gradient awaiting its successor)."""
        return {"name": self.name, "pending": self._pending}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise InputError(
                f"the reward state is of {state.get('name')!r} but this reward is "
                f"{self.name!r}; resume with --reward {state.get('name')}"
            )
        self._pending = int(state["pending"])


class GradNormReward(Reward):
    """``grad-norm``: the global L2 norm of all parameter gradients (Graves et al. 2017's gradient
    prediction gain in its free form). Available at :meth:`after_backward`."""

    name = "grad-norm"

    def __init__(self) -> None:
        super().__init__()
        self._model: Any = None
        self._params: list[Any] = []

    def after_backward(self, model: torch.nn.Module) -> float | None:
        import torch

        if self._model is not model:  # the parameters, listed once per model
            self._model = model
            self._params = [p for p in model.parameters() if p.requires_grad]
        grads = [p.grad for p in self._params if p.grad is not None]
        if not grads:
            _grads(model)  # raises, naming the reason
        # one fused call, then Python floats: the fewest torch calls (measured: +2.1% of a CNN
        # step, against +3.0% stacking the norms in torch)
        norms: Any = (
            torch._foreach_norm(grads)
            if hasattr(torch, "_foreach_norm")
            else [torch.linalg.vector_norm(g) for g in grads]  # torch < 2.0
        )
        return math.sqrt(sum(float(n) ** 2 for n in norms))


class LossDropReward(Reward):
    """``loss-drop``: the batch's loss before the step minus its loss after it (Graves et al.
    2017's prediction gain), from one extra forward pass without gradients in
    :meth:`after_step`. Buffers (batch-norm statistics) and the random state (dropout) are
    restored after that pass, so it does not change training."""

    name = "loss-drop"
    needs_second_forward = True

    def after_step(
        self,
        model: torch.nn.Module,
        x: Any,
        y: Any,
        loss_before: float,
        loss_fn: Any,
    ) -> float | None:
        import torch

        before = float(loss_before)
        if not np.isfinite(before):
            raise InputError(f"loss_before={loss_before!r} is not a finite number")
        buffers = [b.detach().clone() for b in model.buffers()]
        device = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
        devices = []
        if device.type == "cuda":
            devices = [torch.cuda.current_device() if device.index is None else device.index]
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            after = float(loss_fn(model(x), y))
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers, strict=True):
                b.copy_(saved)
        return before - after


class GradientAlignmentReward(Reward):
    """``gar``: the cosine between consecutive steps' flattened gradients (Müller, Biedenkapp,
    Hutter 2021), credited to the earlier batch: batch ``t``'s reward is returned by
    :meth:`after_backward` of batch ``t + 1``; :meth:`finish` returns ``None`` for the last batch.
    Parameters without a gradient count as zeros, so the vectors stay aligned; a zero gradient
    has cosine 0 with anything. Keeps one copy of the gradient."""

    name = "gar"

    def __init__(self) -> None:
        super().__init__()
        self._previous: Any = None  # the flattened gradient of the batch awaiting its reward

    def after_backward(self, model: torch.nn.Module) -> float | None:
        import torch

        pairs = _grads(model)
        flat = torch.cat(
            [
                (g.detach() if g is not None else torch.zeros_like(p)).reshape(-1).double()
                for p, g in pairs
            ]
        )
        prev, self._previous = self._previous, flat
        if prev is None:
            self._pending = 1
            return None
        if prev.shape != flat.shape:
            raise InputError(
                f"the gradient has {flat.numel()} entries but the previous step's had "
                f"{prev.numel()}: gar compares consecutive steps of the same model"
            )
        denom = float(torch.linalg.vector_norm(prev) * torch.linalg.vector_norm(flat))
        return float(torch.dot(prev, flat)) / denom if denom > 0.0 else 0.0

    def finish(self) -> list[float | None]:
        self._previous = None
        return super().finish()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["previous"] = None if self._previous is None else self._previous.clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        prev = state.get("previous")
        self._previous = None if prev is None else prev.clone()


_CLASSES: dict[str, type[Reward]] = {
    "grad-norm": GradNormReward,
    "loss-drop": LossDropReward,
    "gar": GradientAlignmentReward,
}


def make_reward(name: str) -> Reward:
    """The reward called ``name`` (one of :data:`REWARDS`).

    Raises:
        InputError: ``name`` is not a known reward; the message lists them.
    """
    if name not in _CLASSES:
        raise InputError(f"unknown reward {name!r}; choose one of {', '.join(REWARDS)}")
    return _CLASSES[name]()
