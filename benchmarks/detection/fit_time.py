"""How long fitting takes on a 10,000-row univariate series, as a new user would run it.

    python benchmarks/detection/fit_time.py [--window 50] [--set encoder=[32,16] --set epochs=2 ...]

The first 10,000 rows of NAB's nyc_taxi (one value per row), fitted with lstmae.series.fit_series
(windows of --window rows, stride 1, the threshold fitted on held-out row scores), every setting
lstmae's default unless --set. Prints one JSON line: seconds in all, the process's CPU seconds (on a shared machine
wall seconds measure the other users as much as lstmae), epochs run, seconds per epoch, torch threads, the machine's load average before and after (the machine may be shared).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for `overrides`

from overrides import parse_assignments  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=JSON")
    args = parser.parse_args(argv)
    params = dict(parse_assignments(args.set))
    import torch

    from lstmae import LSTMAutoencoder
    from lstmae.series import fit_series

    path = args.data_dir / "nab" / "data" / "realKnownCause" / "nyc_taxi.csv"
    values = pd.read_csv(path)[["value"]].to_numpy(np.float32)[: args.rows]
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    model = LSTMAutoencoder(**params, random_state=0, progress=False)
    fit_series(model, values, window=args.window)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    epochs = model.history_["epochs_run"]
    print(json.dumps({"rows": len(values), "window": args.window, "params": params, "seconds": round(seconds, 1),
                      "cpu_seconds": round(cpu_seconds, 1),
                      "epochs_run": epochs, "best_epoch": model.history_["best_epoch"],
                      "seconds_per_epoch": round(seconds / max(epochs, 1), 2), "torch_threads": torch.get_num_threads(),
                      "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
