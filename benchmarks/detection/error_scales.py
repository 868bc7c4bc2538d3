"""The normalized error model's smallest feature scale, on the multivariate families: before and after.

    python benchmarks/detection/error_scales.py [--datasets msl,keogh] [--seeds 0,1,2]
                                                [--threshold mad:8] [--min-scale 0.1]
                                                [--cache DIR] [--out benchmarks/results/error_scales]

`normalized-max` scores a window by the largest robust z-score of its features' errors, (e_f - m_f) / s_f.
Where a feature's error scale s_f is near 0 (MSL's one-hot command columns), a small error of that feature
outranks a large one of the telemetry value. Two floors for s_f are compared on the same networks:

- "relative" (before): s_f >= 1% of the median scale of the features whose errors vary at all;
- "min_scale" (lstmae's NormalizedError now): s_f >= min_scale, 0.1 scaled units (a tenth of the feature's
  training standard deviation).

On one feature both rank windows as "mae" and flag the same rows, so the univariate families (NAB, UCR,
ECG5000) cannot change: only MSL and Keogh ECG (two leads) are run. Each series is trained as
`detection_study.py` trains it (its defaults, its seed), once per seed; the per-feature window errors
(held-out windows, the held-out rows' windows, the test windows) are kept in --cache as .npz, so a rerun
only scores. Each floor is then fitted on the held-out windows and scored as lstmae.series scores
(how="mean", lstmae's row rule, `mad:8`, or --threshold, on the held-out row scores, the default alarm
rules); --min-scale sets the floor of the "min_scale" column. Writes
error_scales.json and error_scales.md to --out: per family and seed, mean VUS-PR, event recall / F1 and
the median alarm rate / labelled fraction, and per series VUS-PR.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for detection_study

from command_line import command_line  # noqa: E402
import detection_study as study  # noqa: E402
from lstmae.config import DEFAULTS  # noqa: E402
from lstmae.scoring import parse_threshold, smooth_points  # noqa: E402
from lstmae.scoring.error_models import NormalizedError, scored_features, zero_one_features  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FLOORS = ("relative", "min_scale")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, "msl,keogh", "0,1,2", "error_scales")
    parser.add_argument("--threshold", default=study.ROW_THRESHOLD_RULE,
                        help="the row threshold rule fitted on the held-out rows (default: lstmae's)")
    parser.add_argument("--min-scale", type=float, default=NormalizedError().min_scale,
                        help="the smallest scale of the 'min_scale' column (default: lstmae's)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    families, seeds, jobs, trained = run_jobs(args)
    rule = parse_threshold(args.threshold)
    results = {family: {seed: {} for seed in seeds} for family in families}
    for task, seed, path in jobs:
        cached = dict(np.load(path))  # read once: an .npz member is decompressed on every access
        results[task.family][seed][task.name] = {
            floor: score(cached, rule, lstmae_scorer(cached, floor=floor, min_scale=args.min_scale)) for floor in FLOORS}
    report = {"command": command_line(__file__, argv),
              "threshold": args.threshold, "min_scale": args.min_scale,
              "seconds": round(time.perf_counter() - started, 1), "networks_trained": trained,
              "networks_from_cache": len(jobs) - trained, "results": results}
    write_results(args.out, "error_scales", report, markdown(report))
    return 0


def write_results(out: Path, stem: str, report: dict, text: str) -> None:
    """`report` as out/STEM.json and `text` as out/STEM.md, and `text` on stdout."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    (out / f"{stem}.md").write_text(text)
    print(text)


def add_run_arguments(parser, datasets: str, seeds: str, results: str, cache: str = "error_scales") -> None:
    """The options every script on these cached networks takes: --datasets, --seeds, --data-dir, --cache
    (default .cache/`cache`) and --out (default benchmarks/results/`results`)."""
    parser.add_argument("--datasets", default=datasets)
    parser.add_argument("--seeds", default=seeds)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / cache)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / results)


def cached_networks(families: list, seeds: list, data_dir: Path, cache: Path, codes: bool = False) -> tuple[list, int]:
    """(task, seed, cache file) for each series of `families` at each seed, training (two at a time) the
    networks not yet in `cache` (with their windows' codes: `codes`); and how many were trained."""
    settings = study.build_settings(study.parse_args(["--set", "series.peers=[]"]))
    cache.mkdir(parents=True, exist_ok=True)
    tasks = {family: study.LOADERS[family](data_dir) for family in families}
    jobs = [(task, seed, cache_path(cache, task, seed)) for seed in seeds for family in families
            for task in tasks[family]]
    missing = [job for job in jobs if not job[2].exists()]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=study.set_threads,
                             initargs=(1,)) as pool:
        futures = [pool.submit(train_and_cache, task, study.family_settings(settings, task.family), seed, path, codes)
                   for task, seed, path in missing]
        for done in as_completed(futures):
            study.log(f"trained {done.result()}")
    return jobs, len(missing)


def run_jobs(args) -> tuple[list[str], list[int], list, int]:
    """(families, seeds, jobs, trained) of a script's parsed --datasets, --seeds, --data-dir and --cache
    (`add_run_arguments`): `cached_networks` of them."""
    families, seeds = args.datasets.split(","), [int(seed) for seed in args.seeds.split(",")]
    jobs, trained = cached_networks(families, seeds, args.data_dir, args.cache)
    return families, seeds, jobs, trained


def cache_path(cache: Path, task, seed: int) -> Path:
    return cache / f"{task.family}--{task.name}--seed{seed}.npz"


def train_and_cache(task, settings: dict, seed: int, path: Path, codes: bool = False) -> str:
    """Fit lstmae on the task's training part as the study does; keep its per-feature window errors (N, F)
    and, with `codes`, the windows' codes (N, D) (the default "pooled" encoding) under "codes_<key>", with
    "codes_fit" those of the windows the network was trained on."""
    from lstmae import LSTMAutoencoder, temporalize
    from lstmae.series import fit_series

    window = study.series_window(task.train, settings["window"])
    stride = study.train_stride(len(task.train), window, settings["max_train_steps"])
    model = LSTMAutoencoder(**settings["lstmae"], random_state=seed, progress=False)
    fit_series(model, task.train, window=window, stride=stride, how=settings["how"])
    train_windows, _ = temporalize(task.train, window, stride)
    held_parts, trained_parts, held_windows = study.lstmae_parts(model, task.train, train_windows, window, stride)
    windows = {"held": held_windows, "test": temporalize(task.test, window)[0]}
    arrays = {"labels": task.labels, "window": np.array(window),
              "vus_window": np.array(study.vus_window_from_period(task.test))}
    for i, part in enumerate(part for part in held_parts if len(part) >= window):
        windows[f"part{i}"] = temporalize(part, window)[0]
        arrays[f"part{i}_rows"] = np.array(len(part))
    for key, key_windows in windows.items():
        arrays[key] = model.reconstruction_error(key_windows, per="feature", kind="mae")
        if codes:
            arrays[f"codes_{key}"] = model.transform(key_windows)
    if codes:
        arrays["codes_fit"] = model.transform(np.concatenate([temporalize(part, window)[0] for part in trained_parts]))
    temporary = path.with_suffix(".partial.npz")
    np.savez_compressed(temporary, **arrays)
    temporary.replace(path)
    return f"{task.family}/{task.name} seed {seed}"


def scaled(cached, floor: str = "min_scale", min_scale: float = NormalizedError().min_scale, scored=None):
    """`score_vectors` of normalized-max fitted on the held-out windows with the floor `floor`, scoring the
    features `scored` (F,) marks (None: all)."""
    model = NormalizedError(reduce="max", min_scale=min_scale, scored=scored).fit_vectors(cached["held"])
    if floor == "relative":  # the rule before min_scale, from the same medians and MADs
        scale = 1.4826 * np.median(np.abs(cached["held"] - model.median_), axis=0)
        varying = scale[scale > 1e-12]
        model.scale_ = np.maximum(scale, 0.01 * (float(np.median(varying)) if varying.size else 1.0))
    return model.score_vectors


def task_binary_features(task) -> np.ndarray:
    """(F,) bool: the features of the task's training part (T, F) that lstmae takes for 0/1 features."""
    return zero_one_features(task.train, task.train.shape[1])


def lstmae_scorer(cached, binary=None, floor: str = "min_scale", min_scale: float = NormalizedError().min_scale):
    """Window scores (N,) by cache key ("held", "test", "part0", ...) as lstmae's normalized-max error model
    gives them with the 0/1 features `binary` (F,) kept as context (binary_features="context"; None: every
    feature scored), and the smallest scale `floor` (see `scaled`)."""
    score_vectors = scaled(cached, floor, min_scale, scored=None if binary is None else scored_features(binary))
    return lambda key: score_vectors(cached[key])


def task_scorer(cached, task, binary_features: str = DEFAULTS["binary_features"]):
    """`lstmae_scorer` of a task's cached network as lstmae scores it with `binary_features` ("context": the
    task's 0/1 training features left out of the score; default: lstmae's)."""
    return lstmae_scorer(cached, task_binary_features(task) if binary_features == "context" else None)


def score(cached, rule=study.ROW_THRESHOLD, scorer=None, alarm=None) -> dict:
    """VUS-PR, alarm rate and event metrics of one series' test rows, as lstmae.series scores them with the row
    threshold `rule` (parsed; an adaptive rule starts from the held-out rows and follows the test rows) and the
    alarm rules `alarm` (a dict of DEFAULT_ALARM's options; those not given, and None: the defaults). A rule
    that cannot be fitted on the held-out rows (too few of them) raises no alarm: "unfitted" says so.
    `scorer`: window scores (N,) by cache key (default: `lstmae_scorer`, every feature scored)."""
    return score_rules(cached, [(rule, alarm)], scorer)[0]


def parse_widths(text: str, option: str) -> list[int]:
    """"1,50,100", the value of `option` -> the widths to smooth over (rows, each >= 1); a bad one exits in one line."""
    try:
        widths = [int(width) for width in text.split(",")]
        if min(widths) < 1:
            raise ValueError
    except ValueError:
        raise SystemExit(f"{option} {text!r}: give whole numbers of rows >= 1, e.g. 1,50,100") from None
    return widths


def score_rules(cached, rules: list, scorer=None) -> list[dict]:
    """`score` for each (rule, alarm) or (rule, alarm, smooth) of `rules` on one series, its rows mapped once
    and its VUS-PR (which no threshold moves) computed once per `smooth`: row scores smoothed over `smooth` rows
    (`lstmae.scoring.smooth_points`, as the estimator's `smooth` does), the held-out parts each on its own, before
    the rule is fitted (default 1: not smoothed)."""
    from lstmae.evaluation import detection_metrics
    from lstmae.exceptions import DataError
    from lstmae.scoring import DEFAULT_ALARM, alarm_rules, alarms_from_flags, window_to_points

    window, labels = int(cached["window"]), cached["labels"]
    scorer = lstmae_scorer(cached) if scorer is None else scorer

    def rows(key, n_rows):
        return window_to_points(scorer(key), n_rows, window, how="mean")[0]

    parts = [rows(key, int(cached[f"{key}_rows"])) for key in cached
             if key.startswith("part") and not key.endswith("_rows")]
    parts = [part[np.isfinite(part)] for part in parts]
    rows_test = rows("test", len(labels))
    valid = ~np.isnan(rows_test) & (np.arange(len(rows_test)) >= window)  # the rows detection_study.py scores with
    # every detector: its rolling z-score starts after one window
    fraction = float(labels[valid].mean())
    results, by_smooth = [], {}  # smooth -> (held-out rows, test rows, their VUS-PR once computed)
    for rule, alarm, *smoothing in rules:
        smooth = smoothing[0] if smoothing else 1
        held, test, vus = by_smooth.get(smooth) or (np.concatenate([smooth_points(part, smooth) for part in parts]),
                                                    smooth_points(rows_test, smooth), {})
        try:
            if rule.adaptive:  # as lstmae.series scores: started from the held-out rows, then the test rows in order
                flags = rule.make_adaptive().fit(held).update(test)[0]
            else:
                flags = study.flags_above(test, rule.fit(held))
            unfitted = False
        except DataError:
            flags, unfitted = np.zeros(len(test), np.int8), True
        alarms = alarms_from_flags(flags, causal=False, **alarm_rules({**DEFAULT_ALARM, **(alarm or {})}))
        metrics = detection_metrics(labels, test, flags=alarms, valid=valid, vus=not vus,
                                    vus_sliding_window=int(cached["vus_window"]))
        vus = vus or {"vus_pr": metrics["vus_pr"]}
        by_smooth[smooth] = held, test, vus
        if metrics["n_events"] and metrics["event_f1"] is None:
            metrics["event_f1"] = 0.0  # no alarm: no event found
        results.append({"anomaly_fraction": fraction, **vus, **{key: metrics[key] for key in
                                                                 ("alarm_rate", "event_recall", "event_f1")},
                        "unfitted": unfitted})
    return results


def summary(results: list[dict]) -> dict:
    """Means over the series with anomalies of `score`'s `results` (one per series): VUS-PR, event recall and
    F1, and the median alarm rate / labelled fraction."""
    rows = [row for row in results if row["anomaly_fraction"] > 0]
    return {"vus_pr": np.mean([row["vus_pr"] for row in rows]),
            "event_recall": np.mean([row["event_recall"] for row in rows]),
            "event_f1": np.mean([row["event_f1"] for row in rows]),
            "alarm_ratio": np.median([row["alarm_rate"] / row["anomaly_fraction"] for row in rows])}


def markdown(report: dict) -> str:
    lines = [f"## The normalized error model's smallest scale: relative (before) / min_scale {report['min_scale']:g}",
             "", f"`{report['command']}` (row threshold `{report['threshold']}`)", "",
             "| family | seed | VUS-PR | event recall | event F1 | alarm rate (x labelled, median) |",
             "|---|---|---|---|---|---|"]
    for family, by_seed in report["results"].items():
        for seed, series in by_seed.items():
            before, after = (summary([result[floor] for result in series.values()]) for floor in FLOORS)
            lines.append(f"| {study.FAMILY_TITLES[family]} ({len(series)}) | {seed} | "
                         + " | ".join(f"{before[key]:.3f} / {after[key]:.3f}" for key in
                                      ("vus_pr", "event_recall", "event_f1"))
                         + f" | {before['alarm_ratio']:.2f}x / {after['alarm_ratio']:.2f}x |")
    lines += ["", "Per series, VUS-PR relative / min_scale at each seed:", "",
              "| series | " + " | ".join(f"seed {seed}" for seed in next(iter(report["results"].values()))) + " |",
              "|---|" + "---|" * len(next(iter(report["results"].values())))]
    for family, by_seed in report["results"].items():
        for name in next(iter(by_seed.values())):
            cells = [by_seed[seed][name] for seed in by_seed]
            if cells[0]["relative"]["anomaly_fraction"] > 0:
                lines.append(f"| {family} {name} | " + " | ".join(
                    f"{cell['relative']['vus_pr']:.2f} / {cell['min_scale']['vus_pr']:.2f}" for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
