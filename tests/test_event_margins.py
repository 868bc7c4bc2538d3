"""benchmarks/detection/event_margins.py: each labelled event's peak against the highest row outside the labels."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from conftest import cached_networks_of, toy_cache  # noqa: E402
from detection import event_margins  # noqa: E402

WINDOW = 10


def toy_series(seed: int = 0):
    """Made-up cached window errors: two labelled events, one whose windows stand far above the rest (found)
    and one below a normal burst elsewhere (no threshold finds it without a false alarm)."""
    rng = np.random.default_rng(seed)
    n_test, held_rows = 1500, 300
    labels = np.zeros(n_test, np.int8)
    labels[400:406] = 1
    labels[1200:1206] = 1
    test = rng.gamma(2.0, 0.1, (n_test - WINDOW + 1, 1))
    test[400 - WINDOW + 1:406] += 5.0   # the clear event
    test[1200 - WINDOW + 1:1206] += 1.0  # the faint one
    test[800 - WINDOW + 1:806] += 2.0   # a normal stretch that scores higher
    held = rng.gamma(2.0, 0.1, (held_rows - WINDOW + 1, 1))
    cached = toy_cache(labels, test, held, WINDOW)
    return SimpleNamespace(family="ucr", name="toy", train=rng.normal(size=(400, 1)).astype(np.float32)), cached


def test_a_faint_event_below_a_normal_burst_has_a_margin_under_one(tmp_path, monkeypatch):
    cached_networks_of(monkeypatch, event_margins.error_scales, tmp_path, toy_series)
    out = tmp_path / "out"
    assert event_margins.main(["--datasets", "ucr", "--seeds", "0,1", "--out", str(out)]) == 0
    clear, faint = json.loads((out / "event_margins.json").read_text())["results"]["ucr"]["0"]["toy"]
    assert (clear["start"], clear["end"], faint["start"], faint["end"]) == (400, 405, 1200, 1205)
    assert clear["margin"] > 1 > faint["margin"]  # the normal burst is above the faint event, below the clear one
    assert clear["highest_outside"] == faint["highest_outside"] == pytest.approx(faint["peak"] / faint["margin"])
    # both above the threshold (fitted on quiet held-out rows), the faint one only with the normal burst beside it
    assert clear["flagged"] and faint["flagged"] and clear["threshold"] == faint["threshold"] < faint["highest_outside"]
    text = (out / "event_margins.md").read_text()
    assert "| UCR anomaly 135-138 | toy | 0 | 1200-1205 | " in text
