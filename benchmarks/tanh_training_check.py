"""Does training tanh layers through the fused C++ layer change model quality? Paired seeds.

    python benchmarks/tanh_training_check.py [--seeds 10] [--no-early-stopping | --speed] [--jobs 2]
                                             [--out benchmarks/results] [--data-dir DIR]

TanhLSTM scores through `model.lstm_layer` (the fused kernels) and trains through it on
batches of at least model.FUSED_TRAINING_BATCH sequences, through nn.LSTM below. Two seeds of
the ECG5000 detection study once came out lower with fused training. This script repeats that
comparison on more seeds: for each seed, the detection study's ECG5000 task (its seeded split,
its lstmae settings) is trained twice, once per training path, from the same initial weights;
everything else (scoring, threshold) is the same code. It reports, per seed and paired, ROC-AUC,
balanced accuracy at the model's threshold, and the best validation loss (the quantity training
minimises, on the held-out normal beats). --no-early-stopping trains every run for all its
epochs (patience None), which takes early stopping's luck out of the comparison.

--speed instead times one training epoch on 1024 of the task's beats through each path
(alternated, best of 3, in this process) for encoders (32, 16) and (128, 64) at batches 32
and 128, on 1 and 2 torch threads: what FUSED_TRAINING_BATCH is chosen from. Writes
tanh_training_speed.{json,md}.

Writes tanh_training_check.{json,md} (tanh_training_check_no_early_stopping.* with the flag) to --out. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from command_line import command_line
from detection.datasets import load_ecg5000
from detection_study import REPO, SETTINGS, beat_metrics, set_threads

PATHS = ("nn.LSTM", "fused")
SPEED_CASES = (((32, 16), 32), ((32, 16), 128), ((128, 64), 32), ((128, 64), 128))  # (encoder, batch)
SPEED_BEATS, SPEED_ROUNDS = 1024, 3


@contextlib.contextmanager
def training_path(path: str):
    """Within the block, TanhLSTM trains through the fused layer (path "fused"; the compiled
    kernels, else nn.LSTM) or through nn.LSTM (path "nn.LSTM"), whatever the batch size and length."""
    from lstmae.nn import model

    smallest = model.FUSED_TRAINING_BATCH, model.FUSED_TRAINING_STEPS
    model.FUSED_TRAINING_BATCH = model.FUSED_TRAINING_STEPS = 1 if path == "fused" else sys.maxsize
    try:
        yield
    finally:
        model.FUSED_TRAINING_BATCH, model.FUSED_TRAINING_STEPS = smallest


def run_one(job: tuple) -> dict:
    data_dir, seed, path, settings = job
    from lstmae import LSTMAutoencoder

    task = load_ecg5000(data_dir, seed, SETTINGS["ecg5000"]["test_fraction"])
    started = time.perf_counter()
    with training_path(path):
        model = LSTMAutoencoder(**settings, random_state=seed, progress=False).fit(task.train)
    seconds = time.perf_counter() - started
    metrics = beat_metrics(task.labels, model.anomaly_score(task.test), model.threshold_)
    return {"seed": seed, "path": path, "roc_auc": metrics["roc_auc"], "balanced_accuracy": metrics["balanced_accuracy"],
            "best_val_loss": float(min(model.history_["val_loss"])), "epochs_run": model.history_["epochs_run"],
            "train_seconds": round(seconds, 1)}


def training_speed(data_dir: Path, threads: int) -> list[dict]:
    """Seconds of one training epoch per SPEED_CASES case and path (best of SPEED_ROUNDS, alternated)."""
    from lstmae import LSTMAutoencoder

    torch.set_num_threads(threads)
    beats = load_ecg5000(data_dir, 0, SETTINGS["ecg5000"]["test_fraction"]).train[:SPEED_BEATS]
    rows = []
    for encoder, batch in SPEED_CASES:
        best = {path: float("inf") for path in PATHS}
        for _ in range(SPEED_ROUNDS):
            for path in PATHS:
                model = LSTMAutoencoder(encoder=encoder, epochs=1, batch_size=batch, validation_fraction=0,
                                        patience=None, random_state=0, progress=False)
                with training_path(path):
                    started = time.perf_counter()
                    model.fit(beats)
                    best[path] = min(best[path], time.perf_counter() - started)
        rows.append({"threads": threads, "encoder": list(encoder), "batch": batch, "seconds": best,
                     "fused_speedup": best["nn.LSTM"] / best["fused"]})
        print(f"{threads} thread(s), encoder {encoder}, batch {batch}: fused {rows[-1]['fused_speedup']:.2f}x",
              file=sys.stderr)
    return rows


def speed_markdown(report: dict) -> str:
    lines = ["| threads | encoder | batch | epoch s nn.LSTM | epoch s fused | fused speed-up |", "|---|---|---|---|---|---|"]
    for r in report["results"]:
        lines.append(f"| {r['threads']} | {tuple(r['encoder'])} | {r['batch']} | {r['seconds']['nn.LSTM']:.2f} | "
                     f"{r['seconds']['fused']:.2f} | {r['fused_speedup']:.2f}x |")
    lines += ["", f"`{report['command']}`: one epoch on {SPEED_BEATS} ECG5000 normal beats, best of "
              f"{SPEED_ROUNDS} alternated rounds per path; lstmae trains tanh layers fused from batch "
              f"{report['fused_training_batch']} on."]
    return "\n".join(lines) + "\n"


def paired(results: list[dict], key: str) -> dict:
    """Mean of fused - nn.LSTM over seeds, its standard error, and how many seeds fused is higher."""
    by = {(r["seed"], r["path"]): r[key] for r in results}
    seeds = sorted({r["seed"] for r in results})
    diffs = np.array([by[s, "fused"] - by[s, "nn.LSTM"] for s in seeds])
    return {"mean_nn_lstm": float(np.mean([by[s, "nn.LSTM"] for s in seeds])),
            "mean_fused": float(np.mean([by[s, "fused"] for s in seeds])),
            "mean_difference": float(diffs.mean()),
            "standard_error": float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else None,
            "fused_higher": int((diffs > 0).sum()), "seeds": len(seeds)}


def markdown(report: dict) -> str:
    keys = ("roc_auc", "balanced_accuracy", "best_val_loss")
    lines = ["| seed | " + " | ".join(f"{k} nn.LSTM / fused" for k in keys) + " | train s nn.LSTM / fused |",
             "|---|" + "---|" * (len(keys) + 1)]
    by = {(r["seed"], r["path"]): r for r in report["results"]}
    for seed in sorted({r["seed"] for r in report["results"]}):
        a, b = by[seed, "nn.LSTM"], by[seed, "fused"]
        cells = [f"{a[k]:.4f} / {b[k]:.4f}" for k in keys]
        lines.append(f"| {seed} | " + " | ".join(cells) + f" | {a['train_seconds']} / {b['train_seconds']} |")
    lines += ["", "| metric | mean nn.LSTM | mean fused | mean difference (fused - nn.LSTM) ± standard error | "
              "seeds where fused is higher |", "|---|---|---|---|---|"]
    for key, s in report["paired"].items():
        error = "" if s["standard_error"] is None else f" ± {s['standard_error']:.4f}"
        lines.append(f"| {key} | {s['mean_nn_lstm']:.4f} | {s['mean_fused']:.4f} | {s['mean_difference']:+.4f}{error} | "
                     f"{s['fused_higher']}/{s['seeds']} |")
    lines += ["", f"`{report['command']}`: ECG5000 detection task of benchmarks/detection_study.py (lstmae "
              f"{json.dumps(report['settings'])}), trained once per path and seed from the same initial "
              "weights; lower validation loss is better. Training times ran two jobs at a time."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1, each trained on both paths")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--no-early-stopping", action="store_true", help="train all epochs (patience None)")
    modes.add_argument("--speed", action="store_true", help="time one epoch per path instead (see above)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (1 torch thread each)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args(argv)
    if not (args.data_dir / "ecg5000").is_dir():
        print(f"error: {args.data_dir / 'ecg5000'} not found; pass --data-dir (see ../shared/data/README.md)",
              file=sys.stderr)
        return 2
    from lstmae import kernels

    if kernels.compiled() is None:
        print("error: the fused LSTM kernels could not be compiled here, so there is nothing to compare",
              file=sys.stderr)
        return 2
    command = command_line(__file__, argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.speed:
        from lstmae.nn import model

        report = {"command": command, "fused_training_batch": model.FUSED_TRAINING_BATCH,
                  "results": [row for threads in (1, 2) for row in training_speed(args.data_dir, threads)]}
        (args.out / "tanh_training_speed.json").write_text(json.dumps(report, indent=1) + "\n")
        (args.out / "tanh_training_speed.md").write_text(speed_markdown(report))
        print(speed_markdown(report), file=sys.stderr)
        return 0
    settings = {**SETTINGS["ecg5000"]["lstmae"], **({"patience": None} if args.no_early_stopping else {})}
    jobs = [(args.data_dir, seed, path, settings) for seed in range(args.seeds) for path in PATHS]
    results = []
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"), initializer=set_threads,
                             initargs=(1,)) as pool:
        for result in pool.map(run_one, jobs):
            results.append(result)
            print(f"seed {result['seed']} {result['path']}: ROC-AUC {result['roc_auc']:.4f}, balanced accuracy "
                  f"{result['balanced_accuracy']:.4f}, val loss {result['best_val_loss']:.4f}", file=sys.stderr)
    report = {"command": command, "settings": settings, "results": results,
              "paired": {key: paired(results, key) for key in ("roc_auc", "balanced_accuracy", "best_val_loss")}}
    stem = "tanh_training_check" + ("_no_early_stopping" if args.no_early_stopping else "")
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
