"""Smoke and unit tests of benchmarks/detection_study.py (the real-data detection study)."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import detection_study  # noqa: E402
from lstmae.scoring import DEFAULT_ALARM, alarm_rules  # noqa: E402
from detection.baselines import IsolationForestBaseline, PCABaseline, rolling_zscore  # noqa: E402
from detection.datasets import BeatTask, load_ecg5000, load_keogh, load_nab, load_ucr  # noqa: E402
from machine import cpu_name  # noqa: E402


# ------------------------------------------------------------------ baselines
def test_rolling_zscore_hand_example():
    # Window 3 over [1, 1, 1, 2]: row 3 sees mean 1 and std 0 (floored at 0.1), so z = 10.
    series = np.array([[1.0], [1.0], [1.0], [2.0]])
    scores = rolling_zscore(series, window=3)
    assert np.isnan(scores[:3]).all()
    assert scores[3] == pytest.approx(100.0)


def test_rolling_zscore_averages_squared_z_over_features():
    # Feature 0 as above (z = 10); feature 1 has rows 0-2 = 0, 2, 0, then 2.
    series = np.array([[1.0, 0.0], [1.0, 2.0], [1.0, 0.0], [2.0, 2.0]])
    past = np.array([0.0, 2.0, 0.0])
    z1 = (2.0 - past.mean()) / past.std()
    assert rolling_zscore(series, window=3)[3] == pytest.approx((100.0 + z1**2) / 2)


def test_pca_baseline_scores_off_subspace_windows_higher():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=(1, 10, 1))
    normal = rng.normal(size=(200, 1, 1)) * direction  # every window on one line
    outlier = normal[:1] + rng.normal(size=(1, 10, 1))
    model = PCABaseline().fit(normal)
    assert model.score(normal).max() < 1e-10
    assert model.score(outlier)[0] > 0.1


def test_isolation_forest_baseline_scores_outlier_highest():
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(300, 5, 2))
    test = np.concatenate([normal[:20], normal[:1] + 8.0])
    scores = IsolationForestBaseline(random_state=0).fit(normal).score(test)
    assert np.argmax(scores) == 20


def test_top1_hit_uses_only_common_rows_and_the_tolerance():
    scores = np.array([9.0, 1.0, 2.0, 1.0] + [0.0] * 300)
    common = np.ones(len(scores), bool)
    common[0] = False  # the highest score is not on a common row
    assert detection_study.top1_hit(scores, common, (2, 2)) == {
        "top1_row": 2, "top1_hit": True, "top1_hit_tolerance": True}
    far = detection_study.top1_hit(scores, common, (200, 210))
    assert far["top1_hit"] is False and far["top1_hit_tolerance"] is False
    near = detection_study.top1_hit(scores, common, (90, 95))
    assert near["top1_hit"] is False and near["top1_hit_tolerance"] is True


def test_run_beats_counts_every_test_beat_once_per_detector():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 30)
    beats = np.sin(t + rng.normal(0, 0.1, size=(140, 1))).astype(np.float32)
    anomalous = beats[:20] + 3.0 * np.exp(-((t - 3.0) ** 2))  # a tall bump no normal beat has
    task = BeatTask(train=beats[:120], test=np.concatenate([beats[120:], anomalous]),
                    labels=np.repeat(np.int8([0, 1]), 20))
    result = detection_study.run_beats(task, {"lstmae": {"encoder": [8, 4], "epochs": 2}}, seed=0)
    assert set(result["detectors"]) == {"lstmae", "isolation_forest", "pca"}
    for metrics in result["detectors"].values():
        assert (metrics["normals"], metrics["anomalies"]) == (20, 20)
        assert 0 <= metrics["normals_correct"] <= 20 and 0 <= metrics["anomalies_correct"] <= 20
    assert result["detectors"]["pca"]["roc_auc"] == 1.0  # the bump lies far off the normals' subspace
    variants = result["lstmae_variants"]
    assert set(variants) == set(detection_study.VARIANTS["error_models"])
    assert set(variants["mse"]["balanced_accuracy"]) == set(detection_study.VARIANTS["thresholds"])
    default = detection_study.SETTINGS["lstmae_defaults"]["error_model"]
    assert variants[default]["roc_auc"] == pytest.approx(result["detectors"]["lstmae"]["roc_auc"])


def _series_task(n_train=600, n_test=500, features=1, seed=0):
    """A sine series with one tall bump in the test part (rows 300-319)."""
    from detection.datasets import SeriesTask

    rng = np.random.default_rng(seed)
    t = np.arange(n_train + n_test)
    values = np.sin(2 * np.pi * t / 25)[:, None] + rng.normal(0, 0.05, (len(t), features))
    labels = np.zeros(n_test, np.int8)
    labels[300:320] = 1
    values[n_train + 300 : n_train + 320] += 3.0
    return SeriesTask("synthetic", "bump", values[:n_train].astype(np.float32), values[n_train:].astype(np.float32),
                      labels, anomaly=(300, 319))


def _tiny_model_and_held_out_parts(task):
    """A one-epoch (4,) model fitted on task's training part (windows of 10, how="mean") and the rows of its
    held-out parts, as the study cuts them."""
    from lstmae import LSTMAutoencoder, temporalize
    from lstmae.series import fit_series

    model = fit_series(LSTMAutoencoder(encoder=(4,), epochs=1, random_state=0, progress=False), task.train,
                       window=10, how="mean")
    held, _, _ = detection_study.lstmae_parts(model, task.train, temporalize(task.train, 10)[0], 10, 1)
    return model, held


def _tiny_series_settings(peers=()):
    return {"window": 10, "how": "max", "max_train_steps": 4000, "peers": list(peers),
            "lstmae": {"encoder": [4], "epochs": 1}, "baseline_threshold": "sigma:5"}


def test_run_series_scores_every_detector_with_flags_and_event_metrics():
    result = detection_study.run_series(_series_task(), _tiny_series_settings(), seed=0)
    assert set(result["detectors"]) == {"lstmae", "isolation_forest", "pca", "rolling_zscore"}
    assert result["n_anomalous_rows"] == 20 and result["anomaly_fraction"] == pytest.approx(20 / result["n_scored_rows"])
    for metrics in result["detectors"].values():
        for key in ("vus_pr", "roc_auc", "pr_auc", "alarm_rate", "event_recall", "event_f1"):
            assert 0.0 <= metrics[key] <= 1.0
    # a bump of 60 noise standard deviations: the window baselines rank it first and find it
    assert result["detectors"]["pca"]["event_recall"] == 1.0
    assert result["detectors"]["pca"]["top1_hit"]
    lstmae = result["detectors"]["lstmae"]
    assert lstmae["alarm_rate"] <= lstmae["raw_flag_rate"]  # alarms only drop flags


def test_baselines_take_the_study_baseline_rule_and_lstmae_keeps_its_own():
    task = _series_task()
    strict = detection_study.run_series(task, _tiny_series_settings(), seed=0)
    loose = detection_study.run_series(task, {**_tiny_series_settings(), "baseline_threshold": "sigma:0.1"}, seed=0)
    for name in ("isolation_forest", "pca", "rolling_zscore"):
        assert strict["detectors"][name]["alarm_rate"] < loose["detectors"][name]["alarm_rate"]
        assert strict["detectors"][name]["vus_pr"] == loose["detectors"][name]["vus_pr"]  # the scores stay
    for run in (strict, loose):
        run["detectors"]["lstmae"].pop("seconds")
    assert strict["detectors"]["lstmae"] == loose["detectors"]["lstmae"]


def test_lstmae_rules_are_fitted_on_the_runs_fit_series_held_out_whatever_validation_blocks():
    from lstmae import LSTMAutoencoder, temporalize
    from lstmae.series import fit_series

    task = _series_task()
    settings = {**_tiny_series_settings(), "how": "mean", "max_train_steps": None,  # stride 1, as fit_series scores
                "lstmae": {"encoder": [4], "epochs": 1, "validation_blocks": 3}}
    model = fit_series(LSTMAutoencoder(**settings["lstmae"], random_state=0, progress=False), task.train, window=10,
                       how="mean")
    windows, _ = temporalize(task.train, 10)
    held, trained, held_windows = detection_study.lstmae_parts(model, task.train, windows, 10, 1)
    assert len(held) == 3 and len(held_windows) == round(len(windows) * 0.1)
    # the study's held-out rows are the model's calibration rows; its training rows lie outside them
    np.testing.assert_allclose(detection_study.joined_rows(model, held, 10, ("mean",))["mean"],
                               model.calibration_scores_["mean"])
    assert sum(map(len, held)) + sum(map(len, trained)) <= len(task.train) and len(trained) == 3
    # so the configured rule at the configured mapping raises exactly lstmae's own alarms
    result = detection_study.run_series(task, settings, seed=0)
    rule = detection_study.ROW_THRESHOLD_RULE
    configured = result["lstmae_thresholds"][f"{rule}/mean/{model.error_model_.spec}"]
    assert configured["alarm_rate"] == pytest.approx(result["detectors"]["lstmae"]["alarm_rate"])


def test_train_rules_pool_the_training_rows_for_every_mapping():
    task = _series_task()
    model, held = _tiny_model_and_held_out_parts(task)
    test_rows = detection_study.rows_by_how(model, task.test, 10)
    held_rows = detection_study.joined_rows(model, held, 10)
    # training rows far above everything, ten times as many as the held-out ones: pooled, the rule flags nothing
    train_rows = {how: 1e6 + np.arange(10 * len(rows), dtype=float) for how, rows in held_rows.items()}
    common = np.ones(len(task.test), bool)
    results = detection_study.threshold_variants(model, task, test_rows, held_rows, common, train_rows)
    for how in detection_study.VARIANTS["hows"]:
        if how != "point":  # (a model fitted with how="mean" has no point-kind calibration)
            assert results[f"mad:8/{how}"]["alarm_rate"] > 0, how  # the bump, at least
        assert results[f"mad:8+train/{how}"]["alarm_rate"] == 0, how


def test_a_floor_at_a_quantile_raises_the_alarms_of_the_library_s_threshold_floor():
    task = _series_task()
    rng = np.random.default_rng(1)
    # noisy but for the held-out tail: the rule fitted there alone flags most noisy test rows
    task.train[:-80] += rng.normal(0, 3.0, (len(task.train) - 80, 1)).astype(np.float32)
    task.test[:] += rng.normal(0, 3.0, task.test.shape).astype(np.float32)
    floor = detection_study.VARIANTS["floor_quantiles"][-1]
    settings = {**_tiny_series_settings(), "how": "mean", "max_train_steps": None}
    result = detection_study.run_series(task, settings, seed=0)
    floored = detection_study.run_series(task, {**settings, "lstmae": {**settings["lstmae"], "threshold_floor": floor}},
                                         seed=0)
    spec = f"{detection_study.ROW_THRESHOLD_RULE}+floor:{floor}/mean/normalized-max"
    assert result["lstmae_thresholds"][spec]["alarm_rate"] == floored["detectors"]["lstmae"]["alarm_rate"]
    assert result["lstmae_thresholds"][spec]["event_f1"] == floored["detectors"]["lstmae"]["event_f1"]
    assert floored["detectors"]["lstmae"]["alarm_rate"] < result["detectors"]["lstmae"]["alarm_rate"]  # it binds


def test_the_cool_down_variants_are_the_alarm_rules_with_that_cool_down():
    from lstmae.scoring import alarms_from_flags

    task = _series_task()
    model, held = _tiny_model_and_held_out_parts(task)
    held_rows = detection_study.joined_rows(model, held, 10)
    # quiet test rows but for a burst at 300 (the label) and one 40 rows after it: past the merge gap (30), inside
    # the default cool-down (50 rows or more), so only a shorter cool-down pages the second burst; each burst lasts
    # twice the default minimum alarm length, so that minimum does not decide it
    scores = np.full(len(task.test), float(np.median(held_rows["mean"])))
    burst = 2 * DEFAULT_ALARM["min_length"]
    scores[300:300 + burst] = scores[340 + burst:340 + 2 * burst] = 1e6
    common = np.ones(len(task.test), bool)
    results = detection_study.threshold_variants(model, task, {"mean": scores}, held_rows, common, held_rows)
    flags = (scores > 1e5).astype(np.int8)
    for cooldown in (0, DEFAULT_ALARM["cooldown"], 100):
        suffix = "" if cooldown == DEFAULT_ALARM["cooldown"] else f"+cooldown={cooldown}"
        key = f"{detection_study.ROW_THRESHOLD_RULE}{suffix}/mean"
        expected = alarms_from_flags(flags, causal=False, **alarm_rules({**DEFAULT_ALARM, "cooldown": cooldown}))
        assert results[key]["alarm_rate"] == pytest.approx(expected.mean()), key
    rule = detection_study.ROW_THRESHOLD_RULE
    assert results[f"{rule}+cooldown=0/mean"]["alarm_rate"] > results[f"{rule}/mean"]["alarm_rate"]  # the second burst


def test_floors_fail_without_training_rows_and_the_other_rules_still_run():
    # validation blocks on a short series (NAB's rogue_agent_key_hold: 282 rows, 5 blocks) leave no training
    # part as long as a window: the floors cannot be fitted there, and the run must go on
    task = _series_task()
    model, held = _tiny_model_and_held_out_parts(task)
    held_rows = detection_study.joined_rows(model, held, 10)
    no_training_rows = {how: np.empty(0) for how in held_rows}
    results = detection_study.threshold_variants(model, task, detection_study.rows_by_how(model, task.test, 10),
                                                 held_rows, np.ones(len(task.test), bool), no_training_rows)
    floor = f"{detection_study.VARIANTS['floored_thresholds'][0]}+floor/mean"
    assert results[floor]["alarm_rate"] is None  # failed: no event found, as any rule that cannot be fitted
    assert results["mad:8/mean"]["alarm_rate"] > 0 and results["mad:8+train/mean"]["alarm_rate"] is not None


def test_seed_ensemble_averages_the_seeds_row_scores_and_ranks_after_lstmae():
    task = _series_task()
    settings = {**_tiny_series_settings(), "how": "mean", "ensemble_seeds": [1]}
    result = detection_study.run_series(task, settings, seed=0)
    assert detection_study.detector_names(result["detectors"]) == [
        "lstmae", "lstmae_seed_1", "lstmae_ensemble", "lstmae_selected", "isolation_forest", "pca", "rolling_zscore"]
    assert result["detectors"]["lstmae_ensemble"]["n_members"] == 2
    # the ensemble's scores are the mean of the two networks' row scores
    from lstmae import LSTMAutoencoder
    from lstmae.series import fit_series

    models, members = [], []
    for seed in (0, 1):
        models.append(LSTMAutoencoder(**settings["lstmae"], random_state=seed, progress=False))
        fit_series(models[-1], task.train, window=10, stride=1, how="mean")
        members.append(detection_study.rows_by_how(models[-1], task.test, 10, ("mean",))["mean"])
    mean = np.mean(members, axis=0)
    first = detection_study.lstmae_rows(models[0], task, 0.0, "mean")
    ensemble = detection_study.seed_ensemble(models[0], first, task, [task.train[500:]], settings, 10, 1, "mean")
    assert np.allclose(ensemble["lstmae_ensemble"].scores, mean, equal_nan=True)
    assert not np.allclose(members[0], members[1], equal_nan=True)  # two seeds, two networks
    # the selected network is the one whose loss on the whole held-out part is lower (as n_init chooses), with its
    # own scores and alarms
    chosen = int(np.argmin([model.history_["held_out_loss"] for model in models]))
    selected = ensemble["lstmae_selected"]
    assert selected.info["seed"] == chosen
    assert np.allclose(selected.scores, (first if chosen == 0 else ensemble["lstmae_seed_1"]).scores, equal_nan=True)
    assert detection_study.seed_ensemble(models[0], first, task, [task.train[500:]], _tiny_series_settings(), 10, 1,
                                         "mean") == {}  # no extra seeds: no extra detectors


def test_family_means_give_the_seeds_spread_and_the_ensemble_against_their_mean():
    def series(vus, f1):
        detectors = {name: {"vus_pr": v, "roc_auc": 0.5, "pr_auc": 0.5, "alarm_rate": 0.1, "event_precision": 0.5,
                            "event_recall": 0.5, "event_f1": f, "seconds": 1.0, "epochs_run": 10}
                     for name, v, f in zip(("lstmae", "lstmae_seed_1", "lstmae_ensemble", "lstmae_selected"), vus, f1)}
        return {"n_anomalous_rows": 5, "anomaly_fraction": 0.1, "detectors": detectors, "lstmae_variants": {},
                "lstmae_thresholds": {}}

    means = detection_study.family_means([series((0.2, 0.6, 0.5, 0.6), (0.1, 0.3, 0.4, 0.3)),
                                          series((0.5, 0.4, 0.5, 0.5), (0.5, 0.5, 0.5, 0.5))])
    spread = means["seeds"]
    assert spread["n_seeds"] == 2
    assert spread["series_vus_pr_range_mean"] == pytest.approx(0.25)  # ranges 0.4 and 0.1
    assert spread["series_vus_pr_range_max"] == pytest.approx(0.4)
    assert spread["vus_pr_range"] == pytest.approx(0.15)  # family means 0.35 and 0.5
    assert spread["ensemble_minus_seed_mean_vus_pr"] == pytest.approx(0.5 - 0.425)
    assert spread["ensemble_minus_seed_mean_event_f1"] == pytest.approx(0.45 - 0.35)
    assert spread["selected_minus_seed_mean_vus_pr"] == pytest.approx(0.55 - 0.425)
    assert spread["selected_minus_seed_mean_event_f1"] == pytest.approx(0.4 - 0.35)
    assert means["lstmae"]["epochs_run"] == 10
    assert "seeds" not in detection_study.family_means([series((0.2,), (0.1,))])  # one seed: no spread


@pytest.mark.slow  # stumpy compiles its numba kernels on first use (minutes on a loaded machine)
def test_peers_score_univariate_series_and_discord_skips_multivariate():
    pytest.importorskip("pyod")
    pytest.importorskip("stumpy")
    settings = _tiny_series_settings(peers=("pyod_iforest", "discord"))
    result = detection_study.run_series(_series_task(), settings, seed=0)
    assert {"pyod_iforest", "discord"} <= set(result["detectors"])
    assert result["detectors"]["discord"]["top1_hit"]  # the bump is the series' one discord
    assert result["detectors"]["discord"]["event_recall"] == 1.0
    multi = detection_study.run_series(_series_task(features=2), settings, seed=0)
    assert "discord" not in multi["detectors"] and "pyod_iforest" in multi["detectors"]


def test_family_means_take_the_median_alarm_rate_and_skip_series_without_events():
    def series(rate, fraction, f1):
        detector = {"vus_pr": 0.5, "roc_auc": 0.5, "pr_auc": 0.5, "alarm_rate": rate, "event_precision": None,
                    "event_recall": 0.0, "event_f1": f1, "seconds": 1.0}
        return {"n_anomalous_rows": int(fraction > 0), "anomaly_fraction": fraction,
                "detectors": {"lstmae": detector}, "lstmae_variants": {}, "lstmae_thresholds": {}}

    means = detection_study.family_means([series(0.02, 0.01, 1.0), series(0.10, 0.01, 0.0), series(0.5, 0.0, None)])
    assert means["lstmae"]["alarm_rate"] == pytest.approx(0.10)  # median over all three series
    assert means["lstmae"]["alarm_ratio"] == pytest.approx(6.0)  # median of 2x and 10x, series with events only
    assert means["lstmae"]["event_f1"] == pytest.approx(0.5)
    assert means["lstmae"]["event_precision"] is None and means["lstmae"]["n_series"] == 2


# ------------------------------------------------------------------- settings
def test_set_overrides_nested_settings_with_json_values():
    args = detection_study.parse_args(["--set", "series.window=100", "--set", "series.lstmae.encoder=[8,4]",
                                       "--set", "nab.how=end"])
    settings = detection_study.build_settings(args)
    assert settings["series"]["window"] == 100
    assert settings["series"]["lstmae"]["encoder"] == [8, 4]
    assert settings["series"]["lstmae"] == {"encoder": [8, 4]}  # everything else stays lstmae's default
    assert detection_study.family_settings(settings, "nab")["how"] == "end"
    assert detection_study.family_settings(settings, "msl")["how"] == detection_study.SETTINGS["series"]["how"]


def test_set_items_are_json_where_they_parse_and_text_otherwise():
    from overrides import parse_assignments

    assert parse_assignments(["a=10", "b=[8,4]", "c=null", "d=period", "e=x=y", "f="]) == [
        ("a", 10), ("b", [8, 4]), ("c", None), ("d", "period"), ("e", "x=y"), ("f", "")]


def test_period_window_is_the_training_part_s_period_within_bounds():
    low, fallback, high = detection_study.PERIOD_WINDOWS
    steps = np.arange(3000)
    noise = np.random.default_rng(0).normal(0, 0.05, 3000)
    assert detection_study.series_window(np.sin(2 * np.pi * steps / 40) + noise, "period") == 40
    # the first feature decides; a long cycle is cut to the longest window, a short one raised to the shortest
    both = np.column_stack([np.sin(2 * np.pi * steps / 288) + noise, np.sin(2 * np.pi * steps / 40)])
    assert detection_study.series_window(both, "period") == high
    assert detection_study.series_window(np.sin(2 * np.pi * steps / 8) + noise, "period") == low
    assert detection_study.series_window(np.ones(3000), "period") == fallback  # no period: the fallback
    assert detection_study.series_window(both, 30) == 30
    args = detection_study.parse_args(["--set", "series.window=period"])
    assert detection_study.build_settings(args)["series"]["window"] == "period"


def test_unknown_dataset_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        detection_study.parse_args(["--datasets", "ecg5000,yahoo"])
    assert "unknown data set(s) yahoo" in capsys.readouterr().err


def test_tables_only_without_results_exits_2_naming_the_file(tmp_path, capsys):
    assert detection_study.main(["--tables-only", "--out", str(tmp_path)]) == 2
    assert "detection_results.json not found; run the study first" in capsys.readouterr().err


def test_partial_report_without_a_stopped_run_exits_2(shared_data, tmp_path, capsys):
    code = detection_study.main(["--partial-report", "--datasets", "ucr", "--out", str(tmp_path),
                                 "--data-dir", str(shared_data)])
    assert code == 2 and "no finished jobs with these settings" in capsys.readouterr().err
    assert not (tmp_path / "detection_results.json").exists()


def test_missing_data_dir_exits_2_with_a_clear_message(tmp_path, capsys):
    assert detection_study.main(["--data-dir", str(tmp_path / "absent"), "--out", str(tmp_path)]) == 2
    assert "data folder" in capsys.readouterr().err
    assert not (tmp_path / "detection_results.json").exists()


# ------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_loaders_match_the_documented_splits_and_labels(shared_data):
    ucr = load_ucr(shared_data)
    assert len(ucr) == 4
    for task in ucr:
        path = next((shared_data / "ucr_anomaly").glob(f"{task.name.split('_')[0]}_*.txt"))
        train_end, start, end = (int(part) for part in path.stem.split("_")[-3:])
        assert len(task.train) == train_end
        assert np.flatnonzero(task.labels).tolist() == list(range(start - train_end, end - train_end + 1))

    info = json.loads((shared_data / "keogh_ecg" / "labels_and_splits.json").read_text())["files"]
    for task in load_keogh(shared_data):
        # Every labelled point of these files lies in the test slice.
        assert task.labels.sum() == info[f"raw/{task.name}.txt"]["n_anomalous_points"]
        assert task.train.shape[1] == task.test.shape[1] == 2

    nab = {task.name: task for task in load_nab(shared_data)}
    assert len(nab) == 18
    assert len(nab["nyc_taxi"].train) == int(0.15 * 10320)
    assert nab["art_flatline"].labels.sum() == 0

    ecg = load_ecg5000(shared_data, seed=0)
    assert len(ecg.train) + (ecg.labels == 0).sum() == 2919  # all normals, none twice
    assert (ecg.labels == 1).sum() == 5000 - 2919


@pytest.mark.realdata
def test_quick_run_writes_results_and_tables(shared_data, tmp_path):
    out = tmp_path / "results"
    argv = ["--quick", "--datasets", "ucr", "--jobs", "1", "--out", str(out), "--data-dir", str(shared_data),
            "--set", "series.lstmae.epochs=1", "--set", "series.lstmae.encoder=[8,4]", "--set", "series.window=20",
            "--set", "series.max_train_steps=4000", "--set", "series.peers=[]"]
    code = detection_study.main(argv + ["--set", "max_series_per_family=1"])
    assert code == 0
    assert not (out / "detection_results.partial.jsonl").exists()  # a finished run leaves no partial results
    report = json.loads((out / "detection_results.json").read_text())
    ucr = report["datasets"]["ucr"]
    assert len(ucr["series"]) == 1
    for name in ("lstmae", "isolation_forest", "pca", "rolling_zscore"):
        assert 0.0 <= ucr["means"][name]["roc_auc"] <= 1.0
        assert ucr["means"][name]["n_top1"] == 1
    assert report["settings"]["series"]["lstmae"]["encoder"] == [8, 4]
    table = (out / "detection_results.md").read_text()
    assert "| UCR anomaly 135-138 (1) | lstmae |" in table and "**" in table
    # the same seed trains other networks on another CPU, so a run names the one it ran on
    assert report["machine"]["cpu"] == cpu_name() and f"cores of {cpu_name()}, 1 process(es)" in table
    variants = ucr["series"][0]["lstmae_variants"]
    assert set(variants) == {f"{model}/{how}" for model in detection_study.VARIANTS["error_models"]
                             for how in detection_study.VARIANTS["hows"]}
    # the configured variant (the default error model and how) ranks as the lstmae column itself
    defaults = {**report["settings"]["lstmae_defaults"], "how": report["settings"]["series"]["how"]}
    default = f"{defaults['error_model']}/{defaults['how']}"
    assert variants[default]["vus_pr"] == pytest.approx(ucr["series"][0]["detectors"]["lstmae"]["vus_pr"], abs=1e-6)
    assert "error model x window-to-row mapping" in table and "threshold rules" in table
    assert "### Choosing lstmae's defaults" in table and "| 1 | `" in table
    rule = detection_study.ROW_THRESHOLD_RULE  # each rule at the configured mapping and error model
    configured = ucr["means"][f"lstmae threshold {rule}/{defaults['how']}/{defaults['error_model']}"]
    assert f"| `{rule}` | {detection_study.alarm_cell(configured)} |" in table
    met = int(configured["alarm_ratio"] is not None and configured["alarm_ratio"] <= 2
              and configured["event_recall"] >= 0.6)  # the goals, counted by hand for the one family
    assert f"{detection_study.alarm_cell(configured)} | {met}/1 | {configured['event_f1']:.2f} |" in table
    assert configured["alarm_rate"] == pytest.approx(ucr["means"]["lstmae"]["alarm_rate"])  # lstmae's own alarms
    (out / "detection_results.md").unlink()
    assert detection_study.main(["--tables-only", "--out", str(out), "--data-dir", str(tmp_path / "absent")]) == 0
    assert (out / "detection_results.md").read_text() == table
    edited = json.loads((out / "detection_results.json").read_text())  # a note put in after the run is shown
    (out / "detection_results.json").write_text(json.dumps({**edited, "note": "variants left out"}))
    assert detection_study.main(["--tables-only", "--out", str(out), "--data-dir", str(tmp_path / "absent")]) == 0
    assert "**Note:** variants left out" in (out / "detection_results.md").read_text()
    thresholds = ucr["series"][0]["lstmae_thresholds"]
    alarm_variants = [f"{detection_study.ROW_THRESHOLD_RULE}+" + ",".join(f"{k}={v}" for k, v in a.items())
                      for a in detection_study.ALARM_VARIANTS if any(DEFAULT_ALARM[k] != v for k, v in a.items())]
    assert len(alarm_variants) == len(detection_study.ALARM_VARIANTS) - 1  # the default's is the rule's own row
    for cooldown in (0, 100):  # the run ranked the cool-downs, at every mapping and error model
        assert sum(key.startswith(f"{detection_study.ROW_THRESHOLD_RULE}+cooldown={cooldown}/")
                   for key in thresholds) == len(detection_study.VARIANTS["hows"]) * len(
                       detection_study.VARIANTS["error_models"])
    # the alarm variants are ranked with the rules, but stay out of the rule x mapping grid
    grid = table.split("threshold rules x window-to-row mapping")[1].split("### Choosing")[0]
    assert set(thresholds) == {f"{rule}/{how}/{model}"
                               for rule in detection_study.VARIANTS["series_thresholds"] + alarm_variants
                               + [f"{rule}+floor{'' if q == 1 else f':{q}'}"
                                  for rule in detection_study.VARIANTS["floored_thresholds"]
                                  for q in detection_study.VARIANTS["floor_quantiles"]]
                               + [f"{rule}+train" for rule in detection_study.VARIANTS["pooled_thresholds"]]
                               for how in detection_study.VARIANTS["hows"]
                               for model in detection_study.VARIANTS["error_models"]}
    for name in alarm_variants:
        row = thresholds[f"{name}/mean/mae"]
        assert 0.0 <= row["alarm_rate"] <= 1.0 and row["alarm_ratio"] >= 0.0
    for how in detection_study.VARIANTS["hows"]:  # a floor only raises the threshold, the max more than a quantile
        rates = [thresholds[f"mad:8{floor}/{how}/mae"]["alarm_rate"] for floor in ("+floor", "+floor:0.99", "")]
        assert rates == sorted(rates)
    assert "`mad:8+floor`" in grid and "`mad:8+train`" in grid
    assert "min_length" not in grid
    ranked = {row["variant"] for row in detection_study.rank_defaults(report["datasets"], ["ucr"])}
    assert {f"{name}/mean/mae" for name in alarm_variants} <= ranked
    # a higher sigma on the same held-out scores never raises more alarms
    for how in detection_study.VARIANTS["hows"]:
        assert thresholds[f"sigma:3/{how}/mae"]["alarm_rate"] >= thresholds[f"sigma:5/{how}/mae"]["alarm_rate"]
    # the configured rule, mapping and error model raise exactly the lstmae column's alarms
    configured = thresholds[f"{defaults['threshold']['rows']}/{defaults['how']}/{defaults['error_model']}"]
    assert configured["alarm_rate"] == pytest.approx(ucr["series"][0]["detectors"]["lstmae"]["alarm_rate"])


def test_resume_reuses_only_jobs_finished_with_the_same_settings(tmp_path):
    settings = {"seed": 0, "series": {"window": 50}, "jobs": 2, "threads": 1}
    other = {**settings, "seed": 1}
    path = tmp_path / "detection_results.partial.jsonl"
    lines = [{"key": "nab/a", "settings": detection_study.settings_key(settings), "result": {"name": "a"}},
             {"key": "nab/b", "settings": detection_study.settings_key(other), "result": {"name": "b"}}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    # jobs and threads do not change results, so a resumed run may use other counts
    assert detection_study.read_partial(path, {**settings, "jobs": 1}) == {"nab/a": {"name": "a"}}
    assert detection_study.read_partial(tmp_path / "absent.jsonl", settings) == {}


def test_rank_defaults_puts_goals_met_first_then_event_f1():
    def family(ratio_a, recall_a, f1_a, ratio_b, recall_b, f1_b):
        alarms = lambda ratio, recall, f1: {"alarm_rate": 0.01, "alarm_ratio": ratio, "event_precision": f1,
                                            "event_recall": recall, "event_f1": f1}
        return {"means": {"lstmae threshold sigma:3/max/mse": alarms(ratio_a, recall_a, f1_a),
                          "lstmae threshold sigma:5/point/mse": alarms(ratio_b, recall_b, f1_b),
                          "lstmae mse/max": {"vus_pr": 0.3}, "lstmae mse/point": {"vus_pr": 0.4}}}
    # sigma:3/max has the higher F1 but flags 5x the labelled rows on nab: it meets the goals in one family
    datasets = {"msl": family(1.5, 0.7, 0.9, 1.5, 0.7, 0.5), "nab": family(5.0, 0.9, 0.9, 1.8, 0.6, 0.4)}
    ranked = detection_study.rank_defaults(datasets, ["msl", "nab"])
    assert [(row["variant"], row["goals_met"], row["rank"]) for row in ranked] == [
        ("sigma:5/point/mse", 2, 1), ("sigma:3/max/mse", 1, 2)]
    assert ranked[0]["event_f1"] == pytest.approx(0.45) and ranked[0]["vus_pr"] == pytest.approx(0.4)
    assert ranked[0]["families"]["nab"]["alarm_ratio"] == 1.8


def test_a_threshold_rule_that_fails_on_a_series_finds_no_event_there():
    def series(rule_row):
        return {"n_anomalous_rows": 5, "anomaly_fraction": 0.05, "detectors": {}, "lstmae_variants": {},
                "lstmae_thresholds": {"dspot:1e-3/point/mse": rule_row}}

    fitted = {"alarm_rate": 0.05, "alarm_ratio": 1.0, "event_precision": 1.0, "event_recall": 1.0, "event_f1": 1.0}
    failed = dict.fromkeys(fitted)  # what threshold_variants records when the rule raises DataError
    means = detection_study.family_means([series(fitted), series(failed)])["lstmae threshold dspot:1e-3/point/mse"]
    assert means["n_failed"] == 1 and means["event_recall"] == 0.5 and means["event_f1"] == 0.5
    assert means["event_precision"] == 1.0 and means["alarm_ratio"] == 1.0


@pytest.mark.realdata
def test_partial_report_writes_the_finished_jobs_and_names_the_others(shared_data, tmp_path, monkeypatch):
    argv = ["--quick", "--datasets", "ucr", "--out", str(tmp_path), "--data-dir", str(shared_data),
            "--set", "max_series_per_family=2"]
    settings = detection_study.build_settings(detection_study.parse_args(argv))
    first, second = detection_study.make_jobs(shared_data, ["ucr"], settings)
    finished = {"family": "ucr", "name": first[1].name}  # a stand-in result: build_report is mocked below
    line = {"key": detection_study.job_key(first), "settings": detection_study.settings_key(settings),
            "result": finished}
    (tmp_path / "detection_results.partial.jsonl").write_text(json.dumps(line) + "\n")
    reported = []
    monkeypatch.setattr(detection_study, "build_report", lambda results, *args: reported.append(results) or {
        "runtime_s": 0.0, "datasets": {}, "command": "", "settings": settings,
        "machine": {"cpus": 2, "load_average": 0.0}})
    assert detection_study.main(argv + ["--partial-report"]) == 0
    assert reported == [[finished]]  # nothing was run
    report = json.loads((tmp_path / "detection_results.json").read_text())
    assert report["unfinished_jobs"] == [detection_study.job_key(second)] and report["resumed_jobs"] == 1
    assert "1 job(s) did not finish" in (tmp_path / "detection_results.md").read_text()
    assert (tmp_path / "detection_results.partial.jsonl").exists()  # kept for --resume


def test_set_threads_caps_torch_blas_and_numba_in_a_worker():
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    numba = pytest.importorskip("numba")
    before = (torch.get_num_threads(), numba.get_num_threads(), threadpool_info())
    try:
        detection_study.set_threads(1)
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
        threadpool_limits({pool["prefix"]: pool["num_threads"] for pool in before[2]})


def test_family_means_give_the_alarm_rate_on_series_without_anomalies():
    def series(n_anomalous, alarm_rate):
        row = {"alarm_rate": alarm_rate, "event_precision": None, "event_recall": None, "event_f1": None,
               "alarm_ratio": alarm_rate / 0.1 if n_anomalous else None}
        return {"n_anomalous_rows": n_anomalous, "anomaly_fraction": 0.1 if n_anomalous else 0.0,
                "lstmae_variants": {}, "lstmae_thresholds": {"mad:8/mean/mae": row}, "detectors": {}}

    means = detection_study.family_means([series(5, 0.2), series(0, 0.3), series(0, 0.1)])
    rule = means["lstmae threshold mad:8/mean/mae"]
    assert rule["clean_alarm_rate"] == pytest.approx(0.2) and rule["alarm_ratio"] == pytest.approx(2.0)
    assert detection_study.alarm_cell(rule).endswith("; clean 20.0%")
    only_anomalous = detection_study.family_means([series(5, 0.2)])["lstmae threshold mad:8/mean/mae"]
    assert only_anomalous["clean_alarm_rate"] is None and "clean" not in detection_study.alarm_cell(only_anomalous)


def test_detector_summary_counts_goals_means_and_clean_alarms_per_detector():
    def series(n_anomalous, alarm_rate, recall, f1, vus):
        row = {"vus_pr": vus if n_anomalous else None, "roc_auc": 0.5, "pr_auc": 0.5, "alarm_rate": alarm_rate,
               "event_precision": 0.5, "event_recall": recall, "event_f1": f1, "seconds": 1.0}
        return {"n_anomalous_rows": n_anomalous, "anomaly_fraction": 0.1 if n_anomalous else 0.0,
                "lstmae_variants": {}, "lstmae_thresholds": {}, "detectors": {"lstmae": row, "pca": dict(row)}}

    datasets = {"msl": {"means": detection_study.family_means([series(5, 0.15, 0.7, 0.4, 0.3)])},  # 1.5x: met
                "nab": {"means": detection_study.family_means([series(5, 0.3, 0.9, 0.6, 0.5),  # 3x: missed
                                                               series(0, 0.2, None, None, None),
                                                               series(0, 0.4, None, None, None)])}}
    lines = detection_study.detector_summary(datasets, ["msl", "nab"])
    assert lines[2] == "| detector | goals met | mean event F1 | mean VUS-PR | storms | clean: NAB |"
    # storms: alarms on more than a third of the rows (NAB's second clean series, 40%), of all 4 series
    assert "| lstmae | 1/2 | 0.50 | 0.400 | 1/4 | 30.0% |" in lines
    assert "| PCA | 1/2 | 0.50 | 0.400 | 1/4 | 30.0% |" in lines


def test_compare_sets_runs_side_by_side_with_goals_and_leads(tmp_path, capsys):
    def series(n_anomalous, lstmae, pca):
        def row(alarm_rate, recall, f1, vus):
            return {"vus_pr": vus if n_anomalous else None, "roc_auc": 0.5, "pr_auc": 0.5, "alarm_rate": alarm_rate,
                    "event_precision": 0.5, "event_recall": recall if n_anomalous else None,
                    "event_f1": f1 if n_anomalous else None, "seconds": 1.0}
        return {"n_anomalous_rows": n_anomalous, "anomaly_fraction": 0.1 if n_anomalous else 0.0,
                "lstmae_variants": {}, "lstmae_thresholds": {},
                "detectors": {"lstmae": row(*lstmae), "pca": row(*pca)}}

    runs = {"tail": [series(5, (0.15, 0.7, 0.5, 0.4), (0.1, 0.5, 0.3, 0.3)), series(0, (0.4,) * 4, (0.0,) * 4)],
            "blocks": [series(5, (0.3, 0.5, 0.2, 0.2), (0.1, 0.5, 0.3, 0.3)), series(0, (0.0,) * 4, (0.0,) * 4)]}
    for seed, (name, nab) in enumerate(runs.items()):
        (tmp_path / name).mkdir()
        report = {"settings": {"seed": seed}, "datasets": {"nab": {"series": nab, "means": {}}}}
        (tmp_path / name / "detection_results.json").write_text(json.dumps(report))
    assert detection_study.main(["--compare", str(tmp_path / "tail"), str(tmp_path / "blocks")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "| NAB (1) | tail | 0 | **0.400** (PCA 0.300) | **0.500** (PCA 0.300) | 1.5x; 0.70 (met) |"
    assert lines[3] == "|  | blocks | 1 | 0.200 (PCA 0.300) | 0.200 (PCA 0.300) | 3.0x; 0.50 (missed: rate, recall) |"
    # storms: series alarmed on more than a third of their rows (tail's clean one, 40%), of all series
    assert "| tail | 0 | 1/1 | 0.50 | 0.400 | 1/2 | 40.0% |" in lines
    assert "| blocks | 1 | 0/1 | 0.20 | 0.200 | 0/2 | 0.0% |" in lines


def test_compare_joins_the_families_of_two_runs_of_one_seed(tmp_path, capsys):
    def series(vus):
        row = {"vus_pr": vus, "roc_auc": 0.5, "pr_auc": 0.5, "alarm_rate": 0.1, "event_precision": 0.5,
               "event_recall": 0.7, "event_f1": 0.5, "seconds": 1.0}
        return {"n_anomalous_rows": 5, "anomaly_fraction": 0.1, "lstmae_variants": {}, "lstmae_thresholds": {},
                "detectors": {"lstmae": row, "pca": {**row, "vus_pr": 0.3}}}

    runs = {"multi": (1, {"msl": [series(0.4)]}), "uni": (1, {"nab": [series(0.2)], "msl": [series(0.1)]}),
            "other": (2, {"nab": [series(0.2)]})}
    for name, (seed, datasets) in runs.items():
        (tmp_path / name).mkdir()
        report = {"settings": {"seed": seed}, "datasets": {f: {"series": s, "means": {}} for f, s in datasets.items()}}
        (tmp_path / name / "detection_results.json").write_text(json.dumps(report))
    assert detection_study.main(["--compare", f"{tmp_path / 'uni'}+{tmp_path / 'multi'}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("| MSL (NASA) (1) | uni+multi | 1 | **0.400** (PCA 0.300) |")  # the later run's MSL
    assert lines[3].startswith("| NAB (1) | uni+multi | 1 | 0.200 (PCA 0.300) |")
    assert detection_study.main(["--compare", f"{tmp_path / 'multi'}+{tmp_path / 'other'}"]) == 2
    assert "seeds [1, 2]" in capsys.readouterr().err


def test_compare_without_results_exits_2_naming_the_file(tmp_path, capsys):
    assert detection_study.main(["--compare", str(tmp_path)]) == 2
    assert str(tmp_path / "detection_results.json") in capsys.readouterr().err


@pytest.mark.parametrize("text, reason", [("{\"settings\": {", "JSONDecodeError"),
                                          ("{\"datasets\": {}}", "KeyError: 'settings'"),
                                          ("[1, 2]", "TypeError"),
                                          ("{\"settings\": 1, \"datasets\": {}}", "not objects")])
def test_compare_with_an_unreadable_results_file_exits_2_in_one_line_naming_it(tmp_path, capsys, text, reason):
    (tmp_path / "detection_results.json").write_text(text)
    assert detection_study.main(["--compare", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'detection_results.json'}: cannot read it as a study's results" in err
    assert reason in err and "rerun the study into that folder" in err


def test_missed_alarm_goals_names_each_goal_missed():
    met = {"alarm_ratio": 1.5, "event_recall": 0.7, "n_failed": 0}
    assert detection_study.missed_alarm_goals(met) == [] and detection_study.meets_alarm_goals(met)
    assert detection_study.missed_alarm_goals({**met, "alarm_ratio": None}) == ["rate"]
    assert detection_study.missed_alarm_goals({"alarm_ratio": 2.5, "event_recall": None, "n_failed": 1}) == [
        "rate", "recall", "a series failed"]
