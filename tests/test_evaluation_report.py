import base64
import re

import numpy as np
import pandas as pd
import pytest

from lstmae.evaluation import plot_training_history, write_report
from lstmae.exceptions import DataError

METRICS = {
    "roc_auc": 0.91234,
    "pr_auc": None,
    "n": 120,
    "confusion_matrix": {"tn": 90, "fp": 5, "fn": 3, "tp": 22},
    "notes": ["y_true <b>bold</b>"],
}


@pytest.fixture
def image(tmp_path):
    return plot_training_history({"loss": [1.0, 0.5]}, tmp_path / "history.png")


def write(tmp_path, image, **overrides):
    arguments = dict(
        title="Report <script>alert(1)</script>",
        summary={"data file": "a&b.csv", "threshold rule": "quantile:0.99"},
        metrics=METRICS,
        images=[("Training <history>", image)],
        tables=[("Events", pd.DataFrame({"feature": ["<i>temp</i>"], "peak": [1.23456]}))],
        notes=["note with \"quotes\" & <tags>"],
    )
    arguments.update(overrides)
    return write_report(tmp_path / "report.html", **arguments)


def test_report_is_self_contained_with_embedded_png(tmp_path, image):
    text = write(tmp_path, image).read_text(encoding="utf-8")
    image_sources = re.findall(r'<img src="([^"]*)"', text)
    assert len(image_sources) == 1
    prefix = "data:image/png;base64,"
    assert image_sources[0].startswith(prefix)
    assert base64.b64decode(image_sources[0][len(prefix):]) == image.read_bytes()
    assert 'src="http' not in text and 'href="http' not in text
    assert "<link" not in text and "@import" not in text
    assert "<style>" in text


def test_all_text_is_escaped(tmp_path, image):
    text = write(tmp_path, image).read_text(encoding="utf-8")
    assert "<script>" not in text
    assert "Report &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "a&amp;b.csv" in text
    assert "Training &lt;history&gt;" in text
    assert "&lt;i&gt;temp&lt;/i&gt;" in text
    assert "y_true &lt;b&gt;bold&lt;/b&gt;" in text
    assert "note with &quot;quotes&quot; &amp; &lt;tags&gt;" in text


def test_metrics_table_flattens_nested_dicts(tmp_path, image):
    text = write(tmp_path, image).read_text(encoding="utf-8")
    assert re.search(r"<th>confusion_matrix / tp</th><td[^>]*>22</td>", text)
    assert re.search(r"<th>roc_auc</th><td[^>]*>0.9123</td>", text)
    assert re.search(r"<th>pr_auc</th><td[^>]*>n/a</td>", text)


def test_long_tables_are_cut_with_a_note(tmp_path, image):
    table = pd.DataFrame({"row": np.arange(250)})
    text = write(tmp_path, image, tables=[("Big", table)]).read_text(encoding="utf-8")
    assert "First 100 of 250 rows." in text
    assert "<td>99</td>" in text and "<td>100</td>" not in text


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path, image):
    write(tmp_path, image)
    write(tmp_path, image, title="Second run")  # overwrites in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.png", "report.html"]
    assert "Second run" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_failed_write_keeps_the_old_report_and_no_temp_file(tmp_path, image, monkeypatch):
    write(tmp_path, image, title="Old")

    def broken_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr("lstmae.evaluation.report.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path, image, title="New")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.png", "report.html"]
    assert "Old" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_non_png_image_raises_data_error(tmp_path, image):
    not_png = tmp_path / "plot.png"
    not_png.write_text("not an image")
    with pytest.raises(DataError, match=r"plot.png: not a PNG file"):
        write(tmp_path, image, images=[("Fake", not_png)])
    assert not (tmp_path / "report.html").exists()
