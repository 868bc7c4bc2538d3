"""Scoring speed of an exported model in onnxruntime against lstmae's own CPU scoring, side by side.

    python benchmarks/export_speed.py [--repeats 5] [--threads N] [--out benchmarks/results]

The default (128, 64) tanh model with random weights (epochs=0) on ECG-like windows (L=140,
F=1), exported with lstmae.export.export_onnx; then, in one process, `repeats` alternations of
lstmae's `anomaly_score` and onnxruntime's session.run on the same batch of 512 windows (one
warm-up call of each first). Both use the same number of threads (torch's, unless --threads).
The ratio is lstmae's median time / onnxruntime's median time (> 1: onnxruntime is faster).
Writes export_speed.{json,md} to --out.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_name  # benchmarks/ is on sys.path when a script there runs
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import onnxruntime as ort

    import lstmae
    from lstmae import LSTMAutoencoder
    from lstmae.export import export_onnx

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    rng = np.random.default_rng(0)
    X = (np.sin(np.linspace(0, 6 * np.pi, 140))[None, :, None] + 0.1 * rng.standard_normal((args.batch, 140, 1)))
    X = X.astype(np.float32)
    model = LSTMAutoencoder(epochs=0, random_state=0, progress=False).fit(X)

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = export_onnx(model, Path(folder) / "model.onnx")
        export_seconds = time.perf_counter() - start
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(result.path), options, providers=["CPUExecutionProvider"])

    def run_lstmae():
        return model.anomaly_score(X)

    def run_onnx():
        return session.run(["score"], {"x": X})[0]

    difference = float(np.max(np.abs(run_onnx() - run_lstmae())))  # also the warm-up of both
    times = {"lstmae": [], "onnxruntime": []}
    for _ in range(args.repeats):
        for name, run in (("lstmae", run_lstmae), ("onnxruntime", run_onnx)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["lstmae"] / medians["onnxruntime"]
    report = {
        "workload": f"anomaly_score of {args.batch} windows (140 x 1), default (128, 64) tanh model, random weights",
        "threads": threads, "repeats": args.repeats, "export_seconds": export_seconds,
        "max_abs_score_difference": difference, "seconds": times, "median_seconds": medians,
        "windows_per_second": {name: args.batch / value for name, value in medians.items()},
        "ratio_lstmae_time_over_onnxruntime_time": ratio,
        "versions": {"lstmae": lstmae.__version__, "torch": torch.__version__, "onnxruntime": ort.__version__,
                     "python": platform.python_version()},
        "machine": f"{platform.machine()}, {cpu_name()}",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "export_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = "\n".join(f"| {name} | {medians[name] * 1000:.0f} | {min(values) * 1000:.0f} - {max(values) * 1000:.0f} | "
                     f"{args.batch / medians[name]:.0f} |" for name, values in times.items())
    (args.out / "export_speed.md").write_text(
        f"# ONNX export: onnxruntime vs lstmae scoring\n\n{report['workload']}; {threads} threads each, "
        f"{args.repeats} alternations in one process after one warm-up call each; {report['machine']}.\n\n"
        f"| scorer | median ms | range ms | windows/s |\n|---|---|---|---|\n{rows}\n\n"
        f"lstmae time / onnxruntime time (medians): **{ratio:.2f}** (> 1: onnxruntime is faster). "
        f"Max |score difference|: {difference:.2g}. Export took {export_seconds:.1f} s.\n\n"
        f"Versions: {report['versions']}. Produced by `python benchmarks/export_speed.py`.\n")
    print(f"lstmae {medians['lstmae'] * 1000:.0f} ms, onnxruntime {medians['onnxruntime'] * 1000:.0f} ms "
          f"(median of {args.repeats}): ratio {ratio:.2f}; wrote {args.out / 'export_speed.md'}")


if __name__ == "__main__":
    main()
