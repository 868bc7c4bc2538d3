import numpy as np
import pandas as pd
import pytest

from lstmae.exceptions import DataError
from lstmae.scoring import EVENT_COLUMNS, find_events


def _reference_runs(flags, merge_gap, min_length):
    """Walk the rows: open a run at a flag, close it after more than merge_gap unflagged rows."""
    runs, start, last_flag = [], None, None
    for row, flag in enumerate(flags):
        if not flag:
            continue
        if start is not None and row - last_flag - 1 > merge_gap:
            runs.append((start, last_flag))
            start = None
        if start is None:
            start = row
        last_flag = row
    if start is not None:
        runs.append((start, last_flag))
    return [(s, e) for s, e in runs if e - s + 1 >= min_length]


def test_hand_example_with_index_peak_and_top_features():
    flags = [0, 1, 1, 1, 0, 0, 1]
    scores = [0.0, 2.0, 5.0, 3.0, 0.0, 0.0, 4.0]
    feature_errors = np.zeros((7, 3))
    feature_errors[1:4] = [[1.0, 0.0, 1.0], [4.0, 1.0, 1.0], [1.0, 0.0, 1.0]]  # temp 6, flow 1, ph 3
    feature_errors[6] = [0.0, 2.0, 0.0]
    index = pd.date_range("2024-01-01", periods=7, freq="h")
    events = find_events(flags, scores, feature_errors=feature_errors,
                         feature_names=["temp", "flow", "ph"], index=index, top_k=2)
    assert list(events.columns) == EVENT_COLUMNS
    assert events["event"].tolist() == [0, 1]
    assert events["start"].tolist() == [index[1], index[6]]
    assert events["end"].tolist() == [index[3], index[6]]
    assert events["start_row"].tolist() == [1, 6]
    assert events["end_row"].tolist() == [3, 6]
    assert events["length"].tolist() == [3, 1]
    assert events["peak_score"].tolist() == [5.0, 4.0]
    assert events["peak_at"].tolist() == [index[2], index[6]]
    assert events["top_features"].tolist() == ["temp (60%), ph (30%)", "flow (100%)"]


@pytest.mark.parametrize("merge_gap, min_length", [(0, 1), (1, 1), (2, 3), (0, 4)])
def test_runs_match_brute_force(merge_gap, min_length):
    rng = np.random.default_rng(merge_gap * 10 + min_length)
    flags = (rng.random(300) < 0.3).astype(int)
    scores = rng.random(300)
    events = find_events(flags, scores, merge_gap=merge_gap, min_length=min_length)
    expected = _reference_runs(flags, merge_gap, min_length)
    assert list(zip(events["start_row"], events["end_row"])) == expected
    assert events["start"].tolist() == [s for s, _ in expected]  # row positions without index
    assert events["peak_score"].tolist() == [scores[s : e + 1].max() for s, e in expected]
    assert (events["top_features"] == "").all()


def test_merged_gap_rows_count_in_length_and_nan_flags_are_normal():
    flags = np.array([1, np.nan, 1, 0, 0, 0, 1, 1])
    scores = np.array([1.0, np.nan, 2.0, 0.0, 0.0, 0.0, 1.0, 3.0])
    events = find_events(flags, scores, merge_gap=1)
    assert events["start_row"].tolist() == [0, 6]
    assert events["length"].tolist() == [3, 2]
    assert events["peak_at"].tolist() == [2, 7]


def test_default_feature_names_and_no_events():
    events = find_events([1, 1], [1.0, 2.0], feature_errors=[[1.0, 3.0], [1.0, 3.0]])
    assert events["top_features"].tolist() == ["f1 (75%), f0 (25%)"]
    empty = find_events([0, 0, 0], [1.0, 2.0, 3.0], index=pd.date_range("2024", periods=3))
    assert list(empty.columns) == EVENT_COLUMNS and len(empty) == 0
    assert pd.api.types.is_datetime64_any_dtype(empty["start"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"flags": [0, -1, 1]}, r"flags must be 0 \(normal\) or 1 \(anomaly\); got -1 at row 1 .*-1/\+1"),
        ({"flags": [[0, 1, 1]]}, r"flags must be 1-D \(T,\); got shape \(1, 3\)"),
        ({"scores": [1.0, 2.0]}, r"scores must have shape \(3,\) like flags; got \(2,\)"),
        ({"feature_errors": np.ones((2, 2))}, r"feature_errors must have shape \(3, F\); got \(2, 2\)"),
        ({"feature_errors": np.ones((3, 2)), "feature_names": ["a"]}, r"got 1 feature_names for 2"),
        ({"index": [1, 2]}, r"index must have 3 entries like flags; got 2"),
        ({"min_length": -1}, r"min_length must be an integer >= 0, got -1"),
        ({"merge_gap": 0.5}, r"merge_gap must be an integer >= 0, got 0.5"),
    ],
)
def test_bad_input(kwargs, message):
    arguments = {"flags": [0, 1, 1], "scores": [0.1, 0.2, 0.3], **kwargs}
    flags, scores = arguments.pop("flags"), arguments.pop("scores")
    with pytest.raises(DataError, match=message):
        find_events(flags, scores, **arguments)


def test_flag_runs_hand_examples_and_inputs():
    from lstmae.scoring import flag_runs

    starts, ends = flag_runs([0, 1, 1, 0, 1])
    assert starts.tolist() == [1, 4] and ends.tolist() == [2, 4]
    assert starts.dtype == np.int64 and ends.dtype == np.int64
    assert [a.tolist() for a in flag_runs([0, 1, 1, 0, 1], merge_gap=1)] == [[1], [4]]
    assert [a.tolist() for a in flag_runs(np.array([True, False, True]))] == [[0, 2], [0, 2]]
    assert [a.tolist() for a in flag_runs([np.nan, 1.0, np.nan])] == [[1], [1]]  # NaN counts as False
    assert [a.tolist() for a in flag_runs(np.zeros(4))] == [[], []]
    assert [a.tolist() for a in flag_runs([])] == [[], []]
    with pytest.raises(DataError, match=r"flag_runs needs a 1-D mask \(T,\); got shape \(2, 2\)"):
        flag_runs(np.ones((2, 2)))
    with pytest.raises(DataError, match=r"merge_gap must be an integer >= 0, got -1"):
        flag_runs([1, 0], merge_gap=-1)


@pytest.mark.parametrize("merge_gap", [0, 1, 3])
def test_flag_runs_match_brute_force(merge_gap):
    from lstmae.scoring import flag_runs

    flags = (np.random.default_rng(merge_gap).random(400) < 0.4).astype(int)
    assert list(zip(*(a.tolist() for a in flag_runs(flags, merge_gap)))) == _reference_runs(flags, merge_gap, 1)


def test_a_run_touches_the_rows_when_they_share_a_row():
    from lstmae.scoring import flag_runs
    from lstmae.scoring.events import runs_touching

    labels = np.zeros(40, int)
    labels[10:21] = 1
    touched = runs_touching([5, 20, 0, 21], [10, 30, 9, 25], labels)
    assert touched.tolist() == [True, True, False, False] and touched.dtype == bool
    assert runs_touching([], [], labels).tolist() == []
    rng = np.random.default_rng(0)  # against the pairwise test of every run and labelled range
    rows = rng.random(300) < 0.05
    starts = np.sort(rng.choice(290, 30, replace=False))
    ends = starts + rng.integers(0, 10, 30)
    labelled = list(zip(*(r.tolist() for r in flag_runs(rows))))
    expected = [any(s <= b and a <= e for a, b in labelled) for s, e in zip(starts, ends)]
    assert runs_touching(starts, ends, rows).tolist() == expected
