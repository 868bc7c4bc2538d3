"""Reading and writing data files, and the checks in lstmae.data.validation."""

import gzip
import os

import numpy as np
import pandas as pd
import pytest

from lstmae.data.io import (
    check_output_path,
    read_sequences,
    read_series,
    read_table,
    table_columns,
    write_table,
)
from lstmae.data.validation import check_features, check_finite, check_stride, check_window
from lstmae.exceptions import DataError


def write_text(path, text):
    path.write_text(text)
    return path


SENSORS_CSV = (
    "timestamp,temp,flow,status,label,machine\n"
    "2026-01-01 00:00,1.0,10,ok,0,a\n"
    "2026-01-01 00:01,2.0,20,ok,1,a\n"
    "2026-01-01 00:02,3.0,30,ok,0,b\n"
)


# --- read_table ---------------------------------------------------------------------------


def test_read_table_csv_gzip_and_parquet_agree(tmp_path):
    frame = pd.DataFrame({"a": [1.5, 2.5], "b": [3, 4]})
    frame.to_csv(tmp_path / "x.csv", index=False)
    frame.to_csv(tmp_path / "x.csv.gz", index=False)
    frame.to_parquet(tmp_path / "x.pq", index=False)
    for name in ("x.csv", "x.csv.gz", "x.pq"):
        pd.testing.assert_frame_equal(read_table(tmp_path / name), frame)


def test_read_table_parquet_named_index_becomes_a_column(tmp_path):
    frame = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.Index([10, 20], name="t"))
    frame.to_parquet(tmp_path / "x.parquet")
    assert read_table(tmp_path / "x.parquet").columns.tolist() == ["t", "v"]


def test_read_table_headerless_whitespace_text(tmp_path):
    path = write_text(tmp_path / "x.txt", "  0.0\t 1.5  -2\n  0.1\t 2.5  -3\n")
    table = read_table(path)
    assert table.columns.tolist() == ["f0", "f1", "f2"]
    np.testing.assert_array_equal(table.to_numpy(), [[0.0, 1.5, -2.0], [0.1, 2.5, -3.0]])


def test_read_table_text_with_comma_header(tmp_path):
    path = write_text(tmp_path / "x.txt", "a,b\n1,2\n")
    assert read_table(path).columns.tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.csv", "", "is empty"),
        ("header.csv", "a,b\n", "no data rows"),
        ("binary.csv", b"PK\x03\x04\x00\x00garbage", "binary file"),
        ("prose.csv", "Dear reader\nthis is a letter\nnot data\n", "one column of text"),
        ("ragged.csv", "a,b\n1,2\n1,2,3,4\n", "not a readable table"),
        ("broken.csv.gz", b"not gzip at all", "cannot be read"),
        ("bad.parquet", b"not parquet", "not a readable Parquet file"),
        ("data.json", "{}", r"unknown file type \('.json'\); use .csv, .parquet, .npy or .npz"),
        ("data", "a\n1\n", "unknown file type \\(no extension\\)"),
    ],
)
def test_read_table_rejects_bad_files(tmp_path, name, content, match):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(DataError, match=match):
        read_table(path)


def test_read_table_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="nope.csv: file not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        read_table(tmp_path / "dir.csv")


def test_read_table_refuses_numpy_files(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    with pytest.raises(DataError, match="a NumPy file is not a table"):
        read_table(tmp_path / "x.npy")


def test_table_columns(tmp_path):
    assert table_columns(write_text(tmp_path / "s.csv", SENSORS_CSV))[:3] == ["timestamp", "temp", "flow"]
    assert table_columns(write_text(tmp_path / "s.txt", "1 2\n3 4\n")) == ["f0", "f1"]
    pd.DataFrame({"a": [1.0]}).to_parquet(tmp_path / "s.parquet")
    assert table_columns(tmp_path / "s.parquet") == ["a"]
    np.save(tmp_path / "s.npy", np.zeros((2, 2)))
    assert table_columns(tmp_path / "s.npy") is None
    with pytest.raises(DataError, match="file not found"):
        table_columns(tmp_path / "missing.csv")


# --- read_series --------------------------------------------------------------------------


def test_read_series_default_columns_time_labels_entities(tmp_path):
    path = write_text(tmp_path / "s.csv", SENSORS_CSV)
    series = read_series(path, time_column="timestamp", label_column="label", entity_column="machine")
    assert series.feature_names == ["temp", "flow"]  # 'status' is text, so not a feature
    assert series.values.dtype == np.float32
    np.testing.assert_array_equal(series.values, [[1, 10], [2, 20], [3, 30]])
    assert isinstance(series.index, pd.DatetimeIndex)
    assert series.index[1] == pd.Timestamp("2026-01-01 00:01")
    assert series.labels.dtype == np.int8
    np.testing.assert_array_equal(series.labels, [0, 1, 0])
    np.testing.assert_array_equal(series.entities, ["a", "a", "b"])
    assert series.source == str(path)


def test_read_series_without_roles_has_range_index_and_refuses_the_label_column(tmp_path):
    path = write_text(tmp_path / "s.csv", SENSORS_CSV)
    with pytest.raises(DataError, match="column 'label' looks like labels"):
        read_series(path)
    series = read_series(path, columns=["temp", "flow", "label"])  # named: taken as asked
    assert series.feature_names == ["temp", "flow", "label"]
    assert series.index.equals(pd.RangeIndex(3))
    assert series.labels is None and series.entities is None


def test_read_series_numeric_and_text_time_columns_keep_their_values(tmp_path):
    path = write_text(tmp_path / "s.csv", "t,step,v\n0.5,a,1\n1.5,b,2\n")
    assert read_series(path, time_column="t").index.tolist() == [0.5, 1.5]
    assert read_series(path, time_column="step").index.tolist() == ["a", "b"]


def test_read_series_columns_by_name_order_and_glob(tmp_path):
    path = write_text(tmp_path / "s.csv", "s_b,s_a,other\n1,2,3\n")
    assert read_series(path, columns=["s_a", "other"]).feature_names == ["s_a", "other"]
    assert read_series(path, columns=["s_*"]).feature_names == ["s_b", "s_a"]
    with pytest.raises(DataError, match="no column matches 'x_\\*'; the columns are 's_b', 's_a', 'other'"):
        read_series(path, columns=["x_*"])


def test_read_series_missing_named_columns_lists_available(tmp_path):
    path = write_text(tmp_path / "s.csv", SENSORS_CSV)
    with pytest.raises(DataError, match="no column 'pressure'; the columns are 'timestamp', 'temp'"):
        read_series(path, columns=["temp", "pressure"])
    with pytest.raises(DataError, match="no column 'y'"):
        read_series(path, label_column="y")


def test_read_series_role_column_in_columns_is_an_error(tmp_path):
    path = write_text(tmp_path / "s.csv", SENSORS_CSV)
    with pytest.raises(DataError, match="column 'label' is the label column; leave it out of --columns"):
        read_series(path, columns=["temp", "label"], label_column="label")


def test_read_series_text_cell_in_named_column(tmp_path):
    path = write_text(tmp_path / "s.csv", SENSORS_CSV)
    with pytest.raises(
        DataError,
        match=r"s.csv: column 'status' row 1 has text 'ok' where a number is expected; "
        r"fix the cell \(a column that is not a feature can be left out of fit with --columns\)",
    ):
        read_series(path, columns=["temp", "status"])


def test_read_series_mostly_numeric_column_with_text_cell(tmp_path):
    path = write_text(tmp_path / "s.csv", "temp,flow\n1,1\n2,2\nabc,3\n4,4\n")
    with pytest.raises(DataError, match="column 'temp' row 3 has text 'abc'"):
        read_series(path)


def test_read_series_dates_named_as_feature(tmp_path):
    frame = pd.DataFrame({"when": pd.date_range("2026-01-01", periods=2), "v": [1.0, 2.0]})
    frame.to_parquet(tmp_path / "s.parquet", index=False)
    with pytest.raises(DataError, match="column 'when' holds datetime64.* values where numbers"):
        read_series(tmp_path / "s.parquet", columns=["when"])


def test_read_series_no_feature_column(tmp_path):
    path = write_text(tmp_path / "s.csv", "name,kind\na,x\nb,y\n")
    with pytest.raises(DataError, match="no numeric feature column among 'name', 'kind'"):
        read_series(path)


@pytest.mark.parametrize(("cell", "shown"), [("2", "2"), ("yes", "'yes'"), ("", "an empty cell")])
def test_read_series_label_must_be_zero_or_one(tmp_path, cell, shown):
    path = write_text(tmp_path / "s.csv", f"v,y\n1,0\n2,1\n3,{cell}\n")
    with pytest.raises(DataError, match=f"label column 'y' row 3 has {shown}; labels must be 0"):
        read_series(path, label_column="y")


def test_read_series_boolean_labels(tmp_path):
    path = write_text(tmp_path / "s.csv", "v,y\n1,True\n2,False\n")
    np.testing.assert_array_equal(read_series(path, label_column="y").labels, [1, 0])


def test_read_series_empty_time_or_entity_cell(tmp_path):
    path = write_text(tmp_path / "s.csv", "t,e,v\n1,a,1\n,,2\n")
    with pytest.raises(DataError, match="time column 't' row 2 is empty"):
        read_series(path, time_column="t")
    with pytest.raises(DataError, match="entity column 'e' row 2 is empty"):
        read_series(path, entity_column="e")


NAN_CSV = "v,w,y\n,10,0\n2,,1\n,30,0\n4,40,1\n,50,0\n"


def test_read_series_nan_error_names_column_count_and_first_row(tmp_path):
    path = write_text(tmp_path / "s.csv", NAN_CSV)
    with pytest.raises(
        DataError,
        match=r"s.csv: column 'v' has 3 missing values \(first at row 1\); "
        r"fill them or pass --nan-policy ffill\|interpolate\|drop",
    ):
        read_series(path, label_column="y")


def test_read_series_nan_policies(tmp_path):
    path = write_text(tmp_path / "s.csv", NAN_CSV)
    filled = read_series(path, label_column="y", nan_policy="ffill").values
    np.testing.assert_array_equal(filled, [[2, 10], [2, 10], [2, 30], [4, 40], [4, 50]])
    interpolated = read_series(path, label_column="y", nan_policy="interpolate").values
    np.testing.assert_array_equal(interpolated, [[2, 10], [2, 20], [3, 30], [4, 40], [4, 50]])
    dropped = read_series(path, label_column="y", nan_policy="drop")
    np.testing.assert_array_equal(dropped.values, [[4, 40]])
    np.testing.assert_array_equal(dropped.labels, [1])
    assert dropped.index.tolist() == [3]


def test_read_series_drop_that_leaves_nothing(tmp_path):
    path = write_text(tmp_path / "s.csv", "v,w\n,1\n2,\n")
    with pytest.raises(DataError, match="every row has a missing value"):
        read_series(path, nan_policy="drop")


def test_read_series_all_empty_column(tmp_path):
    path = write_text(tmp_path / "s.csv", "v,w\n1,\n2,\n")
    with pytest.raises(DataError, match="column 'w' has no values at all; give it values, or leave it out of fit with --columns"):
        read_series(path, nan_policy="interpolate")


@pytest.mark.parametrize("policy", ["error", "ffill", "drop"])
def test_read_series_inf_is_always_an_error_at_its_row(tmp_path, policy):
    path = write_text(tmp_path / "s.csv", "v,w\n,1\n2,2\n3,inf\n")
    with pytest.raises(DataError, match="column 'w' row 3 has value inf where a finite float32"):
        read_series(path, nan_policy=policy)


def test_read_series_value_too_large_for_float32(tmp_path):
    path = write_text(tmp_path / "s.csv", "v\n1\n1e39\n")
    with pytest.raises(DataError, match="column 'v' row 2 has value 1e\\+39 where a finite float32"):
        read_series(path)


def test_read_series_unknown_nan_policy(tmp_path):
    path = write_text(tmp_path / "s.csv", "v\n1\n")
    with pytest.raises(DataError, match="nan_policy must be one of error, ffill, interpolate, drop; got 'zero'"):
        read_series(path, nan_policy="zero")


def test_read_series_from_numpy_files(tmp_path):
    values = np.arange(12, dtype=np.float64).reshape(6, 2)
    np.save(tmp_path / "s.npy", values)
    series = read_series(tmp_path / "s.npy")
    assert series.feature_names == ["f0", "f1"]
    np.testing.assert_array_equal(series.values, values)

    np.save(tmp_path / "one.npy", values[:, 0])
    assert read_series(tmp_path / "one.npy").values.shape == (6, 1)

    np.savez(tmp_path / "s.npz", X=values, y=np.array([0, 0, 1, 1, 0, 0]))
    series = read_series(tmp_path / "s.npz", columns=["f1"])
    np.testing.assert_array_equal(series.values[:, 0], values[:, 1])
    np.testing.assert_array_equal(series.labels, [0, 0, 1, 1, 0, 0])


def test_read_series_numpy_nan_uses_the_same_policies(tmp_path):
    np.save(tmp_path / "s.npy", np.array([[1.0], [np.nan], [3.0]]))
    with pytest.raises(DataError, match="column 'f0' has 1 missing value \\(first at row 2\\)"):
        read_series(tmp_path / "s.npy")
    np.testing.assert_array_equal(read_series(tmp_path / "s.npy", nan_policy="interpolate").values, [[1], [2], [3]])


def test_read_series_rejects_bad_numpy_files(tmp_path):
    np.save(tmp_path / "seq.npy", np.zeros((2, 3, 4)))
    with pytest.raises(DataError, match=r"shape \(2, 3, 4\) is sequences \(N, L, F\), not a series"):
        read_series(tmp_path / "seq.npy")
    np.savez(tmp_path / "noX.npz", values=np.zeros(3))
    with pytest.raises(DataError, match="has no array 'X' \\(found 'values'\\)"):
        read_series(tmp_path / "noX.npz")
    np.savez(tmp_path / "short_y.npz", X=np.zeros((4, 1)), y=np.zeros(3))
    with pytest.raises(DataError, match=r"'y' has shape \(3,\), expected \(4,\)"):
        read_series(tmp_path / "short_y.npz")
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    with pytest.raises(DataError, match="holds <U1 values, not numbers"):
        read_series(tmp_path / "text.npy")
    np.save(tmp_path / "complex.npy", np.ones((30, 2), complex))  # numpy would drop the imaginary parts with a warning
    with pytest.raises(DataError, match=r"complex.npy: holds complex128 values; save real numbers \(X.real"):
        read_series(tmp_path / "complex.npy")
    (tmp_path / "text.npy").write_text("a,b\n1,2\n")  # numpy took it for a pickle and suggested allow_pickle
    with pytest.raises(DataError, match=r"text.npy: not a NumPy file \(no .npy or .npz header\)") as refused:
        read_series(tmp_path / "text.npy")
    assert "pickle" not in str(refused.value)
    np.save(tmp_path / "objects.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a readable NumPy file"):
        read_series(tmp_path / "objects.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 2)))
    with pytest.raises(DataError, match="has no values"):
        read_series(tmp_path / "empty.npy")
    np.save(tmp_path / "scalar.npy", np.float64(3))
    with pytest.raises(DataError, match="holds a single number"):
        read_series(tmp_path / "scalar.npy")


# --- read_sequences -----------------------------------------------------------------------


UCR_CSV = "split,y,t0,t1,t2\ntrain,0,1,2,3\ntest,1,4,5,6\n"


def test_read_sequences_ucr_style_table(tmp_path):
    path = write_text(tmp_path / "q.csv", UCR_CSV)
    sequences = read_sequences(path, label_column="y")
    assert sequences.values.shape == (2, 3, 1) and sequences.values.dtype == np.float32
    np.testing.assert_array_equal(sequences.values[:, :, 0], [[1, 2, 3], [4, 5, 6]])
    assert sequences.feature_names == ["value"]
    np.testing.assert_array_equal(sequences.labels, [0, 1])
    assert sequences.ids.tolist() == [0, 1]
    assert read_sequences(path, columns=["t1", "t2"]).values.shape == (2, 2, 1)


def test_read_sequences_named_text_column(tmp_path):
    path = write_text(tmp_path / "q.csv", UCR_CSV)
    with pytest.raises(DataError, match="column 'split' row 1 has text 'train'"):
        read_sequences(path, columns=["split", "t*"])


def test_read_sequences_nan_policies(tmp_path):
    path = write_text(tmp_path / "q.csv", "t0,t1,t2,t3\n1,,3,\n5,6,7,8\n")
    with pytest.raises(
        DataError,
        match=r"column 't1' has 1 missing value \(first at row 1\); fill them or pass "
        r"--nan-policy interpolate\|drop",
    ):
        read_sequences(path)
    interpolated = read_sequences(path, nan_policy="interpolate")
    np.testing.assert_array_equal(interpolated.values[:, :, 0], [[1, 2, 3, 3], [5, 6, 7, 8]])
    dropped = read_sequences(path, nan_policy="drop")
    np.testing.assert_array_equal(dropped.values[:, :, 0], [[5, 6, 7, 8]])
    assert dropped.ids.tolist() == [1]
    with pytest.raises(DataError, match="q.csv: --nan-policy ffill fills from the row before, and sequences are independent rows"):
        read_sequences(path, nan_policy="ffill")


def test_read_sequences_from_numpy_files(tmp_path):
    values = np.arange(24, dtype=np.float64).reshape(2, 4, 3)
    np.save(tmp_path / "q.npy", values)
    sequences = read_sequences(tmp_path / "q.npy")
    np.testing.assert_array_equal(sequences.values, values)
    assert sequences.feature_names == ["f0", "f1", "f2"] and sequences.labels is None

    np.savez(tmp_path / "q.npz", X=values[:, :, 0], y=np.array([1, 0]))
    sequences = read_sequences(tmp_path / "q.npz")
    assert sequences.values.shape == (2, 4, 1)
    np.testing.assert_array_equal(sequences.labels, [1, 0])


def test_read_sequences_numpy_nan_interpolates_each_feature_along_time(tmp_path):
    values = np.array([[[0.0, 10.0], [np.nan, np.nan], [2.0, 30.0]]])  # (1, 3, 2)
    np.save(tmp_path / "q.npy", values)
    with pytest.raises(DataError, match=r"feature 'f0' has 1 missing value \(first in sequence 1, step 2\)"):
        read_sequences(tmp_path / "q.npy")
    filled = read_sequences(tmp_path / "q.npy", nan_policy="interpolate").values
    np.testing.assert_array_equal(filled[0], [[0, 10], [1, 20], [2, 30]])


def test_read_sequences_numpy_problems(tmp_path):
    np.save(tmp_path / "inf.npy", np.array([[1.0, 2.0], [3.0, -np.inf]]))
    with pytest.raises(DataError, match="sequence 2 step 2 feature 'f0' has value -inf"):
        read_sequences(tmp_path / "inf.npy")
    np.save(tmp_path / "empty_feature.npy", np.array([[[1.0, np.nan], [2.0, np.nan]]]))
    with pytest.raises(DataError, match="sequence 1 has no values for feature 'f1'"):
        read_sequences(tmp_path / "empty_feature.npy", nan_policy="interpolate")
    np.save(tmp_path / "all_nan.npy", np.full((2, 2), np.nan))
    with pytest.raises(DataError, match="every sequence has a missing value"):
        read_sequences(tmp_path / "all_nan.npy", nan_policy="drop")
    np.save(tmp_path / "flat.npy", np.zeros(5))
    with pytest.raises(DataError, match=r"shape \(5,\) is not sequences"):
        read_sequences(tmp_path / "flat.npy")
    with pytest.raises(DataError, match="an array file has no named columns"):
        read_sequences(tmp_path / "flat.npy", label_column="y")


# --- writing ------------------------------------------------------------------------------


def test_check_output_path(tmp_path):
    existing = write_text(tmp_path / "out.csv", "a\n1\n")
    with pytest.raises(DataError, match=r"out.csv: exists; pass --overwrite \(in Python: overwrite=True\) to replace it"):
        check_output_path(existing, overwrite=False)
    check_output_path(existing, overwrite=True)
    with pytest.raises(DataError, match="folder '.*nowhere' does not exist; create it first"):
        check_output_path(tmp_path / "nowhere" / "out.csv", overwrite=False)
    with pytest.raises(DataError, match="unknown output type; name the file .csv"):
        check_output_path(tmp_path / "out.xlsx", overwrite=False, table=True)


@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz", "out.parquet"])
def test_write_table_round_trip_keeps_named_index(tmp_path, name):
    frame = pd.DataFrame(
        {"score": [0.5, 1.5], "is_anomaly": [0, 1]},
        index=pd.Index([7, 8], name="sequence"),
    )
    write_table(frame, tmp_path / name)
    assert read_table(tmp_path / name).columns.tolist() == ["sequence", "score", "is_anomaly"]
    assert os.listdir(tmp_path) == [name]  # no temporary file left behind


def test_write_table_skips_unnamed_index_and_respects_overwrite(tmp_path):
    path = tmp_path / "out.csv"
    write_table(pd.DataFrame({"a": [1]}), path)
    assert path.read_text().splitlines() == ["a", "1"]
    with pytest.raises(DataError, match="exists; pass --overwrite"):
        write_table(pd.DataFrame({"a": [2]}), path)
    write_table(pd.DataFrame({"a": [2]}), path, overwrite=True)
    assert path.read_text().splitlines() == ["a", "2"]


def test_write_table_failure_leaves_no_file(tmp_path, monkeypatch):
    def crash_part_way(self, path, **kwargs):
        with open(path, "w") as file:
            file.write("half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash_part_way)
    with pytest.raises(DataError, match=r"out.parquet: could not be written \(disk full\)"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "out.parquet")
    assert os.listdir(tmp_path) == []


def test_write_table_gzip_is_compressed(tmp_path):
    write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "out.csv.gz")
    with gzip.open(tmp_path / "out.csv.gz", "rt") as file:
        assert file.read().splitlines() == ["a", "1", "2"]


# --- validation ---------------------------------------------------------------------------


def test_check_features_reorders_same_names():
    order = check_features(["a", "b", "c"], ["c", "a", "b"], "data.csv")
    got = np.array([["c", "a", "b"]])
    assert got[:, order].tolist() == [["a", "b", "c"]]


def test_check_features_missing_and_unexpected():
    trained = list("abcdefgh")
    with pytest.raises(
        DataError,
        match=r"data.csv: expected 8 features \(trained on a, b, ..., h\), got 7: missing 'c'",
    ):
        check_features(trained, [n for n in trained if n != "c"], "data.csv")
    with pytest.raises(
        DataError,
        match=r"got 9: unexpected 'z' \(pass --columns to choose the trained columns\)",
    ):
        check_features(trained, trained + ["z"], "data.csv")
    with pytest.raises(DataError, match=r"expected 2 features \(trained on a, b\), got 2: missing 'b'; unexpected 'z'"):
        check_features(["a", "b"], ["a", "z"], "data.csv")


@pytest.mark.parametrize("window", [0, -3, 2.5, True, "5"])
def test_check_window_rejects_non_positive_integers(window):
    with pytest.raises(DataError, match=f"window must be an integer >= 1, got {window!r}"):
        check_window(window, 10, "data.csv")


def test_check_window_and_stride():
    check_window(np.int64(3), 3, "data.csv")  # a window as long as the series is fine
    with pytest.raises(
        DataError,
        match="data.csv: series has 3 rows, shorter than the window 5; use a smaller --window or more data",
    ):
        check_window(5, 3, "data.csv")
    check_stride(1)
    with pytest.raises(DataError, match="stride must be an integer >= 1, got 0"):
        check_stride(0)


def test_check_finite_allows_nan_only_when_asked():
    values = np.array([[1.0, np.nan], [2.0, np.nan]])
    check_finite(values, ["a", "b"], "x", allow_nan=True)
    with pytest.raises(DataError, match=r"column 'b' has 2 missing values \(first at row 1\)"):
        check_finite(values, ["a", "b"], "x")
    with pytest.raises(DataError, match="expected a 2-D .* got shape \\(2,\\)"):
        check_finite(np.zeros(2), ["a"], "x")


def test_staged_directory_is_all_or_nothing(tmp_path):
    from lstmae.data.io import staged_directory

    target = tmp_path / "report"
    with staged_directory(target) as staging:
        (staging / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"
    with pytest.raises(DataError, match="report: exists; pass --overwrite"):
        with staged_directory(target):
            pass
    with pytest.raises(RuntimeError):
        with staged_directory(target, overwrite=True) as staging:
            (staging / "a.txt").write_text("half")
            raise RuntimeError("crash mid-way")
    assert (target / "a.txt").read_text() == "first"  # the old directory is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging left behind
    with staged_directory(target, overwrite=True) as staging:
        (staging / "b.txt").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    with pytest.raises(DataError, match="does not exist; create it first"):
        with staged_directory(tmp_path / "missing" / "out"):
            pass


def test_one_column_in_two_roles_is_named(tmp_path):
    """Read as the time, the label column was refused for a repeated time ("time column 'label' has 0 twice")."""
    pd.DataFrame({"t": range(6), "x": np.arange(6.0), "label": [0, 0, 1, 0, 0, 0]}).to_csv(tmp_path / "d.csv",
                                                                                          index=False)
    with pytest.raises(DataError, match="column 'label' is given as both the time and the label column"):
        read_series(tmp_path / "d.csv", time_column="label", label_column="label")


def test_a_column_of_decimal_comma_numbers_is_named_not_dropped(tmp_path):
    # read as text, it was left out of the features without a word; score then called it missing
    path = write_text(tmp_path / "comma.csv", "t,a,b\n" + "".join(f'{i},"0,{i + 10}",{i}.5\n' for i in range(12)))
    with pytest.raises(DataError, match=r"comma.csv: column 'a' holds numbers written with a comma \(e.g. '0,10'\), "
                                        r"which are read as text; write them as plain numbers"):
        read_series(path, time_column="t")
    assert read_series(path, time_column="t", columns=["b"]).feature_names == ["b"]  # named: the column is left out
    write_text(tmp_path / "notes.csv", "t,a,note\n" + "".join(f"{i},{i}.5,ok\n" for i in range(12)))
    assert read_series(tmp_path / "notes.csv", time_column="t").feature_names == ["a"]  # other text: left out


def test_a_file_that_is_not_utf8_is_refused_naming_the_fix(tmp_path):
    # read with replacement characters: a Latin-1 header 'labél' became a feature named 'lab\ufffdl'
    path = tmp_path / "latin1.csv"
    path.write_bytes("t,temp,lab\u00e9l\n".encode("latin-1") + b"".join(b"%d,%d.5,%d\n" % (i, i, i % 3) for i in range(12)))
    with pytest.raises(DataError, match=r"latin1.csv: is not UTF-8 text \(byte 0xe9 cannot be decoded\); save it as "
                                        r"UTF-8 \(e.g. pd.read_csv\(path, encoding='latin-1'\)"):
        read_series(path, time_column="t")
    path.write_bytes("t,temp,lab\u00e9l\n".encode("utf-8") + b"".join(b"%d,%d.5,%d\n" % (i, i, i % 3) for i in range(12)))
    assert read_series(path, time_column="t").feature_names == ["temp", "lab\u00e9l"]


def test_a_declared_label_column_is_checked_before_another_is_blamed_for_looking_like_labels(tmp_path):
    # --label-column timestamp was answered "column 'label' looks like labels", about a column not named
    write_text(tmp_path / "s.csv", "timestamp,temp,label\n" + "".join(f"2024-01-0{i + 1},{i}.5,0\n" for i in range(5)))
    with pytest.raises(DataError, match=r"label column 'timestamp' row 1 has '2024-01-01'; labels must be 0"):
        read_series(tmp_path / "s.csv", label_column="timestamp")
