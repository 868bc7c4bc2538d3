"""Row threshold rules compared on the same networks: alarm goals, storms and event F1 per family and seed.

    python benchmarks/detection/threshold_rules.py [--rules "mad:8;telemanom:2,mad=8"]
                                                   [--datasets msl,keogh,nab,ucr] [--seeds 0,1,2,3]
                                                   [--cache DIR] [--out benchmarks/results/threshold_rules]

A rule may name alarm rules after a "+" (`mad:8+cooldown=150`, `mad:8+min_length=5,merge_gap=10`, the study's
names): those replace the defaults (`lstmae.scoring.DEFAULT_ALARM`) for that rule. `+smooth=W` smooths the row
scores first, each the mean of the W rows centred on it, on the held-out and the test rows alike, as the estimator's
`smooth=W` does (`mad:8,quantile=1+smooth=50`).

Each series is trained as `detection_study.py` trains lstmae at its defaults (the networks and the
per-feature error cache of `error_scales.py`, shared with it: a rerun only scores) and scored with its
0/1 features kept as context or scored (`--binary-features`, default lstmae's). Each rule of
`--rules` (separated by ";", as a spec holds commas) is fitted on the held-out rows' scores, or for an
adaptive rule started from them and run over the test rows in order, then the default alarm rules,
as `lstmae.series` scores. Per family and seed: mean event recall and F1 over the series with
anomalies, the median alarm rate / labelled fraction, whether the issue's alarm goals hold (median
rate <= 2x, mean recall >= 0.6), and the storms (series alarmed on more than a third of their rows,
`lstmae.series.STORM_SHARE`, of all the family's series). A rule that cannot be fitted on a series
(too few held-out rows) raises no alarm there and is counted under "unfitted". VUS-PR does not
depend on the threshold, only on the smoothing. Writes threshold_rules.json and .md to --out.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for detection_study
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for error_scales

from command_line import command_line  # noqa: E402
import detection_study as study  # noqa: E402
import error_scales  # noqa: E402
from lstmae.config import BINARY_FEATURE_CHOICES, DEFAULTS  # noqa: E402
from lstmae.data.validation import check_integer  # noqa: E402
from lstmae.scoring import check_alarm_options, parse_threshold  # noqa: E402
from lstmae.series import STORM_SHARE  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", default=f"{study.ROW_THRESHOLD_RULE};telemanom:2,mad=8",
                        help='threshold specs separated by ";", each with alarm rules after a "+" if any '
                             '("mad:8+cooldown=150"; default: lstmae\'s row rule and telemanom:2,mad=8)')
    parser.add_argument("--binary-features", default=DEFAULTS["binary_features"], choices=BINARY_FEATURE_CHOICES,
                        help="0/1 features scored or kept as context (default: lstmae's)")
    error_scales.add_run_arguments(parser, "msl,keogh,nab,ucr", "0,1,2,3", "threshold_rules")
    args = parser.parse_args(argv)
    rules = {name: (rule, alarm, smooth) for name, rule, alarm, smooth in map(parse_rule, args.rules.split(";"))}
    started = time.perf_counter()
    families, seeds, jobs, trained = error_scales.run_jobs(args)
    results = {rule: {family: {seed: {} for seed in seeds} for family in families} for rule in rules}
    for task, seed, path in jobs:
        cached = dict(np.load(path))
        scorer = error_scales.task_scorer(cached, task, args.binary_features)
        for rule, result in zip(rules, error_scales.score_rules(cached, list(rules.values()), scorer)):
            results[rule][task.family][seed][task.name] = result
    report = {"command": command_line(__file__, argv),
              "binary_features": args.binary_features, "seconds": round(time.perf_counter() - started, 1),
              "networks_trained": trained,
              "networks_from_cache": len(jobs) - trained,
              "summary": {rule: {family: {seed: summary(series) for seed, series in by_seed.items()}
                                 for family, by_seed in by_family.items()} for rule, by_family in results.items()},
              "results": results}
    error_scales.write_results(args.out, "threshold_rules", report, markdown(report))
    return 0


def parse_rule(text: str) -> tuple:
    """"SPEC[+NAME=ROWS,...]" -> (its name, the parsed threshold rule, the alarm options it sets, the rows its
    scores are smoothed over), checked; the name is the spec as lstmae writes it, then the options
    ("mad:8+cooldown=150"). `smooth=W` is not an alarm option: each row's score becomes the mean of the W rows
    centred on it (`lstmae.scoring.smooth_points`) before the rule is fitted (default 1, not smoothed). A bad rule exits
    with one line."""
    spec, _, options = text.strip().partition("+")
    try:
        alarm = {name.strip(): int(value) for name, _, value in
                 (option.partition("=") for option in options.split(",") if option)}
        smooth = check_integer(alarm.pop("smooth", 1), "smooth")
        rule = parse_threshold(spec)
        check_alarm_options(alarm)
    except ValueError as error:  # lstmae's DataError is one
        raise SystemExit(f"rule {text!r}: {error} (alarm options: NAME=ROWS, e.g. mad:8+cooldown=150; "
                         "smooth=ROWS smooths the scores)") from None
    options = {**alarm, **({"smooth": smooth} if smooth > 1 else {})}
    name = str(rule) + ("+" + ",".join(f"{key}={value}" for key, value in options.items()) if options else "")
    return name, rule, alarm, smooth


def summary(series: dict) -> dict:
    """A family's `error_scales.summary` at one seed, whether it meets the alarm goals, its storms (of all its
    series) and the series its rule could not be fitted on."""
    means = error_scales.summary(list(series.values()))
    return {**means, "goals_met": study.meets_alarm_goals(means),
            "storms": sum(row["alarm_rate"] > STORM_SHARE for row in series.values()),
            "unfitted": sum(row["unfitted"] for row in series.values()), "n_series": len(series)}


def markdown(report: dict) -> str:
    rules = list(report["summary"])
    lines = ["## Row threshold rules on the same networks", "", f"`{report['command']}`", "",
             "Each cell: mean event recall / mean event F1 / median alarm rate (x labelled) / storms; "
             f"**bold**: the alarm goals hold (rate <= {study.ALARM_RATIO_GOAL:g}x, recall >= "
             f"{study.EVENT_RECALL_GOAL:g}).", "",
             "| family | seed | " + " | ".join(f"`{rule}`" for rule in rules) + " |",
             "|---|---|" + "---|" * len(rules)]
    first = report["summary"][rules[0]]
    for family, by_seed in first.items():
        for seed in by_seed:
            cells = []
            for rule in rules:
                row = report["summary"][rule][family][seed]
                text = (f"{row['event_recall']:.2f} / {row['event_f1']:.3f} / {row['alarm_ratio']:.2f}x / "
                        f"{row['storms']}" + (f" ({row['unfitted']} unfitted)" if row["unfitted"] else ""))
                cells.append(f"**{text}**" if row["goals_met"] else text)
            lines.append(f"| {study.FAMILY_TITLES[family]} ({by_seed[seed]['n_series']}) | {seed} | "
                         + " | ".join(cells) + " |")
    lines += ["", "Per seed, over the families: goals met / storms / mean of the families' mean event F1:", "",
              "| seed | " + " | ".join(f"`{rule}`" for rule in rules) + " |", "|---|" + "---|" * len(rules)]
    for seed in next(iter(first.values())):
        cells = []
        for rule in rules:
            rows = [report["summary"][rule][family][seed] for family in first]
            cells.append(f"{sum(row['goals_met'] for row in rows)}/{len(rows)} / {sum(row['storms'] for row in rows)}"
                         f" / {np.mean([row['event_f1'] for row in rows]):.3f}")
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    seeds = list(next(iter(first.values())))
    lines += ["", f"Over the {len(seeds)} seeds, per rule: the family-seeds meeting the alarm goals, the mean over the "
              "seeds of each family's mean event F1, mean event recall and mean VUS-PR (and of the families' means), "
              "the storms per seed (fewest-most), and the series that storm at every seed:", "",
              "| rule | goals met | event F1 | event recall | VUS-PR | storms per seed | storm at every seed |",
              "|---|---|---|---|---|---|---|"]

    def over_seeds(by_family: dict, key: str) -> str:
        means = {family: np.mean([row[key] for row in by_seed.values()]) for family, by_seed in by_family.items()}
        return (f"{np.mean(list(means.values())):.3f} ("
                + ", ".join(f"{family} {value:.3f}" for family, value in means.items()) + ")")

    for rule in rules:
        by_family = report["summary"][rule]
        goals = {family: sum(row["goals_met"] for row in by_seed.values()) for family, by_seed in by_family.items()}
        storms = [sum(by_family[family][seed]["storms"] for family in by_family) for seed in seeds]
        always = [f"{family}/{name}" for family, by_seed in report["results"][rule].items()
                  for name in next(iter(by_seed.values()))
                  if all(series[name]["alarm_rate"] > STORM_SHARE for series in by_seed.values())]
        lines.append(f"| `{rule}` | {sum(goals.values())}/{len(seeds) * len(goals)} ("
                     + ", ".join(f"{family} {count}" for family, count in goals.items()) + ") | "
                     + f"{over_seeds(by_family, 'event_f1')} | {over_seeds(by_family, 'event_recall')} | "
                     + f"{over_seeds(by_family, 'vus_pr')} | "
                     + f"{min(storms)}-{max(storms)} | {', '.join(always) or 'none'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
