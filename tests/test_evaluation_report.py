import base64
import re

import numpy as np
import pandas as pd
import pytest

import lstmae.evaluation
from lstmae.evaluation import (
    METRIC_HELP,
    PLOT_HELP,
    figure_png,
    plot_training_history,
    render_report,
)
from lstmae.exceptions import DataError

METRICS = {
    "roc_auc": 0.91234,
    "pr_auc": None,
    "n": 120,
    "mean_lead_time": 2.5,
    "confusion_matrix": {"tn": 90, "fp": 5, "fn": 3, "tp": 22},
    "my_new_metric": 7,
    "notes": ["y_true <b>bold</b>"],
}
PREFIX = "data:image/png;base64,"


@pytest.fixture
def figure():
    return plot_training_history({"loss": [1.0, 0.5]})


@pytest.fixture(autouse=True)
def no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield
    assert list(tmp_path.iterdir()) == []  # rendering writes nothing


def render(figure, **overrides):
    arguments = dict(
        title="Report <script>alert(1)</script>",
        summary={"data file": "a&b.csv", "rows": 120},
        metrics=METRICS,
        images=[("Training <history>", figure)],
        tables=[("Events", pd.DataFrame({"feature": ["<i>temp</i>"], "peak": [1.23456]}))],
        notes=["note with \"quotes\" & <tags>"],
    )
    arguments.update(overrides)
    return render_report(**arguments)


def image_sources(text):
    return re.findall(r'<img src="([^"]*)"', text)


def test_report_is_self_contained_with_the_figure_embedded(figure):
    text = render(figure)
    assert isinstance(text, str) and text.startswith("<!DOCTYPE html>")
    (source,) = image_sources(text)
    assert source.startswith(PREFIX)
    assert base64.b64decode(source[len(PREFIX):]) == figure_png(figure)
    assert 'src="http' not in text and 'href="http' not in text
    assert "<link" not in text and "@import" not in text
    assert "<style>" in text


def test_png_bytes_are_embedded_as_given_in_order(figure):
    png = figure_png(figure)
    other = figure_png(plot_training_history({"loss": [3.0, 2.0, 1.0]}))
    text = render(figure, images=[("first", png), ("second", bytearray(other), "how to read it")])
    sources = image_sources(text)
    assert [base64.b64decode(s[len(PREFIX):]) for s in sources] == [png, other]
    assert "<strong>second</strong> how to read it</figcaption>" in text
    assert "<strong>first</strong></figcaption>" in text


def test_all_text_is_escaped(figure):
    text = render(figure, images=[("Training <history>", figure, "a <b> c")])
    assert "<script>" not in text
    assert "Report &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "a&amp;b.csv" in text
    assert "Training &lt;history&gt;" in text
    assert "a &lt;b&gt; c" in text
    assert "&lt;i&gt;temp&lt;/i&gt;" in text
    assert "y_true &lt;b&gt;bold&lt;/b&gt;" in text
    assert "note with &quot;quotes&quot; &amp; &lt;tags&gt;" in text


def test_metrics_get_their_explanation_and_unit_and_no_key_is_dropped(figure):
    text = render(figure)  # the built-in METRIC_HELP
    assert "<th>metric</th><th>value</th><th>meaning</th>" in text
    roc_help, _unit = METRIC_HELP["roc_auc"]
    assert re.search(r"<th>roc_auc</th><td[^>]*>0.9123[^<]*</td><td[^>]*>" + re.escape(roc_help), text)
    assert re.search(r"<th>mean_lead_time</th><td[^>]*>2.5 rows</td>", text)
    assert re.search(r"<th>n</th><td[^>]*>120 rows</td>", text)
    assert re.search(r"<th>pr_auc</th><td[^>]*>n/a</td>", text)
    # Nested: a heading row with the group's help, then each child with its own.
    assert "confusion_matrix: " + METRIC_HELP["confusion_matrix"][0] in text
    assert re.search(r"<th>confusion_matrix / fp</th><td[^>]*>5 rows</td>"
                     r"<td[^>]*>normal but flagged: false alarms</td>", text)
    # A key the help does not know is shown as it is, with an empty explanation.
    assert re.search(r'<th>my_new_metric</th><td[^>]*>7</td><td class="help"></td>', text)


def test_metric_help_given_by_the_caller(figure):
    text = render(figure, metric_help={"roc_auc": "area under <ROC>", "tp": ("found", "events")})
    assert re.search(r"<th>roc_auc</th><td[^>]*>0.9123</td><td[^>]*>area under &lt;ROC&gt;</td>",
                     text)
    assert re.search(r"<th>confusion_matrix / tp</th><td[^>]*>22 events</td><td[^>]*>found</td>",
                     text)  # a nested key falls back to its own name
    assert re.search(r"<th>n</th><td[^>]*>120</td><td[^>]*></td>", text)  # no default mixed in
    plain = render(figure, metric_help={})
    assert "<th>meaning</th>" not in plain
    assert re.search(r"<th>confusion_matrix / tp</th><td[^>]*>22</td></tr>", plain)


def test_threshold_section_with_alternatives(figure):
    info = {
        "rule": "sigma:3",
        "value": 0.8,
        "fitted on": "validation rows, how=max",
        "alternatives": {"quantile:0.99": "flags 1.2% of rows", "sigma:4": "flags <0.1%"},
    }
    text = render(figure, threshold_info=info)
    section = text[text.index("<h2>Threshold</h2>"):text.index("<h2>Plots</h2>")]
    assert re.search(r"<th>rule</th><td>sigma:3</td>", section)
    assert re.search(r"<th>value</th><td[^>]*>0.8</td>", section)
    assert "<th>fitted on</th><td>validation rows, how=max</td>" in section
    assert "<h3>alternatives</h3>" in section
    assert "<th>quantile:0.99</th><td>flags 1.2% of rows</td>" in section
    assert "<th>sigma:4</th><td>flags &lt;0.1%</td>" in section
    assert "<h2>Threshold</h2>" not in render(figure)


def test_long_tables_are_cut_with_a_note(figure):
    table = pd.DataFrame({"row": np.arange(250)})
    text = render(figure, tables=[("Big", table)])
    assert "First 100 of 250 rows." in text
    assert "<td>99</td>" in text and "<td>100</td>" not in text


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ([("Fake", b"not an image")], r"image 'Fake': not PNG data"),
        ([("Old API", "plots/history.png")],
         r"image 'Old API': expected a matplotlib Figure or PNG bytes, got str"),
        ([("only a caption",)], r"each image must be \(caption, image\)"),
    ],
)
def test_bad_images_raise_data_error(figure, images, message):
    with pytest.raises(DataError, match=message):
        render(figure, images=images)


@pytest.mark.parametrize(
    ("metric_help", "message"),
    [
        ({"roc_auc": 3}, r"metric_help\['roc_auc'\] must be a text or a \(text, unit\) pair"),
        ({"n": ("rows",)}, r"metric_help\['n'\] must be"),
        (["roc_auc"], r"metric_help must be a dict"),
    ],
)
def test_bad_metric_help_raises_data_error(figure, metric_help, message):
    with pytest.raises(DataError, match=message):
        render(figure, metric_help=metric_help)


def test_plot_help_explains_each_kind_of_plot(figure):
    assert set(PLOT_HELP) == {"training_history", "alarms", "scores", "histogram", "pr_roc",
                              "heatmap", "reconstruction"}
    text = render(figure, images=[("Training curves", figure, PLOT_HELP["training_history"])])
    assert f"<strong>Training curves</strong> {PLOT_HELP['training_history']}</figcaption>" in text


def test_package_exports_the_in_memory_api_only():
    names = set(lstmae.evaluation.__all__)
    assert {"render_report", "figure_png", "plot_alarms", "METRIC_HELP", "PLOT_HELP"} <= names
    assert "write_report" not in names and not hasattr(lstmae.evaluation, "write_report")
    assert all(hasattr(lstmae.evaluation, name) for name in names)


def test_a_range_unit_reads_as_a_range_not_as_a_second_number(figure):
    # the cell read "1 0-1", as "1 to 0-1"
    text = render(figure, metrics={"event_recall": 1.0, "n": 120})
    assert re.search(r"<th>event_recall</th><td[^>]*>1 \(of 0 to 1\)</td>", text)
    assert re.search(r"<th>n</th><td[^>]*>120 rows</td>", text)
    assert re.search(r"<th>n</th><td[^>]*>1 row</td>", render(figure, metrics={"n": 1}))  # not "1 rows"
