"""Alarm runs narrowed to the rows that most of their covering windows flag, on the cached networks.

    python benchmarks/detection/alarm_focus.py [--datasets msl,nab,keogh,ucr] [--seeds 0,1]
                                               [--quantiles 0,0.25,0.5,0.75] [--cache DIR]
                                               [--out benchmarks/results/alarm_focus]

With how="mean" a row's score is the mean of the L windows that cover it. An anomaly of a rows raises the
score of every window that overlaps it, so the row scores rise over the L rows before it and fall over the L
rows after it: an alarm run is up to 2L rows wider than its anomaly (UCR 138 at seed 0: 70 rows for an 11-row
label, `detection_alarm_runs_ucr.md`). Only the rows inside the anomaly are covered by windows that all overlap
it. A row has *window evidence* at quantile q when the q-quantile of its covering windows' scores is above the
row threshold (q = 0: every covering window is; q = 0.25: three in four are); no threshold of its own. Variants,
each on the same networks, scores and threshold:

- "mean": the alarm rules on the how="mean" rows, without the focus (lstmae's default until `q=0.25+drop` became
  its alarm focus, `detection_history.md`);
- "q=Q": each alarm run narrowed to its first-last row with evidence at Q; a run without one is kept;
- "q=Q+drop": the same, and a run without such a row is dropped (a run that no row's windows mostly agree on:
  one window or a few with a large error, spread over L rows by the mean).

lstmae's networks are `error_scales.py`'s cache (trained as `detection_study.py` trains lstmae; networks not
in the cache are trained first, two at a time), scored with lstmae's error model and row threshold
(`mad:8,quantile=1` on the held-out rows) and the default alarm rules, as `error_scales.score` does. Per family
and seed: median alarm rate / labelled fraction, mean event recall / precision / F1, mean point-wise F1, and
the alarm goals (rate <= 2x, recall >= 0.6). Writes alarm_focus.json and alarm_focus.md to --out.
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

KEYS = ("alarm_rate", "event_recall", "event_precision", "event_f1", "f1")


def variants(quantiles: list[float]) -> list[str]:
    return ["mean"] + [f"q={q:g}{drop}" for q in quantiles for drop in ("", "+drop")]


def focused(alarms: np.ndarray, evidence: np.ndarray, drop: bool) -> np.ndarray:
    """`alarms` (T,) 0/1 with each run narrowed to its first-last row where `evidence` (T,) bool holds: lstmae's
    `focus_alarms` (drop=True); a run without such a row is kept with drop=False."""
    from lstmae.scoring import focus_alarms
    from lstmae.scoring.events import flag_runs, runs_touching

    out = focus_alarms(alarms, evidence)
    if not drop:
        starts, ends = flag_runs(alarms)
        without = ~runs_touching(starts, ends, evidence)
        for start, end in zip(starts[without], ends[without]):
            out[start: end + 1] = 1
    return out


def score_series(cached, task, quantiles: list[float]) -> dict:
    """{variant: metrics} of one series' test rows at lstmae's row threshold and alarm rules."""
    from lstmae.evaluation import detection_metrics
    from lstmae.scoring import DEFAULT_ALARM, alarm_rules, alarms_from_flags, covering_quantile, window_to_points

    window, labels = int(cached["window"]), cached["labels"]
    scorer = error_scales.task_scorer(cached, task)
    parts = [window_to_points(scorer(key), int(cached[f"{key}_rows"]), window, how="mean")[0] for key in cached
             if key.startswith("part") and not key.endswith("_rows")]
    held = np.concatenate([part[np.isfinite(part)] for part in parts])
    test_windows = scorer("test")
    rows = window_to_points(test_windows, len(labels), window, how="mean")[0]
    valid = ~np.isnan(rows) & (np.arange(len(rows)) >= window)  # as detection_study.py scores every detector
    threshold = study.ROW_THRESHOLD.fit(held)
    alarms = alarms_from_flags(study.flags_above(rows, threshold), causal=False, **alarm_rules(DEFAULT_ALARM))
    flags = {"mean": alarms}
    for q in quantiles:
        evidence = covering_quantile(test_windows, len(labels), window, 1, q) > threshold
        flags[f"q={q:g}"] = focused(alarms, evidence, drop=False)
        flags[f"q={q:g}+drop"] = focused(alarms, evidence, drop=True)
    results = {"anomaly_fraction": float(labels[valid].mean())}
    for variant, variant_flags in flags.items():
        metrics = detection_metrics(labels, rows, flags=variant_flags, valid=valid, vus=False)
        if metrics["n_events"] and metrics["event_f1"] is None:
            metrics["event_f1"] = 0.0  # no alarm: no event found
        results[variant] = {key: metrics[key] for key in KEYS}
    return results


def summary(series: dict, variant: str) -> dict:
    """Over a family's series with anomalies: median alarm rate / labelled fraction, the other KEYS' means
    (a missing precision or F1, no alarm at all, counts 0), and whether the alarm goals are met."""
    rows = [result for result in series.values() if result["anomaly_fraction"] > 0]
    out = {"alarm_ratio": float(np.median([r[variant]["alarm_rate"] / r["anomaly_fraction"] for r in rows]))}
    for key in KEYS[1:]:
        out[key] = float(np.mean([r[variant][key] or 0.0 for r in rows]))
    out["goals"] = out["alarm_ratio"] <= 2 and out["event_recall"] >= 0.6
    return out


def markdown(report: dict) -> str:
    names = variants(report["quantiles"])
    lines = ["## Alarm runs narrowed to the rows their covering windows flag", "", f"`{report['command']}`", "",
             "Per family and seed, over its series with anomalies: median alarm rate / labelled fraction, mean "
             "event recall, precision and F1, mean point-wise F1 (a series without any alarm counts 0), and "
             "whether the alarm goals (rate <= 2x, recall >= 0.6) are met. Every variant on the same networks, "
             "scores and threshold.", ""]
    for seed in next(iter(report["results"].values())):
        lines += [f"### Seed {seed}", "", "| variant | " + " | ".join(
            f"{study.FAMILY_TITLES[family]}: rate, recall, F1, point F1" for family in report["results"])
            + " | families meeting the alarm goals | mean event F1 |", "|---|" + "---|" * (len(report["results"]) + 2)]
        for name in names:
            sums = [summary(report["results"][family][seed], name) for family in report["results"]]
            cells = [f"{s['alarm_ratio']:.1f}x, {s['event_recall']:.3f}, {s['event_f1']:.3f}, {s['f1']:.3f}"
                     for s in sums]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {sum(s['goals'] for s in sums)} | "
                         f"{np.mean([s['event_f1'] for s in sums]):.3f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    error_scales.add_run_arguments(parser, "msl,nab,keogh,ucr", "0,1", "alarm_focus")
    parser.add_argument("--quantiles", default="0,0.25,0.5,0.75",
                        help="the evidence quantiles q of the variants (0: every covering window)")
    args = parser.parse_args(argv)
    quantiles = [float(q) for q in args.quantiles.split(",")]
    started = time.perf_counter()
    families, seeds, jobs, trained = error_scales.run_jobs(args)
    results: dict = {family: {str(seed): {} for seed in seeds} for family in families}
    for task, seed, path in jobs:
        cached = dict(np.load(path))  # read once: an .npz member is decompressed on every access
        results[task.family][str(seed)][task.name] = score_series(cached, task, quantiles)
    report = {"command": command_line(__file__, argv), "seconds": round(time.perf_counter() - started),
              "networks_trained": trained, "quantiles": quantiles, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "alarm_focus.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "alarm_focus.md").write_text(markdown(report))
    sys.stdout.write(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
