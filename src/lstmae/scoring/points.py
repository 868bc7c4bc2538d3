"""Map per-window values back to the time points (rows) of the series the windows were cut from.

A series of T rows is cut into N = (T - window) // stride + 1 windows; window i covers rows
[i*stride, i*stride + window). The output always has exactly T rows; rows without a value
are NaN and marked invalid (never zero-padded, never dropped).

- how="end" (causal, the default): row r takes the value of the latest window that has ended
  by r (end <= r), i.e. the latest score known at time r; with stride > 1 a window's value is
  held until the next window ends. Invalid: the warm-up rows before the first window's end,
  and rows that no window covers (the tail after the last window; gaps when stride > window).
- how="max" / "mean": the maximum / mean over all windows covering row r. Invalid: rows that
  no window covers.
- how="point" (in `lstmae.series`, from per-step values, not window values): row r takes the
  mean, over the windows covering it, of each window's value at r's own step (`add_steps`), so
  a short anomaly raises its own rows, not the 2 * window - 1 rows around it that "max" does.

`smooth_points` then optionally replaces each row's value by the mean of the rows centred on it
(the estimator's `smooth`).

Rows r = q*stride + p that share a phase p are covered by the same number of windows,
n = (window - 1 - p) // stride + 1, namely windows q-n+1 .. q (those that exist). So each
phase is a strided slice of the output filled from a sliding window over the window values:
O(T) time and memory, no (N, window) index matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import correlate1d, maximum_filter1d

from lstmae.data.validation import check_integer
from lstmae.data.windowing import n_windows as count_windows
from lstmae.exceptions import DataError

AGGREGATIONS = ("end", "max", "mean")


def window_to_points(window_values, n_rows: int, window: int, stride: int = 1, how: str = "end"):
    """Spread window values (N,) or (N, K) over the T = n_rows rows they were computed from.

    Returns (point_values, valid): point_values (T,) or (T, K) float64 with NaN where invalid,
    valid (T,) bool. See the module docstring for which window each row takes with `how`.
    Window values must be finite.
    """
    if how not in AGGREGATIONS:
        raise DataError(f"unknown how={how!r}; use one of {', '.join(AGGREGATIONS)}")
    check_integer(window, "window")
    check_integer(stride, "stride")
    check_integer(n_rows, "n_rows", minimum=0)
    values = np.asarray(window_values, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise DataError(f"window_values must be (N,) or (N, K); got shape {values.shape}")
    n_windows = count_windows(n_rows, window, stride)
    if values.shape[0] != n_windows:
        raise DataError(
            f"expected {n_windows} window values for {n_rows} rows with window={window} and "
            f"stride={stride}, got {values.shape[0]}; pass the rows, window and stride the "
            "windows were cut with"
        )
    finite = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
    bad = np.flatnonzero(~finite)
    if bad.size:
        raise DataError(f"window_values contain NaN/inf in {bad.size} windows (first: window {bad[0]})")

    points = np.full((n_rows,) + values.shape[1:], np.nan)
    valid = np.zeros(n_rows, dtype=bool)
    if n_windows == 0:
        return points, valid

    for phase, phase_rows, n_covering, last_q in _phases(n_rows, window, stride, n_windows):
        # how="end": row q takes window q - first_q, the latest that has ended by it;
        # first_q = ceil((window - 1 - phase) / stride) rows of this phase are warm-up.
        first_q = -(-(window - 1 - phase) // stride) if how == "end" else 0
        if last_q < first_q:
            continue
        if how == "end":
            phase_values = values[: last_q + 1 - first_q]
        elif how == "max":
            phase_values = _trailing_max(values, n_covering)[: last_q + 1]
        else:
            phase_values = _trailing_mean(values, n_covering, last_q)
        points[phase_rows][first_q : last_q + 1] = phase_values
        valid[phase_rows][first_q : last_q + 1] = True
    return points, valid


def covering_quantile(window_values, n_rows: int, window: int, stride: int = 1, q: float = 0.0) -> np.ndarray:
    """(T,) the q-quantile (linear between order statistics; q=0: the smallest) of the values (N,) of the windows
    that cover each of the T = n_rows rows; NaN for rows no window covers. Window values may be inf."""
    values = np.nan_to_num(np.asarray(window_values, dtype=np.float64), posinf=np.finfo(np.float64).max)
    n_windows = count_windows(n_rows, window, stride)
    if values.shape != (n_windows,):
        raise DataError(f"expected {n_windows} window values for {n_rows} rows with window={window} and "
                        f"stride={stride}, got shape {values.shape}")
    out = np.full(n_rows, np.nan)
    for _, phase_rows, n_covering, last_q in _phases(n_rows, window, stride, n_windows):
        padded = np.concatenate([values, np.full(n_covering - 1, np.nan)])[: last_q + 1]  # NaN: no such window
        out[phase_rows][: last_q + 1] = pd.Series(padded).rolling(n_covering, min_periods=1).quantile(q).to_numpy()
    return out


def _phases(n_rows: int, window: int, stride: int, n_windows: int):
    """(phase, phase_rows, n_covering, last_q) for each phase whose rows windows cover: the rows phase,
    phase + stride, ... (the slice `phase_rows`, position q being row q*stride + phase) are covered by windows
    q - n_covering + 1 .. q (those that exist), and the rows past position last_q lie beyond the last window."""
    for phase in range(min(stride, n_rows)):
        n_covering = (window - 1 - phase) // stride + 1
        last_q = min(len(range(phase, n_rows, stride)) - 1, n_windows + n_covering - 2)
        if n_covering >= 1 and last_q >= 0:  # stride > window: rows in the gaps between windows have none
            yield phase, slice(phase, n_rows, stride), n_covering, last_q


def smooth_points(values, width: int) -> np.ndarray:
    """Row values (T,) -> each the mean of the `width` finite values centred on it (fewer at the ends, pandas'
    ``rolling(width, center=True, min_periods=1)``), as a new array; NaN and inf rows keep their value and are
    left out of their neighbours' means. `width` 1: the values as they are (the same array)."""
    check_integer(width, "width")
    values = np.asarray(values, dtype=np.float64)
    if width == 1:
        return values
    finite = np.isfinite(values)
    out = values.copy()
    out[finite] = pd.Series(values[finite]).rolling(width, center=True, min_periods=1).mean().to_numpy()
    return out


def _trailing_max(values: np.ndarray, size: int) -> np.ndarray:
    """(N + size - 1, ...): element q is the max of values[q-size+1 .. q] (those that exist)."""
    padding = np.full((size - 1,) + values.shape[1:], -np.inf)
    return maximum_filter1d(
        np.concatenate([values, padding]),
        size=size,
        axis=0,
        mode="constant",
        cval=-np.inf,
        origin=(size - 1) // 2,  # the window [q - size + 1, q] instead of one centred on q
    )


def _trailing_mean(values: np.ndarray, size: int, last_q: int) -> np.ndarray:
    """(last_q + 1, ...): element q is the mean of values[q-size+1 .. q] (those that exist).

    Each sum is taken on its own (a direct correlation, not differences of running sums, which one
    extreme window would leave at 0 for every later row).
    """
    padding = np.zeros((size - 1,) + values.shape[1:])
    sums = correlate1d(np.concatenate([values, padding]), np.ones(size), axis=0, mode="constant", cval=0.0,
                       origin=(size - 1) // 2)[: last_q + 1]
    q = np.arange(last_q + 1)
    counts = np.minimum(q, len(values) - 1) + 1 - np.maximum(q - size + 1, 0)
    return sums / counts.reshape((-1,) + (1,) * (values.ndim - 1))


def add_steps(sums: np.ndarray, counts: np.ndarray | None, step_values, first_window: int, stride: int) -> None:
    """Add per-step values (n, L, K) of windows first_window .. first_window + n - 1 to running row
    sums (T, K) and counts (T,) (None: not counted), in place: sums / counts is then each row's mean
    over the windows covering it of the value at its step (how="point"); windows may come in chunks."""
    step_values = np.asarray(step_values, dtype=np.float64)
    starts = (first_window + np.arange(len(step_values))) * stride
    for step in range(step_values.shape[1]):  # within one step the rows are distinct
        sums[starts + step] += step_values[:, step]
        if counts is not None:
            counts[starts + step] += 1
