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


def out_of_range_share(train: np.ndarray, test: np.ndarray) -> float:
    """Share of test rows (T, F) with a value outside the training rows' range of its feature."""
    low, high = train.min(axis=0), train.max(axis=0)
    margin = MARGIN * (high - low)
    return float(((test < low - margin) | (test > high + margin)).any(axis=1).mean())


def family_rows(family: str, series: list[dict], data_dir: Path) -> list[str]:
    tasks = {task.name: task for task in LOADERS[family](data_dir)}
    detectors = list(series[0]["detectors"])
    storms = {name: [s["name"] for s in series if (s["detectors"][name]["alarm_rate"] or 0) > STORM_SHARE]
              for name in detectors}
    shares = {s["name"]: out_of_range_share(tasks[s["name"]].train, tasks[s["name"]].test) for s in series}
    calm = [shares[name] for name in shares if name not in storms["lstmae"]]
    lines = [f"### {family} ({len(series)} series)", "",
             "| detector | storms |", "|---|---|"]
    lines += [f"| {name} | {len(storms[name])} |" for name in detectors]
    lines += ["", "| lstmae storms on | alarmed rows | test rows outside the training range |", "|---|---|---|"]
    rate = {s["name"]: s["detectors"]["lstmae"]["alarm_rate"] for s in series}
    lines += [f"| {name} | {rate[name]:.0%} | {shares[name]:.1%} |" for name in storms["lstmae"]]
    if calm:
        lines.append(f"| (the other {len(calm)} series: median) | | {np.median(calm):.1%} |")
    return lines + [""]


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
    lines = [f"## Storms in {args.run.name}", "",
             f"`python benchmarks/detection/storms.py --run {args.run.name}`: series whose alarms cover more than "
             f"{STORM_SHARE:.0%} of their test rows, and the share of those rows with a value outside the training "
             f"part's range (widened by {MARGIN:.0%}).", ""]
    for family in SERIES_FAMILIES:
        if family in report["datasets"]:
            lines += family_rows(family, report["datasets"][family]["series"], args.data_dir)
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
