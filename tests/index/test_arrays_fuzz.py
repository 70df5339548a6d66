"""Fuzzing the arrays layout's reader (issue 16), as tests/index/test_index_fuzz.py does the
Parquet one: a damaged arrays index is refused with :class:`IndexFormatError` (one line) at open,
by ``verify()`` or by ``check_structure()``, or it loads and walks safely; ``graphwalk inspect``
answers 0 or 2. An O(1) open reads headers only, so what it lets through must be caught by the
structure check before compiled code walks it (a segfault here kills the test process, which
fails the run too).

Corruptions: random edits of ``manifest.json``; byte flips (header or data), truncations and
appends of the ``.npy`` files, with the manifest's size and checksum updated and without; and
out-of-range values written into the arrays with a valid checksum.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import graphwalk as gw
from graphwalk.cli import main
from graphwalk.errors import IndexFormatError
from tests.conftest import make_blobs
from tests.index.test_index_fuzz import (
    _BAD_FLOATS,
    _BAD_INTS,
    N,
    _copy,
    _update,
    _walks_safely,
    manifest_edit,
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = make_blobs(n=N, dim=4, centers=4)
    out = tmp_path_factory.mktemp("fuzz-arrays") / "base.gw"
    gw.build_index(
        x,
        labels=y,
        clusters=6,
        groups=["labels"],
        graphs=["er", "knn-clusters", "knn"],
        k=3,
        out=out,
        layout="arrays",
    )
    assert gw.GraphIndex.load(out).layout == "arrays"
    return out


def _arrays(base: Path) -> list[str]:
    return sorted(p.name for p in base.iterdir() if p.suffix == ".npy")


def _check(path: Path) -> None:
    """Opened and verified, or opened and structure-checked: walks, or one-line refusal."""
    for verify in (True, False):
        try:
            index = gw.GraphIndex.load(path, verify=verify)
            assert index.n_items == N
            if not verify:
                index.check_structure()  # what the O(1) open leaves to anything reading all
        except IndexFormatError as exc:
            assert str(exc) and "\n" not in str(exc)
            event(f"verify={verify}: refused")
            continue
        event(f"verify={verify}: loaded and walked")
        _walks_safely(index)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(["inspect", str(path)])
    assert rc in (0, 2), err.getvalue()
    assert rc == 0 or err.getvalue().count("\n") == 1, err.getvalue()


def test_the_base_index_walks(base: Path):
    index = gw.GraphIndex.load(base, verify=True)
    index.check_structure()
    _walks_safely(index)
    assert len(_arrays(base)) >= 15  # every array of the layout is fuzzed below


@given(data=st.data())
def test_corrupted_manifests_are_refused_or_walk(base: Path, data: st.DataObject):
    with _copy(base) as path:
        m = json.loads((path / "manifest.json").read_text())
        for _ in range(data.draw(st.integers(1, 3))):
            data.draw(manifest_edit(m))
        (path / "manifest.json").write_text(json.dumps(m))
        _check(path)


@given(
    data=st.data(),
    how=st.sampled_from(["flip", "flip-header", "truncate", "append"]),
    where=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=4),
    byte=st.integers(1, 255),
    update=st.sampled_from(["both", "size", "none"]),
)
def test_damaged_arrays_are_refused_or_walk(
    base: Path, data: st.DataObject, how: str, where: list[float], byte: int, update: str
):
    fname = data.draw(st.sampled_from(_arrays(base)))
    with _copy(base) as path:
        f = path / fname
        raw = bytearray(f.read_bytes())
        head = 128  # the .npy header (magic, version, dict) of these small files
        if how == "flip" and len(raw) > head:
            for w in where:
                raw[head + int(w * (len(raw) - head))] ^= byte
        elif how in ("flip", "flip-header"):
            for w in where:
                raw[int(w * head)] ^= byte
        elif how == "truncate":
            raw = raw[: int(where[0] * len(raw))]
        else:
            raw += bytes([byte]) * len(where)
        f.write_bytes(bytes(raw))
        if update != "none":
            _update(path, fname, checksum=update == "both")
        _check(path)


@given(
    data=st.data(),
    rows=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=3),
    value=st.integers(0, len(_BAD_INTS) + len(_BAD_FLOATS) - 1),
)
def test_out_of_range_values_with_valid_checksums_are_refused_or_safe(
    base: Path, data: st.DataObject, rows: list[float], value: int
):
    fname = data.draw(st.sampled_from(_arrays(base)))
    with _copy(base) as path:
        a = np.load(path / fname, mmap_mode="r+")
        flat = a.reshape(-1)
        if flat.size == 0:
            return
        pool = _BAD_FLOATS if np.issubdtype(a.dtype, np.floating) else _BAD_INTS
        with np.errstate(invalid="ignore", over="ignore"):
            for r in rows:
                flat[int(r * flat.size)] = pool[value % len(pool)]
        a.flush()
        del a, flat
        _update(path, fname)
        _check(path)
