import numpy as np
import pandas as pd
import pytest

from lstmae import temporalize
from lstmae.data.scaling import FeatureScaler
from lstmae.exceptions import DataError


def test_windows_are_views_with_the_right_rows():
    series = np.arange(20, dtype=np.float32).reshape(10, 2)
    X, y = temporalize(series, window=3, stride=2)
    assert y is None
    assert X.shape == (4, 3, 2)
    assert np.shares_memory(X, series)  # no copy
    for i in range(4):
        np.testing.assert_array_equal(X[i], series[2 * i : 2 * i + 3])


def test_univariate_and_dataframe_input():
    X, _ = temporalize(np.arange(5.0), window=2)
    assert X.shape == (4, 2, 1)
    frame = pd.DataFrame({"a": np.arange(6.0), "b": -np.arange(6.0)})
    X, _ = temporalize(frame, window=4)
    np.testing.assert_array_equal(X[-1, :, 1], [-2, -3, -4, -5])


def test_labels_belong_to_the_last_row_of_each_window():
    labels = np.array([0, 0, 0, 1, 0, 0, 0, 0])
    _, y = temporalize(np.zeros((8, 1)), window=3, labels=labels)
    # windows end at rows 2..7; only the one ending at row 3 contains the event at its end
    np.testing.assert_array_equal(y, [0, 1, 0, 0, 0, 0])


def test_negative_label_shift_warns_ahead_of_the_event():
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 0, 0, 0])
    _, y = temporalize(np.zeros((10, 1)), window=2, labels=labels, label_shift=-2)
    ends = np.arange(1, 10)
    expected = [int(labels[e : e + 3].max()) for e in ends]  # the event now or within 2 rows
    np.testing.assert_array_equal(y, expected)
    assert y[2] == 1 and y[1] == 0  # the window ending at row 3 warns 2 rows before row 5


@pytest.mark.parametrize("kwargs, match", [
    (dict(window=0), "window must be an integer >= 1, got 0"),
    (dict(window=11), "10 rows, shorter than the window 11"),
    (dict(window=2, stride=0), "stride must be an integer >= 1"),
    (dict(window=2, labels=np.zeros(9)), r"labels must have shape \(10,\) like the series' rows"),
    (dict(window=2, label_shift=1), "label_shift must be an integer from -10 .* to 0"),
    # each passed through: 300 wrapped round to 44 in int8, 0.5 became 0, NaN warned and became 0, "a" a raw error
    (dict(window=2, labels=np.full(10, 300)), "labels must be 0 .* or 1 .*; got 300 at position 0"),
    (dict(window=2, labels=np.full(10, 0.5)), "got 0.5 at position 0"),
    (dict(window=2, labels=np.full(10, np.nan)), "got nan at position 0"),
    (dict(window=2, labels=np.array(["a"] * 10)), "got 'a' at position 0"),
    (dict(window=2, labels=np.zeros(10), label_shift=-1.5), "label_shift must be an integer .*, got -1.5"),
    (dict(window=2, labels=np.zeros(10), label_shift="a"), "label_shift must be an integer .*, got 'a'"),
    (dict(window=2, labels=np.zeros(10), label_shift=-10**12), "label_shift must be an integer from -10"),
])
def test_bad_windowing_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        temporalize(np.zeros((10, 2)), **kwargs)


def test_ragged_rows_are_one_line():
    with pytest.raises(DataError, match="series must be 2-D .*T rows of F features each"):
        temporalize([[1.0, 2.0], [3.0]], window=1)


def test_scaler_statistics_match_numpy_on_a_strided_view():
    rng = np.random.default_rng(0)
    series = rng.normal(3.0, 2.0, size=(500, 3))
    X, _ = temporalize(series, window=7, stride=3)
    scaler = FeatureScaler.fit(X, "standard", chunk=16)
    flat = np.asarray(X).reshape(-1, 3)
    np.testing.assert_allclose(scaler.offset, flat.mean(axis=0))
    np.testing.assert_allclose(scaler.scale, flat.std(axis=0))
    minmax = FeatureScaler.fit(X, "minmax")
    assert np.allclose(minmax.transform(X).min(axis=(0, 1)), 0) and np.allclose(minmax.transform(X).max(axis=(0, 1)), 1)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X)), X, rtol=1e-5, atol=1e-5)


def test_constant_feature_is_not_divided_by_zero():
    X = np.ones((4, 3, 2))
    X[:, :, 1] = np.arange(12).reshape(4, 3)
    scaler = FeatureScaler.fit(X)
    assert scaler.scale[0] == 1.0
    assert np.isfinite(scaler.transform(X)).all()


def test_a_frame_with_dates_or_text_is_refused_naming_the_column_and_mixed_numbers_are_read():
    # they became windows of objects, and fit failed later with a TypeError that named no column
    numbers = np.arange(20.0)
    for column, name in ((pd.date_range("2024-01-01", periods=20, freq="h"), "'t' holds datetime64"),
                         (["x"] * 20, "'t' holds (object|str)")):
        with pytest.raises(DataError, match=f"series must hold numbers: column {name}"):
            temporalize(pd.DataFrame({"a": numbers, "t": column}), 5)
    with pytest.raises(DataError, match="series must hold numbers, got <U1"):
        temporalize(np.array([["a", "b"]] * 20), 5)
    X, _ = temporalize(pd.DataFrame({"a": np.arange(20), "on": np.arange(20) % 2 == 0}), 5)  # int and bool
    assert X.dtype == np.float64 and X[0, :, 1].tolist() == [1, 0, 1, 0, 1]
    mixed = pd.DataFrame({"a": np.arange(20.0), "on": np.arange(20) % 2 == 0}).to_numpy()  # objects, all numbers
    assert mixed.dtype == object and temporalize(mixed, 5)[0].dtype == np.float64
    with pytest.raises(DataError, match="series must hold numbers, got object values that are not"):
        temporalize(np.array([[1.0, "x"]] * 20, dtype=object), 5)
    X, _ = temporalize(pd.DataFrame({"a": pd.array([1, None] + [2] * 18, dtype="Int64")}), 5)  # pandas' NA: NaN
    assert np.isnan(X[0, 1, 0]) and X.dtype == np.float64
