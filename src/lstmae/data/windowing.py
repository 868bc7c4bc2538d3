"""Cut a series (T, F) into windows (N, L, F) as a read-only numpy view, with aligned labels;
split a series into segments at time gaps (windows never span one)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import DataError
from .validation import check_integer, is_integer


def n_windows(n_rows: int, window: int, stride: int = 1) -> int:
    """How many full windows of `window` rows start every `stride` rows in `n_rows` rows."""
    return 0 if n_rows < window else (n_rows - window) // stride + 1


def window_ends(n_rows: int, window: int, stride: int = 1) -> np.ndarray:
    """Row index of each window's last row, (N,). Window i covers rows [i*stride, i*stride + window)."""
    return np.arange(n_windows(n_rows, window, stride)) * stride + window - 1


def temporalize(series, window: int, stride: int = 1, labels=None, label_shift: int = 0):
    """Windows over a series and one label per window.

    Parameters
    ----------
    series : array-like (T, F) or (T,), or a pandas DataFrame of numeric columns.
    window : L, rows per window (the lookback).
    stride : rows between the starts of consecutive windows.
    labels : optional (T,) 0/1 per row.
    label_shift : 0 labels a window with its last row's label. A negative shift -k labels it 1
        when its last row or any of the k rows after it is an event: an early warning k steps
        ahead (rows near the end use the rows that exist).

    Returns
    -------
    X : (N, L, F) read-only view of `series` (no copy), N = (T - L) // stride + 1.
        Window i covers rows [i*stride, i*stride + L); its scores belong to its last row.
    y : (N,) int8 window labels, or None when `labels` is None.
    """
    try:
        values = np.asarray(series)
    except ValueError as err:  # ragged rows
        raise DataError(f"series must be 2-D (T rows of F features each): {str(err).splitlines()[0]}") from None
    if isinstance(series, pd.DataFrame):
        kinds = series.dtypes
        name = next((c for c, kind in kinds.items() if not pd.api.types.is_numeric_dtype(kind)), None)
        if name is not None:  # dates or text: windows of objects that failed later, naming no column
            raise DataError(f"series must hold numbers: column {name!r} holds {kinds[name]} values; drop it (a time "
                            "column belongs in the index) or convert it")
        if values.dtype.kind not in "biuf":  # numbers of several kinds (bool and int), or pandas' NA
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    elif values.dtype.kind not in "biuf":
        try:  # numbers held as objects (a frame of floats and flags, to_numpy()), or text that is not numbers
            values = values.astype(np.float64) if values.dtype.kind == "O" else None
        except (TypeError, ValueError):
            values = None
        if values is None:
            raise DataError(f"series must hold numbers, got {np.asarray(series).dtype} values that are not")
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DataError(f"series must be 2-D (T rows, F features), got shape {values.shape}")
    window, stride = check_integer(window, "window"), check_integer(stride, "stride")
    if len(values) < window:
        raise DataError(f"series has {len(values)} rows, shorter than the window {window}; "
                        "use a smaller window or more data")
    if not is_integer(label_shift, -len(values)) or label_shift > 0:
        raise DataError(f"label_shift must be an integer from -{len(values)} (the rows) to 0 (a negative shift warns "
                        f"ahead of events), got {label_shift!r}")
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (T-L+1, F, L)
    X = view.transpose(0, 2, 1)[::stride]
    if labels is None:
        return X, None
    from ..scoring.thresholds import check_labels

    labels = check_labels(labels, len(values), like="the series' rows")  # 0/1: 300 wrapped round in int8
    ends = window_ends(len(values), window, stride)
    if label_shift == 0:
        return X, labels[ends].astype(np.int8)
    # An event within the next k rows: the running max of the labels over [end, end + k].
    ahead = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([labels, np.zeros(-label_shift, labels.dtype)]), 1 - label_shift)
    return X, ahead.max(axis=1)[ends].astype(np.int8)


#: With max_gap=None, a step longer than GAP_FACTOR times the median step is a gap.
GAP_FACTOR = 10


def segment_ids(index, max_gap=None, *, entities=None) -> tuple[np.ndarray, int]:
    """Split a series where its time column jumps: (T,) segment id per row and the number of gaps.

    Windows must not span a gap (nor two entities): window each segment on its own, as each
    entity (`segment_rows` gives the rows of each).

    Parameters
    ----------
    index : (T,) the times, in order within each entity (as `read_series` returns them): a
        DatetimeIndex or datetime64 values, or numbers. A RangeIndex has no gaps, nor has
        text (which has no distances), unless max_gap is given for it (then DataError).
    max_gap : the longest step that is not a gap. For dates a duration (``"5min"``, a
        pandas Timedelta or numpy timedelta64), for numbers a number > 0. None infers it:
        the sampling period is the median step between consecutive rows (of one entity) and
        a step longer than ``GAP_FACTOR`` (10) periods is a gap; irregular sampling jitter
        and a few missed samples are not.
    entities : (T,) entity ids or None. Steps are measured between consecutive rows of the
        same entity (entities may be interleaved), and a segment never spans two entities.

    Returns
    -------
    ids : (T,) int64, 0, 1, ... numbered in the order of each segment's first row.
    n_gaps : the number of gaps found (entity boundaries are not counted).
    """
    index = index if isinstance(index, pd.Index) else pd.Index(np.asarray(index))
    n = len(index)
    codes = np.zeros(n, np.intp) if entities is None else pd.factorize(np.asarray(entities))[0]
    if len(codes) != n:
        raise DataError(f"entities must have one value per row: expected {n}, got {len(codes)}")
    keys, limit = _gap_keys(index, max_gap)
    grouped = np.argsort(codes, kind="stable")  # rows of each entity together, in row order
    starts = np.ones(n, bool)  # in grouped order: does this row start a segment?
    gaps = np.zeros(n, bool)
    if n > 1:
        same_entity = codes[grouped][1:] == codes[grouped][:-1]
        starts[1:] = ~same_entity
        if keys is not None:
            ordered = keys[grouped]
            rising = ordered[1:] > ordered[:-1]  # compared exactly, before any subtraction
            with np.errstate(over="ignore"):
                steps = np.where(rising, (ordered[1:] - ordered[:-1]).astype(np.float64), 0.0)
            if (same_entity & ~rising).any():
                i = int(np.flatnonzero(same_entity & ~rising)[0])
                raise DataError(
                    f"time column '{index.name}' is not strictly increasing at row "
                    f"{grouped[i + 1] + 1} (after row {grouped[i] + 1}); sort the rows by time "
                    "and remove duplicate times (read_series does both)"
                )
            if limit is None and same_entity.any():
                limit = GAP_FACTOR * float(np.median(steps[same_entity]))
            if limit is not None:
                gaps[1:] = same_entity & (steps > limit)
                starts |= gaps
    ids = np.empty(n, np.int64)
    ids[grouped] = np.cumsum(starts) - 1
    ids = pd.factorize(ids)[0].astype(np.int64)  # renumber by first row
    return ids, int(gaps.sum())


def _gap_keys(index: pd.Index, max_gap) -> tuple[np.ndarray | None, float | None]:
    """(T,) float positions in time (seconds for dates) or None for text, and max_gap in them."""
    if isinstance(index, pd.DatetimeIndex):
        if max_gap is not None:
            if isinstance(max_gap, (int, float, np.number)) and not isinstance(max_gap, np.timedelta64):
                raise DataError(
                    f"max_gap for a time column of dates must be a duration such as '5min', got {max_gap!r}"
                )
            try:
                max_gap = pd.Timedelta(max_gap).total_seconds()
            except (ValueError, TypeError) as error:
                raise DataError(f"max_gap {max_gap!r} is not a duration such as '5min' or '2h'") from error
        seconds = (index - index.min()) / pd.Timedelta(seconds=1) if len(index) else []
        keys = np.asarray(seconds, dtype=np.float64)
    elif pd.api.types.is_numeric_dtype(index.dtype) and not pd.api.types.is_bool_dtype(index.dtype):
        if max_gap is not None:
            number = isinstance(max_gap, (int, float, np.integer, np.floating))
            if isinstance(max_gap, (bool, np.timedelta64)) or not number:
                raise DataError(f"max_gap for a numeric time column must be a number, got {max_gap!r}")
        # integers stay integers until differenced: large ones (ns since 1970) are not exact as floats
        keys = index.to_numpy() if pd.api.types.is_integer_dtype(index.dtype) else index.to_numpy(np.float64)
        if np.isnan(keys.astype(np.float64)).any():
            raise DataError(f"time column '{index.name}' has missing values; every row needs a time")
    else:
        if max_gap is not None:
            raise DataError(
                f"time column '{index.name}' holds text, not dates or numbers, so it has no "
                "gaps to measure; leave out max_gap or give a time column of dates or numbers"
            )
        return None, None
    if max_gap is not None and not (np.isfinite(max_gap) and max_gap > 0):
        raise DataError(f"max_gap must be a positive duration or number, got {max_gap!r}")
    return keys, None if max_gap is None else float(max_gap)


def segment_rows(ids: np.ndarray) -> list[np.ndarray]:
    """Row positions of segment 0, 1, ... (each in row order) from `segment_ids`' ids (T,)."""
    ids = np.asarray(ids)
    if len(ids) == 0:
        return []
    order = np.argsort(ids, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(ids[order])) + 1)
