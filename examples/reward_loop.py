"""A learned walk: a policy steers graphwalk toward where the model learns most.

The training loop reports a reward for every batch (here the gradient norm after ``backward``)
with ``sampler.report(reward)``. The sampler hands it to the policy's ``learn()`` together with
the very step that drew that batch. A ``DataLoader`` with workers runs the sampler ahead of
training (``num_workers * prefetch_factor`` batches: 4 with 2 workers and the default prefetch
of 2), so each reward arrives that many batches after its batch was chosen; ``report()`` says
how many (``info.delay``), and the credit stays exact whatever the delay.

Run: ``python examples/reward_loop.py --num-workers 2``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

import graphwalk as gw


class GradNormPolicy(gw.WalkPolicy):
    """Moves ROOT to the neighbour whose batches gave the largest gradient norms so far.

    Keeps a running average of the reward of the batches rooted at each node; picks the best
    candidate, or a random one with probability ``explore`` (unseen nodes count as promising).
    With no candidate it teleports (the sampler draws a random node with items left)."""

    def __init__(self, n_nodes: int, explore: float = 0.2, seed: int = 0) -> None:
        self.value = np.full(n_nodes, np.inf)  # unseen: try them first
        self.count = np.zeros(n_nodes, np.int64)
        self.explore = explore
        self.rng = np.random.default_rng(seed)
        self.credited = 0

    def select(self, step: gw.WalkStep) -> int:
        if step.candidates.size == 0:
            return gw.TELEPORT
        if self.rng.random() < self.explore:
            return int(self.rng.choice(step.candidates))
        return int(step.candidates[np.argmax(self.value[step.candidates])])

    def learn(self, step: gw.WalkStep, reward: float) -> None:
        node = step.root  # the ROOT actually used for the batch this reward is for
        self.count[node] += 1
        old = 0.0 if self.count[node] == 1 else self.value[node]
        self.value[node] = old + (reward - old) / self.count[node]
        self.credited += 1

    def state_dict(self) -> dict:  # travels in sampler.state_dict(): resume stays exact
        return {"value": self.value, "count": self.count, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.count = state["value"].copy(), state["count"].copy()
        self.rng.bit_generator.state = state["rng"]


def digits_index() -> tuple[gw.GraphIndex, TensorDataset]:
    """scikit-learn's digits (1,797 8x8 images) and an in-memory index with a kNN item graph."""
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    index = gw.build_index(x, labels=d.target, graphs=["knn"], k=10, seed=0)
    return index, TensorDataset(torch.from_numpy(x), torch.from_numpy(d.target))


def main(epochs: int = 2, num_workers: int = 0) -> dict:
    index, dataset = digits_index()
    policy = GradNormPolicy(index.n_items)
    sampler = gw.GraphWalkBatchSampler(
        index, batch_size=32, graph="knn", mix=0.25, policy=policy, seed=0, dataset=dataset
    )
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses, delays, steered = [], [], 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        total = 0.0
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            grad_norm = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
            opt.step()
            info = sampler.report(float(grad_norm))  # credited to this batch's step, later
            delays.append(info.delay)
            steered += not info.teleported
            total += loss.item() * len(y)
        losses.append(total / len(dataset))
        print(f"epoch {epoch}: loss {losses[-1]:.3f}")
    delay = max(delays)
    steps = len(delays)
    print(
        f"reward delay: {delay} batches (num_workers={num_workers}); rewards credited to the "
        f"policy: {policy.credited} of {steps} (the last {steps - policy.credited} wait for the "
        f"walk's next decision); ROOT chosen by the policy in {steered} of {steps} batches"
    )
    return {
        "losses": losses,
        "delay": delay,
        "credited": policy.credited,
        "steps": steps,
        "batches_per_epoch": len(loader),
        "steered": steered,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    main(epochs=args.epochs, num_workers=args.num_workers)
