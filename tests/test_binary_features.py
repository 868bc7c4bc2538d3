"""benchmarks/detection/binary_features.py: 0/1 features scored or kept as context, on the same networks."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from conftest import cached_networks_of, toy_cache  # noqa: E402
from detection import binary_features  # noqa: E402

WINDOW = 10


def flagged_series(seed: int = 0):
    """A task whose second feature is a 0/1 flag in training, and what error_scales caches for it, made up:
    the labelled test windows (rows 1200-1219) burst in the first feature, while the flag's error bursts, far
    larger, in unlabelled windows (rows 300-339)."""
    rng = np.random.default_rng(seed)
    train = np.column_stack([rng.normal(size=400), rng.random(400) < 0.1]).astype(np.float32)
    n_test, held_rows = 1500, 300
    labels = np.zeros(n_test, np.int8)
    labels[1200:1220] = 1
    test = rng.gamma(2.0, 0.1, (n_test - WINDOW + 1, 2))
    test[1200:1211, 0] += 3.0
    test[300:331, 1] += 30.0
    held = rng.gamma(2.0, 0.1, (held_rows - WINDOW + 1, 2))
    cached = toy_cache(labels, test, held, WINDOW)
    return SimpleNamespace(family="msl", name="toy", train=train), cached


def test_a_flag_left_out_of_the_score_no_longer_outranks_the_anomaly(tmp_path, monkeypatch):
    cached_networks_of(monkeypatch, binary_features.error_scales, tmp_path, flagged_series)
    out = tmp_path / "out"
    assert binary_features.main(["--datasets", "msl", "--seeds", "0,1", "--out", str(out)]) == 0
    report = json.loads((out / "binary_features.json").read_text())
    assert report["binary_features"] == {"msl": [1]}
    scored, context = (report["summary"][mode]["msl"]["0"] for mode in ("scored", "context"))
    assert context["vus_pr"] > 0.8 > 0.5 > scored["vus_pr"]
    assert context["event_recall"] == 1.0 and context["goals_met"]
    assert scored["storms"] == context["storms"] == 0
    text = (out / "binary_features.md").read_text()
    assert "| msl | 1 | 0 | " in text and f"**{context['vus_pr']:.3f} / 1.00 / " in text
    vus = [np.mean([report["series"][mode]["msl"][seed]["toy"]["vus_pr"] for seed in ("0", "1")])
           for mode in ("scored", "context")]
    assert f"- msl: toy {vus[0]:.3f} / {vus[1]:.3f} (0 / 0)" in text  # each series over the seeds


def test_without_a_flag_both_ways_score_the_same():
    task, cached = flagged_series()
    assert binary_features.error_scales.task_binary_features(task).tolist() == [False, True]
    task.train[:, 1] += 0.5  # no longer 0/1
    binary = binary_features.error_scales.task_binary_features(task)
    assert not binary.any()
    np.testing.assert_array_equal(binary_features.error_scales.lstmae_scorer(cached, binary)("test"),
                                  binary_features.error_scales.lstmae_scorer(cached)("test"))
