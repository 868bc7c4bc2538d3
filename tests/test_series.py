"""lstmae.series: the one home of DataFrame in -> windows per group -> one row per input row out."""
import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from lstmae import LSTMAutoencoder
from lstmae.exceptions import DataError
from lstmae.series import (SkippedGroupWarning, encode_values, fit_series, groups_of, held_out_rows, held_out_runs,
                           reconstruct_values, rule_for, runs_mask, score_frame, score_values, threshold_for,
                           training_rows)


def series(n=400, seed=0, features=2):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return (np.sin(t / (4 + np.arange(features))) + 0.05 * rng.normal(size=(n, features))).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    """how="max", mse and sigma:3 (not the defaults), whose row spreading and overflow these tests spell out."""
    model = LSTMAutoencoder(encoder=(8, 4), epochs=2, error_model="mse", threshold="sigma:3", progress=False,
                            random_state=0)
    return fit_series(model, series(), window=10, feature_names=["a", "b"], how="max")


def test_threshold_is_fitted_on_held_out_row_scores_of_the_kind_it_is_applied_to(fitted):
    assert fitted.threshold_how_ == "max"
    assert fitted.history_["n_validation"] == round(391 * 0.1)
    # sigma:3 of the calibration (held-out row) scores, which are those rows' own max-aggregated scores
    calibration = fitted.calibration_scores_["max"]
    assert fitted.threshold_ == pytest.approx(calibration.mean() + 3 * calibration.std())
    tail = score_values(fitted, series()[-(39 + 9):], how="max")
    np.testing.assert_allclose(np.sort(tail["score"][tail["valid"]]), np.sort(calibration))


def test_scoring_another_kind_of_row_score_refits_the_rule_on_that_kind(fitted):
    # how="end" rows take one window's score: the rule is refitted on the held-out window scores
    window_scores = fitted.calibration_scores_["window"]
    end_threshold = window_scores.mean() + 3 * window_scores.std()
    assert end_threshold < fitted.threshold_
    table = score_values(fitted, series(seed=2), how="end")
    valid = table["valid"].to_numpy()
    np.testing.assert_array_equal(table["is_anomaly"][valid], table["score"][valid] > end_threshold)


def test_score_series_is_score_frame_and_keeps_the_index(fitted):
    frame = pd.DataFrame(series(seed=1), columns=["a", "b"], index=pd.RangeIndex(100, 500, name="t"))
    frame["other"] = "x"
    by_method = fitted.score_series(frame)
    by_function = score_frame(fitted, frame)
    pd.testing.assert_frame_equal(by_method, by_function)
    assert by_method.index.equals(frame.index) and list(by_method.columns) == ["score", "is_anomaly", "alarm", "valid"]


def test_windows_never_cross_entities_and_short_ones_are_named_the_same_in_fit_and_score(fitted):
    values = np.concatenate([series(50, seed=1), series(5, seed=2), series(60, seed=3)])
    entities = np.array(["m1"] * 50 + ["tiny"] * 5 + ["m3"] * 60)
    with pytest.warns(SkippedGroupWarning, match=r"'tiny' \(5 rows\)"):
        table = score_values(fitted, values, groups=entities, how="end")
    assert not table["valid"][50:55].any() and table["score"][50:55].isna().all()
    # each entity scored as if alone: its first window - 1 rows are warm-up
    alone = score_values(fitted, values[55:], how="end")
    np.testing.assert_array_equal(table["score"][55:].to_numpy(), alone["score"].to_numpy())
    with pytest.warns(SkippedGroupWarning, match="'tiny'"):
        fit_series(LSTMAutoencoder(encoder=(4,), epochs=1, progress=False), values, window=10, groups=entities)


def test_groups_need_not_be_adjacent():
    groups = groups_of(6, np.array(["a", "b", "a", "b", "a", "c"]))
    assert [(g.name, g.rows.tolist()) for g in groups] == [("a", [0, 2, 4]), ("b", [1, 3]), ("c", [5])]
    with pytest.raises(DataError, match="one group id per row"):
        groups_of(6, np.array(["a"]))
    # a list of ids as JSON gives them: 7 and "7" are two groups, named as written
    assert [(g.name, g.rows.tolist()) for g in groups_of(3, [7, "7", 7])] == [(7, [0, 2]), ("7", [1])]


def test_no_group_long_enough_is_one_clear_error(fitted):
    # scoring cannot take "use a smaller window" (the model's is fixed): the fix names the rows to give
    with pytest.raises(DataError, match="the series has 8 rows, shorter than the window 10; give at least 10 rows"):
        score_values(fitted, series(8))
    with pytest.raises(DataError, match=r"no entity or segment has the 10 rows one window needs \(the longest has 5\); "
                                        r"give one at least 10 rows"):
        score_values(fitted, series(8), groups=np.array([0] * 5 + [1] * 3))


def test_auto_threshold_takes_the_default_rule_of_the_kind_of_score_it_flags():
    values = series()
    windows = np.lib.stride_tricks.sliding_window_view(values, 10, axis=0).transpose(0, 2, 1)
    model = LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0).fit(windows)
    assert model.threshold_how_ == "window"
    assert str(rule_for(model, None, "window")) == str(rule_for(model, None, "end")) == "sigma:2"
    # row scores of a series: many overlapping, correlated rows, the stricter default
    assert str(rule_for(model, None, "mean")) == str(rule_for(model, None, "max")) == "mad:8,quantile=1"
    values = values.copy()
    values[200:204] += 4.0  # rows that sigma:2 flags more of than mad:8: the rule applied shows
    table = score_values(model, values, how="mean")
    expected = threshold_for(model, "mad:8,quantile=1", how="mean")
    assert (table["is_anomaly"] == (table["score"] > expected)).all() and table["is_anomaly"].any()
    assert (table["score"] > threshold_for(model, "sigma:2", how="mean")).sum() > table["is_anomaly"].sum()
    assert str(rule_for(model, "quantile:0.9", "mean")) == "quantile:0.9"
    # a rule the user chose is kept for every kind of score
    chosen = LSTMAutoencoder(encoder=(8, 4), epochs=1, threshold="sigma:3", progress=False, random_state=0).fit(windows)
    assert str(rule_for(chosen, None, "mean")) == "sigma:3"


def test_a_threshold_override_never_changes_the_model_and_is_fitted_on_calibration_scores(fitted):
    before = (fitted.threshold_, fitted.threshold_rule_)
    data = series(seed=3) * 5  # far from normal: a refit on it would flag about 1%
    table = score_values(fitted, data, threshold="quantile:0.5")
    expected = threshold_for(fitted, "quantile:0.5")
    assert expected == pytest.approx(np.quantile(fitted.calibration_scores_["max"], 0.5))
    assert (table["is_anomaly"] == (table["score"] > expected)).all()
    assert table["is_anomaly"].mean() > 0.5
    assert (fitted.threshold_, fitted.threshold_rule_) == before
    assert (score_values(fitted, data, threshold=0.25)["is_anomaly"] == (table["score"] > 0.25)).all()
    with pytest.raises(DataError, match="needs labels"):
        score_values(fitted, data, threshold="best-f1")


@pytest.mark.parametrize("how", ["max", "mean"])
def test_one_extreme_value_scores_inf_and_the_run_finishes(fitted, how):
    data = series(seed=4)
    data[200, 1] = 1e20
    table = score_values(fitted, data, feature_errors=True, how=how)
    # every row of a window that holds row 200 takes its inf score; the rows after it score finitely
    assert table["overflow"].sum() == 19 and table["overflow"][191:210].all()
    assert np.isinf(table["score"][191:210]).all() and table["is_anomaly"][191:210].all()
    assert np.isfinite(table["score"][table["valid"] & ~table["overflow"]]).all()
    # the per-feature errors (the training loss, here mae) name the feature, on every valid row
    assert (table["error_b"][191:210] > 1e15).all() and (table["error_b"][~table["overflow"]] < 1e3).all()
    assert not table.loc[table["valid"], ["error_a", "error_b"]].isna().any().any()
    assert "overflow" not in score_values(fitted, series(seed=4))
    # smoothed, the inf rows stay inf and their neighbours average the finite rows beside them
    from lstmae.scoring import smooth_points
    smoothed = copy.copy(fitted).set_params(smooth=5)
    np.testing.assert_array_equal(score_values(smoothed, data, how=how, threshold=np.inf)["score"],
                                  smooth_points(table["score"].to_numpy(), 5))


@pytest.mark.parametrize("how", ["end", "point"])
def test_overflowed_rows_score_inf_with_the_other_mappings_too(fitted, how):
    data = series(seed=4)
    data[200, 1] = 1e20
    table = score_values(fitted, data, how=how, threshold=np.inf)  # the model holds no point calibration
    assert table["overflow"][200] and np.isinf(table["score"][table["overflow"]]).all()
    assert np.isfinite(table["score"][table["valid"] & ~table["overflow"]]).all()


@pytest.mark.parametrize("n, fraction, blocks", [(555, 0.1, 1), (555, 0.1, 5), (10, 0.9, 4), (7, 0.5, 7), (40, 0.3, 3)])
def test_held_out_runs_spread_round_n_fraction_windows_over_the_blocks_and_leave_training_windows(n, fraction, blocks):
    runs = held_out_runs(n, fraction, blocks)
    assert sum(stop - first for first, stop in runs) == round(n * fraction)
    assert all(0 <= first < stop <= n for first, stop in runs)
    assert all(a_stop <= b_first for (_, a_stop), (b_first, _) in zip(runs, runs[1:]))  # in order, disjoint
    assert len(runs) <= blocks and runs[-1][1] == n  # each block's LAST windows: the last block ends the group
    if blocks == 1:
        assert runs == [(n - round(n * fraction), n)]  # the tail, as before blocks existed
    mask = runs_mask(runs, n)
    assert mask.shape == (n,) and mask.sum() == round(n * fraction)
    assert all(mask[first:stop].all() for first, stop in runs)


def test_held_out_runs_leave_a_short_group_to_training():
    assert held_out_runs(1, 0.5, 3) == [] and held_out_runs(20, 0.0, 3) == [] and held_out_runs(2, 0.9, 2) == []


def test_validation_blocks_hold_out_spread_runs_each_scored_as_a_series_of_its_own():
    values = series(500, seed=3)
    model = LSTMAutoencoder(encoder=(8, 4), epochs=1, error_model="mse", validation_blocks=3, progress=False,
                            random_state=0)
    fit_series(model, values, window=10, how="mean")
    runs = held_out_runs(491, 0.1, 3)
    assert len(runs) == 3 and runs[0][1] < 200  # spread: the first run ends in the first third
    assert model.history_["n_validation"] == 49 and model.history_["n_train"] == 491 - 49
    # the calibration scores are each run's rows (window i covers rows i..i+9) scored on their own
    expected = []
    for first, stop in runs:
        table = score_values(model, values[first : stop - 1 + 10], how="mean")
        expected.append(table["score"][table["valid"]].to_numpy())
    np.testing.assert_allclose(model.calibration_scores_["mean"], np.concatenate(expected))


def test_a_training_stride_calibrates_on_every_window_as_scoring_does():
    values = series(400, seed=4)
    model = LSTMAutoencoder(encoder=(8, 4), epochs=1, error_model="mse", progress=False, random_state=0)
    fit_series(model, values, window=10, stride=3, how="mean")
    # 131 windows every 3 rows, the last 13 held out: rows 354.. (window 118 starts at row 354)
    tail = score_values(model, values[354:], how="mean")  # stride 1, scoring's default
    np.testing.assert_allclose(model.calibration_scores_["mean"], tail["score"][tail["valid"]].to_numpy())


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True])
def test_validation_blocks_must_be_a_positive_int(bad):
    model = LSTMAutoencoder(encoder=(4,), epochs=1, validation_blocks=bad, progress=False)
    with pytest.raises(ValueError, match="validation_blocks must be an int >= 1"):
        fit_series(model, series(100), window=10)


def quiet_tail(n=1200, seed=0):
    """Noise whose last 150 rows (the held-out tail and more) are 20 times quieter than the rows trained on."""
    values = np.random.default_rng(seed).normal(size=(n, 1)).astype(np.float32)
    values[-150:] *= 0.05
    return values


@pytest.fixture(scope="module")
def floored():
    model = LSTMAutoencoder(encoder=(8, 4), epochs=2, threshold_floor=0.9, progress=False, random_state=0)
    return fit_series(model, quiet_tail(), window=20)


def test_threshold_floor_flags_at_most_its_share_of_the_rows_trained_on(floored):
    plain = fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=2, progress=False, random_state=0), quiet_tail(),
                       window=20)
    trained_rows = slice(0, 1200 - 118 - 19)  # before the rows the 118 held-out windows cover
    assert score_values(plain, quiet_tail())["is_anomaly"][trained_rows].mean() > 0.9  # the quiet tail's rule
    assert plain.threshold_floors_ == {}
    flagged = score_values(floored, quiet_tail())["is_anomaly"][trained_rows].mean()
    assert 0.05 < flagged <= 0.11
    # the floor is the 0.9 quantile of those rows' own scores, scored as a series of their own
    alone = score_values(floored, quiet_tail()[trained_rows], how="mean")
    assert floored.threshold_ == pytest.approx(np.quantile(alone["score"][alone["valid"]], 0.9))
    assert floored.threshold_ == floored.threshold_floors_["mean"] > plain.threshold_


def test_threshold_floor_holds_for_every_static_rule_and_kind_but_not_for_a_value(floored):
    floors = floored.threshold_floors_
    assert threshold_for(floored, "quantile:0.5") == floors["mean"]
    assert threshold_for(floored, "quantile:0.5", how="end") == floors["window"]
    assert threshold_for(floored, "value:0.5") == 0.5
    from lstmae.streaming import StreamingScorer
    assert StreamingScorer(floored)._static == floors["window"]  # how="end": the window kind's floor


def test_threshold_floor_is_saved_and_a_model_without_one_keeps_its_state(floored, fitted, tmp_path):
    from lstmae import load
    floored.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.threshold_floors_ == floored.threshold_floors_ and loaded.threshold_ == floored.threshold_
    assert threshold_for(loaded, "quantile:0.5", how="end") == floored.threshold_floors_["window"]
    assert "floors" not in fitted.get_state()[0]["threshold"]


def test_recalibrating_drops_the_floors_which_are_in_the_old_error_model_s_units(floored):
    import copy
    model = copy.deepcopy(floored)
    model.set_params(error_model="mse").recalibrate(np.stack([quiet_tail()[i:i + 20] for i in range(1050, 1180)]))
    assert model.threshold_floors_ == {}


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, True, "0.9"])
def test_threshold_floor_must_be_a_quantile(bad):
    model = LSTMAutoencoder(encoder=(4,), epochs=1, threshold_floor=bad, progress=False)
    with pytest.raises(ValueError, match=r"threshold_floor must be a quantile in \(0, 1\] or None"):
        fit_series(model, series(100), window=10)


def test_threshold_floor_is_refused_with_an_adaptive_rule_or_without_training_rows():
    model = LSTMAutoencoder(encoder=(4,), epochs=1, threshold="dspot:1e-3", threshold_floor=0.9, progress=False)
    with pytest.raises(DataError, match="threshold_floor applies to a static threshold rule; dspot:1e-3 adapts"):
        fit_series(model, series(300), window=10)
    # 10 blocks of 9 windows: each block's held-out window reaches back into the one before
    model = LSTMAutoencoder(encoder=(4,), epochs=1, validation_fraction=0.12, validation_blocks=10,
                            threshold_floor=0.9, progress=False)
    with pytest.raises(DataError, match="threshold_floor needs a stretch of at least 10 training rows"):
        fit_series(model, series(99), window=10)
    assert not hasattr(model, "module_")  # refused before training


def test_threshold_floor_is_refused_for_independent_sequences():
    from lstmae.data.io import SequenceData
    from lstmae.series import fit_data

    data = SequenceData(np.zeros((20, 10, 1), np.float32), ["x"], None, pd.RangeIndex(20), "beats.csv")
    model = LSTMAutoencoder(encoder=(4,), epochs=1, threshold_floor=0.9, progress=False)
    with pytest.raises(DataError, match="threshold_floor applies to a series .* drop --threshold-floor"):
        fit_data(model, data)
    assert not hasattr(model, "module_")


@pytest.fixture(scope="module")
def smoothed():
    """The network of `plain_mean` (same seed), its row scores smoothed over 15 rows."""
    model = LSTMAutoencoder(encoder=(8, 4), epochs=2, smooth=15, progress=False, random_state=0)
    return fit_series(model, series(600), window=10)


@pytest.fixture(scope="module")
def plain_mean():
    return fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=2, progress=False, random_state=0), series(600), window=10)


def test_smooth_averages_each_group_s_rows_and_the_threshold_is_fitted_on_held_out_rows_smoothed_alike(smoothed,
                                                                                                       plain_mean):
    from lstmae.scoring import smooth_points
    from lstmae.series import calibration_for, threshold_source

    values = series(300, seed=3)
    groups = np.repeat(["a", "b"], 150)
    plain, smooth = (score_values(model, values, groups=groups) for model in (plain_mean, smoothed))
    for rows in (slice(0, 150), slice(150, 300)):  # each group on its own: no mean across the two machines
        np.testing.assert_allclose(smooth["score"][rows], smooth_points(plain["score"].to_numpy()[rows], 15))
    np.testing.assert_array_equal(smooth["valid"], plain["valid"])
    for how in ("mean", "max"):
        np.testing.assert_allclose(calibration_for(smoothed, how), smooth_points(calibration_for(plain_mean, how), 15))
    assert smoothed.threshold_ == threshold_for(smoothed, "mad:8,quantile=1") != plain_mean.threshold_
    np.testing.assert_array_equal(smooth["is_anomaly"], (smooth["score"] > smoothed.threshold_).astype(np.int8))
    assert threshold_source(smoothed) == "held-out row scores (how=mean, each the mean of 15 rows)"
    # how="end" (streaming's causal rows) is never smoothed: a centred mean waits for later rows
    end, plain_end = (score_values(model, values, how="end") for model in (smoothed, plain_mean))
    pd.testing.assert_frame_equal(end, plain_end)


def test_smooth_is_saved_with_the_model(smoothed, tmp_path):
    from lstmae import load

    smoothed.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.smooth == 15
    values = series(200, seed=4)
    pd.testing.assert_frame_equal(score_values(loaded, values), score_values(smoothed, values))


@pytest.mark.parametrize("bad", [0, 2.5, True, "15"])
def test_smooth_must_be_a_whole_number_of_rows(bad):
    model = LSTMAutoencoder(encoder=(4,), epochs=1, smooth=bad, progress=False)
    with pytest.raises(ValueError, match=r"smooth must be an int >= 1 \(rows; 1: no smoothing\)"):
        fit_series(model, series(100), window=10)


def test_smooth_is_refused_with_the_causal_mapping_and_for_independent_sequences():
    from lstmae.data.io import SequenceData
    from lstmae.series import fit_data

    model = LSTMAutoencoder(encoder=(4,), epochs=1, smooth=5, progress=False)
    with pytest.raises(DataError, match="smooth=5 averages the rows after each row too, which the causal how='end'"):
        fit_series(model, series(100), window=10, how="end")
    data = SequenceData(np.zeros((20, 10, 1), np.float32), ["x"], None, pd.RangeIndex(20), "beats.csv")
    with pytest.raises(DataError, match="smooth applies to a series .* drop --smooth"):
        fit_data(model, data)
    assert not hasattr(model, "module_")


def test_training_rows_lie_between_the_held_out_ranges():
    runs = held_out_runs(91, 0.1, 3)
    ranges = held_out_rows(runs, 100, 10)
    parts = training_rows(ranges, 100)
    assert [stop for _, stop in parts] == [first for first, _ in ranges]
    assert [first for first, _ in parts][1:] == [stop for _, stop in ranges[:-1]] and parts[0][0] == 0
    assert training_rows([], 50) == [(0, 50)]
    assert training_rows([(0, 20), (30, 50)], 50) == [(20, 30)]


def test_labelled_windows_are_left_out_and_labels_calibrate_best_f1():
    values = series(600, seed=5)
    labels = np.zeros(600, np.int8)
    for start in (100, 560):  # one labelled event in the training part, one in the held-out part
        values[start : start + 10] += 3
        labels[start : start + 10] = 1
    model = LSTMAutoencoder(encoder=(8, 4), epochs=2, progress=False, random_state=0, threshold="best-f1")
    fit_series(model, values, window=10, labels=labels)
    assert str(model.threshold_rule_) == "best-f1"
    # 591 windows, 59 held out; the 19 training windows that hold a row of 100..109 are left out
    assert model.history_["n_train"] == 591 - 59 - 19
    flagged = score_values(model, values)["is_anomaly"].to_numpy()
    assert flagged[560:570].any()


def test_encodings_per_window_per_group(fitted):
    values = np.concatenate([series(30, seed=1), series(25, seed=2)])
    codes, ends = encode_values(fitted, values, groups=np.array([0] * 30 + [1] * 25))
    assert codes.shape == (21 + 16, 8 + 4 + 4)  # default encoding "pooled"
    assert ends.tolist() == list(range(9, 30)) + list(range(39, 55))


def test_alarms_are_the_flags_after_the_alarm_rules_per_group(fitted):
    from lstmae.scoring import alarms_from_flags

    values = series(300, seed=6)
    values[100:103] += 4  # three rows: one short incident
    values[200] += 4      # one row
    table = score_values(fitted, values, how="end", threshold=1.0, alarms={"min_length": 3, "merge_gap": 2,
                                                                          "cooldown": 5})
    expected = alarms_from_flags(table["is_anomaly"].to_numpy(), min_length=3, merge_gap=2, cooldown=5, causal=False)
    np.testing.assert_array_equal(table["alarm"].to_numpy(), expected)
    assert table["alarm"].sum() < table["is_anomaly"].sum()
    assert "alarm" not in score_values(fitted, values, alarms=None)


def test_a_nan_names_the_input_row_and_column_not_a_window(fitted):
    data = series(seed=7)
    data[123, 1] = np.nan
    with pytest.raises(DataError, match=r"column 'b' has 1 missing value \(first at row 124\); fill them first \(pandas"):
        score_values(fitted, data)
    with pytest.raises(DataError, match="row 124"):
        fit_series(LSTMAutoencoder(encoder=(4,), epochs=1, progress=False), data, window=10, feature_names=["a", "b"])


def test_an_overflow_flags_causally_and_passes_an_adaptive_threshold(fitted):
    import copy

    data = series(seed=4)
    data[200, 1] = 1e20
    model = copy.deepcopy(fitted)  # telemanom wants 100 held-out scores; repeat the 39 the fixture has
    model.calibration_scores_ = {**fitted.calibration_scores_,
                                 "window": np.tile(fitted.calibration_scores_["window"], 3)}
    end = score_values(model, data, how="end", threshold="telemanom:2")
    assert end["overflow"][200:210].all() and not end["overflow"][:200].any()  # nothing before the value
    assert end["is_anomaly"][200:210].all()


@pytest.fixture(scope="module")
def fitted_point():
    # mse: its squares overflow, which the overflow test below needs
    model = LSTMAutoencoder(encoder=(8, 4), epochs=4, error_model="mse", progress=False, random_state=0)
    return fit_series(model, series(), window=10, how="point", feature_names=["a", "b"])


def test_point_scores_are_each_rows_own_error_averaged_over_the_windows_covering_it(fitted_point, monkeypatch):
    fitted = fitted_point
    import lstmae.series

    values = series(60, seed=3)
    window, stride = fitted.n_timesteps_, 2
    X = np.lib.stride_tricks.sliding_window_view(values, window, axis=0).transpose(0, 2, 1)[::stride]
    steps, per_feature = fitted.step_errors(X, feature_errors=True)  # (N, L, D), (N, L, F)
    expected_vectors = np.full((len(values), steps.shape[2]), np.nan)
    expected_errors = np.full((len(values), 2), np.nan)
    for row in range(len(values)):  # by hand: every (window, step) that lands on the row
        hits = [(i, row - i * stride) for i in range(len(X)) if 0 <= row - i * stride < window]
        if hits:
            expected_vectors[row] = np.mean([steps[i, j] for i, j in hits], axis=0)
            expected_errors[row] = np.mean([per_feature[i, j] for i, j in hits], axis=0)
    covered = ~np.isnan(expected_vectors[:, 0])
    monkeypatch.setattr(lstmae.series, "POINT_CHUNK", 3)  # windows in several chunks add up the same
    table = score_values(fitted, values, how="point", stride=stride, feature_errors=True)
    np.testing.assert_array_equal(table["valid"], covered)
    np.testing.assert_allclose(table["score"][covered], fitted.error_model_.score_vectors(expected_vectors[covered]),
                               rtol=1e-6)
    np.testing.assert_allclose(table[["error_a", "error_b"]].to_numpy()[covered], expected_errors[covered], rtol=1e-6)


def test_point_scores_peak_on_a_short_anomaly_where_max_spreads_over_the_windows_around_it(fitted_point):
    values = series(200, seed=4)
    values[100:103, 0] += 6.0
    point = score_values(fitted_point, values, how="point")["score"].to_numpy()
    spread = score_values(fitted_point, values, how="max", threshold=np.inf)["score"].to_numpy()
    assert set(np.argsort(np.nan_to_num(point, nan=-np.inf))[-3:]) == {100, 101, 102}
    # with max, rows around the anomaly take the windows holding it and score as high as its own rows
    assert (np.nan_to_num(spread, nan=-np.inf) >= spread[100:103].min()).sum() >= 9


def test_fit_series_with_point_calibrates_on_point_scores_and_an_overflow_still_scores_inf(fitted_point, fitted):
    model = fitted_point
    assert model.threshold_how_ == "point" and set(model.calibration_scores_) == {"window", "point", "max", "mean"}
    tail = score_values(model, series()[-(39 + 9):], how="point")
    np.testing.assert_allclose(np.sort(tail["score"][tail["valid"]]), np.sort(model.calibration_scores_["point"]))
    values = series(50)
    values[20, 1] = 1e30
    table = score_values(model, values, how="point")
    assert np.isinf(table["score"][20]) and table["overflow"][20] and table["is_anomaly"][20] == 1
    assert np.isfinite(table["score"][:10]).all()  # rows no overflowed window covers keep finite scores
    # a model calibrated on another kind has no threshold for point scores: one clear error, not a wrong one
    with pytest.raises(DataError, match="refit it with how='point'"):
        score_values(fitted, values, how="point")


# --- bad input: one DataError line each, never an internal exception or a silently wrong result ---------------

def _frame(n=60):
    return pd.DataFrame(series(n), columns=["a", "b"])


@pytest.mark.parametrize("call, message", [
    (lambda m: m.score_series(_frame()[["a", "b", "a"]]),
     r"the data: column name 'a' appears twice \(columns 1 and 3\)"),
    (lambda m: m.score_series(_frame().assign(b=pd.date_range("2020", periods=60, freq="h"))),
     "feature column 'b' holds datetime64.* values, not real numbers; pass it as the time column"),
    (lambda m: m.score_series(_frame().assign(b=_frame()["b"] + 1j)), "feature column 'b' holds complex"),
    (lambda m: m.score_series(series(60)[None]), r"a series is \(T, F\).*got shape \(1, 60, 2\)"),
    (lambda m: score_values(m, series(60)[None]), r"a series is \(T, F\).*got shape \(1, 60, 2\)"),
    (lambda m: score_values(m, np.array([["x", 1.0]] * 20, dtype=object)),
     "column 1 row 1 holds 'x', not a number"),
    (lambda m: score_values(m, series(60), how="foo"), "unknown how='foo'; use one of max, mean, end, point"),
    (lambda m: score_values(m, series(60), threshold=float("nan")), r"or a number \(not NaN\); got nan"),
    (lambda m: score_values(m, series(60), threshold=[1]), r"or a number \(not NaN\); got \[1\]"),
    (lambda m: score_values(m, series(60), alarms={"cool_down": 5}), "unknown alarm option 'cool_down'"),
    (lambda m: score_values(m, series(60), alarms=[1]), "alarms must be a dict of min_length"),
    (lambda m: threshold_for(m, None), "threshold_for needs a rule such as 'mad:8'.*got None"),
    (lambda m: threshold_for(m, 3), "threshold_for needs a rule such as 'mad:8'.*got 3"),
    (lambda m: m.score_series(_frame().assign(e=None), entity_column="e"),
     r"id is missing at row 1 \(60 of 60 rows have none\)"),
    (lambda m: m.score_series(_frame().assign(e=[[1]] * 60), entity_column="e"), "id at row 1 is a list"),
])
def test_bad_scoring_input_is_one_line(fitted, call, message):
    with pytest.raises(DataError, match=message) as info:
        call(fitted)
    assert "\n" not in str(info.value)


def test_missing_ids_are_refused_not_merged_into_one_group():
    # None and NaN used to become one group, whose windows then crossed from one stretch to the other
    with pytest.raises(DataError, match=r"missing at row 11 \(30 of 40 rows have none\)"):
        groups_of(40, ["a"] * 10 + [None] * 20 + [np.nan] * 10)


@pytest.mark.parametrize("kwargs, message", [
    (dict(window=None), "window must be an integer >= 1, got None"),
    (dict(window=10, feature_names=["a", "a"]), "feature_names: column name 'a' appears twice"),
    (dict(window=10, labels=[0, 1]), r"labels must have shape \(400,\) like the series' rows; got \(2,\)"),
    (dict(window=10, labels=["a"] * 400), "labels must be 0 \\(normal\\) or 1 \\(anomaly\\); got 'a' at position 0"),
    (dict(window=10, how="sum"), "unknown how='sum'"),
])
def test_bad_fit_input_is_one_line_before_training(kwargs, message):
    model = LSTMAutoencoder(encoder=(4,), epochs=1, progress=False)
    with pytest.raises(DataError, match=message):
        fit_series(model, series(), **kwargs)
    assert not hasattr(model, "module_")


def test_a_value_the_scaling_turns_into_inf_is_named_by_row_and_column(fitted):
    values = series(60)
    values[12, 1] = np.finfo(np.float32).max  # finite, but not after scaling by b's spread (< 1)
    assert fitted.scaler_.scale[1] < 1
    with pytest.raises(DataError, match=r"column 'b' row 13 has value 3.40282e\+38, too large for the model's scaling"):
        score_values(fitted, values)
    # encode and reconstruct said "sample 3 contains NaN or inf" of a finite value, with --nan-policy as the fix
    for window_values in (encode_values, reconstruct_values):
        with pytest.raises(DataError, match=r"column 'b' row 13 has value 3.40282e\+38, too large"):
            window_values(fitted, values)


def test_scoring_with_another_mapping_refits_the_rule_on_that_mapping_s_own_held_out_rows():
    # a mean-fitted model scored with how="max" applied the mean rows' threshold to max rows (15% flagged, not 10%)
    model = fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0), series(),
                       window=10, how="mean")
    assert {"window", "mean", "max"} <= set(model.calibration_scores_)
    max_rows = score_values(model, series()[-(39 + 9):], how="max", threshold=np.inf)
    np.testing.assert_allclose(np.sort(max_rows["score"][max_rows["valid"]]), np.sort(model.calibration_scores_["max"]))
    assert threshold_for(model, "mad:8", how="max") > threshold_for(model, "mad:8", how="mean")
    table = score_values(model, series(seed=2), how="max")
    valid = table["valid"].to_numpy()
    np.testing.assert_array_equal(table["is_anomaly"][valid],
                                  table["score"][valid] > threshold_for(model, "mad:8", how="max"))
    # a new calibration of one row kind (another error model: other units) drops the previous one's other kinds
    recalibrated = LSTMAutoencoder.from_state(*model.get_state())
    recalibrated.set_calibration(model.calibration_scores_["max"] * 2, how="max")
    assert set(recalibrated.calibration_scores_) == {"window", "max"}
    # a row-fitted model saved before both kinds were stored is refused, not scored on the wrong kind
    del model.calibration_scores_["max"]
    with pytest.raises(DataError, match=r"no held-out how='max' scores .* fitted on how='mean'\); score with "
                                        r"how='mean'"):
        score_values(model, series(seed=2), how="max")


def test_half_precision_values_score_as_their_float32_copy_without_a_warning(fitted):
    model, half = fitted, series(120).astype(np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the float32 range check warned "overflow encountered in cast"
        scores = score_values(model, half)
    expected = score_values(model, half.astype(np.float32))
    np.testing.assert_array_equal(scores["score"].to_numpy(), expected["score"].to_numpy())


def test_alarms_over_a_third_of_the_rows_warn_naming_the_group_and_what_to_do(fitted):
    from lstmae.series import STORM_SHARE, AlarmStormWarning

    normal, changed = series(200, seed=4), 3 * series(200, seed=5) + 2  # a new level and amplitude
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlarmStormWarning)
        calm = score_values(fitted, normal, alarms={})
    assert calm["alarm"][calm["valid"]].mean() <= STORM_SHARE
    with pytest.warns(AlarmStormWarning, match=r"^alarms cover \d+% of the scored rows, too many.*refit on more"):
        stormy = score_values(fitted, changed, alarms={})
    assert stormy["alarm"][stormy["valid"]].mean() > STORM_SHARE
    entities = np.array(["calm"] * 200 + ["m2"] * 200)
    with pytest.warns(AlarmStormWarning, match=r"of the scored rows of 'm2', too many") as caught:
        score_values(fitted, np.concatenate([normal, changed]), groups=entities, alarms={})
    assert "'calm'" not in str(caught[0].message)
    with pytest.warns(AlarmStormWarning, match=r"^flags cover"):  # no alarm rules: the flags are what is raised
        score_values(fitted, changed, alarms=None)


def test_a_threshold_that_follows_the_stream_ends_a_storm_the_static_rule_raises(fitted):
    from lstmae.series import STORM_SHARE, AlarmStormWarning

    moved = np.concatenate([series(200, seed=4), 3 * series(600, seed=5) + 2])  # normal, then a new level for good
    with pytest.warns(AlarmStormWarning, match=r"telemanom:2,mad=8"):
        static = score_values(fitted, moved, threshold="mad:8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlarmStormWarning)
        following = score_values(fitted, moved, threshold="telemanom:2,mad=8")
    assert static["alarm"][static["valid"]].mean() > 2 * STORM_SHARE
    assert following["alarm"][following["valid"]].mean() < STORM_SHARE / 2
    assert not following["alarm"][:190].any() and not static["alarm"][:190].any()  # before windows reach the change


def test_mad_with_quantile_1_is_never_below_the_highest_held_out_row_score(fitted):
    from lstmae.series import calibration_for, threshold_for

    held = calibration_for(fitted, fitted.threshold_how_)
    assert threshold_for(fitted, "mad:1") < held.max() == threshold_for(fitted, "mad:1,quantile=1")
    assert threshold_for(fitted, "mad:8,quantile=1") == max(threshold_for(fitted, "mad:8"), held.max())
    values = series(300, seed=6)
    plain, floored = (score_values(fitted, values, how=fitted.threshold_how_, threshold=spec, alarms=None)
                      for spec in ("mad:1", "mad:1,quantile=1"))
    assert 0 < floored["is_anomaly"].sum() < plain["is_anomaly"].sum()
    assert (floored["is_anomaly"] <= plain["is_anomaly"]).all()  # a higher threshold: a subset of the flags
    assert (floored["score"][floored["is_anomaly"] == 1] > held.max()).all()


def test_the_threshold_source_says_training_rows_when_nothing_was_held_out():
    from lstmae.series import threshold_source

    model = LSTMAutoencoder(encoder=(4,), epochs=1, validation_fraction=0.0, progress=False, random_state=0)
    fit_series(model, series(120), window=10)
    assert model.history_["n_validation"] == 0
    assert threshold_source(model) == ("training row scores (how=mean): nothing was held out "
                                       "(validation_fraction=0)")
    held = fit_series(LSTMAutoencoder(encoder=(4,), epochs=1, progress=False, random_state=0), series(120), window=10)
    assert threshold_source(held) == "held-out row scores (how=mean)"


def _sensor_and_flag(n=900, seed=0):
    """(T, 2): a noisy sine and a 0/1 command flag, on for 3 rows every 150 (MSL's telemetry and commands)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    flag = (t % 150 < 3).astype(float)
    return np.column_stack([np.sin(2 * np.pi * t / 30) + 0.05 * rng.normal(size=n), flag]).astype(np.float32)


def test_a_flag_feature_is_an_input_but_not_scored_with_binary_features_context(tmp_path):
    from lstmae.estimator import load

    values = _sensor_and_flag()
    test = values[600:].copy()
    test[100:140, 1] = 1.0  # a command held on: not what the sensor is watched for
    scores = {}
    for mode in ("scored", "context"):
        model = LSTMAutoencoder(encoder=(8,), epochs=10, progress=False, random_state=0, binary_features=mode)
        fit_series(model, values[:600], window=20)
        scores[mode] = score_values(model, test)
        assert model.binary_features_.tolist() == [False, True]
    assert model.error_model_.scored.tolist() == [True, False]
    flipped = slice(120, 140)  # rows whose every window holds flipped flags
    # scored, the flipped flag alarms; as context it is the sensor's reconstruction only that counts
    assert scores["scored"]["is_anomaly"].iloc[flipped].all()
    assert scores["context"]["score"].iloc[flipped].max() < scores["scored"]["score"].iloc[flipped].min()
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.binary_features_.tolist() == [False, True] and loaded.error_model_.scored.tolist() == [True, False]
    pd.testing.assert_frame_equal(score_values(loaded, test), scores["context"])
    loaded.recalibrate(np.stack([values[i:i + 20] for i in range(500, 580)]))
    assert loaded.error_model_.scored.tolist() == [True, False]  # a refit keeps what the training data was


def test_every_feature_is_scored_when_all_are_flags_or_none_is():
    rng = np.random.default_rng(1)
    flags = (rng.random((300, 2)) > 0.5).astype(np.float32)
    for values in (flags, _sensor_and_flag(300)[:, :1]):
        model = LSTMAutoencoder(encoder=(4,), epochs=1, progress=False, random_state=0, binary_features="context")
        fit_series(model, values, window=10)
        assert model.error_model_.scored is None
    with pytest.raises(ValueError, match=r"binary_features must be one of \('scored', 'context'\), got 'ignore'"):
        LSTMAutoencoder(binary_features="ignore").fit(np.zeros((4, 5, 1)))


def test_a_rule_given_to_calibrate_threshold_is_the_one_series_scoring_applies():
    """threshold stayed "auto", so row scoring took the default row rule and ignored the calibrated one."""
    from lstmae import temporalize

    values = series()
    windows, _ = temporalize(values, 10)
    model = LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0).fit(windows[:200])
    model.calibrate_threshold(windows[:200], threshold="quantile:0.5")
    rows = score_values(model, values)
    assert 0.3 < rows["is_anomaly"].mean() < 0.7  # about half, as the rule asks: it flagged none
    same = copy.deepcopy(model).set_params(threshold="quantile:0.5")
    assert (score_values(same, values)["is_anomaly"] == rows["is_anomaly"]).all()


def test_a_dataframe_s_column_names_are_recorded_and_scoring_picks_features_by_them():
    """The names were dropped, so columns in another order were scored as the trained features, silently."""
    from sklearn.exceptions import NotFittedError

    frame = pd.DataFrame(series(), columns=["a", "b"])
    model = fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0), frame, window=10)
    assert list(model.feature_names_in_) == ["a", "b"]
    want = score_values(model, frame)
    pd.testing.assert_frame_equal(score_values(model, frame[["b", "a"]]), want)
    assert not score_values(model, frame[["b", "a"]].to_numpy())["score"].equals(want["score"])  # arrays: by position
    with pytest.raises(DataError, match="missing 'b'"):
        score_values(model, frame.rename(columns={"b": "c"}))
    with pytest.raises(NotFittedError):  # it was an AttributeError on n_timesteps_
        score_values(LSTMAutoencoder(), series())


def test_threshold_for_an_unknown_how_names_the_choices(fitted):
    from lstmae.series import threshold_for

    with pytest.raises(DataError, match="unknown how='foo'; use one of"):  # it said to refit with how='foo'
        threshold_for(fitted, "sigma:3", how="foo")


def test_encode_and_reconstruct_values_name_a_missing_cell_by_row_and_column(fitted):
    """They named the window holding it ("sample 41 contains NaN or inf")."""
    values = series()
    values[50, 1] = np.nan
    for function in (encode_values, reconstruct_values):
        with pytest.raises(DataError, match="column 'b' has 1 missing value \\(first at row 51\\)"):
            function(fitted, values)


def test_bool_flag_columns_are_0_1_in_fitting_as_in_scoring():
    """fit_series refused a frame with a bool column ("holds False, not a number") that score_series scored."""
    values = series()
    frame = pd.DataFrame({"a": values[:, 0], "door_open": values[:, 1] > 0})
    model = fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0), frame, window=10)
    as_numbers = frame.astype({"door_open": float})
    pd.testing.assert_frame_equal(score_values(model, frame), score_values(model, as_numbers))
    pd.testing.assert_frame_equal(score_values(model, frame.to_numpy()), score_values(model, as_numbers))


def test_one_extreme_training_value_that_sets_a_columns_scale_is_named_in_a_warning():
    """A typo such as 1e20 in one training row made the scaler divide column a by 5.6e18: fit said nothing,
    and an anomaly on a later scored 0 flags."""
    values = series(300)
    values[40, 0] = 1e20
    model = LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0)
    with pytest.warns(UserWarning, match=r"column 'a' row 41 holds 1e\+20, which alone sets the column's scale"):
        fit_series(model, values, window=10, feature_names=["a", "b"])
    flagged = series(300)
    flagged[:, 1] = 0.0
    flagged[7, 1] = 1.0  # one event in a column otherwise constant: nothing else in it to blind
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0), flagged, window=10)
    assert not any("alone sets" in str(w.message) for w in caught)


def test_best_f1_without_a_labelled_anomaly_in_the_held_out_rows_is_refused_before_training():
    """It was refused after every epoch had run."""
    labels = np.zeros(300, np.int8)
    labels[100:106] = 1  # in the training part; the held-out tail holds none
    model = LSTMAutoencoder(encoder=(8, 4), epochs=2, threshold="best-f1", progress=False, random_state=0)
    model.fit = lambda *args, **kwargs: pytest.fail("trained before refusing")
    with pytest.raises(DataError, match=r"threshold 'best-f1' is fitted on the labels of the held-out rows \(\d+ "
                                        r"rows\), and they are all 0"):
        fit_series(model, series(300), window=10, labels=labels)


@pytest.mark.parametrize("rule, needed", [("dspot:0.001", 210), ("telemanom:2.5", 100), ("pot:0.001", 500)])
def test_a_rule_with_too_few_held_out_scores_is_refused_before_training(rule, needed, monkeypatch):
    # dspot on a 400-row series trained every epoch, then failed on its 37 held-out window scores
    import lstmae.estimator

    def no_training(*args, **kwargs):
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(lstmae.estimator, "train", no_training)
    model = LSTMAutoencoder(encoder=(4,), epochs=1, threshold=rule, progress=False)
    with pytest.raises(DataError, match=rf"threshold '{rule}' is fitted on at least {needed} held-out scores, and 37 "
                                        r"samples would be held out \(validation_fraction=0.1 of 371\)"):
        fit_series(model, series(400), window=30)
    assert not hasattr(model, "module_")
    # with a floor, Telemanom starts from fewer; enough held-out windows pass the check
    monkeypatch.undo()
    assert LSTMAutoencoder(encoder=(4,), epochs=1, threshold="telemanom:2.5,mad=8", progress=False).fit(
        np.random.default_rng(0).normal(size=(40, 5, 1))).threshold_ > 0


def test_feature_names_put_an_array_in_the_models_order():
    # they only labelled the error columns: an array in another order was scored as if in the model's
    from lstmae.series import score_values

    values = series(200)
    model = fit_series(LSTMAutoencoder(encoder=(4,), epochs=1, progress=False, random_state=0), values, window=10,
                       feature_names=["s", "c"])
    plain = score_values(model, values, feature_errors=True)
    swapped = score_values(model, values[:, ::-1], feature_errors=True, feature_names=["c", "s"])
    pd.testing.assert_frame_equal(swapped, plain)
    with pytest.raises(DataError, match=r"feature_names: expected 2 features \(trained on s, c\), got 2: missing 'c'"):
        score_values(model, values, feature_names=["s", "x"])
    with pytest.raises(DataError, match=r"^the series has 1 column; the model was trained on 2 features \(s, c\)$"):
        score_values(model, values[:, :1])
    unnamed = fit_series(LSTMAutoencoder(encoder=(4,), epochs=1, progress=False, random_state=0), values, window=10)
    assert list(score_values(unnamed, values, feature_errors=True, feature_names=["u", "v"]).columns[-2:]) == [
        "error_u", "error_v"]


def test_predict_on_windows_of_a_series_model_uses_the_window_threshold():
    # it compared window scores with a threshold fitted on row scores (the mean over each row's windows)
    from lstmae.data.windowing import temporalize
    from lstmae.series import end_threshold

    values = series(300)
    model = fit_series(LSTMAutoencoder(encoder=(4,), epochs=1, progress=False, random_state=0), values, window=10)
    assert model.threshold_how_ == "mean"
    windows, _ = temporalize(values, 10)
    window_threshold, _ = end_threshold(model)
    assert window_threshold != model.threshold_
    np.testing.assert_array_equal(model.predict(windows), (model.anomaly_score(windows) > window_threshold))


def test_score_frame_reads_the_model_own_entity_and_time_columns_as_lstmae_score_reads_a_file(tmp_path):
    # windows ran from one machine into the next and across a time gap, without a word, where `lstmae score` cut
    from lstmae.data.io import read_series
    from lstmae.series import fit_data, read_for_model, score_data

    times = pd.date_range("2024-01-01", periods=150, freq="min")
    times = times.append(times[-1] + pd.Timedelta("2h") + pd.to_timedelta(np.arange(150), "min"))  # a 2-hour gap
    frame = pd.concat([pd.DataFrame({"timestamp": times, "machine": name, "a": series(300, seed=k)[:, 0],
                                     "b": series(300, seed=k)[:, 1] + 3 * k})
                       for k, name in enumerate(["m1", "m2"])], ignore_index=True)
    frame.to_csv(tmp_path / "data.csv", index=False)
    settings = {"time_column": "timestamp", "entity_column": "machine"}
    model = fit_data(LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0),
                     read_series(tmp_path / "data.csv", **settings), window=10, settings=settings)
    with pytest.warns(UserWarning, match="split the series at 2 time gap"):
        expected = score_data(model, read_for_model(model, tmp_path / "data.csv"))[0]["score"].to_numpy()
    assert not np.allclose(score_values(model, frame[["a", "b"]].to_numpy())["score"], expected)  # one series
    with pytest.warns(UserWarning, match="split the series at 2 time gap"):
        scored = score_frame(model, pd.read_csv(tmp_path / "data.csv"))  # times as text, as read_csv leaves them
    np.testing.assert_allclose(scored["score"], expected, rtol=1e-6)
    with pytest.warns(UserWarning, match="split the series at 2 time gap"):
        by_index = model.score_series(frame.set_index("timestamp"))
    np.testing.assert_allclose(by_index["score"], expected, rtol=1e-6)
    # rows out of order: scored in time order, answered in the frame's order and index
    shuffled = frame.sample(frac=1, random_state=0)
    with pytest.warns(UserWarning, match="not in time order"):
        again = model.score_series(shuffled)
    assert again.index.equals(shuffled.index)
    np.testing.assert_allclose(again["score"], expected[shuffled.index.to_numpy()], rtol=1e-6)
    with pytest.warns(UserWarning, match="no column 'machine', the model's entity column: its rows are scored as one"):
        model.score_series(frame[frame["machine"] == "m1"].drop(columns="machine"))


def test_fit_series_refuses_a_frame_column_that_looks_like_labels_or_a_time_index_as_lstmae_fit_does():
    # a 0/1 "label" column was fed to the network as a feature, so scoring then needed the test labels as input
    values = series(200)
    frame = pd.DataFrame({"a": values[:, 0], "b": values[:, 1], "label": (np.arange(200) % 50 == 0).astype(int)})
    model = LSTMAutoencoder(encoder=(4,), epochs=1, progress=False, random_state=0)
    with pytest.raises(DataError, match=r"column 'label' looks like labels \(only 0 and 1\), not a feature; pass it as "
                                        r"labels=frame\['label'\] and leave it out of the features"):
        fit_series(model, frame, window=10)
    with pytest.raises(DataError, match=r"column 'step' looks like a time index .*frame.set_index\('step'\)"):
        fit_series(model, frame.drop(columns="label").assign(step=np.arange(200)), window=10)
    dated = frame.drop(columns="label").assign(ts=pd.date_range("2024-01-01", periods=200, freq="min"))
    with pytest.raises(DataError, match=r"column 'ts' looks like a time column \(dates\), not a feature"):
        fit_series(model, dated, window=10)  # it said "integers rising by 6e+10 every row"
    fit_series(model, frame.drop(columns="label"), labels=frame["label"], window=10)
    assert list(model.feature_names_in_) == ["a", "b"]
    kept = fit_series(clone(model), frame, window=10, feature_names=["a", "b", "label"])  # named: kept
    assert list(kept.feature_names_in_) == ["a", "b", "label"]
