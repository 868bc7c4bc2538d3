"""Do a study run's lstmae figures equal threshold_rules.py's, series by series, at the same seed?

    python benchmarks/detection/study_agreement.py RUN_DIR[+RUN_DIR] [RUN_DIR ...]
        [--rules-results benchmarks/results/threshold_rules_context/threshold_rules.json] [--rule RULE]

The defaults are chosen with `threshold_rules.py`, which scores the networks of `error_scales.py`'s cache; those are
trained as `detection_study.py` trains lstmae at its defaults, so on the CPU that trained the cache they are the same
networks (on another CPU the same seed trains others). This checks it: for each run (its seed from its settings;
`A+B` joins the families of runs of one seed, the later run's family winning, as the study's --compare does) and
each series in both files, lstmae's VUS-PR, alarm rate, event recall and event F1 in the run against `--rule`'s
(default: lstmae's row rule at the default alarm rules) in the threshold rules results. Prints, per run and family,
the series compared, the largest difference of each figure, both sides' mean VUS-PR and event F1 (over the
series with anomalies) and the lowest-highest of the rules file's mean VUS-PR over all its seeds (how far a seed
moves it there), then the series whose figures differ. Trains nothing. Exits 1 when a figure differs by more
than 1e-9 or no series is in both.

    python benchmarks/detection/study_agreement.py RUN_DIR --smoothing-results FILE

instead checks a `score_smoothing.py` results file: every detector's VUS-PR at W = 1 (its scores as they are)
against the run's, series by series, as a table of the largest difference per family and detector.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for detection_study

from detection_study import ROW_THRESHOLD_RULE, read_joined_run  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIGURES = ("vus_pr", "alarm_rate", "event_recall", "event_f1")
TOLERANCE = 1e-9


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="study result folders (each with detection_results.json), "
                                                 "A+B for the families of two runs of one seed")
    parser.add_argument("--rules-results", type=Path,
                        default=REPO / "benchmarks/results/threshold_rules_context/threshold_rules.json",
                        help="a threshold_rules.py results file holding the runs' seeds")
    parser.add_argument("--rule", default=ROW_THRESHOLD_RULE,
                        help=f"the rule of that file the runs' lstmae alarms follow (default: {ROW_THRESHOLD_RULE})")
    parser.add_argument("--smoothing-results", type=Path,
                        help="a score_smoothing.py results file: check its W = 1 VUS-PR of every detector instead")
    args = parser.parse_args(argv)
    if args.smoothing_results:
        return check_smoothing(args.runs, read_json(args.smoothing_results))
    rules = read_json(args.rules_results)["results"]
    if args.rule not in rules:
        raise SystemExit(f"{args.rules_results}: no rule {args.rule!r}; it has {', '.join(rules)}")
    lines = ["| run | seed | family | series compared | " + " | ".join(f"largest {name} difference" for name in FIGURES)
             + " | VUS-PR: run / rules | event F1: run / rules | rules' VUS-PR over its seeds |",
             "|---|---|---|---|" + "---|" * (len(FIGURES) + 3)]
    differ, compared = [], 0
    for run_name, seed, family, results in families_of(args.runs):
        by_seed = rules[args.rule].get(family, {})
        if seed not in by_seed or "series" not in results:
            continue
        pairs = [(row["detectors"]["lstmae"], by_seed[seed][row["name"]], row["name"])
                 for row in results["series"] if row["name"] in by_seed[seed]]
        gaps = [{name: difference(study[name], rule[name]) for name in FIGURES} for study, rule, _ in pairs]
        for (study, rule, series), gap in zip(pairs, gaps):
            if max(gap.values()) > TOLERANCE:
                differ.append(f"{run_name} seed {seed} {family}/{series}: " + ", ".join(
                    f"{name} {study[name]} against {rule[name]}" for name in FIGURES if gap[name] > TOLERANCE))
        compared += len(pairs)
        seed_means = [value for value in (mean([row["vus_pr"] for row in series.values()])
                                          for series in by_seed.values()) if value is not None]
        lines.append(f"| {run_name} | {seed} | {family} | {len(pairs)} | "
                     + " | ".join(f"{max((gap[name] for gap in gaps), default=0.0):.1e}" for name in FIGURES)
                     + " | " + " | ".join(f"{text(mean([study[name] for study, _, _ in pairs]))} / "
                                         f"{text(mean([rule[name] for _, rule, _ in pairs]))}"
                                         for name in ("vus_pr", "event_f1"))
                     + f" | {text(min(seed_means, default=None))}-{text(max(seed_means, default=None))} "
                       f"({len(seed_means)} seeds) |")
    print("\n".join(lines))
    print(f"\n{compared} series compared; {len(differ)} differ by more than {TOLERANCE:g}"
          + "".join(f"\n- {line}" for line in differ))
    return 1 if differ or not compared else 0


def families_of(runs: list):
    """(run name, seed as text, family, its results) of each family of each study run (`read_joined_run`)."""
    for run in runs:
        try:
            run_name, report = read_joined_run(run)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        for family, results in report["datasets"].items():
            yield run_name, str(report["settings"]["seed"]), family, results


def check_smoothing(runs: list, smoothing: dict) -> int:
    """Print, per run, family and detector, the series compared and the largest difference between the run's VUS-PR
    and `smoothing`'s (a score_smoothing.py report) at W = 1; 1 when one differs by more than TOLERANCE or none
    is compared."""
    lines = ["| run | seed | family | detector | series compared | largest VUS-PR difference |",
             "|---|---|---|---|---|---|"]
    differ, compared = [], 0
    for run_name, seed, family, results in families_of(runs):
        smoothed = smoothing["series"].get(family, {}).get(seed, {})
        rows = [row for row in results.get("series", []) if row["name"] in smoothed]
        detectors = sorted({detector for row in rows for detector in smoothed[row["name"]]})
        for detector in detectors:
            gaps = [(row["name"], difference(row["detectors"].get(detector, {}).get("vus_pr"),
                                             smoothed[row["name"]][detector]["1"]))
                    for row in rows if detector in smoothed[row["name"]]]
            differ += [f"{run_name} seed {seed} {family}/{name} {detector}" for name, gap in gaps if gap > TOLERANCE]
            compared += len(gaps)
            lines.append(f"| {run_name} | {seed} | {family} | {detector} | {len(gaps)} | "
                         f"{max((gap for _, gap in gaps), default=0.0):.1e} |")
    print("\n".join(lines))
    print(f"\n{compared} detector-series compared; {len(differ)} differ by more than {TOLERANCE:g}"
          + "".join(f"\n- {line}" for line in differ))
    return 1 if differ or not compared else 0


def mean(values: list) -> float | None:
    """The mean of the values that are not None (the series with anomalies); None where none is."""
    values = [value for value in values if value is not None]
    return sum(values) / len(values) if values else None


def text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def difference(a, b) -> float:
    """|a - b|; 0 when both are None (a series without anomalies has no VUS-PR or event figures), inf when one is."""
    if a is None or b is None:
        return 0.0 if a is b else float("inf")
    return abs(a - b)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: cannot read it as JSON ({error})") from None


if __name__ == "__main__":
    sys.exit(main())
