"""The command line: the happy path once, then every bad-input path (exit 2, one line, nothing written)."""
import json
import os
import re
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lstmae.cli.main import cli

TINY = ["--encoder", "8,4", "--epochs", "2", "--batch-size", "32"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def sensor_frame(n=240, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame({
        "timestamp": pd.date_range("2026-01-01", periods=n, freq="min").astype(str),
        "temp": np.sin(t / 5) + 0.05 * rng.normal(size=n),
        "flow": np.cos(t / 7) + 0.05 * rng.normal(size=n),
        "label": (t % 97 > 90).astype(int),
    })


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    sensor_frame().to_csv(root / "train.csv", index=False)
    sensor_frame(seed=1).to_csv(root / "test.csv", index=False)
    result = run("fit", root / "train.csv", "-o", root / "model", "--window", 10, "--time-column", "timestamp",
                 "--label-column", "label", *TINY)
    assert result.exit_code == 0, result.output
    return root


def test_help_explains_and_does_not_import_torch():
    code = ("import sys; from click.testing import CliRunner; from lstmae.cli.main import cli; "
            "r = CliRunner().invoke(cli, ['--help']); print(r.output); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for command in ("demo", "fit", "score", "encode", "reconstruct", "evaluate", "summary"):
        assert command in out.stdout


SIGTERM_WHILE_WRITING = """
import os, signal, sys
import pandas as pd
from lstmae.cli.main import main

real_to_csv = pd.DataFrame.to_csv

def to_csv(frame, path, *args, **kwargs):
    real_to_csv(frame.iloc[:5], path, *args, **kwargs)  # half the table written, then stopped as docker stop does
    os.kill(os.getpid(), signal.SIGTERM)

pd.DataFrame.to_csv = to_csv
sys.argv = ["lstmae", "score", *sys.argv[1:]]
main()
"""


def test_sigterm_while_writing_leaves_no_temporary_file_and_the_old_output(workspace, tmp_path):
    # SIGTERM ended the process on the spot: a hidden .scores.csv.<uuid>.tmp stayed beside the output for good
    (tmp_path / "scores.csv").write_text("old")
    stopped = subprocess.run([sys.executable, "-c", SIGTERM_WHILE_WRITING, str(workspace / "model"),
                              str(workspace / "test.csv"), "-o", str(tmp_path / "scores.csv"), "--overwrite"],
                             capture_output=True, text=True)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert os.listdir(tmp_path) == ["scores.csv"] and (tmp_path / "scores.csv").read_text() == "old"


def test_score_help_gives_the_alarm_rules_defaults_and_the_delay_they_cost():
    from lstmae.config import ALARM_DEFAULTS

    result = run("score", "--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "this many rows minus one after the first flag" in text
    for option, name in (("--min-alarm-rows", "min_length"), ("--merge-gap", "merge_gap"), ("--cooldown", "cooldown")):
        assert re.search(rf"{option} INTEGER RANGE .*?\[default: {ALARM_DEFAULTS[name]};", text), option


def test_fit_without_a_window_names_the_option_and_a_value(workspace, tmp_path):
    result = run("fit", workspace / "train.csv", "-o", tmp_path / "model", "--time-column", "timestamp")
    assert result.exit_code == 2 and "--window is required for --layout series" in result.output
    assert "e.g. --window 50" in " ".join(result.output.split()) and not (tmp_path / "model").exists()


def test_fit_writes_a_model_with_the_data_settings(workspace):
    config = json.loads((workspace / "model" / "config.json").read_text())
    assert config["feature_names"] == ["temp", "flow"]
    assert config["data"]["window"] == 10 and config["data"]["time_column"] == "timestamp"


def test_scores_and_events_are_one_result_a_failed_events_write_replaces_no_earlier_scores(workspace, tmp_path,
                                                                                            monkeypatch):
    """--overwrite with --events on a full disk: the scores file was replaced before the events failed."""
    import errno

    earlier = tmp_path / "scores.csv"
    earlier.write_text("earlier,scores\n1,2\n")
    to_csv = pd.DataFrame.to_csv

    def disk_full_for_events(frame, path, *args, **kwargs):
        if "events" in Path(path).name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return to_csv(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full_for_events)
    result = run("score", workspace / "model", workspace / "test.csv", "-o", earlier, "--events",
                 tmp_path / "events.csv", "--overwrite")
    assert_user_error(result, "No space left on device")
    assert earlier.read_text() == "earlier,scores\n1,2\n" and not (tmp_path / "events.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]  # no temporary file left either


def test_score_gives_one_row_per_input_row_with_warm_up_invalid(workspace):
    out = workspace / "scores.csv"
    result = run("score", workspace / "model", workspace / "test.csv", "-o", out, "--events", workspace / "ev.csv")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert len(scores) == 240 and list(scores.columns[:5]) == ["timestamp", "score", "is_anomaly", "alarm", "valid"]
    # default how="mean": every row lies in some window, so every row has a score
    assert scores["valid"].all() and scores["score"].notna().all()
    events = pd.read_csv(workspace / "ev.csv")
    assert {"start", "end", "peak_score", "top_features"} <= set(events.columns)
    # the summary counts the alarm rows (what a person is paged on), not the rows above the threshold
    result = run("score", workspace / "model", workspace / "test.csv", "-o", out, "--overwrite",
                 "--threshold", f"value:{scores['score'].median()}", "--min-alarm-rows", 20)
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    alarms, above = int(scores["alarm"].sum()), int(scores["is_anomaly"].sum())
    assert 0 < alarms < above
    assert (f"scored 240 rows: {alarms} in alarms ({alarms / 240:.1%}), {above} above the threshold before the "
            "alarm rules") in " ".join(result.output.split())
    # how="end" (causal): the first window - 1 rows have no window ending there yet
    result = run("score", workspace / "model", workspace / "test.csv", "-o", out, "--how", "end", "--overwrite")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert len(scores) == 240
    assert not scores["valid"][:9].any() and scores["valid"][9:].all()
    assert scores["score"][:9].isna().all() and scores["score"][9:].notna().all()


def test_encode_reconstruct_and_summary(workspace):
    result = run("encode", workspace / "model", workspace / "test.csv", "-o", workspace / "codes.parquet")
    assert result.exit_code == 0, result.output
    codes = pd.read_parquet(workspace / "codes.parquet")
    # the default encoding, "pooled": each layer's mean over time (8 + 4), then the code layer's max (4)
    assert codes.shape == (231, 16) and codes.columns[0] == "pooled_0" and codes.columns[-1] == "pooled_15"
    result = run("encode", workspace / "model", workspace / "test.csv", "-o", workspace / "means.csv",
                 "--encoding", "mean")
    assert result.exit_code == 0, result.output
    means = pd.read_csv(workspace / "means.csv", index_col=0)
    assert means.shape == (231, 8 + 4) and means.columns[0] == "mean_0" and means.columns[-1] == "mean_11"
    result = run("reconstruct", workspace / "model", workspace / "test.csv", "-o", workspace / "rec.csv")
    assert result.exit_code == 0, result.output
    rec = pd.read_csv(workspace / "rec.csv")
    assert len(rec) == 240 and rec[["temp", "flow"]].notna().all().all()
    assert "wrote 240 rows to" in result.output and "240 reconstructed" in result.output
    # 235 rows: the 5 after the last back-to-back window are empty, and it said "wrote 235 reconstructed rows"
    pd.read_csv(workspace / "test.csv").head(235).to_csv(workspace / "short.csv", index=False)
    result = run("reconstruct", workspace / "model", workspace / "short.csv", "-o", workspace / "rec_short.csv")
    assert "230 reconstructed (5 after the last full window left empty)" in result.output, result.output
    result = run("summary", workspace / "model")
    assert result.exit_code == 0 and "(10, 8)" in result.output and "(4,)" in result.output


def test_encode_and_reconstruct_read_partly_labelled_data(workspace, tmp_path):
    """They use no labels: an empty or unknown label cell refused the whole file, with no option to get round it."""
    frame = pd.read_csv(workspace / "test.csv").astype({"label": object})
    frame.loc[100, "label"] = None
    frame.loc[101, "label"] = "unknown"
    frame.to_csv(tmp_path / "partly.csv", index=False)
    for command, name in (("encode", "codes.csv"), ("reconstruct", "rec.csv")):
        result = run(command, workspace / "model", tmp_path / "partly.csv", "-o", tmp_path / name)
        assert result.exit_code == 0, result.output
        clean = run(command, workspace / "model", workspace / "test.csv", "-o", tmp_path / f"clean_{name}")
        assert clean.exit_code == 0, clean.output
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / name), pd.read_csv(tmp_path / f"clean_{name}"))
    # evaluate needs the labels, and names the cell
    assert_user_error(run("evaluate", workspace / "model", tmp_path / "partly.csv", "--label-column", "label", "-o",
                          tmp_path / "report"), "row 101")
    # a model fitted without labels reads a labelled file's features by name: reconstruct, which has neither
    # --label-column nor --columns, refused it ("column 'label' looks like labels")
    pd.read_csv(workspace / "train.csv").drop(columns="label").to_csv(tmp_path / "unlabelled.csv", index=False)
    assert run("fit", tmp_path / "unlabelled.csv", "-o", tmp_path / "m", "--window", 10, "--time-column", "timestamp",
               *TINY).exit_code == 0
    for command in ("encode", "reconstruct"):
        result = run(command, tmp_path / "m", workspace / "test.csv", "-o", tmp_path / f"{command}_labelled.csv")
        assert result.exit_code == 0, result.output
    # score, which has no --label-column, was told "declare it with --label-column label": it reads the 0/1 column
    # as the labels and writes them beside the scores, as for a model fitted with labels
    result = run("score", tmp_path / "m", workspace / "test.csv", "-o", tmp_path / "scored_labelled.csv")
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(tmp_path / "scored_labelled.csv")
    assert scored["label"].tolist() == pd.read_csv(workspace / "test.csv")["label"].tolist()
    # a second 0/1 column named like labels leaves it ambiguous: still refused, naming one
    pd.read_csv(workspace / "test.csv").assign(y=0).to_csv(tmp_path / "two_labels.csv", index=False)
    assert_user_error(run("score", tmp_path / "m", tmp_path / "two_labels.csv", "-o", tmp_path / "two.csv"),
                      "looks like labels")


def test_series_functions_leave_the_callers_model_as_it_was(workspace):
    from lstmae import load
    from lstmae.series import encode_data, read_for_model, score_data

    model = load(workspace / "model")
    before = (model.threshold_, model.threshold_rule_, model.get_params())
    data = read_for_model(model, workspace / "test.csv")
    assert list(encode_data(model.set_params(encoding="bottleneck"), data).columns) == ["z_0", "z_1", "z_2", "z_3"]
    model.set_params(encoding=before[2]["encoding"])
    table, _ = score_data(model, data, threshold="value:0.5")
    assert (table["is_anomaly"] == (table["score"] > 0.5)).all()
    assert (model.threshold_, model.threshold_rule_, model.get_params()) == before


def test_summary_of_the_keras_tutorial_matches_a_hand_count():
    result = run("summary", "--preset", "keras_tutorial", "--features", 2, "--timesteps", 3)
    assert result.exit_code == 0, result.output
    lstm = lambda i, h: 4 * h * (i + h + 1)  # Keras: one bias per gate
    expected = lstm(2, 128) + lstm(128, 64) + lstm(64, 64) + lstm(64, 128) + 128 * 2 + 2
    assert f"{expected:,}" in result.output  # 248,578 as Keras prints
    assert "(3, 128)" in result.output and "(64,)" in result.output and "(3, 64)" in result.output


def test_evaluate_writes_metrics_plots_and_report(workspace):
    out = workspace / "report"
    result = run("evaluate", workspace / "model", workspace / "test.csv", "--label-column", "label", "-o", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"roc_auc", "pr_auc", "precision", "recall", "f1", "confusion_matrix", "event_recall", "vus_pr"} <= set(metrics)
    assert "point_adjusted_f1" not in metrics
    assert len(list(out.glob("*.png"))) >= 5
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html
    # a newcomer read "mad:8,quantile=1" with no words, nor how to try an alternative, nor early_window's value
    assert "median + 8 robust standard deviations" in html and "lstmae score --threshold RULE" in html
    assert metrics["early_window"] == 0 and "<th>early_window</th>" in html
    assert "<th>notes</th>" not in html or metrics.get("notes")  # an empty list of notes is not shown


@pytest.mark.parametrize("rule", ["telemanom:3", "telemanom:2,mad=8", "quantile:0.9"])
def test_evaluate_reports_the_threshold_it_applied(tmp_path, rule):
    # with an adaptive rule the report gave the model's static mad:8 value, which no row was compared with
    from lstmae import load
    from lstmae.series import read_for_model, score_data

    sensor_frame(800).to_csv(tmp_path / "train.csv", index=False)  # telemanom needs 100 held-out scores
    sensor_frame(seed=1).to_csv(tmp_path / "test.csv", index=False)
    assert run("fit", tmp_path / "train.csv", "-o", tmp_path / "model", "--window", 10, "--time-column",
               "timestamp", "--label-column", "label", "--validation-fraction", 0.2, *TINY).exit_code == 0
    result = run("evaluate", tmp_path / "model", tmp_path / "test.csv", "--label-column", "label", "-o",
                 tmp_path / "report", "--threshold", rule)
    assert result.exit_code == 0, result.output
    reported = json.loads((tmp_path / "report" / "metrics.json").read_text())["threshold"]
    model = load(tmp_path / "model")
    table, _ = score_data(model, read_for_model(model, tmp_path / "test.csv"), threshold=rule)
    if "threshold" in table:  # adaptive: the first threshold a scored row was compared with
        applied = table["threshold"][table["valid"]].iloc[0]
        assert reported == pytest.approx(applied)
        if "mad=" in rule:  # Telemanom's threshold, never below the model's own mad:8
            assert reported >= model.threshold_
        else:
            assert reported != pytest.approx(model.threshold_)
    else:
        assert table["is_anomaly"].equals((table["score"] > reported).astype(table["is_anomaly"].dtype))


def test_summary_counts_without_allocating_and_refuses_options_beside_a_model(workspace):
    # it allocated 200 TB of weights to print a table, and printed the saved model's table for --features 3
    huge = run("summary", "--encoder", 10**8, "--features", 2, "--timesteps", 3)
    assert huge.exit_code == 0, huge.output
    assert f"{4 * 10**8 * (2 + 10**8 + 2):,}" in huge.output  # the encoder LSTM's weights and two biases
    assert_user_error(run("summary", "--encoder", 10**11, "--features", 2, "--timesteps", 3), "too large to build")
    assert_user_error(run("summary", workspace / "model", "--features", 3), "--features describes a new architecture")
    assert_user_error(run("summary", workspace / "model", "--preset", "keras_tutorial"), "--preset")
    assert run("summary", workspace / "model", "--timesteps", 20).exit_code == 0


def test_a_model_feature_as_the_label_column_is_named(workspace, tmp_path):
    # it said "missing 'temp' (the data needs every column the model was trained on)" of a column that was there
    from lstmae import load

    feature = load(workspace / "model").feature_names_in_[0]
    assert_user_error(run("evaluate", workspace / "model", workspace / "test.csv", "--label-column", feature, "-o",
                          tmp_path / "report"), f"--label-column '{feature}' is one of the model's features")
    # it blamed the 'label' column: "looks like labels ...; declare it with --label-column label"
    assert_user_error(run("evaluate", workspace / "model", workspace / "test.csv", "--label-column", "timestamp",
                          "-o", tmp_path / "report"), "--label-column 'timestamp' is the model's time column")
    assert not (tmp_path / "report").exists()


def test_a_long_legal_output_name_is_written_and_a_too_long_one_is_one_line(workspace, tmp_path):
    # the temporary names beside the output added ~40 characters: 247 of the 255 allowed crashed every writer
    long = "b" * 247
    assert run("score", workspace / "model", workspace / "test.csv", "-o", tmp_path / f"{long}.csv").exit_code == 0
    result = run("evaluate", workspace / "model", workspace / "test.csv", "--label-column", "label", "-o",
                 tmp_path / long)
    assert result.exit_code == 0, result.output
    assert (tmp_path / long / "metrics.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{long}.csv", long])  # no temporary left
    too_long = tmp_path / ("c" * 300 + ".csv")
    assert_user_error(run("encode", workspace / "model", workspace / "test.csv", "-o", too_long),
                      "the name is 304 bytes long, more than the 255 a file name may have")


@pytest.mark.parametrize("args", [
    ["encode", "MODEL", "DATA", "-o", "OUT", "--stride", "99999999999999999999"],  # OverflowError, exit 1
    ["score", "MODEL", "DATA", "-o", "OUT", "--stride", str(2**31)],
    ["demo", "-o", "OUT", "--seed", "99999999999999999999999"],  # torch's "Overflow when unpacking long long"
    ["demo", "-o", "OUT", "--seed", "-1"],  # numpy's "expected non-negative integer"
    ["evaluate", "MODEL", "DATA", "--label-column", "label", "-o", "OUT", "--early-window", "-1"],  # "early_window"
])
def test_numbers_out_of_range_name_the_option(workspace, tmp_path, args):
    names = {"MODEL": workspace / "model", "DATA": workspace / "test.csv", "OUT": tmp_path / "out"}
    result = run(*[names.get(arg, arg) for arg in args])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"Invalid value for '{args[-2]}'" in result.output, result.output
    assert not (tmp_path / "out").exists()


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_empty_and_non_tabular_files(tmp_path):
    assert_user_error(run("fit", tmp_path / "nope.csv", "-o", tmp_path / "m", "--window", 3), "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    assert_user_error(run("fit", tmp_path / "empty.csv", "-o", tmp_path / "m", "--window", 3), "empty.csv")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    assert_user_error(run("fit", tmp_path / "binary.csv", "-o", tmp_path / "m", "--window", 3), "binary.csv")
    assert not (tmp_path / "m").exists()


def test_text_cell_and_nan_name_column_and_row(tmp_path):
    frame = sensor_frame(40)
    frame["temp"] = frame["temp"].astype(object)
    frame.loc[16, "temp"] = "abc"
    frame.to_csv(tmp_path / "text.csv", index=False)
    assert_user_error(run("fit", tmp_path / "text.csv", "-o", tmp_path / "m", "--window", 3, "--time-column",
                          "timestamp", "--label-column", "label"), "'temp'", "row 17", "abc")
    frame = sensor_frame(40)
    frame.loc[[5, 7], "flow"] = np.nan
    frame.to_csv(tmp_path / "nan.csv", index=False)
    assert_user_error(run("fit", tmp_path / "nan.csv", "-o", tmp_path / "m", "--window", 3, "--time-column",
                          "timestamp", "--label-column", "label"), "'flow'", "row 6", "--nan-policy")
    assert not (tmp_path / "m").exists()
    result = run("fit", tmp_path / "nan.csv", "-o", tmp_path / "m", "--window", 3, "--time-column", "timestamp",
                 "--label-column", "label", "--nan-policy", "interpolate", *TINY)
    assert result.exit_code == 0, result.output


def test_window_problems(workspace, tmp_path):
    sensor_frame(5).to_csv(tmp_path / "short.csv", index=False)
    short = str(tmp_path / "short.csv")
    assert_user_error(run("fit", tmp_path / "short.csv", "-o", tmp_path / "m", "--window", 10, "--time-column",
                          "timestamp", "--label-column", "label"), f"{short}: series has 5 rows", "window 10",
                      "use a smaller --window")
    assert_user_error(run("fit", workspace / "train.csv", "-o", tmp_path / "m", "--window", 0), "window", "0")
    for command in ("score", "encode", "reconstruct"):
        assert_user_error(run(command, workspace / "model", tmp_path / "short.csv", "-o", tmp_path / "s.csv"),
                          f"{short}: series has 5 rows", "window 10", "give at least that many")
    assert_user_error(run("evaluate", workspace / "model", tmp_path / "short.csv", "--label-column", "label", "-o",
                          tmp_path / "r"), f"{short}: series has 5 rows")
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "r").exists()
    assert_user_error(run("fit", workspace / "train.csv", "-o", tmp_path / "m", "--window", 10,
                          "--validation-blocks", 0), "validation_blocks must be an int >= 1, got 0")
    assert_user_error(run("fit", workspace / "train.csv", "-o", tmp_path / "m", "--window", 10,
                          "--threshold-floor", 1.5), "threshold_floor must be a quantile in (0, 1]", "1.5")
    assert_user_error(run("fit", workspace / "train.csv", "-o", tmp_path / "m", "--window", 10,
                          "--smooth", 0), "smooth must be an int >= 1 (rows; 1: no smoothing), got 0")
    assert not (tmp_path / "m").exists()


def fit_demo(workspace, tmp_path, *options):
    """`lstmae fit` on the demo's training table into tmp_path/m with `options`: its result and config.json."""
    result = run("fit", workspace / "train.csv", "-o", tmp_path / "m", "--window", 10, "--time-column", "timestamp",
                 "--label-column", "label", *options, *TINY)
    assert result.exit_code == 0, result.output
    return result, json.loads((tmp_path / "m" / "config.json").read_text())


def test_fit_with_n_init_keeps_the_run_of_the_lowest_held_out_loss_and_says_which(workspace, tmp_path):
    result, config = fit_demo(workspace, tmp_path, "--n-init", 2)
    assert config["params"]["n_init"] == 2
    losses, chosen = config["training"]["run_losses"], config["training"]["chosen_run"]
    assert len(losses) == 2 and losses[chosen - 1] == min(losses)
    assert f"kept run {chosen} of 2 (--n-init)" in result.output
    assert_user_error(run("fit", workspace / "train.csv", "-o", tmp_path / "m2", "--window", 10, "--n-init", 0),
                      "n_init must be an integer >= 1", "got 0")
    assert not (tmp_path / "m2").exists()


def test_fit_with_a_threshold_floor_stores_the_floors(workspace, tmp_path):
    result, config = fit_demo(workspace, tmp_path, "--threshold-floor", 0.5)
    assert config["params"]["threshold_floor"] == 0.5
    assert set(config["threshold"]["floors"]) == {"mean", "window"}
    assert config["threshold"]["value"] >= config["threshold"]["floors"]["mean"]
    assert "held-out row scores (how=mean), never below" in result.output
    assert "the 0.5 quantile of the training rows' scores" in result.output


def test_fit_with_smooth_stores_it_and_score_smooths_as_fit_did(workspace, tmp_path):
    result, config = fit_demo(workspace, tmp_path, "--smooth", 20)
    assert config["params"]["smooth"] == 20
    assert "held-out row scores (how=mean, each the mean of 20 rows)" in result.output
    scored = run("score", tmp_path / "m", workspace / "test.csv", "-o", tmp_path / "s.csv")
    assert scored.exit_code == 0, scored.output
    # the network fitted without --smooth (the same seed's) scores the rows that --smooth 20 averages
    plain = run("fit", workspace / "train.csv", "-o", tmp_path / "plain", "--window", 10, "--time-column",
                "timestamp", "--label-column", "label", *TINY)
    assert plain.exit_code == 0, plain.output
    assert run("score", tmp_path / "plain", workspace / "test.csv", "-o", tmp_path / "p.csv").exit_code == 0
    from lstmae.scoring import smooth_points
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv")["score"],
                               smooth_points(pd.read_csv(tmp_path / "p.csv")["score"].to_numpy(), 20))


def test_fit_names_the_0_1_features_it_does_not_score_and_scores_them_when_asked(tmp_path):
    frame = sensor_frame()
    frame["valve"] = (np.arange(len(frame)) % 40 < 5).astype(int)  # a command flag
    frame.to_csv(tmp_path / "train.csv", index=False)
    fitted = {}
    for mode in ("context", "scored"):
        result = run("fit", tmp_path / "train.csv", "-o", tmp_path / mode, "--window", 10, "--time-column",
                     "timestamp", "--label-column", "label", "--binary-features", mode, *TINY)
        assert result.exit_code == 0, result.output
        fitted[mode] = result.output
        config = json.loads((tmp_path / mode / "config.json").read_text())
        assert config["params"]["binary_features"] == mode and config["binary_features"] == [2]
    assert "0/1 features, fed to the network but not scored (1): valve (--binary-features scored" in fitted["context"]
    assert "not scored" not in fitted["scored"]
    held_on = sensor_frame(seed=1)
    held_on["valve"] = 0
    held_on.loc[100:160, "valve"] = 1  # the command stuck on, while the temperature jumps
    held_on.loc[120:129, "temp"] += 6.0
    held_on.to_csv(tmp_path / "test.csv", index=False)
    named = {}
    for mode in ("context", "scored"):
        result = run("score", tmp_path / mode, tmp_path / "test.csv", "-o", tmp_path / f"{mode}.csv",
                     "--events", tmp_path / f"{mode}_events.csv")
        assert result.exit_code == 0, result.output
        named[mode] = " ".join(pd.read_csv(tmp_path / f"{mode}_events.csv")["top_features"].fillna(""))
    # events name what made their score: as context the flag is never named, though its error is large
    assert "valve" in named["scored"] and "temp" in named["context"] and "valve" not in named["context"]
    refused = run("fit", tmp_path / "train.csv", "-o", tmp_path / "bad", "--window", 10, "--binary-features", "ignored",
                  *TINY)
    assert refused.exit_code == 2 and "Traceback" not in refused.output and not (tmp_path / "bad").exists()
    assert "Invalid value for '--binary-features': 'ignored' is not one of 'scored', 'context'" in refused.output


def test_scoring_with_missing_or_extra_feature_columns(workspace, tmp_path):
    frame = sensor_frame(60)
    frame.drop(columns="flow").to_csv(tmp_path / "missing.csv", index=False)
    assert_user_error(run("score", workspace / "model", tmp_path / "missing.csv", "-o", tmp_path / "s.csv"),
                      "expected 2 features", "missing 'flow'")
    frame.assign(pressure=1.0).to_csv(tmp_path / "extra.csv", index=False)
    assert_user_error(run("score", workspace / "model", tmp_path / "extra.csv", "-o", tmp_path / "s.csv"),
                      "unexpected 'pressure'")
    assert not (tmp_path / "s.csv").exists()


def test_a_bad_matmul_setting_names_the_choices(workspace, tmp_path, monkeypatch):
    from lstmae.kernels import policy

    monkeypatch.setenv("LSTMAE_MATMUL", "cublas")
    policy.matmul_policy.cache_clear()
    try:
        assert_user_error(run("score", workspace / "model", workspace / "test.csv", "-o", tmp_path / "s.csv"),
                          "LSTMAE_MATMUL must be one of ('tiles', 'onednn', 'blas') or unset, got 'cublas'")
    finally:
        policy.matmul_policy.cache_clear()
    assert not (tmp_path / "s.csv").exists()


def test_bad_model_paths(workspace, tmp_path):
    assert_user_error(run("score", tmp_path, workspace / "test.csv", "-o", tmp_path / "s.csv"),
                      "not a model directory")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text((workspace / "model" / "config.json").read_text())
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"\x80\x04garbage")
    assert_user_error(run("score", tmp_path / "bad", workspace / "test.csv", "-o", tmp_path / "s.csv"),
                      "not a valid safetensors file")


def test_existing_output_needs_overwrite(workspace):
    (workspace / "taken.csv").write_text("keep me")
    assert_user_error(run("score", workspace / "model", workspace / "test.csv", "-o", workspace / "taken.csv"),
                      "exists", "--overwrite")
    assert (workspace / "taken.csv").read_text() == "keep me"
    assert_user_error(run("fit", workspace / "train.csv", "-o", workspace / "model", "--window", 10), "--overwrite")


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "fit", tmp_path / "nope.csv", "-o", tmp_path / "m", "--window", 3)
    assert result.exit_code != 0 and result.exception is not None


def test_summary_of_presets_with_their_own_decoders():
    result = run("summary", "--preset", "encdec_ad", "--features", 1, "--timesteps", 20)
    assert result.exit_code == 0 and "EncDec-AD" in result.output and "(20, 64)" in result.output
    assert_user_error(run("summary", "--preset", "token_autoencoder", "--features", 1, "--timesteps", 8),
                      "vocabulary")


def test_demo_writes_everything_it_promises(tmp_path):
    out = tmp_path / "demo"
    result = run("demo", "-o", out, "--epochs", "2")
    assert result.exit_code == 0, result.output
    for name in ("model/config.json", "model/model.safetensors", "scores.csv", "events.csv", "train.csv",
                 "test.csv", "report/metrics.json", "report/report.html", "report/scores.png"):
        assert (out / name).is_file(), name
    assert f"open {out / 'report' / 'report.html'}" in result.output  # the path it prints exists
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["n_events"] == 6 and 0.5 < metrics["roc_auc"] <= 1.0
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == len(pd.read_csv(out / "test.csv"))  # one score per test row
    result = run("demo", "-o", out, "--epochs", "2")  # no --overwrite: refused, nothing touched
    assert result.exit_code == 2 and "exists" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_time_gaps_split_windows_and_dropped_rows_keep_one_output_row_each(workspace, tmp_path):
    frame = sensor_frame(240)
    stamps = pd.to_datetime(frame["timestamp"])
    stamps[120:] += pd.Timedelta(days=30)  # a 30-day jump in the middle
    frame["timestamp"] = stamps.astype(str)
    frame.to_csv(tmp_path / "gap.csv", index=False)
    result = run("fit", tmp_path / "gap.csv", "-o", tmp_path / "m", "--window", 10, "--time-column", "timestamp",
                 "--label-column", "label", *TINY)
    assert result.exit_code == 0, result.output
    assert "split the series at 1 time gap" in result.output
    result = run("score", tmp_path / "m", tmp_path / "gap.csv", "-o", tmp_path / "s.csv", "--how", "end")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "s.csv")
    assert not scores["valid"][120:129].any() and scores["valid"][129:].all()  # warm-up again after the gap
    frame = sensor_frame(60)
    frame.loc[[5, 7], "flow"] = np.nan
    frame.loc[[5, 6], "label"] = 1
    frame.to_csv(tmp_path / "holes.csv", index=False)
    result = run("score", workspace / "model", tmp_path / "holes.csv", "-o", tmp_path / "h.csv", "--nan-policy", "drop")
    assert result.exit_code == 0, result.output
    holes = pd.read_csv(tmp_path / "h.csv")
    assert len(holes) == 60 and list(holes["timestamp"]) == list(frame["timestamp"])
    assert not holes["valid"][[5, 7]].any() and holes["score"][[5, 7]].isna().all()
    assert holes["label"].tolist() == frame["label"].tolist()  # a dropped row's label is the input's, not 0


def test_fit_how_point_scores_rows_by_their_own_error_and_a_max_model_refuses_point(workspace):
    model = workspace / "model_point"
    result = run("fit", workspace / "train.csv", "-o", model, "--window", 10, "--time-column", "timestamp",
                 "--label-column", "label", "--how", "point", *TINY)
    assert result.exit_code == 0, result.output
    out = workspace / "point_scores.csv"
    result = run("score", model, workspace / "test.csv", "-o", out)  # the default: what the threshold was fitted on
    assert result.exit_code == 0, result.output
    assert json.loads((model / "config.json").read_text())["threshold"]["how"] == "point"
    assert pd.read_csv(out)["valid"].all()
    refused = workspace / "refused.csv"
    result = run("score", workspace / "model", workspace / "test.csv", "-o", refused, "--how", "point")
    assert result.exit_code == 2 and "refit it with how='point'" in result.output and not refused.exists()


# --- found by a tester's sweep: accepted, then quietly not honoured, or a misleading message -----------------

@pytest.mark.parametrize("options, fragment", [
    (["--threshold", "best-f1"], "--threshold best-f1 is fitted on labels: add --label-column"),
    (["--entity-column", "label", "--label-column", "label"], "--entity-column label is also the label"),
    (["--max-gap", "5"], "--max-gap needs --time-column"),
    (["--max-grad-norm=-1"], "max_grad_norm must be a number > 0"),  # it reversed the gradients
    (["--patience", "0"], "patience must be an integer >= 1"),
    (["--learning-rate", "0"], "learning_rate must be a number > 0"),
    (["--input-noise=-0.5"], "input_noise must be a number >= 0"),
    (["--layout", "sequences"], "--window applies to --layout series"),
])
def test_fit_refuses_options_it_would_not_honour(workspace, tmp_path, options, fragment):
    assert_user_error(run("fit", workspace / "train.csv", "-o", tmp_path / "m", "--window", 10, *TINY, *options),
                      fragment)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("checkpoints", ["m", "m/ck", "."])
def test_fit_refuses_a_checkpoint_folder_that_overlaps_the_model_folder_before_training(workspace, tmp_path,
                                                                                       checkpoints):
    """It trained every epoch, then refused to write the model where the checkpoints were."""
    assert_user_error(run("fit", workspace / "train.csv", "-o", tmp_path / "m", "--window", 10, *TINY,
                          "--checkpoint-dir", tmp_path / checkpoints), "overlap", "a folder of their own")
    assert not (tmp_path / "m").exists()


def test_a_path_the_file_system_refuses_is_one_line_naming_it_not_an_unexpected_error(workspace, tmp_path):
    import errno
    import shutil

    from lstmae.cli.main import _os_error_line

    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # a model folder that is a link to itself
    assert_user_error(run("score", tmp_path / "loop", workspace / "test.csv", "-o", tmp_path / "s.csv"),
                      "loop: Too many levels of symbolic links", "fix or remove the link")
    shutil.copytree(workspace / "model", tmp_path / "m")
    (tmp_path / "m" / "config.json").unlink()
    (tmp_path / "m" / "config.json").symlink_to("config.json")  # its config.json a link to itself
    assert_user_error(run("score", tmp_path / "m", workspace / "test.csv", "-o", tmp_path / "s.csv"),
                      "config.json: Too many levels of symbolic links", "fix or remove the link")
    assert not (tmp_path / "s.csv").exists()
    # (root reads any folder, so a folder it may not enter is told from its error, as a user's would be)
    denied = PermissionError(errno.EACCES, "Permission denied", "model/config.json")
    assert _os_error_line(denied) == "model/config.json: Permission denied; check its permissions (and those of the " \
                                     "folders above it)"


def test_score_output_paths_are_checked_against_each_other_and_folders(workspace, tmp_path):
    same = tmp_path / "same.csv"
    assert_user_error(run("score", workspace / "model", workspace / "test.csv", "-o", same, "--events", same),
                      "is the scores' output too")
    (tmp_path / "dir.csv").mkdir()
    assert_user_error(run("score", workspace / "model", workspace / "test.csv", "-o", tmp_path / "dir.csv",
                          "--overwrite"), "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.csv"]


def test_an_output_never_replaces_what_the_command_reads(workspace, tmp_path):
    import shutil

    project = tmp_path / "project"
    shutil.copytree(workspace / "model", project / "model")
    shutil.copy(workspace / "test.csv", project / "test.csv")
    before = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
    # a report folder that holds the model and the data: --overwrite would have replaced the folder with both
    assert_user_error(run("evaluate", project / "model", project / "test.csv", "--label-column", "label",
                          "-o", project, "--overwrite"), f"{project} holds the model this command reads")
    sharing = tmp_path / "sharing"
    sharing.mkdir()
    shutil.copy(workspace / "train.csv", sharing / "train.csv")
    assert_user_error(run("fit", sharing / "train.csv", "-o", sharing, "--window", 10, "--overwrite", *TINY),
                      f"{sharing} holds the data this command reads")
    # scores written over the data they are made from
    assert_user_error(run("score", project / "model", project / "test.csv", "-o", project / "test.csv",
                          "--overwrite"), "is the data this command reads; write the output elsewhere")
    assert_user_error(run("encode", project / "model", project / "test.csv", "-o", project / "test.csv",
                          "--overwrite"), "is the data this command reads")
    # without --overwrite it said "exists; pass --overwrite", which only led to this refusal
    assert_user_error(run("score", project / "model", project / "test.csv", "-o", project / "test.csv"),
                      "is the data this command reads")
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == before
    assert (sharing / "train.csv").read_text() == (workspace / "train.csv").read_text()


def test_overwrite_replaces_an_earlier_output_never_a_folder_of_other_files(workspace, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_text("x")
    for args in (("evaluate", workspace / "model", workspace / "test.csv", "--label-column", "label"),
                 ("fit", workspace / "train.csv", "--window", 10, *TINY), ("demo", "--epochs", 1)):
        assert_user_error(run(*args, "-o", tmp_path / "photos", "--overwrite"),
                          "photos: holds a.jpg, not a", "overwriting would delete them")
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["a.jpg"]
    # nor a folder that holds the marker of an earlier output beside other files: it was deleted with them
    (tmp_path / "photos" / "report.html").write_text("<html>")
    (tmp_path / "photos" / "scores.csv").write_text("x")
    for args in (("evaluate", workspace / "model", workspace / "test.csv", "--label-column", "label"),
                 ("demo", "--epochs", 1)):
        assert_user_error(run(*args, "-o", tmp_path / "photos", "--overwrite"), "photos: holds a.jpg",
                          "files lstmae did not write there")
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["a.jpg", "report.html", "scores.csv"]
    # an earlier report is replaced
    report = ("evaluate", workspace / "model", workspace / "test.csv", "--label-column", "label", "-o",
              tmp_path / "report")
    assert run(*report).exit_code == 0
    assert run(*report, "--overwrite").exit_code == 0


def test_a_misspelled_label_column_is_named(workspace, tmp_path):
    assert_user_error(run("evaluate", workspace / "model", workspace / "test.csv", "--label-column", "lable",
                          "-o", tmp_path / "report"), "no column 'lable' (--label-column)", "'label'")


def test_a_cell_that_is_not_a_date_in_a_date_column_is_named(workspace, tmp_path):
    frame = sensor_frame()
    frame.loc[59, "timestamp"] = "notadate"
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert_user_error(run("fit", tmp_path / "t.csv", "-o", tmp_path / "m", "--window", 10, "--time-column",
                          "timestamp", "--label-column", "label", *TINY),
                      "time column 'timestamp' row 60 holds 'notadate'")


def test_a_first_row_with_an_extra_field_is_named_not_read_as_an_index(tmp_path):
    lines = sensor_frame(30).to_csv(index=False).splitlines()
    lines[1] += ",7"
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    assert_user_error(run("fit", tmp_path / "r.csv", "-o", tmp_path / "m", "--window", 5, *TINY),
                      "the first data row has more fields than the header (4)")


def test_entity_models_say_whose_each_row_and_event_is(tmp_path):
    # two machines over the same minutes: without the entity column the rows could not be told apart
    one, two = sensor_frame(120, seed=0), sensor_frame(120, seed=1)
    two.loc[40:60, "temp"] += 4.0
    data = pd.concat([one.assign(machine="m1"), two.assign(machine="m2")], ignore_index=True)
    data.to_csv(tmp_path / "d.csv", index=False)
    assert run("fit", tmp_path / "d.csv", "-o", tmp_path / "m", "--window", 10, "--time-column", "timestamp",
               "--entity-column", "machine", "--label-column", "label", *TINY).exit_code == 0
    result = run("score", tmp_path / "m", tmp_path / "d.csv", "-o", tmp_path / "s.csv", "--events",
                 tmp_path / "e.csv", "--threshold", "quantile:0.5")
    assert result.exit_code == 0, result.output
    scores, events = pd.read_csv(tmp_path / "s.csv"), pd.read_csv(tmp_path / "e.csv")
    assert scores["machine"].tolist() == ["m1"] * 120 + ["m2"] * 120
    assert list(events.columns[:2]) == ["event", "machine"] and events["event"].tolist() == list(range(len(events)))
    for _, event in events.iterrows():  # no event runs from one machine into the next
        assert set(scores["machine"][event["start_row"]:event["end_row"] + 1]) == {event["machine"]}
    holes = data.copy()
    holes.loc[[130, 131], "temp"] = np.nan  # two of m2's rows, left out by --nan-policy drop
    holes.to_csv(tmp_path / "holes.csv", index=False)
    result = run("score", tmp_path / "m", tmp_path / "holes.csv", "-o", tmp_path / "h.csv", "--nan-policy", "drop")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "h.csv")["machine"].tolist() == data["machine"].tolist()  # they were empty
    one.to_csv(tmp_path / "one.csv", index=False)
    result = run("score", tmp_path / "m", tmp_path / "one.csv", "-o", tmp_path / "s1.csv")
    assert result.exit_code == 0 and "no column 'machine', the model's --entity-column" in result.output
    # encode and reconstruct dropped the column, leaving each time twice with no machine
    result = run("encode", tmp_path / "m", tmp_path / "d.csv", "-o", tmp_path / "z.csv", "--stride", 7)
    assert result.exit_code == 0, result.output
    codes = pd.read_csv(tmp_path / "z.csv")
    assert f"encodings of size {codes.shape[1] - 2} " in result.output  # the machine column is not a code
    assert list(codes.columns[:2]) == ["end", "machine"] and set(codes["machine"]) == {"m1", "m2"}
    assert codes.groupby("machine").size().tolist() == [len(range(9, 120, 7))] * 2  # no window spans two machines
    assert run("reconstruct", tmp_path / "m", tmp_path / "d.csv", "-o", tmp_path / "r.csv").exit_code == 0
    assert pd.read_csv(tmp_path / "r.csv")["machine"].tolist() == ["m1"] * 120 + ["m2"] * 120


def test_summary_refuses_sizes_below_one_and_names_a_corrupt_model(workspace, tmp_path):
    result = run("summary", "--features", 2, "--timesteps", -1)
    assert result.exit_code == 2 and "-1 is not in the range x>=1" in result.output
    (tmp_path / "bad").mkdir()
    config = json.loads((workspace / "model" / "config.json").read_text())
    del config["architecture"]
    (tmp_path / "bad" / "config.json").write_text(json.dumps(config))
    (tmp_path / "bad" / "model.safetensors").write_bytes((workspace / "model" / "model.safetensors").read_bytes())
    result = run("summary", tmp_path / "bad")
    assert result.exit_code == 2 and "Traceback" not in result.output and "KeyError" not in result.output


def _evaluate_file(workspace, frame, tmp_path, **options):
    from lstmae.estimator import load
    from lstmae.evaluation.evaluate import evaluate
    from lstmae.series import read_for_model

    frame.to_csv(tmp_path / "e.csv", index=False)
    model = load(workspace / "model")
    data = read_for_model(model, tmp_path / "e.csv", label_column="label",
                          nan_policy=options.pop("nan_policy", "error"))
    return evaluate(model, data, **options)


def _bumped(seed=1):
    frame = sensor_frame(seed=seed)
    frame["label"] = 0
    frame.loc[100:109, "temp"] += 6.0
    frame.loc[121:123, "label"] = 1  # after the alarm: found only with an early window
    frame.loc[180:184, "temp"] += 6.0
    frame.loc[180:184, "label"] = 1
    return frame


def test_events_match_labels_as_the_event_metrics_count_them(workspace, tmp_path):
    # matches_label ignored --early-window, and with --nan-policy drop compared input rows with kept rows
    for options in ({"early_window": 0}, {"early_window": 15}, {"early_window": 15, "nan_policy": "drop"}):
        frame = _bumped()
        if options.get("nan_policy"):
            frame.loc[30:59, "flow"] = np.nan
        result = _evaluate_file(workspace, frame, tmp_path, how="end", threshold="value:3",
                                alarms={"merge_gap": 10, "cooldown": 0}, **dict(options))
        assert len(result.events) >= 2
        assert int(result.events["matches_label"].sum()) == result.metrics["n_correct_runs"], options
        # the labelled ranges, found or missed (the report listed only the alarms, so a missed one was nowhere)
        found = result.labelled_events
        assert len(found) == result.metrics["n_events"] and found["found"].sum() == result.metrics["n_detected_events"]
        assert (found["found"] == found["alarm"].notna()).all() and "Labelled events" in result.html
        if options["early_window"] == 0:
            assert not found["found"].all()  # the range after the first alarm is missed without an early window
        for _, event in result.events.iterrows():  # input-row positions, as score's events.csv has them
            assert pd.Timestamp(frame["timestamp"][event["start_row"]]) == event["start"], options
            assert pd.Timestamp(frame["timestamp"][event["end_row"]]) == event["end"], options
    assert any("30 input rows were dropped" in note for note in result.metrics["notes"])


def test_an_event_s_reconstruction_window_never_spans_a_time_gap(workspace, tmp_path):
    frame = _bumped()
    times = pd.to_datetime(frame["timestamp"])
    times[104:] += pd.Timedelta(hours=2)  # the first bump's event sits on the gap
    frame["timestamp"] = times.astype(str)
    result = _evaluate_file(workspace, frame, tmp_path, how="end", threshold="value:3",
                            alarms={"merge_gap": 10, "cooldown": 0})
    titles = [figure[2]._suptitle.get_text() for figure in result.figures if figure[0].endswith("_reconstruction")]
    assert titles
    for title in titles:
        first, last = (pd.Timestamp(part) for part in title.split("window ")[1].split(" .. "))
        assert last - first == pd.Timedelta(minutes=9), title  # 10 consecutive minutes, no gap inside


def test_undefined_event_metrics_say_why(workspace, tmp_path):
    frame = sensor_frame(seed=1)
    frame["label"] = 0
    result = _evaluate_file(workspace, frame, tmp_path, threshold="value:1e9")
    notes = " ".join(result.metrics["notes"])
    assert "no labelled event among the scored rows" in notes and "no alarm was raised" in notes


def test_the_report_says_what_the_threshold_applied_was_fitted_on_and_that_row_metrics_count_alarms(workspace,
                                                                                                   tmp_path):
    # it always showed the model's own "held-out row scores (how=...)", whatever threshold was applied
    frame = _bumped()
    for options, basis in (({}, "held-out row scores (how=mean)"),
                           ({"how": "end"}, "held-out window scores, refitted for this scoring"),
                           ({"threshold": "value:3"}, "nothing: a fixed value"),
                           ({"threshold": "best-f1"}, "the labels and scores of the evaluated rows")):
        html = _evaluate_file(workspace, frame, tmp_path, **options).html
        assert re.search(r"fitted on</t[dh]>\s*<td>" + re.escape(basis), html), (options, basis)
    assert "rows flagged, i.e. in an alarm" in html and "rows flagged among" not in html


def test_score_says_when_alarms_cover_too_many_rows_to_act_on(workspace, tmp_path):
    changed = sensor_frame(seed=2)
    changed[["temp", "flow"]] = 3 * changed[["temp", "flow"]] + 2  # the machine is not the one trained on
    changed.to_csv(tmp_path / "changed.csv", index=False)
    result = run("score", workspace / "model", tmp_path / "changed.csv", "-o", tmp_path / "scores.csv")
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if line.startswith("warning: "))
    assert "alarms cover" in warning and "refit on more or more recent normal rows" in warning
    calm = run("score", workspace / "model", workspace / "test.csv", "-o", tmp_path / "calm.csv")
    assert calm.exit_code == 0 and "alarms cover" not in calm.output


def test_evaluate_puts_an_alarm_storm_in_the_report_and_on_stderr(workspace, tmp_path):
    changed = sensor_frame(seed=2)
    changed[["temp", "flow"]] = 3 * changed[["temp", "flow"]] + 2
    changed.to_csv(tmp_path / "changed.csv", index=False)
    result = run("evaluate", workspace / "model", tmp_path / "changed.csv", "--label-column", "label",
                 "-o", tmp_path / "report")
    assert result.exit_code == 0, result.output
    assert any(line.startswith("warning: alarms cover") for line in result.output.splitlines())
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert any(note.startswith("alarms cover") for note in metrics["notes"])
    assert "alarms cover" in (tmp_path / "report" / "report.html").read_text()


def test_the_report_lists_what_the_storm_remedy_would_flag_as_score_flags_it(workspace, tmp_path):
    changed = sensor_frame(seed=2)
    changed[["temp", "flow"]] = 3 * changed[["temp", "flow"]] + 2
    changed["label"] = 0
    stamps = pd.to_datetime(changed["timestamp"])
    stamps[120:] += pd.Timedelta(days=1)  # two segments: the adaptive rule starts afresh in each
    changed["timestamp"] = stamps.astype(str)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        html = _evaluate_file(workspace, changed, tmp_path).html
    assert sum("split the series at 1 time gap" in str(w.message) for w in caught) == 1  # said once, not again

    def share(spec):  # the alternative's flag rate, in percent
        return float(re.search(re.escape(spec) + r"</th><td>[^<]*: ([\d.]+)% of rows above it", html).group(1))

    assert run("score", workspace / "model", tmp_path / "e.csv", "-o", tmp_path / "s.csv",
               "--threshold", "telemanom:2,mad=8").exit_code == 0
    scored = pd.read_csv(tmp_path / "s.csv")
    flagged = scored.loc[scored["valid"], "is_anomaly"].mean()
    assert share("telemanom:2,mad=8") == pytest.approx(100 * flagged, abs=0.006)
    assert share("telemanom:2,mad=8") < share("mad:8")


def test_warnings_name_a_time_gap_segment_by_where_it_starts_and_a_single_series_by_nothing(workspace, tmp_path):
    frame = sensor_frame(240)
    stamps = pd.to_datetime(frame["timestamp"])
    stamps[235:] += pd.Timedelta(days=1)  # a 5-row stretch after a gap: shorter than the window
    frame["timestamp"] = stamps.astype(str)
    frame.to_csv(tmp_path / "gap.csv", index=False)
    result = run("score", workspace / "model", tmp_path / "gap.csv", "-o", tmp_path / "s.csv",
                 "--threshold", "value:0")  # every row flagged: a storm in each segment
    assert result.exit_code == 0, result.output
    assert "skipped 1 group(s) shorter than the window of 10 rows: segment 2 from 2026-01-02 03:55:00 (5 rows)" \
        in result.output
    assert "of the scored rows of segment 1 from 2026-01-01 00:00:00," in result.output
    whole = run("score", workspace / "model", workspace / "test.csv", "-o", tmp_path / "w.csv",
                "--threshold", "value:0")
    storm = next(line for line in whole.output.splitlines() if "alarms cover" in line)
    assert re.match(r"warning: alarms cover \d+% of the scored rows, too many", storm)  # no group named


def test_a_sequences_model_refuses_the_options_of_a_series(tmp_path):
    rng = np.random.default_rng(0)
    beats = pd.DataFrame(np.sin(np.arange(12) / 2) + 0.05 * rng.normal(size=(40, 12)),
                         columns=[f"t{i}" for i in range(12)])
    beats["label"] = 0
    beats.to_csv(tmp_path / "beats.csv", index=False)
    fitted = run("fit", tmp_path / "beats.csv", "-o", tmp_path / "m", "--layout", "sequences", "--columns", "t*",
                 "--label-column", "label", *TINY)
    assert fitted.exit_code == 0, fitted.output
    assert "trained on 36 sequences" in fitted.output  # 40 less the 4 held out, as a series counts its windows
    for options, name in ((["--events", tmp_path / "ev.csv"], "--events"), (["--how", "end"], "--how"),
                          (["--feature-errors"], "--feature-errors")):
        result = run("score", tmp_path / "m", tmp_path / "beats.csv", "-o", tmp_path / "s.csv", *options)
        assert_user_error(result, f"{name} applies to a model of a series", f"drop {name}")
        assert not (tmp_path / "s.csv").exists() and not (tmp_path / "ev.csv").exists()
    result = run("evaluate", tmp_path / "m", tmp_path / "beats.csv", "--label-column", "label", "-o", tmp_path / "r",
                 "--how", "mean")
    assert_user_error(result, "--how applies to a model of a series")
    assert run("score", tmp_path / "m", tmp_path / "beats.csv", "-o", tmp_path / "s.csv").exit_code == 0
    # fit stored the series' options and ignored them
    for options in (["--stride", 3], ["--how", "point"], ["--time-column", "t0"], ["--entity-column", "t1"],
                    ["--max-gap", "5"]):
        result = run("fit", tmp_path / "beats.csv", "-o", tmp_path / "m2", "--layout", "sequences", "--columns", "t*",
                     *options, *TINY)
        assert_user_error(result, f"{options[0]} applies to --layout series", f"drop {options[0]}")
        assert not (tmp_path / "m2").exists()
    result = run("score", tmp_path / "m", tmp_path / "beats.csv", "-o", tmp_path / "f.csv", "--nan-policy", "ffill")
    assert_user_error(result, "beats.csv: --nan-policy ffill fills from the row before, and sequences are independent",
                      "use --nan-policy interpolate")


def test_a_sequences_model_reads_its_own_file_by_its_timestep_names_and_arrays_by_position(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"t{i}" for i in range(12)]
    shapes = np.sin(np.arange(12) / 2) * np.linspace(0.5, 1.5, 40)[:, None]  # not symmetric in time
    beats = pd.DataFrame(shapes + 0.05 * rng.normal(size=(40, 12)), columns=names)
    beats["class"] = (np.arange(40) % 10 == 9).astype(int)
    beats.to_csv(tmp_path / "beats.csv", index=False)
    assert run("fit", tmp_path / "beats.csv", "-o", tmp_path / "m", "--layout", "sequences", "--label-column", "class",
               *TINY).exit_code == 0
    # its own file: the label column is the labels (it was "looks like labels" with a --label-column score lacks)
    result = run("score", tmp_path / "m", tmp_path / "beats.csv", "-o", tmp_path / "s.csv")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "s.csv")
    assert scores["label"].tolist() == beats["class"].tolist()
    for command in ("encode", "reconstruct"):
        assert run(command, tmp_path / "m", tmp_path / "beats.csv", "-o", tmp_path / f"{command}.csv").exit_code == 0
    # timestep columns in another order are read by name, not by position
    beats[names[::-1] + ["class"]].to_csv(tmp_path / "reversed.csv", index=False)
    assert run("score", tmp_path / "m", tmp_path / "reversed.csv", "-o", tmp_path / "r.csv").exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "r.csv"), scores)
    beats.rename(columns={"t3": "x3"}).to_csv(tmp_path / "renamed.csv", index=False)
    assert_user_error(run("score", tmp_path / "m", tmp_path / "renamed.csv", "-o", tmp_path / "n.csv"),
                      "no column 't3'")
    # an array file has no names: its columns are the timesteps in order, whatever the model's selection
    np.save(tmp_path / "beats.npy", beats[names].to_numpy())
    assert run("fit", tmp_path / "beats.csv", "-o", tmp_path / "mc", "--layout", "sequences", "--columns", "t*",
               "--label-column", "class", *TINY).exit_code == 0
    for model in ("m", "mc"):
        for data in ("beats.csv", "beats.npy"):
            result = run("score", tmp_path / model, tmp_path / data, "-o", tmp_path / f"{model}_{data}.csv")
            assert result.exit_code == 0, result.output
        np.testing.assert_allclose(pd.read_csv(tmp_path / f"{model}_beats.npy.csv")["score"],
                                   pd.read_csv(tmp_path / f"{model}_beats.csv.csv")["score"], rtol=1e-5)
    # a model fitted without labels reads a 0/1 column named like labels as the labels, as for a series
    assert run("fit", tmp_path / "beats.csv", "-o", tmp_path / "unlabelled", "--layout", "sequences", "--columns",
               "t*", *TINY).exit_code == 0
    result = run("score", tmp_path / "unlabelled", tmp_path / "beats.csv", "-o", tmp_path / "u.csv")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "u.csv")["label"].tolist() == beats["class"].tolist()
    # a model fitted on the .npy reads the table too (its one feature was f0, a table's is "value")
    assert run("fit", tmp_path / "beats.npy", "-o", tmp_path / "from_npy", "--layout", "sequences", *TINY).exit_code == 0
    result = run("score", tmp_path / "from_npy", tmp_path / "beats.csv", "-o", tmp_path / "npy_on_csv.csv")
    assert result.exit_code == 0, result.output
    # --columns at scoring time replaces the names the model was fitted on
    result = run("score", tmp_path / "m", tmp_path / "renamed.csv", "-o", tmp_path / "n.csv", "--columns",
                 ",".join(["t0", "t1", "t2", "x3"] + names[4:]))
    assert result.exit_code == 0, result.output


def test_evaluating_sequences_speaks_of_sequences_not_rows_or_alarm_rules(tmp_path):
    rng = np.random.default_rng(0)
    beats = pd.DataFrame(np.sin(np.arange(12) / 2) + 0.05 * rng.normal(size=(60, 12)),
                         columns=[f"t{i}" for i in range(12)])
    beats["label"] = 0
    beats.loc[50:, "label"] = 1
    beats.loc[50:, "t0":"t11"] += 2.0
    beats.to_csv(tmp_path / "beats.csv", index=False)
    assert run("fit", tmp_path / "beats.csv", "-o", tmp_path / "m", "--layout", "sequences", "--columns", "t*",
               "--label-column", "label", *TINY).exit_code == 0
    result = run("evaluate", tmp_path / "m", tmp_path / "beats.csv", "--label-column", "label", "-o", tmp_path / "r",
                 "--threshold", "best-f1")
    assert result.exit_code == 0, result.output
    report = (tmp_path / "r" / "metrics.json").read_text()
    assert "sequences above it" in report and "alarm rules" not in report


def test_output_that_cannot_be_written_fails_in_one_line_before_or_without_leaving_half(workspace, tmp_path,
                                                                                        monkeypatch):
    import errno

    import lstmae.data.io as io

    (tmp_path / "locked").mkdir()
    monkeypatch.setattr(io.os, "access", lambda path, mode: Path(path).name != "locked")
    result = run("fit", workspace / "train.csv", "-o", tmp_path / "locked" / "m", "--window", 10, *TINY)
    assert_user_error(result, "locked/m: folder", "is not writable")
    monkeypatch.undo()
    real_to_csv = pd.DataFrame.to_csv

    def events_disk_full(frame, path, *args, **kwargs):
        if "ev.csv" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_to_csv(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", events_disk_full)
    result = run("score", workspace / "model", workspace / "test.csv", "-o", tmp_path / "s.csv",
                 "--events", tmp_path / "ev.csv")
    assert_user_error(result, "ev.csv: could not be written (No space left on device)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked"]  # no scores without their events


def test_evaluate_ranks_rows_that_overflowed_highest_as_score_does(workspace, tmp_path):
    result = run("fit", workspace / "train.csv", "-o", tmp_path / "mse", "--window", 10, "--time-column", "timestamp",
                 "--label-column", "label", "--error-model", "mse", *TINY)
    assert result.exit_code == 0, result.output
    frame = sensor_frame(seed=1)
    frame.loc[100, "temp"] = 1e20  # its squared error overflows float32: scored inf
    frame.to_csv(tmp_path / "huge.csv", index=False)
    scored = run("score", tmp_path / "mse", tmp_path / "huge.csv", "-o", tmp_path / "s.csv")
    assert scored.exit_code == 0 and pd.read_csv(tmp_path / "s.csv")["overflow"].any(), scored.output
    result = run("evaluate", tmp_path / "mse", tmp_path / "huge.csv", "--label-column", "label", "-o", tmp_path / "r")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert any("scored inf" in note and "rank above every other row" in note for note in metrics["notes"])
    assert metrics["roc_auc"] is not None


def test_an_output_inside_the_model_folder_is_refused_and_the_model_kept(workspace, tmp_path):
    import shutil

    shutil.copytree(workspace / "model", tmp_path / "m")
    before = {f.name: f.read_bytes() for f in (tmp_path / "m").iterdir()}
    for args in (["score", tmp_path / "m", workspace / "test.csv", "-o", tmp_path / "m" / "config.csv"],
                 ["encode", tmp_path / "m", workspace / "test.csv", "-o", tmp_path / "m" / "x.csv"],
                 ["evaluate", tmp_path / "m", workspace / "test.csv", "--label-column", "label", "-o",
                  tmp_path / "m" / "report"]):
        assert_user_error(run(*args, "--overwrite"), "is inside the model folder", "write it elsewhere")
    # the model folder itself was said to be "inside the model folder m"
    assert_user_error(run("evaluate", tmp_path / "m", workspace / "test.csv", "--label-column", "label", "-o",
                          tmp_path / "m", "--overwrite"), "is the model folder this command reads")
    assert {f.name: f.read_bytes() for f in (tmp_path / "m").iterdir()} == before


def test_an_array_file_is_scored_by_position_for_a_model_with_named_features(workspace, tmp_path):
    # .npy is a documented input, but a model fitted on named columns refused it: "missing 'temp', 'flow';
    # unexpected 'f0', 'f1'", and --columns f0,f1 could not help
    from lstmae import load

    features = list(load(workspace / "model").feature_names_in_)
    frame = pd.read_csv(workspace / "test.csv")
    np.save(tmp_path / "test.npy", frame[features].to_numpy())
    result = run("score", workspace / "model", tmp_path / "test.npy", "-o", tmp_path / "from_array.csv")
    assert result.exit_code == 0, result.output
    assert (f"the model's features ({', '.join(features)}) are taken from its {len(features)} columns, in that order"
            in " ".join(result.output.split()))
    from_table = run("score", workspace / "model", workspace / "test.csv", "-o", tmp_path / "from_table.csv")
    assert from_table.exit_code == 0, from_table.output
    got, want = pd.read_csv(tmp_path / "from_array.csv"), pd.read_csv(tmp_path / "from_table.csv")
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-6)
    np.save(tmp_path / "wide.npy", np.ones((60, len(features) + 1)))
    wide = run("score", workspace / "model", tmp_path / "wide.npy", "-o", tmp_path / "wide.csv")
    assert wide.exit_code == 2 and "Traceback" not in wide.output and not (tmp_path / "wide.csv").exists()
    assert (f"wide.npy: an array file's columns have no names, and it has {len(features) + 1} where the model has "
            f"{len(features)} features ({', '.join(features)}); give those columns, in that order") in wide.output


def test_evaluate_in_python_names_what_to_pass_for_a_frame_or_an_array(workspace):
    # it raised AttributeError: 'DataFrame' object has no attribute 'labels'
    from lstmae.estimator import load
    from lstmae.evaluation.evaluate import evaluate
    from lstmae.exceptions import DataError

    model = load(workspace / "model")
    frame = pd.read_csv(workspace / "test.csv")
    for data in (frame, frame.to_numpy()):
        with pytest.raises(DataError, match=r"evaluate takes data read for the model, got a (DataFrame|ndarray); "
                                            r"read the file with lstmae.series.read_for_model\(model"):
            evaluate(model, data)


def test_ctrl_c_before_the_first_epoch_ends_says_the_seeded_weights_were_kept(workspace, tmp_path, monkeypatch):
    # it said "(0 epochs, best 0) (interrupted: kept the best epoch so far)" where no epoch had been kept
    import torch

    def interrupted(*args, **kwargs):  # Ctrl-C at the first training step
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.optim.Adam, "step", interrupted)
    result = run("fit", workspace / "train.csv", "-o", tmp_path / "m", "--window", 10, "--time-column", "timestamp",
                 "--label-column", "label", *TINY)
    assert result.exit_code == 0, result.output
    assert "(0 epochs, best 0) (interrupted before the first epoch ended: kept the seeded weights, as --epochs 0)" \
        in " ".join(result.output.split())


def test_evaluate_reads_labels_without_label_column_from_an_npz_or_the_model_and_says_when_there_are_none(
        workspace, tmp_path):
    # --label-column was required, and an .npz refused it: a labelled array file could not be evaluated at all
    from lstmae.estimator import load

    features = list(load(workspace / "model").feature_names_in_)
    frame = pd.read_csv(workspace / "test.csv")
    np.savez(tmp_path / "test.npz", X=frame[features].to_numpy(), y=frame["label"].to_numpy())
    for data in (tmp_path / "test.npz", workspace / "test.csv"):  # the array's y; the model's own label column
        result = run("evaluate", workspace / "model", data, "-o", tmp_path / f"r_{data.suffix[1:]}")
        assert result.exit_code == 0, result.output
    from_array = json.loads((tmp_path / "r_npz" / "metrics.json").read_text())
    from_table = json.loads((tmp_path / "r_csv" / "metrics.json").read_text())
    assert from_array["n_events"] == from_table["n_events"] > 0
    np.save(tmp_path / "unlabelled.npy", frame[features].to_numpy())
    result = run("evaluate", workspace / "model", tmp_path / "unlabelled.npy", "-o", tmp_path / "r3")
    assert result.exit_code == 2 and result.output.splitlines()[-1].endswith(
        "unlabelled.npy: no labels; name the 0/1 label column with --label-column")  # after the array's warnings
    assert not (tmp_path / "r3").exists()
