"""benchmarks/detection/demo_scoring.py: the demo's data scored each way, and its results file."""
import json
import shlex
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from detection import demo_scoring  # noqa: E402


def test_each_rule_minimum_length_and_cool_down_is_one_row_and_out_writes_them_with_the_command(tmp_path, capsys):
    out = tmp_path / "demo.json"
    argv = ["--hows", "mean", "--error-models", "mae", "--thresholds", "mad:8;mad:12;telemanom:2,mad=8",
            "--min-lengths", "3,100000", "--cooldowns", "50,100000", "--alarm-focuses", "none",  # the rules alone
            "--out", str(out)]  # ";" where a spec has options
    assert demo_scoring.main(argv) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    written = json.loads(out.read_text())
    assert written["rows"] == printed
    # quoted for a shell: the ";" between threshold specs would otherwise end the command
    assert shlex.split(written["command"])[2:] == argv and "'mad:8;mad:12;telemanom:2,mad=8'" in written["command"]
    # rows in the order threshold x minimum length x cool-down (2 x 2 rows per threshold)
    loose, silenced, endless, strict, following = (printed[i] for i in (0, 1, 2, 4, 8))
    assert (loose["cooldown"], silenced["cooldown"]) == (50, 100000) and silenced["threshold"] == "mad:8"
    assert (loose["min_length"], endless["min_length"], endless["cooldown"]) == (3, 100000, 50)
    # no run of flagged rows is that long: nothing pages
    assert endless["n_flagged_runs"] == 0 == endless["alarm_rate"] and endless["vus_pr"] == loose["vus_pr"]
    # after the first alarm clears nothing pages again: one alarm, on fewer rows
    assert silenced["n_flagged_runs"] == 1 < loose["n_flagged_runs"] and silenced["alarm_rate"] < loose["alarm_rate"]
    assert (loose["threshold"], strict["threshold"], following["threshold"]) == ("mad:8", "mad:12", "telemanom:2,mad=8")
    assert strict["alarm_rate"] <= loose["alarm_rate"]  # the same network: a higher K flags no more rows
    assert loose["vus_pr"] == strict["vus_pr"] == following["vus_pr"]  # the threshold does not move the scores


def test_a_comma_starts_a_new_spec_only_before_a_rule_name():
    assert demo_scoring.threshold_specs("telemanom:2,mad=8") == ["telemanom:2,mad=8"]  # one spec, with an option
    assert demo_scoring.threshold_specs("sigma:5,sigma:3") == ["sigma:5", "sigma:3"]
    assert demo_scoring.threshold_specs("mad:8, telemanom:2,mad=8,window=500;dspot:1e-3") == [
        "mad:8", "telemanom:2,mad=8,window=500", "dspot:1e-3"]


def test_validation_blocks_reach_the_model():
    with pytest.raises(ValueError, match="validation_blocks must be an int >= 1, got 0"):
        demo_scoring.main(["--hows", "mean", "--error-models", "mae", "--validation-blocks", "0"])


@pytest.mark.slow  # two demo networks
def test_each_input_noise_trains_its_own_network_and_a_bad_one_exits_in_one_line(capsys):
    assert demo_scoring.main(["--hows", "mean", "--error-models", "mae", "--thresholds", "mad:8",
                              "--input-noises", "0,0.5"]) == 0
    plain, noisy = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert "input_noise" not in plain and noisy["input_noise"] == 0.5
    assert noisy["vus_pr"] != plain["vus_pr"]  # another network scores the rows
    for bad in ("0,x", "-0.1"):
        with pytest.raises(SystemExit):
            demo_scoring.main(["--input-noises", bad])
        assert f"--input-noises {bad!r}: give numbers >= 0" in capsys.readouterr().err


def test_smoothed_rows_are_scored_as_a_model_fitted_with_smooth_scores_them(capsys):
    import numpy as np

    from lstmae import LSTMAutoencoder
    from lstmae.data.synthetic import make_sensor_data
    from lstmae.scoring import DEFAULT_ALARM
    from lstmae.series import fit_series, score_values

    assert demo_scoring.main(["--hows", "mean", "--error-models", "normalized-max", "--thresholds", "mad:8,quantile=1",
                              "--smooths", "1,60"]) == 0
    plain, smoothed = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert "smooth" not in plain and smoothed["smooth"] == 60
    assert smoothed["vus_pr"] < plain["vus_pr"]  # the demo's events are short: smoothing smears them
    for widths in ("0,60", "sixty"):
        with pytest.raises(SystemExit, match=rf"--smooths '{widths}': give whole numbers of rows >= 1"):
            demo_scoring.main(["--smooths", widths])

    frame = make_sensor_data(seed=0)
    values = frame.drop(columns=["timestamp", "label"]).to_numpy(np.float32)
    model = LSTMAutoencoder(encoder=(8, 4), epochs=2, random_state=0, progress=False, device="cpu")
    fit_series(model, values[:1000], window=30, how="mean")
    held_out = model.calibration_scores_["mean"].copy()
    assert demo_scoring.smoothed_model(model, "mean", 1) is model
    assert demo_scoring.smoothed_model(model, "end", 60) is model  # how="end" is never smoothed
    # smoothed over 60 rows: what a model fitted with smooth=60 (the same network: the seed's) scores and alarms
    smoothed_model = fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=2, random_state=0, progress=False,
                                                device="cpu", smooth=60), values[:1000], window=30, how="mean")
    fitted, copied = (score_values(scorer, values[1000:], how="mean", threshold="mad:8,quantile=1",
                                   alarms=DEFAULT_ALARM)
                      for scorer in (smoothed_model, demo_scoring.smoothed_model(model, "mean", 60)))
    valid = fitted["valid"].to_numpy()
    np.testing.assert_array_equal(copied["valid"], valid)
    np.testing.assert_allclose(copied["score"][valid], fitted["score"][valid])
    np.testing.assert_array_equal(copied["alarm"], fitted["alarm"])
    assert fitted["alarm"].any()
    assert model.smooth == 1  # the fitted model is left as it was
    np.testing.assert_array_equal(model.calibration_scores_["mean"], held_out)
    with pytest.raises(SystemExit):
        demo_scoring.main(["--smooths", "1,60", "--validation-blocks", "3"])


def test_each_alarm_focus_is_a_row_on_the_same_network_and_a_bad_one_exits_in_one_line(capsys):
    assert demo_scoring.main(["--hows", "mean", "--error-models", "mae", "--thresholds", "mad:8",
                              "--alarm-focuses", "none,0"]) == 0
    plain, focused = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert "alarm_focus" not in plain and focused["alarm_focus"] == 0
    assert focused["vus_pr"] == plain["vus_pr"] and focused["alarm_rate"] <= plain["alarm_rate"]
    for bad in ("x", "1.5"):
        with pytest.raises(SystemExit):
            demo_scoring.main(["--alarm-focuses", bad])
        assert f"--alarm-focuses {bad!r}: give quantiles between 0 and 1 or none" in capsys.readouterr().err
