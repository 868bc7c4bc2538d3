"""Anomalous events and alarms: runs of flagged time points, their peak and main features.

- :func:`flag_runs`: the first and last rows of each run of True in a (T,) mask; the one
  run finder that scoring and evaluation share.
- :func:`find_events`: one table row per event, with its peak and top features.
- :func:`alarms_from_flags` / :class:`AlarmFilter`: raw per-row flags -> alarms a person can
  act on (on-delay, off-delay, cool-down), causal, so a stream and a batch give the same alarms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmae.exceptions import DataError
from lstmae.data.validation import check_integer

EVENT_COLUMNS = [
    "event", "start", "end", "start_row", "end_row", "length", "peak_score", "peak_at", "top_features",
]


def find_events(
    flags,
    scores,
    *,
    feature_errors=None,
    feature_names=None,
    index=None,
    min_length: int = 1,
    merge_gap: int = 0,
    top_k: int = 3,
) -> pd.DataFrame:
    """One row per event: a run of flags == 1, merged across gaps of <= merge_gap unflagged rows.

    flags: (T,) 0/1 or bool (NaN, e.g. for invalid rows, counts as 0); scores: (T,) float,
    NaN allowed. feature_errors: (T, F) per-feature errors; top_features then lists the top_k
    features by their share of the event's summed errors, e.g. "temp (52%), flow (31%)"
    (names from feature_names, default "f0", "f1", ...). index: (T,) labels of the rows
    (e.g. timestamps) used for start, end and peak_at; row positions when None.
    Events shorter than min_length rows (after merging) are dropped.
    Columns: event, start, end (inclusive), start_row, end_row, length, peak_score, peak_at,
    top_features. An empty result still has these columns.
    """
    flagged = _check_flags(flags)
    n_rows = flagged.size
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (n_rows,):
        raise DataError(f"scores must have shape ({n_rows},) like flags; got {scores.shape}")
    for value, name in ((min_length, "min_length"), (merge_gap, "merge_gap"), (top_k, "top_k")):
        check_integer(value, name, minimum=0)
    if feature_errors is not None:
        feature_errors = np.asarray(feature_errors, dtype=np.float64)
        if feature_errors.ndim != 2 or feature_errors.shape[0] != n_rows:
            raise DataError(f"feature_errors must have shape ({n_rows}, F); got {feature_errors.shape}")
        n_features = feature_errors.shape[1]
        if feature_names is None:
            feature_names = [f"f{j}" for j in range(n_features)]
        if len(feature_names) != n_features:
            raise DataError(
                f"got {len(feature_names)} feature_names for {n_features} feature_errors columns"
            )
    index = pd.RangeIndex(n_rows) if index is None else pd.Index(index)
    if len(index) != n_rows:
        raise DataError(f"index must have {n_rows} entries like flags; got {len(index)}")

    start_rows, end_rows = flag_runs(flagged, merge_gap)
    long_enough = end_rows - start_rows + 1 >= min_length
    start_rows, end_rows = start_rows[long_enough], end_rows[long_enough]

    peak_rows, peak_scores, top_features = [], [], []
    for start, end in zip(start_rows, end_rows):
        event_scores = scores[start : end + 1]
        peak = start + int(np.argmax(np.where(np.isnan(event_scores), -np.inf, event_scores)))
        peak_rows.append(peak)
        peak_scores.append(scores[peak])
        top_features.append(
            "" if feature_errors is None
            else _top_features(feature_errors[start : end + 1], feature_names, top_k)
        )
    peak_rows = np.asarray(peak_rows, dtype=np.int64)
    return pd.DataFrame(
        {
            "event": np.arange(start_rows.size),
            "start": index[start_rows],
            "end": index[end_rows],
            "start_row": start_rows,
            "end_row": end_rows,
            "length": end_rows - start_rows + 1,
            "peak_score": np.asarray(peak_scores, dtype=np.float64),
            "peak_at": index[peak_rows],
            "top_features": pd.Series(top_features, dtype=object),
        },
        columns=EVENT_COLUMNS,
    )


def _check_flags(flags) -> np.ndarray:
    """flags (T,) as bool; NaN counts as 0; anything but 0/1 raises."""
    flags = np.asarray(flags)
    if flags.ndim != 1:
        raise DataError(f"flags must be 1-D (T,); got shape {flags.shape}")
    if flags.dtype.kind == "f":
        flags = np.nan_to_num(flags, nan=0.0)
    not_binary = np.flatnonzero((flags != 0) & (flags != 1))
    if not_binary.size:
        row = not_binary[0]
        raise DataError(
            f"flags must be 0 (normal) or 1 (anomaly); got {flags[row].item()!r} at row {row} "
            "(lstmae uses 1 = anomaly, not scikit-learn's -1/+1)"
        )
    return flags == 1


def flag_runs(mask, merge_gap: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """First and last rows (inclusive) of the runs of True in `mask` (T,), as int64 arrays.

    mask: bool or 0/1 (T,); NaN counts as False. Runs separated by at most `merge_gap` False rows are merged into
    one (the gap rows then belong to the run). Empty arrays when nothing is True.
    Example: flag_runs([0, 1, 1, 0, 1]) -> ([1, 4], [2, 4]); with merge_gap=1 -> ([1], [4]).
    """
    mask = np.asarray(mask)
    if mask.ndim != 1:
        raise DataError(f"flag_runs needs a 1-D mask (T,); got shape {mask.shape}")
    if mask.dtype.kind == "f":
        mask = np.nan_to_num(mask, nan=0.0)
    check_integer(merge_gap, "merge_gap", minimum=0)
    edges = np.diff(np.concatenate([[0], (mask != 0).astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1).astype(np.int64)
    ends = np.flatnonzero(edges == -1).astype(np.int64) - 1
    if starts.size == 0 or merge_gap == 0:
        return starts, ends
    separate = starts[1:] - ends[:-1] - 1 > merge_gap  # is the gap before run i+1 kept?
    return starts[np.concatenate([[True], separate])], ends[np.concatenate([separate, [True]])]


def runs_touching(run_starts, run_ends, rows) -> np.ndarray:
    """Whether each run [run_starts[i], run_ends[i]] (inclusive rows) holds at least one True row of `rows`
    (T,), such as the labelled anomalies: (n_runs,) bool.
    Example: runs_touching([0, 5], [2, 6], [0, 0, 1, 0, 0, 0, 0]) -> [True, False].
    """
    before = np.concatenate([[0], np.cumsum(np.asarray(rows) != 0, dtype=np.int64)])  # True rows before row i
    return before[np.asarray(run_ends, np.int64) + 1] - before[np.asarray(run_starts, np.int64)] > 0


def _top_features(event_errors: np.ndarray, feature_names, top_k: int) -> str:
    """'a (52%), b (31%)': the top_k features by share of an event's summed errors (rows, F).

    Features with no error are left out.
    """
    totals = np.nansum(event_errors, axis=0)
    grand_total = totals.sum()
    if grand_total <= 0:
        return ""
    order = [j for j in np.argsort(-totals, kind="stable")[:top_k] if totals[j] > 0]
    return ", ".join(f"{feature_names[j]} ({100 * totals[j] / grand_total:.0f}%)" for j in order)
