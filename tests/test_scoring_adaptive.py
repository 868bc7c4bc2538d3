import json
import math

import numpy as np
import pytest
from scipy.stats import genpareto

from lstmae.exceptions import DataError, ModelFileError
from lstmae.scoring import DSPOT, Telemanom, adaptive_from_state, parse_threshold
from lstmae.scoring.adaptive import DSPOT_INITIAL_QUANTILE

SPECS = ["dspot:1e-3", "dspot:0.005,depth=0", "dspot:1e-3,depth=30", "telemanom:2.5",
         "telemanom:2.5,every=1,window=300", "telemanom:3,span=5,every=7", "telemanom:2,mad=8"]


def calibration_and_test(seed=0, n_test=3000):
    """Gamma noise; the test part drifts upwards and has NaN warm-up rows and two bursts."""
    rng = np.random.default_rng(seed)
    calibration = rng.gamma(2.0, 1.0, 1500)
    test = rng.gamma(2.0, 1.0, n_test) + np.linspace(0.0, 2.0, n_test)
    test[:7] = np.nan
    test[1000:1010] += 12.0
    test[2000:2030] += 9.0
    test[2500] = np.nan
    return calibration, test


def roundtrip(detector):
    """Save through JSON (config) and copies (arrays), as a streaming scorer would, and restore."""
    config, arrays = detector.get_state()
    config = json.loads(json.dumps(config, allow_nan=False))
    arrays = {name: np.array(array, dtype=np.float64) for name, array in arrays.items()}
    return adaptive_from_state(config, arrays)


@pytest.mark.parametrize("spec", SPECS)
def test_batch_equals_one_at_a_time_equals_chunks_with_save_and_restore(spec):
    calibration, test = calibration_and_test()
    rule = parse_threshold(spec)
    batch_flags, batch_thresholds = rule.make_adaptive().fit(calibration).update(test)

    one = rule.make_adaptive().fit(calibration)
    single = [one.update(test[i : i + 1]) for i in range(len(test))]
    assert np.array_equal(np.concatenate([f for f, _ in single]), batch_flags)
    assert np.array_equal(np.concatenate([t for _, t in single]), batch_thresholds)

    detector = rule.make_adaptive().fit(calibration)
    flags, thresholds = [], []
    for chunk in np.array_split(test, [5, 800, 801, 1005, 2222]):  # save/restore after every chunk
        chunk_flags, chunk_thresholds = detector.update(chunk)
        flags.append(chunk_flags)
        thresholds.append(chunk_thresholds)
        detector = roundtrip(detector)
    assert np.array_equal(np.concatenate(flags), batch_flags)
    assert np.array_equal(np.concatenate(thresholds), batch_thresholds)
    assert batch_flags.dtype == np.int8 and batch_thresholds.dtype == np.float64


@pytest.mark.parametrize("spec", SPECS)
def test_flags_are_scores_above_the_reported_threshold_and_bursts_are_found(spec):
    calibration, test = calibration_and_test()
    flags, thresholds = parse_threshold(spec).make_adaptive().fit(calibration).update(test)
    valid = ~np.isnan(test)
    if "span" not in spec:  # unsmoothed: the flag is exactly score > its threshold
        assert np.array_equal(flags[valid] == 1, test[valid] > thresholds[valid])
    assert not flags[~valid].any()
    assert np.isfinite(thresholds).all()
    assert flags[1000:1010].any() and flags[2000:2030].any()
    assert flags.mean() < 0.05
    if "depth=0" not in spec:  # plain SPOT has no drift term
        static = parse_threshold("sigma:3").fit(calibration)
        assert (test[valid] > static).mean() > 2 * flags.mean()  # the drift alone does not flag the tail


@pytest.mark.parametrize("spec", SPECS)
def test_nan_scores_change_nothing(spec):
    calibration, test = calibration_and_test()
    test = test[~np.isnan(test)]
    with_gaps = np.insert(test, [0, 100, 100, 1500], np.nan)
    plain_flags, plain_thresholds = parse_threshold(spec).make_adaptive().fit(calibration).update(test)
    gap_flags, gap_thresholds = parse_threshold(spec).make_adaptive().fit(calibration).update(with_gaps)
    kept = ~np.isnan(with_gaps)
    assert np.array_equal(gap_flags[kept], plain_flags)
    assert np.array_equal(gap_thresholds[kept], plain_thresholds)
    assert not gap_flags[~kept].any()


def test_only_the_past_moves_the_threshold():
    calibration, test = calibration_and_test()
    for spec in SPECS:
        _, thresholds = parse_threshold(spec).make_adaptive().fit(calibration).update(test)
        changed = test.copy()
        changed[1500:] = 100.0
        _, changed_thresholds = parse_threshold(spec).make_adaptive().fit(calibration).update(changed)
        assert np.array_equal(changed_thresholds[:1501], thresholds[:1501]), spec


def test_dspot_starts_from_the_gpd_quantile_of_the_calibration_residuals():
    rng = np.random.default_rng(2)
    calibration = rng.exponential(1.0, 20000)
    detector = DSPOT(1e-4, depth=0).fit(calibration)
    # Exponential tail: the 1 - 1e-4 quantile is log(1e4); the static pot rule's MLE fit agrees.
    assert detector.threshold == pytest.approx(math.log(1e4), rel=0.1)
    assert detector.threshold == pytest.approx(parse_threshold("pot:1e-4").fit(calibration), rel=0.01)
    assert parse_threshold("dspot:1e-4,depth=0").fit(calibration) == detector.threshold
    # Method of moments on the excesses over t, as the docstring says.
    t = np.quantile(calibration, DSPOT_INITIAL_QUANTILE)
    excesses = calibration[calibration > t] - t
    m, v = excesses.mean(), excesses.var(ddof=1)
    shape, scale = 0.5 * (1 - m * m / v), 0.5 * m * (m * m / v + 1)
    expected = t + genpareto.isf(1e-4 * calibration.size / excesses.size, shape, scale=scale)
    assert detector.threshold == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n_residuals", [110, 200, 549])
def test_dspot_fits_a_few_hundred_calibration_scores_from_a_lower_initial_quantile(n_residuals):
    """A series of a few thousand rows holds a few hundred held-out scores: below 550 residuals t is
    the quantile that leaves 11 above it (down to 0.9), and the GPD is fitted on those excesses."""
    rng = np.random.default_rng(4)
    calibration = rng.exponential(1.0, n_residuals)
    detector = DSPOT(1e-3, depth=0).fit(calibration)
    state, _ = detector.get_state()
    assert state["initial"] == pytest.approx(np.quantile(calibration, 1 - 11 / n_residuals), rel=1e-12)
    assert state["n_peaks"] == 11
    assert detector.threshold > np.quantile(calibration, 0.99)
    flags, _ = detector.update(rng.exponential(1.0, 1000))
    assert flags.mean() < 0.01  # risk 1e-3: the same distribution is rarely flagged


def test_dspot_subtracts_the_moving_average_of_the_unflagged_scores():
    rng = np.random.default_rng(3)
    calibration = rng.exponential(1.0, 3000)
    detector = DSPOT(1e-3, depth=50).fit(calibration)
    z = detector.threshold - calibration[-50:].mean()
    stream = rng.exponential(1.0, 200) + 5.0  # a level shift the average follows
    flags, thresholds = detector.update(stream)
    assert thresholds[0] == pytest.approx(z + calibration[-50:].mean())
    assert not flags[100:].any()  # the level shift has been absorbed
    state, arrays = detector.get_state()
    assert detector.threshold == pytest.approx(state["z"] + np.mean(arrays["window"]), rel=1e-12)
    # A flagged score leaves the average and the tail model as they were.
    before = detector.get_state()
    flag, _ = detector.update([1e6])
    assert flag.tolist() == [1]
    after = detector.get_state()
    assert before[0] == after[0] and np.array_equal(before[1]["window"], after[1]["window"])


def test_dspot_threshold_never_falls_below_the_initial_threshold():
    calibration = np.random.default_rng(4).exponential(1.0, 2000)
    detector = DSPOT(0.019, depth=0).fit(calibration)
    initial = detector.get_state()[0]["initial"]
    _, thresholds = detector.update(np.zeros(20000))  # no peaks: risk * n / n_peaks grows past 1
    assert thresholds.min() >= initial


def test_telemanom_picks_epsilon_by_the_published_criterion():
    rng = np.random.default_rng(5)
    values = rng.normal(0.0, 1.0, 500) + 10.0
    values[[100, 300]] = [16.0, 15.0]  # two isolated outliers
    detector = Telemanom(2.5, window=500).fit(values)

    mu, sd = values.mean(), values.std()
    best, best_epsilon = -np.inf, mu + 12 * sd
    for z in np.arange(2.5, 12, 0.5):  # Hundman et al.'s loop, written out
        epsilon = mu + z * sd
        above = values >= epsilon
        runs = int(above[0]) + int(np.sum(above[1:] & ~above[:-1]))
        if above.sum() == 0 or runs > 5 or above.sum() >= 250:
            continue
        kept = values[~above]
        score = ((mu - kept.mean()) / mu + (sd - kept.std()) / sd) / (above.sum() + runs**2)
        if score >= best:
            best, best_epsilon = score, epsilon
    assert detector.threshold == pytest.approx(best_epsilon)
    assert np.sort(values)[-3] < detector.threshold < 16.0  # between the noise and the largest outlier


def test_telemanom_recomputes_every_n_scores_and_falls_back_to_twelve_sigma():
    values = np.tile([1.0, 2.0], 100)  # no value above mu + 2.5 sd: no z qualifies
    detector = Telemanom(2.5, window=200, every=3).fit(values)
    assert detector.threshold == pytest.approx(1.5 + 12 * 0.5)
    _, thresholds = detector.update([1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0])
    assert len(set(thresholds[:3].tolist())) == 1 and len(set(thresholds[3:6].tolist())) == 1
    constant = Telemanom(2.5, window=200).fit(np.full(150, 4.0))
    assert constant.threshold == 4.0
    assert constant.update([4.0, 4.5])[0].tolist() == [0, 1]


def test_telemanom_window_and_smoothing():
    rng = np.random.default_rng(6)
    calibration = rng.normal(5.0, 1.0, 1000)
    detector = Telemanom(3, window=200, span=9).fit(calibration)
    config, arrays = detector.get_state()
    alpha = 0.2
    smoothed = [calibration[0]]
    for value in calibration[1:]:
        smoothed.append(alpha * value + (1 - alpha) * smoothed[-1])
    assert np.allclose(arrays["window"], smoothed[-200:])
    assert config["last"] == pytest.approx(smoothed[-1])
    flags, _ = detector.update([30.0])  # smoothed: 0.2 * 30 + 0.8 * last
    assert flags.tolist() == [int(0.2 * 30 + 0.8 * smoothed[-1] > detector.get_state()[0]["epsilon"])]


def test_telemanom_with_a_mad_floor_flags_what_both_rules_flag():
    calibration, test = calibration_and_test()
    plain_flags, plain_thresholds = Telemanom(2).fit(calibration).update(test)
    floor = parse_threshold("mad:8").fit(calibration)
    detector = parse_threshold("telemanom:2,mad=8").make_adaptive().fit(calibration)
    assert detector.threshold == max(floor, Telemanom(2).fit(calibration).threshold)
    flags, thresholds = detector.update(test)
    np.testing.assert_array_equal(thresholds, np.maximum(plain_thresholds, floor))
    np.testing.assert_array_equal(flags, plain_flags & (np.nan_to_num(test) > floor))
    assert 0 < flags.sum() < plain_flags.sum()  # the floor removes some of Telemanom's flags, not all
    assert detector.spec == "telemanom:2,mad=8" and Telemanom(2, mad=0).spec == "telemanom:2"


def test_telemanom_with_a_floor_starts_from_fewer_calibration_scores_and_follows_a_shifted_stream():
    rng = np.random.default_rng(3)
    calibration = rng.gamma(2.0, 1.0, 60)  # Telemanom alone needs 100
    with pytest.raises(DataError, match="needs at least 100 calibration scores"):
        Telemanom(2).fit(calibration)
    shifted = rng.gamma(2.0, 1.0, 3000) + 15.0  # the whole stream above the held-out scores
    static = shifted > parse_threshold("mad:8").fit(calibration)
    flags, _ = Telemanom(2, mad=8).fit(calibration).update(shifted)
    assert static.mean() > 0.99 and flags.mean() < 0.1


def test_state_is_plain_json_and_named_arrays():
    calibration, test = calibration_and_test()
    for spec in SPECS:
        detector = parse_threshold(spec).make_adaptive().fit(calibration)
        detector.update(test[:100])
        config, arrays = detector.get_state()
        json.dumps(config, allow_nan=False)
        assert config["kind"] in ("dspot", "telemanom") and config["spec"] == str(parse_threshold(spec))
        assert all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in arrays.values())
        assert repr(detector).endswith("fitted)")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: DSPOT(0.05), r"dspot risk must be in \(0, 0.02\); got 0.05"),
        (lambda: DSPOT(1e-3, depth=-1), r"dspot depth must be an integer >= 0; got -1"),
        (lambda: DSPOT(1e-3, depth=2.5), r"dspot depth must be an integer >= 0; got 2.5"),
        (lambda: DSPOT("x"), r"dspot risk must be a number; got 'x'"),
        (lambda: Telemanom(12), r"telemanom Z must be in \(0, 12\)"),
        (lambda: Telemanom(2.5, window=5), r"telemanom window must be an integer >= 10"),
        (lambda: Telemanom(2.5, span=0.5), r"telemanom span must be in \[1, inf\)"),
        (lambda: Telemanom(2.5, every=0), r"telemanom every must be an integer >= 1"),
        (lambda: Telemanom(2, mad=-1), r"telemanom mad must be in \[0, inf\); got -1.0, e.g. telemanom:2,mad=8"),
        (lambda: parse_threshold("telemanom:2,mad=high"), r"option mad='high' is not a number"),
        (lambda: DSPOT(1e-3).update([1.0]), r"'dspot:0.001' is not fitted; call fit\(calibration_scores\) first"),
        (lambda: Telemanom(2.5).threshold, r"is not fitted"),
        (lambda: DSPOT(1e-3).fit(np.arange(200.0)), r"needs at least 210 calibration scores \(depth 100 \+ 110\); got 200"),
        (lambda: DSPOT(1e-3, depth=0).fit(np.r_[np.zeros(995), np.ones(5)]),
         r"at least 10 calibration residuals above their 0.98 quantile; got 5 of 1000"),
        (lambda: Telemanom(2.5).fit(np.ones(50)), r"needs at least 100 calibration scores; got 50"),
        (lambda: DSPOT(1e-3).fit([1.0, np.nan]), r"1 NaN/inf values \(first at position 1\)"),
        (lambda: DSPOT(1e-3).fit([]), r"non-empty 1-D array"),
        (lambda: DSPOT(1e-3).fit(["a"]), r"calibration scores must be numbers"),
        (lambda: DSPOT(1e-3, depth=0).fit(np.arange(1000.0)).update([1.0, np.inf]),
         r"infinite value at position 1; use NaN"),
        (lambda: DSPOT(1e-3, depth=0).fit(np.arange(1000.0)).update(np.ones((2, 2))), r"1-D array \(n,\)"),
    ],
)
def test_bad_parameters_and_inputs(make, message):
    with pytest.raises(DataError, match=message):
        make()


def test_bad_saved_states():
    calibration, _ = calibration_and_test()
    config, arrays = DSPOT(1e-3, depth=20).fit(calibration).get_state()
    cases = [
        ({**config, "kind": "spot"}, arrays, r"kind 'spot'; expected one of dspot, telemanom"),
        ({**config, "version": 99}, arrays, r"version 99; this lstmae reads version 1"),
        ({key: value for key, value in config.items() if key != "z"}, arrays, r"lacks z"),
        (config, {}, r"the array 'window' is missing"),
        (config, {"window": np.zeros(3)}, r"shape \(3,\), expected \(20,\)"),
        (config, {"window": np.full(20, np.nan)}, r"NaN/inf"),
        ({**config, "z": "high"}, arrays, r"z must be a finite number"),
        ({**config, "position": 20}, arrays, r"position 20 is outside the window of 20"),
        ({**config, "depth": -3}, arrays, r"depth must be an integer >= 0"),
    ]
    for bad_config, bad_arrays, message in cases:
        with pytest.raises(ModelFileError, match=message):
            adaptive_from_state(bad_config, bad_arrays)
    with pytest.raises(ModelFileError, match=r"kind 'dspot', not 'telemanom'"):
        Telemanom.from_state(config, arrays)
    telemanom_config, telemanom_arrays = Telemanom(2.5, window=100, every=5).fit(calibration).get_state()
    with pytest.raises(ModelFileError, match=r"since 7 must be below every 5"):
        adaptive_from_state({**telemanom_config, "since": 7}, telemanom_arrays)
    with pytest.raises(ModelFileError, match=r"do not fit the window"):
        adaptive_from_state({**telemanom_config, "filled": 101}, telemanom_arrays)
    with pytest.raises(ModelFileError, match=r"kind None"):
        adaptive_from_state([], {})
    floored_config, floored_arrays = Telemanom(2, mad=8).fit(calibration).get_state()
    with pytest.raises(ModelFileError, match=r"floor must be a finite number, got None"):
        adaptive_from_state({**floored_config, "floor": None}, floored_arrays)


def test_a_telemanom_state_saved_before_the_floor_reads_as_no_floor():
    calibration, test = calibration_and_test()
    detector = Telemanom(2.5).fit(calibration)
    config, arrays = detector.get_state()
    old = {key: value for key, value in config.items() if key not in ("mad", "floor")}
    restored = adaptive_from_state(old, arrays)
    assert restored.spec == "telemanom:2.5"
    np.testing.assert_array_equal(restored.update(test)[0], detector.update(test)[0])
