import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphwalk.build.embeddings import read_labels, read_vectors
from graphwalk.errors import InputError


def test_npy_and_npz(tmp_path):
    x = np.arange(12, dtype=np.float16).reshape(4, 3)
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", embeddings=x, labels=np.arange(4))
    np.savez(tmp_path / "c.npz", x)
    for name in ("a.npy", "b.npz", "c.npz"):
        np.testing.assert_array_equal(read_vectors(tmp_path / name), x)
    np.testing.assert_array_equal(read_labels(tmp_path / "b.npz"), np.arange(4))


def test_npz_with_ambiguous_arrays(tmp_path):
    np.savez(tmp_path / "d.npz", p=np.zeros((2, 2)), q=np.zeros((2, 2)))
    with pytest.raises(InputError, match="several arrays"):
        read_vectors(tmp_path / "d.npz")


def test_parquet_fixed_size_list_and_float_columns(tmp_path):
    x = np.random.default_rng(0).normal(size=(5, 3))
    col = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 3)
    pq.write_table(pa.table({"vec": col}), tmp_path / "l.parquet")
    pq.write_table(pa.table({f"f{i}": x[:, i] for i in range(3)}), tmp_path / "c.parquet")
    pq.write_table(pa.table({"vec": pa.array(x.tolist())}), tmp_path / "v.parquet")
    for name in ("l.parquet", "c.parquet", "v.parquet"):
        np.testing.assert_allclose(read_vectors(tmp_path / name), x)


def test_parquet_bad_inputs(tmp_path):
    pq.write_table(pa.table({"a": [1.0, 2.0], "name": ["x", "y"]}), tmp_path / "s.parquet")
    with pytest.raises(InputError, match="non-numeric columns"):
        read_vectors(tmp_path / "s.parquet")
    pq.write_table(pa.table({"vec": pa.array([[1.0, 2.0], [1.0]])}), tmp_path / "r.parquet")
    with pytest.raises(InputError, match="different lengths"):
        read_vectors(tmp_path / "r.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="not a readable Parquet"):
        read_vectors(tmp_path / "junk.parquet")


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_vectors(tmp_path / "nope.npy")
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(InputError, match="unknown type"):
        read_vectors(tmp_path / "x.csv")
    (tmp_path / "t.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="could not be read"):
        read_vectors(tmp_path / "t.npy")


def _pandas_parquet(path, cols, index):
    """A Parquet file as ``DataFrame.to_parquet`` writes it after a shuffle: the index is a column
    named ``__index_level_0__`` listed in the file's pandas metadata (written here with pyarrow)."""
    import json

    table = pa.table({**cols, "__index_level_0__": pa.array(index, pa.int64())})
    meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [],
        "columns": [],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    table = table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()})
    pq.write_table(table, path)
    assert pq.read_schema(path).pandas_metadata["index_columns"] == ["__index_level_0__"]


def test_parquet_pandas_index_column_is_dropped_with_a_warning(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 3))
    perm = np.random.default_rng(1).permutation(6)
    _pandas_parquet(tmp_path / "v.parquet", {f"f{i}": x[:, i] for i in range(3)}, perm)
    with pytest.warns(UserWarning, match="__index_level_0__"):
        v = read_vectors(tmp_path / "v.parquet")
    np.testing.assert_allclose(v, x)
    _pandas_parquet(tmp_path / "y.parquet", {"label": np.arange(6) % 2}, perm)
    with pytest.warns(UserWarning, match="__index_level_0__"):
        np.testing.assert_array_equal(read_labels(tmp_path / "y.parquet"), np.arange(6) % 2)


def test_parquet_labels_with_several_columns_need_a_column(tmp_path):
    pq.write_table(pa.table({"a": [0, 1], "b": [1, 0]}), tmp_path / "y.parquet")
    with pytest.raises(InputError, match="several columns.*--label-column"):
        read_labels(tmp_path / "y.parquet")
    np.testing.assert_array_equal(read_labels(tmp_path / "y.parquet", column="b"), [1, 0])


def test_parquet_id_column_warns_and_can_be_named(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 3))
    cols = {"id": np.arange(100, 106), **{f"f{i}": x[:, i] for i in range(3)}}
    pq.write_table(pa.table(cols), tmp_path / "v.parquet")
    with pytest.warns(UserWarning, match="'id'.*--id-column"):
        assert read_vectors(tmp_path / "v.parquet").shape == (6, 4)
    np.testing.assert_allclose(read_vectors(tmp_path / "v.parquet", id_column="id"), x)
    np.testing.assert_allclose(
        read_vectors(tmp_path / "v.parquet", columns=["f2", "f0"]), x[:, [2, 0]]
    )
    with pytest.raises(InputError, match="no column 'nope'"):
        read_vectors(tmp_path / "v.parquet", columns=["f0", "nope"])
    with pytest.raises(InputError, match="no column 'nope'"):
        read_vectors(tmp_path / "v.parquet", id_column="nope")
    dup = {"id": [1, 1, 2, 3, 4, 5], **{f"f{i}": x[:, i] for i in range(3)}}
    pq.write_table(pa.table(dup), tmp_path / "d.parquet")
    with pytest.raises(InputError, match="not unique"):
        read_vectors(tmp_path / "d.parquet", id_column="id")
    with pytest.raises(InputError, match="integer"):
        read_vectors(tmp_path / "v.parquet", id_column="f0")
    with pytest.raises(InputError, match="Parquet"):
        np.save(tmp_path / "x.npy", x)
        read_vectors(tmp_path / "x.npy", columns=["f0"])
