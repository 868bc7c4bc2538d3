"""PNG plots for training, scores and reconstructions (matplotlib, Agg, no pyplot).

Each function draws one figure on a ``matplotlib.figure.Figure`` (never pyplot, so no global
figure state is left behind), writes it as a 1200-pixel-wide PNG and returns the path.
Conventions: higher score = more anomalous, a point is flagged when ``score > threshold``,
label 1 = anomaly. NaN scores (warm-up rows with no score) are simply not drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from lstmae.exceptions import DataError

DPI = 100
WIDTH_INCHES = 12  # 1200 px
MAX_DRAWN_POINTS = 20_000
DOWNSAMPLED_POINTS = 10_000
MAX_HEATMAP_COLUMNS = 2_000


def plot_training_history(history: dict, path) -> Path:
    """Training (and validation) loss per epoch.

    Parameters
    ----------
    history : dict
        ``{"loss": [...], "val_loss": [...]}``; ``val_loss`` may be missing or empty.
    path : str or Path
        Where to write the PNG.

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
    return _save(fig, path)


def plot_scores(
    scores, threshold: float, path, *, index=None, labels=None, valid=None, title=None
) -> Path:
    """Anomaly score over time with the threshold, true events and flagged points.

    Parameters
    ----------
    scores : (T,) array of float
        Score per time row; NaN for rows without a score.
    threshold : float
        Drawn as a horizontal line; points above it are marked as flagged.
    index : (T,) array-like, optional
        x values (row numbers, or datetimes); default row numbers.
    labels : (T,) array of 0/1, optional
        True labels; runs of 1 are shaded.
    valid : (T,) bool array, optional
        Rows with False are not drawn (like NaN scores).
    title : str, optional

    For T > 20,000 rows the series is drawn as the maximum of each of 10,000 bins, so a
    single spike stays visible.
    """
    scores = _as_1d(scores, "scores")
    n_rows = len(scores)
    x = _as_index(index, n_rows)
    if valid is not None:
        scores = np.where(_check_length(np.asarray(valid, bool), n_rows, "valid"), scores, np.nan)
    if labels is not None:
        labels = _check_length(np.asarray(labels, dtype=np.float64), n_rows, "labels")
    n_flagged = int(np.sum(scores > threshold))
    subtitle = ""
    if n_rows > MAX_DRAWN_POINTS:
        bin_starts = np.arange(0, n_rows, -(-n_rows // DOWNSAMPLED_POINTS))
        subtitle = f" (max of every {bin_starts[1]} rows)"
        x = x[bin_starts]
        scores = np.fmax.reduceat(scores, bin_starts)
        if labels is not None:
            labels = np.fmax.reduceat(labels, bin_starts)

    fig, ax = _figure(height=4.5)
    ax.plot(x, scores, linewidth=0.8, color="tab:blue", label="anomaly score")
    ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1,
               label=f"threshold = {threshold:.4g}")
    flagged = scores > threshold
    if flagged.any():
        ax.scatter(x[flagged], scores[flagged], s=10, color="tab:red", zorder=3,
                   label=f"flagged ({n_flagged} rows)")
    if labels is not None:
        for event_number, (start, end) in enumerate(_runs(labels > 0)):
            ax.axvspan(x[start], x[min(end + 1, len(x) - 1)], color="tab:orange", alpha=0.25,
                       linewidth=0.5, label="true anomaly" if event_number == 0 else None)
    ax.set_title((title or "Anomaly score") + subtitle)
    ax.set_xlabel(_axis_name(x))
    ax.set_ylabel("anomaly score")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    if isinstance(x, pd.DatetimeIndex):
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return _save(fig, path)


def plot_error_heatmap(errors, path, *, feature_names=None, index=None) -> Path:
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
    return _save(fig, path)


def plot_error_histogram(scores, threshold: float, path, *, labels=None) -> Path:
    """Histogram of scores (normal vs anomalous when labels are given) with the threshold.

    Parameters
    ----------
    scores : (T,) or (N,) array of float
        NaN scores are left out.
    threshold : float
    labels : array of 0/1, optional
        Same length as ``scores``.

    Each group's bars sum to 1, so a small anomalous group stays visible; the bins are
    logarithmic when all scores are positive and span more than two decades.
    """
    scores = _as_1d(scores, "scores")
    if labels is not None:
        labels = _check_length(np.asarray(labels), len(scores), "labels")
    kept = ~np.isnan(scores)
    if not kept.any():
        raise DataError("scores are all NaN; nothing to draw")
    scores = scores[kept]
    groups = [("all", scores, "tab:blue")]
    if labels is not None:
        labels = labels[kept]
        groups = [
            (name, scores[labels == value], color)
            for name, value, color in (("normal", 0, "tab:blue"), ("anomalous", 1, "tab:red"))
            if (labels == value).any()
        ]
    low, high = scores.min(), scores.max()
    log_scale = low > 0 and high > 100 * low
    bins = np.geomspace(low, high, 61) if log_scale else np.histogram_bin_edges(scores, 60)

    fig, ax = _figure(height=5)
    for name, group, color in groups:
        ax.hist(group, bins=bins, weights=np.full(len(group), 1 / len(group)),
                histtype="stepfilled", alpha=0.5, color=color, label=f"{name} (n={len(group)})")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1,
               label=f"threshold = {threshold:.4g}")
    if log_scale:
        ax.set_xscale("log")
    ax.set_title("Anomaly score distribution")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("fraction of group")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_pr_roc(y_true, scores, path) -> Path:
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
        return _save(fig, path)
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
    return _save(fig, path)


def features_by_error(feature_errors, max_features: int) -> np.ndarray:
    """Indices of the (at most) max_features features with the largest errors, largest first."""
    return np.argsort(-np.asarray(feature_errors), kind="stable")[:max_features]


def plot_reconstruction(
    x, x_hat, path, *, feature_names=None, title=None, max_features: int = 6, feature_errors=None
) -> Path:
    """Input and reconstruction of one window or sequence, one small panel per feature.

    Parameters
    ----------
    x, x_hat : (L, F) arrays
        Input and its reconstruction (same shape).
    feature_names : list of str, optional
    title : str, optional
    max_features : int
        Draw at most this many features: those with the largest error.
    feature_errors : (F,) array, optional
        The errors to rank and label features by, e.g. the model's per-feature error in its
        scaled units (`reconstruction_error(X, per="feature")`), so that a sensor with large
        raw values does not come first for its scale alone. Default: the MSE of x vs x_hat.
    """
    x = np.asarray(x, dtype=np.float64)
    x_hat = np.asarray(x_hat, dtype=np.float64)
    if x.ndim != 2 or x.shape != x_hat.shape or x.size == 0:
        raise DataError(
            f"x and x_hat must be non-empty (L, F) arrays of the same shape, got {x.shape} "
            f"and {x_hat.shape}"
        )
    if max_features < 1:
        raise DataError(f"max_features must be >= 1, got {max_features}")
    names = _feature_names(feature_names, x.shape[1])
    if feature_errors is None:
        feature_errors = np.mean((x - x_hat) ** 2, axis=0)
    feature_errors = np.asarray(feature_errors, dtype=np.float64)
    if feature_errors.shape != (x.shape[1],):
        raise DataError(f"feature_errors must have shape ({x.shape[1]},), one per feature; got {feature_errors.shape}")
    shown = features_by_error(feature_errors, max_features)
    n_columns = min(3, len(shown))
    n_panel_rows = -(-len(shown) // n_columns)
    fig = Figure(figsize=(WIDTH_INCHES, 1.0 + 2.6 * n_panel_rows), dpi=DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(n_panel_rows, n_columns, squeeze=False)).ravel()
    steps = np.arange(x.shape[0])
    for ax, feature in zip(axes, shown):
        ax.plot(steps, x[:, feature], color="tab:blue", label="input")
        ax.plot(steps, x_hat[:, feature], color="tab:orange", linestyle="--",
                label="reconstruction")
        ax.set_title(f"{names[feature]} (MSE {feature_errors[feature]:.3g})", fontsize=10)
        ax.set_xlabel("timestep")
        ax.grid(alpha=0.3)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    hidden = x.shape[1] - len(shown)
    heading = title or "Input vs reconstruction"
    if hidden:
        heading += f" ({len(shown)} of {x.shape[1]} features, largest error first)"
    fig.suptitle(heading)
    return _save(fig, path)


def _figure(height: float):
    fig = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots()


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def _as_1d(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def _check_length(array: np.ndarray, n_rows: int, name: str) -> np.ndarray:
    if array.shape != (n_rows,):
        raise DataError(f"{name} must have shape ({n_rows},) like scores, got {array.shape}")
    return array


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


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) positions, end inclusive, of the contiguous True runs in a (T,) mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))
