import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from lstmae.evaluation import detection_metrics, sequence_metrics, vus_pr
from lstmae.evaluation.metrics import METRIC_HELP, default_vus_window, vus_window_from_period
from lstmae.exceptions import DataError
from lstmae.scoring import flag_runs


def assert_plain_json(value):
    """Only built-in JSON types all the way down (no numpy scalars), and no NaN."""
    json.dumps(value, allow_nan=False)
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_json(item)
    else:
        assert value is None or type(value) in (int, float, str, bool), (value, type(value))


# Hand example: flagged (score > 0.5) rows 2 and 5; tp=1 fp=1 fn=1 tn=3.
HAND_Y = [0, 0, 1, 1, 0, 0]
HAND_SCORES = [0.1, 0.2, 0.9, 0.4, 0.3, 0.8]


def test_pointwise_metrics_on_hand_example():
    result = detection_metrics(HAND_Y, HAND_SCORES, 0.5)
    assert result["confusion_matrix"] == {"tn": 3, "fp": 1, "fn": 1, "tp": 1}
    assert result["precision"] == pytest.approx(0.5)
    assert result["recall"] == pytest.approx(0.5)
    assert result["f1"] == pytest.approx(0.5)
    assert result["balanced_accuracy"] == pytest.approx((0.5 + 3 / 4) / 2)
    # Positive/negative pairs ranked right: 0.9 beats all 4 negatives, 0.4 beats 3 of them.
    assert result["roc_auc"] == pytest.approx(7 / 8)
    # Ranking P N P ...: AP = 0.5 * 1 + 0.5 * 2/3.
    assert result["pr_auc"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert (result["n"], result["n_excluded"], result["n_anomalies"]) == (6, 0, 2)
    assert result["threshold"] == 0.5
    assert_plain_json(result)


def test_pointwise_metrics_agree_with_sklearn_on_random_case():
    rng = np.random.default_rng(1)
    labels = (rng.random(200) < 0.2).astype(int)
    scores = rng.normal(size=200) + labels
    threshold = 0.7
    result = detection_metrics(labels, scores, threshold)
    flagged = scores > threshold
    tp = int(np.sum(flagged & (labels == 1)))
    fp = int(np.sum(flagged & (labels == 0)))
    fn = int(np.sum(~flagged & (labels == 1)))
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert result["pr_auc"] == pytest.approx(average_precision_score(labels, scores))
    assert result["precision"] == pytest.approx(tp / (tp + fp))
    assert result["recall"] == pytest.approx(tp / (tp + fn))
    assert result["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_invalid_rows_and_nan_scores_are_excluded_and_counted():
    rng = np.random.default_rng(2)
    labels = np.array([1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0] * 5)
    scores = rng.random(len(labels)) + labels * 0.5
    valid = np.ones(len(labels), bool)
    valid[:4] = False
    scores[10] = np.nan
    result = detection_metrics(labels, scores, 0.8, valid=valid)
    kept = valid & ~np.isnan(scores)
    expected = detection_metrics(labels[kept], scores[kept], 0.8)
    assert result["n_excluded"] == 5
    assert result["n"] == int(kept.sum())
    for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "confusion_matrix"):
        assert result[key] == expected[key]


def test_single_class_gives_no_auc_and_explains_why():
    result = detection_metrics([0, 0, 0, 0], [0.1, 0.9, 0.2, 0.3], 0.5)
    assert result["roc_auc"] is None and result["pr_auc"] is None
    assert result["balanced_accuracy"] is None and result["vus_pr"] is None
    assert result["recall"] is None
    assert result["n_events"] == 0 and result["event_recall"] is None
    assert any("only normal (0)" in note for note in result["notes"])
    assert_plain_json(result)


def test_precision_is_none_when_nothing_is_flagged():
    result = detection_metrics([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], 10.0)
    assert result["precision"] is None
    assert result["recall"] == 0.0
    assert result["f1"] == 0.0
    assert any("nothing is flagged" in note for note in result["notes"])


def events_example():
    """Events at rows 5-8, 15-17 and 25-26; flags at row 3 (2 rows early) and row 16."""
    labels = np.zeros(30, int)
    labels[5:9] = labels[15:18] = labels[25:27] = 1
    scores = np.zeros(30)
    scores[[3, 16]] = 1.0
    return labels, scores


def test_event_recall_and_lead_time_without_early_window():
    labels, scores = events_example()
    result = detection_metrics(labels, scores, 0.5)
    assert result["n_events"] == 3
    assert result["n_detected_events"] == 1
    assert result["event_recall"] == pytest.approx(1 / 3)
    assert result["mean_lead_time"] == pytest.approx(15 - 16)  # flagged one row late


def test_early_window_counts_flags_before_the_event():
    labels, scores = events_example()
    result = detection_metrics(labels, scores, 0.5, early_window=2)
    assert result["event_recall"] == pytest.approx(2 / 3)
    assert result["mean_lead_time"] == pytest.approx(((5 - 3) + (15 - 16)) / 2)
    one_short = detection_metrics(labels, scores, 0.5, early_window=1)
    assert one_short["event_recall"] == pytest.approx(1 / 3)


def test_a_flagged_run_that_began_before_the_event_is_early():
    # at early_window 0 the lead could never be positive: the search for a flag starts at the labelled start
    labels, scores = np.zeros(30, int), np.zeros(30)
    labels[10:15] = 1
    scores[7:12] = 1.0  # a run from row 7 into the event
    assert detection_metrics(labels, scores, 0.5)["mean_lead_time"] == pytest.approx(3)
    scores[:] = 0.0
    scores[12:14] = 1.0
    assert detection_metrics(labels, scores, 0.5)["mean_lead_time"] == pytest.approx(-2)


def test_no_detected_event_gives_no_lead_time():
    labels, _ = events_example()
    result = detection_metrics(labels, np.zeros(30), 0.5)
    assert result["event_recall"] == 0.0
    assert result["mean_lead_time"] is None


def test_events_entirely_in_excluded_rows_are_not_counted():
    labels, scores = events_example()
    valid = np.ones(30, bool)
    valid[:10] = False
    result = detection_metrics(labels, scores, 0.5, valid=valid)
    assert result["n_events"] == 2
    assert any("1 event(s) lie entirely in excluded rows" in note for note in result["notes"])


def test_point_adjusted_f1_only_on_request_and_with_a_warning():
    labels = np.zeros(20, int)
    labels[5:9] = 1
    scores = np.zeros(20)
    scores[6] = 1.0  # one hit inside a 4-row event, no false positive
    plain = detection_metrics(labels, scores, 0.5)
    assert "point_adjusted_f1" not in plain and "warnings" not in plain
    adjusted = detection_metrics(labels, scores, 0.5, point_adjust=True)
    assert adjusted["f1"] == pytest.approx(2 * 1 / (2 * 1 + 0 + 3))
    assert adjusted["point_adjusted_f1"] == pytest.approx(1.0)
    assert "inflates" in adjusted["warnings"][0]
    assert_plain_json(adjusted)


FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "vus_pr_tsbad.json").read_text())


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=[case["name"] for case in FIXTURE["cases"]])
def test_vus_pr_equals_tsb_ad(case):
    """TSB-AD 1.5's get_metrics on the same labels, scores and sliding window (make_vus_fixture.py)."""
    labels, scores = np.array(case["labels"]), np.array(case["scores"])
    assert vus_pr(labels, scores, sliding_window=case["sliding_window"]) == pytest.approx(case["vus_pr"], abs=1e-9)
    result = detection_metrics(labels, scores, 0.5, vus_sliding_window=case["sliding_window"])
    assert result["vus_pr"] == pytest.approx(case["vus_pr"], abs=1e-9)
    assert result["roc_auc"] == pytest.approx(case["auc_roc"], abs=1e-12)
    assert result["pr_auc"] == pytest.approx(case["auc_pr"], abs=1e-12)
    if "data" in case:  # TSB-AD's benchmark took the window from the series' period
        assert vus_window_from_period(np.array(case["data"])) == case["sliding_window"]


def test_vus_window_from_period_falls_back_like_tsb_ad():
    noise = np.random.default_rng(0).standard_normal(50)
    assert vus_window_from_period(np.arange(100.0)) == 125  # no local maximum in the ACF
    assert vus_window_from_period(np.ones((100, 3))) == 0  # several features: no buffer
    assert vus_window_from_period(np.sin(2 * np.pi * np.arange(3000) / 20) + 0 * noise[0]) == 20
    assert vus_window_from_period([1.0, np.nan, 2.0, 3.0, 4.0, 5.0]) == 125


def test_vus_pr_of_excluded_rows_is_computed_on_the_scored_rows():
    case = FIXTURE["cases"][0]
    labels, scores = np.array(case["labels"]), np.array(case["scores"])
    padded_labels, padded_scores = np.r_[np.zeros(7, int), labels], np.r_[np.full(7, np.nan), scores]
    result = detection_metrics(padded_labels, padded_scores, 0.5, vus_sliding_window=case["sliding_window"])
    assert result["vus_pr"] == pytest.approx(case["vus_pr"], abs=1e-9)


def test_detection_metrics_reports_vus_pr_with_default_window():
    rng = np.random.default_rng(4)
    labels = np.zeros(200, int)
    labels[20:23] = labels[80:85] = labels[150:160] = 1  # lengths 3, 5, 10: median 5
    scores = rng.random(200) + labels * 0.5
    result = detection_metrics(labels, scores, 0.9)
    assert result["vus_sliding_window"] == 5
    assert result["vus_pr"] == vus_pr(labels, scores, sliding_window=5)
    skipped = detection_metrics(labels, scores, 0.9, vus=False)
    assert skipped["vus_pr"] is None and skipped["vus_sliding_window"] is None
    assert skipped["event_f1"] == result["event_f1"] and skipped["roc_auc"] == result["roc_auc"]


def test_default_vus_window_is_capped_at_100():
    labels = np.zeros(1000, int)
    labels[100:400] = 1
    assert default_vus_window(labels) == 100
    assert default_vus_window(np.zeros(10, int)) == 0


def test_alarm_rate_and_event_precision_on_hand_example():
    labels, scores = events_example()  # events 5-8, 15-17, 25-26; flags at 3 and 16
    scores[[11, 12]] = 1.0  # one false run
    result = detection_metrics(labels, scores, 0.5)
    assert result["n_flagged"] == 4 and result["alarm_rate"] == pytest.approx(4 / 30)
    assert (result["n_flagged_runs"], result["n_correct_runs"]) == (3, 1)  # 3 is early, 11-12 false
    assert result["event_precision"] == pytest.approx(1 / 3)
    assert result["event_f1"] == pytest.approx(1 / 3)  # recall 1/3 too
    early = detection_metrics(labels, scores, 0.5, early_window=2)  # row 3 now counts for 5-8
    assert (early["n_correct_runs"], early["event_recall"]) == (2, pytest.approx(2 / 3))
    assert early["event_f1"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    nothing = detection_metrics(labels, np.zeros(30), 0.5)
    assert nothing["event_precision"] is None and nothing["event_f1"] is None and nothing["alarm_rate"] == 0


def test_event_precision_counts_runs_touching_events_and_matches_brute_force():
    rng = np.random.default_rng(9)
    labels = (np.repeat(rng.random(60), 10) < 0.2).astype(int)
    flags = (rng.random(600) < 0.1).astype(int)
    result = detection_metrics(labels, rng.random(600), flags=flags, early_window=3)
    runs = list(zip(*flag_runs(flags)))
    widened = labels.copy()
    for start, end in zip(*flag_runs(labels)):
        widened[max(start - 3, 0) : end + 1] = 1
    correct = [bool(widened[start : end + 1].any()) for start, end in runs]
    assert result["n_flagged_runs"] == len(runs) and result["n_correct_runs"] == sum(correct)
    assert result["threshold"] is None


def test_flags_replace_the_threshold_and_invalid_rows_are_never_flagged():
    labels, scores = events_example()
    flags = np.zeros(30)
    flags[[0, 6, 16]] = 1
    flags[1] = np.nan  # NaN counts as 0
    valid = np.ones(30, bool)
    valid[0] = False
    result = detection_metrics(labels, scores, 0.7, flags=flags, valid=valid)
    assert result["threshold"] == 0.7
    assert result["confusion_matrix"]["tp"] == 2 and result["n_flagged"] == 2
    assert result["n_detected_events"] == 2


def test_metric_help_covers_every_key_with_a_unit():
    labels, scores = events_example()
    keys = set(detection_metrics(labels, scores, 0.5, point_adjust=True))
    keys |= {f"confusion_matrix / {k}" for k in ("tn", "fp", "fn", "tp")}
    sequence = sequence_metrics([0, 1, 0], [0.1, 0.9, 0.2], 0.5)
    keys |= set(sequence) | {f"counts / {k}" for k in sequence["counts"]}
    assert keys <= set(METRIC_HELP), keys - set(METRIC_HELP)
    for key, (text, unit) in METRIC_HELP.items():
        assert text and unit and "\n" not in text, key


def test_sequence_metrics_agree_with_sklearn():
    rng = np.random.default_rng(5)
    labels = (rng.random(80) < 0.3).astype(int)
    scores = rng.normal(size=80) + 2 * labels
    result = sequence_metrics(labels, scores, 1.0)
    flagged = scores > 1.0
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert result["pr_auc"] == pytest.approx(average_precision_score(labels, scores))
    assert result["counts"] == {
        "n": 80, "n_anomalies": int(labels.sum()), "n_flagged": int(flagged.sum())
    }
    assert result["confusion_matrix"]["tp"] == int(np.sum(flagged & (labels == 1)))
    assert "n_events" not in result and "vus_pr" not in result
    assert_plain_json(result)


def test_sequence_metrics_single_class():
    result = sequence_metrics([1, 1, 1], [0.2, 0.5, 0.9], 0.4)
    assert result["roc_auc"] is None
    assert result["recall"] == pytest.approx(2 / 3)
    assert any("only anomalous (1)" in note for note in result["notes"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: detection_metrics([0, 2, 1], [0.1, 0.2, 0.3], 0.5), r"only 0 .* got 2 at row 1"),
        (lambda: detection_metrics([0, np.nan], [0.1, 0.2], 0.5), r"got nan at row 1"),
        (lambda: detection_metrics([0, 1], [0.1, 0.2, 0.3], 0.5), r"shape \(2,\) like y_true"),
        (lambda: detection_metrics([0, 1], [0.1, np.inf], 0.5), r"infinite value at row 1"),
        (lambda: detection_metrics([0, 1], [0.1, 0.2], np.nan), r"finite number, got nan"),
        (lambda: detection_metrics([0, 1], [0.1, 0.2], 0.5, early_window=-1), r"early_window"),
        (lambda: detection_metrics([0, 1], [np.nan, np.nan], 0.5), r"no rows to evaluate"),
        (lambda: detection_metrics([0, 1], [0.1, 0.2], 0.5, valid=[1, 1]), r"valid must be a bool"),
        (lambda: detection_metrics([], [], 0.5), r"non-empty 1-D"),
        (lambda: sequence_metrics([0, 1], [0.1, np.nan], 0.5), r"NaN value.*sequence 1"),
        (lambda: vus_pr([0, 1], [0.1, 0.2], sliding_window=-1), r"sliding_window must be an integer >= 0"),
        (lambda: vus_pr([0, 1], [0.1, 0.2], sliding_window=2, n_thresholds=0), r"n_thresholds must be"),
        (lambda: vus_pr([0, 0], [0.1, 0.2], sliding_window=1), r"at least one anomalous"),
        (lambda: vus_pr([0, 1], [np.nan, 0.2], sliding_window=1), r"needs a score for every row"),
        (lambda: detection_metrics([0, 1], [0.1, 0.2]), r"threshold must be a finite number, got None"),
        (lambda: detection_metrics([0, 1], [0.1, 0.2], flags=[0]), r"flags must have shape \(2,\)"),
        (lambda: detection_metrics([0, 1], [0.1, 0.2], flags=[0, 2]), r"flags must be 0 .* got 2.0 at row 1"),
        (lambda: detection_metrics([0, 1], [0.1, 0.2], flags=["a", "b"]), r"non-numeric"),
        (lambda: detection_metrics([0, 1], [0.1, 0.2], np.nan, flags=[0, 1]), r"finite number, got nan"),
    ],
)
def test_bad_input_raises_data_error(call, message):
    with pytest.raises(DataError, match=message):
        call()
