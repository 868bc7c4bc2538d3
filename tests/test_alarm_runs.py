"""benchmarks/detection/alarm_runs.py: alarm runs beside the labelled ranges, per series."""
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import lstmae  # noqa: E402
from detection import alarm_runs  # noqa: E402
from detection.datasets import SeriesTask  # noqa: E402


def test_spans_are_shown_with_lengths_marks_and_a_cut():
    assert alarm_runs.shown([(3, 5), (9, 9)], [False, True]) == "3-5 (3), 9-9 (1)*"
    assert alarm_runs.shown([]) == "none"
    assert alarm_runs.shown([(i, i) for i in range(5)], most=2) == "0-0 (1), 1-1 (1), ... 3 more"


def test_series_row_reports_the_alarms_of_a_fitted_model(monkeypatch):
    rng = np.random.default_rng(0)
    t = np.arange(1400)
    values = (np.sin(2 * np.pi * t / 40) + 0.05 * rng.normal(size=len(t))).astype(np.float32)[:, None]
    test = values[800:].copy()
    test[300:310] += 4.0  # a burst the network has never seen
    labels = np.zeros(len(test), np.int8)
    labels[300:310] = 1
    task = SeriesTask("toy", "burst", values[:800], test, labels)
    monkeypatch.setattr(lstmae, "LSTMAutoencoder", partial(lstmae.LSTMAutoencoder, encoder=(8,), epochs=5))
    row = alarm_runs.series_row(task, window=20, seed=0)
    assert row["labelled"] == [(300, 309)] and row["labelled_rows"] == 10
    assert any(row["true_runs"]), row["alarm_runs"]  # the burst raises an alarm that touches it
    assert row["alarm_rows"] == sum(b - a + 1 for a, b in row["alarm_runs"])
    text = alarm_runs.markdown("toy", [row], window=20, seed=0)
    assert f"| burst | 600 | 300-309 (10) | " in text and f"{row['alarm_rows']} / 10 = " in text
    assert f"row threshold `{lstmae.config.DEFAULT_THRESHOLDS['rows']}`" in text
