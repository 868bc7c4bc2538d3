"""benchmarks/detection/seed_selection.py: the network n_init keeps, from the error cache, against one seed."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import lstmae  # noqa: E402
from conftest import cached_networks_of, toy_cache  # noqa: E402
from detection import seed_selection  # noqa: E402
from detection.datasets import SeriesTask  # noqa: E402

WINDOW = 10


def cached_network(seed: int, held_level: float, finds_anomaly: bool):
    """What error_scales caches for one network, made up: held-out errors around `held_level` (its held-out loss)
    and test errors that burst on the labelled rows 1200-1219 only when `finds_anomaly`."""
    rng = np.random.default_rng(seed)
    n_test, held_rows = 1500, 300
    labels = np.zeros(n_test, np.int8)
    labels[1200:1220] = 1
    test = held_level * rng.gamma(20.0, 0.05, (n_test - WINDOW + 1, 1))
    if finds_anomaly:
        test[1200:1211] *= 30.0
    held = held_level * rng.gamma(20.0, 0.05, (held_rows - WINDOW + 1, 1))
    return toy_cache(labels, test, held, WINDOW)


def test_the_kept_network_is_the_seed_of_the_lowest_held_out_loss(tmp_path, monkeypatch):
    # seed 1 has the lowest held-out loss and the only network that finds the anomaly
    setups = {0: (0.3, False), 1: (0.1, True), 2: (0.2, False)}
    task = SimpleNamespace(family="nab", name="toy", train=np.zeros((400, 1), np.float32))
    cached_networks_of(monkeypatch, seed_selection.error_scales, tmp_path,
                       lambda seed: (task, cached_network(seed, *setups[seed])), seeds=list(setups))
    out = tmp_path / "out"
    assert seed_selection.main(["--datasets", "nab", "--seeds", "0,1,2", "--runs", "2,3", "--out", str(out)]) == 0
    report = json.loads((out / "seed_selection.json").read_text())
    single = {seed: report["single_seeds"][str(seed)]["nab"]["vus_pr"] for seed in setups}
    assert single[1] > 0.8 > 0.3 > max(single[0], single[2])
    pairs = {tuple(entry["seeds"]): entry["nab"] for entry in report["sets"]["2"]}
    assert pairs[(0, 1)]["picks"] == {"toy": 1} and pairs[(1, 2)]["picks"] == {"toy": 1}
    assert pairs[(0, 2)]["picks"] == {"toy": 2}
    assert pairs[(0, 1)]["kept"]["vus_pr"] == single[1]
    assert [m["vus_pr"] for m in pairs[(0, 1)]["members"]] == [single[0], single[1]]
    (triple,) = report["sets"]["3"]
    assert triple["nab"]["picks"] == {"toy": 1}
    text = (out / "seed_selection.md").read_text()
    kept = np.mean([single[1], single[2], single[1]])
    members = np.mean([np.mean([single[a], single[b]]) for a, b in ((0, 1), (0, 2), (1, 2))])
    assert f"| NAB | 2 (3) | {kept:.3f} / {members:.3f} (" in text
    assert f"| 2 | all | {kept:.3f} / {members:.3f} ({kept - members:+.3f}; " in text  # over the families and pairs
    assert f"| 3 | 0, 1, 2 | {single[1]:.3f} / {np.mean(list(single.values())):.3f} (" in text


def test_more_runs_than_seeds_is_refused(capsys):
    with pytest.raises(SystemExit) as exit:
        seed_selection.main(["--seeds", "0,1", "--runs", "3"])
    assert exit.value.code == 2
    assert "--runs must lie in 2..2" in capsys.readouterr().err


def test_the_cached_held_out_loss_is_the_one_n_init_compares(monkeypatch, tmp_path):
    # seed_selection.py rests on it: the mean of the cached held-out errors is the fitted network's
    # history_["held_out_loss"], the number n_init keeps the lowest of
    made = []
    real = lstmae.LSTMAutoencoder

    def small(**params):
        made.append(real(**{**params, "encoder": (8,), "epochs": 3}))
        return made[-1]

    monkeypatch.setattr(lstmae, "LSTMAutoencoder", small)
    values = np.sin(np.arange(1000) / 6.0)[:, None].astype(np.float32)
    task = SeriesTask("nab", "sine", values[:700], values[700:], np.zeros(300, np.int8))
    settings = seed_selection.study.family_settings(
        seed_selection.study.build_settings(seed_selection.study.parse_args([])), "nab")
    seed_selection.error_scales.train_and_cache(task, {**settings, "window": 20}, 0, tmp_path / "sine.npz")
    cached = np.load(tmp_path / "sine.npz")
    assert float(cached["held"].mean()) == pytest.approx(made[0].history_["held_out_loss"], rel=1e-5)
