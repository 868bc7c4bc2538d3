"""Detection metrics for anomaly scores, built on scikit-learn.

Conventions (the same everywhere in lstmae): higher score = more anomalous, label 1 = anomaly,
and a row is *flagged* when ``score > threshold``.

Two entry points:

- :func:`detection_metrics` for one time series of T rows: point-wise metrics plus
  event-level ones (event recall, lead time, VUS-PR). Warm-up rows without a score
  (``valid == False`` or NaN score) are left out of every metric and counted in
  ``n_excluded``; events are still located on the full timeline, so row numbers and lead
  times are in rows of the original series.
- :func:`sequence_metrics` for N independent sequences (one score and one label each).

Every result is a plain dict of ints, floats, None, strings, lists and dicts, ready for
``json.dumps``. A metric that is undefined for the data at hand (an AUC with one class, a
precision with nothing flagged) is None, and ``notes`` says why.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy.ndimage import distance_transform_edt
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from lstmae.exceptions import DataError

POINT_ADJUST_WARNING = (
    "point_adjusted_f1 inflates results: one flagged row anywhere inside an event marks the "
    "whole event as detected, so even random scores reach a high value on long events; "
    "report it only next to the unadjusted f1"
)


def detection_metrics(
    y_true,
    scores,
    threshold: float,
    *,
    valid=None,
    early_window: int = 0,
    point_adjust: bool = False,
    vus_max_buffer: int | None = None,
) -> dict:
    """Point-wise and event-level metrics for the scores of one time series.

    Parameters
    ----------
    y_true : (T,) array of 0/1 or bool
        True labels per row, 1 = anomaly.
    scores : (T,) array of float
        Anomaly score per row, higher = more anomalous. NaN marks a row without a score.
    threshold : float
        Rows with ``score > threshold`` are flagged.
    valid : (T,) bool array, optional
        False for rows without a real score (warm-up rows no full window covers). Those
        rows, and rows with a NaN score, are excluded from every metric.
    early_window : int
        An event counts as detected when a row in ``[start - early_window, end]`` is
        flagged; flagging up to ``early_window`` rows before an event begins is a hit.
    point_adjust : bool
        Also report ``point_adjusted_f1`` (with a warning in ``warnings``: it inflates
        results).
    vus_max_buffer : int, optional
        Largest buffer for :func:`vus_pr`; default ``min(100, median event length)``.

    Returns
    -------
    dict
        ``n`` (rows evaluated), ``n_excluded``, ``n_anomalies``, ``threshold``, ``roc_auc``,
        ``pr_auc`` (average precision), ``precision``, ``recall``, ``f1``,
        ``balanced_accuracy``, ``confusion_matrix`` ({tn, fp, fn, tp}), ``n_events``,
        ``n_detected_events``, ``event_recall``, ``mean_lead_time`` (rows; positive =
        flagged before the event began), ``vus_pr``, ``vus_max_buffer``, ``notes`` (list
        of str) and, with ``point_adjust``, ``point_adjusted_f1`` and ``warnings``.
    """
    labels = _as_labels(y_true, "y_true")
    scores = _as_scores(scores, len(labels))
    threshold = _as_threshold(threshold)
    if not isinstance(early_window, numbers.Integral) or early_window < 0:
        raise DataError(f"early_window must be an integer >= 0, got {early_window!r}")
    included = ~np.isnan(scores)
    if valid is not None:
        included &= _as_valid(valid, len(labels))
    if not included.any():
        raise DataError(
            f"no rows to evaluate: all {len(labels)} rows are invalid or have a NaN score; "
            "score a series longer than one window"
        )
    flagged = included & (scores > threshold)
    notes: list[str] = []

    pointwise = _pointwise_metrics(labels[included], scores[included], flagged[included], notes)
    result = {
        "n": int(included.sum()),
        "n_excluded": int((~included).sum()),
        "n_anomalies": int(labels[included].sum()),
        "threshold": threshold,
        **pointwise,
    }

    starts, ends = _runs(labels)
    included_before = np.concatenate([[0], np.cumsum(included)])
    has_scored_row = included_before[ends + 1] - included_before[starts] > 0
    if (~has_scored_row).any():
        notes.append(
            f"{int((~has_scored_row).sum())} event(s) lie entirely in excluded rows and are "
            "not counted"
        )
    starts, ends = starts[has_scored_row], ends[has_scored_row]
    result.update(_event_metrics(starts, ends, flagged, early_window))

    if len(starts) == 0 or result["n_anomalies"] == result["n"]:
        result["vus_pr"] = None
        result["vus_max_buffer"] = None
        notes.append("vus_pr needs at least one anomalous and one normal scored row")
    else:
        if vus_max_buffer is None:
            vus_max_buffer = default_vus_max_buffer(labels)
        # Soft labels come from the full timeline; only scored rows enter the average.
        result["vus_pr"] = vus_pr(labels, scores, max_buffer=vus_max_buffer, mask=included)
        result["vus_max_buffer"] = int(vus_max_buffer)

    if point_adjust:
        adjusted = flagged.copy()
        for start, end in zip(starts, ends):
            if flagged[start : end + 1].any():
                adjusted[start : end + 1] = True
        adjusted &= included
        result["point_adjusted_f1"] = _f1_or_none(labels[included], adjusted[included])
        result["warnings"] = [POINT_ADJUST_WARNING]
    result["notes"] = notes
    return result


def sequence_metrics(y_true, scores, threshold: float) -> dict:
    """Metrics for N independent sequences, one score and one label each.

    Parameters
    ----------
    y_true : (N,) array of 0/1 or bool
        1 = anomalous sequence.
    scores : (N,) array of float
        Anomaly score per sequence (no NaN: every sequence has a score).
    threshold : float
        Sequences with ``score > threshold`` are flagged.

    Returns
    -------
    dict
        ``roc_auc``, ``pr_auc``, ``precision``, ``recall``, ``f1``, ``balanced_accuracy``,
        ``confusion_matrix`` ({tn, fp, fn, tp}), ``counts`` ({n, n_anomalies, n_flagged}),
        ``threshold`` and ``notes``.
    """
    labels = _as_labels(y_true, "y_true")
    scores = _as_scores(scores, len(labels))
    threshold = _as_threshold(threshold)
    if np.isnan(scores).any():
        first = int(np.flatnonzero(np.isnan(scores))[0])
        raise DataError(
            f"scores has {int(np.isnan(scores).sum())} NaN value(s) (first at sequence "
            f"{first}); every sequence needs a score"
        )
    flagged = scores > threshold
    notes: list[str] = []
    return {
        "threshold": threshold,
        **_pointwise_metrics(labels, scores, flagged, notes),
        "counts": {
            "n": len(labels),
            "n_anomalies": int(labels.sum()),
            "n_flagged": int(flagged.sum()),
        },
        "notes": notes,
    }


def vus_pr(y_true, scores, *, max_buffer: int, mask=None) -> float:
    """Volume under the PR surface: mean average precision over softened labels.

    Our implementation of VUS-PR (Paparrizos et al., "Volume Under the Surface", VLDB 2022),
    simplified: for each buffer size ``l = 0 .. max_buffer`` the labels are softened so that
    a normal row at distance ``d`` (1 <= d <= l) from the nearest anomalous row gets label
    ``1 - d / (l + 1)`` (a linear ramp over ``l`` rows on each side of each event), and the
    average precision is computed with those soft labels (a row with label ``w`` counts as
    ``w`` of a true positive and ``1 - w`` of a false positive: scikit-learn's
    ``average_precision_score`` with such sample weights gives the same value, but here the
    scores are sorted once for all buffer sizes). The result is the mean over the
    ``max_buffer + 1`` buffer sizes. Unlike the paper there is no existence reward in
    recall and the ramp is linear, so values compare between lstmae runs, not with
    published VUS numbers. As in the paper, a detector that scores exactly the labelled rows
    highest stays below 1 when ``max_buffer > 0``: the buffer rows count partly as positives.

    Parameters
    ----------
    y_true : (T,) array of 0/1
        True labels per row; needs at least one 1.
    scores : (T,) array of float
        Anomaly scores, higher = more anomalous; rows outside ``mask`` may be NaN.
    max_buffer : int
        Largest buffer size, >= 0.
    mask : (T,) bool array, optional
        Rows that enter the average precision (labels are softened on all rows first).

    Returns
    -------
    float
        VUS-PR in [0, 1]; with ``max_buffer=0`` it equals the average precision.
    """
    labels = _as_labels(y_true, "y_true")
    scores = np.asarray(scores, dtype=np.float64)
    if not isinstance(max_buffer, numbers.Integral) or max_buffer < 0:
        raise DataError(f"max_buffer must be an integer >= 0, got {max_buffer!r}")
    mask = np.ones(len(labels), bool) if mask is None else np.asarray(mask, bool)
    if not labels[mask].any():
        raise DataError("vus_pr needs at least one anomalous scored row in y_true, got none")
    distance = distance_transform_edt(labels == 0)[mask]
    kept_scores = scores[mask]
    order = np.argsort(-kept_scores, kind="stable")
    sorted_distance = distance[order]
    # Each distinct score is one threshold: its last row in sorted order closes the group.
    last_of_ties = np.append(np.flatnonzero(np.diff(kept_scores[order])), len(order) - 1)
    n_flagged = last_of_ties + 1
    precisions = []
    for buffer in range(int(max_buffer) + 1):
        soft_labels = np.clip(1.0 - sorted_distance / (buffer + 1), 0.0, 1.0)
        true_positives = np.cumsum(soft_labels)[last_of_ties]
        precision = true_positives / n_flagged
        recall = true_positives / true_positives[-1]
        precisions.append(np.sum(np.diff(recall, prepend=0.0) * precision))
    return float(np.mean(precisions))


def default_vus_max_buffer(y_true) -> int:
    """``min(100, median event length)``: the buffer VUS-PR uses unless told otherwise.

    Capped at the median event length so the soft margin never dwarfs a typical event,
    and at 100 rows to bound the cost (one average precision per buffer size).
    """
    starts, ends = _runs(_as_labels(y_true, "y_true"))
    if len(starts) == 0:
        return 0
    return int(min(100, np.median(ends - starts + 1)))


def _pointwise_metrics(labels, scores, flagged, notes: list[str]) -> dict:
    """AUCs, precision/recall/F1, balanced accuracy and confusion matrix; None if undefined."""
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, flagged, labels=[0, 1]).ravel())
    both_classes = 0 < labels.sum() < len(labels)
    if not both_classes:
        only = "anomalous (1)" if labels.all() else "normal (0)"
        notes.append(
            f"y_true has only {only} rows: roc_auc, pr_auc and balanced_accuracy are undefined"
        )
    if tp + fp == 0:
        notes.append("nothing is flagged above the threshold: precision is undefined")
    if tp + fn == 0:
        notes.append("no anomalous rows: recall is undefined")
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else None,
        "pr_auc": float(average_precision_score(labels, scores)) if both_classes else None,
        "precision": float(precision_score(labels, flagged)) if tp + fp else None,
        "recall": float(recall_score(labels, flagged)) if tp + fn else None,
        "f1": _f1_or_none(labels, flagged),
        "balanced_accuracy": (
            float(balanced_accuracy_score(labels, flagged)) if both_classes else None
        ),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


def _f1_or_none(labels, flagged) -> float | None:
    """F1 = 2tp / (2tp + fp + fn); None when there is neither an anomaly nor a flag."""
    if not (labels.any() or flagged.any()):
        return None
    return float(f1_score(labels, flagged))


def _event_metrics(starts, ends, flagged, early_window: int) -> dict:
    """Event recall and mean lead time for events ``[starts[i], ends[i]]`` (inclusive rows)."""
    n_events = len(starts)
    if n_events == 0:
        return {
            "n_events": 0,
            "n_detected_events": 0,
            "event_recall": None,
            "mean_lead_time": None,
        }
    # next_flagged[i]: the first flagged row at or after i (len(flagged) if none).
    positions = np.where(flagged, np.arange(len(flagged)), len(flagged))
    next_flagged = np.minimum.accumulate(positions[::-1])[::-1]
    first_hit = next_flagged[np.maximum(starts - early_window, 0)]
    detected = first_hit <= ends
    lead_times = starts[detected] - first_hit[detected]
    return {
        "n_events": int(n_events),
        "n_detected_events": int(detected.sum()),
        "event_recall": float(detected.mean()),
        "mean_lead_time": float(lead_times.mean()) if detected.any() else None,
    }


def _runs(labels) -> tuple[np.ndarray, np.ndarray]:
    """Start and end rows (inclusive) of the contiguous runs of 1 in a (T,) 0/1 array."""
    edges = np.diff(np.concatenate([[0], labels.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def _as_labels(y_true, name: str) -> np.ndarray:
    labels = np.asarray(y_true)
    if labels.ndim != 1 or len(labels) == 0:
        raise DataError(f"{name} must be a non-empty 1-D array, got shape {labels.shape}")
    if labels.dtype == bool:
        return labels.astype(np.int8)
    try:
        bad = ~np.isin(labels, [0, 1])
    except TypeError:
        bad = np.ones(len(labels), bool)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{name} must hold only 0 (normal) and 1 (anomaly), got {labels[row].item()!r} at row "
            f"{row}; recode the labels to 0/1"
        )
    return labels.astype(np.int8)


def _as_scores(scores, n_rows: int) -> np.ndarray:
    try:
        values = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("scores must be numbers, got non-numeric values") from None
    if values.shape != (n_rows,):
        raise DataError(
            f"scores must have shape ({n_rows},) like y_true, got {values.shape}; "
            "pass one score per label"
        )
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise DataError(
            f"scores has an infinite value at row {row}; use NaN for rows without a score"
        )
    return values


def _as_valid(valid, n_rows: int) -> np.ndarray:
    mask = np.asarray(valid)
    if mask.shape != (n_rows,) or mask.dtype != bool:
        raise DataError(
            f"valid must be a bool array of shape ({n_rows},), got {mask.dtype} {mask.shape}"
        )
    return mask


def _as_threshold(threshold) -> float:
    if (
        not isinstance(threshold, numbers.Real)
        or isinstance(threshold, bool)
        or not math.isfinite(threshold)
    ):
        raise DataError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)
