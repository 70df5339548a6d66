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


def _no_network(monkeypatch):
    import urllib.error
    import urllib.request

    def urlopen(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


class _DroppedResponse:
    """A response that sends a few bytes and then loses the connection."""

    url = None
    length = 1000

    def __init__(self):
        self.sent = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, n=-1):
        if self.sent:
            raise ConnectionResetError(104, "Connection reset by peer")
        self.sent = True
        return b"\x1f\x8b partial"


URLS = {
    "cifar10": "www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "mnist": "ossci-datasets.s3.amazonaws.com/mnist/",
}
PLACES = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "mnist": "MNIST/raw"}


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "mnist"])
def test_download_without_network_is_one_clear_error_and_leaves_nothing(
    tmp_path, monkeypatch, name
):
    _no_network(monkeypatch)
    data = tmp_path / "data"
    with pytest.raises(InputError) as info:
        load_dataset(name, data_dir=data, download=True)
    msg = str(info.value)
    assert msg.startswith(f"could not download {name} ") and "\n" not in msg
    assert URLS[name] in msg and "Temporary failure" in msg
    assert f"into {data}:" in msg and f"under {data / PLACES[name]} yourself" in msg
    assert "network" in msg and f"datasets/{name}.md" in msg
    assert not data.exists()  # nothing left behind, not even the data directory it made


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_interrupted_download_removes_its_partial_files_and_keeps_the_users(
    tmp_path, monkeypatch, name
):
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: _DroppedResponse())
    data = tmp_path / "data"
    (data / "MNIST" / "raw").mkdir(parents=True)
    (data / "MNIST" / "raw" / "notes.txt").write_text("mine")
    (data / "cifar-10-batches-py").mkdir()
    (data / "cifar-10-batches-py" / "readme.html").write_text("mine")
    (data / "other.txt").write_text("mine")
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    with pytest.raises(InputError, match=f"could not download {name} .*Connection reset"):
        load_dataset(name, data_dir=data, download=True)
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before


def test_mnist_download_leaves_no_empty_raw_folder(tmp_path, monkeypatch):
    _no_network(monkeypatch)
    with pytest.raises(InputError, match="could not download mnist"):
        load_dataset("mnist", data_dir=tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_cleans_up_and_is_re_raised(tmp_path, monkeypatch):
    import urllib.request

    def urlopen(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("cifar100", data_dir=tmp_path / "data", download=True)
    assert not (tmp_path / "data").exists()


def test_download_of_a_dataset_already_there_needs_no_network(tmp_path, monkeypatch):
    _write_cifar(tmp_path, "cifar10", monkeypatch=monkeypatch)
    _no_network(monkeypatch)
    before = sorted(tmp_path.rglob("*"))
    assert len(load_dataset("cifar10", data_dir=tmp_path, download=True)) == 30
    assert sorted(tmp_path.rglob("*")) == before
