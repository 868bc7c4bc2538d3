"""benchmarks/detection/code_novelty.py: a code-space novelty score beside lstmae's error."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from conftest import cached_networks_of  # noqa: E402
from detection import code_novelty, error_scales  # noqa: E402

WINDOW = 10


def cached_codes(seed: int = 0) -> dict:
    """What error_scales caches with codes=True for one series, made up: the test windows starting in rows
    1200-1219 (labelled) are reconstructed as well as any other (their errors are ordinary) but their codes lie
    far from every trained window's code."""
    rng = np.random.default_rng(seed)
    n_test, held_rows = 1500, 300
    labels = np.zeros(n_test, np.int8)
    labels[1200:1220] = 1
    n_windows, n_held = n_test - WINDOW + 1, held_rows - WINDOW + 1
    codes_test = rng.normal(size=(n_windows, 4))
    codes_test[1200:1211] += 10.0
    held = rng.gamma(2.0, 0.1, (n_held, 2))
    codes_held = rng.normal(size=(n_held, 4))
    return {"labels": labels, "window": np.array(WINDOW), "vus_window": np.array(20), "held": held,
            "test": rng.gamma(2.0, 0.1, (n_windows, 2)), "part0": held, "part0_rows": np.array(held_rows),
            "codes_fit": rng.normal(size=(800, 4)), "codes_held": codes_held, "codes_test": codes_test,
            "codes_part0": codes_held}


def test_a_window_the_error_misses_is_found_by_its_code_unless_the_weight_drowns_it():
    cached = cached_codes()
    plain = error_scales.score(cached)
    novel = error_scales.score(cached, scorer=code_novelty.novelty_scorer(cached, 1.0))
    assert plain["vus_pr"] < 0.2 and plain["event_recall"] == 0.0
    assert novel["vus_pr"] > 0.8 and novel["event_recall"] == 1.0 and novel["alarm_rate"] < 0.05
    drowned = error_scales.score(cached, scorer=code_novelty.novelty_scorer(cached, 1e6))
    assert drowned["event_recall"] == 0.0  # ten code units out is nothing at this weight
    one_scale = error_scales.score(cached, scorer=code_novelty.novelty_scorer(cached, 1.0, quantile=0.99))
    assert one_scale["vus_pr"] > 0.8 and one_scale["event_recall"] == 1.0


def test_on_one_scale_an_error_burst_outranks_codes_that_are_often_this_far_out():
    # the labelled windows' errors burst (a few robust z-units: the error model's smallest scale compresses
    # them) while 3% of all windows, held-out ones included, have codes far out, none of them labelled
    rng = np.random.default_rng(1)
    cached = cached_codes()
    cached["codes_test"] = rng.normal(size=cached["codes_test"].shape)
    for key in ("codes_test", "codes_held"):
        far = rng.random(len(cached[key])) < 0.03
        cached[key][far] *= 6.0
    cached["codes_part0"] = cached["codes_held"]
    cached["test"][1200:1211] += 0.5
    z_scale = error_scales.score(cached, scorer=code_novelty.novelty_scorer(cached, 1.0))
    one_scale = error_scales.score(cached, scorer=code_novelty.novelty_scorer(cached, 1.0, quantile=0.99))
    assert one_scale["vus_pr"] > 0.7 and z_scale["vus_pr"] < 0.4, (one_scale, z_scale)


def test_the_command_writes_lstmae_and_each_weight_per_family_and_seed(tmp_path, monkeypatch):
    cached_networks_of(monkeypatch, code_novelty.error_scales, tmp_path,
                       lambda seed: (SimpleNamespace(family="nab", name="toy"), cached_codes(seed)))
    out = tmp_path / "out"
    assert code_novelty.main(["--datasets", "nab", "--seeds", "0,1", "--weights", "1,8", "--quantiles", "0.99",
                              "--out", str(out)]) == 0
    report = json.loads((out / "code_novelty.json").read_text())
    assert list(report["summary"]) == ["lstmae", "novelty/1", "novelty/8", "quantile/0.99"]
    assert report["summary"]["novelty/1"]["nab"]["1"]["vus_pr"] > report["summary"]["lstmae"]["nab"]["1"]["vus_pr"]
    text = (out / "code_novelty.md").read_text()
    assert "| `lstmae` | `novelty/1` | `novelty/8` | `quantile/0.99` |" in text and "| nab | 1 | " in text
    assert "- nab toy seed 0: " in text
