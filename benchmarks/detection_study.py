"""The real-data anomaly detection study: lstmae against simple baselines, one command.

    python benchmarks/detection_study.py [--quick] [--datasets ecg5000,msl,nab,keogh,ucr]
                                         [--out benchmarks/results] [--data-dir DIR]
                                         [--set series.window=100 ...]

Protocol (the same for every detector):
- ECG5000: train on a seeded 80% of the normal beats; test on the other 20% and all anomalous
  beats. Each detector sets its threshold without test labels, by lstmae's default rule
  (sigma:3: mean + 3 standard deviations) on its scores of the last 10% of its training data,
  which it did not fit on.
- lstmae runs with its defaults except the network size, epochs and patience (SETTINGS); the
  same networks are also scored with every error model, window-to-row mapping and threshold
  rule in VARIANTS, which is how the defaults were chosen.
- Series (MSL, NAB, Keogh ECG, UCR 135-138): train on the documented anomaly-free part,
  score the test part alone; windows of `window` rows; window scores become row scores with
  `how` ("max": the largest score of the windows covering a row). Point-wise ROC-AUC / PR-AUC
  on the rows every detector scores. UCR: the top-1 row is a hit within 100 rows of the anomaly.
- Baselines: IsolationForest and PCA on the same standardised windows, and a rolling z-score.

Writes detection_results.json (per series, means, settings, timings, machine) and
detection_results.md (tables for the README) to --out. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import numpy as np

from detection.baselines import make_window_baselines, rolling_zscore
from detection.datasets import LOADERS, SERIES_FAMILIES, UCR_TOLERANCE, load_ecg5000
from lstmae.config import DEFAULTS
from lstmae.evaluation import detection_metrics, sequence_metrics
from lstmae.scoring import parse_threshold, window_to_points

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("ecg5000",) + SERIES_FAMILIES
DETECTORS = ("lstmae", "isolation_forest", "pca", "rolling_zscore")
DETECTOR_TITLES = {"lstmae": "lstmae", "isolation_forest": "IsolationForest", "pca": "PCA",
                   "rolling_zscore": "rolling z-score"}
FAMILY_TITLES = {"msl": "MSL (NASA)", "nab": "NAB", "keogh": "Keogh ECG", "ucr": "UCR anomaly 135-138"}
# The baselines' threshold rule: lstmae's default, fitted the same way on their held-out scores.
BASELINE_THRESHOLD = parse_threshold(DEFAULTS["threshold"])

SETTINGS = {
    "seed": 0,
    "ecg5000": {
        "test_fraction": 0.2,
        # Everything else (loss, learning rate, batch, error model, threshold) is lstmae's default.
        "lstmae": {"encoder": [32, 16], "epochs": 60, "patience": 8},
    },
    # For every series family; a family block (e.g. "msl": {"window": 100}) overrides it.
    "series": {
        "window": 50,
        "how": DEFAULTS["how"],
        # Longer training parts are windowed with a stride that keeps windows x window <= this.
        "max_train_steps": 50_000,
        # Everything else is lstmae's default; 40 epochs keep the full run near 10 minutes.
        "lstmae": {"encoder": [32, 16], "epochs": 40},
    },
}
# Scored from the same trained network (no retraining): error models x window->row mappings,
# and for ECG5000 the threshold rules, so the study can say which default wins.
VARIANTS = {"error_models": ["mse", "mahalanobis"], "hows": ["end", "max"],
            "thresholds": ["quantile:0.99", "quantile:0.98", "quantile:0.995", "sigma:2", "sigma:3"]}
QUICK = {
    "max_ecg_train": 600,
    "max_series_per_family": 2,
    "ecg5000": {"lstmae": {"epochs": 5}},
    "series": {"max_train_steps": 20_000, "lstmae": {"epochs": 3}},
}


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"error: data folder {args.data_dir} not found; pass --data-dir "
              "(the shared data sets, see ../shared/data/README.md)", file=sys.stderr)
        return 2
    settings = build_settings(args)
    started = time.perf_counter()
    jobs = make_jobs(args.data_dir, args.datasets, settings)
    log(f"{len(jobs)} jobs on {settings['jobs']} process(es) x {settings['threads']} torch thread(s)")
    results = [None] * len(jobs)
    for n_done, (index, result) in enumerate(run_jobs(jobs, settings), start=1):
        results[index] = result
        log(f"[{n_done}/{len(jobs)}] {result['family']} {result['name']}: {summary_line(result)}")
    command = "python benchmarks/detection_study.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = build_report(results, settings, command.strip(), time.perf_counter() - started)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detection_results.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "detection_results.md").write_text(markdown(report))
    log(f"done in {report['runtime_s'] / 60:.1f} min; wrote {args.out}/detection_results.{{json,md}}")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two series per family, a few epochs")
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated subset of {','.join(DATASETS)}")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes, one series each at a time")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per process (1: on a shared 2-core machine 2 threads "
                             "per process ran several times slower)")
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
    for item in args.set:
        key, _, text = item.partition("=")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        node = settings
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    settings.update(quick=args.quick, jobs=args.jobs, threads=args.threads)
    return settings


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
    import torch

    torch.set_num_threads(threads)


def run_job(job: tuple) -> dict:
    kind, task, settings, seed = job
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
        variant = copy.copy(model).set_params(error_model=error_model).recalibrate(task.train[n_fit:])
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
        threshold = BASELINE_THRESHOLD.fit(baseline.score(train[n_fit:]))
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
    """One detector's scores (T_test,) (NaN: no score), its threshold and facts for the report."""

    scores: np.ndarray
    threshold: float
    info: dict


def run_series(task, settings: dict, seed: int) -> dict:
    """Every detector on one series: row scores over the test part, metrics on common rows."""
    from lstmae import LSTMAutoencoder, temporalize

    window, how = settings["window"], settings["how"]
    stride = train_stride(len(task.train), window, settings["max_train_steps"])
    train_windows, _ = temporalize(task.train, window, stride)
    started = time.perf_counter()
    model = LSTMAutoencoder(**settings["lstmae"], random_state=seed, progress=False).fit(train_windows)
    frame = model.score_series(task.test, how=how)
    lstmae_scores = RowScores(np.where(frame["valid"], frame["score"], np.nan), model.threshold_,
                              {**training_summary(model), "seconds": time.perf_counter() - started})
    n_fit = len(train_windows) - int(round(len(train_windows) * model.validation_fraction))
    detectors = {"lstmae": lstmae_scores, **baseline_scores(task, window, how, stride, n_fit, seed)}
    result = {"family": task.family, "name": task.name, "n_train_rows": len(task.train),
              "n_test_rows": len(task.test), "train_stride": stride, **series_metrics(task, detectors)}
    result["lstmae_variants"], result["lstmae_thresholds"] = series_variants(
        model, task, train_windows[n_fit:], window, how, result.pop("common"))
    return result


def series_variants(model, task, held_out, window: int, how: str, common) -> tuple[dict, dict]:
    """ROC-AUC / PR-AUC of every error model x mapping of the trained network on the common rows;
    and for the network as configured (its error model, `how`), the point-wise F1 and alarm rate
    at each threshold rule of VARIANTS, fitted on the held-out training windows."""
    from lstmae import temporalize
    from sklearn.metrics import f1_score

    test_windows = temporalize(task.test, window)[0]
    variants, thresholds = {}, {}
    for error_model in VARIANTS["error_models"]:
        variant = copy.copy(model).set_params(error_model=error_model).recalibrate(held_out)
        window_scores = variant.anomaly_score(test_windows)
        for variant_how in VARIANTS["hows"]:
            scores = window_to_points(window_scores, len(task.test), window, how=variant_how)[0]
            metrics = detection_metrics(task.labels, scores, variant.threshold_, valid=common)
            variants[f"{error_model}/{variant_how}"] = {key: metrics[key] for key in ("roc_auc", "pr_auc", "f1")}
            if error_model == model.error_model and variant_how == how:
                for rule in VARIANTS["thresholds"]:
                    flags = scores[common] > variant.calibrate_threshold(held_out, threshold=rule)
                    thresholds[rule] = {"f1": float(f1_score(task.labels[common], flags, zero_division=0)),
                                        "alarm_rate": float(flags.mean())}
    return variants, thresholds


def train_stride(n_rows: int, window: int, max_train_steps: int) -> int:
    """The smallest stride that keeps windows x window rows per epoch within max_train_steps."""
    return max(1, math.ceil((n_rows - window + 1) / max(1, max_train_steps // window)))


def baseline_scores(task, window: int, how: str, stride: int, n_fit: int, seed: int) -> dict[str, RowScores]:
    """The baselines on the training windows lstmae fitted on (the first n_fit) and thresholded
    on (the rest), standardised with the statistics of the rows fitted on."""
    from lstmae import temporalize

    fit_rows = task.train[: (n_fit - 1) * stride + window]
    mean, std = fit_rows.mean(axis=0), fit_rows.std(axis=0)
    std[std < 1e-12] = 1.0
    train, test = (task.train - mean) / std, (task.test - mean) / std
    train_windows = temporalize(train, window, stride)[0]
    test_windows = temporalize(test, window)[0]
    results = {}
    for baseline in make_window_baselines(seed):
        started = time.perf_counter()
        baseline.fit(train_windows[:n_fit])
        threshold = BASELINE_THRESHOLD.fit(baseline.score(train_windows[n_fit:]))
        scores = window_to_points(baseline.score(test_windows), len(test), window, how=how)[0]
        results[baseline.name] = RowScores(scores, threshold, {"seconds": time.perf_counter() - started})
    started = time.perf_counter()
    # The held-out windows start at row n_fit * stride; the z-score needs `window` rows before.
    held_out = train[max(0, n_fit * stride - window):]
    held_out_scores = rolling_zscore(held_out, window)
    threshold = BASELINE_THRESHOLD.fit(held_out_scores[~np.isnan(held_out_scores)])
    results["rolling_zscore"] = RowScores(rolling_zscore(test, window), threshold,
                                          {"seconds": time.perf_counter() - started})
    return results


def series_metrics(task, detectors: dict[str, RowScores]) -> dict:
    """Point-wise metrics of every detector on the rows that all of them score."""
    common = np.logical_and.reduce([~np.isnan(detector.scores) for detector in detectors.values()])
    results = {}
    for name, detector in detectors.items():
        metrics = detection_metrics(task.labels, detector.scores, detector.threshold, valid=common)
        matrix = metrics["confusion_matrix"]
        results[name] = {key: metrics[key] for key in ("roc_auc", "pr_auc", "vus_pr", "f1", "event_recall")}
        results[name]["alarm_rate"] = (matrix["tp"] + matrix["fp"]) / metrics["n"]
        if task.anomaly is not None:
            results[name].update(top1_hit(detector.scores, common, task.anomaly))
        results[name].update(detector.info)
    return {"n_scored_rows": int(common.sum()), "n_anomalous_rows": int(task.labels[common].sum()),
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
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "lstmae": lstmae.__version__,
                    "torch": torch.__version__, "numpy": np.__version__, "scikit-learn": sklearn.__version__},
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


def family_means(results: list[dict]) -> dict:
    """Per detector: mean ROC-AUC / PR-AUC / VUS-PR over series with anomalies, seconds, UCR hits."""
    means = {}
    for name in results[0]["lstmae_variants"]:
        rows = [result["lstmae_variants"][name] for result in results if result["lstmae_variants"][name]["roc_auc"]
                is not None]
        means[f"lstmae {name}"] = {key: float(np.mean([row[key] for row in rows])) for key in ("roc_auc", "pr_auc", "f1")}
    for rule in results[0]["lstmae_thresholds"]:
        rows = [result["lstmae_thresholds"][rule] for result in results]
        means[f"lstmae threshold {rule}"] = {key: float(np.mean([row[key] for row in rows]))
                                             for key in ("f1", "alarm_rate")}
    for name in DETECTORS:
        rows = [result["detectors"][name] for result in results]
        scored = [row for row in rows if row["roc_auc"] is not None]
        means[name] = {key: float(np.mean([row[key] for row in scored])) for key in ("roc_auc", "pr_auc", "vus_pr")}
        means[name]["n_series"] = len(scored)
        means[name]["seconds"] = float(sum(row["seconds"] for row in rows))
        if "top1_hit" in rows[0]:
            means[name]["top1_hits"] = sum(row["top1_hit"] for row in rows)
            means[name]["top1_hits_tolerance"] = sum(row["top1_hit_tolerance"] for row in rows)
            means[name]["n_top1"] = len(rows)
    return means


def markdown(report: dict) -> str:
    datasets, settings = report["datasets"], report["settings"]
    lines = ["## Detection study", "",
             f"`{report['command']}` ({report['runtime_s'] / 60:.0f} min on "
             f"{report['machine']['cpus']} CPU cores, {settings['jobs']} process(es) x "
             f"{settings['threads']} torch thread(s){', --quick' if settings['quick'] else ''}).", ""]
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
        lines += ["", f"lstmae {json.dumps(settings['ecg5000']['lstmae'])}; counts in brackets scaled to 145 beats, "
                  "as in the PyTorch tutorial (142/145 and 142/145).", ""]
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
        header = "| data set | series | " + " | ".join(DETECTOR_TITLES[name] for name in DETECTORS) + " |"
        rule = "|---|---|" + "---|" * len(DETECTORS)
        for key, title in (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC")):
            lines += [f"### Series: mean point-wise {title} (higher is better; best in bold)", "", header, rule]
            for family in families:
                means = datasets[family]["means"]
                best = max(means[name][key] for name in DETECTORS)
                cells = [bold_if(means[name][key], best) for name in DETECTORS]
                lines.append(f"| {FAMILY_TITLES[family]} | {means['lstmae']['n_series']} | {' | '.join(cells)} |")
            lines.append("")
        variant_names = [name for name in datasets[families[0]]["means"]
                         if name.startswith("lstmae ") and not name.startswith("lstmae threshold ")]
        if variant_names:
            lines += ["### lstmae: error model x window-to-row mapping (same networks; mean ROC-AUC / PR-AUC / "
                      "F1 at the default threshold rule)", "",
                      "| data set | " + " | ".join(name.removeprefix("lstmae ") for name in variant_names) + " |",
                      "|---|" + "---|" * len(variant_names)]
            for family in families:
                means = datasets[family]["means"]
                best = max(means[name]["roc_auc"] for name in variant_names)
                lines.append(f"| {FAMILY_TITLES[family]} | " + " | ".join(
                    f"{bold_if(means[name]['roc_auc'], best)} / {means[name]['pr_auc']:.3f} / {means[name]['f1']:.3f}"
                    for name in variant_names)
                    + " |")
            lines.append("")
        rules = [name.removeprefix("lstmae threshold ") for name in datasets[families[0]]["means"]
                 if name.startswith("lstmae threshold ")]
        if rules:
            lines += ["### lstmae: threshold rules (as configured; mean point-wise F1, alarm rate in brackets)", "",
                      "| data set | " + " | ".join(f"`{rule}`" for rule in rules) + " |", "|---|" + "---|" * len(rules)]
            for family in families:
                means = datasets[family]["means"]
                cells = [means[f"lstmae threshold {rule}"] for rule in rules]
                best = max(cell["f1"] for cell in cells)
                lines.append(f"| {FAMILY_TITLES[family]} | " + " | ".join(
                    f"{bold_if(cell['f1'], best)} ({cell['alarm_rate']:.1%})" for cell in cells) + " |")
            lines.append("")
        if "ucr" in datasets:
            means = datasets["ucr"]["means"]
            lines += [f"UCR top-1 hits (the highest-scoring row within {UCR_TOLERANCE} rows of the anomaly; "
                      "strictly inside it in brackets): " + ", ".join(
                          f"{DETECTOR_TITLES[name]} {means[name]['top1_hits_tolerance']}/{means[name]['n_top1']} "
                          f"({means[name]['top1_hits']})" for name in DETECTORS) + ".", ""]
        series_settings = settings["series"]
        lines += [f"Series settings: window {series_settings['window']}, how=\"{series_settings['how']}\", "
                  f"lstmae {json.dumps(series_settings['lstmae'])}"
                  + "".join(f"; {family}: {json.dumps(settings[family])}" for family in families if settings.get(family))
                  + ". NAB series without anomalies have no AUC and are left out of the means.", ""]
        lines += ["<details><summary>Per series (ROC-AUC / PR-AUC)</summary>", "",
                  "| data set | series | " + " | ".join(DETECTOR_TITLES[name] for name in DETECTORS) + " |", rule]
        for family in families:
            for result in datasets[family]["series"]:
                cells = [pair(result["detectors"][name]) for name in DETECTORS]
                lines.append(f"| {family} | {result['name']} | {' | '.join(cells)} |")
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def counts(row: dict, kind: str) -> str:
    correct, total = row[f"{kind}_correct"], row[kind]
    return f"{correct}/{total} ({round(145 * correct / total)}/145)"


def bold_if(value: float, best: float) -> str:
    text = f"{value:.3f}"
    return f"**{text}**" if text == f"{best:.3f}" else text


def pair(metrics: dict) -> str:
    if metrics["roc_auc"] is None:
        return f"n/a (alarms {metrics['alarm_rate']:.1%})"
    return f"{metrics['roc_auc']:.3f} / {metrics['pr_auc']:.3f}"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
