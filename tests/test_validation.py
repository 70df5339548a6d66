import numpy as np
import pytest

from graphwalk.errors import InputError
from graphwalk.validation import as_labels, as_vectors, check_positive_int


def test_converts_any_float_dtype_to_contiguous_float32():
    for dt in (np.float16, np.float64, np.int32):
        out = as_vectors(np.ones((4, 3), dtype=dt)[:, ::1])
        assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape == (4, 3)


def test_nan_and_inf_name_count_and_first_row():
    x = np.zeros((10, 3))
    x[4, 1] = np.nan
    x[7, 0] = np.inf
    with pytest.raises(InputError, match=r"2 of 10 rows \(first: row 4\)"):
        as_vectors(x)


def test_float64_overflowing_float32_is_reported():
    x = np.ones((3, 2))
    x[2, 0] = 1e300
    with pytest.raises(InputError, match="too large for float32.*row 2"):
        as_vectors(x)


def test_zero_vectors_rejected_only_for_cosine():
    x = np.ones((5, 3))
    x[3] = 0
    as_vectors(x, metric="l2")
    with pytest.raises(InputError, match="1 all-zero vectors.*row 3.*cosine"):
        as_vectors(x, metric="cosine")


@pytest.mark.parametrize("shape", [(0, 4), (5, 0), (0,)])
def test_empty_input(shape):
    with pytest.raises(InputError, match="empty|2-D"):
        as_vectors(np.zeros(shape))


def test_one_dimensional_input_suggests_reshape():
    with pytest.raises(InputError, match=r"shape \(5,\).*reshape"):
        as_vectors(np.zeros(5))


def test_non_numeric_rejected():
    with pytest.raises(InputError, match="numeric"):
        as_vectors(np.array([["a", "b"]]))


def test_labels_wrong_length_and_non_integer():
    with pytest.raises(InputError, match="3 entries but there are 4 items"):
        as_labels([0, 1, 2], 4)
    with pytest.raises(InputError, match="integers"):
        as_labels([0.5, 1, 2, 3], 4)
    assert as_labels(np.array([[1], [2]]), 2).tolist() == [1, 2]


def test_check_positive_int():
    assert check_positive_int("batch_size", 3) == 3
    with pytest.raises(ValueError, match="batch_size=0"):
        check_positive_int("batch_size", 0)
    with pytest.raises(TypeError, match="batch_size=2.5"):
        check_positive_int("batch_size", 2.5)


def test_check_int_and_check_real_name_the_type_and_the_range():
    from graphwalk.validation import check_int, check_real

    assert check_int("k", np.int64(4), minimum=1) == 4
    with pytest.raises(TypeError, match="k should be an integer"):
        check_int("k", 10.0, minimum=1)
    with pytest.raises(TypeError, match="k should be an integer"):
        check_int("k", True, minimum=1)
    with pytest.raises(InputError, match="k should be an integer >= 1, but got k=0"):
        check_int("k", 0, minimum=1)
    with pytest.raises(InputError, match="seed should be an integer in \\[0, 5\\]"):
        check_int("seed", 6, minimum=0, maximum=5)
    assert check_real("p", np.float32(0.5), low=0.0, high=1.0, low_open=True) == 0.5
    with pytest.raises(InputError, match="p should be a number in \\(0, 1\\]"):
        check_real("p", 1.5, low=0.0, high=1.0, low_open=True)
    with pytest.raises(InputError, match="finite"):
        check_real("degree", float("nan"), low=0.0, low_open=True)
    with pytest.raises(TypeError, match="degree should be a number"):
        check_real("degree", "3", low=0.0, low_open=True)


def test_check_bool_refuses_what_bool_would_take():
    from graphwalk.errors import InputTypeError
    from graphwalk.validation import check_bool

    assert check_bool("weighted", True) is True and check_bool("weighted", np.bool_(False)) is False
    for bad in ("no", "yes", 1, 0, None, 1.0):
        with pytest.raises(InputTypeError, match=r"weighted should be True or False, but got"):
            check_bool("weighted", bad)


def test_the_sampler_refuses_a_flag_that_is_not_a_bool():
    import graphwalk as gw
    from graphwalk.errors import InputTypeError

    x = np.random.default_rng(0).normal(size=(200, 4))
    index = gw.build_index(x, clusters=10, graphs=["er"], seed=0)
    for flag in ("weighted", "replacement", "drop_last"):
        with pytest.raises(InputTypeError, match=f"{flag} should be True or False"):
            gw.GraphWalkBatchSampler(index, 16, graph="er", **{flag: "no"})
