import numpy as np
import pytest
from scipy.stats import genpareto
from sklearn.metrics import fbeta_score

from lstmae.exceptions import DataError
from lstmae.scoring import ThresholdRule, apply_threshold, default_threshold, parse_threshold


@pytest.mark.parametrize(
    "spec", ["quantile:0.99", "contamination:0.01", "sigma:3", "pot:0.001", "best-f1",
             "best-f:0.5", "fpr:0.05", "value:-0.3", "sigma:2.5", "pot:1e-05", "mad:5"]
)
def test_str_gives_the_spec_back(spec):
    rule = parse_threshold(spec)
    assert str(rule) == spec
    assert parse_threshold(str(rule)) == rule


def test_parse_fields_and_default():
    assert parse_threshold(" POT:1e-3 ") == ThresholdRule("pot", 0.001)
    assert parse_threshold("best-f1") == ThresholdRule("best-f1", None)
    # threshold="auto": a stricter rule on a series' row scores than on one score per sequence
    assert parse_threshold(default_threshold()) == ThresholdRule("sigma", 2.0)
    assert parse_threshold(default_threshold("window")) == ThresholdRule("sigma", 2.0)
    for how in ("max", "mean", "end", "point"):
        assert parse_threshold(default_threshold(how)) == ThresholdRule("mad", 8.0, {"quantile": 1.0})


def test_quantile_contamination_sigma_value_on_hand_examples():
    scores = np.arange(101, dtype=float)  # 0..100: the q quantile is 100 q
    assert parse_threshold("quantile:0.9").fit(scores) == pytest.approx(90)
    assert parse_threshold("contamination:0.1").fit(scores) == pytest.approx(90)
    assert parse_threshold("sigma:2").fit([1.0, 3.0]) == pytest.approx(2 + 2 * 1)
    assert parse_threshold("value:0.3").fit(scores) == 0.3


def test_mad_ignores_the_tail_that_inflates_sigma():
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 1000.0])  # median 3.5, MAD 1.5
    assert parse_threshold("mad:2").fit(scores) == pytest.approx(3.5 + 2 * 1.4826 * 1.5)
    assert parse_threshold("mad:2").fit(scores) < parse_threshold("sigma:2").fit(scores) / 10
    normal = np.random.default_rng(0).normal(size=100_000)  # for normal scores both are mean + K sigma
    assert parse_threshold("mad:3").fit(normal) == pytest.approx(parse_threshold("sigma:3").fit(normal), abs=0.03)


def test_mad_with_a_quantile_never_flags_the_calibration_scores_own_peaks():
    rng = np.random.default_rng(0)
    scores = np.where(np.arange(1000) % 100 < 10, 20.0, 1.0) + rng.normal(0, 0.1, 1000)  # a periodic normal peak
    plain, floored = parse_threshold("mad:8").fit(scores), parse_threshold("mad:8,quantile=1").fit(scores)
    assert plain < 5 and floored == scores.max()  # the MAD ignores the peaks: mad:8 flags every one of them
    assert parse_threshold("mad:8,quantile=0.5").fit(scores) == plain  # the median is below mad:8
    assert parse_threshold("mad:8,quantile=0") == parse_threshold("mad:8")  # the default: no floor
    assert str(parse_threshold(" MAD:8, quantile=1 ")) == "mad:8,quantile=1"


def test_mad_of_mostly_equal_scores_stays_above_the_median():
    scores = np.array([0.0] * 8 + [1.0, 3.0])  # MAD 0: the mean absolute deviation (0.4) stands in
    assert parse_threshold("mad:5").fit(scores) == pytest.approx(5 * 1.2533 * 0.4)
    assert parse_threshold("mad:5").fit(np.zeros(5)) == 0.0  # all equal: nothing lies above it


def test_fpr_uses_normal_scores_only_when_labelled():
    scores = np.concatenate([np.arange(101.0), [1000.0, 2000.0]])
    labels = np.r_[np.zeros(101), 1, 1]
    assert parse_threshold("fpr:0.1").fit(scores, labels) == pytest.approx(90)
    assert parse_threshold("fpr:0.1").fit(scores) == pytest.approx(np.quantile(scores, 0.9))
    with pytest.raises(DataError, match="needs normal \\(label 0\\) scores; all labels are 1"):
        parse_threshold("fpr:0.1").fit([1.0, 2.0], [1, 1])


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
def test_best_f_threshold_matches_brute_force(beta):
    rng = np.random.default_rng(0)
    labels = (rng.random(300) < 0.2).astype(int)
    scores = np.round(rng.normal(size=300) + 1.5 * labels, 1)  # ties on purpose
    rule = ThresholdRule("best-f1") if beta == 1 else ThresholdRule("best-f", beta)
    threshold = rule.fit(scores, labels)
    candidates = np.concatenate([np.unique(scores), [scores.min() - 1]])
    best = max(fbeta_score(labels, scores > t, beta=beta, zero_division=0) for t in candidates)
    assert fbeta_score(labels, apply_threshold(scores, threshold), beta=beta) == pytest.approx(best)


def test_pot_follows_the_spot_formula():
    rng = np.random.default_rng(1)
    scores = rng.lognormal(size=5000)
    q = 1e-3
    t = np.quantile(scores, 0.98)
    excesses = scores[scores > t] - t
    gamma, _, sigma = genpareto.fit(excesses, floc=0)
    expected = t + sigma / gamma * ((q * scores.size / excesses.size) ** (-gamma) - 1)
    assert parse_threshold("pot:1e-3").fit(scores) == pytest.approx(expected, rel=1e-9)


def test_pot_gamma_zero_limit(monkeypatch):
    scores = np.random.default_rng(2).random(1000)
    monkeypatch.setattr(genpareto, "fit", lambda *args, **kwargs: (0.0, 0.0, 0.5))
    t = np.quantile(scores, 0.98)
    n_excesses = np.sum(scores > t)
    expected = t - 0.5 * np.log(1e-3 * 1000 / n_excesses)
    assert parse_threshold("pot:1e-3").fit(scores) == pytest.approx(expected)


@pytest.mark.parametrize(
    "sample, true_quantile",
    [
        (lambda rng: rng.exponential(size=200_000), -np.log(1e-3)),  # light tail, gamma = 0
        (lambda rng: rng.pareto(3.0, size=200_000) + 1, 1e-3 ** (-1 / 3)),  # heavy tail, gamma = 1/3
    ],
)
def test_pot_estimates_extreme_quantiles(sample, true_quantile):
    scores = sample(np.random.default_rng(3))
    assert parse_threshold("pot:1e-3").fit(scores) == pytest.approx(true_quantile, rel=0.1)


def test_apply_threshold_is_strictly_above_and_nan_is_normal():
    flags = apply_threshold([0.1, 0.5, 0.9, np.nan], 0.5)
    np.testing.assert_array_equal(flags, [0, 0, 1, 0])
    assert flags.dtype == np.int8


@pytest.mark.parametrize(
    "spec, message",
    [
        ("foo:1", r"unknown threshold 'foo:1'; use one of quantile:Q, contamination:C, sigma:K"),
        ("quantile", r"threshold 'quantile' needs a parameter, e.g. quantile:0.99"),
        ("quantile:abc", r"threshold 'quantile:abc': 'abc' is not a number; e.g. quantile:0.99"),
        ("telemanom:abc", r"threshold 'telemanom:abc': 'abc' is not a number; e.g. telemanom:"),  # said quantile
        ("quantile:1.5", r"threshold 'quantile:1.5': Q must be in \(0, 1\)"),
        ("contamination:0", r"C must be in \(0, 1\)"),
        ("sigma:-1", r"K must be a finite number > 0"),
        ("sigma:inf", r"threshold 'sigma:inf': K must be a finite number > 0"),  # said "K must be > 0"
        ("mad:0", r"threshold 'mad:0': K must be a finite number > 0, e.g. mad:5"),
        ("pot:0.05", r"the risk Q must be in \(0, 0.02\) \(larger: use quantile:1-Q\)"),
        ("best-f:0", r"BETA must be a finite number > 0"),
        ("fpr:1", r"R must be in \(0, 1\)"),
        ("value:nan", r"threshold 'value:nan': the value must be finite"),
        ("best-f1:2", r"threshold 'best-f1:2' takes no parameter"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(DataError, match=message):
        parse_threshold(spec)


def test_best_f_needs_labels_of_both_classes():
    with pytest.raises(DataError, match=r"threshold 'best-f1' needs labels \(0 = normal, 1 = anomaly\)"):
        parse_threshold("best-f1").fit([0.1, 0.2])
    with pytest.raises(DataError, match=r"needs both normal \(0\) and anomalous \(1\) labels; got only 0"):
        parse_threshold("best-f:2").fit([0.1, 0.2], [0, 0])


def test_bad_scores_and_labels():
    rule = parse_threshold("quantile:0.9")
    with pytest.raises(DataError, match=r"2 NaN/inf values \(first at position 1\); drop invalid"):
        rule.fit([0.1, np.nan, np.inf])
    with pytest.raises(DataError, match=r"non-empty 1-D array; got shape \(0,\)"):
        rule.fit([])
    with pytest.raises(DataError, match=r"labels must have shape \(3,\) like the scores; got \(2,\)"):
        rule.fit([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(DataError, match=r"0 \(normal\) or 1 \(anomaly\); got -1 at position 2"):
        rule.fit([0.1, 0.2, 0.3], [0, 1, -1])


def test_pot_needs_enough_tail_scores():
    with pytest.raises(DataError, match=r"needs at least 10 scores above their 0.98 quantile; got 2 of 100"):
        parse_threshold("pot:1e-3").fit(np.arange(100.0))


def test_pot_with_ties_at_the_initial_quantile_falls_back_to_the_empirical_quantile():
    scores = np.r_[np.zeros(990), np.arange(1.0, 11.0)]  # only 1% of scores above the 0.98 quantile
    assert parse_threshold("pot:0.015").fit(scores) == pytest.approx(np.quantile(scores, 0.985))


@pytest.mark.parametrize(
    "spec, canonical",
    [
        ("dspot:1e-3", "dspot:0.001"),
        (" DSPOT:0.001, depth=200 ", "dspot:0.001,depth=200"),
        ("dspot:1e-3,depth=100", "dspot:0.001"),  # the default option is dropped
        ("telemanom:2.5", "telemanom:2.5"),
        ("telemanom:3,every=10,window=500,span=4", "telemanom:3,every=10,span=4,window=500"),
    ],
)
def test_adaptive_specs_parse_and_round_trip(spec, canonical):
    rule = parse_threshold(spec)
    assert str(rule) == canonical
    assert parse_threshold(str(rule)) == rule
    assert rule.adaptive
    detector = rule.make_adaptive()
    assert detector.spec == canonical
    assert not parse_threshold("sigma:3").adaptive and not parse_threshold("best-f1").adaptive


def test_adaptive_rule_fit_gives_the_starting_threshold():
    scores = np.random.default_rng(8).gamma(2.0, 1.0, 2000)
    for spec in ("dspot:1e-3", "telemanom:2.5"):
        rule = parse_threshold(spec)
        assert rule.fit(scores) == rule.make_adaptive().fit(scores).threshold
    assert ThresholdRule("dspot", 1e-3, {"depth": 50}) == parse_threshold("dspot:1e-3,depth=50")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("dspot:0.05", r"threshold 'dspot:0.05': the risk RISK must be in \(0, 0.02\), e.g. dspot:1e-3"),
        ("dspot", r"threshold 'dspot' needs a parameter, e.g. dspot:1e-3"),
        ("telemanom:0", r"threshold 'telemanom:0': Z must be in \(0, 12\), e.g. telemanom:2.5"),
        ("dspot:1e-3,depth=-1", r"threshold 'dspot:0.001,depth=-1': dspot depth must be an integer >= 0"),
        ("dspot:1e-3,depth=1.5", r"dspot depth must be an integer >= 0; got 1.5"),
        ("telemanom:2.5,window=3", r"telemanom window must be an integer >= 10"),
        ("telemanom:2.5,every=0", r"telemanom every must be an integer >= 1"),
        ("dspot:1e-3,size=3", r"threshold 'dspot' has no option 'size'; its options are depth \(default 100\)"),
        ("dspot:1e-3,depth", r"option 'depth' must be name=value, e.g. dspot:1e-3,depth=200"),
        ("dspot:1e-3,depth=x", r"option depth='x' is not a number"),
        ("dspot:1e-3,depth=5,depth=6", r"option 'depth' is given twice"),
        ("sigma:3,depth=5", r"threshold 'sigma' takes no options \(got depth\); only dspot, telemanom, mad do"),
        ("mad:8,quantile=1.5", r"threshold option quantile=1.5 must be in \[0, 1\], e.g. mad:8,quantile=1"),
        ("mad:8,quantile=-0.1", r"threshold option quantile=-0.1 must be in \[0, 1\]"),
        ("mad:8,depth=5", r"threshold 'mad' has no option 'depth'; its options are quantile \(default 0\)"),
        ("foo:1,depth=5", r"unknown threshold 'foo:1,depth=5'"),
    ],
)
def test_bad_adaptive_specs(spec, message):
    with pytest.raises(DataError, match=message):
        parse_threshold(spec)


def test_bad_rules_built_directly():
    with pytest.raises(DataError, match=r"threshold 'sigma:3' is static"):
        parse_threshold("sigma:3").make_adaptive()
    with pytest.raises(DataError, match=r"threshold options must be \(name, value\) pairs"):
        ThresholdRule("dspot", 1e-3, (1, 2, 3))
    with pytest.raises(DataError, match=r"threshold option depth='a' is not a number"):
        ThresholdRule("dspot", 1e-3, {"depth": "a"})
    with pytest.raises(DataError, match=r"a threshold spec must be text"):
        parse_threshold(3)


@pytest.mark.parametrize("spec, words", [
    ("mad:8,quantile=1", "median + 8 robust standard deviations (1.4826 x their median absolute deviation), never "
                         "below their highest"),
    ("mad:5,quantile=0.99", "never below their 0.99 quantile"),
    ("sigma:3", "mean + 3 standard deviations"),
    ("quantile:0.99", "the 0.99 quantile of the held-out scores"),
    ("telemanom:2,mad=8", "z from 2 up"),
    ("telemanom:2,mad=8", "never below the held-out scores' median + 8 robust"),
    ("dspot:1e-3", "at risk 0.001"),
    ("best-f1", "optimistic"),
])
def test_each_rule_says_in_words_what_it_does(spec, words):
    assert words in parse_threshold(spec).meaning
