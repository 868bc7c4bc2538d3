"""Detection metrics for anomaly scores, built on scikit-learn.

Conventions (the same everywhere in lstmae): higher score = more anomalous, label 1 = anomaly,
and a row is *flagged* when ``score > threshold``.

Two entry points:

- :func:`detection_metrics` for one time series of T rows: point-wise metrics plus
  event-level ones (alarm rate, event precision / recall / F1, lead time, VUS-PR as TSB-AD
  computes it), for ``score > threshold`` or for given flags (adaptive thresholds, alarms).
  Warm-up rows without a score (``valid == False`` or NaN score) are left out of every
  metric and counted in ``n_excluded``; events are still located on the full timeline, so
  row numbers and lead times are in rows of the original series.
- :func:`sequence_metrics` for N independent sequences (one score and one label each).

Every result is a plain dict of ints, floats, None, strings, lists and dicts, ready for
``json.dumps``; :data:`METRIC_HELP` explains every key in one line, with its unit. A metric
that is undefined for the data at hand (an AUC with one class, a precision with nothing
flagged) is None, and ``notes`` says why.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
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
from lstmae.scoring.events import flag_runs, runs_touching

VUS_THRESHOLDS = 250  # TSB-AD's thre
VUS_DEFAULT_WINDOW = 125  # TSB-AD's find_length_rank when the series shows no period

POINT_ADJUST_WARNING = (
    "point_adjusted_f1 inflates results: one flagged row anywhere inside an event marks the "
    "whole event as detected, so even random scores reach a high value on long events; "
    "report it only next to the unadjusted f1"
)


# key -> (one-line explanation, unit), for every key detection_metrics and sequence_metrics
# return; nested keys are written "parent / child". The report's metric_help takes it as is.
METRIC_HELP: dict[str, tuple[str, str]] = {
    "n": ("rows evaluated: rows with a score, warm-up rows left out", "rows"),
    "n_excluded": ("rows left out: no full window covers them, or their score is NaN", "rows"),
    "n_anomalies": ("rows labelled anomalous among the rows evaluated", "rows"),
    "threshold": ("score above which a row is flagged (for an adaptive threshold: the one it "
                  "started from)", "score units"),
    "n_flagged": ("rows flagged among the rows evaluated", "rows"),
    "alarm_rate": ("share of evaluated rows that are flagged: how often someone is asked to look", "0-1"),
    "roc_auc": ("chance that an anomalous row scores higher than a normal one (0.5 = guessing, "
                "1 = perfect); ignores the threshold", "0-1"),
    "pr_auc": ("average precision over all thresholds (guessing gives the share of anomalous "
               "rows, 1 = perfect); ignores the threshold", "0-1"),
    "precision": ("share of flagged rows (sequences) that are labelled anomalous; the rest are "
                  "false alarms", "0-1"),
    "recall": ("share of anomalous rows (sequences) that are flagged", "0-1"),
    "f1": ("point-wise F1: harmonic mean of precision and recall of the flagged rows (1 = perfect)",
           "0-1"),
    "balanced_accuracy": ("mean of the recall on anomalous and on normal rows (0.5 = guessing, "
                          "1 = perfect)", "0-1"),
    "confusion_matrix": ("rows (sequences) counted by label and flag", "rows"),
    "confusion_matrix / tn": ("normal and not flagged", "rows"),
    "confusion_matrix / fp": ("normal but flagged: false alarms", "rows"),
    "confusion_matrix / fn": ("anomalous but not flagged: missed", "rows"),
    "confusion_matrix / tp": ("anomalous and flagged: found", "rows"),
    "n_events": ("labelled events: runs of consecutive anomalous rows with a score", "events"),
    "n_detected_events": ("labelled events with a flagged row inside (or within early_window rows "
                          "before)", "events"),
    "event_recall": ("share of labelled events detected (event-level recall)", "0-1"),
    "mean_lead_time": ("rows from the start of the flagged run that first reaches an event to the event's "
                       "labelled start, averaged over detected events; positive = early", "rows"),
    "n_flagged_runs": ("runs of consecutive flagged rows: what a person is alerted to", "runs"),
    "n_correct_runs": ("flagged runs that touch a labelled event (or the early_window before it)",
                       "runs"),
    "event_precision": ("share of flagged runs that touch a labelled event; the rest are false "
                        "alarms (event-level precision)", "0-1"),
    "event_f1": ("harmonic mean of event_precision and event_recall (1 = every event found, no "
                 "false alarm)", "0-1"),
    "vus_pr": ("volume under the PR surface as TSB-AD 1.5 computes it: PR-AUC averaged over labels "
               "widened by 0 .. vus_sliding_window / 2 rows, so a flag just beside an event earns "
               "part credit; ignores the threshold", "0-1"),
    "vus_sliding_window": ("TSB-AD's sliding window for vus_pr: the widest buffer is half of it on "
                           "each side of an event", "rows"),
    "point_adjusted_f1": ("F1 after counting a whole event as found when any of its rows is flagged; "
                          "inflates results, shown only to compare with papers", "0-1"),
    "counts": ("sequences counted", "sequences"),
    "counts / n": ("sequences evaluated", "sequences"),
    "counts / n_anomalies": ("sequences labelled anomalous", "sequences"),
    "counts / n_flagged": ("sequences flagged by the threshold", "sequences"),
    "notes": ("facts about the data that explain a missing (n/a) metric", "text"),
    "warnings": ("read before quoting the numbers above", "text"),
}


def detection_metrics(
    y_true,
    scores,
    threshold: float | None = None,
    *,
    flags=None,
    valid=None,
    early_window: int = 0,
    point_adjust: bool = False,
    vus_sliding_window: int | None = None,
    vus: bool = True,
) -> dict:
    """Point-wise and event-level metrics for the scores of one time series.

    Parameters
    ----------
    y_true : (T,) array of 0/1 or bool
        True labels per row, 1 = anomaly.
    scores : (T,) array of float
        Anomaly score per row, higher = more anomalous. NaN marks a row without a score.
    threshold : float, optional
        Rows with ``score > threshold`` are flagged. Needed unless ``flags`` is given.
    flags : (T,) array of 0/1, optional
        The flags to evaluate instead of ``score > threshold``: from an adaptive threshold
        or after alarm post-processing (``lstmae.scoring.alarms_from_flags``). ``threshold``
        is then only reported (it may be None).
    valid : (T,) bool array, optional
        False for rows without a real score (warm-up rows no full window covers). Those
        rows, and rows with a NaN score, are excluded from every metric.
    early_window : int
        A labelled event counts as detected when a row in ``[start - early_window, end]`` is
        flagged, and a run of flagged rows counts as right when it touches such a range.
    point_adjust : bool
        Also report ``point_adjusted_f1`` (with a warning in ``warnings``: it inflates
        results).
    vus_sliding_window : int, optional
        TSB-AD's sliding window for :func:`vus_pr`; default :func:`default_vus_window`
        (``min(100, median event length)``). For numbers comparable with the TSB-AD
        leaderboard pass ``vus_window_from_period(series)``.
    vus : bool
        False skips VUS-PR (``vus_pr`` is None), the slowest metric, when only the flags
        matter.

    Returns
    -------
    dict
        ``n`` (rows evaluated), ``n_excluded``, ``n_anomalies``, ``threshold``, ``n_flagged``,
        ``alarm_rate``, ``roc_auc``, ``pr_auc`` (average precision), ``precision``, ``recall``,
        ``f1``, ``balanced_accuracy``, ``confusion_matrix`` ({tn, fp, fn, tp}), ``n_events``,
        ``n_detected_events``, ``event_recall``, ``mean_lead_time`` (rows; positive =
        flagged before the event began), ``n_flagged_runs``, ``n_correct_runs``,
        ``event_precision``, ``event_f1``, ``vus_pr``, ``vus_sliding_window``, ``notes``
        (list of str) and, with ``point_adjust``, ``point_adjusted_f1`` and ``warnings``.
        :data:`METRIC_HELP` explains each key in one line, with its unit.
    """
    labels = _as_labels(y_true, "y_true")
    scores = _as_scores(scores, len(labels))
    if flags is None:
        threshold = _as_threshold(threshold)
    else:
        threshold = None if threshold is None else _as_threshold(threshold)
        flags = _as_flags(flags, len(labels))
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
    flagged = included & (scores > threshold if flags is None else flags)
    notes: list[str] = []

    pointwise = _pointwise_metrics(labels[included], scores[included], flagged[included], notes)
    n_flagged = int(flagged.sum())
    result = {
        "n": int(included.sum()),
        "n_excluded": int((~included).sum()),
        "n_anomalies": int(labels[included].sum()),
        "threshold": threshold,
        "n_flagged": n_flagged,
        "alarm_rate": n_flagged / int(included.sum()),
        **pointwise,
    }

    starts, ends = flag_runs(labels)
    included_before = np.concatenate([[0], np.cumsum(included)])
    has_scored_row = included_before[ends + 1] - included_before[starts] > 0
    if (~has_scored_row).any():
        notes.append(
            f"{int((~has_scored_row).sum())} event(s) lie entirely in excluded rows and are "
            "not counted"
        )
    starts, ends = starts[has_scored_row], ends[has_scored_row]
    result.update(_event_metrics(starts, ends, flagged, early_window))
    result.update(_run_metrics(starts, ends, flagged, early_window, result["event_recall"]))
    if result["n_events"] == 0:
        notes.append("no labelled event among the scored rows: event_recall, event_f1 and mean_lead_time are "
                     "undefined")
    elif result["n_detected_events"] == 0:
        notes.append("no labelled event was detected: mean_lead_time is undefined")
    if result["n_flagged_runs"] == 0:
        notes.append("no alarm was raised: event_precision and event_f1 are undefined")

    if not vus:
        result["vus_pr"] = None
        result["vus_sliding_window"] = None
    elif len(starts) == 0 or result["n_anomalies"] == result["n"]:
        result["vus_pr"] = None
        result["vus_sliding_window"] = None
        notes.append("vus_pr needs at least one anomalous and one normal scored row")
    else:
        if vus_sliding_window is None:
            vus_sliding_window = default_vus_window(labels)
        # As TSB-AD on a series whose unscored rows were dropped.
        result["vus_pr"] = vus_pr(labels[included], scores[included], sliding_window=vus_sliding_window)
        result["vus_sliding_window"] = int(vus_sliding_window)

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


def vus_pr(y_true, scores, *, sliding_window: int, n_thresholds: int = VUS_THRESHOLDS) -> float:
    """Volume under the PR surface (Paparrizos et al., VLDB 2022), as TSB-AD 1.5 computes it.

    The same number as TSB-AD's ``get_metrics(scores, y_true, slidingWindow=sliding_window)
    ["VUS-PR"]`` (its ``RangeAUC_volume_opt``; tests/fixtures/vus_pr_tsbad.json holds TSB-AD's
    values on seeded cases), so results compare with the TSB-AD leaderboard when the same
    sliding window is used (the leaderboard takes it from the series' period,
    :func:`vus_window_from_period`). For each buffer ``w = 0 .. sliding_window``, every event
    ``[s, e]`` is widened by ``w // 2`` rows on each side with soft labels
    ``sqrt(1 - d / w)`` at distance ``d``; at each of ``n_thresholds`` thresholds (scores at
    evenly spaced ranks; a row is flagged when ``score >= threshold``) the buffer rows count as
    found only where flagged, recall is scaled by the share of widened events with a flag
    (existence reward), and the average precision over the thresholds is taken. VUS-PR is the
    mean of those average precisions over the ``sliding_window + 1`` buffers.

    Parameters
    ----------
    y_true : (T,) array of 0/1
        True labels per row; needs at least one 1.
    scores : (T,) array of float
        Anomaly scores, higher = more anomalous; no NaN (leave unscored rows out first).
    sliding_window : int
        TSB-AD's ``slidingWindow``, >= 0: the widest buffer (``sliding_window // 2`` rows per side).
    n_thresholds : int
        TSB-AD's ``thre`` (250).

    Returns
    -------
    float
        VUS-PR in [0, 1].
    """
    labels = _as_labels(y_true, "y_true")
    scores = _as_scores(scores, len(labels))
    if np.isnan(scores).any():
        raise DataError("vus_pr needs a score for every row; leave rows with a NaN score out first")
    if not isinstance(sliding_window, numbers.Integral) or sliding_window < 0:
        raise DataError(f"sliding_window must be an integer >= 0, got {sliding_window!r}")
    if not isinstance(n_thresholds, numbers.Integral) or n_thresholds < 1:
        raise DataError(f"n_thresholds must be an integer >= 1, got {n_thresholds!r}")
    if not labels.any():
        raise DataError("vus_pr needs at least one anomalous row in y_true, got none")
    n_rows = len(labels)
    anomalous = labels == 1
    starts, ends = flag_runs(anomalous)
    descending = -np.sort(-scores)
    thresholds = descending[np.linspace(0, n_rows - 1, n_thresholds).astype(int)]
    # first_flagged[i]: the first threshold index at which row i is flagged (thresholds only fall).
    first_flagged = np.searchsorted(-thresholds, -scores, side="left")

    def flagged_sum(weights):
        """For each threshold k: the sum of weights over the rows flagged at k."""
        return np.cumsum(np.bincount(first_flagged, weights=weights, minlength=n_thresholds + 1))[:n_thresholds]

    n_flagged = flagged_sum(np.ones(n_rows))
    n_positive = float(anomalous.sum())
    found_anomalous = flagged_sum(anomalous.astype(np.float64))
    precisions = []
    for window in range(int(sliding_window) + 1):
        half = window // 2
        soft = np.zeros(n_rows)
        for start, end in zip(starts, ends):
            after = np.arange(end + 1, min(end + half + 1, n_rows))
            soft[after] += np.sqrt(1 - (after - end) / window)
            before = np.arange(max(start - half, 0), start)
            soft[before] += np.sqrt(1 - (start - before) / window)
        soft = np.where(anomalous, 0.0, np.minimum(soft, 1.0))  # buffer rows' labels
        # The widened events, merged where they overlap, and the first threshold flagging each.
        groups = _widened_events(starts, ends, half, n_rows)
        first_in_group = [first_flagged[start : end + 1].min() for start, end in groups]
        found_groups = np.cumsum(np.bincount(first_in_group, minlength=n_thresholds + 1))[:n_thresholds]
        found_buffer = flagged_sum(soft)
        true_positives = found_anomalous + found_buffer
        positives = (n_positive + n_positive + found_buffer) / 2  # TSB-AD's (P + N_labels) / 2
        recall = np.minimum(true_positives / positives, 1.0) * found_groups / len(groups)
        precision = true_positives / n_flagged
        precisions.append(float(np.dot(np.diff(recall, prepend=0.0), precision)))
    return float(np.mean(precisions))


def _widened_events(starts, ends, half: int, n_rows: int) -> list[tuple[int, int]]:
    """Events [s, e] widened to [s - half, e + half], merged where they overlap (TSB-AD's new_sequence)."""
    groups = []
    group_start = max(int(starts[0]) - half, 0)
    for end, next_start in zip(ends[:-1], starts[1:]):
        if end + half < next_start - half:
            groups.append((group_start, int(end) + half))
            group_start = int(next_start) - half
    groups.append((group_start, min(int(ends[-1]) + half, n_rows - 1)))
    return groups


def vus_window_from_period(values, *, max_lag: int = 400, fallback: int = VUS_DEFAULT_WINDOW) -> int:
    """The sliding window TSB-AD's benchmark gives VUS-PR: the period of a series, from its ACF.

    A numpy copy of TSB-AD 1.5's ``find_length_rank(values, rank=1)``: the lag (3 .. 300) of
    the highest local maximum of the autocorrelation over lags 3 .. ``max_lag`` of the first
    20,000 values; ``fallback`` (125) when there is none. values: (T,) one feature; for
    (T, F) with F > 1 TSB-AD gives 0 (no buffer), and so does this.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values.reshape(-1) if values.ndim == 2 and values.shape[1] == 1 else values
    if values.ndim != 1:
        return 0
    values = values[:20000]
    if not np.isfinite(values).all() or len(values) < 5:
        return fallback
    base = 3
    centred = values - values.mean()
    n_fft = 1 << int(np.ceil(np.log2(2 * len(centred) - 1)))
    spectrum = np.fft.rfft(centred, n_fft)
    covariance = np.fft.irfft(spectrum * np.conj(spectrum), n_fft)[: min(max_lag, len(values) - 1) + 1]
    if covariance[0] <= 0:
        return fallback
    correlation = (covariance / covariance[0])[base:]
    peaks = np.flatnonzero((correlation[1:-1] > correlation[:-2]) & (correlation[1:-1] > correlation[2:])) + 1
    if peaks.size == 0:
        return fallback
    best = int(peaks[np.argmax(correlation[peaks])])
    if best < 3 or best > 300:
        return fallback
    return best + base


def default_vus_window(y_true) -> int:
    """``min(100, median event length)``: the sliding window VUS-PR uses unless told otherwise.

    detection_metrics sees labels and scores but not the series, so it cannot take the
    period as TSB-AD's benchmark does; pass ``vus_sliding_window=vus_window_from_period(x)``
    for leaderboard-comparable numbers. Capped at the median event length so the buffers never
    dwarf a typical event, and at 100 rows (TSB-AD's own default) to bound the cost.
    """
    starts, ends = flag_runs(_as_labels(y_true, "y_true"))
    if len(starts) == 0:
        return 0
    return int(min(100, np.median(ends - starts + 1)))


# The name lstmae.evaluation exports (the sliding window was called the maximum buffer).
default_vus_max_buffer = default_vus_window


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
    # the lead is counted from the start of the flagged run that first reaches the event: a run that began before
    # the labelled start and runs into it was early, though the search starts at start - early_window
    unflagged = np.where(flagged, -1, np.arange(len(flagged)))
    run_start = np.maximum.accumulate(unflagged) + 1  # run_start[i]: where the flagged run holding row i began
    lead_times = starts[detected] - run_start[first_hit[detected]]
    return {
        "n_events": int(n_events),
        "n_detected_events": int(detected.sum()),
        "event_recall": float(detected.mean()),
        "mean_lead_time": float(lead_times.mean()) if detected.any() else None,
    }


def event_reach(starts, ends, n_rows: int, early_window: int = 0) -> np.ndarray:
    """(T,) bool: the rows where an alarm counts for a labelled event ``[starts[i], ends[i]]`` (inclusive),
    each widened by ``early_window`` rows before its start."""
    covered = np.zeros(n_rows + 1, np.int64)  # +1 at each widened event's start, -1 after its end
    np.add.at(covered, np.maximum(np.asarray(starts) - early_window, 0), 1)
    np.add.at(covered, np.asarray(ends) + 1, -1)
    return np.cumsum(covered[:-1]) > 0


def _run_metrics(starts, ends, flagged, early_window: int, event_recall) -> dict:
    """Event precision and F1: a run of flagged rows is right when it touches a labelled event
    ``[starts[i] - early_window, ends[i]]``."""
    run_starts, run_ends = flag_runs(flagged)
    if len(run_starts) == 0:
        return {"n_flagged_runs": 0, "n_correct_runs": 0, "event_precision": None, "event_f1": None}
    correct = runs_touching(run_starts, run_ends, event_reach(starts, ends, len(flagged), early_window))
    precision = float(correct.mean())
    if event_recall is None:
        f1 = None
    else:
        f1 = 0.0 if precision + event_recall == 0 else 2 * precision * event_recall / (precision + event_recall)
    return {
        "n_flagged_runs": int(len(run_starts)),
        "n_correct_runs": int(correct.sum()),
        "event_precision": precision,
        "event_f1": f1,
    }


def _as_flags(flags, n_rows: int) -> np.ndarray:
    values = np.asarray(flags)
    if values.shape != (n_rows,):
        raise DataError(f"flags must have shape ({n_rows},) like y_true, got {values.shape}")
    if values.dtype == bool:
        return values
    try:
        values = np.nan_to_num(values.astype(np.float64), nan=0.0)
    except (TypeError, ValueError):
        raise DataError("flags must be 0 (normal) or 1 (anomaly), got non-numeric values") from None
    bad = (values != 0) & (values != 1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"flags must be 0 (normal) or 1 (anomaly), got {values[row].item()!r} at row {row}")
    return values == 1


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
