"""Cut a series (T, F) into windows (N, L, F) as a read-only numpy view, with aligned labels."""
from __future__ import annotations

import numpy as np

from ..exceptions import DataError


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
    values = np.asarray(series)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DataError(f"series must be 2-D (T rows, F features), got shape {values.shape}")
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise DataError(f"window must be an integer >= 1, got {window!r}")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise DataError(f"stride must be an integer >= 1, got {stride!r}")
    if len(values) < window:
        raise DataError(f"series has {len(values)} rows, shorter than the window {window}; "
                        "use a smaller window or more data")
    if label_shift > 0:
        raise DataError(f"label_shift must be <= 0 (a negative shift warns ahead of events), got {label_shift}")
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (T-L+1, F, L)
    X = view.transpose(0, 2, 1)[::stride]
    if labels is None:
        return X, None
    labels = np.asarray(labels)
    if labels.shape != (len(values),):
        raise DataError(f"labels must have one value per row: expected shape ({len(values)},), got {labels.shape}")
    ends = window_ends(len(values), window, stride)
    if label_shift == 0:
        return X, labels[ends].astype(np.int8)
    # An event within the next k rows: the running max of the labels over [end, end + k].
    ahead = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([labels, np.zeros(-label_shift, labels.dtype)]), 1 - label_shift)
    return X, ahead.max(axis=1)[ends].astype(np.int8)
