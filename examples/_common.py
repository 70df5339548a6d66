"""Shared by the examples: mnist1d, its index, and a small MLP."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

import graphwalk as gw
from graphwalk.datasets import load_dataset


def mnist1d_index(out: Path | None = None) -> tuple[gw.GraphIndex, torch.utils.data.TensorDataset]:
    ds = load_dataset("mnist1d")
    out = out or Path(tempfile.mkdtemp()) / "mnist1d.gw"
    index = gw.build_index(
        ds.features, labels=ds.labels, clusters=40, graphs=["er"], out=out, overwrite=True
    )
    return index, ds.torch_dataset()


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(40, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
