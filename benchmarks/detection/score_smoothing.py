"""Row scores smoothed over W rows: lstmae's VUS-PR beside every baseline's and peer's, each smoothed alike.

    python benchmarks/detection/score_smoothing.py [--datasets nab,keogh,ucr] [--seeds 0] [--widths 1,50,75,100]
                                                   [--cache DIR] [--out benchmarks/results/score_smoothing]

Why: a row's score smoothed over its neighbours (each the mean of the W rows centred on it,
`lstmae.scoring.smooth_points`, as the estimator's `smooth` does) ranks the rows of a long labelled range higher
together, and lifts lstmae's VUS-PR (`threshold_rules.py --rules "...+smooth=W"`, which also shows what it does to
the alarms). A lead that the smoothing gives lstmae is only one if the same smoothing does not lift the others as
much: here every detector's test rows are smoothed the same way and ranked on the same rows (after the first window).

lstmae's rows are its cached networks' (`error_scales.py`'s cache, trained as `detection_study.py` trains lstmae
at its defaults), the others' are scored as the study scores them (`detection_study.baseline_scores`: the
IsolationForest and PCA baselines, the rolling z-score, and the peers of the `bench` extra, on the training
windows lstmae's held-out tail leaves); W = 1 gives the study's VUS-PR. Writes score_smoothing.json and .md to
--out: per family, seed and detector the mean VUS-PR at each width, and per series.
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
from lstmae.scoring import smooth_points  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="1,50,75,100", help="rows to smooth over, comma-separated (1: none)")
    error_scales.add_run_arguments(parser, "nab,keogh,ucr", "0", "score_smoothing")
    args = parser.parse_args(argv)
    widths = error_scales.parse_widths(args.widths, "--widths")
    started = time.perf_counter()
    families, seeds, jobs, trained = error_scales.run_jobs(args)
    settings = study.build_settings(study.parse_args([]))
    study.set_threads(1)  # as the study's workers: PyOD's AutoEncoder trains to other weights on more threads
    series = {family: {seed: {} for seed in seeds} for family in families}
    for task, seed, path in jobs:
        if not task.labels.any():
            continue  # no VUS-PR without anomalies
        cached = dict(np.load(path))
        rows = {"lstmae": lstmae_rows(cached, task),
                **other_rows(task, study.family_settings(settings, task.family), seed)}
        series[task.family][seed][task.name] = smoothed_vus_pr(task, rows, widths, int(cached["window"]))
        study.log(f"scored {task.family}/{task.name} seed {seed}")
    report = {"command": command_line(__file__, argv), "widths": widths,
              "seconds": round(time.perf_counter() - started, 1), "networks_trained": trained,
              "means": {family: {seed: means(by_name, widths) for seed, by_name in by_seed.items()}
                        for family, by_seed in series.items()},
              "series": series}
    error_scales.write_results(args.out, "score_smoothing", report, markdown(report))
    return 0


def lstmae_rows(cached: dict, task) -> np.ndarray:
    """(T,) lstmae's test row scores from its cached network, as lstmae scores them (how="mean")."""
    from lstmae.scoring import window_to_points

    scorer = error_scales.task_scorer(cached, task)
    return window_to_points(scorer("test"), len(cached["labels"]), int(cached["window"]), how="mean")[0]


def other_rows(task, settings: dict, seed: int) -> dict:
    """{detector: (T,) test row scores} of the study's baselines and peers on one series."""
    from lstmae.config import DEFAULTS
    from lstmae.data.windowing import n_windows

    window, how = study.series_window(task.train, settings["window"]), settings["how"]
    stride = study.train_stride(len(task.train), window, settings["max_train_steps"])
    n_fit = study.windows_before_held_out(n_windows(len(task.train), window, stride), DEFAULTS["validation_fraction"])
    scored = study.baseline_scores(task, window, how, stride, n_fit, n_fit * stride, seed, settings)
    return {name: row_scores.scores for name, row_scores in scored.items()}


def smoothed_vus_pr(task, rows: dict, widths: list, window: int) -> dict:
    """{detector: {width: VUS-PR}} over the test rows after the first `window` where the detector has a score."""
    from lstmae.evaluation.metrics import vus_pr, vus_window_from_period

    sliding_window = vus_window_from_period(task.test)
    after_first_window = np.arange(len(task.labels)) >= window
    result = {}
    for detector, scores in rows.items():
        scores = np.asarray(scores, dtype=np.float64)
        ranked = after_first_window & np.isfinite(scores)
        result[detector] = {width: vus_pr(task.labels[ranked], smooth_points(scores, width)[ranked],
                                          sliding_window=sliding_window) for width in widths}
    return result


def means(by_name: dict, widths: list) -> dict:
    """{detector: {width: mean VUS-PR over the series it scored}}."""
    detectors = sorted({detector for result in by_name.values() for detector in result})
    return {detector: {width: float(np.mean([result[detector][width] for result in by_name.values()
                                             if detector in result])) for width in widths}
            for detector in detectors}


def markdown(report: dict) -> str:
    widths = report["widths"]
    lines = ["## Row scores smoothed over W rows: each detector's mean VUS-PR", "", f"`{report['command']}`", "",
             "Each row's score replaced by the mean of the W rows centred on it (W = 1: the study's scores), for "
             f"every detector alike; **bold**: the best detector at that width; (k up): the series whose VUS-PR is "
             f"higher than at W = {widths[0]}.", "",
             "| family | seed | detector | " + " | ".join(f"W = {width}" for width in widths) + " |",
             "|---|---|---|" + "---|" * len(widths)]
    for family, by_seed in report["means"].items():
        for seed, by_detector in by_seed.items():
            best = {width: max(values[width] for values in by_detector.values()) for width in widths}
            for detector in sorted(by_detector, key=lambda name: (name != "lstmae", name)):
                scored = [result[detector] for result in report["series"][family][seed].values() if detector in result]
                cells = [(f"**{value:.3f}**" if value == best[width] else f"{value:.3f}")
                         + (f" ({sum(row[width] > row[widths[0]] for row in scored)} up)" if width != widths[0] else "")
                         for width, value in by_detector[detector].items()]
                n_series = len(scored)
                lines.append(f"| {study.FAMILY_TITLES[family]} ({n_series}) | {seed} | "
                             f"{study.DETECTOR_TITLES[detector]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
