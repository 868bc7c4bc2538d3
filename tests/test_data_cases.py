"""Awkward data the readers meet: time gaps, dropped rows, repeated names, unsorted or repeated
times, spaces in names, columns that look like labels or a time index, Parquet without pyarrow,
and the shared helpers (positive integers, atomic writes)."""

import errno
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmae.data.io import (
    atomic_output,
    check_output_path,
    read_sequences,
    read_series,
    read_table,
    write_bytes_atomic,
    write_table,
    write_text_atomic,
)
from lstmae.data.validation import check_integer, is_integer, is_number
from lstmae.data.windowing import GAP_FACTOR, segment_ids, segment_rows, temporalize
from lstmae.exceptions import DataError


def write_text(path, text):
    path.write_text(text)
    return path


def minutes(*offsets, name="ts"):
    return pd.DatetimeIndex(pd.Timestamp("2026-01-01") + pd.to_timedelta(offsets, unit="min"), name=name)


# --- time gaps ----------------------------------------------------------------------------


def test_segments_split_at_a_gap_longer_than_ten_periods():
    ids, n_gaps = segment_ids(minutes(0, 1, 2, 3, 60, 61, 62))
    assert ids.tolist() == [0, 0, 0, 0, 1, 1, 1] and n_gaps == 1
    jitter = minutes(0, 1, 3, 4, 5, 5 + GAP_FACTOR)  # a missed sample and a step of exactly 10
    assert segment_ids(jitter) == (pytest.approx([0] * 6), 0)


def test_segments_with_an_explicit_max_gap_for_dates_and_numbers():
    times = minutes(0, 1, 2, 5, 6)
    assert segment_ids(times, "2min")[0].tolist() == [0, 0, 0, 1, 1]
    assert segment_ids(times, pd.Timedelta("10min"))[1] == 0
    assert segment_ids(times, np.timedelta64(30, "s"))[1] == 4
    numbers = pd.Index([0.0, 0.5, 1.0, 4.0, 4.5], name="t")
    assert segment_ids(numbers, 1.0)[0].tolist() == [0, 0, 0, 1, 1]
    assert segment_ids(numbers)[1] == 0  # median step 0.5: a step of 3.0 is 6 periods


def test_segments_never_span_entities_and_measure_steps_within_each():
    # two machines, interleaved rows; machine b pauses between 3 and 50
    index = pd.Index([0, 1, 2, 3, 4, 50], name="t")
    ids, n_gaps = segment_ids(index, entities=np.array(["a", "b", "a", "b", "a", "b"]))
    assert ids.tolist() == [0, 1, 0, 1, 0, 2] and n_gaps == 1
    assert [rows.tolist() for rows in segment_rows(ids)] == [[0, 2, 4], [1, 3], [5]]


def test_segments_of_series_without_distances():
    assert segment_ids(pd.RangeIndex(4)) == (pytest.approx([0, 0, 0, 0]), 0)
    assert segment_ids(pd.Index(["x", "y"]))[1] == 0
    assert segment_ids(minutes(5))[0].tolist() == [0]
    assert segment_ids(pd.Index([], dtype=float))[0].tolist() == []
    assert segment_rows(np.array([], np.int64)) == []


@pytest.mark.parametrize(
    ("index", "max_gap", "match"),
    [
        (minutes(0, 1), 5, "for a time column of dates must be a duration such as '5min', got 5"),
        (minutes(0, 1), "soon", "max_gap 'soon' is not a duration"),
        (minutes(0, 1), "-1min", "max_gap must be a positive duration or number"),
        (pd.Index([0, 1]), "5min", "for a numeric time column must be a number, got '5min'"),
        (pd.Index([0, 1]), 0, "max_gap must be a positive duration or number, got 0"),
        (pd.Index([0, 1]), float("nan"), "max_gap must be a positive"),
        (pd.Index(["a", "b"], name="step"), 2, "time column 'step' holds text"),
    ],
)
def test_segment_ids_refuses_a_max_gap_of_the_wrong_kind(index, max_gap, match):
    with pytest.raises(DataError, match=match):
        segment_ids(index, max_gap)


def test_segment_ids_refuses_unsorted_or_repeated_times():
    with pytest.raises(DataError, match="time column 't' is not strictly increasing at row 3 \\(after row 2\\)"):
        segment_ids(pd.Index([0, 2, 1], name="t"))
    with pytest.raises(DataError, match="not strictly increasing at row 2"):
        segment_ids(minutes(1, 1))
    with pytest.raises(DataError, match="entities must have one value per row: expected 2, got 1"):
        segment_ids(pd.Index([0, 1]), entities=["a"])


def test_windows_per_segment_never_span_a_gap():
    times = minutes(*range(6), *range(100, 106))
    values = np.arange(12, dtype=np.float32)[:, None]
    ids, _ = segment_ids(times)
    windows = [temporalize(values[rows], window=3)[0] for rows in segment_rows(ids)]
    X = np.concatenate(windows)
    assert len(X) == 8  # 4 per segment, none across the jump
    assert (np.diff(X[..., 0], axis=1) == 1).all()


# --- nan_policy="drop" keeps account of every input row ------------------------------------


def test_drop_marks_the_dropped_rows_and_maps_results_back_to_every_row(tmp_path):
    path = write_text(tmp_path / "s.csv", "t,v,y\n10,1,0\n20,,1\n30,3,0\n40,4,1\n")
    series = read_series(path, time_column="t", label_column="y", nan_policy="drop")
    np.testing.assert_array_equal(series.values[:, 0], [1, 3, 4])
    assert series.index.tolist() == [10, 30, 40]
    assert series.dropped.tolist() == [False, True, False, False]
    assert series.input_index.tolist() == [10, 20, 30, 40]
    assert series.kept_rows().tolist() == [0, 2, 3]
    scores = series.to_input_rows(np.array([0.5, 1.5, 2.5], np.float32))
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(scores, [0.5, np.nan, 1.5, 2.5])
    flags = series.to_input_rows(np.array([1, 0, 1], np.int8), fill=0)
    assert flags.dtype == np.int8 and flags.tolist() == [1, 0, 0, 1]
    valid = series.to_input_rows(np.ones(3, bool), fill=False)
    assert valid.tolist() == [True, False, True, True]
    with pytest.raises(ValueError, match="one value per kept row \\(3\\), got shape \\(4,\\)"):
        series.to_input_rows(np.zeros(4))


def test_without_dropping_every_row_is_kept(tmp_path):
    path = write_text(tmp_path / "s.csv", "v,w\n1,1\n,2\n3,3\n")
    series = read_series(path, nan_policy="interpolate")
    assert series.dropped.tolist() == [False, False, False]
    np.testing.assert_array_equal(series.values[:, 0], [1, 2, 3])
    assert series.input_index.equals(series.index)


# --- column names ---------------------------------------------------------------------------


def test_a_repeated_column_name_is_refused_naming_it(tmp_path):
    path = write_text(tmp_path / "s.csv", "a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match="s.csv: column name 'a' appears twice \\(columns 1 and 3\\); rename one"):
        read_series(path)
    with pytest.raises(DataError, match="column name 'a' appears twice"):
        read_table(path)


def test_names_that_only_look_renamed_are_fine(tmp_path):
    assert read_table(write_text(tmp_path / "s.csv", "a,b,a.1\n1,2,3\n")).columns.tolist() == ["a", "b", "a.1"]
    unnamed = read_table(write_text(tmp_path / "u.csv", ",,b\n1,2,3\n"))  # empty names are numbered
    assert unnamed.columns.tolist()[-1] == "b"


def test_a_repeated_column_name_in_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([1.0, 2.0]), pa.array([3.0, 4.0])], names=["x", "x"])
    pq.write_table(table, tmp_path / "s.parquet")
    with pytest.raises(DataError, match="column name 'x' appears twice \\(columns 1 and 2\\)"):
        read_series(tmp_path / "s.parquet")


def test_names_with_spaces_match_exactly(tmp_path):
    path = write_text(tmp_path / "s.csv", "a, b ,c\n1,2,3\n4,5,6\n")
    assert read_series(path, columns=[" b "]).feature_names == [" b "]
    np.testing.assert_array_equal(read_series(path, columns=[" b "]).values[:, 0], [2, 5])
    with pytest.raises(
        DataError, match=r"no column 'b' \(the file has ' b ': names must match exactly, spaces included\)"
    ):
        read_series(path, columns=["b"])
    assert read_series(path, columns=[" *"]).feature_names == [" b "]


def test_glob_patterns_are_case_sensitive(tmp_path):
    path = write_text(tmp_path / "s.csv", "Temp,temp2\n1,2\n")
    assert read_series(path, columns=["t*"]).feature_names == ["temp2"]
    with pytest.raises(DataError, match="no column matches 'TEMP\\*'"):
        read_series(path, columns=["TEMP*"])


# --- time order and repeated times ------------------------------------------------------------


def test_unsorted_times_are_sorted_with_a_one_line_warning(tmp_path):
    path = write_text(tmp_path / "s.csv", "t,v,y\n2026-01-01 00:00,1,0\n2026-01-01 00:02,3,1\n2026-01-01 00:01,2,0\n")
    with pytest.warns(UserWarning, match=r"s.csv: time column 't' is not in time order \(row 3 is earlier than row 2\); the rows were sorted by time") as record:
        series = read_series(path, time_column="t", label_column="y")
    assert "\n" not in str(record[0].message)
    np.testing.assert_array_equal(series.values[:, 0], [1, 2, 3])
    np.testing.assert_array_equal(series.labels, [0, 0, 1])
    assert series.index.is_monotonic_increasing


def test_times_across_a_daylight_saving_change_are_read_in_utc_and_naive_beside_aware_refused(tmp_path):
    # 01:30 at +00:00, then the clocks go forward: 02:40+01:00 is 01:40 UTC
    path = write_text(tmp_path / "dst.csv", "t,v\n2026-03-29T01:30:00+00:00,1\n2026-03-29T02:40:00+01:00,2\n"
                                             "2026-03-29T02:50:00+01:00,3\n")
    with pytest.warns(UserWarning, match=r"dst.csv: time column 't' has several UTC offsets; its times are read in"):
        series = read_series(path, time_column="t")
    assert list(series.index) == list(pd.to_datetime(["2026-03-29 01:30", "2026-03-29 01:40", "2026-03-29 01:50"],
                                                     utc=True))
    path = write_text(tmp_path / "mixed.csv", "t,v\n2026-03-29T01:30:00,1\n2026-03-29T01:40:00,2\n"
                                               "2026-03-29T02:50:00+01:00,3\n")
    with pytest.raises(DataError, match=r"mixed.csv: time column 't' row 3 holds '2026-03-29T02:50:00\+01:00', not a "
                                        r"date like the rest"):
        read_series(path, time_column="t")


def test_sorted_times_give_no_warning(tmp_path):
    path = write_text(tmp_path / "s.csv", "t,v\n1,1\n2,2\n5,3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_series(path, time_column="t").index.tolist() == [1, 2, 5]


def test_a_repeated_time_is_refused_naming_the_time_and_rows(tmp_path):
    path = write_text(tmp_path / "s.csv", "t,v\n2026-01-01 00:00,1\n2026-01-01 00:01,2\n2026-01-01 00:00,3\n2026-01-01 00:01,4\n")
    with pytest.raises(
        DataError,
        match=r"time column 't' has 2026-01-01 00:00:00 twice \(rows 1 and 3\); every row needs its own time",
    ):
        read_series(path, time_column="t")


def test_times_are_ordered_and_checked_per_entity(tmp_path):
    # the same times on two machines are fine; machine b's rows are out of order
    text = "t,m,v\n1,a,10\n2,b,22\n1,b,21\n2,a,11\n3,b,23\n"
    path = write_text(tmp_path / "s.csv", text)
    with pytest.warns(UserWarning, match=r"not in time order for entity 'b' \(row 3 is earlier than row 2\)"):
        series = read_series(path, time_column="t", entity_column="m")
    # each machine's rows keep their positions, in time order within the machine
    assert series.entities.tolist() == ["a", "b", "b", "a", "b"]
    np.testing.assert_array_equal(series.values[:, 0], [10, 21, 22, 11, 23])
    assert series.index.tolist() == [1, 1, 2, 2, 3]

    repeated = write_text(tmp_path / "r.csv", "t,m,v\n1,a,1\n1,b,2\n2,b,3\n2,b,4\n")
    with pytest.raises(DataError, match=r"has 2 twice for entity 'b' \(rows 3 and 4\)"):
        read_series(repeated, time_column="t", entity_column="m")


def test_text_times_are_kept_as_they_are(tmp_path):
    path = write_text(tmp_path / "s.csv", "t,v\nb,1\na,2\na,3\n")
    assert read_series(path, time_column="t").index.tolist() == ["b", "a", "a"]


def test_errors_name_file_rows_even_when_rows_get_sorted(tmp_path):
    path = write_text(tmp_path / "s.csv", "t,v\n3,1\n1,inf\n2,2\n")
    with pytest.raises(DataError, match="column 'v' row 2 has value inf"):
        read_series(path, time_column="t")


def test_filling_happens_in_time_order_and_never_across_entities(tmp_path):
    text = "t,m,v\n2,a,\n1,a,5\n1,b,\n2,b,7\n3,a,\n"
    path = write_text(tmp_path / "s.csv", text)
    with pytest.warns(UserWarning):
        series = read_series(path, time_column="t", entity_column="m", nan_policy="ffill")
    # a: t=1 5, t=2 filled 5, t=3 filled 5; b: t=1 back-filled from its own 7 (not a's 5)
    assert series.entities.tolist() == ["a", "a", "b", "b", "a"]
    np.testing.assert_array_equal(series.values[:, 0], [5, 5, 7, 7, 5])
    with pytest.raises(DataError, match="entity 'b' has no values at all in column 'v'"):
        read_series(write_text(tmp_path / "e.csv", "m,v\na,1\nb,\na,\n"), entity_column="m", nan_policy="interpolate")


# --- no column becomes a feature by accident ------------------------------------------------


@pytest.mark.parametrize("name", ["label", "Labels", "y", "anomaly", "is_anomaly", "TARGET", "class", " label "])
def test_an_undeclared_label_column_is_refused(tmp_path, name):
    path = write_text(tmp_path / "s.csv", f"v,{name}\n1.5,0\n2.5,1\n3.5,0\n")
    with pytest.raises(DataError, match=f"column '{name}' looks like labels \\(only 0 and 1\\), not a feature; "
                       "declare it with --label-column .*, or name the features with --columns"):
        read_series(path)


def test_label_like_names_with_other_values_are_features(tmp_path):
    path = write_text(tmp_path / "s.csv", "v,class,labels\n1.5,0,0.5\n2.5,2,1\n")
    assert read_series(path).feature_names == ["v", "class", "labels"]
    boolean = pd.DataFrame({"v": [1.0, 2.0], "anomaly": [True, False]})
    boolean.to_parquet(tmp_path / "b.parquet", index=False)
    with pytest.raises(DataError, match="column 'anomaly' looks like labels"):
        read_series(tmp_path / "b.parquet")
    assert read_series(tmp_path / "b.parquet", label_column="anomaly").labels.tolist() == [1, 0]


def test_an_undeclared_time_index_is_refused(tmp_path):
    frame = pd.DataFrame({"v": np.linspace(0, 1, 12), "epoch": 1_700_000_000 + 60 * np.arange(12)})
    frame.to_csv(tmp_path / "s.csv")  # also writes pandas' unnamed index column
    with pytest.raises(
        DataError,
        match=r"column 'Unnamed: 0' looks like a time index \(integers rising by 1 every row\), not a feature; "
        r"declare it with --time-column 'Unnamed: 0', or name the features with --columns",
    ):
        read_series(tmp_path / "s.csv")
    with pytest.raises(DataError, match=r"column 'epoch' looks like a time index \(integers rising by 60 every row\)"):
        read_series(tmp_path / "s.csv", time_column="Unnamed: 0")
    series = read_series(tmp_path / "s.csv", time_column="epoch", columns=["v"])
    assert series.feature_names == ["v"] and series.index[0] == 1_700_000_000


def test_a_filtered_index_column_is_refused_by_its_name(tmp_path):
    frame = pd.DataFrame({"v": np.arange(6.0) ** 2}).iloc[[0, 1, 3, 4]]
    frame.to_csv(tmp_path / "s.csv")  # index 0, 1, 3, 4: rising, not evenly
    with pytest.raises(DataError, match=r"column 'Unnamed: 0' looks like a time index \(rising integers\)"):
        read_series(tmp_path / "s.csv")


def test_short_or_irregular_counts_and_floats_stay_features(tmp_path):
    short = write_text(tmp_path / "short.csv", "v,w\n1,1\n2,2\n3,3\n")  # too few rows to tell
    assert read_series(short).feature_names == ["v", "w"]
    values = pd.DataFrame({"rising": [1, 2, 4, 7, 11, 16, 22, 29, 37, 46], "float": np.arange(10) * 0.5})
    values.to_csv(tmp_path / "ok.csv", index=False)
    assert read_series(tmp_path / "ok.csv").feature_names == ["rising", "float"]


def test_arrays_and_sequence_tables(tmp_path):
    np.save(tmp_path / "s.npy", np.arange(20.0).reshape(10, 2))  # unnamed array columns are trusted
    assert read_series(tmp_path / "s.npy").feature_names == ["f0", "f1"]
    path = write_text(tmp_path / "q.csv", "y,t0,t1\n0,1,2\n1,3,4\n")
    with pytest.raises(DataError, match="column 'y' looks like labels"):
        read_sequences(path)
    assert read_sequences(path, label_column="y").labels.tolist() == [0, 1]


# --- Parquet output needs pyarrow -------------------------------------------------------------


def test_parquet_output_without_pyarrow_fails_before_the_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    with pytest.raises(DataError, match=r"out.parquet: writing Parquet needs pyarrow; pip install pyarrow, or name the file .csv"):
        check_output_path(tmp_path / "out.parquet", overwrite=False, table=True)
    with pytest.raises(DataError, match="writing Parquet needs pyarrow"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "out.pq")
    check_output_path(tmp_path / "out.csv", overwrite=False, table=True)
    check_output_path(tmp_path / "model.parquet", overwrite=False)  # not a table: no check
    assert os.listdir(tmp_path) == []


# --- check_integer -----------------------------------------------------------------------


def test_check_integer():
    assert check_integer(3, "window") == 3
    assert type(check_integer(np.int64(2), "stride")) is int
    for bad in (0, -1, 2.0, True, "3", None):
        with pytest.raises(DataError, match=f"batch_size must be an integer >= 1, got {bad!r}"):
            check_integer(bad, "batch_size")
    assert check_integer(0, "merge_gap", minimum=0) == 0
    with pytest.raises(DataError, match="merge_gap must be an integer >= 0, got -1"):
        check_integer(-1, "merge_gap", minimum=0)


def test_is_integer_and_is_number():
    assert is_integer(3) and is_integer(np.int32(3)) and is_integer(2, minimum=2)
    assert not any(is_integer(value) for value in (True, 3.0, np.float64(3), "3", None))
    assert not is_integer(1, minimum=2)
    assert all(is_number(value) for value in (3, 2.5, np.int64(1), np.float32(0.5), float("nan")))
    assert not any(is_number(value) for value in (True, np.bool_(True), "1", None, [1]))


def test_temporalize_uses_the_same_check():
    with pytest.raises(DataError, match="window must be an integer >= 1, got True"):
        temporalize(np.zeros((5, 1)), window=True)
    with pytest.raises(DataError, match="stride must be an integer >= 1, got 1.0"):
        temporalize(np.zeros((5, 1)), window=2, stride=1.0)


# --- atomic writes ---------------------------------------------------------------------------


def test_atomic_text_and_bytes(tmp_path):
    path = tmp_path / "report.html"
    write_text_atomic(path, "<p>é</p>")
    assert path.read_text(encoding="utf-8") == "<p>é</p>"
    write_bytes_atomic(path, b"\x89PNG")  # replaces
    assert path.read_bytes() == b"\x89PNG"
    assert os.listdir(tmp_path) == ["report.html"]
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~mask  # usual permissions, not 0600


def test_atomic_output_failure_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_output(path) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("crash")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.safetensors"]
    with atomic_output(path) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".model.safetensors.")
        temporary.write_bytes(b"new")
    assert path.read_bytes() == b"new"


def test_a_full_disk_is_one_line_naming_the_output_and_leaves_nothing(tmp_path):
    import errno

    from lstmae.data.io import staged_directory

    def fill(temporary):
        temporary.write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(DataError, match=r"scores.csv: could not be written \(No space left on device\); free some"):
        with atomic_output(tmp_path / "scores.csv") as temporary:
            fill(temporary)
    with pytest.raises(DataError, match=r"model: could not be written \(No space left on device\)"):
        with staged_directory(tmp_path / "model") as staging:
            fill(staging / "weights")
    assert os.listdir(tmp_path) == []


def test_a_full_disk_inside_a_staged_folder_names_the_folder_given_not_the_staging_one(tmp_path):
    # the message named ".report.lstmae-staging-8297-x33c3v5x/report.html", a path the user never gave
    from lstmae.data.io import staged_directory

    with pytest.raises(DataError, match=r"^[^ ]*/report/scores.csv: could not be written") as refused:
        with staged_directory(tmp_path / "report") as staging:
            with atomic_output(staging / "scores.csv") as temporary:
                temporary.write_bytes(b"half")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert "staging" not in str(refused.value) and os.listdir(tmp_path) == []


def test_every_file_of_a_result_is_flushed_before_any_is_renamed_into_place(tmp_path, monkeypatch):
    # the events were renamed into place before the scores' flush failed: new events beside old scores
    from lstmae.data.io import staged_directory, write_tables

    (tmp_path / "scores.csv").write_text("old scores")
    (tmp_path / "events.csv").write_text("old events")
    real_fsync, flushed = os.fsync, []

    def full_at_the_scores(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        flushed.append(Path(name).name)
        if ".scores.csv." in name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_at_the_scores)
    frame = pd.DataFrame({"score": [1.0]})
    with pytest.raises(DataError, match=r"scores.csv: could not be written \(No space left on device\)"):
        write_tables([(frame, tmp_path / "events.csv"), (frame, tmp_path / "scores.csv")], overwrite=True)
    assert (tmp_path / "scores.csv").read_text() == "old scores"
    assert (tmp_path / "events.csv").read_text() == "old events"
    assert sorted(os.listdir(tmp_path)) == ["events.csv", "scores.csv"]
    flushed.clear()
    with staged_directory(tmp_path / "model") as staging:  # a saved model's files are flushed before the swap
        (staging / "config.json").write_text("{}")
        (staging / "model.safetensors").write_bytes(b"weights")
    assert sorted(name for name in flushed) == ["config.json", "model.safetensors"]


def test_an_unwritable_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path / "locked")
    (tmp_path / "locked").mkdir()
    with pytest.raises(DataError, match=r"locked/m: folder '.*locked' is not writable; choose another folder"):
        check_output_path(tmp_path / "locked" / "m", overwrite=False)
    check_output_path(tmp_path / "m", overwrite=False)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match=r"afile/m: '.*afile' is a file, not a folder"):  # said "does not exist"
        check_output_path(tmp_path / "afile" / "m", overwrite=False)


def test_a_link_or_special_file_is_never_replaced(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "target.csv").write_text("kept")
    (tmp_path / "link.csv").symlink_to(tmp_path / "target.csv")
    for name in ("pipe", "link.csv"):  # with --overwrite they were replaced by regular files (as root: /dev/full too)
        with pytest.raises(DataError, match=f"{name}: is a link or a special file"):
            check_output_path(tmp_path / name, overwrite=True)
    assert (tmp_path / "target.csv").read_text() == "kept"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any folder")
def test_a_read_only_folder_is_refused(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(DataError, match="is not writable"):
        check_output_path(tmp_path / "ro" / "scores.csv", overwrite=False, table=True)


def test_large_integer_times_are_compared_exactly(tmp_path):
    ns = 1_700_000_000_000_000_000  # nanoseconds since 1970: neighbours are equal as float64
    index = pd.Index(np.array([ns, ns + 1, ns + 2, ns + 1000], dtype=np.int64), name="t")
    assert segment_ids(index)[0].tolist() == [0, 0, 0, 1]
    with pytest.raises(DataError, match="not strictly increasing at row 2"):
        segment_ids(pd.Index(np.array([ns + 1, ns], dtype=np.uint64), name="t"))
    path = write_text(tmp_path / "s.csv", f"t,v\n{ns},1\n{ns + 1},2\n")
    assert read_series(path, time_column="t").index.tolist() == [ns, ns + 1]  # not duplicates


def test_a_text_file_of_only_unicode_white_space_is_empty(tmp_path):
    from lstmae.data.io import read_series

    (tmp_path / "data.txt").write_bytes(b"\x1c")  # found by the long fuzzer: white space to str, not to bytes
    with pytest.raises(DataError, match="is empty"):
        read_series(tmp_path / "data.txt")


def test_a_csv_without_a_header_line_is_refused_not_read_one_row_short(tmp_path):
    # its first row became the column names: one sequence lost, and the model kept numbers as timestep names
    rows = np.random.default_rng(0).normal(size=(5, 4))
    np.savetxt(tmp_path / "no_header.csv", rows, delimiter=",")
    for read in (read_sequences, read_series):
        with pytest.raises(DataError, match=r"no_header.csv: its first line holds numbers .*, not column names: the "
                                            r"file has no header line; add one"):
            read(tmp_path / "no_header.csv")
    pd.DataFrame(rows, columns=["1", "2", "3", "4"]).to_csv(tmp_path / "numbered.csv", index=False)  # names, kept
    assert read_series(tmp_path / "numbered.csv").values.shape == (5, 4)


def test_a_class_column_of_ucr_values_is_not_taken_for_a_timestep(tmp_path):
    # a "class" column of 1/2 (UCR's) became timestep 0, and scoring files without it then failed
    table = pd.DataFrame(np.random.default_rng(0).normal(size=(6, 4)), columns=["t0", "t1", "t2", "t3"])
    table.insert(0, "class", [1, 2, 1, 2, 1, 1])
    table.to_csv(tmp_path / "ucr.csv", index=False)
    with pytest.raises(DataError, match=r"ucr.csv: column 'class' looks like class labels \(values 1, 2\), not a "
                                        r"feature; name the features with --columns$"):
        read_sequences(tmp_path / "ucr.csv")
    assert read_sequences(tmp_path / "ucr.csv", columns=["t*"]).values.shape == (6, 4, 1)
