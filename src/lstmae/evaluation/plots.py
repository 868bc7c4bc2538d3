"""Figures for training, scores, alarms and reconstructions (matplotlib, object API, no pyplot).

Every ``plot_*`` function builds one ``matplotlib.figure.Figure`` and returns it: no file is
written and no pyplot state is touched, so figures can be made from several threads and are
freed like any object. :func:`figure_png` renders a figure to PNG bytes (1200 px wide); the
report embeds those bytes and ``lstmae.data.io`` writes them to files.

Conventions: higher score = more anomalous, a row is flagged when ``score > threshold``,
label 1 = anomaly, alarm 1 = flagged. NaN scores (warm-up rows with no score) are not drawn.
Long series (more than 20,000 rows) are drawn in 10,000 bins that keep each bin's extremes,
so a single spike, alarm or labelled row stays visible.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from lstmae.exceptions import DataError
from lstmae.data.validation import is_integer
from lstmae.scoring.events import flag_runs

DPI = 100
WIDTH_INCHES = 12  # 1200 px
MAX_DRAWN_POINTS = 20_000
DOWNSAMPLED_POINTS = 10_000
MAX_HEATMAP_COLUMNS = 2_000
ALARM_COLOR = "tab:red"
LABEL_COLOR = "tab:green"


def figure_png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes, 1200 pixels wide (in memory; nothing is written)."""
    if not isinstance(fig, Figure):
        raise TypeError(f"figure_png takes a matplotlib Figure, got {type(fig).__name__}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def plot_training_history(history: dict) -> Figure:
    """Training (and validation) loss per epoch.

    Parameters
    ----------
    history : dict
        ``{"loss": [...], "val_loss": [...]}``; ``val_loss`` may be missing or empty.

    The y axis is logarithmic when the losses span more than two decades.
    """
    loss = _as_1d(history.get("loss", []), "history['loss']")
    if len(loss) == 0:
        raise DataError("history['loss'] is empty; train for at least one epoch first")
    val_loss = _as_1d(history.get("val_loss") or [], "history['val_loss']")
    fig, ax = _figure(height=5)
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, loss, marker="o", markersize=3, label="training loss")
    if len(val_loss):
        ax.plot(
            np.arange(1, len(val_loss) + 1), val_loss, marker="o", markersize=3,
            label="validation loss",
        )
    all_losses = np.concatenate([loss, val_loss])
    positive = all_losses[all_losses > 0]
    if len(positive) == len(all_losses) and positive.max() > 100 * positive.min():
        ax.set_yscale("log")
    ax.set_title("Training history")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_scores(scores, threshold, *, index=None, labels=None, valid=None, title=None) -> Figure:
    """Anomaly score over time with the threshold, labelled events and flagged rows.

    Parameters
    ----------
    scores : (T,) array of float
        Score per time row; NaN for rows without a score.
    threshold : float or (T,) array of float
        One threshold (a horizontal line) or one per row (an adaptive threshold, drawn as a
        line that moves; NaN where it is not defined yet). Rows with ``score > threshold``
        are flagged and marked.
    index : (T,) array-like, optional
        x values (row numbers, or datetimes); default row numbers.
    labels : (T,) array of 0/1, optional
        True labels; runs of 1 are shaded green.
    valid : (T,) bool array, optional
        Rows with False are not drawn (like NaN scores).
    title : str, optional

    For T > 20,000 rows each of 10,000 bins shows its largest score, the lowest threshold in
    it, and a mark when any of its rows is flagged.
    """
    scores = _as_1d(scores, "scores")
    n_rows = len(scores)
    x = _as_index(index, n_rows)
    if valid is not None:
        scores = np.where(_check_length(np.asarray(valid, bool), n_rows, "valid"), scores, np.nan)
    per_row = np.ndim(threshold) != 0
    thresholds = _as_threshold(threshold, n_rows)
    labels = None if labels is None else _as_flags(labels, n_rows, "labels")
    with np.errstate(invalid="ignore"):
        flagged = scores > thresholds
    n_flagged = int(flagged.sum())
    subtitle = ""
    bin_starts = _bin_starts(n_rows)
    if bin_starts is not None:
        subtitle = f" (max of every {bin_starts[1]} rows)"
        x = x[bin_starts]
        scores = np.fmax.reduceat(scores, bin_starts)
        thresholds = np.fmin.reduceat(thresholds, bin_starts)
        flagged = np.logical_or.reduceat(flagged, bin_starts)
        if labels is not None:
            labels = np.logical_or.reduceat(labels, bin_starts)

    fig, ax = _figure(height=4.5)
    ax.plot(x, scores, linewidth=0.8, color="tab:blue", label="anomaly score")
    if per_row:
        low, high = np.nanmin(thresholds), np.nanmax(thresholds)
        ax.plot(x, thresholds, color=ALARM_COLOR, linestyle="--", linewidth=1,
                label=f"threshold per row ({low:.4g} to {high:.4g})")
    else:
        ax.axhline(thresholds[0], color=ALARM_COLOR, linestyle="--", linewidth=1,
                   label=f"threshold = {thresholds[0]:.4g}")
    if flagged.any():
        ax.scatter(x[flagged], scores[flagged], s=10, color=ALARM_COLOR, zorder=3,
                   label=f"above the threshold ({n_flagged} rows)")
    if labels is not None and labels.any():
        _shade(ax, x, labels, LABEL_COLOR, "labelled anomaly")
    ax.set_title((title or "Anomaly score") + subtitle)
    ax.set_xlabel(_axis_name(x))
    ax.set_ylabel("anomaly score")
    ax.grid(alpha=0.3)
    handles, texts = ax.get_legend_handles_labels()  # above the axes, so it hides no score
    fig.legend(handles, texts, loc="outside upper right", ncols=len(handles), fontsize=9)
    _format_dates(ax, x)
    return fig


def plot_alarms(
    values, index, alarms, labels=None, feature_names=None, *, title=None, max_features: int = 6,
    feature_errors=None,
) -> Figure:
    """The data itself with the alarms raised on it and the labelled anomalies.

    One panel per feature (at most ``max_features``) with alarm runs shaded red, and under
    them a strip with one lane for the alarms and one for the labelled ranges, so a missed
    event or a false alarm is seen at a glance. The time axis is the data's own (timestamps
    for a DatetimeIndex).

    Parameters
    ----------
    values : (T, F) or (T,) array of float
        The series in its original units; NaN rows leave gaps.
    index : (T,) array-like or None
        Time of each row (DatetimeIndex, numbers); None for row numbers.
    alarms : (T,) array of 0/1
        1 where the detector raised an alarm.
    labels : (T,) array of 0/1, optional
        1 where the data is labelled anomalous.
    feature_names : list of str, optional
        One name per feature; default ``feature 0 .. F-1`` (``value`` for a 1-D series).
    title : str, optional
    max_features : int
        Draw at most this many features: the first ones, or those with the largest
        ``feature_errors``.
    feature_errors : (F,) array, optional
        Ranks the features to show, largest first (e.g. the mean error per feature over
        the alarm rows).

    For T > 20,000 rows each of 10,000 bins is drawn from its minimum to its maximum, and
    a bin is shaded when any of its rows is an alarm (or labelled).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
        if feature_names is None:
            feature_names = ["value"]
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise DataError(
            f"values must be a non-empty (T, F) or (T,) array, got shape {values.shape}"
        )
    n_rows, n_features = values.shape
    x = _as_index(index, n_rows)
    alarms = _as_flags(alarms, n_rows, "alarms")
    labels = None if labels is None else _as_flags(labels, n_rows, "labels")
    names = _feature_names(feature_names, n_features)
    if not is_integer(max_features, 1):
        raise DataError(f"max_features must be an integer >= 1, got {max_features!r}")
    if feature_errors is None:
        shown = np.arange(min(max_features, n_features))
    else:
        shown = features_by_error(_feature_errors(feature_errors, n_features), max_features)
    n_alarm_runs = len(flag_runs(alarms)[0])
    n_label_runs = 0 if labels is None else len(flag_runs(labels)[0])

    bin_starts = _bin_starts(n_rows)
    subtitle = ""
    if bin_starts is not None:
        subtitle = f" ({n_rows} rows in {len(bin_starts)} bins, each drawn min to max)"
        alarms = np.logical_or.reduceat(alarms, bin_starts)
        if labels is not None:
            labels = np.logical_or.reduceat(labels, bin_starts)
    x_binned = x if bin_starts is None else x[bin_starts]
    lanes = [("alarms", alarms, ALARM_COLOR, _count(n_alarm_runs, "run"))]
    if labels is not None:
        lanes.append(("labelled", labels, LABEL_COLOR, _count(n_label_runs, "range")))

    height = 1.0 + 1.7 * len(shown) + 0.45 * len(lanes)
    fig = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(
        len(shown) + 1, 1, sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": [4] * len(shown) + [1.1 * len(lanes)]},
    )[:, 0]
    for ax, feature in zip(axes, shown):
        line_x, line_y = _envelope(x, values[:, feature], bin_starts)
        ax.plot(line_x, line_y, linewidth=0.8, color="tab:blue")
        if alarms.any():
            _shade(ax, x_binned, alarms, ALARM_COLOR, None)
        ax.set_ylabel(names[feature])
        ax.grid(alpha=0.3)
    handles = [Patch(color=color, alpha=0.35, label=f"{name} ({count})")
               for name, _, color, count in lanes]
    fig.legend(handles=handles, loc="outside upper right", ncols=len(handles), fontsize=9)
    strip = axes[-1]
    for lane, (_, mask, color, _) in enumerate(reversed(lanes)):
        if mask.any():
            drawn = _band_mask(mask)
            strip.fill_between(x_binned, lane - 0.4, lane + 0.4, where=drawn, color=color,
                               alpha=0.7, linewidth=0.8, edgecolor=color)
    strip.set_yticks(np.arange(len(lanes)), labels=[name for name, *_ in reversed(lanes)])
    strip.set_ylim(-0.6, len(lanes) - 0.4)
    strip.grid(alpha=0.3, axis="x")
    strip.set_xlabel(_axis_name(x))
    if len(x) > 1:
        strip.set_xlim(x[0], x[-1])
    _format_dates(strip, x)
    hidden = n_features - len(shown)
    heading = title or "Alarms on the data"
    if hidden:
        rule = "largest error first" if feature_errors is not None else "the first ones"
        heading += f" ({len(shown)} of {n_features} features, {rule})"
    fig.suptitle(heading + subtitle)
    return fig


def plot_error_heatmap(errors, *, feature_names=None, index=None) -> Figure:
    """Reconstruction error per time row and feature as a heatmap (features x time).

    Parameters
    ----------
    errors : (T, F) array of float
        Error per row and feature; NaN rows (warm-up) are left blank.
    feature_names : list of str, optional
        One name per feature; default ``feature 0 .. F-1``.
    index : (T,) array-like, optional
        Time labels for the x ticks; default row numbers.

    More than 2,000 rows are reduced to 2,000 columns by taking the maximum of each bin.
    """
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[0] == 0 or errors.shape[1] == 0:
        raise DataError(f"errors must be a non-empty (T, F) array, got shape {errors.shape}")
    n_rows, n_features = errors.shape
    names = _feature_names(feature_names, n_features)
    x = _as_index(index, n_rows)
    bin_starts = np.arange(0, n_rows, max(1, -(-n_rows // MAX_HEATMAP_COLUMNS)))
    binned = np.fmax.reduceat(errors, bin_starts, axis=0)

    fig, ax = _figure(height=max(3.0, min(12.0, 1.0 + 0.35 * n_features)))
    image = ax.imshow(binned.T, aspect="auto", interpolation="nearest", cmap="viridis")
    fig.colorbar(image, ax=ax, label="reconstruction error")
    if n_features <= 40:
        ax.set_yticks(np.arange(n_features), labels=names)
    tick_columns = np.linspace(0, len(bin_starts) - 1, num=min(6, len(bin_starts))).astype(int)
    ax.set_xticks(tick_columns, labels=[_label(x[bin_starts[c]]) for c in tick_columns])
    binned_note = f" (max of every {bin_starts[1]} rows)" if len(bin_starts) < n_rows else ""
    ax.set_title("Reconstruction error per feature" + binned_note)
    ax.set_xlabel(_axis_name(x))
    ax.set_ylabel("feature")
    return fig


def plot_error_histogram(scores, threshold=None, *, labels=None) -> Figure:
    """Histogram of scores (normal vs anomalous when labels are given) with the threshold.

    Parameters
    ----------
    scores : (T,) or (N,) array of float
        NaN scores are left out.
    threshold : float, (T,) array of float, or None
        One threshold is drawn as a vertical line; per-row thresholds (adaptive) as the
        shaded range they cover; None draws none.
    labels : array of 0/1, optional
        Same length as ``scores``.

    Each group's bars sum to 1, so a small anomalous group stays visible; the bins are
    logarithmic when all scores are positive and span more than two decades.
    """
    scores = _as_1d(scores, "scores")
    if labels is not None:
        labels = _as_flags(labels, len(scores), "labels")
    thresholds = None if threshold is None else _as_threshold(threshold, len(scores))
    kept = ~np.isnan(scores)
    if not kept.any():
        raise DataError("scores are all NaN; nothing to draw")
    scores = scores[kept]
    groups = [("all", scores, "tab:blue")]
    if labels is not None:
        labels = labels[kept]
        groups = [
            (name, scores[labels == value], color)
            for name, value, color in (("normal", 0, "tab:blue"), ("anomalous", 1, ALARM_COLOR))
            if (labels == value).any()
        ]
    low, high = scores.min(), scores.max()
    log_scale = low > 0 and high > 100 * low
    bins = np.geomspace(low, high, 61) if log_scale else np.histogram_bin_edges(scores, 60)

    fig, ax = _figure(height=5)
    for name, group, color in groups:
        ax.hist(group, bins=bins, weights=np.full(len(group), 1 / len(group)),
                histtype="stepfilled", alpha=0.5, color=color, label=f"{name} (n={len(group)})")
    if thresholds is not None and np.ndim(threshold) == 0:
        ax.axvline(thresholds[0], color="black", linestyle="--", linewidth=1,
                   label=f"threshold = {thresholds[0]:.4g}")
    elif thresholds is not None and not np.isnan(thresholds).all():
        low_t, high_t = np.nanmin(thresholds), np.nanmax(thresholds)
        ax.axvspan(low_t, high_t, color="black", alpha=0.12,
                   label=f"threshold range ({low_t:.4g} to {high_t:.4g})")
    if log_scale:
        ax.set_xscale("log")
    ax.set_title("Anomaly score distribution")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("fraction of group")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_pr_roc(y_true, scores) -> Figure:
    """Precision-recall and ROC curves side by side, with the AUCs in the legends.

    Parameters
    ----------
    y_true : (T,) array of 0/1
    scores : (T,) array of float
        Rows with a NaN score are left out.

    With a single class the figure says so instead of drawing curves.
    """
    scores = _as_1d(scores, "scores")
    y_true = _check_length(np.asarray(y_true), len(scores), "y_true")
    kept = ~np.isnan(scores)
    y_true, scores = y_true[kept].astype(int), scores[kept]
    fig = Figure(figsize=(WIDTH_INCHES, 5), dpi=DPI, layout="constrained")
    if len(np.unique(y_true)) < 2:
        found = "no labelled rows" if len(y_true) == 0 else f"only class {int(y_true[0])}"
        fig.text(0.5, 0.5, f"PR and ROC curves need both classes; the labels have {found}",
                 ha="center", va="center", fontsize=14)
        return fig
    pr_ax, roc_ax = fig.subplots(1, 2)
    precision, recall, _ = precision_recall_curve(y_true, scores)
    average_precision = average_precision_score(y_true, scores)
    pr_ax.step(recall, precision, where="post", label=f"model (AP = {average_precision:.3f})")
    pr_ax.axhline(y_true.mean(), color="gray", linestyle="--",
                  label=f"chance (AP = {y_true.mean():.3f})")
    pr_ax.set(title="Precision-recall", xlabel="recall", ylabel="precision",
              xlim=(0, 1), ylim=(0, 1.02))
    false_positive_rate, true_positive_rate, _ = roc_curve(y_true, scores)
    roc_ax.plot(false_positive_rate, true_positive_rate,
                label=f"model (AUC = {roc_auc_score(y_true, scores):.3f})")
    roc_ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="chance (AUC = 0.5)")
    roc_ax.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate",
               xlim=(0, 1), ylim=(0, 1.02))
    for ax in (pr_ax, roc_ax):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is roc_ax else "upper right")
    return fig


def features_by_error(feature_errors, max_features: int) -> np.ndarray:
    """Indices of the (at most) max_features features with the largest errors, largest first."""
    return np.argsort(-np.asarray(feature_errors), kind="stable")[:max_features]


def plot_reconstruction(
    window, x_hat, *, index=None, feature_names=None, title=None, max_features: int = 6,
    feature_errors=None,
) -> Figure:
    """Input and reconstruction of one window or sequence, one small panel per feature.

    Parameters
    ----------
    window, x_hat : (L, F) arrays
        Input and its reconstruction (same shape).
    index : (L,) array-like, optional
        The window's own time index (e.g. its rows of the series' DatetimeIndex), so the x
        axis shows when the window happened; default timesteps 0 .. L-1.
    feature_names : list of str, optional
    title : str, optional
        The figure's heading, e.g. which event and when.
    max_features : int
        Draw at most this many features: those with the largest error.
    feature_errors : (F,) array, optional
        The errors to rank and label features by, e.g. the model's per-feature error in its
        scaled units (`reconstruction_error(X, per="feature")`), so that a sensor with large
        raw values does not come first for its scale alone. Default: the MSE of window vs
        x_hat.
    """
    window = np.asarray(window, dtype=np.float64)
    x_hat = np.asarray(x_hat, dtype=np.float64)
    if window.ndim != 2 or window.shape != x_hat.shape or window.size == 0:
        raise DataError(
            f"window and x_hat must be non-empty (L, F) arrays of the same shape, got "
            f"{window.shape} and {x_hat.shape}"
        )
    if not is_integer(max_features, 1):
        raise DataError(f"max_features must be an integer >= 1, got {max_features!r}")
    n_steps, n_features = window.shape
    names = _feature_names(feature_names, n_features)
    steps = _as_index(index, n_steps)
    if feature_errors is None:
        feature_errors = np.mean((window - x_hat) ** 2, axis=0)
    feature_errors = _feature_errors(feature_errors, n_features)
    shown = features_by_error(feature_errors, max_features)
    n_columns = min(3, len(shown))
    n_panel_rows = -(-len(shown) // n_columns)
    fig = Figure(figsize=(WIDTH_INCHES, 1.0 + 2.6 * n_panel_rows), dpi=DPI, layout="constrained")
    axes = fig.subplots(n_panel_rows, n_columns, squeeze=False).ravel()
    for ax, feature in zip(axes, shown):
        ax.plot(steps, window[:, feature], color="tab:blue", label="input")
        ax.plot(steps, x_hat[:, feature], color="tab:orange", linestyle="--",
                label="reconstruction")
        ax.set_title(f"{names[feature]} (error {feature_errors[feature]:.3g})", fontsize=10)
        ax.set_xlabel("timestep" if index is None else _axis_name(steps))
        ax.grid(alpha=0.3)
        _format_dates(ax, steps)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    heading = title or "Input vs reconstruction"
    if n_features > len(shown):
        heading += f" ({len(shown)} of {n_features} features, largest error first)"
    fig.suptitle(heading)
    return fig


def _figure(height: float):
    fig = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots()


def _bin_starts(n_rows: int) -> np.ndarray | None:
    """Start rows of the bins a long series is drawn in; None when it is drawn row by row."""
    if n_rows <= MAX_DRAWN_POINTS:
        return None
    return np.arange(0, n_rows, -(-n_rows // DOWNSAMPLED_POINTS))


def _envelope(x: pd.Index, y: np.ndarray, bin_starts) -> tuple:
    """The line to draw: (x, y) itself, or each bin's min then max at the bin's start."""
    if bin_starts is None:
        return x, y
    low = np.fmin.reduceat(y, bin_starts)
    high = np.fmax.reduceat(y, bin_starts)
    return np.repeat(x[bin_starts], 2), np.column_stack([low, high]).ravel()


def _band_mask(mask: np.ndarray) -> np.ndarray:
    """Where to fill so a run of rows start..end spans x[start] to x[end + 1]."""
    return mask | np.concatenate([[False], mask[:-1]])


def _shade(ax, x, mask: np.ndarray, color: str, label) -> None:
    """Shade the full height of ax over the runs of True in a (T,) mask (one artist)."""
    ax.fill_between(x, 0, 1, where=_band_mask(mask), transform=ax.get_xaxis_transform(),
                    color=color, alpha=0.2, linewidth=0.8, edgecolor=color, label=label)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _format_dates(ax, x: pd.Index) -> None:
    if isinstance(x, pd.DatetimeIndex):
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _as_1d(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def _check_length(array: np.ndarray, n_rows: int, name: str) -> np.ndarray:
    if array.shape != (n_rows,):
        raise DataError(f"{name} must have shape ({n_rows},) like scores, got {array.shape}")
    return array


def _as_threshold(threshold, n_rows: int) -> np.ndarray:
    """(T,) thresholds from one finite number or a (T,) array (NaN allowed: not defined yet)."""
    if np.ndim(threshold) == 0:
        try:
            value = float(threshold)
        except (TypeError, ValueError):
            value = np.nan
        if not np.isfinite(value):
            raise DataError(
                f"threshold must be a finite number or a ({n_rows},) array, got {threshold!r}"
            )
        return np.full(n_rows, value)
    thresholds = np.asarray(threshold, dtype=np.float64)
    if thresholds.shape != (n_rows,):
        raise DataError(
            f"threshold must be a number or have shape ({n_rows},), one per row like scores, "
            f"got {thresholds.shape}"
        )
    if np.isnan(thresholds).all():
        raise DataError("threshold is NaN on every row; nothing to draw it from")
    return thresholds


def _as_flags(values, n_rows: int, name: str) -> np.ndarray:
    """(T,) bool from an array of 0/1 (or bool); anything else names its first bad row."""
    array = _check_length(np.asarray(values), n_rows, name)
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name} must be 0/1, got {array[row].item()!r} at row {row}")
    return array.astype(bool)


def _feature_errors(feature_errors, n_features: int) -> np.ndarray:
    errors = np.asarray(feature_errors, dtype=np.float64)
    if errors.shape != (n_features,):
        raise DataError(
            f"feature_errors must have shape ({n_features},), one per feature; got {errors.shape}"
        )
    return errors


def _as_index(index, n_rows: int) -> pd.Index:
    if index is None:
        return pd.RangeIndex(n_rows)
    index = pd.Index(index)
    if len(index) != n_rows:
        raise DataError(f"index must have {n_rows} entries like the data, got {len(index)}")
    return index


def _axis_name(index: pd.Index) -> str:
    if index.name is not None:
        return str(index.name)
    return "time" if isinstance(index, pd.DatetimeIndex) else "row"


def _feature_names(feature_names, n_features: int) -> list[str]:
    if feature_names is None:
        return [f"feature {i}" for i in range(n_features)]
    names = [str(name) for name in feature_names]
    if len(names) != n_features:
        raise DataError(f"feature_names has {len(names)} names for {n_features} features")
    return names


def _label(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, pd.Timestamp) else str(value)
