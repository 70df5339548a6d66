"""A PyTorch Lightning callback that feeds a graphwalk policy its rewards.

::

    from graphwalk.learn.lightning import GraphWalkRewardCallback

    class Model(pl.LightningModule):
        def train_dataloader(self):
            self.sampler = gw.GraphWalkBatchSampler(index, 64, policy=policy)
            return DataLoader(dataset, batch_sampler=self.sampler)

    trainer = pl.Trainer(callbacks=[GraphWalkRewardCallback("grad-norm")],
                         use_distributed_sampler=False)   # keep the sampler under DDP
    trainer.fit(Model())

What it does (through :class:`graphwalk.learn.hooks.RewardReporter`):

- ``on_train_epoch_start``: finds the sampler, unless given, in ``trainer.train_dataloader``
  (through ``batch_sampler`` / ``sampler`` and wrappers; again every epoch, so a loader reloaded
  with ``reload_dataloaders_every_n_epochs`` is followed).
- ``on_before_optimizer_step``: computes the reward from the gradient the optimiser is about to
  apply: after every backward pass of the step, with mixed precision already unscaled and before
  Lightning clips it (``gradient_clip_val``). Under DDP it is the ranks' averaged gradient.
  With ``accumulate_grad_batches=k`` that gradient is the sum of ``k`` micro-batches' and its
  reward is reported once for each of them (each micro-batch is one batch of the sampler); a step
  with no backward pass (``training_step`` returned ``None``) reports its batches without a
  reward. ``on_after_backward`` counts the backward passes (Lightning calls it before unscaling,
  hence the reward is read later).
- ``on_train_batch_end``: reports the rewards that became available (``sampler.report``, once per
  batch, in order; ``gar``'s arrives one step late).
- ``on_train_epoch_end``: reports the batches still awaiting a reward (``gar``: the last one,
  without a reward) and flushes the rewards to the policy (``sampler.flush_rewards()``).

The callback's reward state is not part of Lightning checkpoints: save ``sampler.state_dict()``
yourself for exact resume (see the README), at the end of an epoch.
"""

from __future__ import annotations

from typing import Any

try:
    import pytorch_lightning as pl
except ImportError as e:  # pragma: no cover - the dev environment has it
    from graphwalk._extras import missing

    raise missing("pytorch_lightning", "graphwalk.learn.lightning (the Lightning callback)") from e

from graphwalk.learn.hooks import RewardReporter, check_reward, find_sampler
from graphwalk.learn.rewards import Reward
from graphwalk.walk.sampler import GraphWalkBatchSampler, GraphWalkSampler

__all__ = ["GraphWalkRewardCallback"]


class GraphWalkRewardCallback(pl.Callback):
    """Reports a reward for every training batch to the graphwalk sampler's policy.

    Args:
        reward: ``"grad-norm"`` (default) or ``"gar"`` (``"loss-drop"`` needs the batch and the
            loss function: compute it in your own loop, see :mod:`graphwalk.learn.hooks`).
        sampler: the :class:`~graphwalk.walk.sampler.GraphWalkBatchSampler` (or
            :class:`~graphwalk.walk.sampler.GraphWalkSampler`) the training loader draws from;
            ``None`` finds it in ``trainer.train_dataloader`` at the start of every epoch.

    Attributes:
        reporter: the :class:`~graphwalk.learn.hooks.RewardReporter` (``None`` before training).

    Raises:
        InputError: ``loss-drop`` or an unknown reward (here); no graphwalk sampler in the
            training loader or one without a policy (when training starts).
        TypeError: ``sampler`` is not a graphwalk sampler.
    """

    def __init__(
        self,
        reward: str | Reward = "grad-norm",
        sampler: GraphWalkBatchSampler | GraphWalkSampler | None = None,
    ) -> None:
        super().__init__()
        self._reward = check_reward(reward)
        self._given = sampler
        self.reporter: RewardReporter | None = None
        if sampler is not None:
            self.reporter = RewardReporter(sampler, self._reward)
        self._batches = 0  # training batches started this epoch
        self._covered = 0  # of them, those whose gradient was read (or skipped)
        self._backwards = 0  # backward passes since the last optimiser step

    def _setup(self, trainer: pl.Trainer) -> RewardReporter:
        if self._given is not None:
            assert self.reporter is not None
            return self.reporter
        sampler = find_sampler(trainer.train_dataloader)
        if self.reporter is None:
            self.reporter = RewardReporter(sampler, self._reward)
        else:
            self.reporter.use_sampler(sampler)
        return self.reporter

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._setup(trainer)
        self._batches = self._covered = self._backwards = 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batches += 1

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._backwards += 1

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        n = self._batches - self._covered
        if n <= 0 or self.reporter is None:  # a second optimiser stepping on the same batch
            return
        self._covered += n
        if self._backwards == 0:
            self.reporter.skip(n)
        else:
            self.reporter.after_backward(pl_module, batches=n)
        self._backwards = 0

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.reporter is not None:
            self.reporter.after_step(pl_module)

    def _end(self) -> None:
        if self.reporter is None:
            return
        left = self._batches - self._covered  # batches whose step never came (manual steps)
        if left > 0:
            self.reporter.skip(left)
        self._covered = self._batches
        self.reporter.end_epoch()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.reporter is not None and (
            self.reporter.pending_batches() or self._batches > self._covered
        ):
            self._end()  # training stopped inside an epoch without its epoch-end hook
