"""Fuzzing the index reader (issue 7): a corrupted index either loads and walks safely, or is
refused with :class:`IndexFormatError`; ``graphwalk inspect`` answers 0 or 2. Never another
exception, never a crash (a segfault here kills the test process, which fails the run too).

Corruptions: random edits of ``manifest.json`` at random depths (deleted keys, random JSON values
including NaN and fractions, neighbours of the stored numbers), byte flips, truncations and
appends in the tables (with the manifest's size and checksum updated, so the content checks must
catch them, and without), and out-of-range values written into table columns with a valid
checksum. A loaded index must walk: every item exactly once per epoch on every graph.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import graphwalk as gw
from graphwalk.cli import main
from graphwalk.errors import IndexFormatError
from tests.conftest import make_blobs

N = 120
TABLES = [
    "items.parquet",
    "level-000.parquet",
    "level-001.parquet",
    "graph-000.parquet",
    "graph-001.parquet",
    "graph-002.parquet",
    "graph-002-walk.parquet",
]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = make_blobs(n=N, dim=4, centers=4)
    out = tmp_path_factory.mktemp("fuzz") / "base.gw"
    gw.build_index(
        x,
        labels=y,
        clusters=6,
        groups=["labels"],
        graphs=["er", "knn-clusters", "knn"],
        k=3,
        out=out,
    )
    assert sorted(p.name for p in out.iterdir()) == sorted([*TABLES, "manifest.json"])
    return out


@contextlib.contextmanager
def _copy(base: Path):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.gw"
        shutil.copytree(base, path)
        yield path


def _walks_safely(index: gw.GraphIndex) -> None:
    for name in index.graphs:
        sampler = gw.GraphWalkBatchSampler(index, 8, graph=name, seed=1)
        items = np.concatenate([np.asarray(b, np.int64) for b in sampler])
        assert len(items) == index.n_items == N
        np.testing.assert_array_equal(np.sort(items), np.arange(N))


def _check(path: Path) -> None:
    """Load (with and without checksums) and walk, or IndexFormatError; inspect gives 0 or 2."""
    for verify in (True, False):
        try:
            index = gw.GraphIndex.load(path, verify=verify)
        except IndexFormatError as exc:
            assert str(exc) and "\n" not in str(exc)
            event(f"verify={verify}: refused")
            continue
        event(f"verify={verify}: loaded and walked")
        assert index.n_items == N
        _walks_safely(index)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(["inspect", str(path)])
    assert rc in (0, 2), err.getvalue()
    assert rc == 0 or err.getvalue().count("\n") == 1, err.getvalue()


def _update(path: Path, fname: str, *, size: bool = True, checksum: bool = True) -> None:
    m = json.loads((path / "manifest.json").read_text())
    f = path / fname
    if size:
        m["tables"][fname]["bytes"] = f.stat().st_size
    if checksum:
        m["tables"][fname]["sha256"] = hashlib.sha256(f.read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(m))


# ---------------------------------------------------------------------------- manifest edits

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 10**6)
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(
        [
            "NaN",
            "nan",
            "-1",
            "1e3",
            "input",
            "kmeans",
            "labels",
            "cluster",
            "item",
            "er",
            "knn",
            "graph-000.parquet",
            "graph-002-walk.parquet",
            "walk.knn",
            "label.label",
            "../x",
            "/",
        ]
    )
)
_json = st.recursive(
    _scalars,
    lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=6), ch, max_size=3),
    max_leaves=6,
)


def _near(value: Any) -> st.SearchStrategy[Any]:
    """Values close to a stored one: off by one, fractional, the same as a string or a bool."""
    if isinstance(value, bool):
        return st.sampled_from([not value, int(value), str(value).lower()])
    if isinstance(value, int):
        return st.sampled_from(
            [value + 1, value - 1, 0, -value, value + 0.5, float(value), str(value), value * 2]
        )
    if isinstance(value, float):
        return st.sampled_from([-value, 0.0, float("nan"), float("inf"), value * 1e6])
    return _json


@st.composite
def manifest_edit(draw: st.DrawFn, manifest: dict[str, Any]) -> None:
    """Edit ``manifest`` in place at a random depth: delete, replace, or nudge a value."""
    node: Any = manifest
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and draw(st.integers(0, 3)):
            node = child
            continue
        action = draw(st.sampled_from(["delete", "replace", "near"]))
        if action == "delete":
            del node[key]
        elif action == "replace":
            node[key] = draw(_json)
        else:
            node[key] = draw(_near(child))
        return
    if isinstance(node, dict):
        node[draw(st.text(max_size=6))] = draw(_json)
    else:
        node.append(draw(_json))


@given(data=st.data())
def test_corrupted_manifests_load_and_walk_or_are_refused(base: Path, data: st.DataObject):
    with _copy(base) as path:
        m = json.loads((path / "manifest.json").read_text())
        for _ in range(data.draw(st.integers(1, 3))):
            data.draw(manifest_edit(m))
        (path / "manifest.json").write_text(json.dumps(m))
        _check(path)


# ---------------------------------------------------------------------------- table damage


@given(
    fname=st.sampled_from(TABLES),
    how=st.sampled_from(["flip", "truncate", "append"]),
    where=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=4),
    byte=st.integers(1, 255),
    update=st.sampled_from(["both", "size", "none"]),
)
def test_damaged_tables_load_and_walk_or_are_refused(
    base: Path, fname: str, how: str, where: list[float], byte: int, update: str
):
    with _copy(base) as path:
        f = path / fname
        data = bytearray(f.read_bytes())
        if how == "flip":
            for w in where:
                data[int(w * len(data))] ^= byte
        elif how == "truncate":
            data = data[: int(where[0] * len(data))]
        else:
            data += bytes([byte]) * len(where)
        f.write_bytes(bytes(data))
        if update != "none":
            _update(path, fname, checksum=update == "both")
        _check(path)


_BAD_INTS = [-1, 0, 1, N - 1, N, N + 1, 5, 6, 7, 2**31 - 1, -(2**31)]
_BAD_FLOATS = [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e-45, 3.4e38, 2.5]


@given(
    fname=st.sampled_from(TABLES),
    column=st.integers(0, 10),
    rows=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=3),
    value=st.integers(0, len(_BAD_INTS) + len(_BAD_FLOATS) - 1),
)
def test_out_of_range_values_with_valid_checksums_are_refused_or_safe(
    base: Path, fname: str, column: int, rows: list[float], value: int
):
    with _copy(base) as path:
        f = path / fname
        t = pq.read_table(f)
        i = column % t.num_columns
        col = t.column(i)
        if pa.types.is_fixed_size_list(col.type):
            d = col.type.list_size
            vals = col.combine_chunks().flatten().to_numpy(zero_copy_only=False).copy()
            for r in rows:
                vals[int(r * len(vals))] = _BAD_FLOATS[value % len(_BAD_FLOATS)]
            new = pa.FixedSizeListArray.from_arrays(pa.array(vals, col.type.value_type), d)
        else:
            vals = col.to_numpy().copy()
            pool = _BAD_FLOATS if np.issubdtype(vals.dtype, np.floating) else _BAD_INTS
            for r in rows:
                with np.errstate(invalid="ignore", over="ignore"):
                    vals[int(r * len(vals))] = pool[value % len(pool)]
            new = pa.array(vals, col.type)
        pq.write_table(t.set_column(i, t.schema.field(i).name, new), f)
        _update(path, fname)
        _check(path)


# ------------------------------------------------------- free-form parts: build parameters


@given(
    where=st.sampled_from(
        [("build",), ("levels", 0, "params"), ("graphs", 0, "params"), ("graphs", 2, "params")]
    ),
    key=st.sampled_from(["recall", "method", "k", "seed", "timings_s", "x"]),
    value=_json,
    delete=st.booleans(),
)
def test_any_build_parameters_load_and_inspect(
    base: Path, where: tuple[Any, ...], key: str, value: Any, delete: bool
):
    # params and build are stored as given, never interpreted: any JSON there loads and inspects
    with _copy(base) as path:
        m = json.loads((path / "manifest.json").read_text())
        node = m
        for k in where:
            node = node[k]
        if delete:
            node.pop(key, None)
        else:
            node[key] = value
        (path / "manifest.json").write_text(json.dumps(m))
        _walks_safely(gw.GraphIndex.load(path))
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["inspect", str(path)]) == 0
            assert main(["inspect", "--json", str(path)]) == 0
