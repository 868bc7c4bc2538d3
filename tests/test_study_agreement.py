"""benchmarks/detection/study_agreement.py: a study run's lstmae figures against threshold_rules.py's, per series."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from detection import study_agreement  # noqa: E402

RULE = "mad:8,quantile=1"
FIGURES = {"vus_pr": 0.5, "alarm_rate": 0.1, "event_recall": 1.0, "event_f1": 0.8}
CLEAN = {"vus_pr": None, "alarm_rate": 0.0, "event_recall": None, "event_f1": None}


def write_files(tmp_path, study_figures: dict, seed: int = 1, name: str = "run"):
    """A study run at `seed` with lstmae's figures per NAB series, and a rules file with FIGURES / CLEAN there."""
    run = tmp_path / name
    run.mkdir()
    series = [{"name": name, "detectors": {"lstmae": figures, "pca": {"vus_pr": 0.0}}}
              for name, figures in study_figures.items()]
    (run / "detection_results.json").write_text(json.dumps(
        {"settings": {"seed": seed}, "datasets": {"nab": {"series": series, "means": {}}}}))
    rules = tmp_path / "threshold_rules.json"
    cached = {"a": FIGURES, "clean": CLEAN, "only_in_rules": FIGURES}
    other_seed = {"a": {**FIGURES, "vus_pr": 0.7}, "clean": CLEAN}
    rules.write_text(json.dumps({"results": {RULE: {"nab": {"1": cached, "2": other_seed}, "msl": {"1": {}}}}}))
    return run, rules


def test_a_run_equal_to_the_rules_series_by_series_passes_and_counts_the_series_in_both(tmp_path, capsys):
    run, rules = write_files(tmp_path, {"a": {**FIGURES, "roc_auc": 0.9}, "clean": dict(CLEAN)})
    assert study_agreement.main([str(run), "--rules-results", str(rules), "--rule", RULE]) == 0
    out = capsys.readouterr().out
    # the means are over the series with anomalies: the clean series has no VUS-PR or event F1
    assert "| run | 1 | nab | 2 | 0.0e+00 | 0.0e+00 | 0.0e+00 | 0.0e+00 | 0.500 / 0.500 | 0.800 / 0.800 |" in out
    assert "| 0.500-0.700 (2 seeds) |" in out  # the rules file's family VUS-PR at each of its seeds
    assert "2 series compared; 0 differ" in out


def test_a_figure_that_differs_fails_and_names_the_series_and_figure(tmp_path, capsys):
    run, rules = write_files(tmp_path, {"a": {**FIGURES, "event_f1": 0.7}, "clean": {**CLEAN, "event_recall": 0.0}})
    assert study_agreement.main([str(run), "--rules-results", str(rules), "--rule", RULE]) == 1
    out = capsys.readouterr().out
    assert "| 2 | 0.0e+00 | 0.0e+00 | inf | 1.0e-01 | 0.500 / 0.500 | 0.700 / 0.800 |" in out  # recall, then F1
    assert "2 series compared; 2 differ" in out
    assert "- run seed 1 nab/a: event_f1 0.7 against 0.8" in out
    assert "- run seed 1 nab/clean: event_recall 0.0 against None" in out


def test_a_run_at_a_seed_the_rules_file_lacks_compares_nothing_and_fails(tmp_path, capsys):
    run, rules = write_files(tmp_path, {"a": FIGURES}, seed=7)
    assert study_agreement.main([str(run), "--rules-results", str(rules), "--rule", RULE]) == 1
    assert "0 series compared" in capsys.readouterr().out


def test_an_unknown_rule_or_an_unreadable_file_exits_with_one_line(tmp_path):
    run, rules = write_files(tmp_path, {"a": FIGURES})
    with pytest.raises(SystemExit, match=r"no rule 'mad:9'; it has mad:8,quantile=1"):
        study_agreement.main([str(run), "--rules-results", str(rules), "--rule", "mad:9"])
    with pytest.raises(SystemExit, match=r"missing[/\\]detection_results.json not found"):
        study_agreement.main([str(tmp_path / "missing"), "--rules-results", str(rules), "--rule", RULE])
    with pytest.raises(SystemExit, match=r"rules.json: cannot read it as JSON"):
        study_agreement.main([str(run), "--rules-results", str(tmp_path / "rules.json"), "--rule", RULE])


def test_joined_runs_are_compared_with_the_later_run_s_family(tmp_path, capsys):
    before, rules = write_files(tmp_path, {"a": {**FIGURES, "vus_pr": 0.1}}, name="before")
    after, _ = write_files(tmp_path, {"a": FIGURES}, name="after")
    assert study_agreement.main([f"{before}+{after}", "--rules-results", str(rules), "--rule", RULE]) == 0
    assert "| before+after | 1 | nab | 1 |" in capsys.readouterr().out


def write_smoothing(tmp_path, lstmae_at_1: float) -> Path:
    """A score_smoothing.py results file at seed 1: lstmae's and PCA's VUS-PR of NAB's series "a" at W = 1 and 100."""
    path = tmp_path / "score_smoothing.json"
    path.write_text(json.dumps({"series": {"nab": {"1": {"a": {"lstmae": {"1": lstmae_at_1, "100": 0.9},
                                                               "pca": {"1": 0.0, "100": 0.1}}}}}}))
    return path


def test_smoothing_results_at_one_row_must_be_the_run_s_vus_pr_for_every_detector(tmp_path, capsys):
    run, _ = write_files(tmp_path, {"a": FIGURES, "clean": dict(CLEAN)})
    assert study_agreement.main([str(run), "--smoothing-results", str(write_smoothing(tmp_path, 0.5))]) == 0
    out = capsys.readouterr().out
    assert "| run | 1 | nab | lstmae | 1 | 0.0e+00 |" in out and "| run | 1 | nab | pca | 1 | 0.0e+00 |" in out
    assert "2 detector-series compared; 0 differ" in out
    assert study_agreement.main([str(run), "--smoothing-results", str(write_smoothing(tmp_path, 0.6))]) == 1
    out = capsys.readouterr().out
    assert "| run | 1 | nab | lstmae | 1 | 1.0e-01 |" in out and "- run seed 1 nab/a lstmae" in out
    run_7, _ = write_files(tmp_path, {"a": FIGURES}, seed=7, name="run7")  # a seed the file lacks: nothing compared
    assert study_agreement.main([str(run_7), "--smoothing-results", str(write_smoothing(tmp_path, 0.5))]) == 1
    assert "0 detector-series compared" in capsys.readouterr().out
