"""A Hugging Face ``TrainerCallback`` that feeds a graphwalk policy its rewards.

::

    from graphwalk.learn.hf import GraphWalkRewardCallback

    class GraphWalkTrainer(Trainer):
        def get_train_dataloader(self):
            sampler = gw.GraphWalkBatchSampler(index, self.args.per_device_train_batch_size,
                                               policy=policy)
            return DataLoader(self.train_dataset, batch_sampler=sampler,
                              collate_fn=self.data_collator)

    trainer = GraphWalkTrainer(..., callbacks=[GraphWalkRewardCallback("grad-norm")])

What it does (through :class:`graphwalk.learn.hooks.RewardReporter`):

- ``on_train_begin``: finds the sampler, unless given, in the ``train_dataloader`` the ``Trainer``
  passes its callbacks (a plain ``DataLoader``, or accelerate's ``DataLoaderShard`` /
  ``BatchSamplerShard`` when the loader went through ``accelerator.prepare``: unwrapped through
  ``base_dataloader``, ``batch_sampler`` and ``sampler``).
- ``on_pre_optimizer_step``: the reward of the gradient the optimiser is about to apply, summed
  over the step's micro-batches. The ``Trainer`` clips the gradient (``max_grad_norm``, 1.0 by
  default) *before* this hook, so ``grad-norm`` is read earlier, as the backward pass
  accumulates each parameter's gradient (``register_post_accumulate_grad_hook``), and divided by
  the loss scale under fp16 mixed precision: the reward is the unclipped norm, the ``grad_norm``
  the ``Trainer`` logs. ``gar`` (a cosine) is read at the hook: clipping and loss scaling
  multiply the whole gradient by one positive number, which leaves it unchanged.
- One report per micro-batch: with ``gradient_accumulation_steps=k`` a step's reward is reported
  once for each of its micro-batches (each is one batch of the sampler); that is ``k`` times,
  except for an epoch's last step, which has the micro-batches left (``on_substep_end`` counts
  them). Reports are made at ``on_optimizer_step`` (``gar``'s arrives one step late).
- ``on_epoch_end``: reports the batches still awaiting a reward (``gar``: the last, without one)
  and flushes the rewards to the policy (``sampler.flush_rewards()``).
"""

from __future__ import annotations

from typing import Any

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as e:  # pragma: no cover - the dev environment has it
    from graphwalk._extras import missing

    raise missing("transformers", "graphwalk.learn.hf (the Hugging Face Trainer callback)") from e

from graphwalk.learn.hooks import RewardReporter, check_reward, find_sampler
from graphwalk.learn.rewards import Reward
from graphwalk.walk.sampler import GraphWalkBatchSampler, GraphWalkSampler

__all__ = ["GraphWalkRewardCallback"]


class _GradNormTap:
    """Each trainable parameter's gradient norm, read as the backward pass accumulates it (before
    any clipping); the last read of each is the step's accumulated gradient."""

    def __init__(self, model: Any) -> None:
        self._norms: dict[int, Any] = {}
        self._handles = [
            p.register_post_accumulate_grad_hook(self._hook)
            for p in model.parameters()
            if p.requires_grad
        ]

    def _hook(self, p: Any) -> None:
        import torch

        if p.grad is not None:
            self._norms[id(p)] = torch.linalg.vector_norm(p.grad.detach(), dtype=torch.float64)

    def take(self) -> float | None:
        """The global L2 norm of the gradients read since the last call (``None``: none read)."""
        import torch

        if not self._norms:
            return None
        norms = list(self._norms.values())
        self._norms.clear()
        dev = norms[0].device
        return float(torch.linalg.vector_norm(torch.stack([n.to(dev) for n in norms])))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._norms.clear()


def _loss_scale(optimizer: Any) -> float:
    """The fp16 loss scale the gradients read during backward carry (1 without a scaler)."""
    scaler = getattr(optimizer, "scaler", None)  # accelerate's AcceleratedOptimizer
    if scaler is None or not getattr(scaler, "is_enabled", lambda: True)():
        return 1.0
    return float(scaler.get_scale())


class GraphWalkRewardCallback(TrainerCallback):
    """Reports a reward for every training batch to the graphwalk sampler's policy.

    Args:
        reward: ``"grad-norm"`` (default) or ``"gar"`` (``"loss-drop"`` needs the batch and the
            loss function: compute it in your own loop, see :mod:`graphwalk.learn.hooks`).
        sampler: the :class:`~graphwalk.walk.sampler.GraphWalkBatchSampler` (or
            :class:`~graphwalk.walk.sampler.GraphWalkSampler`) the training loader draws from;
            ``None`` finds it in the ``Trainer``'s training loader when training begins.

    Attributes:
        reporter: the :class:`~graphwalk.learn.hooks.RewardReporter` (``None`` before training).

    Raises:
        InputError: ``loss-drop`` or an unknown reward (here); no graphwalk sampler in the
            training loader or one without a policy (when training begins).
        TypeError: ``sampler`` is not a graphwalk sampler.
    """

    def __init__(
        self,
        reward: str | Reward = "grad-norm",
        sampler: GraphWalkBatchSampler | GraphWalkSampler | None = None,
    ) -> None:
        self._reward = check_reward(reward)
        self._given = sampler
        self.reporter: RewardReporter | None = None
        if sampler is not None:
            self.reporter = RewardReporter(sampler, self._reward)
        self._tap: _GradNormTap | None = None
        self._tapped: Any = None  # the model the tap is installed on
        self._micro = 0  # micro-batches trained since the last optimiser step

    def _setup(self, model: Any, train_dataloader: Any, *, find: bool) -> RewardReporter:
        """Create the reporter (finding the sampler in ``train_dataloader`` unless given; again
        when ``find``: a new ``train()``) and, for ``grad-norm``, tap ``model``'s gradients."""
        if self.reporter is None or (find and self._given is None):
            sampler = self._given if self._given is not None else find_sampler(train_dataloader)
            if self.reporter is None:
                self.reporter = RewardReporter(sampler, self._reward)
            else:
                self.reporter.use_sampler(sampler)
        if self._reward.name == "grad-norm" and model is not None and self._tapped is not model:
            if self._tap is not None:
                self._tap.remove()
            self._tap, self._tapped = _GradNormTap(model), model
        return self.reporter

    def _teardown(self) -> None:
        if self._tap is not None:
            self._tap.remove()
        self._tap = self._tapped = None

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        self._setup(kwargs.get("model"), kwargs.get("train_dataloader"), find=True)
        self._micro = 0

    def on_step_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        model = kwargs.get("model")
        tap = self._reward.name == "grad-norm" and self._tapped is not model
        if self.reporter is None or tap:  # added after training began, or a new model
            self._setup(model, kwargs.get("train_dataloader"), find=False)

    def on_substep_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        self._micro += 1

    def on_pre_optimizer_step(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        model = kwargs.get("model")
        reporter = (
            self._setup(model, kwargs.get("train_dataloader"), find=False)
            if self.reporter is None
            else self.reporter
        )
        n, self._micro = self._micro + 1, 0
        value = self._tap.take() if self._tap is not None else None
        if value is not None:
            reporter.add(value / _loss_scale(kwargs.get("optimizer")), batches=n)
        else:  # gar (clipping leaves a cosine unchanged), or grad-norm not tapped yet
            reporter.after_backward(model, batches=n)

    def on_optimizer_step(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if self.reporter is not None:
            self.reporter.after_step(kwargs.get("model"))

    def _end(self) -> None:
        if self.reporter is None:
            return
        if self._micro:  # micro-batches whose step never came
            self.reporter.skip(self._micro)
            self._micro = 0
        self.reporter.end_epoch()

    def on_epoch_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        self._end()

    def on_train_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if self.reporter is not None and (self.reporter.pending_batches() or self._micro):
            self._end()
        self._teardown()
