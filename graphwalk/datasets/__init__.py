"""Dataset adapters: embedded (``mnist1d``, ``digits``) and torchvision (``cifar10``, ``cifar100``,
``mnist``).

Each returns a :class:`VectorDataset`: model inputs as a tensor, the same inputs flattened as
float32 vectors (the raw features the indexer clusters), and one or more label sets. The
torchvision datasets are read by torchvision's own loaders from ``data_dir`` (the repository's
``datasets/`` by default); nothing is downloaded unless ``download=True``.
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk._extras import require
from graphwalk.errors import InputError

__all__ = ["DATASETS", "VectorDataset", "load_dataset"]

DATASETS = ("mnist1d", "digits", "cifar10", "cifar100", "mnist")
SPLITS = ("train", "test")


@dataclass
class VectorDataset:
    """A dataset as arrays.

    Attributes:
        name: adapter name.
        inputs: ``(n, ...)`` float32 tensor, what a model takes.
        labels: label sets by name; ``"label"`` is the class, CIFAR-100 adds ``"superclass"``.
        classes: class names, where the dataset has them.
    """

    name: str
    inputs: Any
    labels: dict[str, npt.NDArray[np.int64]]
    classes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def features(self) -> npt.NDArray[np.float32]:
        """The inputs flattened to ``(n, dim)`` float32 vectors."""
        return np.ascontiguousarray(self.inputs.reshape(len(self), -1).numpy(), dtype=np.float32)

    def torch_dataset(self) -> Any:
        """A map-style ``TensorDataset`` of ``(input, label)``."""
        import torch
        from torch.utils.data import TensorDataset

        return TensorDataset(self.inputs, torch.as_tensor(self.labels["label"]))


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> dict[str, Any]:
    """mnist1d's generated benchmark (about 2.5 s to make), once per process: both splits come
    from one generation."""
    data = require("mnist1d.data", "the mnist1d dataset")
    get_dataset_args, make_dataset = data.get_dataset_args, data.make_dataset

    args = get_dataset_args()  # the benchmark's published defaults: 5,000 samples, seed 42
    return dict(make_dataset(args))


def _mnist1d(split: str) -> VectorDataset:
    import torch

    data = _mnist1d_arrays()
    x, y = (data["x"], data["y"]) if split == "train" else (data["x_test"], data["y_test"])
    return VectorDataset(
        "mnist1d",
        torch.as_tensor(np.array(x, np.float32)),
        {"label": np.asarray(y, np.int64)},
        [str(i) for i in range(10)],
    )


def _digits(split: str) -> VectorDataset:
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    # load_digits has no split: a fixed, seeded 80/20 partition.
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(0.8 * len(y))
    rows = np.sort(order[:cut] if split == "train" else order[cut:])
    return VectorDataset(
        "digits", torch.as_tensor(x[rows]), {"label": y[rows]}, [str(i) for i in range(10)]
    )


def _not_found(name: str, root: Path, exc: Exception) -> InputError:
    return InputError(
        f"{name} was not found (or failed its checksum) under {root}: {exc}. Pass --download "
        f"(download=True) on a machine with network access, or put the files there (see "
        f"datasets/{name}.md)"
    )


def _tree(path: Path) -> set[Path]:
    """``path`` and everything under it (empty when it does not exist)."""
    if not os.path.lexists(path):
        return set()
    return {path, *path.rglob("*")} if path.is_dir() and not path.is_symlink() else {path}


@contextmanager
def _downloading(
    name: str, root: Path, url: str, targets: Sequence[str], place: Path
) -> Iterator[None]:
    """Turn a failed download into one :class:`InputError` and remove what it created.

    Only paths that did not exist before are removed: the data directory (and its parents) when
    this call made it, and anything new under ``root / target`` for each of ``targets`` (the
    dataset's folder and archive); the user's own files, even inside those folders, stay. An
    interrupted download (Ctrl-C) is cleaned up the same way and re-raised as it is.
    """
    made = [p for p in (root, *root.parents) if not os.path.lexists(p)]
    before = {p for t in targets for p in _tree(root / t)}

    def remove_new() -> None:
        new = {p for t in targets for p in _tree(root / t)} - before
        for path in sorted(new, key=lambda p: len(p.parts), reverse=True) + made:
            try:
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()  # a new directory holds only new things, removed just before
                else:
                    path.unlink()
            except OSError:
                pass

    try:
        root.mkdir(parents=True, exist_ok=True)
        yield
    except (OSError, RuntimeError) as exc:
        remove_new()
        cause = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(
            f"could not download {name} from {url} into {root}: {cause}. Run again with network "
            f"access, or put the files under {place} yourself (see datasets/{name}.md)"
        ) from exc
    except BaseException:
        remove_new()
        raise


def _cifar(name: str, root: Path, split: str, download: bool) -> VectorDataset:
    import torch

    tvd = require("torchvision.datasets", f"the {name} dataset")

    cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
    train = split == "train"
    if download:
        targets = [cls.base_folder, cls.filename]
        with _downloading(name, root, cls.url, targets, root / cls.base_folder):
            ds = cls(str(root), train=train, download=True)
    else:
        try:
            ds = cls(str(root), train=train)
        except RuntimeError as exc:
            raise _not_found(name, root, exc) from exc
    inputs = torch.as_tensor(np.asarray(ds.data)).permute(0, 3, 1, 2).float().div_(255.0)
    labels = {"label": np.asarray(ds.targets, np.int64)}
    if name == "cifar100":
        coarse: list[int] = []
        for fname, _ in ds.train_list if split == "train" else ds.test_list:
            with open(root / ds.base_folder / fname, "rb") as f:
                coarse.extend(pickle.load(f, encoding="latin1")["coarse_labels"])
        labels["superclass"] = np.asarray(coarse, np.int64)
    return VectorDataset(name, inputs, labels, list(ds.classes))


def _mnist(root: Path, split: str, download: bool) -> VectorDataset:
    tvd = require("torchvision.datasets", "the mnist dataset")

    train = split == "train"
    if download:
        url = " or ".join(tvd.MNIST.mirrors)
        with _downloading("mnist", root, url, ["MNIST"], root / "MNIST" / "raw"):
            ds = tvd.MNIST(str(root), train=train, download=True)
    else:
        try:
            ds = tvd.MNIST(str(root), train=train)
        except RuntimeError as exc:
            raise _not_found("mnist", root, exc) from exc
    inputs = ds.data.unsqueeze(1).float().div_(255.0)
    return VectorDataset(
        "mnist", inputs, {"label": ds.targets.numpy().astype(np.int64)}, list(ds.classes)
    )


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] = "datasets",
    download: bool = False,
    split: str = "train",
) -> VectorDataset:
    """Load dataset ``name`` (one of :data:`DATASETS`) as a :class:`VectorDataset`.

    Args:
        data_dir: where torchvision datasets live (``datasets/`` of the repository by default).
        download: let torchvision download a missing dataset (needs network access).
        split: ``"train"`` or ``"test"``.
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose from {DATASETS}")
    if split not in SPLITS:
        raise InputError(f"split should be one of {SPLITS}, but got {split!r}")
    root = Path(data_dir)
    if name == "mnist1d":
        return _mnist1d(split)
    if name == "digits":
        return _digits(split)
    if name in ("cifar10", "cifar100"):
        return _cifar(name, root, split, download)
    return _mnist(root, split, download)
