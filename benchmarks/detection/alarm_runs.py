"""Where lstmae's alarms fall on each series of a family, beside the labelled ranges.

    python benchmarks/detection/alarm_runs.py --family ucr [--seed 0] [--window 50] [--out FILE.md]

lstmae at its defaults, fitted per series as the detection study fits it (lstmae.series.fit_series:
windows of --window rows, stride 1, the threshold fitted on held-out row scores), then the test
part scored with lstmae.series.score_values. For each series: the labelled ranges and the alarm
runs (first-last test row, inclusive), each alarm run marked when it touches a labelled range,
and the alarm rows against the labelled rows: what the study's "alarm rate (x labelled)" is made
of. Writes Markdown to --out (stdout without it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for `detection`

from detection.datasets import LOADERS, SERIES_FAMILIES  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def ranges(starts, ends) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


def series_row(task, window: int, seed: int) -> dict:
    """One series: labelled ranges, alarm runs (and which touch a label), row counts, fit seconds."""
    from lstmae import LSTMAutoencoder
    from lstmae.scoring.events import flag_runs, runs_touching
    from lstmae.series import fit_series, score_values

    started = time.perf_counter()
    model = fit_series(LSTMAutoencoder(random_state=seed, progress=False), task.train, window=window)
    alarms = score_values(model, task.test)["alarm"].to_numpy() != 0
    run_starts, run_ends = flag_runs(alarms)
    return {"name": task.name, "rows": len(task.test), "labelled": ranges(*flag_runs(task.labels)),
            "alarm_runs": ranges(run_starts, run_ends),
            "true_runs": runs_touching(run_starts, run_ends, task.labels).tolist(),
            "labelled_rows": int(task.labels.sum()), "alarm_rows": int(alarms.sum()),
            "seconds": time.perf_counter() - started}


def shown(spans: list[tuple[int, int]], marks: list[bool] | None = None, most: int = 12) -> str:
    """'a-b (n)' per span, '*' after the ones that touch a labelled range; the first `most` of them."""
    items = [f"{a}-{b} ({b - a + 1}){'*' if marks and marks[i] else ''}" for i, (a, b) in enumerate(spans)]
    return ", ".join(items[:most]) + (f", ... {len(items) - most} more" if len(items) > most else "") or "none"


def markdown(family: str, rows: list[dict], window: int, seed: int) -> str:
    from lstmae.config import DEFAULT_THRESHOLDS

    lines = [f"## Alarm runs of lstmae's defaults, {family}", "",
             f"`python benchmarks/detection/alarm_runs.py --family {family} --seed {seed} --window {window}`: "
             "lstmae's defaults fitted on each series' training part, its alarms on the test part (row "
             f"threshold `{DEFAULT_THRESHOLDS['rows']}`, then the default alarm rules). "
             "Ranges are test rows, first-last inclusive (length); * marks an alarm run that touches a "
             "labelled range.", "",
             "| series | test rows | labelled ranges | alarm runs | alarm rows / labelled rows | fit s |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['alarm_rows']} / {r['labelled_rows']}" + (
            f" = {r['alarm_rows'] / r['labelled_rows']:.1f}x" if r["labelled_rows"] else "")
        lines.append(f"| {r['name']} | {r['rows']} | {shown(r['labelled'])} | {shown(r['alarm_runs'], r['true_runs'])} "
                     f"| {ratio} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=SERIES_FAMILIES, required=True)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="Markdown file (default: stdout)")
    args = parser.parse_args(argv)
    if not args.data_dir.is_dir():
        parser.exit(2, f"error: no data at {args.data_dir}; pass --data-dir (layout: ../shared/data/README.md)\n")
    import torch

    torch.set_num_threads(1)  # as the study's workers
    rows = []
    for task in LOADERS[args.family](args.data_dir):
        rows.append(series_row(task, args.window, args.seed))
        print(f"{task.name}: {len(rows[-1]['alarm_runs'])} alarm runs", file=sys.stderr, flush=True)
    text = markdown(args.family, rows, args.window, args.seed)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
