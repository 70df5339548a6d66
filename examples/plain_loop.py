"""graphwalk in a plain PyTorch training loop on mnist1d."""

from __future__ import annotations

import torch
from _common import mlp, mnist1d_index
from torch.utils.data import DataLoader

import graphwalk as gw


def main(epochs: int = 3) -> dict:
    index, dataset = mnist1d_index()
    sampler = gw.GraphWalkBatchSampler(
        index, batch_size=64, graph="er", k=4, mix=0.1, seed=0, dataset=dataset
    )
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        total = 0.0
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(y)
        losses.append(total / len(dataset))
        print(f"epoch {epoch}: loss {losses[-1]:.3f}; last batch {sampler.batch_info()}")
    return {"losses": losses, "batches_per_epoch": len(loader)}


if __name__ == "__main__":
    main()
