"""The checkpoint holds data only (graphwalk.train.checkpoint): it round-trips the run's NumPy
state exactly, loads with torch's weights_only reader, and refuses anything that could run code."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import torch

from graphwalk.errors import InputError
from graphwalk.train.checkpoint import (
    FORMAT,
    from_plain,
    load_checkpoint,
    save_checkpoint,
    to_plain,
)


def _state():
    gen = np.random.Generator(np.random.PCG64(7))
    return {
        "epoch": 3,
        "model": {"w": torch.arange(6.0).reshape(2, 3)},
        "sampler": {
            "walk": {"choices": [1, -1, 4], "inbox": [[0, 3, 0.5]]},
            "policy": {
                "weights": np.linspace(-1, 1, 5),
                "visits": np.arange(5, dtype=np.int64),
                "mask": np.array([True, False]),
                "small": np.array([1, 2], np.uint16),
                "count": np.int64(9),
                "p": np.float32(0.25),
                "rng": gen.bit_generator.state,  # 128-bit integers
                "pending": [[0, 1, {"arm": 2, "p": 0.5}]],
            },
        },
        "rng": {"numpy": np.random.RandomState(3).get_state(), "python": (3, (1, 2), None)},
    }


def _same(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, np.generic):
        return type(a) is type(b) and a == b
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def test_the_state_round_trips_exactly_through_a_data_only_file(tmp_path):
    state = _state()
    assert _same(from_plain(to_plain(state)), state)
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert _same(back, state)
    rs = np.random.RandomState()
    rs.set_state(back["rng"]["numpy"])  # usable as NumPy's own state again
    assert rs.randint(1 << 30) == np.random.RandomState(3).randint(1 << 30)


def test_object_arrays_are_not_written():
    with pytest.raises(TypeError, match="numeric arrays only"):
        to_plain({"x": np.array([object()])})


class _Evil:
    def __reduce__(self):
        return (print, ("this would run",))


def _envelope(path, payload, version=3):
    torch.save(
        {
            "format": FORMAT,
            "version": version,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "payload": payload,
        },
        path,
    )


def test_a_checkpoint_carrying_code_is_refused_unread(tmp_path, capsys):
    buf = io.BytesIO()
    torch.save({"epoch": 1, "sampler": _Evil()}, buf)
    _envelope(tmp_path / "evil.pt", buf.getvalue())
    with pytest.raises(InputError, match="something other than tensors and plain data"):
        load_checkpoint(tmp_path / "evil.pt")
    assert "this would run" not in capsys.readouterr().out
    torch.save({"format": FORMAT, "evil": _Evil()}, tmp_path / "outer.pt")
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "outer.pt")


def test_an_older_pickled_checkpoint_is_refused_with_the_reason(tmp_path):
    buf = io.BytesIO()
    torch.save({"epoch": 1}, buf)
    _envelope(tmp_path / "v2.pt", buf.getvalue(), version=2)
    with pytest.raises(InputError, match="version 2 held pickled objects"):
        load_checkpoint(tmp_path / "v2.pt")
