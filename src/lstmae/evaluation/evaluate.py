"""Evaluate a fitted model on labelled data, in memory: metrics, figures, events and the HTML report.

`evaluate` scores data read by `lstmae.series.read_for_model` through `lstmae.series.score_data` (the one
scoring home) and returns an `Evaluation`; `Evaluation.files()` gives every output as bytes by file
name, for `lstmae.data.io` to write.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.io import OutputKind
from ..exceptions import DataError
from .metrics import detection_metrics, sequence_metrics
from .plots import (figure_png, plot_alarms, plot_error_heatmap, plot_error_histogram, plot_pr_roc,
                    plot_reconstruction, plot_scores, plot_training_history)
from .report import METRIC_HELP, PLOT_HELP, render_report

# What a report may replace with overwrite=True (data.io.check_replaceable): an earlier report.
REPORT_KIND = OutputKind("a report", "report.html", ("report.html", "metrics.json", "events.csv", "*.png"))

# Rules whose flag rate on the evaluated data the report lists beside the model's own, each fitted on
# the model's held-out normal scores; the adaptive one (a series' remedy for an alarm storm) then follows
# the evaluated rows' own past.
ALTERNATIVE_THRESHOLDS = ("sigma:2", "sigma:3", "sigma:5", "mad:5", "mad:8", "quantile:0.99", "quantile:0.999",
                          "pot:1e-3", "telemanom:2,mad=8")

# A series is judged on its alarms (the flags after the alarm rules), what a person is shown: its "flagged"
# rows, which every row metric counts, are the alarm rows, not the rows above the threshold (raw_flag_rate).
ALARM_ROW_HELP = {
    "n_flagged": ("rows flagged, i.e. in an alarm: score above the threshold, then the alarm rules (raw_flag_rate: "
                  "before them); precision, recall, f1 and the confusion matrix count these", "rows"),
    "alarm_rate": ("share of evaluated rows in an alarm: how often someone is asked to look", "0-1"),
    "mean_lead_time": ("rows between an alarm's start (its first alarm row, after the alarm rules) and the "
                       "labelled start of the event it found, averaged over found events; negative: after the start",
                       "rows"),
}


@dataclass
class Evaluation:
    """What `evaluate` found: metrics (JSON-able), scores (one row per row or sequence), events (series: the
    alarms), figures as (file stem, caption, Figure, how to read it), the report's HTML, and labelled_events
    (series: one row per labelled range, found or missed, by which alarm, with its lead)."""

    metrics: dict
    scores: pd.DataFrame
    events: pd.DataFrame | None
    figures: list = field(default_factory=list)
    html: str = ""
    labelled_events: pd.DataFrame | None = None

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
    from ..data.io import SequenceData, SeriesData
    from ..config import DEFAULTS
    from ..scoring import parse_threshold
    from ..series import AlarmStormWarning, data_groups, rule_for, score_data, threshold_for

    if not isinstance(data, (SeriesData, SequenceData)):  # a DataFrame or an array had no .labels to read
        raise DataError(f"evaluate takes data read for the model, got a {type(data).__name__}; read the file with "
                        "lstmae.series.read_for_model(model, 'test.csv', label_column='label')")

    if data.labels is None:
        raise DataError(f"{data.source}: no labels; name the 0/1 label column with --label-column")
    sequences = isinstance(data, SequenceData)
    how = how or (DEFAULTS["how"] if model.threshold_how_ == "window" else model.threshold_how_)
    labels = data.labels
    rule = (rule_for(model, None, "window" if sequences else how) if threshold is None
            else parse_threshold(threshold) if isinstance(threshold, str) else None)  # None: a number given
    rule_text = str(threshold) if threshold is not None else str(rule)
    meaning = rule.meaning if rule is not None else "the value given"
    basis = _threshold_basis(model, threshold, "window" if sequences else how)
    if threshold is not None and _needs_labels(threshold):
        # a label-based rule can only be fitted on the evaluated data itself: say so in the report
        preliminary, _ = score_data(model, data, how=how, threshold=np.inf, alarms=None)
        usable = np.isfinite(preliminary["score"].to_numpy())
        threshold = threshold_for(model, threshold, (labels[usable], preliminary["score"].to_numpy()[usable]))
        rule_text += (" (fitted on these labels, for the best F1 of the " + ("sequences above it" if sequences else
                      "rows above it before the alarm rules") + ": optimistic, not a deployable threshold)")
    with warnings.catch_warnings(record=True) as caught:  # storms also go into the report, not only to stderr
        warnings.simplefilter("always")
        table, events = score_data(model, data, how=how, threshold=threshold, feature_errors=not sequences,
                                   events=not sequences, alarms=alarms)
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    storms = [str(warning.message) for warning in caught if issubclass(warning.category, AlarmStormWarning)]
    kept = None if sequences else data.kept_rows()
    if not sequences and len(table) != len(data.values):  # rows dropped by --nan-policy drop: not evaluated
        table = table.iloc[kept]
    scores = table["score"].to_numpy()
    flags = table["is_anomaly" if sequences else "alarm"].to_numpy()
    row_threshold = table["threshold"].to_numpy() if "threshold" in table else None
    value = _scalar_threshold(model, threshold, "window" if sequences else how, row_threshold)
    if sequences:
        metrics = sequence_metrics(labels, _inf_ranked_highest(scores), value)
    else:
        metrics = detection_metrics(labels, _inf_ranked_highest(scores), value, flags=flags,
                                    valid=table["valid"].to_numpy(), early_window=early_window,
                                    point_adjust=point_adjust)
        if np.isposinf(scores).any():
            metrics.setdefault("notes", []).append(
                f"{int(np.isposinf(scores).sum())} rows scored inf (an extreme value overflowed the error; see 'overflow' in "
                "`lstmae score`): they rank above every other row")
        metrics["n_alarm_events"] = int(len(events))
        metrics["raw_flag_rate"] = float(table["is_anomaly"].to_numpy()[table["valid"].to_numpy()].mean())
        metrics["alarm_rules"] = dict(alarms)
        metrics["early_window"] = int(early_window)
        if len(kept) < len(data.dropped):
            metrics.setdefault("notes", []).append(
                f"{len(data.dropped) - len(kept)} input rows were dropped (--nan-policy drop) and are not evaluated; "
                "a labelled anomaly that lay only in them is not counted")
    if storms:
        metrics.setdefault("notes", []).extend(storms)
    metrics["threshold_rule"] = rule_text

    # the events name input rows (as events.csv does); the evaluated table and labels hold the kept ones
    kept_events = None if events is None else events.assign(
        start_row=np.searchsorted(kept, events["start_row"].to_numpy()),
        end_row=np.searchsorted(kept, events["end_row"].to_numpy()))
    # the series' segments (entities, time gaps) as scoring split them; announced when it did
    groups = None if sequences else data_groups(data, model.data_settings_.get("max_gap"), announce=False)[0]
    figures = _figures(model, data, table, kept_events, labels, scores, row_threshold if row_threshold is not None
                       else value, sequences, groups)
    threshold_info = {"rule": rule_text, "in words": meaning, "value": float(value),
                      "fitted on": basis,
                      "to use another": "lstmae score --threshold RULE (Python: threshold=\"RULE\"), e.g. one of the "
                                        "alternatives below, fitted on the model's held-out scores as this one",
                      "alternatives": _alternatives(model, scores, None if sequences else table["valid"].to_numpy(),
                                                    groups, "window" if sequences else how)}
    labelled_events = None
    if events is not None:
        events = events.assign(matches_label=_matches_label(kept_events, labels, early_window))
        labelled_events = _labelled_events(kept_events, labels, table.index, early_window)
    report_summary = {"data": data.source, ("sequences" if sequences else "rows"): int(len(table)),
                      "model window": model.n_timesteps_, "scoring": f"how={how}" if not sequences else "per sequence",
                      **(summary or {})}
    html = render_report(title="lstmae evaluation", summary=report_summary, metrics=metrics,
                         metric_help=METRIC_HELP if sequences else {**METRIC_HELP, **ALARM_ROW_HELP},
                         images=[(caption, figure, help_text) for _, caption, figure, help_text in figures],
                         tables=[("Alarms (matches_label: the alarm touches a labelled range)", events.head(50)),
                                 ("Labelled events (found: an alarm touches the range; alarm: the first such; lead: "
                                  "rows from its start to the labelled start, positive = early)",
                                  labelled_events.head(50))]
                         if events is not None else [],
                         notes=metrics.get("notes", []) + metrics.get("warnings", []),
                         threshold_info=threshold_info)
    return Evaluation(metrics, table, events, figures, html, labelled_events)


def _inf_ranked_highest(scores: np.ndarray) -> np.ndarray:
    """Scores (n,) with the windows whose error overflowed (inf) at the largest float, above every other: the
    metrics rank scores and refuse inf; NaN (no score) stays NaN."""
    return np.where(np.isposinf(scores), np.finfo(float).max, scores)


def _threshold_basis(model, threshold, how: str) -> str:
    """What the threshold applied was fitted on, in words (the report's "fitted on")."""
    from ..scoring import parse_threshold
    from ..series import _same_kind, threshold_source

    if threshold is not None and not isinstance(threshold, str):
        return "nothing: a fixed value"
    if threshold is not None and _needs_labels(threshold):
        return "the labels and scores of the evaluated rows"
    rule = model.threshold_rule_ if threshold is None else parse_threshold(threshold)
    if rule.method == "value":
        return "nothing: a fixed value"
    if threshold is None and _same_kind(how, model.threshold_how_):
        text = threshold_source(model)
    else:
        kind = "window scores" if how in ("end", "window") else f"row scores (how={how})"
        text = f"held-out {kind}, refitted for this scoring"
    if getattr(rule, "adaptive", False):
        text += "; it then moves with the scored rows' own past"
    return text


def _needs_labels(spec) -> bool:
    return isinstance(spec, str) and spec.strip().lower().startswith("best-f")


def _scalar_threshold(model, threshold, how: str, row_threshold=None) -> float:
    """The threshold applied: for an adaptive rule (`row_threshold`, the table's threshold each row was compared
    with) the one it started from, the first row's (rows without a score keep the current one); else the static
    value."""
    from ..series import threshold_for
    from ..scoring import parse_threshold

    if row_threshold is not None:
        return float(row_threshold[0])
    if threshold is not None and not isinstance(threshold, str):
        return float(threshold)
    rule = model.threshold_rule_ if threshold is None else parse_threshold(threshold)
    if threshold is None and how == model.threshold_how_:
        return float(model.threshold_)
    return threshold_for(model, rule, how=how)


def _alternatives(model, scores: np.ndarray, valid, groups, how: str) -> dict:
    """What other rules, fitted on the same held-out normal scores, would have flagged among the evaluated
    `scores` (n,): a static rule compared with every row; an adaptive one (series only, `valid` (n,) given)
    started from those scores and moved with the past rows of each of the series' `groups` (n,) (None: one
    series), as `lstmae score --threshold SPEC` flags them."""
    from ..scoring import parse_threshold
    from ..series import flag_rows, threshold_for

    used = np.isfinite(scores) if valid is None else valid
    found = {}
    for spec in ALTERNATIVE_THRESHOLDS:
        adaptive = parse_threshold(spec).adaptive
        if adaptive and valid is None:
            continue  # sequences: one score each, no stream to follow
        try:
            if adaptive:
                flags, thresholds = flag_rows(model, scores, valid, groups, spec, how)
                start = thresholds[valid][0] if valid.any() else np.nan
                found[spec] = (f"starts at {start:.4g}, then follows the rows' past: "
                               f"{np.mean(flags[valid]):.2%} of rows above it (before the alarm rules)")
                continue
            value = threshold_for(model, spec, how=how)
        except DataError as err:  # e.g. pot needs more held-out scores
            found[spec] = f"not available ({err})"
            continue
        found[spec] = (f"threshold {value:.4g}: {np.mean(scores[used] > value):.2%} of "
                       + ("sequences above it" if valid is None else "rows above it (before the alarm rules)"))
    return found


def _matches_label(events: pd.DataFrame, labels: np.ndarray, early_window: int = 0) -> np.ndarray:
    """(n_events,) bool: whether each alarm run touches a labelled anomaly (or the `early_window` rows before
    one, as the event metrics count it). Event rows are positions in `labels`."""
    from ..scoring.events import flag_runs, runs_touching
    from .metrics import event_reach

    reach = event_reach(*flag_runs(labels), len(labels), early_window)
    return runs_touching(events["start_row"].to_numpy(), events["end_row"].to_numpy(), reach)


def _labelled_events(events: pd.DataFrame, labels: np.ndarray, index: pd.Index, early_window: int = 0) -> pd.DataFrame:
    """One row per labelled range (runs of 1 in `labels`): its start and end (`index`'s labels), whether an alarm
    of `events` (start_row / end_row: positions in `labels`) touches it or the `early_window` rows before it, the
    first such alarm's number and its lead in rows (labelled start - alarm start)."""
    from ..scoring.events import flag_runs

    rows = []
    for number, (start, end) in enumerate(zip(*flag_runs(labels))):
        touching = events[(events["start_row"] <= end) & (events["end_row"] >= max(start - early_window, 0))]
        first = touching.iloc[0] if len(touching) else None
        rows.append({"labelled_event": number, "start": index[start], "end": index[end], "rows": int(end - start + 1),
                     "found": first is not None, "alarm": None if first is None else int(first["event"]),
                     "lead": None if first is None else int(start - first["start_row"])})
    return pd.DataFrame(rows, columns=["labelled_event", "start", "end", "rows", "found", "alarm", "lead"])


def _figures(model, data, table, events, labels, scores, threshold, sequences, groups) -> list:
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
                        plot_error_heatmap(np.nan_to_num(errors, nan=np.nan, posinf=np.finfo(np.float32).max),
                                           feature_names=names, index=table.index), PLOT_HELP["heatmap"]))
        figures += _event_reconstructions(model, data, table, events, groups)
    return figures


def _event_reconstructions(model, data, table, events, ids, n: int = 2) -> list:
    """The two highest events' windows that scored highest, input against reconstruction, on the data's
    own time axis; `ids` (T,): the series' segments, windows never span two (None: one series)."""
    if events is None or events.empty:
        return []
    figures = []
    for _, event in events.sort_values("peak_score", ascending=False).head(n).iterrows():
        first, last = int(event["start_row"]), int(event["end_row"])
        group_rows = np.arange(len(data.values)) if ids is None else np.flatnonzero(ids == ids[first])
        rows = _highest_window_rows(model, data.values, group_rows, first, last)
        if rows is None:
            continue
        window = data.values[rows]
        x_hat = model.reconstruct(window[None])[0]
        # Ranked in the model's scaled units: in raw units the largest-valued sensor would win.
        errors = model.reconstruction_error(window[None], per="feature")[0]
        number = int(event["event"])
        figures.append((f"event_{number}_reconstruction",
                        f"Event {number}: input vs reconstruction of its highest-scoring window",
                        plot_reconstruction(window, x_hat, index=table.index[rows],
                                            feature_names=data.feature_names,
                                            title=f"event {number}: window {table.index[rows[0]]} .. "
                                                  f"{table.index[rows[-1]]}",
                                            feature_errors=np.nan_to_num(errors, posinf=np.finfo(np.float32).max)),
                        PLOT_HELP["reconstruction"]))
    return figures


def _highest_window_rows(model, values, group_rows: np.ndarray, first_row: int, last_row: int):
    """Rows (L,) of the highest-scoring window that covers any row of [first_row, last_row], inside the
    segment / entity `group_rows` (as scoring cut them: no window spans a time gap or two machines)."""
    length = model.n_timesteps_
    first, last = np.searchsorted(group_rows, first_row), np.searchsorted(group_rows, last_row, side="right") - 1
    low, high = max(0, first - length + 1), min(last, len(group_rows) - length)
    if high < low:
        return None
    from ..data.windowing import temporalize

    X, _ = temporalize(values[group_rows[low : high + length]], length)
    start = low + int(np.argmax(np.nan_to_num(model.anomaly_score(X), posinf=np.finfo(float).max)))
    return group_rows[start : start + length]


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
