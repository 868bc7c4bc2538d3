"""Alarm focus: each alarm narrowed, in hindsight, to its rows whose covering windows mostly score above the
threshold, and dropped without one (lstmae.scoring.alarms' module docstring)."""
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lstmae import LSTMAutoencoder, temporalize
from lstmae.cli.main import cli
from lstmae.exceptions import DataError
from lstmae.scoring import DEFAULT_ALARM, alarm_rules, check_alarm_options, covering_quantile, focus_alarms
from lstmae.series import fit_series, score_values
from lstmae.streaming import StreamingScorer

WINDOW = 20


def series(n=700, seed=0, bump_at=None):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    values = np.sin(t / 6 + np.arange(2)) + 0.05 * rng.normal(size=(n, 2))
    if bump_at is not None:
        values[bump_at: bump_at + 6] += 3.0  # a 6-row anomaly, far shorter than the window
    return values.astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=3, progress=False, random_state=0), series(500),
                      window=WINDOW, feature_names=["a", "b"])


@pytest.mark.parametrize("n_rows, window, stride", [(30, 5, 1), (31, 6, 2), (40, 7, 3), (20, 3, 5), (10, 10, 1)])
@pytest.mark.parametrize("q", [0.0, 0.25, 1.0])
def test_covering_quantile_is_the_quantile_of_the_windows_that_cover_each_row(n_rows, window, stride, q):
    rng = np.random.default_rng(n_rows)
    n_windows = (n_rows - window) // stride + 1
    values = rng.random(n_windows)
    got = covering_quantile(values, n_rows, window, stride, q)
    for row in range(n_rows):
        covering = [values[i] for i in range(n_windows) if i * stride <= row < i * stride + window]
        if covering:
            assert got[row] == pytest.approx(np.quantile(covering, q))
        else:
            assert np.isnan(got[row])  # past the last window, or in a gap between windows


def test_covering_quantile_takes_an_overflowed_window_as_the_highest_and_refuses_a_wrong_count():
    assert covering_quantile(np.array([1.0, np.inf, 2.0]), 4, 2, 1, 1.0)[1] > 1e300
    with pytest.raises(DataError, match="expected 3 window values for 4 rows with window=2"):
        covering_quantile(np.ones(4), 4, 2, 1, 0.5)


def test_focus_narrows_each_alarm_to_its_evidence_and_drops_one_without_any():
    alarms = [0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0]
    evidence = [1, 0, 1, 0, 1, 1, 0, 0, 0, 0, 1]  # evidence outside an alarm raises none
    assert focus_alarms(alarms, evidence).tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    with pytest.raises(DataError, match="one value per row"):
        focus_alarms(alarms, evidence[:-1])


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.25", True, float("nan")])
def test_focus_must_be_a_quantile_or_none(bad):
    with pytest.raises(DataError, match="focus must be a quantile between 0 and 1"):
        check_alarm_options({"focus": bad})
    assert check_alarm_options({"focus": None}) == {"focus": None}
    assert alarm_rules({**DEFAULT_ALARM, "focus": 0.25}) == {k: DEFAULT_ALARM[k] for k in ("min_length", "merge_gap",
                                                                                         "cooldown")}


@pytest.mark.parametrize("threshold", [None, "telemanom:2,mad=8"])
def test_a_focused_alarm_is_the_alarm_narrowed_to_rows_whose_covering_windows_agree(model, threshold):
    values = series(bump_at=560, seed=1)
    wide = score_values(model, values, threshold=threshold, alarms={**DEFAULT_ALARM, "focus": None})
    narrow = score_values(model, values, threshold=threshold)  # the default: focus 0.25
    assert DEFAULT_ALARM["focus"] == 0.25
    assert wide["alarm"][555:570].any(), "the bump raises an alarm"
    # the same scores and flags; the alarm narrowed, never widened, and still on the bump
    pd.testing.assert_frame_equal(wide.drop(columns="alarm"), narrow.drop(columns="alarm"))
    assert (narrow["alarm"] <= wide["alarm"]).all() and narrow["alarm"].sum() < wide["alarm"].sum()
    assert narrow["alarm"][555:570].any()
    # as the rule says, from the windows' own scores and the rows' threshold
    window_scores = model.anomaly_score(temporalize(values, WINDOW)[0])
    assert model.threshold_how_ == "mean"  # the model's own threshold is the rows' (fitted on mean row scores)
    row_threshold = wide["threshold"].to_numpy() if threshold else model.threshold_
    with np.errstate(invalid="ignore"):
        evidence = covering_quantile(window_scores, len(values), WINDOW, 1, 0.25) > row_threshold
    np.testing.assert_array_equal(narrow["alarm"], focus_alarms(wide["alarm"], evidence))


def test_focus_narrows_alarms_on_strided_windows_and_leaves_how_point_alone(model):
    values = series(bump_at=560, seed=1)
    wide = score_values(model, values, stride=3, alarms={**DEFAULT_ALARM, "focus": None})
    narrow = score_values(model, values, stride=3, alarms={**DEFAULT_ALARM, "focus": 0.0})
    assert (narrow["alarm"] <= wide["alarm"]).all() and narrow["alarm"].sum() < wide["alarm"].sum()
    # how="point" scores each row by its own steps: nothing spread over a window to narrow
    points = score_values(model, values, how="point", threshold=np.inf, alarms=None)["score"]
    fixed = float(np.nanquantile(points, 0.97))
    alarms = {**DEFAULT_ALARM, "min_length": 2, "focus": None}
    plain = score_values(model, values, how="point", threshold=fixed, alarms=alarms)
    assert plain["alarm"].sum() > 0
    pd.testing.assert_frame_equal(score_values(model, values, how="point", threshold=fixed,
                                               alarms={**alarms, "focus": 0.0}), plain)


def test_a_stream_raises_its_alarms_as_rows_arrive_and_leaves_focus_out(model):
    values = pd.DataFrame(series(bump_at=560, seed=1)[400:], columns=["a", "b"])
    plain = StreamingScorer(model, alarms={**DEFAULT_ALARM, "focus": None}).update(values)
    focused = StreamingScorer(model)  # the default alarms, focus 0.25 among them
    pd.testing.assert_frame_equal(focused.update(values), plain)
    assert "focus" not in focused.alarms


def test_the_command_line_narrows_alarms_with_alarm_focus_and_refuses_a_bad_value(model, tmp_path):
    pd.DataFrame(series(bump_at=560, seed=1), columns=["a", "b"]).to_csv(tmp_path / "test.csv", index=False)
    model.save(tmp_path / "model")
    runner = CliRunner()
    for name, extra in (("wide.csv", ["--alarm-focus", "off"]), ("narrow.csv", [])):  # the default: 0.25
        result = runner.invoke(cli, ["score", str(tmp_path / "model"), str(tmp_path / "test.csv"), "-o",
                                     str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
    wide, narrow = (pd.read_csv(tmp_path / name)["alarm"] for name in ("wide.csv", "narrow.csv"))
    assert (narrow <= wide).all() and narrow.sum() < wide.sum()
    refused = runner.invoke(cli, ["score", str(tmp_path / "model"), str(tmp_path / "test.csv"), "-o",
                                  str(tmp_path / "bad.csv"), "--alarm-focus", "2"])
    assert refused.exit_code == 2 and "--alarm-focus" in refused.output and not (tmp_path / "bad.csv").exists()
    assert "'2' is not a quantile between 0 and 1, nor off" in refused.output
