"""benchmarks/detection/error_scales.py: the normalized error model's smallest scale, before and now."""
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import lstmae  # noqa: E402
from detection import error_scales  # noqa: E402
from detection.datasets import SeriesTask  # noqa: E402


def flag_and_burst_task() -> SeriesTask:
    """A sine with a labelled burst in its test part, beside a flag that never switches in training and
    switches on once, far from the burst, in the test part (MSL's command columns)."""
    rng = np.random.default_rng(0)
    t = np.arange(1400)
    sine = np.sin(2 * np.pi * t / 40) + 0.05 * rng.normal(size=len(t))
    flag = np.zeros(len(t))
    flag[800 + 100:800 + 104] = 1.0
    values = np.column_stack([sine, flag]).astype(np.float32)
    test = values[800:].copy()
    test[400:410, 0] += 3.0
    labels = np.zeros(len(test), np.int8)
    labels[400:410] = 1
    return SeriesTask("toy", "flag", values[:800], test, labels)


def test_the_floor_decides_whether_a_quiet_flag_outranks_the_anomaly(monkeypatch, tmp_path):
    monkeypatch.setattr(lstmae, "LSTMAutoencoder", partial(lstmae.LSTMAutoencoder, encoder=(8,), epochs=5))
    settings = error_scales.study.family_settings(
        error_scales.study.build_settings(error_scales.study.parse_args([])), "msl")
    path = tmp_path / "toy.npz"
    error_scales.train_and_cache(flag_and_burst_task(), {**settings, "window": 20}, 0, path, codes=True)
    cached = np.load(path)
    assert cached["held"].shape[1] == cached["test"].shape[1] == 2 and not list(tmp_path.glob("*.partial.npz"))
    # the codes (code_novelty.py) of the same windows: held-out, test, and each held-out run's
    assert len(cached["codes_test"]) == len(cached["test"]) and len(cached["codes_held"]) == len(cached["held"])
    assert len(cached["codes_part0"]) == len(cached["part0"]) and cached["codes_fit"].shape[1] == 8 + 8
    assert len(cached["codes_fit"]) + len(cached["held"]) <= 800 - 20 + 1  # trained and held-out windows apart
    results = {floor: error_scales.score(cached, scorer=error_scales.lstmae_scorer(cached, floor=floor))
               for floor in error_scales.FLOORS}
    assert results["min_scale"]["vus_pr"] > results["relative"]["vus_pr"] + 0.2, results
    for floor, result in results.items():
        assert 0 <= result["alarm_rate"] <= 1 and result["anomaly_fraction"] == cached["labels"][20:].mean()
    report = {"command": "python benchmarks/detection/error_scales.py", "threshold": "mad:8", "min_scale": 0.1,
              "results": {"msl": {0: {"flag": results}}}}
    text = error_scales.markdown(report)
    vus = [results[floor]["vus_pr"] for floor in error_scales.FLOORS]
    assert f"| MSL (NASA) (1) | 0 | {vus[0]:.3f} / {vus[1]:.3f} |" in text
    assert f"| msl flag | {vus[0]:.2f} / {vus[1]:.2f} |" in text
