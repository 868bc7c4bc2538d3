"""lstmae's window score beside a novelty score of the window's code, on the same networks.

    python benchmarks/detection/code_novelty.py [--datasets nab,ucr] [--seeds 0,1,2] [--weights 1,8]
                                                [--quantiles 0.99] [--neighbours 5] [--cache DIR]
                                                [--out benchmarks/results/code_novelty]

Why: an autoencoder reconstructs some windows well although it never saw anything like them (NAB's
art_daily_flatmiddle: a day stuck at the middle level; art_daily_jumpsdown), so its error misses them
while PyOD's IsolationForest on the raw windows finds them. Such a window's code (the default "pooled"
encoding, (N, D)) may lie far from the codes of the windows the network was trained on. The novelty of
a window is the mean distance of its code to its `--neighbours` nearest trained-window codes, as a robust
z-score of the held-out windows' novelties ((d - median) / (1.4826 MAD)). The combined window score is
max(lstmae's normalized-max error score, novelty / weight) for each of `--weights` (a weight of 8 counts
a code 8 held-out MADs out as one of the error's). For each of `--quantiles` Q both are put on one scale
first: each component (the error score, the code distance) minus its held-out median, divided by its
held-out Q quantile minus that median (1 = the held-out windows' Q quantile), then the max. Then rows,
`mad:8` and the alarm rules exactly as `error_scales.score` scores lstmae (equal to the study's lstmae to
the third decimal).

Each series is trained as `detection_study.py` trains lstmae at its defaults and cached with its codes
in --cache (`error_scales.train_and_cache(codes=True)`; the networks are those of error_scales.py's
cache, error for error). Per family and seed: mean VUS-PR, event recall and F1, median alarm rate /
labelled fraction, for lstmae and each weight and quantile. Writes code_novelty.json and .md to --out.
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    error_scales.add_run_arguments(parser, "nab,ucr", "0,1,2", "code_novelty", cache="code_novelty")
    parser.add_argument("--weights", default="1,8", help="divisors of the novelty z-score, comma-separated")
    parser.add_argument("--quantiles", default="",
                        help="held-out quantiles that put both components on one scale, comma-separated")
    parser.add_argument("--neighbours", type=int, default=5)
    args = parser.parse_args(argv)
    families, seeds = args.datasets.split(","), [int(seed) for seed in args.seeds.split(",")]
    columns = ["lstmae", *(f"novelty/{weight}" for weight in args.weights.split(",") if weight),
               *(f"quantile/{quantile}" for quantile in args.quantiles.split(",") if quantile)]
    started = time.perf_counter()
    jobs, trained = error_scales.cached_networks(families, seeds, args.data_dir, args.cache, codes=True)
    series = {column: {family: {seed: {} for seed in seeds} for family in families} for column in columns}
    for task, seed, path in jobs:
        cached = dict(np.load(path))
        for column in columns:
            kind, _, value = column.partition("/")
            scorer = None if kind == "lstmae" else (
                novelty_scorer(cached, float(value), args.neighbours) if kind == "novelty"
                else novelty_scorer(cached, 1.0, args.neighbours, quantile=float(value)))
            series[column][task.family][seed][task.name] = error_scales.score(cached, scorer=scorer)
    summary = {column: {family: {seed: error_scales.summary(list(by_name.values()))
                                 for seed, by_name in by_seed.items()}
                        for family, by_seed in by_family.items()}
               for column, by_family in series.items()}
    report = {"command": command_line(__file__, argv),
              "neighbours": args.neighbours, "seconds": round(time.perf_counter() - started, 1),
              "networks_trained": trained, "networks_from_cache": len(jobs) - trained,
              "summary": summary, "series": series}
    error_scales.write_results(args.out, "code_novelty", report, markdown(report))
    return 0


def novelty_scorer(cached, weight: float, neighbours: int = 5, quantile: float | None = None):
    """Window scores (N,) by cache key: max(lstmae's normalized-max error score, code novelty / `weight`), the
    novelty a robust z-score of the held-out windows'; with `quantile`, both components instead in units of
    their held-out `quantile` above their held-out median."""
    from sklearn.neighbors import NearestNeighbors

    errors = error_scales.scaled(cached)
    index = NearestNeighbors(n_neighbors=neighbours).fit(cached["codes_fit"])

    def distance(key):
        return index.kneighbors(cached[f"codes_{key}"])[0].mean(axis=1)

    def units(held):  # (origin, scale) of a component from its held-out windows' values
        median = np.median(held)
        spread = 1.4826 * np.median(np.abs(held - median)) if quantile is None else np.quantile(held, quantile) - median
        return median, max(spread, 1e-12)

    error_units = (0.0, 1.0) if quantile is None else units(errors(cached["held"]))
    code_units = units(distance("held"))

    def scorer(key):
        error = (errors(cached[key]) - error_units[0]) / error_units[1]
        return np.maximum(error, (distance(key) - code_units[0]) / code_units[1] / weight)

    return scorer


def markdown(report: dict) -> str:
    columns = list(report["summary"])
    lines = ["## A code-space novelty score beside lstmae's error", "",
             f"`{report['command']}` ({report['neighbours']} neighbours)", "",
             "Each cell: mean VUS-PR / mean event recall / mean event F1 / median alarm rate (x labelled).", "",
             "| family | seed | " + " | ".join(f"`{column}`" for column in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    first = report["summary"][columns[0]]
    for family, by_seed in first.items():
        for seed in by_seed:
            cells = [report["summary"][column][family][seed] for column in columns]
            lines.append(f"| {family} | {seed} | " + " | ".join(
                f"{c['vus_pr']:.3f} / {c['event_recall']:.2f} / {c['event_f1']:.3f} / {c['alarm_ratio']:.2f}x"
                for c in cells) + " |")
    lines += ["", "Per series VUS-PR (" + ", ".join(columns) + "):", ""]
    for family, by_seed in report["series"][columns[0]].items():
        for seed, by_name in by_seed.items():
            for name, result in by_name.items():
                if result["anomaly_fraction"] > 0:
                    vus = [report["series"][column][family][seed][name]["vus_pr"] for column in columns]
                    lines.append(f"- {family} {name} seed {seed}: " + " / ".join(f"{value:.3f}" for value in vus))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
