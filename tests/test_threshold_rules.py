"""benchmarks/detection/threshold_rules.py: row threshold rules on the same cached networks."""
import json
import re
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from conftest import cached_networks_of, toy_cache  # noqa: E402
from detection import error_scales, threshold_rules  # noqa: E402
from lstmae.scoring import parse_threshold  # noqa: E402

WINDOW = 10


def cached_errors(shift: float = 0.0, held_rows: int = 209, seed: int = 0, burst: int = 20) -> dict:
    """What error_scales caches for one series, made up: per-feature window errors (N, 2) of the held-out
    rows and of 1,500 test rows (the `burst` rows from 1200 labelled, where the errors burst); `shift` moves the test
    errors after the first 100 rows for good."""
    rng = np.random.default_rng(seed)
    n_test = 1500
    labels = np.zeros(n_test, np.int8)
    labels[1200:1200 + burst] = 1
    test = rng.gamma(2.0, 0.1, (n_test - WINDOW + 1, 2))
    test[100:] += shift
    test[1200:1200 + burst - WINDOW + 1] += 20.0  # the windows inside the labelled rows
    held = rng.gamma(2.0, 0.1, (held_rows - WINDOW + 1, 2))
    return toy_cache(labels, test, held, WINDOW)


def score(cached: dict, rule: str) -> dict:
    return error_scales.score(cached, parse_threshold(rule))


def test_a_series_is_scored_with_static_and_adaptive_rules_and_an_unfittable_rule_raises_no_alarm():
    cached = cached_errors()
    static = score(cached, "mad:8")
    assert not static["unfitted"]
    assert static["event_recall"] == 1.0 and static["alarm_rate"] < 0.1
    following = score(cached, "telemanom:2,mad=8")  # 209 held-out rows: the floor carries the start
    assert following["event_recall"] == 1.0 and not following["unfitted"]
    unfitted = score(cached, "dspot:1e-3")  # DSPOT needs depth + 110 = 210 held-out rows
    assert unfitted["unfitted"] and unfitted["alarm_rate"] == 0.0 and unfitted["event_recall"] == 0.0
    assert unfitted["anomaly_fraction"] == pytest.approx(20 / 1490)
    assert unfitted["vus_pr"] == static["vus_pr"]  # the scores are ranked all the same


def test_a_shifted_series_storms_under_the_static_rule_and_not_under_the_one_that_follows_it():
    # a 40-row burst: under the rule that follows the shifted level it is flagged for longer than the on-delay
    series = {"calm": cached_errors(burst=40), "shifted": cached_errors(shift=3.0, seed=1, burst=40)}
    results = {rule: {name: score(cached, rule) for name, cached in series.items()}
               for rule in ("mad:8", "telemanom:2,mad=8")}
    static, following = (threshold_rules.summary(results[rule]) for rule in results)
    assert static["storms"] == 1 and following["storms"] == 0
    assert results["mad:8"]["shifted"]["alarm_rate"] > 0.9
    assert static["alarm_ratio"] > 2 and not static["goals_met"]  # the median of 0.8x and 35x the labelled rows
    assert following["alarm_ratio"] < static["alarm_ratio"] / 5 and following["event_recall"] == 1.0
    assert static["n_series"] == 2 and static["unfitted"] == 0


def run_command(tmp_path, monkeypatch, shifts: dict, rules: str = "mad:8;telemanom:2,mad=8") -> tuple[dict, str]:
    """threshold_rules.py's report and markdown for one NAB series "toy" at seeds 0 and 1, its test part shifted
    by `shifts[seed]`."""
    def make(seed):
        train = np.random.default_rng(seed).normal(size=(300, 2))  # no 0/1 feature: context scores as scored
        return SimpleNamespace(family="nab", name="toy", train=train), cached_errors(shift=shifts[seed], seed=seed)

    cached_networks_of(monkeypatch, threshold_rules.error_scales, tmp_path, make)
    out = tmp_path / "out"
    assert threshold_rules.main(["--rules", rules, "--datasets", "nab", "--seeds", "0,1",
                                 "--out", str(out)]) == 0
    return json.loads((out / "threshold_rules.json").read_text()), (out / "threshold_rules.md").read_text()


def test_the_command_writes_each_rule_per_family_and_seed(tmp_path, monkeypatch):
    report, text = run_command(tmp_path, monkeypatch, {0: 0.0, 1: 3.0})
    assert report["binary_features"] == "context"  # lstmae's default
    assert list(report["summary"]) == ["mad:8", "telemanom:2,mad=8"]
    assert shlex.split(report["command"])[2:4] == ["--rules", "mad:8;telemanom:2,mad=8"]  # quoted for a shell
    assert report["summary"]["mad:8"]["nab"]["1"]["storms"] == 1
    assert report["summary"]["telemanom:2,mad=8"]["nab"]["1"]["storms"] == 0
    assert "| NAB (1) | 0 | **1.00 / " in text  # the goals hold: bold
    assert "| 1 | 0/1 / 1 / " in text and "| `mad:8` | `telemanom:2,mad=8` |" in text
    # over the seeds: the goals at seed 0 only, the storm at seed 1 only
    vus = np.mean([report["summary"]["mad:8"]["nab"][seed]["vus_pr"] for seed in ("0", "1")])
    assert f"| `mad:8` | 1/2 (nab 1) | 1.000 (nab 1.000) | 1.000 (nab 1.000) | {vus:.3f} (nab {vus:.3f}) | 0-1 | none |" in text


def test_over_the_seeds_a_series_that_storms_at_every_seed_is_named(tmp_path, monkeypatch):
    report, text = run_command(tmp_path, monkeypatch, {0: 3.0, 1: 3.0})
    assert [report["summary"]["mad:8"]["nab"][seed]["storms"] for seed in ("0", "1")] == [1, 1]
    assert "| 1-1 | nab/toy |" in text
    assert "| `telemanom:2,mad=8` | " in text and "| 0-0 | none |" in text


def test_a_rule_names_its_alarm_rules_after_a_plus_and_a_bad_one_exits_with_one_line():
    assert threshold_rules.parse_rule("mad:8") == ("mad:8", parse_threshold("mad:8"), {}, 1)
    assert threshold_rules.parse_rule(" mad:8+cooldown=150 ") == ("mad:8+cooldown=150", parse_threshold("mad:8"),
                                                                 {"cooldown": 150}, 1)
    assert threshold_rules.parse_rule("telemanom:2,mad=8+min_length=5,merge_gap=10") == (
        "telemanom:2,mad=8+min_length=5,merge_gap=10", parse_threshold("telemanom:2,mad=8"),
        {"min_length": 5, "merge_gap": 10}, 1)
    assert threshold_rules.parse_rule("mad:8+smooth=50,cooldown=10") == (
        "mad:8+cooldown=10,smooth=50", parse_threshold("mad:8"), {"cooldown": 10}, 50)
    assert threshold_rules.parse_rule("mad:8+smooth=1") == ("mad:8", parse_threshold("mad:8"), {}, 1)
    for text, named in (("mad:8+cooldown=x", "invalid literal"), ("mad:8+colddown=1", "unknown alarm option 'colddown'"),
                        ("mad:8+cooldown=-1", "cooldown must be an integer >= 0"), ("mud:8", "unknown threshold"),
                        ("mad:8+smooth=0", "smooth must be an integer >= 1, got 0")):
        with pytest.raises(SystemExit, match=re.escape(f"rule '{text}': {named}")):
            threshold_rules.parse_rule(text)


def test_a_cool_down_silences_the_event_that_follows_a_false_alarm():
    cached = cached_errors()
    cached["test"][900:911] += 20.0  # a false alarm 300 rows before the labelled burst at 1200
    default = error_scales.score(cached, parse_threshold("mad:8"))
    assert default["event_recall"] == 1.0 and default["event_f1"] == pytest.approx(2 / 3)  # 1 of 2 alarms right
    short = error_scales.score(cached, parse_threshold("mad:8"), alarm={"cooldown": 200})
    assert short == default  # the burst comes after the cool-down
    long = error_scales.score(cached, parse_threshold("mad:8"), alarm={"cooldown": 400})
    assert long["event_recall"] == 0.0 and long["alarm_rate"] < default["alarm_rate"]


def test_the_command_scores_a_rule_with_its_own_alarm_rules(tmp_path, monkeypatch):
    report, text = run_command(tmp_path, monkeypatch, {0: 0.0, 1: 3.0}, rules="mad:8;mad:8+min_length=100")
    assert list(report["summary"]) == ["mad:8", "mad:8+min_length=100"]
    burst, patient = (report["results"][rule]["nab"]["0"]["toy"] for rule in report["summary"])
    assert burst["event_recall"] == 1.0 and patient["event_recall"] == 0.0  # a 20-row burst is not 100 rows long
    assert report["summary"]["mad:8+min_length=100"]["nab"]["1"]["storms"] == 1  # the storm lasts
    assert "| `mad:8+min_length=100` | 0/2 (nab 0) | 0.500 (nab 0.500) | 0.500 (nab 0.500) | " in text
    assert "| 0-1 | none |" in text


def test_scoring_several_rules_at_once_gives_each_rule_s_own_score():
    cached = cached_errors(shift=3.0, seed=1)
    rules = [(parse_threshold("mad:8"), None), (parse_threshold("telemanom:2,mad=8"), None),
             (parse_threshold("mad:8"), {"min_length": 100})]
    together = error_scales.score_rules(cached, rules)
    assert together == [error_scales.score(cached, rule, alarm=alarm) for rule, alarm in rules]
    assert together[0]["alarm_rate"] > together[1]["alarm_rate"]  # the rules differ; the VUS-PR, computed once, not
    assert len({result["vus_pr"] for result in together}) == 1


def test_smoothed_scores_widen_a_short_burst_s_alarm_and_move_the_vus_pr_once_per_width():
    cached = cached_errors()
    rules = [(parse_threshold("mad:8"), None), (parse_threshold("mad:8"), None, 1), (parse_threshold("mad:8"), None, 60),
             (parse_threshold("mad:8"), {"cooldown": 10}, 60)]
    plain, unsmoothed, smoothed, smoothed_again = error_scales.score_rules(cached, rules)
    assert unsmoothed == plain  # smooth=1 leaves the scores as they are
    assert smoothed["vus_pr"] != plain["vus_pr"] and smoothed_again["vus_pr"] == smoothed["vus_pr"]
    assert smoothed["event_recall"] == 1.0
    assert smoothed["alarm_rate"] > plain["alarm_rate"]  # a 20-row burst's mean spreads over 60 rows each side
