"""graphwalk with the Hugging Face Trainer: supply the batch sampler in get_train_dataloader."""

from __future__ import annotations

import tempfile

import torch
from _common import mlp, mnist1d_index
from torch.utils.data import DataLoader, Dataset
from transformers import Trainer, TrainingArguments

import graphwalk as gw


class DictDataset(Dataset):
    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict:
        x, y = self.base[i]
        return {"x": x, "labels": y}


class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


class GraphWalkTrainer(Trainer):
    def __init__(self, *args, index: gw.GraphIndex, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.index = index
        self.batches_seen: list[list[int]] = []

    def get_train_dataloader(self) -> DataLoader:
        sampler = gw.GraphWalkBatchSampler(
            self.index,
            batch_size=self.args.per_device_train_batch_size,
            graph="er",
            seed=self.args.seed,
        )
        self.graphwalk_sampler = sampler
        return DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator)


def main(epochs: int = 1) -> dict:
    index, base = mnist1d_index()
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=64,
            num_train_epochs=epochs,
            learning_rate=3e-3,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            logging_steps=20,
            seed=0,
            disable_tqdm=True,
        )
        trainer = GraphWalkTrainer(
            model=Model(), args=args, train_dataset=DictDataset(base), index=index
        )
        result = trainer.train()
    steps = result.global_step
    print(
        f"HF Trainer ran {steps} steps with the graphwalk sampler; loss {result.training_loss:.3f}"
    )
    return {
        "steps": steps,
        "batches_per_epoch": len(trainer.graphwalk_sampler),
        "loss": result.training_loss,
    }


if __name__ == "__main__":
    main()
