"""One self-contained HTML report: inline CSS, PNG images embedded as base64 data URIs.

The file needs nothing else to display (no network, no sibling files), so it can be mailed
or archived alone. All text is HTML-escaped. The file is written atomically: a temporary
file in the same directory is renamed over the target, so a crash never leaves half a report.
"""

from __future__ import annotations

import base64
import html
import math
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from lstmae.exceptions import DataError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TABLE_ROWS = 100

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1250px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { margin-top: 1.8em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .3em .7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .92em; margin-top: .3em; }
ul.notes li { margin: .2em 0; }
.missing { color: #999; }
"""


def write_report(
    path,
    *,
    title: str,
    summary: dict,
    metrics: dict,
    images: list[tuple[str, str]],
    tables: Iterable[tuple[str, pd.DataFrame]] = (),
    notes: Iterable[str] = (),
) -> Path:
    """Write one self-contained ``report.html``.

    Parameters
    ----------
    path : str or Path
        The HTML file to write; its directory must exist.
    title : str
        Page title and heading.
    summary : dict
        Run facts (data file, model, threshold rule ...), shown as a key/value table.
    metrics : dict
        As returned by ``detection_metrics`` / ``sequence_metrics``; nested dicts become
        ``parent / child`` rows, lists become bullet lists.
    images : list of (caption, png_path)
        PNG files embedded as data URIs, in this order.
    tables : list of (caption, DataFrame)
        Shown after the images; the first 100 rows of each.
    notes : list of str
        Shown as a bullet list at the end.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    embedded_images = [(caption, _png_data_uri(image_path)) for caption, image_path in images]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_text(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_text(title)}</h1>",
        "<h2>Summary</h2>",
        _key_value_table(summary),
        "<h2>Metrics</h2>",
        _key_value_table(metrics),
    ]
    if embedded_images:
        parts.append("<h2>Plots</h2>")
    for caption, data_uri in embedded_images:
        parts.append(
            f'<figure><img src="{data_uri}" alt="{_text(caption)}">'
            f"<figcaption>{_text(caption)}</figcaption></figure>"
        )
    for caption, table in tables:
        parts.append(f"<h2>{_text(caption)}</h2>")
        parts.append(_data_frame_html(table))
    notes = list(notes)
    if notes:
        parts.append("<h2>Notes</h2>")
        parts.append(_bullet_list(notes))
    parts.append("</body></html>")
    _write_atomically(path, "\n".join(parts))
    return path


def _key_value_table(values: Mapping) -> str:
    rows = "".join(
        f"<tr><th>{_text(key)}</th>{_value_cell(value)}</tr>"
        for key, value in _flatten(values)
    )
    return f"<table><tbody>{rows}</tbody></table>"


def _flatten(values: Mapping, prefix: str = ""):
    """(key, value) pairs with nested dicts unfolded as ``parent / child`` keys."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, prefix=f"{name} / ")
        else:
            yield name, value


def _value_cell(value) -> str:
    if value is None:
        return '<td class="missing">n/a</td>'
    if isinstance(value, bool):
        return f"<td>{_text(value)}</td>"
    if isinstance(value, int):
        return f'<td class="number">{value}</td>'
    if isinstance(value, float):
        shown = f"{value:.4g}" if math.isfinite(value) else str(value)
        return f'<td class="number">{shown}</td>'
    if isinstance(value, (list, tuple)):
        return f"<td>{_bullet_list(value) if value else ''}</td>"
    return f"<td>{_text(value)}</td>"


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


def _png_data_uri(image_path) -> str:
    image_bytes = Path(image_path).read_bytes()
    if not image_bytes.startswith(PNG_SIGNATURE):
        raise DataError(f"{image_path}: not a PNG file; the report embeds PNG images only")
    return "data:image/png;base64," + base64.b64encode(image_bytes).decode("ascii")


def _text(value) -> str:
    return html.escape(str(value))


def _write_atomically(path: Path, text: str) -> None:
    # A unique name in the same directory (so os.replace is a rename on one file system),
    # opened with "x" so it gets the usual umask permissions, unlike tempfile.mkstemp's 0600.
    temp_path = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp_path, "x", encoding="utf-8") as temp_file:
            temp_file.write(text)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
