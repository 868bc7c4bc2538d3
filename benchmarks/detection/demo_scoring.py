"""The demo's sensors scored every way: how the row mapping and error model change its alarms.

    python benchmarks/detection/demo_scoring.py [--hows mean,max,point] [--error-models mse,normalized-max]
                                                [--thresholds "sigma:5,telemanom:2,mad=8"] [--seeds 0]
                                                [--train-fraction 0.5] [--merge-gaps 10,30] [--cooldowns 50,200]
                                                [--min-lengths 3,10] [--smooths 1,60]
                                                [--input-noises 0,0.1] [--alarm-focuses none,0.25]
                                                [--window 30]
                                                [--validation-blocks 1]
                                                [--out benchmarks/results/demo_scoring.json]

The data, split, window (`DEMO_WINDOW`) and seed of `lstmae demo`, a (32, 16) network for up to 30 epochs
(patience 5), as the demo trains; for each error model x how, the model is fitted with
`fit_series(..., how=how)` and the test part is scored with each threshold rule and the default
alarm rules (each minimum length of `--min-lengths` x merge gap of `--merge-gaps` x cool-down of
`--cooldowns`, and each alarm focus of `--alarm-focuses`, the other rules at their defaults), with the row scores smoothed over each of `--smooths` rows
(as a model fitted with `smooth` scores them, the held-out rows alike before the rule is fitted: `smoothed_model`;
1: not smoothed), for each of `--input-noises` (the model's `input_noise`, 0: none). Prints one JSON line
per combination: VUS-PR, ROC-AUC, point precision / recall of the alarms, alarm rate, event precision /
recall and the number of alarms; `--out` also writes them, with the command, to a JSON file.
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for command_line
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for error_scales' parse_widths

from command_line import command_line  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hows", default="mean,max,point")
    parser.add_argument("--error-models", default="mse,normalized-max")
    parser.add_argument("--thresholds", default="sigma:5,sigma:3",
                        help='threshold specs, separated by "," or ";" (a spec\'s own options, NAME=VALUE, '
                             'stay with it: "mad:8,telemanom:2,mad=8" is two specs)')
    parser.add_argument("--seeds", default="0", help="model seeds (the data is the demo's, seed 0)")
    parser.add_argument("--train-fraction", type=float, default=None,
                        help="the first fraction of the rows to train on (default: the demo's)")
    parser.add_argument("--window", type=int, default=None, help="window length (default: the demo's)")
    parser.add_argument("--merge-gaps", default=None,
                        help="alarm merge gaps in rows, comma-separated (default: the alarm rules' default)")
    parser.add_argument("--cooldowns", default=None,
                        help="alarm cool-downs in rows, comma-separated (default: the alarm rules' default)")
    parser.add_argument("--min-lengths", default=None,
                        help="alarm minimum lengths in rows, comma-separated (default: the alarm rules' default)")
    parser.add_argument("--smooths", default="1",
                        help="rows to smooth the row scores over, comma-separated (default 1: not smoothed)")
    parser.add_argument("--input-noises", default="0",
                        help="the model's input_noise (a denoising network), comma-separated (default 0: none)")
    parser.add_argument("--alarm-focuses", default=None,
                        help="alarm focus quantiles (lstmae score --alarm-focus), comma-separated, 'none' for off "
                             "(default: the alarm rules' default)")
    parser.add_argument("--validation-blocks", type=int, default=None,
                        help="the model's validation_blocks (default: the estimator's)")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the rows, with the command, to this JSON file")
    args = parser.parse_args(argv)
    from error_scales import parse_widths
    from lstmae import LSTMAutoencoder
    from lstmae.data.synthetic import make_sensor_data
    from lstmae.demo import DEMO_TRAIN_FRACTION, DEMO_WINDOW
    from lstmae.evaluation import detection_metrics
    from lstmae.scoring.alarms import DEFAULT_ALARM
    from lstmae.series import fit_series, score_values

    frame = make_sensor_data(seed=0)
    features = [column for column in frame.columns if column not in ("timestamp", "label")]
    values, labels = frame[features].to_numpy(np.float32), frame["label"].to_numpy()
    n_train = int(len(frame) * (args.train_fraction or DEMO_TRAIN_FRACTION))  # as lstmae.demo by default
    keys = ("vus_pr", "roc_auc", "precision", "recall", "alarm_rate", "event_precision", "event_recall",
            "n_flagged_runs")
    rows = []
    lengths, gaps, cooldowns = (([int(value) for value in text.split(",")] if text else [DEFAULT_ALARM[name]])
                                for text, name in ((args.min_lengths, "min_length"), (args.merge_gaps, "merge_gap"),
                                                   (args.cooldowns, "cooldown")))
    try:
        focuses = ([None if value.strip() == "none" else float(value) for value in args.alarm_focuses.split(",")]
                   if args.alarm_focuses else [DEFAULT_ALARM["focus"]])
        if not all(focus is None or 0 <= focus <= 1 for focus in focuses):
            raise ValueError
    except ValueError:
        parser.error(f"--alarm-focuses {args.alarm_focuses!r}: give quantiles between 0 and 1 or none, e.g. none,0.25")
    blocks = {} if args.validation_blocks is None else {"validation_blocks": args.validation_blocks}
    smooths = parse_widths(args.smooths, "--smooths")
    if max(smooths) > 1 and (args.validation_blocks or 1) > 1:
        parser.error("--smooths smooths the one held-out run of the default split; drop --validation-blocks")
    try:
        noises = [float(value) for value in args.input_noises.split(",")]
        if not all(0 <= noise < float("inf") for noise in noises):
            raise ValueError
    except ValueError:
        parser.error(f"--input-noises {args.input_noises!r}: give numbers >= 0, e.g. 0,0.1")
    for seed, noise, error_model, how in itertools.product(map(int, args.seeds.split(",")), noises,
                                                           args.error_models.split(","), args.hows.split(",")):
        model = LSTMAutoencoder(encoder=(32, 16), epochs=30, patience=5, error_model=error_model, input_noise=noise,
                                random_state=seed, progress=False, device="cpu", **blocks)
        fit_series(model, values[:n_train], window=args.window or DEMO_WINDOW, labels=labels[:n_train], how=how)
        for threshold, length, gap, cooldown, focus, smooth in itertools.product(
                threshold_specs(args.thresholds), lengths, gaps, cooldowns, focuses, smooths):
            table = score_values(smoothed_model(model, how, smooth), values[n_train:], how=how, threshold=threshold,
                                 alarms={**DEFAULT_ALARM, "min_length": length, "merge_gap": gap, "cooldown": cooldown,
                                         "focus": focus})
            metrics = detection_metrics(labels[n_train:], table["score"].to_numpy(), flags=table["alarm"].to_numpy(),
                                        valid=table["valid"].to_numpy())
            row = {"seed": seed, **({"input_noise": noise} if noise else {}), "error_model": error_model, "how": how,
                   "threshold": threshold, "min_length": length,
                   "merge_gap": gap, "cooldown": cooldown, **({"alarm_focus": focus} if focus is not None else {}),
                   **({"smooth": smooth} if smooth > 1 else {}),
                   **{key: round(metrics[key], 3) if isinstance(metrics[key], float) else metrics[key] for key in keys}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out is not None:
        command = command_line(__file__, argv)
        args.out.write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    return 0


def smoothed_model(model, how: str, smooth: int):
    """The fitted `model` as one fitted with `smooth` (the same network) would score rows of the kind `how`: a copy
    whose held-out rows of that kind are smoothed alike (one held-out run, the default split's; a model's
    `threshold_floor` floors are not smoothed, the demo's has none). `smooth` 1 or how="end" (never smoothed): the
    model itself."""
    import copy

    from lstmae.scoring import smooth_points
    from lstmae.series import calibration_for

    if smooth == 1 or how == "end":
        return model
    variant = copy.copy(model).set_params(smooth=smooth)
    variant.calibration_scores_ = {**model.calibration_scores_, how: smooth_points(calibration_for(model, how), smooth)}
    return variant


def threshold_specs(text: str) -> list[str]:
    """The threshold specs of a list separated by ";" or ",": a comma starts a new spec only before a rule
    name ("sigma:5"), not before one of a spec's own options ("mad=8")."""
    return [spec.strip() for spec in re.split(r";|,(?=\s*[A-Za-z-]+:)", text) if spec.strip()]


if __name__ == "__main__":
    sys.exit(main())
