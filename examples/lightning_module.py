"""graphwalk with PyTorch Lightning: keep Lightning from wrapping the sampler for DDP."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from _common import mlp, mnist1d_index
from torch.utils.data import DataLoader

import graphwalk as gw


class Classifier(pl.LightningModule):
    def __init__(self, index: gw.GraphIndex, dataset: torch.utils.data.Dataset) -> None:
        super().__init__()
        self.index, self.dataset = index, dataset
        self.net = mlp()
        self.epochs_seen: list[int] = []

    def train_dataloader(self) -> DataLoader:
        # built here, after Lightning set up torch.distributed: the sampler reads rank and world size
        self.sampler = gw.GraphWalkBatchSampler(self.index, batch_size=64, graph="er", seed=0)
        return DataLoader(self.dataset, batch_sampler=self.sampler)

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        if batch_idx == 0:  # each of Lightning's passes is a new epoch of the walk
            self.epochs_seen.append(self.sampler.epoch)
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def main(epochs: int = 2) -> dict:
    index, dataset = mnist1d_index()
    model = Classifier(index, dataset)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        use_distributed_sampler=False,
    )  # keep communities whole under DDP
    trainer.fit(model)
    loader = trainer.train_dataloader
    kept = isinstance(loader.batch_sampler, gw.GraphWalkBatchSampler)
    print(f"sampler kept: {kept}; epochs seen by the sampler: {model.epochs_seen}")
    return {
        "sampler_kept": kept,
        "epochs_seen": model.epochs_seen,
        "loss": float(trainer.callback_metrics["loss"]),
    }


if __name__ == "__main__":
    main()
