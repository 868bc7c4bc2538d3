"""One self-contained HTML report: inline CSS, PNG images embedded as base64 data URIs.

:func:`render_report` returns the page as a string; it reads and writes no file (the caller
saves it through ``lstmae.data.io``). The page needs nothing else to display (no network, no
sibling files), so it can be mailed or archived alone. All text is HTML-escaped.

The report is meant for a person who did not train the model: each metric can carry a
one-line explanation and a unit (:data:`METRIC_HELP` has them for the keys of
``detection_metrics`` and ``sequence_metrics``), the threshold gets its own section (the
rule, its value, what it was fitted on, what other rules would do), and each plot a caption
saying how to read it (:data:`PLOT_HELP` has one per kind of plot).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping

import pandas as pd
from matplotlib.figure import Figure

from lstmae.evaluation.metrics import METRIC_HELP as _METRICS_HELP
from lstmae.evaluation.plots import figure_png
from lstmae.exceptions import DataError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TABLE_ROWS = 100

# key -> explanation, or (explanation, unit). Nested keys are written "parent / child". The metrics'
# own help (every key detection_metrics and sequence_metrics return) plus what evaluate adds.
METRIC_HELP: dict[str, str | tuple[str, str]] = {
    **_METRICS_HELP,
    "threshold_rule": "how the threshold was chosen",
    "n_alarm_events": ("alarms raised: runs of alarm rows after the alarm rules (events.csv)", "alarms"),
    "raw_flag_rate": ("share of evaluated rows whose score is above the threshold, before the alarm rules",
                      "0-1"),
    "alarm_rules": "the alarm rules applied to the flags: min_length consecutive flagged rows start an alarm, "
                   "gaps up to merge_gap rows do not end it, no new alarm for cooldown rows after one ends; with "
                   "focus q, each alarm then narrowed to its rows where the q-quantile of the covering windows' "
                   "scores is above the threshold (dropped without any)",
    "notes": "facts about the data that explain a missing (n/a) metric",
    "early_window": ("rows before a labelled event in which an alarm still counts as finding it (evaluate "
                     "--early-window)", "rows"),
    "warnings": "read before quoting the numbers above",
}

# How to read each plot: the optional third item of an image, e.g.
# ("Alarms on the data", plot_alarms(...), PLOT_HELP["alarms"]).
PLOT_HELP: dict[str, str] = {
    "training_history": "Loss per epoch. A validation loss far above the training loss means "
                        "the model learned its training rows rather than normal behaviour.",
    "alarms": "The data with the alarms raised on it (red) and the labelled anomalies (green, in "
              "the strip below). A red band without green is a false alarm; green without red "
              "is a missed event.",
    "scores": "Anomaly score per row (higher = more unusual). Rows above the dashed threshold "
              "are marked (red dots): before the alarm rules, so more than the rows in an alarm that "
              "n_flagged counts; green bands are the labelled anomalies.",
    "histogram": "How often each score occurs, for normal and anomalous rows separately. The "
                 "less the two overlap, the easier they are to tell apart; the dashed line is "
                 "the threshold.",
    "pr_roc": "Every possible threshold at once. Left: precision against recall (the higher, "
              "the fewer false alarms per event found). Right: found anomalies against false "
              "alarms; the dashed diagonal is guessing.",
    "heatmap": "Reconstruction error per feature over time (bright = large): which sensors "
               "the model could not reproduce, and when.",
    "reconstruction": "One window as the model saw it (solid) and as it rebuilt it (dashed), "
                      "the features it rebuilt worst in this window first (the alarms table's top_features "
                      "rank them over all the alarm's rows, so the two orders can differ).",
}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1250px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { margin-top: 1.8em; }
h3 { margin: 1em 0 .3em; font-size: 1em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .3em .7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.help { color: #555; }
tr.group th { background: #e9eef5; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .92em; margin-top: .3em; }
figcaption strong { color: #222; }
ul.notes li { margin: .2em 0; }
.missing { color: #999; }
"""


def render_report(
    *,
    title: str,
    summary: Mapping,
    metrics: Mapping,
    images: Iterable[tuple] = (),
    tables: Iterable[tuple[str, pd.DataFrame]] = (),
    notes: Iterable[str] = (),
    metric_help: Mapping | None = None,
    threshold_info: Mapping | None = None,
) -> str:
    """The report as one self-contained HTML page (a string; nothing is written).

    Parameters
    ----------
    title : str
        Page title and heading.
    summary : dict
        Run facts (data file, model, rows ...), shown as a key/value table.
    metrics : dict
        As returned by ``detection_metrics`` / ``sequence_metrics``; nested dicts become
        ``parent / child`` rows, lists become bullet lists. Every key is shown.
    images : list of (caption, image) or (caption, image, explanation)
        ``image`` is a matplotlib ``Figure`` (rendered here) or PNG bytes; embedded as data
        URIs, in this order. ``explanation`` (optional) says how to read the plot.
    tables : list of (caption, DataFrame)
        Shown after the images; the first 100 rows of each.
    notes : list of str
        Shown as a bullet list at the end.
    metric_help : dict, optional
        Metric key -> one-line explanation, or (explanation, unit); the unit is printed
        after the value. A nested metric is looked up as ``"parent / child"``, then as
        ``"child"``. Default :data:`METRIC_HELP`; ``{}`` shows no explanations. Keys without
        help are shown all the same.
    threshold_info : dict, optional
        Shown as a "Threshold" table, e.g. ``{"rule": "sigma:3", "value": 0.8, "fitted on":
        "validation rows, how=max", "alternatives": {"quantile:0.99": "flags 1.2% of rows"}}``;
        a nested dict (the alternatives) becomes its own two-column table.

    Raises
    ------
    DataError
        An image that is neither a Figure nor PNG bytes, or a malformed ``metric_help``.
    """
    help_texts = _check_help(METRIC_HELP if metric_help is None else metric_help)
    embedded_images = [_embedded_image(entry) for entry in images]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_text(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_text(title)}</h1>",
        "<h2>Summary</h2>",
        _key_value_table(summary),
        "<h2>Metrics</h2>",
        _metrics_table(metrics, help_texts),
    ]
    if threshold_info:
        parts.append("<h2>Threshold</h2>")
        parts.append(_threshold_tables(threshold_info))
    if embedded_images:
        parts.append("<h2>Plots</h2>")
    for caption, data_uri, explanation in embedded_images:
        text = f"<strong>{_text(caption)}</strong>"
        if explanation:
            text += f" {_text(explanation)}"
        parts.append(
            f'<figure><img src="{data_uri}" alt="{_text(caption)}">'
            f"<figcaption>{text}</figcaption></figure>"
        )
    for caption, table in tables:
        parts.append(f"<h2>{_text(caption)}</h2>")
        parts.append(_data_frame_html(table))
    notes = list(notes)
    if notes:
        parts.append("<h2>Notes</h2>")
        parts.append(_bullet_list(notes))
    parts.append("</body></html>")
    return "\n".join(parts)


def _check_help(metric_help: Mapping) -> dict[str, tuple[str, str | None]]:
    """{key: (explanation, unit or None)} from str or (str, str) values."""
    if not isinstance(metric_help, Mapping):
        raise DataError(
            f"metric_help must be a dict of key -> text, got {type(metric_help).__name__}"
        )
    checked = {}
    for key, value in metric_help.items():
        if isinstance(value, str):
            checked[str(key)] = (value, None)
        elif (isinstance(value, tuple) and len(value) == 2
              and all(isinstance(part, str) for part in value)):
            checked[str(key)] = value
        else:
            raise DataError(
                f"metric_help[{key!r}] must be a text or a (text, unit) pair, got {value!r}"
            )
    return checked


def _metrics_table(metrics: Mapping, help_texts: dict) -> str:
    with_help = bool(help_texts)
    rows = []
    for name, leaf, value, is_group in _walk(metrics):
        if isinstance(value, (list, tuple)) and not value:
            continue  # an empty list of notes: nothing to read
        explanation, unit = help_texts.get(name) or help_texts.get(leaf) or ("", None)
        if is_group:
            if explanation:  # a heading row for a nested dict that has its own help
                rows.append(f'<tr class="group"><th colspan="{3 if with_help else 2}">'
                            f"{_text(name)}: {_text(explanation)}</th></tr>")
            continue
        help_cell = f'<td class="help">{_text(explanation)}</td>' if with_help else ""
        rows.append(f"<tr><th>{_text(name)}</th>{_value_cell(value, unit)}{help_cell}</tr>")
    head = "<thead><tr><th>metric</th><th>value</th><th>meaning</th></tr></thead>"
    return f"<table>{head if with_help else ''}<tbody>{''.join(rows)}</tbody></table>"


def _walk(values: Mapping, prefix: str = ""):
    """(flattened name, own key, value, is_group) with nested dicts unfolded after their group."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield name, str(key), value, True
            yield from _walk(value, prefix=f"{name} / ")
        else:
            yield name, str(key), value, False


def _threshold_tables(threshold_info: Mapping) -> str:
    plain = {key: value for key, value in threshold_info.items() if not isinstance(value, Mapping)}
    parts = [_key_value_table(plain)] if plain else []
    for key, value in threshold_info.items():
        if isinstance(value, Mapping):
            parts.append(f"<h3>{_text(key)}</h3>")
            parts.append(_key_value_table(value))
    return "\n".join(parts)


def _key_value_table(values: Mapping) -> str:
    rows = "".join(
        f"<tr><th>{_text(name)}</th>{_value_cell(value)}</tr>"
        for name, _, value, is_group in _walk(values)
        if not is_group
    )
    return f"<table><tbody>{rows}</tbody></table>"


def _value_cell(value, unit: str | None = None) -> str:
    # a range is no unit to read after the number ("1 0-1" read as "1 to 0-1"): it follows in parentheses
    shown_unit = f"(of {unit.replace('-', ' to ')})" if unit and unit[0].isdigit() else unit
    if shown_unit and value == 1 and shown_unit.endswith("s") and not isinstance(value, bool):
        shown_unit = shown_unit[:-1]  # "1 row", "1 event"
    suffix = f" {_text(shown_unit)}" if unit else ""
    if value is None:
        return '<td class="missing">n/a</td>'
    if isinstance(value, bool):
        return f"<td>{_text(value)}</td>"
    if isinstance(value, int):
        return f'<td class="number">{value}{suffix}</td>'
    if isinstance(value, float):
        shown = f"{value:.4g}" if math.isfinite(value) else str(value)
        return f'<td class="number">{shown}{suffix}</td>'
    if isinstance(value, (list, tuple)):
        return f"<td>{_bullet_list(value) if value else ''}</td>"
    return f"<td>{_text(value)}{suffix}</td>"


def _bullet_list(items) -> str:
    return '<ul class="notes">' + "".join(f"<li>{_text(item)}</li>" for item in items) + "</ul>"


def _data_frame_html(table: pd.DataFrame) -> str:
    shown = table.head(MAX_TABLE_ROWS)
    html_table = shown.to_html(
        escape=True,
        index=not isinstance(table.index, pd.RangeIndex),
        border=0,
        float_format="{:.4g}".format,
    )
    if len(table) > len(shown):
        html_table += f"<p>First {len(shown)} of {len(table)} rows.</p>"
    return html_table


def _embedded_image(entry) -> tuple[str, str, str | None]:
    """(caption, data URI, explanation) from (caption, Figure or PNG bytes[, explanation])."""
    if not isinstance(entry, tuple) or len(entry) not in (2, 3):
        raise DataError(
            f"each image must be (caption, image) or (caption, image, explanation), got {entry!r}"
        )
    caption, image, *rest = entry
    if isinstance(image, Figure):
        image = figure_png(image)
    elif isinstance(image, (bytes, bytearray, memoryview)):
        image = bytes(image)
        if not image.startswith(PNG_SIGNATURE):
            raise DataError(f"image {caption!r}: not PNG data; the report embeds PNG images only")
    else:
        raise DataError(
            f"image {caption!r}: expected a matplotlib Figure or PNG bytes, got "
            f"{type(image).__name__}; the report reads no files, pass the figure itself"
        )
    data_uri = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
    return str(caption), data_uri, (rest[0] if rest else None)


def _text(value) -> str:
    return html.escape(str(value))
