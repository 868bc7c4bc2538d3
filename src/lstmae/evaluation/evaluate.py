"""Evaluate a fitted model on labelled data, in memory: metrics, figures, events and the HTML report.

`evaluate` scores data read by `lstmae.series.read_for_model` through `lstmae.series.score_data` (the one
scoring home) and returns an `Evaluation`; `Evaluation.files()` gives every output as bytes by file
name, for `lstmae.data.io` to write.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..exceptions import DataError
from .metrics import detection_metrics, sequence_metrics
from .plots import (figure_png, plot_alarms, plot_error_heatmap, plot_error_histogram, plot_pr_roc,
                    plot_reconstruction, plot_scores, plot_training_history)
from .report import PLOT_HELP, render_report

# Rules whose flag rate on the evaluated data the report lists beside the model's own, each fitted on
# the model's held-out normal scores.
ALTERNATIVE_THRESHOLDS = ("sigma:2", "sigma:3", "sigma:5", "mad:5", "mad:8", "quantile:0.99", "quantile:0.999",
                          "pot:1e-3")


@dataclass
class Evaluation:
    """What `evaluate` found: metrics (JSON-able), scores (one row per row or sequence), events (series),
    figures as (file stem, caption, Figure, how to read it), and the report's HTML."""

    metrics: dict
    scores: pd.DataFrame
    events: pd.DataFrame | None
    figures: list = field(default_factory=list)
    html: str = ""

    def files(self) -> dict[str, bytes]:
        """Every output by file name: metrics.json, report.html, one PNG per figure, events.csv."""
        files = {"metrics.json": json.dumps(self.metrics, indent=2, default=_json_default).encode(),
                 "report.html": self.html.encode()}
        for stem, _, figure, _ in self.figures:
            files[f"{stem}.png"] = figure_png(figure)
        if self.events is not None:
            files["events.csv"] = self.events.to_csv(index=False).encode()
        return files


def evaluate(model, data, *, how: str | None = None, threshold=None, early_window: int = 0,
             point_adjust: bool = False, summary: dict | None = None, alarms: dict | None = None) -> Evaluation:
    """Score labelled `data` (SeriesData or SequenceData with labels) and evaluate what a person would be
    shown: for a series the alarms (flags after the alarm rules, `alarms` options, default
    `lstmae.scoring.DEFAULT_ALARM`), for sequences the flags.

    how: the row aggregation (default: the one the model's threshold was fitted on); threshold: an
    override as in `lstmae.series.score_values` (the model is never changed).
    """
    from ..scoring import DEFAULT_ALARM

    alarms = DEFAULT_ALARM if alarms is None else alarms
    from ..data.io import SequenceData
    from ..config import DEFAULTS
    from ..series import rule_for, score_data, threshold_for, threshold_source

    if data.labels is None:
        raise DataError(f"{data.source}: no labels; name the 0/1 label column with --label-column")
    sequences = isinstance(data, SequenceData)
    how = how or (DEFAULTS["how"] if model.threshold_how_ == "window" else model.threshold_how_)
    labels = data.labels
    rule_text = str(threshold) if threshold is not None else str(rule_for(model, None, "window" if sequences else how))
    if threshold is not None and _needs_labels(threshold):
        # a label-based rule can only be fitted on the evaluated data itself: say so in the report
        preliminary, _ = score_data(model, data, how=how, threshold=np.inf)
        usable = np.isfinite(preliminary["score"].to_numpy())
        threshold = threshold_for(model, threshold, (labels[usable], preliminary["score"].to_numpy()[usable]))
        rule_text += " (fitted on these labels: an optimistic upper bound, not a deployable threshold)"
    table, events = score_data(model, data, how=how, threshold=threshold, feature_errors=not sequences,
                               events=not sequences, alarms=alarms)
    if not sequences and len(table) != len(data.values):  # rows dropped by --nan-policy drop: not evaluated
        table = table.iloc[data.kept_rows()]
    scores = table["score"].to_numpy()
    flags = table["is_anomaly" if sequences else "alarm"].to_numpy()
    row_threshold = table["threshold"].to_numpy() if "threshold" in table else None
    value = _scalar_threshold(model, threshold, "window" if sequences else how)
    if sequences:
        metrics = sequence_metrics(labels, np.where(np.isfinite(scores), scores, np.finfo(float).max), value)
    else:
        metrics = detection_metrics(labels, scores, value, flags=flags, valid=table["valid"].to_numpy(),
                                    early_window=early_window, point_adjust=point_adjust)
        metrics["n_alarm_events"] = int(len(events))
        metrics["raw_flag_rate"] = float(table["is_anomaly"].to_numpy()[table["valid"].to_numpy()].mean())
        metrics["alarm_rules"] = dict(alarms)
    metrics["threshold_rule"] = rule_text

    figures = _figures(model, data, table, events, labels, scores, row_threshold if row_threshold is not None
                       else value, sequences)
    threshold_info = {"rule": rule_text, "value": float(value),
                      "fitted on": threshold_source(model),
                      "alternatives": _alternatives(model, scores[np.isfinite(scores)] if sequences
                                                    else scores[table["valid"].to_numpy()],
                                                    "window" if sequences else how)}
    if events is not None:
        events = _label_events(events, labels)
    report_summary = {"data": data.source, ("sequences" if sequences else "rows"): int(len(table)),
                      "model window": model.n_timesteps_, "scoring": f"how={how}" if not sequences else "per sequence",
                      **(summary or {})}
    html = render_report(title="lstmae evaluation", summary=report_summary, metrics=metrics,
                         images=[(caption, figure, help_text) for _, caption, figure, help_text in figures],
                         tables=[("Detected events", events.head(50))] if events is not None else [],
                         notes=metrics.get("notes", []) + metrics.get("warnings", []),
                         threshold_info=threshold_info)
    return Evaluation(metrics, table, events, figures, html)


def _needs_labels(spec) -> bool:
    return isinstance(spec, str) and spec.strip().lower().startswith("best-f")


def _scalar_threshold(model, threshold, how: str) -> float:
    """The static threshold applied (for an adaptive rule, the model's fitted one, which it starts from)."""
    from ..series import threshold_for
    from ..scoring import parse_threshold

    if threshold is not None and not isinstance(threshold, str):
        return float(threshold)
    rule = model.threshold_rule_ if threshold is None else parse_threshold(threshold)
    if getattr(rule, "adaptive", False) or (threshold is None and how == model.threshold_how_):
        return float(model.threshold_)
    return threshold_for(model, rule, how=how)


def _alternatives(model, scores: np.ndarray, how: str) -> dict:
    """What other rules, fitted on the same held-out normal scores, would have flagged here."""
    from ..series import threshold_for

    found = {}
    for spec in ALTERNATIVE_THRESHOLDS:
        try:
            value = threshold_for(model, spec, how=how)
        except DataError as err:  # e.g. pot needs more held-out scores
            found[spec] = f"not available ({err})"
            continue
        found[spec] = f"threshold {value:.4g}: flags {np.mean(scores > value):.2%} of rows"
    return found


def _label_events(events: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """The events table with `matches_label`: whether the alarm run touches a labelled anomaly."""
    from ..scoring.events import runs_touching

    events = events.copy()
    events["matches_label"] = runs_touching(events["start_row"].to_numpy(), events["end_row"].to_numpy(), labels)
    return events


def _figures(model, data, table, events, labels, scores, threshold, sequences) -> list:
    figures = []
    history = {k: v for k, v in model.history_.items() if k in ("loss", "val_loss")}
    if history.get("loss"):
        figures.append(("training_history", "Training curves", plot_training_history(history),
                        PLOT_HELP["training_history"]))
    finite = np.isfinite(scores)
    if not sequences:
        figures.append(("alarms", "Alarms on the data, beside the labelled anomalies",
                        plot_alarms(data.values, table.index, table["alarm"].to_numpy(), labels,
                                    data.feature_names), PLOT_HELP["alarms"]))
    figures.append(("scores", "Anomaly score over time with the threshold and true events",
                    plot_scores(np.where(finite, scores, np.nan), threshold, index=None if sequences else table.index,
                                labels=labels, valid=None if sequences else table["valid"].to_numpy()),
                    PLOT_HELP["scores"]))
    figures.append(("score_histogram", "Score distribution",
                    plot_error_histogram(scores[finite], np.nanmax(np.atleast_1d(threshold)) if not np.isscalar(threshold)
                                         else threshold, labels=labels[finite]), PLOT_HELP["histogram"]))
    figures.append(("pr_roc", "Precision-recall and ROC curves", plot_pr_roc(labels[finite], scores[finite]),
                    PLOT_HELP["pr_roc"]))
    if not sequences:
        names = list(data.feature_names)
        errors = table[[f"error_{n}" for n in names]].to_numpy()
        figures.append(("error_heatmap", "Reconstruction error per feature over time",
                        plot_error_heatmap(np.nan_to_num(errors, posinf=np.finfo(np.float32).max),
                                           feature_names=names, index=table.index), PLOT_HELP["heatmap"]))
        figures += _event_reconstructions(model, data, table, events)
    return figures


def _event_reconstructions(model, data, table, events, n: int = 2) -> list:
    """The two highest events' windows that scored highest, input against reconstruction, on the data's
    own time axis."""
    if events is None or events.empty:
        return []
    length = model.n_timesteps_
    figures = []
    for _, event in events.sort_values("peak_score", ascending=False).head(n).iterrows():
        start = _highest_window_start(model, data.values, int(event["start_row"]), int(event["end_row"]))
        if start is None:
            continue
        window = data.values[start : start + length]
        x_hat = model.reconstruct(window[None])[0]
        # Ranked in the model's scaled units: in raw units the largest-valued sensor would win.
        errors = model.reconstruction_error(window[None], per="feature")[0]
        number = int(event["event"])
        figures.append((f"event_{number}_reconstruction",
                        f"Event {number}: input vs reconstruction of its highest-scoring window",
                        plot_reconstruction(window, x_hat, index=table.index[start : start + length],
                                            feature_names=data.feature_names,
                                            title=f"event {number}: window {table.index[start]} .. "
                                                  f"{table.index[start + length - 1]}",
                                            feature_errors=np.nan_to_num(errors, posinf=np.finfo(np.float32).max)),
                        PLOT_HELP["reconstruction"]))
    return figures


def _highest_window_start(model, values, first_row: int, last_row: int) -> int | None:
    """Start row of the highest-scoring window that covers any row of [first_row, last_row]."""
    length = model.n_timesteps_
    low, high = max(0, first_row - length + 1), min(last_row, len(values) - length)
    if high < low:
        return None
    from ..data.windowing import temporalize

    X, _ = temporalize(values[low : high + length], length)
    return low + int(np.argmax(np.nan_to_num(model.anomaly_score(X), posinf=np.finfo(float).max)))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
