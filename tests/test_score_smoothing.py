"""benchmarks/detection/score_smoothing.py: every detector's VUS-PR with its row scores smoothed alike."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from detection import error_scales, score_smoothing  # noqa: E402
from test_threshold_rules import cached_errors  # noqa: E402


def toy_task(cached: dict) -> SimpleNamespace:
    """A univariate NAB-like series whose 40 labelled test rows (from 1200) hold a level shift."""
    rng = np.random.default_rng(0)
    n_test = len(cached["labels"])
    test = np.sin(np.arange(n_test) / 8.0)[:, None] + 0.1 * rng.standard_normal((n_test, 1))
    test[cached["labels"] == 1] += 2.0
    train = np.sin(np.arange(600) / 8.0)[:, None] + 0.1 * rng.standard_normal((600, 1))
    return SimpleNamespace(family="nab", name="toy", train=train, test=test, labels=cached["labels"])


def run(tmp_path, monkeypatch, widths: str = "1,60") -> dict:
    cached = cached_errors(burst=40)
    path = tmp_path / "toy.npz"
    np.savez(path, **cached)
    monkeypatch.setattr(score_smoothing.error_scales, "cached_networks",
                        lambda *args: ([(toy_task(cached), 0, path)], 0))
    monkeypatch.setattr(score_smoothing.study, "peer_detectors", lambda settings: [])  # the bench extra's peers: slow
    monkeypatch.setattr(score_smoothing.study, "set_threads", lambda threads: None)  # keep this process's threads
    out = tmp_path / "out"
    assert score_smoothing.main(["--datasets", "nab", "--seeds", "0", "--widths", widths, "--out", str(out)]) == 0
    return cached, json.loads((out / "score_smoothing.json").read_text()), (out / "score_smoothing.md").read_text()


def test_each_detector_is_ranked_at_each_width_and_lstmae_unsmoothed_is_the_cache_s_vus_pr(tmp_path, monkeypatch):
    cached, report, text = run(tmp_path, monkeypatch)
    toy = report["series"]["nab"]["0"]["toy"]
    assert set(toy) == {"lstmae", "isolation_forest", "pca", "rolling_zscore"}
    assert toy["lstmae"]["1"] == pytest.approx(error_scales.score(cached)["vus_pr"])  # threshold_rules.py's figure
    assert all(0 <= value <= 1 for result in toy.values() for value in result.values())
    assert toy["lstmae"]["60"] != toy["lstmae"]["1"]
    assert report["means"]["nab"]["0"]["pca"] == toy["pca"]  # one series: its mean is itself
    best = max(result["60"] for result in toy.values())
    assert "| NAB (1) | 0 | lstmae | " in text and f"**{best:.3f}**" in text
    up = int(toy["lstmae"]["60"] > toy["lstmae"]["1"])
    assert f"{toy['lstmae']['60']:.3f}{'**' if toy['lstmae']['60'] == best else ''} ({up} up) |" in text
    assert text.index("| lstmae |") < text.index("| IsolationForest |")  # lstmae first


def test_a_bad_width_exits_with_one_line(tmp_path, monkeypatch):
    for widths in ("0,50", "fifty"):
        with pytest.raises(SystemExit, match=rf"--widths '{widths}': give whole numbers of rows >= 1"):
            score_smoothing.main(["--widths", widths, "--out", str(tmp_path)])
