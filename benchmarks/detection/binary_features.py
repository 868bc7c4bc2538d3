"""0/1 features scored or kept as context (`binary_features`), on the same networks.

    python benchmarks/detection/binary_features.py [--datasets msl] [--seeds 0,1,2,3] [--cache DIR]
                                                   [--out benchmarks/results/binary_features]

MSL's channels are one telemetry value and 54 one-hot command flags; the labelled anomalies are in the
telemetry. With `binary_features="scored"` the normalized-max error model takes the largest robust
z-score of all 55 features' errors, so a command that behaves unusually can outrank the telemetry; with
"context" the flags (the features whose training values are all 0 or 1) stay inputs of the network and
are left out of the score, as Telemanom predicts the telemetry from the commands. Each series is trained
as `detection_study.py` trains lstmae at its defaults (the networks and per-feature error cache of
`error_scales.py`, shared with it: a rerun only scores); both ways are then scored exactly as
`error_scales.score` scores lstmae (equal to the study's lstmae to the third decimal). The other
families have no 0/1 feature, so they cannot change; the script says so for each family given.
Per family and seed: mean VUS-PR, event recall and F1, the median alarm rate / labelled fraction and
whether the issue's alarm goals hold. Writes binary_features.json and .md to --out.
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
import error_scales  # noqa: E402
import threshold_rules  # noqa: E402
from lstmae.config import BINARY_FEATURE_CHOICES  # noqa: E402
from lstmae.series import STORM_SHARE  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    error_scales.add_run_arguments(parser, "msl", "0,1,2,3", "binary_features")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    families, seeds, jobs, trained = error_scales.run_jobs(args)
    series = {mode: {family: {seed: {} for seed in seeds} for family in families} for mode in BINARY_FEATURE_CHOICES}
    flags = {}
    for task, seed, path in jobs:
        cached = dict(np.load(path))
        binary = error_scales.task_binary_features(task)
        flags[f"{task.family}/{task.name}"] = int(binary.sum())
        for mode in BINARY_FEATURE_CHOICES:
            series[mode][task.family][seed][task.name] = error_scales.score(
                cached, scorer=error_scales.lstmae_scorer(cached, binary if mode == "context" else None))
    summary = {mode: {family: {seed: threshold_rules.summary(by_name) for seed, by_name in by_seed.items()}
                      for family, by_seed in by_family.items()}
               for mode, by_family in series.items()}
    report = {"command": command_line(__file__, argv),
              "seconds": round(time.perf_counter() - started, 1), "networks_trained": trained,
              "networks_from_cache": len(jobs) - trained,
              "binary_features": {family: sorted({n for key, n in flags.items() if key.startswith(family + "/")})
                                  for family in families},
              "summary": summary, "series": series}
    error_scales.write_results(args.out, "binary_features", report, markdown(report))
    return 0


def markdown(report: dict) -> str:
    lines = ["## 0/1 features scored or kept as context", "", f"`{report['command']}`", "",
             "Each cell: mean VUS-PR / mean event recall / mean event F1 / median alarm rate (x labelled) / "
             "storms (series alarmed on more than a third of their rows, of all the family's); **bold**: the "
             "alarm goals hold (rate <= 2x, recall >= 0.6).", "",
             "| family | 0/1 features per series | seed | `scored` | `context` |", "|---|---|---|---|---|"]
    for family, by_seed in report["summary"]["scored"].items():
        for seed in by_seed:
            cells = []
            for mode in ("scored", "context"):
                c = report["summary"][mode][family][seed]
                text = (f"{c['vus_pr']:.3f} / {c['event_recall']:.2f} / {c['event_f1']:.3f} / "
                        f"{c['alarm_ratio']:.2f}x / {c['storms']}")
                cells.append(f"**{text}**" if c["goals_met"] else text)
            counts = ", ".join(map(str, report["binary_features"][family]))
            lines.append(f"| {family} | {counts} | {seed} | " + " | ".join(cells) + " |")
    lines += ["", "Per series with anomalies, VUS-PR scored / context, the mean over the seeds; in brackets the "
              "seeds where its alarms cover more than a third of its rows, scored / context:", ""]
    for family, by_seed in report["series"]["scored"].items():
        cells = []
        for name, result in next(iter(by_seed.values())).items():
            if result["anomaly_fraction"] > 0:
                runs = {mode: [report["series"][mode][family][seed][name] for seed in by_seed]
                        for mode in ("scored", "context")}
                vus = [np.mean([run["vus_pr"] for run in runs[mode]]) for mode in runs]
                storms = [sum(run["alarm_rate"] > STORM_SHARE for run in runs[mode]) for mode in runs]
                cells.append(f"{name} {vus[0]:.3f} / {vus[1]:.3f} ({storms[0]} / {storms[1]})")
        lines.append(f"- {family}: " + "; ".join(cells))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
