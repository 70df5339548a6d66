import hashlib
import pickle
import struct

import numpy as np
import pytest

from graphwalk.datasets import load_dataset
from graphwalk.errors import InputError


def test_embedded_datasets_work_offline():
    m = load_dataset("mnist1d")
    assert m.features.shape == (4000, 40) and set(np.unique(m.labels["label"])) == set(range(10))
    assert load_dataset("mnist1d", split="test").features.shape == (1000, 40)
    d = load_dataset("digits")
    t = load_dataset("digits", split="test")
    assert d.features.shape[1] == 64 and len(d) + len(t) == 1797
    assert 0.0 <= d.features.min() and d.features.max() <= 1.0
    x, y = d.torch_dataset()[0]
    assert x.shape == (64,) and int(y) == d.labels["label"][0]


def test_unknown_name_and_split():
    with pytest.raises(InputError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(InputError, match="split"):
        load_dataset("digits", split="val")


def _write_cifar(root, name, n_per_batch=6, monkeypatch=None):
    """Files in the real CIFAR python pickle layout; torchvision's md5 table is pointed at them."""
    from torchvision import datasets as tvd

    cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sums = {}
    for fname, _ in cls.train_list + cls.test_list:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        entry = {"data": data}
        if name == "cifar10":
            entry["labels"] = rng.integers(0, 10, n_per_batch).tolist()
        else:
            fine = rng.integers(0, 100, n_per_batch)
            entry["fine_labels"] = fine.tolist()
            entry["coarse_labels"] = (fine // 5).tolist()
        blob = pickle.dumps(entry)
        (folder / fname).write_bytes(blob)
        sums[fname] = hashlib.md5(blob).hexdigest()
    key = cls.meta["key"]
    names = [f"c{i}" for i in range(10 if name == "cifar10" else 100)]
    meta_blob = pickle.dumps({key: names})
    (folder / cls.meta["filename"]).write_bytes(meta_blob)
    monkeypatch.setattr(cls, "train_list", [[f, sums[f]] for f, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[f, sums[f]] for f, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": hashlib.md5(meta_blob).hexdigest()})
    return cls


def test_cifar10_through_torchvision(tmp_path, monkeypatch):
    cls = _write_cifar(tmp_path, "cifar10", monkeypatch=monkeypatch)
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert len(ds) == 6 * len(cls.train_list) and ds.inputs.shape[1:] == (3, 32, 32)
    assert ds.features.shape == (len(ds), 3072) and ds.features.max() <= 1.0
    assert ds.classes[:2] == ["c0", "c1"]
    assert len(load_dataset("cifar10", data_dir=tmp_path, split="test")) == 6


def test_cifar100_has_superclasses(tmp_path, monkeypatch):
    _write_cifar(tmp_path, "cifar100", monkeypatch=monkeypatch)
    ds = load_dataset("cifar100", data_dir=tmp_path)
    np.testing.assert_array_equal(ds.labels["superclass"], ds.labels["label"] // 5)


def test_corrupted_cifar_is_reported(tmp_path, monkeypatch):
    cls = _write_cifar(tmp_path, "cifar10", monkeypatch=monkeypatch)
    (tmp_path / cls.base_folder / "data_batch_1").write_bytes(b"junk")
    with pytest.raises(
        InputError, match="cifar10 was not found \\(or failed its checksum\\).*--download"
    ):
        load_dataset("cifar10", data_dir=tmp_path)


def _idx(path, arr, code):
    header = struct.pack(">HBB", 0, code, arr.ndim) + b"".join(
        struct.pack(">I", d) for d in arr.shape
    )
    path.write_bytes(header + arr.tobytes())


def test_mnist_idx_files_through_torchvision(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 7), ("t10k", 3)):
        _idx(
            raw / f"{prefix}-images-idx3-ubyte",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            0x08,
        )
        _idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8), 0x08)
    ds = load_dataset("mnist", data_dir=tmp_path)
    assert ds.inputs.shape == (7, 1, 28, 28) and ds.features.shape == (7, 784)
    assert len(load_dataset("mnist", data_dir=tmp_path, split="test")) == 3


def test_missing_torchvision_dataset_without_download(tmp_path):
    with pytest.raises(InputError, match="mnist was not found.*--download"):
        load_dataset("mnist", data_dir=tmp_path)
