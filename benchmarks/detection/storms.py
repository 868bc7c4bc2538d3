"""Which series a study run's detectors storm on, and whether their test parts leave the training range.

    python benchmarks/detection/storms.py [--run benchmarks/results/detection_mad12] [--out FILE.md]

A storm: alarms on more than `lstmae.series.STORM_SHARE` of a series' scored test rows (lstmae warns on
it: AlarmStormWarning). For each family of the run: each detector's storms, and for lstmae's the
share of test rows with a value outside its training part's range (per feature, widened by 5% of that
range), beside the same share on the series lstmae does not storm on. Reads the run's results file and
the data (../shared/data); trains nothing. Writes Markdown to --out (stdout without it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for `detection`

from detection.datasets import LOADERS, SERIES_FAMILIES  # noqa: E402
from lstmae.series import STORM_SHARE  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MARGIN = 0.05  # of each feature's training range
# lstmae's threshold rules (at its default mapping and error model) tried on the series it storms on
RULES = ("mad:8", "mad:12", "mad:8+floor", "mad:8+floor:0.95", "telemanom:2.5")
VARIANT = "/mean/normalized-max"


def out_of_range_share(train: np.ndarray, test: np.ndarray) -> float:
    """Share of test rows (T, F) with a value outside the training rows' range of its feature."""
    low, high = train.min(axis=0), train.max(axis=0)
    margin = MARGIN * (high - low)
    return float(((test < low - margin) | (test > high + margin)).any(axis=1).mean())


def stormy(series: list[dict], detector: str) -> list[str]:
    """The names of the series (results rows) on which `detector` alarms on more than STORM_SHARE of the rows."""
    return [s["name"] for s in series
            if detector in s["detectors"] and (s["detectors"][detector]["alarm_rate"] or 0) > STORM_SHARE]


def family_rows(family: str, series: list[dict], data_dir: Path) -> list[str]:
    tasks = {task.name: task for task in LOADERS[family](data_dir)}
    detectors = list(series[0]["detectors"])
    storms = {name: stormy(series, name) for name in detectors}
    shares = {s["name"]: out_of_range_share(tasks[s["name"]].train, tasks[s["name"]].test) for s in series}
    calm = [shares[name] for name in shares if name not in storms["lstmae"]]
    lines = [f"### {family} ({len(series)} series)", "",
             "| detector | storms |", "|---|---|"]
    lines += [f"| {name} | {len(storms[name])} |" for name in detectors]
    lines += ["", "| lstmae storms on | alarmed rows | test rows outside the training range |", "|---|---|---|"]
    rate = {s["name"]: s["detectors"]["lstmae"]["alarm_rate"] for s in series}
    lines += [f"| {name} | {rate[name]:.0%} | {shares[name]:.1%} |" for name in storms["lstmae"]]
    if storms["lstmae"]:
        lines.append(f"| (these {len(storms['lstmae'])} series: median) | | "
                     f"{np.median([shares[name] for name in storms['lstmae']]):.1%} |")
    if calm:
        lines.append(f"| (the other {len(calm)} series: median) | | {np.median(calm):.1%} |")
    return lines + [""]


def rule_rows(series: list[dict]) -> list[str]:
    """lstmae's other threshold rules on the same networks, over the series its default storms on: how many
    still storm, their median alarmed share, mean event recall and precision (a rule that could not be
    fitted on a series counts as no alarm)."""
    names = set(stormy(series, "lstmae"))
    stormy_series = [s for s in series if s["name"] in names]
    rules = [rule for rule in RULES if stormy_series and rule + VARIANT in stormy_series[0]["lstmae_thresholds"]]
    if not rules:
        return []
    lines = [f"### lstmae's threshold rules on the {len(stormy_series)} series its default storms on", "",
             "Each rule on the same networks and row scores (`how=mean`, `normalized-max`); `+floor`: never below the "
             "highest score of the training rows (`threshold_floor=1`), `+floor:0.95`: their 0.95 quantile.", "",
             "| rule | still storming | median alarmed rows | event recall | event precision |",
             "|---|---|---|---|---|"]
    for rule in rules:
        rows = [s["lstmae_thresholds"][rule + VARIANT] for s in stormy_series]
        rates = [row["alarm_rate"] or 0.0 for row in rows]
        recall = [0.0 if row["alarm_rate"] is None else row["event_recall"]
                  for row, s in zip(rows, stormy_series) if s["n_anomalous_rows"]]
        precision = [row["event_precision"] for row in rows if row.get("event_precision") is not None]
        lines.append(f"| `{rule}` | {sum(rate > STORM_SHARE for rate in rates)} | {np.median(rates):.0%} | "
                     f"{_mean(recall)} | {_mean(precision)} |")
    return lines + [""]


def _mean(values: list) -> str:
    return f"{np.mean(values):.2f}" if values else "n/a"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=REPO / "benchmarks/results/detection_mad12",
                        help="a detection study's --out folder")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, help="Markdown file to write (default: stdout)")
    args = parser.parse_args(argv)
    source = args.run / "detection_results.json"
    if not source.is_file():
        print(f"error: {source} not found; --run is a detection study's --out", file=sys.stderr)
        return 2
    if not args.data_dir.is_dir():
        print(f"error: data folder {args.data_dir} not found; pass --data-dir", file=sys.stderr)
        return 2
    report = json.loads(source.read_text())
    families = [family for family in SERIES_FAMILIES if family in report["datasets"]]
    lines = [f"## Storms in {args.run.name}", "",
             f"`python benchmarks/detection/storms.py --run {args.run.name}`: series whose alarms cover more than "
             f"{STORM_SHARE:.0%} of their test rows, and the share of those rows with a value outside the training "
             f"part's range (widened by {MARGIN:.0%}).", ""]
    for family in families:
        lines += family_rows(family, report["datasets"][family]["series"], args.data_dir)
    every = [s for family in families for s in report["datasets"][family]["series"]]
    detectors = list(dict.fromkeys(name for s in every for name in s["detectors"]))
    lines += ["### Every family", "", "| detector | storms |", "|---|---|"]
    lines += [f"| {name} | {len(stormy(every, name))} of {sum(name in s['detectors'] for s in every)} |"
              for name in detectors] + [""]
    lines += rule_rows(every)
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
