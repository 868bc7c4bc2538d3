"""The real-data anomaly detection study: lstmae against simple baselines, one command.

    python benchmarks/detection_study.py [--quick] [--datasets ecg5000,msl,nab,keogh,ucr]
                                         [--out benchmarks/results] [--data-dir DIR]
                                         [--set series.window=100 ...] [--resume] [--partial-report] [--tables-only]
    python benchmarks/detection_study.py --compare RUN_DIR[+RUN_DIR] [RUN_DIR ...]

Protocol (the same for every detector):
- ECG5000: train on a seeded 80% of the normal beats; test on the other 20% and all anomalous
  beats. Each detector sets its threshold without test labels, by lstmae's beat rule
  (sigma:2: mean + 2 standard deviations) on its scores of the last 10% of its training data,
  which it did not fit on.
- lstmae runs at its true defaults (SETTINGS' "lstmae" blocks are empty: network size and epochs
  included); the same networks are also scored with every error model, window-to-row mapping
  and threshold rule in VARIANTS, which is how the defaults are chosen.
- Series (MSL, NAB, Keogh ECG, UCR 135-138): train on the documented anomaly-free part with
  lstmae.series.fit_series (the threshold fitted on held-out ROW scores), score the test part
  alone with score_values; lstmae's flags are its `alarm` column (threshold, then the default
  alarm rules). Windows of `window` rows (every training window, stride 1; --quick cuts them
  with a stride; `--set series.window=period`: each series' own period, see `series_window`),
  window scores become row scores with `how`. Metrics on the rows every detector scores:
  VUS-PR (TSB-AD's, sliding window from the test series' period), point-wise ROC-AUC / PR-AUC,
  alarm rate and event precision / recall / F1 of each detector's flags. UCR: the top-1 row is a
  hit within 100 rows of the anomaly.
- Baselines: IsolationForest and PCA on the same standardised windows and a rolling z-score,
  flagged above SETTINGS' baseline_threshold (sigma:5) of their held-out training ROW scores.
  Peers (the `bench` extra): PyOD 3.6's TimeSeriesOD(AutoEncoder) and TimeSeriesOD(IForest) on
  windows of the same length, flagged at PyOD's own contamination threshold (0.1); a matrix-profile
  discord (stumpy AB-join against the training part) on univariate series, flagged above the same
  rule on its held-out rows.

Writes detection_results.json (per series, means, settings, timings, machine) and
detection_results.md (tables for the README) to --out. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import os
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import numpy as np

from command_line import command_line
from detection.baselines import make_window_baselines, rolling_zscore
from detection.datasets import LOADERS, SERIES_FAMILIES, UCR_TOLERANCE, load_ecg5000
from lstmae.config import AUTO_ERROR_MODEL, DEFAULT_THRESHOLDS, DEFAULTS
from lstmae.evaluation import detection_metrics, sequence_metrics
from lstmae.evaluation.metrics import vus_window_from_period
from lstmae.scoring import DEFAULT_ALARM, alarm_rules, default_threshold, parse_threshold, window_to_points
from lstmae.series import STORM_SHARE, AlarmStormWarning
from overrides import parse_assignments
from machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("ecg5000",) + SERIES_FAMILIES
PEERS = ("pyod_autoencoder", "pyod_iforest", "discord")
DETECTORS = ("lstmae", "isolation_forest", "pca", "rolling_zscore") + PEERS
DETECTOR_TITLES = {"lstmae": "lstmae", "isolation_forest": "IsolationForest", "pca": "PCA",
                   "rolling_zscore": "rolling z-score", "pyod_autoencoder": "PyOD AutoEncoder",
                   "pyod_iforest": "PyOD IForest", "discord": "MP discord"}
FAMILY_TITLES = {"msl": "MSL (NASA)", "nab": "NAB", "keogh": "Keogh ECG", "ucr": "UCR anomaly 135-138"}
# lstmae trained at settings["series"]["ensemble_seeds"]: detector SEED_PREFIX + seed, "lstmae_ensemble" and
# "lstmae_selected" (the network of the lowest loss on the whole held-out part, as n_init chooses).
SEED_PREFIX = "lstmae_seed_"
# The baselines' threshold rules: lstmae's defaults, fitted the same way on their held-out scores.
BEAT_THRESHOLD = parse_threshold(default_threshold("window"))
ROW_THRESHOLD_RULE = default_threshold("rows")
ROW_THRESHOLD = parse_threshold(ROW_THRESHOLD_RULE)

SETTINGS = {
    "seed": 0,
    # What lstmae's defaults were in this run (the tables name them; a results file outlives a change of defaults).
    # (error_model "auto" is AUTO_ERROR_MODEL on the study's real-valued windows of one length)
    "lstmae_defaults": {"threshold": dict(DEFAULT_THRESHOLDS), "error_model": AUTO_ERROR_MODEL
                        if DEFAULTS["error_model"] == "auto" else DEFAULTS["error_model"]},
    "ecg5000": {
        "test_fraction": 0.2,
        # Empty: lstmae's true defaults (network size, epochs, loss, threshold, ...).
        "lstmae": {},
    },
    # For every series family; a family block (e.g. "msl": {"window": 100}) overrides it.
    "series": {
        "window": 50,
        "how": DEFAULTS["how"],
        # None: every training window (stride 1), as fit_series' default; lstmae's steps_per_epoch bounds
        # an epoch. A number: training windows cut with a stride that keeps windows x window <= it (--quick).
        "max_train_steps": None,
        # Empty: lstmae's true defaults.
        "lstmae": {},
        # More seeds for lstmae (e.g. [1, 2]): each one's network at the defaults ("lstmae seed S") and the
        # ensemble of them with the run's seed ("lstmae ensemble"); empty: none (their training time).
        "ensemble_seeds": [],
        # The row threshold rule of IsolationForest, PCA, the rolling z-score and the MP discord, fitted on their
        # held-out rows. Fixed, not lstmae's default: a change of lstmae's rule must not move its peers (they do
        # worse at mad:8 than at sigma:5).
        "baseline_threshold": "sigma:5",
    },
}
# Scored from the same trained network (no retraining): error models x window->row mappings,
# threshold rules (with the default alarm rules) on the series, and for ECG5000 the threshold
# rules, so the study can say which default wins. The series rules and the floored ones always hold the default
# row rule (ROW_THRESHOLD_RULE, added where a list lacks it): lstmae's own alarms are one of their rows.
VARIANTS = {"error_models": ["mse", "mae", "normalized", "normalized-max"], "hows": ["max", "mean", "end", "point"],
            "thresholds": ["quantile:0.99", "quantile:0.98", "quantile:0.995", "sigma:2", "sigma:3", "sigma:4", "sigma:5"],
            "series_thresholds": list(dict.fromkeys(["sigma:3", "sigma:5", "mad:5", "mad:8", ROW_THRESHOLD_RULE,
                                                     "mad:12", "mad:16", "quantile:0.999", "pot:1e-3", "dspot:1e-3",
                                                     "dspot:1e-4", "telemanom:2.5", "telemanom:4",
                                                     "telemanom:2,mad=8"])),
            "floored_thresholds": list(dict.fromkeys(["mad:8", ROW_THRESHOLD_RULE, "mad:12"])),
            "floor_quantiles": [1.0, 0.99, 0.95, 0.9],
            "pooled_thresholds": ["mad:8", "mad:12"]}
# series.window="period": (shortest, fallback where no period is found, longest) window in rows.
PERIOD_WINDOWS = (20, 50, 100)
# Alarm rules beside the defaults (DEFAULT_ALARM), each at the default row threshold rule x every mapping and
# error model, named "rule+min_length=M,merge_gap=G" (the cool-down as the default) or "rule+cooldown=C" (the
# others as the defaults) in the ranking.
ALARM_VARIANTS = ([{"min_length": m, "merge_gap": g} for m in (1, 3, 5, 10) for g in (10, 30)]
                  + [{"cooldown": c} for c in (0, 100)])
# {name suffix: alarm rule}; the default alarm rules' own suffix is "" (the rule's own row).
ALARM_RULES = {"": {}, **{"+" + ",".join(f"{name}={value}" for name, value in alarm.items()): alarm
                          for alarm in ALARM_VARIANTS
                          if any(DEFAULT_ALARM[name] != value for name, value in alarm.items())}}
QUICK = {
    "max_ecg_train": 600,
    "max_series_per_family": 2,
    "series": {"max_train_steps": 20_000},
}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.compare:
        try:
            reports = [read_joined_run(run) for run in args.compare]
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print("\n".join(comparison(reports)))
        return 0
    if args.tables_only:
        source = args.out / "detection_results.json"
        if not source.is_file():
            print(f"error: {source} not found; run the study first, or pass the --out that holds it",
                  file=sys.stderr)
            return 2
        report = json.loads(source.read_text())
        for family, dataset in report["datasets"].items():  # the means as today's code takes them
            if family != "ecg5000":
                dataset["means"] = family_means(dataset["series"])
        (args.out / "detection_results.md").write_text(markdown(report))
        log(f"wrote {args.out}/detection_results.md from its detection_results.json")
        return 0
    if not args.data_dir.is_dir():
        print(f"error: data folder {args.data_dir} not found; pass --data-dir "
              "(the shared data sets, see ../shared/data/README.md)", file=sys.stderr)
        return 2
    settings = build_settings(args)
    started = time.perf_counter()
    jobs = make_jobs(args.data_dir, args.datasets, settings)
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / "detection_results.partial.jsonl"
    resume = args.resume or args.partial_report
    done = read_partial(partial, settings) if resume else {}
    if not resume:
        partial.unlink(missing_ok=True)
    if args.partial_report and not done:
        print(f"error: no finished jobs with these settings in {partial}; --partial-report needs a stopped run",
              file=sys.stderr)
        return 2
    results = [done.get(job_key(job)) for job in jobs]
    todo = [] if args.partial_report else [index for index, result in enumerate(results) if result is None]
    log(f"{len(todo)} of {len(jobs)} jobs to run on {settings['jobs']} process(es) x {settings['threads']} "
        f"torch thread(s){'; the rest from ' + str(partial) if len(todo) < len(jobs) else ''}")
    for n_done, (index, result) in enumerate(run_jobs([jobs[i] for i in todo], settings), start=1):
        results[todo[index]] = result
        with partial.open("a") as file:  # one line per finished job, so a stopped run can --resume
            file.write(json.dumps({"key": job_key(jobs[todo[index]]), "settings": settings_key(settings),
                                   "result": result}) + "\n")
        log(f"[{n_done}/{len(todo)}] {result['family']} {result['name']}: {summary_line(result)}")
    command = command_line(__file__, argv)
    report = build_report([result for result in results if result is not None], settings, command,
                          time.perf_counter() - started)
    report["resumed_jobs"] = sum(job_key(job) in done for job in jobs)  # their time is not in runtime_s
    report["unfinished_jobs"] = [job_key(job) for job, result in zip(jobs, results) if result is None]
    (args.out / "detection_results.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "detection_results.md").write_text(markdown(report))
    if not args.partial_report:
        partial.unlink()
    log(f"done in {report['runtime_s'] / 60:.1f} min; wrote {args.out}/detection_results.{{json,md}}")
    return 0


def read_joined_run(run: str) -> tuple[str, dict]:
    """"A+B+C", study --out folders of one seed -> (their names joined by "+", one report with each family of the
    latest folder that has it, and the first folder's settings). ValueError names a missing or unreadable results
    file, or runs of different seeds."""
    parts = []
    for folder in map(Path, run.split("+")):
        source = folder / "detection_results.json"
        if not source.is_file():
            raise ValueError(f"{source} not found; each folder is a study's --out")
        try:
            report = json.loads(source.read_text())
            if not (isinstance(report["settings"], dict) and isinstance(report["datasets"], dict)):
                raise TypeError("its settings and datasets are not objects")
            parts.append((folder.name, report))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{source}: cannot read it as a study's results ({type(error).__name__}: {error}); "
                             "rerun the study into that folder") from None
    seeds = {report["settings"].get("seed") for _, report in parts}
    if len(seeds) > 1:
        raise ValueError(f"{run} joins runs of seeds {sorted(seeds)}; join only runs of one seed")
    report = {"settings": parts[0][1]["settings"],
              "datasets": {family: data for _, part in parts for family, data in part["datasets"].items()}}
    return "+".join(name for name, _ in parts), report


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two series per family, 600 ECG5000 training beats")
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated subset of {','.join(DATASETS)}")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes, one series each at a time")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per process (1: on a shared 2-core machine 2 threads "
                             "per process ran several times slower)")
    parser.add_argument("--tables-only", action="store_true",
                        help="rewrite detection_results.md from the detection_results.json in --out, running nothing")
    parser.add_argument("--compare", nargs="+", metavar="RUN_DIR",
                        help="print lstmae against the best peer in each run's folder (a study's --out), side by "
                             "side, as markdown on stdout, running nothing; DIR1+DIR2 joins the families of two runs "
                             "of one seed (DIR2's where both have one)")
    parser.add_argument("--partial-report", action="store_true",
                        help="write the tables from the jobs a stopped run finished, running nothing (implies --resume)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the jobs a stopped run with the same settings finished "
                             "(detection_results.partial.jsonl in --out)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting, e.g. series.window=100 or "
                             "series.lstmae.error_model=mahalanobis (VALUE is JSON or a string)")
    args = parser.parse_args(argv)
    args.datasets = [name.strip() for name in args.datasets.split(",") if name.strip()]
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data set(s) {', '.join(unknown)}; choose from {','.join(DATASETS)}")
    return args


def build_settings(args) -> dict:
    settings = copy.deepcopy(SETTINGS)
    if args.quick:
        settings = merge(settings, QUICK)
    for key, value in parse_assignments(args.set):
        node = settings
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    settings.update(quick=args.quick, jobs=args.jobs, threads=args.threads)
    return settings


def job_key(job: tuple) -> str:
    return f"{job[0]}/{job[1].name if job[0] != 'ecg5000' else 'ECG5000'}"


def settings_key(settings: dict) -> str:
    return json.dumps({key: value for key, value in settings.items() if key not in ("jobs", "threads")},
                      sort_keys=True)


def read_partial(path: Path, settings: dict) -> dict:
    """{job key: result} of the jobs a run with the same settings wrote to `path` (none if absent)."""
    if not path.exists():
        return {}
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {line["key"]: line["result"] for line in lines if line["settings"] == settings_key(settings)}


def merge(base: dict, override: dict) -> dict:
    """A deep copy of base with override's values put in, dicts merged key by key."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        result[key] = merge(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) \
            else copy.deepcopy(value)
    return result


def family_settings(settings: dict, family: str) -> dict:
    return merge(settings["series"], settings.get(family, {}))


# ---------------------------------------------------------------------------- jobs
def make_jobs(data_dir: Path, datasets: list[str], settings: dict) -> list[tuple]:
    """(kind, task, settings, seed) tuples; ECG5000 first, as it is the longest."""
    seed, quick = settings["seed"], settings["quick"]
    jobs = []
    if "ecg5000" in datasets:
        task = load_ecg5000(data_dir, seed, settings["ecg5000"]["test_fraction"])
        if quick:
            task.train = task.train[: settings["max_ecg_train"]]
        jobs.append(("ecg5000", task, settings["ecg5000"], seed))
    for family in SERIES_FAMILIES:
        if family in datasets:
            tasks = LOADERS[family](data_dir)
            if quick:
                tasks = tasks[-settings["max_series_per_family"]:]
            jobs += [(family, task, family_settings(settings, family), seed) for task in tasks]
    return jobs


def run_jobs(jobs: list[tuple], settings: dict):
    """Yield (job index, result) as jobs finish, in `jobs` worker processes (this one when jobs == 1)."""
    if settings["jobs"] == 1:
        set_threads(settings["threads"])
        yield from enumerate(map(run_job, jobs))
        return
    # spawn, not fork: forking a process whose torch thread pool has started can hang.
    with ProcessPoolExecutor(settings["jobs"], mp_context=get_context("spawn"),
                             initializer=set_threads, initargs=(settings["threads"],)) as pool:
        futures = {pool.submit(run_job, job): index for index, job in enumerate(jobs)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def set_threads(threads: int) -> None:
    """`threads` for torch, and for the BLAS (PCA) and numba (the MP discord) pools, which would otherwise
    each start one thread per core in every worker process."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    try:
        import numba
    except ImportError:  # the bench extra is not installed: no discord
        return
    numba.set_num_threads(threads)


def run_job(job: tuple) -> dict:
    kind, task, settings, seed = job
    with warnings.catch_warnings():  # the study counts the storms itself ("storms" in its tables)
        warnings.simplefilter("ignore", AlarmStormWarning)
        return run_beats(task, settings, seed) if kind == "ecg5000" else run_series(task, settings, seed)


# ------------------------------------------------------------------------- ECG5000
def run_beats(task, settings: dict, seed: int) -> dict:
    """Every detector on independent beats (N, L): sequence metrics at its own threshold."""
    from lstmae import LSTMAutoencoder

    started = time.perf_counter()
    model = LSTMAutoencoder(**settings["lstmae"], random_state=seed, progress=False).fit(task.train)
    detectors = {"lstmae": {**beat_metrics(task.labels, model.anomaly_score(task.test), model.threshold_),
                            **training_summary(model), "seconds": time.perf_counter() - started}}

    n_fit = len(task.train) - int(round(len(task.train) * model.validation_fraction))
    variants = {}
    for error_model in VARIANTS["error_models"]:
        variant = error_model_variant(model, error_model, task.train[n_fit:])
        scores = variant.anomaly_score(task.test)
        metrics = beat_metrics(task.labels, scores, variant.threshold_)
        variants[error_model] = {"roc_auc": metrics["roc_auc"], "pr_auc": metrics["pr_auc"], "balanced_accuracy": {
            rule: beat_metrics(task.labels, scores, variant.calibrate_threshold(task.train[n_fit:], threshold=rule))[
                "balanced_accuracy"] for rule in VARIANTS["thresholds"]}}
    mean, std = task.train[:n_fit].mean(), task.train[:n_fit].std()
    train, test = (((beats - mean) / std)[:, :, None] for beats in (task.train, task.test))
    for baseline in make_window_baselines(seed):
        started = time.perf_counter()
        baseline.fit(train[:n_fit])
        threshold = BEAT_THRESHOLD.fit(baseline.score(train[n_fit:]))
        detectors[baseline.name] = {**beat_metrics(task.labels, baseline.score(test), threshold),
                                    "seconds": time.perf_counter() - started}
    return {"family": "ecg5000", "name": "ECG5000", "n_train": len(task.train), "n_test": len(task.test),
            "n_anomalies": int(task.labels.sum()), "detectors": detectors, "lstmae_variants": variants}


def beat_metrics(labels, scores, threshold: float) -> dict:
    metrics = sequence_metrics(labels, scores, threshold)
    matrix = metrics["confusion_matrix"]
    return {key: metrics[key] for key in ("roc_auc", "pr_auc", "balanced_accuracy", "f1", "threshold")} | {
        "normals_correct": matrix["tn"], "normals": matrix["tn"] + matrix["fp"],
        "anomalies_correct": matrix["tp"], "anomalies": matrix["tp"] + matrix["fn"]}


# -------------------------------------------------------------------------- series
class RowScores(NamedTuple):
    """One detector's scores (T_test,) (NaN: no score), its flags (T_test,) 0/1 at its own default
    threshold, and facts for the report."""

    scores: np.ndarray
    flags: np.ndarray
    info: dict


def run_series(task, settings: dict, seed: int) -> dict:
    """Every detector on one series: row scores and flags over the test part, metrics on common rows."""
    from lstmae import LSTMAutoencoder, temporalize
    from lstmae.series import fit_series

    window, how = series_window(task.train, settings["window"]), settings["how"]
    stride = train_stride(len(task.train), window, settings["max_train_steps"])
    started = time.perf_counter()
    model = LSTMAutoencoder(**settings["lstmae"], random_state=seed, progress=False)
    fit_series(model, task.train, window=window, stride=stride, how=how)
    lstmae = lstmae_rows(model, task, time.perf_counter() - started, how)
    train_windows, _ = temporalize(task.train, window, stride)
    n_fit = windows_before_held_out(len(train_windows), model.validation_fraction)
    first_held_out_row = n_fit * stride
    held_parts, trained_parts, held_windows = lstmae_parts(model, task.train, train_windows, window, stride)
    detectors = {"lstmae": lstmae,
                 **seed_ensemble(model, lstmae, task, held_parts, settings, window, stride, how),
                 **baseline_scores(task, window, how, stride, n_fit, first_held_out_row, seed, settings)}
    result = {"family": task.family, "name": task.name, "window": window, "n_train_rows": len(task.train),
              "n_test_rows": len(task.test), "train_stride": stride, **series_metrics(task, detectors)}
    common = result.pop("common")
    result["lstmae_variants"], result["lstmae_thresholds"] = {}, {}
    vus_window = vus_window_from_period(task.test)
    for error_model in VARIANTS["error_models"]:
        variant = (model if error_model == model.error_model_.spec  # the fitted one, "auto" resolved
                   else error_model_variant(model, error_model, held_windows))
        # Scored once per error model (window scores, plus per-step errors for "point"): the ranking and the
        # alarm variants share these rows.
        test_windows = window_scores_of(variant, task.test, window)
        test_rows = rows_by_how(variant, task.test, window, window_scores=test_windows)
        covering = focus_rows(test_windows, len(task.test), window)
        held_out_rows, train_rows = (joined_rows(variant, parts, window) for parts in (held_parts, trained_parts))
        for how, scores in test_rows.items():
            metrics = detection_metrics(task.labels, scores, flags=np.zeros(len(scores), np.int8), valid=common,
                                        vus_sliding_window=vus_window)
            result["lstmae_variants"][f"{error_model}/{how}"] = {key: metrics[key]
                                                                for key in ("vus_pr", "roc_auc", "pr_auc")}
        for key, row in threshold_variants(variant, task, test_rows, held_out_rows, common, train_rows,
                                           covering).items():
            result["lstmae_thresholds"][f"{key}/{error_model}"] = row
    return result


def lstmae_parts(model, train, train_windows, window: int, stride: int):
    """What `fit_series` held out of the training part `train` (T, F) cut into `train_windows`: the rows of
    each held-out run and of the training rows before each (lists of (T_r, F), each a series of its own,
    those shorter than a window left out), and the held-out windows (n, L, F)."""
    from lstmae.series import held_out_rows, held_out_runs, runs_mask, training_rows

    runs = held_out_runs(len(train_windows), model.validation_fraction, model.validation_blocks)
    ranges = held_out_rows(runs, len(train), window, stride)
    trained = [train[first:stop] for first, stop in training_rows(ranges, len(train)) if stop - first >= window]
    return [train[first:stop] for first, stop in ranges], trained, train_windows[runs_mask(runs, len(train_windows))]


def joined_rows(model, parts: list, window: int, hows=VARIANTS["hows"]) -> dict[str, np.ndarray]:
    """`rows_by_how` of each series in `parts`, joined: {how: (sum T_r,)}."""
    scored = [rows_by_how(model, part, window, hows) for part in parts]
    return {how: np.concatenate([rows[how] for rows in scored] or [np.empty(0)]) for how in hows}


def seed_ensemble(model, rows: RowScores, task, held_parts: list, settings: dict, window: int, stride: int,
                  how: str) -> dict[str, RowScores]:
    """lstmae fitted at each of settings["ensemble_seeds"] ("lstmae_seed_S": its own scores and alarms)
    and the ensemble of those networks with the fitted `model` (whose test rows are `rows`)
    ("lstmae_ensemble"): the mean of their row
    scores (T,) (with the default error model, each in units of its own validation errors), thresholded by the
    default row rule fitted on the mean of their scores of the held-out training rows (`held_parts`, the
    fitted model's held-out runs: `lstmae_parts`), then the default
    alarm rules, as lstmae.series does for one model; and "lstmae_selected", the scores and alarms of the one
    network whose loss on the whole held-out part is the lowest, as `n_init` chooses among seeds without labels.
    Empty when there are no extra seeds."""
    from lstmae import LSTMAutoencoder
    from lstmae.scoring import alarms_from_flags
    from lstmae.series import fit_series

    if not settings.get("ensemble_seeds"):
        return {}
    results, members, member_rows = {}, [model], [rows]
    for seed in settings["ensemble_seeds"]:
        started = time.perf_counter()
        member = LSTMAutoencoder(**settings["lstmae"], random_state=seed, progress=False)
        fit_series(member, task.train, window=window, stride=stride, how=how)
        members.append(member)
        member_rows.append(lstmae_rows(member, task, time.perf_counter() - started, how))
        results[SEED_PREFIX + str(seed)] = member_rows[-1]
    started = time.perf_counter()
    test = np.mean([member.scores for member in member_rows], axis=0)  # their test rows, scored once
    calibration = np.mean([joined_rows(member, held_parts, window, (how,))[how] for member in members], axis=0)
    threshold = ROW_THRESHOLD.fit(calibration[~np.isnan(calibration)])
    alarms = alarms_from_flags(flags_above(test, threshold), causal=False, **alarm_rules(DEFAULT_ALARM))
    seconds = sum(member.info["seconds"] for member in member_rows) + time.perf_counter() - started
    results["lstmae_ensemble"] = RowScores(test, alarms, {"seconds": seconds, "n_members": len(members)})
    losses = [member.history_.get("held_out_loss", np.inf) for member in members]  # n_init's; none held out: inf
    chosen = int(np.argmin(losses))
    results["lstmae_selected"] = member_rows[chosen]._replace(
        info={**member_rows[chosen].info, "seed": members[chosen].random_state})
    return results


def lstmae_rows(model, task, seconds: float, how: str) -> RowScores:
    """A fitted lstmae model's row scores and alarms on the test part, as lstmae.series gives them."""
    from lstmae.series import score_values

    started = time.perf_counter()
    table = score_values(model, task.test, how=how)
    valid = table["valid"].to_numpy()
    return RowScores(np.where(valid, table["score"], np.nan), table["alarm"].to_numpy(),
                     {**training_summary(model), "seconds": seconds + time.perf_counter() - started,
                      "raw_flag_rate": float(table["is_anomaly"].to_numpy()[valid].mean())})


def focus_rows(window_scores, n_rows: int, window: int) -> np.ndarray | None:
    """(T,) the quantile DEFAULT_ALARM["focus"] of the scores (N,) of the windows covering each of a series' T rows,
    which lstmae.series narrows its alarms with; None when the focus is off."""
    from lstmae.scoring import covering_quantile

    if DEFAULT_ALARM["focus"] is None:
        return None
    return covering_quantile(window_scores, n_rows, window, 1, DEFAULT_ALARM["focus"])


def window_scores_of(model, values, window: int) -> np.ndarray:
    """The scores (N,) of every window (stride 1) of the series `values` (T, F)."""
    from lstmae import temporalize

    return model.anomaly_score(temporalize(values, window)[0])


def rows_by_how(model, values, window: int, hows=VARIANTS["hows"], window_scores=None) -> dict[str, np.ndarray]:
    """The row scores (T,) of the series `values` (NaN: no score) for each mapping in `hows`, from one
    scoring of its windows (`window_scores`, when the caller has them already)."""
    if window_scores is None:
        window_scores = window_scores_of(model, values, window)
    return {how: row_scores(model, window_scores, values, window, how) for how in hows}


def error_model_variant(model, error_model: str, held_out):
    """A shallow copy of the fitted `model` scoring with another error model, refitted with the threshold
    on held-out normal samples (N, L, F)."""
    return copy.copy(model).set_params(error_model=error_model).recalibrate(held_out)


def threshold_variants(model, task, test_rows: dict, held_out_rows: dict, common, train_rows: dict,
                       covering=None) -> dict:
    """lstmae's alarms (the default alarm rules) at each threshold rule of VARIANTS["series_thresholds"]
    (adaptive ones included) x window-to-row mapping, every rule fitted on the model's held-out training
    rows scored with that mapping (`held_out_rows`, beside the test's `test_rows`, both {how: (T,)}): alarm
    rate, its ratio to the labelled fraction and event precision/recall/F1, as "rule/how". The rules of
    VARIANTS["floored_thresholds"] also run as "rule+floor" (never below the highest score of the rows the
    network trained on, `train_rows`, which a held-out tail shorter than the series' cycle can miss) and
    "rule+floor:Q" (below their Q quantile: the library's `threshold_floor=Q`) for each Q < 1 of
    VARIANTS["floor_quantiles"]. The rules of
    VARIANTS["pooled_thresholds"] also run as "rule+train": fitted on the held-out and the training rows'
    scores together, so that a phase of the series that the held-out rows miss still moves the rule.
    `covering` (`focus_rows`): the alarms are narrowed as lstmae.series narrows them (not for "point")."""
    from lstmae.exceptions import DataError
    from lstmae.scoring import alarms_from_flags, focus_alarms
    from lstmae.scoring import parse_threshold
    from lstmae.series import flag_rows

    keys = ("alarm_rate", "event_precision", "event_recall", "event_f1")
    fraction = task.labels[common].mean()
    results = {}
    for how, scores in test_rows.items():
        calibration = held_out_rows[how]
        held = calibration[np.isfinite(calibration)]
        variant = copy.copy(model)
        variant.calibration_scores_ = dict(model.calibration_scores_)
        variant.set_calibration(held, how=how)
        trained = train_rows[how][np.isfinite(train_rows[how])]
        # "+floor" and "+train": (the base rule, the scores it is fitted on, the lowest threshold allowed). No
        # floor without training rows (validation blocks on a short series leave no part as long as a window):
        # those rules fail there, as a rule without enough held-out scores does.
        static = {f"{rule}+floor" + (f":{q}" if q < 1 else ""): (rule, held, float(np.quantile(trained, q))
                                                                if trained.size else None)
                  for rule in VARIANTS["floored_thresholds"] for q in VARIANTS["floor_quantiles"]}
        pooled = np.concatenate([held, trained])
        static.update({f"{rule}+train": (rule, pooled, -np.inf) for rule in VARIANTS["pooled_thresholds"]})
        for rule in VARIANTS["series_thresholds"] + list(static):
            try:
                if rule in static:
                    base, fitted_on, lowest = static[rule]
                    if lowest is None:
                        raise DataError(f"no training rows to floor {rule} on")
                    thresholds = max(parse_threshold(base).fit(fitted_on), lowest)
                    flags = flags_above(scores, thresholds)
                else:
                    flags, thresholds = flag_rows(variant, scores, ~np.isnan(scores), None, rule, how)
            except DataError:  # e.g. pot: too few held-out scores for a tail fit
                results[f"{rule}/{how}"] = dict.fromkeys(keys + ("alarm_ratio",))
                continue
            for suffix, alarm in (ALARM_RULES if rule == ROW_THRESHOLD_RULE else {"": {}}).items():
                alarms = alarms_from_flags(flags, causal=False, **alarm_rules({**DEFAULT_ALARM, **alarm}))
                if covering is not None and how != "point":
                    with np.errstate(invalid="ignore"):
                        alarms = focus_alarms(alarms, covering > thresholds)
                metrics = detection_metrics(task.labels, scores, flags=alarms, valid=common, vus=False)
                row = {key: metrics[key] for key in keys}
                if metrics["n_events"] and row["event_f1"] is None:
                    row["event_f1"] = 0.0  # no alarm at all: no event found
                row["alarm_ratio"] = row["alarm_rate"] / fraction if fraction else None
                results[f"{rule}{suffix}/{how}"] = row
    return results


def row_scores(model, window_scores, values, window: int, how: str) -> np.ndarray:
    """Row scores (T,) of the series `values`, NaN where invalid: its window scores mapped with `how`, or
    for how="point" (per-step errors, not window scores) lstmae.series' own scoring."""
    if how == "point":
        from lstmae.series import score_values

        table = score_values(model, values, how="point", threshold=np.inf, alarms=None)
        return table["score"].to_numpy()
    return window_to_points(window_scores, len(values), window, how=how)[0]


def windows_before_held_out(n_windows: int, validation_fraction: float) -> int:
    """How many of `n_windows` training windows the baselines and peers fit on: those before the held-out tail, as
    fit_series holds out one block (lstmae itself holds out its own runs)."""
    from lstmae.series import held_out_runs

    tail = held_out_runs(n_windows, validation_fraction)
    return tail[0][0] if tail else n_windows


def series_window(train: np.ndarray, window) -> int:
    """The window length for a series: `window` itself, or for "period" the period of its training part's
    first feature (TSB-AD's, from the autocorrelation: `vus_window_from_period`) within PERIOD_WINDOWS
    (rows; the fallback where it finds none): a window of about one cycle, bounded so that a daily
    cycle of five-minute rows (288) does not make training six times longer."""
    if window != "period":
        return int(window)
    low, fallback, high = PERIOD_WINDOWS
    values = train[:, 0] if train.ndim == 2 else train
    period = vus_window_from_period(values, fallback=0)
    return fallback if period == 0 else int(min(max(period, low), high))


def train_stride(n_rows: int, window: int, max_train_steps: int | None) -> int:
    """The smallest stride that keeps windows x window rows per epoch within max_train_steps (None: 1)."""
    if max_train_steps is None:
        return 1
    return max(1, math.ceil((n_rows - window + 1) / max(1, max_train_steps // window)))


def held_out_row_rule(window_scores, n_rows: int, window: int, how: str, rule: str) -> float:
    """The baselines' threshold: `rule` fitted on held-out ROW scores of the kind `how`."""
    rows = window_to_points(window_scores, n_rows, window, how=how)[0]
    return parse_threshold(rule).fit(rows[~np.isnan(rows)])


def baseline_scores(task, window: int, how: str, stride: int, n_fit: int, first_held_out_row: int, seed: int,
                    settings: dict) -> dict[str, RowScores]:
    """The baselines on the training windows lstmae fitted on (the first n_fit) and thresholded on the
    held-out rows after them, standardised with the statistics of the rows fitted on."""
    from lstmae import temporalize

    fit_rows = task.train[: (n_fit - 1) * stride + window]
    mean, std = fit_rows.mean(axis=0), fit_rows.std(axis=0)
    std[std < 1e-12] = 1.0
    train, test = (task.train - mean) / std, (task.test - mean) / std
    train_windows = temporalize(train, window, stride)[0]
    held_out = train[first_held_out_row:]
    held_out_windows = temporalize(held_out, window)[0]
    test_windows = temporalize(test, window)[0]
    results, rule = {}, settings["baseline_threshold"]
    for baseline in make_window_baselines(seed):
        started = time.perf_counter()
        baseline.fit(train_windows[:n_fit])
        threshold = held_out_row_rule(baseline.score(held_out_windows), len(held_out), window, how, rule)
        scores = window_to_points(baseline.score(test_windows), len(test), window, how=how)[0]
        results[baseline.name] = RowScores(scores, flags_above(scores, threshold), {"seconds": time.perf_counter() - started})
    started = time.perf_counter()
    # The z-score needs `window` rows before the held-out part.
    held_out_scores = rolling_zscore(train[max(0, first_held_out_row - window):], window)
    threshold = parse_threshold(rule).fit(held_out_scores[~np.isnan(held_out_scores)])
    scores = rolling_zscore(test, window)
    results["rolling_zscore"] = RowScores(scores, flags_above(scores, threshold),
                                          {"seconds": time.perf_counter() - started})
    for name, detector in peer_detectors(settings):
        started = time.perf_counter()
        try:
            output = detector(train, test, window, how, first_held_out_row, seed)
        except ImportError as err:  # the bench extra is not installed
            log(f"skipping {name}: {err}")
            continue
        if output is not None:
            results[name] = RowScores(*output, {"seconds": time.perf_counter() - started})
    return results


def flags_above(scores, threshold: float) -> np.ndarray:
    return (np.nan_to_num(scores, nan=-np.inf) > threshold).astype(np.int8)


def peer_detectors(settings: dict) -> list[tuple[str, object]]:
    """The peers in `settings["peers"]` as (name, function(train, test, window, how, first_held_out_row, seed)
    -> (scores, flags))."""
    functions = {"pyod_autoencoder": pyod_autoencoder, "pyod_iforest": pyod_iforest,
                 "discord": functools.partial(discord, rule=settings["baseline_threshold"])}
    return [(name, functions[name]) for name in settings.get("peers", PEERS)]


def _pyod(detector, train, test, window: int, seed: int):
    """PyOD 3.6's TimeSeriesOD: the detector over sliding windows of `window` rows (step 1), window scores
    mapped to rows by their max; flags at PyOD's own threshold, the contamination (default 0.1) quantile of
    its training rows' scores."""
    from pyod.models.ts_od import TimeSeriesOD

    model = TimeSeriesOD(detector=detector, window_size=window).fit(train)
    scores = model.decision_function(test)
    return scores.astype(np.float64), (scores > model.threshold_).astype(np.int8)


def pyod_autoencoder(train, test, window: int, how: str, first_held_out_row: int, seed: int):
    """TimeSeriesOD(AutoEncoder) at PyOD's defaults (seeded through torch)."""
    import torch
    from pyod.models.auto_encoder import AutoEncoder

    torch.manual_seed(seed)
    return _pyod(AutoEncoder(random_state=seed, verbose=0), train, test, window, seed)


def pyod_iforest(train, test, window: int, how: str, first_held_out_row: int, seed: int):
    """TimeSeriesOD(IForest) at PyOD's defaults."""
    from pyod.models.iforest import IForest

    return _pyod(IForest(random_state=seed), train, test, window, seed)


def discord(train, test, window: int, how: str, first_held_out_row: int, seed: int, rule: str):
    """Matrix-profile discord score (stumpy), univariate only: each test subsequence's z-normalised
    distance to its nearest training subsequence (an AB-join), mapped to rows with `how`. Threshold:
    `rule` on the held-out training rows' scores, joined with the rows before them. Multivariate series
    get no score (None)."""
    import stumpy

    if train.shape[1] != 1:
        return None
    train, test = train[:, 0].astype(np.float64), test[:, 0].astype(np.float64)

    def join(values, reference):
        with np.errstate(all="ignore"):
            profile = stumpy.stump(values, window, T_B=reference, ignore_trivial=False)[:, 0].astype(np.float64)
        return np.nan_to_num(profile, nan=0.0, posinf=np.finfo(np.float64).max)

    held_out, head = train[first_held_out_row:], train[:first_held_out_row]
    threshold = held_out_row_rule(join(held_out, head), len(held_out), window, how, rule)
    scores = window_to_points(join(test, train), len(test), window, how=how)[0]
    return scores, flags_above(scores, threshold)


def series_metrics(task, detectors: dict[str, RowScores]) -> dict:
    """Metrics of every detector on the rows that all of them score: point-wise AUCs, VUS-PR (sliding
    window from the test series' period, as TSB-AD), and the alarm rate and event precision/recall/F1
    of its flags."""
    detectors = {name: detector for name, detector in detectors.items() if detector is not None}
    common = np.logical_and.reduce([~np.isnan(detector.scores) for detector in detectors.values()])
    vus_window = vus_window_from_period(task.test)
    results = {}
    for name, detector in detectors.items():
        metrics = detection_metrics(task.labels, detector.scores, flags=detector.flags, valid=common,
                                    vus_sliding_window=vus_window)
        results[name] = {key: metrics[key] for key in ("vus_pr", "roc_auc", "pr_auc", "alarm_rate", "event_precision",
                                                       "event_recall", "event_f1", "f1", "n_flagged_runs")}
        if metrics["n_events"] and results[name]["event_f1"] is None:
            results[name]["event_f1"] = 0.0  # no alarm at all: no event found
        if task.anomaly is not None:
            results[name].update(top1_hit(detector.scores, common, task.anomaly))
        results[name].update(detector.info)
    n_anomalous = int(task.labels[common].sum())
    return {"n_scored_rows": int(common.sum()), "n_anomalous_rows": n_anomalous,
            "anomaly_fraction": n_anomalous / int(common.sum()), "vus_window": int(vus_window),
            "detectors": results, "common": common}


def top1_hit(scores, common, anomaly: tuple[int, int]) -> dict:
    """The highest-scoring row and whether it lies on the anomaly (strictly / within UCR_TOLERANCE rows)."""
    row = int(np.argmax(np.where(common, scores, -np.inf)))
    start, end = anomaly
    return {"top1_row": row, "top1_hit": bool(start <= row <= end),
            "top1_hit_tolerance": bool(start - UCR_TOLERANCE <= row <= end + UCR_TOLERANCE)}


def training_summary(model) -> dict:
    return {"epochs_run": model.history_["epochs_run"], "best_epoch": model.history_["best_epoch"]}


def summary_line(result: dict) -> str:
    parts = []
    for name, metrics in result["detectors"].items():
        roc = metrics.get("roc_auc")
        parts.append(f"{name}={'n/a' if roc is None else f'{roc:.3f}'}")
    return "ROC-AUC " + " ".join(parts)


# -------------------------------------------------------------------------- report
def build_report(results: list[dict], settings: dict, command: str, runtime_s: float) -> dict:
    import sklearn
    import torch

    import lstmae

    report = {
        "command": command,
        "settings": settings,
        "runtime_s": round(runtime_s, 1),
        "machine": {"platform": platform.platform(), "cpu": cpu_name(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "lstmae": lstmae.__version__,
                    "torch": torch.__version__, "numpy": np.__version__, "scikit-learn": sklearn.__version__,
                    "load_average": round(os.getloadavg()[0], 1), **peer_versions()},
        "datasets": {},
    }
    for family in DATASETS:
        family_results = [result for result in results if result["family"] == family]
        if not family_results:
            continue
        if family == "ecg5000":
            report["datasets"][family] = family_results[0]
            continue
        report["datasets"][family] = {"means": family_means(family_results), "series": family_results}
    return report


METRICS = ("vus_pr", "roc_auc", "pr_auc", "alarm_rate", "event_precision", "event_recall", "event_f1")


def peer_versions() -> dict:
    versions = {}
    for name in ("pyod", "stumpy"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return versions


def family_means(results: list[dict]) -> dict:
    """Per detector: mean VUS-PR / ROC-AUC / PR-AUC and event precision / recall / F1 over the series with
    anomalies (precision over those with an alarm), the median alarm rate and its median ratio to the
    labelled anomaly fraction, seconds, UCR top-1 hits; the same for lstmae's variants. For the detectors and
    lstmae's threshold rules also the mean alarm rate on the series without anomalies ("clean_alarm_rate", None
    without any): every alarm there is false, and the ratio to the labelled fraction cannot show it."""
    with_events = [result for result in results if result["n_anomalous_rows"]]
    clean = [result for result in results if not result["n_anomalous_rows"]]
    means = {}
    for name in results[0]["lstmae_variants"]:
        means[f"lstmae {name}"] = {key: _mean(result["lstmae_variants"][name][key] for result in with_events)
                                   for key in ("vus_pr", "roc_auc", "pr_auc")}
    for rule in results[0]["lstmae_thresholds"]:
        rates = [result["lstmae_thresholds"][rule]["alarm_rate"] for result in results]
        rates = [rate for rate in rates if rate is not None]
        ratios = [result["lstmae_thresholds"][rule]["alarm_ratio"] for result in with_events]
        ratios = [ratio for ratio in ratios if ratio is not None]
        # A rule that cannot be fitted on a series (e.g. dspot on too few held-out rows) is an error for its
        # user: it counts as finding no event there.
        rows = [result["lstmae_thresholds"][rule] for result in with_events]
        means[f"lstmae threshold {rule}"] = {
            "alarm_rate": float(np.median(rates)) if rates else None,
            "alarm_ratio": float(np.median(ratios)) if ratios else None,
            "n_failed": sum(result["lstmae_thresholds"][rule]["alarm_rate"] is None for result in results),
            "clean_alarm_rate": _mean(result["lstmae_thresholds"][rule]["alarm_rate"] for result in clean),
            "event_precision": _mean(row["event_precision"] for row in rows),
            "event_recall": _mean(0.0 if row["alarm_rate"] is None else row["event_recall"] for row in rows),
            "event_f1": _mean(0.0 if row["alarm_rate"] is None else row["event_f1"] for row in rows)}
    for name in detector_names({name for result in results for name in result["detectors"]}):
        rows = [result["detectors"][name] for result in results if name in result["detectors"]]
        if not rows:
            continue
        scored = [result["detectors"][name] for result in with_events if name in result["detectors"]]
        means[name] = {key: _mean(row[key] for row in scored) for key in METRICS if key != "alarm_rate"}
        means[name]["alarm_rate"] = float(np.median([row["alarm_rate"] for row in rows]))
        means[name]["alarm_ratio"] = float(np.median([result["detectors"][name]["alarm_rate"]
                                                      / result["anomaly_fraction"] for result in with_events
                                                      if name in result["detectors"]])) if scored else None
        means[name]["n_series"] = len(scored)
        means[name]["storms"] = [sum(row["alarm_rate"] > STORM_SHARE for row in rows), len(rows)]
        means[name]["clean_alarm_rate"] = _mean(result["detectors"][name]["alarm_rate"] for result in clean
                                                if name in result["detectors"])
        means[name]["seconds"] = float(sum(row["seconds"] for row in rows))
        if "epochs_run" in rows[0]:
            means[name]["epochs_run"] = float(np.mean([row["epochs_run"] for row in rows]))
        if "top1_hit" in rows[0]:
            means[name]["top1_hits"] = sum(row["top1_hit"] for row in rows)
            means[name]["top1_hits_tolerance"] = sum(row["top1_hit_tolerance"] for row in rows)
            means[name]["n_top1"] = len(rows)
    means["labelled_fraction"] = float(np.median([result["anomaly_fraction"] for result in with_events]))
    seeds = [name for name in detector_names(means) if name == "lstmae" or name.startswith(SEED_PREFIX)]
    if len(seeds) > 1 and with_events:
        means["seeds"] = seed_spread(with_events, seeds, means)
    return means


def seed_spread(with_events: list[dict], seeds: list[str], means: dict) -> dict:
    """How far lstmae's seeds `seeds` (detector names) lie apart on a family's series with anomalies: per
    series the range (max - min) of their VUS-PR, its mean and max; the range of their family means of
    VUS-PR and event F1; and the ensemble's family means minus the mean of the seeds'."""
    per_series = np.array([[result["detectors"][name]["vus_pr"] for name in seeds] for result in with_events])
    spread = {"n_seeds": len(seeds), "series_vus_pr_range_mean": float(np.ptp(per_series, axis=1).mean()),
              "series_vus_pr_range_max": float(np.ptp(per_series, axis=1).max())}
    for key in ("vus_pr", "event_f1"):
        values = [means[name][key] for name in seeds]
        spread[f"{key}_range"] = float(np.ptp(values))
        for name, label in (("lstmae_ensemble", "ensemble"), ("lstmae_selected", "selected")):
            if name in means:
                spread[f"{label}_minus_seed_mean_{key}"] = means[name][key] - float(np.mean(values))
    return spread


def detector_names(names) -> list[str]:
    """The detectors among `names` in table order: lstmae, its extra seeds and their ensemble, the rest as
    DETECTORS."""
    seeds = sorted((name for name in names if name.startswith(SEED_PREFIX)),
                   key=lambda name: int(name.removeprefix(SEED_PREFIX)))
    order = ["lstmae", *seeds, "lstmae_ensemble", "lstmae_selected", *DETECTORS[1:]]
    return [name for name in order if name in names]


def detector_title(name: str) -> str:
    if name.startswith(SEED_PREFIX):
        return f"lstmae seed {name.removeprefix(SEED_PREFIX)}"
    titles = {"lstmae_ensemble": "lstmae ensemble", "lstmae_selected": "lstmae lowest held-out loss"}
    return titles[name] if name in titles else DETECTOR_TITLES[name]


def _mean(values) -> float | None:
    values = [value for value in values if value is not None]
    return float(np.mean(values)) if values else None


def markdown(report: dict) -> str:
    datasets, settings = report["datasets"], report["settings"]
    defaults = settings["lstmae_defaults"]
    lines = ["## Detection study", "",
             f"`{report['command']}` ({report['runtime_s'] / 60:.0f} min"
             + (f", plus the {report['resumed_jobs']} jobs of the stopped run it resumed" if report.get("resumed_jobs")
                else "") + " on "
             f"{report['machine']['cpus']} cores of {report['machine'].get('cpu', 'an unrecorded CPU')}, "
             f"{settings['jobs']} process(es) x "
             f"{settings['threads']} torch thread(s){', --quick' if settings['quick'] else ''}; "
             f"load average {report['machine'].get('load_average', '?')} at the end: the machine was shared, "
             "so the seconds are slow and noisy).", ""]
    if report.get("note"):  # a results file edited after its run says how, e.g. tables left out
        lines += [f"**Note:** {report['note']}", ""]
    if report.get("unfinished_jobs"):
        lines += [f"**A stopped run's tables: {len(report['unfinished_jobs'])} job(s) did not finish** "
                  f"({', '.join(report['unfinished_jobs'])}); `--resume` finishes them.", ""]
    if "ecg5000" in datasets:
        ecg = datasets["ecg5000"]
        lines += [f"### ECG5000: trained on {ecg['n_train']} normal beats; threshold chosen without test labels",
                  "", "| detector | ROC-AUC | PR-AUC | balanced accuracy | normal beats correct | "
                  "anomalous beats correct |", "|---|---|---|---|---|---|"]
        best = {key: max(row[key] for row in ecg["detectors"].values())
                for key in ("roc_auc", "pr_auc", "balanced_accuracy")}
        for name, row in ecg["detectors"].items():
            cells = [bold_if(row[key], best[key]) for key in ("roc_auc", "pr_auc", "balanced_accuracy")]
            lines.append(f"| {DETECTOR_TITLES[name]} | {' | '.join(cells)} | {counts(row, 'normals')} | "
                         f"{counts(row, 'anomalies')} |")
        lstmae_row = ecg["detectors"]["lstmae"]
        lines += ["", f"lstmae at its defaults {json.dumps(settings['ecg5000']['lstmae'])} (epochs run "
                  f"{lstmae_row.get('epochs_run')}, {lstmae_row.get('seconds', 0):.0f} s); counts in brackets "
                  "scaled to 145 beats, as in the PyTorch tutorial (142/145 and 142/145).", ""]
        if "lstmae_variants" in ecg:
            rules = list(next(iter(ecg["lstmae_variants"].values()))["balanced_accuracy"])
            lines += ["lstmae's error models and threshold rules on the same network (balanced accuracy at each "
                      "rule's threshold, fitted on the held-out normal beats):", "",
                      "| error model | ROC-AUC | PR-AUC | " + " | ".join(f"`{rule}`" for rule in rules) + " |",
                      "|---|---|---|" + "---|" * len(rules)]
            for name, row in ecg["lstmae_variants"].items():
                lines.append(f"| {name} | {row['roc_auc']:.3f} | {row['pr_auc']:.3f} | "
                             + " | ".join(f"{row['balanced_accuracy'][rule]:.3f}" for rule in rules) + " |")
            lines.append("")
    families = [family for family in SERIES_FAMILIES if family in datasets]
    if families:
        lines += ["### Series: every detector at its own default threshold", "",
                  "Mean over each family's series with anomalies: VUS-PR (TSB-AD's, sliding window from the test "
                  "series' period), point-wise ROC-AUC and PR-AUC, event precision / recall / F1 (an alarm run is "
                  "right when it touches a labelled range; a range is found when an alarm falls in it). Alarm rate: "
                  "the median share of test rows flagged, with the median of alarm rate / labelled anomaly fraction "
                  "in brackets (goal for lstmae: <= 2). Best per family in bold.", "",
                  "| data set | detector | VUS-PR | ROC-AUC | PR-AUC | alarm rate (x labelled) | event P | event R "
                  "| event F1 |", "|---|---|---|---|---|---|---|---|---|"]
        for family in families:
            means = datasets[family]["means"]
            present = detector_names(means)
            best = {key: max((means[name][key] for name in present if means[name][key] is not None), default=None)
                    for key in ("vus_pr", "roc_auc", "pr_auc", "event_precision", "event_recall", "event_f1")}
            for name in present:
                row = means[name]
                cells = [cell(row[key], best[key]) for key in ("vus_pr", "roc_auc", "pr_auc")]
                ratio = "" if row["alarm_ratio"] is None else f" ({row['alarm_ratio']:.1f}x)"
                cells.append(f"{row['alarm_rate']:.1%}{ratio}")
                cells += [cell(row[key], best[key]) for key in ("event_precision", "event_recall", "event_f1")]
                lines.append(f"| {FAMILY_TITLES[family]} ({row['n_series']}) | {detector_title(name)} | "
                             + " | ".join(cells) + " |")
            lines.append(f"| | labelled anomaly fraction (median) | | | | {means['labelled_fraction']:.1%} | | | |")
        lines.append("")
        lines += detector_summary(datasets, families)
        # Runs before baseline_threshold gave the baselines lstmae's own rule.
        baseline_rule = settings["series"].get("baseline_threshold", defaults["threshold"]["rows"])
        lines += ["Thresholds: lstmae raises its alarms (the default threshold rule `" + defaults["threshold"]["rows"]
                  + "` fitted on held-out row scores, then the default alarm rules); IsolationForest, PCA, the "
                  f"rolling z-score and the MP discord flag rows above `{baseline_rule}` fitted on their held-out "
                  "training rows' scores; PyOD flags rows above its contamination threshold (default 0.1: the 90th "
                  "percentile of its training rows' scores). Only lstmae applies alarm rules.", ""]
        variant_names = [name for name in datasets[families[0]]["means"]
                         if name.startswith("lstmae ") and not name.startswith("lstmae threshold ")]
        if variant_names:
            lines += ["### lstmae: error model x window-to-row mapping (same networks; mean VUS-PR / ROC-AUC)", "",
                      "| data set | " + " | ".join(name.removeprefix("lstmae ") for name in variant_names) + " |",
                      "|---|" + "---|" * len(variant_names)]
            for family in families:
                means = datasets[family]["means"]
                best = max(means[name]["vus_pr"] for name in variant_names)
                lines.append(f"| {FAMILY_TITLES[family]} | " + " | ".join(
                    f"{bold_if(means[name]['vus_pr'], best)} / {means[name]['roc_auc']:.3f}" for name in variant_names)
                    + " |")
            lines.append("")
        variants = [name.removeprefix("lstmae threshold ").split("/") for name in datasets[families[0]]["means"]
                    if name.startswith("lstmae threshold ")]
        variants = [parts for parts in variants if "+min_length" not in parts[0]]  # alarm variants: the ranking only
        rules, hows, error_models = (list(dict.fromkeys(parts)) for parts in zip(*variants)) if variants else ([],) * 3
        if rules:
            lines += ["### lstmae: threshold rules x window-to-row mapping x error model, with the default alarm rules",
                      "", "Median alarm rate / labelled fraction (goal <= 2); mean event recall (goal >= 0.6) / F1. "
                      "Each rule is fitted on the held-out training rows scored the same way; the adaptive rules "
                      "(dspot, telemanom) then move with the test rows, causally.", "",
                      "<details><summary>Every combination</summary>", "",
                      "| data set | error model | how | " + " | ".join(f"`{rule}`" for rule in rules) + " |",
                      "|---|---|---|" + "---|" * len(rules)]
            for family in families:
                means = datasets[family]["means"]
                for error_model in error_models:
                    for how in hows:
                        cells = [means[f"lstmae threshold {rule}/{how}/{error_model}"] for rule in rules]
                        lines.append(f"| {FAMILY_TITLES[family]} | {error_model} | {how} | " + " | ".join(
                            f"{'n/a' if c['alarm_ratio'] is None else format(c['alarm_ratio'], '.1f') + 'x'}; "
                            f"{fmt(c['event_recall'])} / {fmt(c['event_f1'])}" for c in cells) + " |")
            lines += ["", "</details>", ""]
            configured_how, configured_error_model = settings["series"]["how"], defaults["error_model"]
            if f"lstmae threshold {rules[0]}/{configured_how}/{configured_error_model}" in datasets[families[0]]["means"]:
                lines += [f"Each rule at the configured mapping and error model (`{configured_how}` / "
                          f"`{configured_error_model}`): median alarm rate (x labelled); mean event precision / "
                          "recall / F1; where a family has series without anomalies, the mean share of their rows "
                          "alarmed (`clean`: every one a false alarm); the families meeting both alarm goals and "
                          "the mean event F1 over the families, as the ranking below counts them.", "",
                          "| rule | " + " | ".join(FAMILY_TITLES[family] for family in families)
                          + " | goals met | mean event F1 |", "|---|" + "---|" * (len(families) + 2)]
                by_variant = {row["variant"]: row for row in rank_defaults(datasets, families)}
                for rule in rules:
                    row = by_variant[f"{rule}/{configured_how}/{configured_error_model}"]
                    lines.append(f"| `{rule}` | " + " | ".join(alarm_cell(row["families"][family])
                                                               for family in families)
                                 + f" | {row['goals_met']}/{len(families)} | {fmt(row['event_f1'])} |")
                lines.append("")
        ranked = rank_defaults(datasets, families)
        if ranked:
            lines += ["### Choosing lstmae's defaults", "",
                      "Every threshold rule x how x error model of the same networks, ranked by the number of "
                      f"families where it meets both alarm goals (median alarm rate <= {ALARM_RATIO_GOAL:g}x the "
                      f"labelled fraction, mean event recall >= {EVENT_RECALL_GOAL:g}), then by mean event F1 over "
                      "the families, then mean VUS-PR. A rule that cannot be fitted on a series (too few held-out rows, "
                      "say) meets no goal in its family and finds no event there. Per family: alarm rate x labelled; "
                      "event recall / F1; VUS-PR. The configured defaults are marked *.", "",
                      "| rank | rule / how / error model | goals met | mean event F1 | mean VUS-PR | "
                      + " | ".join(FAMILY_TITLES[family] for family in families) + " |",
                      "|---|---|---|---|---|" + "---|" * len(families)]
            configured = f"{defaults['threshold']['rows']}/{settings['series']['how']}/{defaults['error_model']}"
            shown = ranked[:TOP_DEFAULTS] + [row for row in ranked[TOP_DEFAULTS:] if row["variant"] == configured]
            for row in shown:
                cells = []
                for family in families:
                    c = row["families"][family]
                    ratio = "n/a" if c["alarm_ratio"] is None else f"{c['alarm_ratio']:.1f}x"
                    cells.append(f"{ratio}; {fmt(c['event_recall'])} / {fmt(c['event_f1'])}; {fmt(c['vus_pr'])}")
                mark = "*" if row["variant"] == configured else ""
                lines.append(f"| {row['rank']} | `{row['variant']}`{mark} | {row['goals_met']}/{len(families)} | "
                             f"{fmt(row['event_f1'])} | {fmt(row['vus_pr'])} | " + " | ".join(cells) + " |")
            lines.append("")
        if "ucr" in datasets:
            means = datasets["ucr"]["means"]
            lines += [f"UCR top-1 hits (the highest-scoring row within {UCR_TOLERANCE} rows of the anomaly; "
                      "strictly inside it in brackets): " + ", ".join(
                          f"{detector_title(name)} {means[name]['top1_hits_tolerance']}/{means[name]['n_top1']} "
                          f"({means[name]['top1_hits']})" for name in detector_names(means)) + ".", ""]
        series_settings = settings["series"]
        window = series_settings["window"]
        if window == "period":
            low, fallback, high = PERIOD_WINDOWS
            window = f"each series' period ({low}-{high} rows, {fallback} where none is found)"
        lines += [f"Series settings: window {window}, how=\"{series_settings['how']}\", "
                  f"lstmae {json.dumps(series_settings['lstmae'])} (empty: its defaults), "
                  + ("every training window (stride 1)" if series_settings["max_train_steps"] is None else
                     "training windows cut with a stride that keeps windows x window <= "
                     f"{series_settings['max_train_steps']}")
                  + "".join(f"; {family}: {json.dumps(settings[family])}" for family in families if settings.get(family))
                  + ". NAB series without anomalies have no AUC and are left out of the means (not of the alarm "
                  "rate). The MP discord scores univariate series only (NAB, UCR).", ""]
        if series_settings.get("ensemble_seeds"):
            lines += [f"lstmae seed S: the same settings trained with random_state S (the run's seed is "
                      f"{settings['seed']}); lstmae ensemble: the mean of the row scores of those "
                      f"{len(series_settings['ensemble_seeds']) + 1} networks, its threshold the default rule on "
                      "the mean of their held-out row scores, then the default alarm rules; its seconds are all "
                      "of theirs. lstmae lowest held-out loss: on each series the one of those networks whose loss on "
                      "the whole held-out part is the lowest (as n_init chooses), with its own scores and alarms.", "",
                      "How far the seeds lie apart (series with anomalies): VUS-PR range (max - min over the seeds) "
                      "per series, its mean and max; the range of the seeds' family means; the ensemble's and the "
                      "lowest held-out loss's family means minus the seeds' mean.", "",
                      "| data set | seeds | per-series VUS-PR range, mean / max | family VUS-PR range | family event "
                      "F1 range | ensemble - seeds' mean: VUS-PR / event F1 | lowest held-out loss - seeds' mean |",
                      "|---|---|---|---|---|---|---|"]
            for family in families:
                spread = datasets[family]["means"].get("seeds")
                if spread is None:
                    continue
                against_mean = [" / ".join(f"{spread[f'{label}_minus_seed_mean_{key}']:+.3f}"
                                           for key in ("vus_pr", "event_f1"))
                                if f"{label}_minus_seed_mean_vus_pr" in spread else "-"
                                for label in ("ensemble", "selected")]
                lines.append(f"| {FAMILY_TITLES[family]} | {spread['n_seeds']} | "
                             f"{spread['series_vus_pr_range_mean']:.3f} / "
                             f"{spread['series_vus_pr_range_max']:.3f} | {spread['vus_pr_range']:.3f} | "
                             f"{spread['event_f1_range']:.3f} | {' | '.join(against_mean)} |")
            lines.append("")
        epochs = [f"{FAMILY_TITLES[family]} {datasets[family]['means']['lstmae']['epochs_run']:.0f}"
                  for family in families if "epochs_run" in datasets[family]["means"].get("lstmae", {})]
        if epochs:
            lines += ["lstmae's epochs run (mean over the series): " + ", ".join(epochs) + ".", ""]
        present = detector_names({name for family in families for name in datasets[family]["means"]})
        lines += ["<details><summary>Per series (VUS-PR / event F1 / alarm rate)</summary>", "",
                  "| data set | series | labelled | " + " | ".join(detector_title(name) for name in present) + " |",
                  "|---|---|---|" + "---|" * len(present)]
        for family in families:
            for result in datasets[family]["series"]:
                cells = [triple(result["detectors"].get(name)) for name in present]
                lines.append(f"| {family} | {result['name']} | {result['anomaly_fraction']:.1%} | {' | '.join(cells)} |")
        lines += ["", "</details>", ""]
    return "\n".join(lines)


ALARM_RATIO_GOAL, EVENT_RECALL_GOAL, TOP_DEFAULTS = 2.0, 0.6, 8


def rank_defaults(datasets: dict, families: list[str]) -> list[dict]:
    """lstmae's threshold rule / how / error model combinations, best first, with per-family figures: the
    number of families meeting both alarm goals, then the mean event F1 over the families, then the mean
    VUS-PR (of that how and error model)."""
    names = [name.removeprefix("lstmae threshold ") for name in datasets[families[0]]["means"]
             if name.startswith("lstmae threshold ")]
    rows = []
    for variant in names:
        _, how, error_model = variant.split("/")
        per_family = {}
        for family in families:
            means = datasets[family]["means"]
            alarms = means[f"lstmae threshold {variant}"]
            per_family[family] = {**alarms, "vus_pr": means[f"lstmae {error_model}/{how}"]["vus_pr"]}
        met = sum(meets_alarm_goals(c) for c in per_family.values())
        rows.append({"variant": variant, "goals_met": met, "families": per_family,
                     "event_f1": _mean(c["event_f1"] for c in per_family.values()),
                     "vus_pr": _mean(c["vus_pr"] for c in per_family.values())})
    rows.sort(key=lambda row: (-row["goals_met"], -(row["event_f1"] or 0.0), -(row["vus_pr"] or 0.0)))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def missed_alarm_goals(c: dict) -> list[str]:
    """Which of issue 15's alarm goals a family's means `c` miss: "rate" (median alarm rate above
    ALARM_RATIO_GOAL x the labelled fraction, or none), "recall" (mean event recall under EVENT_RECALL_GOAL),
    "a series failed" (a rule that could not be fitted on some series)."""
    return [what for what, missed in (("rate", c["alarm_ratio"] is None or c["alarm_ratio"] > ALARM_RATIO_GOAL),
                                      ("recall", (c["event_recall"] or 0.0) < EVENT_RECALL_GOAL),
                                      ("a series failed", bool(c.get("n_failed")))) if missed]


def meets_alarm_goals(c: dict) -> bool:
    return not missed_alarm_goals(c)


def detector_summary(datasets: dict, families: list[str]) -> list[str]:
    """Table lines: each detector present in every family, over the families: how many meet both alarm goals,
    mean event F1, mean VUS-PR, and the mean share of rows it alarms on each family's series without anomalies."""
    names = [name for name in detector_names(datasets[families[0]]["means"])
             if all(name in datasets[family]["means"] for family in families)]
    with_clean = [family for family in families
                  if any(datasets[family]["means"][name].get("clean_alarm_rate") is not None for name in names)]
    lines = [f"Each detector over the {len(families)} families: the families where it meets both alarm goals "
             f"(median alarm rate <= {ALARM_RATIO_GOAL:g}x the labelled fraction, mean event recall >= "
             f"{EVENT_RECALL_GOAL:g}), its mean event F1 and VUS-PR over the families"
             + (", and the mean share of rows it alarms on the series without anomalies (every alarm false)"
                if with_clean else "") + ".", "",
             "| detector | goals met | mean event F1 | mean VUS-PR | storms |"
             + "".join(f" clean: {FAMILY_TITLES[family]} |" for family in with_clean),
             "|---|---|---|---|---|" + "---|" * len(with_clean)]
    for name in names:
        rows = [datasets[family]["means"][name] for family in families]
        clean = [datasets[family]["means"][name].get("clean_alarm_rate") for family in with_clean]
        lines.append(f"| {detector_title(name)} | {sum(map(meets_alarm_goals, rows))}/{len(families)} | "
                     f"{fmt(_mean(row['event_f1'] for row in rows))} | "
                     f"{_mean(row['vus_pr'] for row in rows):.3f} | {storm_count(rows)} |"
                     + "".join(" n/a |" if rate is None else f" {rate:.1%} |" for rate in clean))
    return lines + ["", STORMS_NOTE, ""]


def comparison(reports: list[tuple[str, dict]]) -> list[str]:
    """Markdown lines setting study runs (name, report) side by side: per series family and run, lstmae's
    VUS-PR and event F1 each beside the best other detector's (bold where lstmae leads), and its median alarm
    rate x labelled and mean event recall against the alarm goals; then per run the goals met, the means
    over the families and the mean share of rows alarmed on the series without anomalies. The family means
    are recomputed from each run's series, as --tables-only does."""
    runs = []
    for name, report in reports:
        datasets = {family: family_means(data["series"]) for family, data in report["datasets"].items()
                    if family in SERIES_FAMILIES}
        runs.append((name, report["settings"].get("seed"), datasets))
    families = [family for family in SERIES_FAMILIES if all(family in datasets for _, _, datasets in runs)]
    if not families:
        return ["No series family is in every run."]
    lines = ["| family | run | seed | VUS-PR (best peer) | event F1 (best peer) | alarm rate x labelled; "
             "event recall (alarm goals) |", "|---|---|---|---|---|---|"]
    for family in families:
        for index, (name, seed, datasets) in enumerate(runs):
            means = datasets[family]
            mine = means["lstmae"]
            cells = []
            for key in ("vus_pr", "event_f1"):
                peers = {peer: means[peer][key] for peer in DETECTORS[1:]
                         if peer in means and means[peer][key] is not None}
                best = max(peers, key=peers.get)
                text = fmt(mine[key], 3)
                cells.append(f"{'**' + text + '**' if mine[key] is not None and mine[key] > peers[best] else text} "
                             f"({DETECTOR_TITLES[best]} {peers[best]:.3f})")
            missed = missed_alarm_goals(mine)
            ratio = "n/a" if mine["alarm_ratio"] is None else f"{mine['alarm_ratio']:.1f}x"
            goals = "missed: " + ", ".join(missed) if missed else "met"
            title = f"{FAMILY_TITLES[family]} ({mine['n_series']})" if index == 0 else ""
            lines.append(f"| {title} | {name} | {seed} | {' | '.join(cells)} | {ratio}; "
                         f"{fmt(mine['event_recall'])} ({goals}) |")
    with_clean = [family for family in families
                  if any(datasets[family]["lstmae"]["clean_alarm_rate"] is not None for _, _, datasets in runs)]
    lines += ["", "| run | seed | lstmae's goals met | mean event F1 | mean VUS-PR | storms |"
              + "".join(f" clean: {FAMILY_TITLES[family]} |" for family in with_clean),
              "|---|---|---|---|---|---|" + "---|" * len(with_clean)]
    for name, seed, datasets in runs:
        rows = [datasets[family]["lstmae"] for family in families]
        clean = [datasets[family]["lstmae"]["clean_alarm_rate"] for family in with_clean]
        means = f"{fmt(_mean(row['event_f1'] for row in rows))} | {fmt(_mean(row['vus_pr'] for row in rows), 3)}"
        lines.append(f"| {name} | {seed} | {sum(map(meets_alarm_goals, rows))}/{len(families)} | {means} | "
                     f"{storm_count(rows)} |" + "".join(" n/a |" if r is None else f" {r:.1%} |" for r in clean))
    return lines + ["", STORMS_NOTE]


STORMS_NOTE = (f"storms: the series whose alarms cover more than {STORM_SHARE:.0%} of their rows (lstmae warns on "
               "them: AlarmStormWarning), of all the families' series, those without anomalies included.")


def storm_count(rows: list[dict]) -> str:
    """'storms/series' summed over family means (`family_means` of one detector per family)."""
    return f"{sum(row['storms'][0] for row in rows)}/{sum(row['storms'][1] for row in rows)}"


def cell(value, best) -> str:
    return "n/a" if value is None else bold_if(value, best)


def alarm_cell(c: dict) -> str:
    """'1.4% (0.1x); P / R / F1' of a rule's family means, then '; clean 3.0%' where the family has series
    without anomalies."""
    ratio = "n/a" if c["alarm_ratio"] is None else f"{c['alarm_ratio']:.1f}x"
    rate = "n/a" if c["alarm_rate"] is None else f"{100 * c['alarm_rate']:.1f}%"
    clean = "" if c.get("clean_alarm_rate") is None else f"; clean {100 * c['clean_alarm_rate']:.1f}%"
    return f"{rate} ({ratio}); {fmt(c['event_precision'])} / {fmt(c['event_recall'])} / {fmt(c['event_f1'])}{clean}"


def fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def triple(metrics: dict | None) -> str:
    if metrics is None:
        return "-"
    return f"{fmt(metrics['vus_pr'])} / {fmt(metrics['event_f1'])} / {metrics['alarm_rate']:.1%}"


def counts(row: dict, kind: str) -> str:
    correct, total = row[f"{kind}_correct"], row[kind]
    return f"{correct}/{total} ({round(145 * correct / total)}/145)"


def bold_if(value: float, best: float) -> str:
    text = f"{value:.3f}"
    return f"**{text}**" if text == f"{best:.3f}" else text


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
