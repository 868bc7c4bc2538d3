"""Each labelled event's margin over the rows outside the labels, on the cached networks.

    python benchmarks/detection/event_margins.py [--datasets ucr] [--seeds 0,1,17] [--cache DIR]
                                                 [--out benchmarks/results/event_margins]

A threshold finds an event without also alarming on normal rows only when the event's peak, its highest row
score (how="mean", lstmae's default) inside the labelled range, is above every row score away from the labelled
ranges: margin = peak / highest outside, above 1. Rows within a window's length of a labelled range are not
"outside": windows that overlap the anomaly raise them (their alarm run touches the range, so it is no false
alarm). Where it is below 1, no threshold rule can help and the ranking itself is what loses. Per series,
seed and labelled event: the peak, the highest row outside the labels, the margin, lstmae's row threshold
(`mad:8,quantile=1` on the held-out rows, as `error_scales.score` fits it), how many held-out rows it rests on,
and whether the peak is above it (the event is flagged before the alarm rules). Reads `error_scales.py`'s cache
(networks missing there are trained first, two at a time). Writes event_margins.json and
event_margins.md to --out.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for detection_study

from command_line import command_line  # noqa: E402
import detection_study as study  # noqa: E402
from detection import error_scales  # noqa: E402


def event_margins(cached, task) -> list[dict]:
    """One dict per labelled event of the series' test rows: its first and last row, peak, the highest row score
    more than a window from every labelled range, the margin (peak / that), lstmae's row threshold, the held-out
    rows it is fitted on and whether the peak is above it."""
    from lstmae.scoring import flag_runs, window_to_points

    window, labels = int(cached["window"]), cached["labels"]
    scorer = error_scales.task_scorer(cached, task)
    parts = [window_to_points(scorer(key), int(cached[f"{key}_rows"]), window, how="mean")[0] for key in cached
             if key.startswith("part") and not key.endswith("_rows")]
    held = np.concatenate([part[np.isfinite(part)] for part in parts])
    threshold = float(study.ROW_THRESHOLD.fit(held))
    rows = window_to_points(scorer("test"), len(labels), window, how="mean")[0]
    valid = ~np.isnan(rows) & (np.arange(len(rows)) >= window)  # the rows detection_study.py scores
    near = np.convolve(labels, np.ones(2 * window - 1), mode="same") > 0  # a window of an anomaly covers them
    outside = rows[valid & ~near]
    highest = float(outside.max()) if len(outside) else float("nan")
    events = []
    for start, end in zip(*flag_runs(labels)):
        inside = rows[start : end + 1][valid[start : end + 1]]
        peak = float(inside.max()) if len(inside) else float("nan")
        events.append({"start": int(start), "end": int(end), "peak": peak, "highest_outside": highest,
                       "margin": peak / highest if highest > 0 else float("nan"), "threshold": threshold,
                       "held_out_rows": len(held),
                       "flagged": bool(peak > threshold)})
    return events


def markdown(report: dict) -> str:
    lines = ["## Each labelled event's peak against the highest row outside the labels", "",
             f"`{report['command']}`", "",
             "Row scores how=\"mean\" (lstmae's default) of the cached networks. margin = peak / highest outside "
             "(the rows more than a window from any label): below 1, no threshold flags the event without flagging "
             "a normal row at least as high. threshold: lstmae's row rule on the held-out rows; flagged: the peak is "
             "above it (before the alarm rules), fitted on that many held-out rows.", "",
             "| family | series | seed | event rows | peak | highest outside | margin | threshold | held-out rows | "
             "flagged |", "|---|---|---|---|---|---|---|---|---|---|"]
    for family, by_seed in report["results"].items():
        for seed, by_series in by_seed.items():
            for name, events in by_series.items():
                for event in events:
                    lines.append(f"| {study.FAMILY_TITLES[family]} | {name} | {seed} | {event['start']}-{event['end']} "
                                 f"| {event['peak']:.3f} | {event['highest_outside']:.3f} | {event['margin']:.2f} | "
                                 f"{event['threshold']:.3f} | {event['held_out_rows']} | "
                                 f"{'yes' if event['flagged'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    error_scales.add_run_arguments(parser, "ucr", "0,1,17", "event_margins")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    families, seeds, jobs, trained = error_scales.run_jobs(args)
    results: dict = {family: {str(seed): {} for seed in seeds} for family in families}
    for task, seed, path in jobs:
        results[task.family][str(seed)][task.name] = event_margins(dict(np.load(path)), task)
    report = {"command": command_line(__file__, argv), "seconds": round(time.perf_counter() - started, 1),
              "networks_trained": trained, "results": results}
    error_scales.write_results(args.out, "event_margins", report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
