"""benchmarks/detection/alarm_focus.py: alarms narrowed to the rows their covering windows agree on, on cached
networks' window errors."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from conftest import cached_networks_of, toy_cache  # noqa: E402
from detection import alarm_focus  # noqa: E402

WINDOW = 10


def toy_series(seed: int = 0):
    """A task and what error_scales caches for it, made up: every window over the labelled rows 1200-1205 has a
    large error (an anomaly: its mean-of-windows rows rise a window's length before and after it), and one lone
    window at row 300 has a larger one (no anomaly: no row's covering windows mostly agree on it)."""
    rng = np.random.default_rng(seed)
    n_test, held_rows = 1500, 300
    labels = np.zeros(n_test, np.int8)
    labels[1200:1206] = 1
    test = rng.gamma(2.0, 0.1, (n_test - WINDOW + 1, 1))
    test[1200 - WINDOW + 1:1206] += 3.0
    test[300] += 60.0
    held = rng.gamma(2.0, 0.1, (held_rows - WINDOW + 1, 1))
    cached = toy_cache(labels, test, held, WINDOW)
    return SimpleNamespace(family="ucr", name="toy", train=rng.normal(size=(400, 1)).astype(np.float32)), cached


def test_focus_narrows_the_true_alarm_to_its_anomaly_and_drops_the_lone_windows_alarm(tmp_path, monkeypatch):
    cached_networks_of(monkeypatch, alarm_focus.error_scales, tmp_path, toy_series)
    out = tmp_path / "out"
    assert alarm_focus.main(["--datasets", "ucr", "--seeds", "0,1", "--quantiles", "0.25", "--out", str(out)]) == 0
    report = json.loads((out / "alarm_focus.json").read_text())
    series = report["results"]["ucr"]["0"]["toy"]
    mean, kept, dropped = (series[name] for name in ("mean", "q=0.25", "q=0.25+drop"))
    assert mean["event_recall"] == kept["event_recall"] == dropped["event_recall"] == 1.0
    assert mean["event_precision"] == kept["event_precision"] == 0.5  # the lone window's alarm is false
    assert dropped["event_precision"] == 1.0 and dropped["alarm_rate"] < kept["alarm_rate"] < mean["alarm_rate"]
    assert dropped["alarm_rate"] < 0.6 * mean["alarm_rate"] and dropped["f1"] > mean["f1"]  # narrower, on the label
    text = (out / "alarm_focus.md").read_text()
    assert "### Seed 0" in text and "| q=0.25+drop | " in text
