import numpy as np
import pytest

from lstmae.exceptions import DataError
from lstmae.data.windowing import n_windows
from lstmae.scoring import smooth_points, window_to_points


def _reference(values, n_rows, window, stride, how):
    """Row by row: which windows cover the row, which have ended by it."""
    values = np.asarray(values, dtype=float)
    out = np.full((n_rows,) + values.shape[1:], np.nan)
    valid = np.zeros(n_rows, dtype=bool)
    starts = [i * stride for i in range(len(values))]
    for row in range(n_rows):
        covering = [i for i, s in enumerate(starts) if s <= row < s + window]
        if not covering:
            continue
        if how == "end":
            ended = [i for i, s in enumerate(starts) if s + window - 1 <= row]
            if not ended:
                continue
            out[row] = values[max(ended)]
        elif how == "max":
            out[row] = values[covering].max(axis=0)
        else:
            out[row] = values[covering].mean(axis=0)
        valid[row] = True
    return out, valid


@pytest.mark.parametrize("how", ["end", "max", "mean"])
@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("n_rows, window", [(20, 5), (23, 4), (17, 1), (9, 9), (30, 7)])
@pytest.mark.parametrize("n_columns", [None, 2])
def test_matches_brute_force(how, stride, n_rows, window, n_columns):
    rng = np.random.default_rng(n_rows * window + stride)
    n_windows = (n_rows - window) // stride + 1
    values = rng.normal(size=(n_windows,) if n_columns is None else (n_windows, n_columns))
    points, valid = window_to_points(values, n_rows, window, stride, how)
    expected, expected_valid = _reference(values, n_rows, window, stride, how)
    assert points.shape == expected.shape and points.dtype == np.float64
    np.testing.assert_array_equal(valid, expected_valid)
    np.testing.assert_allclose(points, expected, rtol=1e-12)


@pytest.mark.parametrize("stride", [1, 3])
def test_one_extreme_window_leaves_the_other_rows_means_exact(stride):
    """A huge (finite) score, as an extreme input value gives, must not wipe out the rows after it
    (running sums would lose every later row's digits to it)."""
    rng = np.random.default_rng(7)
    values = rng.normal(size=n_windows(200, 10, stride))
    values[20] = 1e20
    points, valid = window_to_points(values, 200, 10, stride, "mean")
    expected, _ = _reference(values, 200, 10, stride, "mean")
    np.testing.assert_allclose(points, expected, rtol=1e-12)
    later = points[100:][valid[100:]]
    assert len(later) > 90 and np.abs(later).max() < 10


@pytest.mark.parametrize("how", ["end", "max", "mean"])
def test_stride_larger_than_window_leaves_gaps_invalid(how):
    values = np.array([1.0, 2.0, 3.0])
    points, valid = window_to_points(values, 13, window=2, stride=5, how=how)
    expected, expected_valid = _reference(values, 13, 2, 5, how)
    np.testing.assert_array_equal(valid, expected_valid)
    np.testing.assert_allclose(points, expected)
    assert not valid[2:5].any()  # rows 2..4 lie between windows [0, 1] and [5, 6]


def test_end_warm_up_rows_are_invalid_and_each_end_row_gets_its_window():
    values = np.arange(1.0, 7.0)  # windows of 5 rows over 10 rows
    points, valid = window_to_points(values, 10, window=5)
    assert not valid[:4].any() and np.isnan(points[:4]).all()
    np.testing.assert_array_equal(points[4:], values)
    assert valid[4:].all()


def test_end_with_stride_holds_the_value_until_the_next_window_ends_and_tail_is_invalid():
    # window 4, stride 3, 12 rows: windows end at rows 3, 6, 9; rows 10, 11 are covered by none
    points, valid = window_to_points([10.0, 20.0, 30.0], 12, window=4, stride=3)
    expected = [np.nan] * 3 + [10.0] * 3 + [20.0] * 3 + [30.0] + [np.nan] * 2
    np.testing.assert_array_equal(points, expected)
    np.testing.assert_array_equal(valid, ~np.isnan(expected))


def test_series_shorter_than_a_window_has_no_valid_rows():
    points, valid = window_to_points(np.zeros(0), 3, window=5, how="max")
    assert points.shape == (3,) and np.isnan(points).all() and not valid.any()


def test_n_windows():
    assert n_windows(10, 5) == 6
    assert n_windows(12, 4, 3) == 3
    assert n_windows(3, 5) == 0


def test_wrong_number_of_windows():
    with pytest.raises(DataError, match="expected 6 window values for 10 rows with window=5 and stride=1, got 7"):
        window_to_points(np.zeros(7), 10, 5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"how": "median"}, "unknown how='median'; use one of end, max, mean"),
        ({"window": 0}, "window must be an integer >= 1, got 0"),
        ({"stride": 1.5}, "stride must be an integer >= 1, got 1.5"),
        ({"n_rows": -1}, "n_rows must be an integer >= 0, got -1"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"window_values": np.zeros(6), "n_rows": 10, "window": 5, **kwargs}
    with pytest.raises(DataError, match=message):
        window_to_points(**arguments)


def test_bad_values():
    with pytest.raises(DataError, match=r"must be \(N,\) or \(N, K\); got shape \(6, 1, 1\)"):
        window_to_points(np.zeros((6, 1, 1)), 10, 5)
    values = np.zeros(6)
    values[4] = np.nan
    with pytest.raises(DataError, match=r"NaN/inf in 1 windows \(first: window 4\)"):
        window_to_points(values, 10, 5, how="mean")


def test_smooth_points_is_a_centred_mean_over_the_finite_rows():
    values = np.array([np.nan, 0.0, 3.0, 0.0, 0.0, np.nan])
    smoothed = smooth_points(values, 3)
    assert np.isnan(smoothed[[0, 5]]).all()
    np.testing.assert_allclose(smoothed[1:5], [1.5, 1.0, 1.0, 0.0])
    assert smooth_points(values, 1) is values
    # an overflowed row (inf) stays inf and is skipped, as a NaN row is: its neighbours average the rows beside it
    with_inf = np.array([0.0, 3.0, np.inf, 3.0, 0.0])
    np.testing.assert_array_equal(smooth_points(with_inf, 3), [1.5, 2.0, np.inf, 2.0, 1.5])
    assert not np.shares_memory(smooth_points(with_inf, 3), with_inf)
    with pytest.raises(DataError, match="width must be an integer >= 1, got 0"):
        smooth_points(values, 0)
