"""Per-row cost of streaming scoring against the per-window cost of batch scoring, side by side.

    python benchmarks/streaming_speed.py [--repeats 5] [--threads 1] [--out benchmarks/results]

The default (128, 64) tanh model with random weights (epochs=0; speed does not depend on training)
fitted by lstmae.series.fit_series on an 8-feature series with windows of 30 rows. In one process,
`repeats` alternations of:

- batch: `model.anomaly_score` on 512 windows (30, 8); cost per window = time / 512;
- forward-1: `model.anomaly_score` on one window (the floor of any one-row update: one window's
  forward pass at batch size 1), cost per window;
- forward-n for n in SWEEP: `model.anomaly_score` on n windows per call, cost per window (what a
  call of `update_many` for n entities scores);
- network_1: the network alone (`model.module_` on one scaled window, inference mode): what of
  forward-1 is the network, and the bandwidth its recurrent weights take (each step of each layer
  reads all of that layer's U once at batch size 1);
- kernels_1: of network_1, the time spent inside the fused kernels (`lstmae.kernels.layer._forward`,
  one call per LSTM layer, wrapped with a timer for this case only): the compute floor at batch size
  1, without the Python around it;
- forward_1_evicted: forward-1 when, before each call, 2 MB of other memory has been read (as an
  update's other work does between two forward passes), timing the `anomaly_score` call only: what
  a forward pass costs once its weights have left the core's L2 cache;
- onnxruntime_1 (when onnxruntime is installed): the same model exported (`lstmae.export`) and run by
  onnxruntime on one window, as many threads as lstmae, cost per window: what a batch-1 forward
  can cost, beside lstmae's own;
- update: `StreamingScorer.update` with one row at a time of one entity (past its warm-up), cost per row;
- update_many: `StreamingScorer.update_many` with one row of each of 100 entities per call (all past
  their warm-up), cost per row = time per call / 100.

Every case is warmed up once before the timed repeats; all use the same thread count (--threads,
default 1). Ratios are of medians: cost per row / batch cost per window (the goal: within 2x).
Writes streaming_speed.{json,md} to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from machine import cpu_name  # benchmarks/ is on sys.path when a script there runs
import pandas as pd
import torch

WINDOW, N_FEATURES, BATCH, ROWS, ENTITIES, CALLS = 30, 8, 512, 300, 100, 10
# Windows per anomaly_score call between one and the batch: where a forward pass's cost per window
# falls (the kernels' one-row products run up to 4 rows per thread, the BLAS from 5 on)
SWEEP = (2, 4, 5, 8, 16, 32, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import lstmae
    from lstmae import LSTMAutoencoder
    from lstmae.series import fit_series
    from lstmae.streaming import StreamingScorer

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rng = np.random.default_rng(0)
    names = [f"x{j}" for j in range(N_FEATURES)]

    def series(n):
        t = np.arange(n)[:, None]
        phases = rng.uniform(0, 2 * np.pi, N_FEATURES)
        return (np.sin(0.2 * t + phases) + 0.1 * rng.standard_normal((n, N_FEATURES))).astype(np.float32)

    model = fit_series(LSTMAutoencoder(epochs=0, random_state=0, progress=False), series(2000), window=WINDOW,
                       feature_names=names)
    windows = np.lib.stride_tricks.sliding_window_view(series(BATCH + WINDOW - 1), WINDOW, axis=0)
    windows = np.ascontiguousarray(windows.transpose(0, 2, 1))  # (512, 30, 8)

    one = StreamingScorer(model)
    stream = series(WINDOW - 1 + (args.repeats + 1) * ROWS)
    one.update(stream[: WINDOW - 1])
    position = [WINDOW - 1]

    many = StreamingScorer(model)
    ticks = series(WINDOW - 1 + (args.repeats + 1) * CALLS)
    ids = np.arange(ENTITIES)
    warm = pd.DataFrame(np.repeat(ticks[: WINDOW - 1], ENTITIES, axis=0), columns=names)
    warm.insert(0, "machine", np.tile(ids, WINDOW - 1))
    many.update_many(warm, "machine")
    frames = []
    for row in ticks[WINDOW - 1 :]:
        frame = pd.DataFrame(row + 0.01 * rng.standard_normal((ENTITIES, N_FEATURES)).astype(np.float32),
                             columns=names)
        frame.insert(0, "machine", ids)
        frames.append(frame)
    tick = [0]

    def run_batch():
        start = time.perf_counter()
        model.anomaly_score(windows)
        return (time.perf_counter() - start) / BATCH

    def run_forward_one():
        start = time.perf_counter()
        for i in range(ROWS // 3):
            model.anomaly_score(windows[i : i + 1])
        return (time.perf_counter() - start) / (ROWS // 3)

    scaled_one = torch.from_numpy(model.scaler_.transform(windows[:1]).astype(np.float32))

    def run_network_one():
        with torch.inference_mode():
            start = time.perf_counter()
            for _ in range(ROWS // 3):
                model.module_(scaled_one)
            return (time.perf_counter() - start) / (ROWS // 3)

    def run_kernels_one():
        from lstmae.kernels import layer

        forward, inside = layer._forward, [0.0]

        def timed_forward(*args, **kwargs):
            start = time.perf_counter()
            result = forward(*args, **kwargs)
            inside[0] += time.perf_counter() - start
            return result

        layer._forward = timed_forward
        try:
            with torch.inference_mode():
                for _ in range(ROWS // 3):
                    model.module_(scaled_one)
        finally:
            layer._forward = forward
        return inside[0] / (ROWS // 3)

    other_memory = np.ones(2_000_000 // 4, np.float32)

    def run_forward_one_evicted():
        spent = 0.0
        for i in range(ROWS // 3):
            other_memory.sum()
            start = time.perf_counter()
            model.anomaly_score(windows[i : i + 1])
            spent += time.perf_counter() - start
        return spent / (ROWS // 3)

    def run_update():
        rows = stream[position[0] : position[0] + ROWS]
        start = time.perf_counter()
        for row in rows:
            result = one.update(row)
        seconds = (time.perf_counter() - start) / ROWS
        assert result["valid"].all()
        position[0] += ROWS
        return seconds

    def run_update_many():
        calls = frames[tick[0] : tick[0] + CALLS]
        start = time.perf_counter()
        for frame in calls:
            result = many.update_many(frame, "machine")
        seconds = (time.perf_counter() - start) / (CALLS * ENTITIES)
        assert result["valid"].all() and len(result) == ENTITIES
        tick[0] += CALLS
        return seconds

    def forward_of(n):
        def run_forward_n():
            calls = max(1, ROWS // 3 // n)
            start = time.perf_counter()
            for i in range(calls):
                model.anomaly_score(windows[i * n : (i + 1) * n])
            return (time.perf_counter() - start) / (calls * n)
        return run_forward_n

    cases = {"batch": run_batch, "forward_1": run_forward_one,
             **{f"forward_{n}": forward_of(n) for n in SWEEP},
             "network_1": run_network_one, "kernels_1": run_kernels_one, "forward_1_evicted": run_forward_one_evicted,
             "update": run_update, "update_many": run_update_many}
    session = onnx_session(model, args.threads)
    if session is not None:
        def run_onnxruntime_one():
            start = time.perf_counter()
            for i in range(ROWS // 3):
                session.run(None, {"x": windows[i : i + 1]})
            return (time.perf_counter() - start) / (ROWS // 3)

        cases["onnxruntime_1"] = run_onnxruntime_one
    for run in cases.values():  # warm-up
        run()
    seconds = {name: [] for name in cases}
    started = time.perf_counter()
    for _ in range(args.repeats):
        for name, run in cases.items():
            seconds[name].append(run())
    wall = time.perf_counter() - started
    load_after = os.getloadavg()

    medians = {name: statistics.median(values) for name, values in seconds.items()}
    # float32 U (4H, H) of every LSTM layer, read once per step at batch size 1
    recurrent_bytes = 4 * sum(p.numel() for name, p in model.module_.named_parameters() if "weight_hh" in name
                              or "recurrent_proj" in name)
    streamed_gb_s = recurrent_bytes * WINDOW / medians["kernels_1"] / 1e9  # the kernels' time: they read U
    ratios = {name: medians[name] / medians["batch"] for name in cases if name != "batch"}
    spread = {name: [min(values) / medians["batch"], max(values) / medians["batch"]]
              for name, values in seconds.items() if name != "batch"}
    report = {
        "workload": (f"default (128, 64) tanh model, random weights, windows of {WINDOW} rows x {N_FEATURES} "
                     f"features; batch = anomaly_score on {BATCH} windows; update = one row per call of one "
                     f"entity ({ROWS} calls); update_many = {ENTITIES} entities x 1 row per call ({CALLS} calls)"),
        "unit": "seconds per window (batch, forward_n, onnxruntime_1) or per row (update, update_many)",
        "threads": torch.get_num_threads(), "repeats": args.repeats, "timed_seconds": wall,
        "seconds": seconds, "median_seconds": medians,
        "ratio_to_batch_per_window": ratios,
        "ratio_range_to_batch_median": spread,
        "recurrent_weight_bytes": recurrent_bytes,
        "kernels_1_recurrent_weights_gb_per_s": streamed_gb_s,
        "goal": "update per row within 2x of batch per window",
        "load_average_before_after": [list(load_before), list(load_after)],
        "cpu_count": os.cpu_count(),
        "versions": {"lstmae": lstmae.__version__, "torch": torch.__version__, "pandas": pd.__version__,
                     "python": platform.python_version()},
        "machine": f"{platform.machine()}, {cpu_name()}",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "streaming_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    labels = {"batch": "batch `anomaly_score`, 512 windows (per window)",
              "forward_1": "`anomaly_score` of 1 window (per window)",
              **{f"forward_{n}": f"`anomaly_score` of {n} windows (per window)" for n in SWEEP},
              "network_1": "the network alone (`model.module_`) on 1 window (per window)",
              "kernels_1": "of that, inside the fused kernels (per window)",
              "forward_1_evicted": "`anomaly_score` of 1 window after reading 2 MB of other memory (per window)",
              "update": "`update`, 1 row per call (per row)",
              "update_many": f"`update_many`, {ENTITIES} entities x 1 row per call (per row)",
              "onnxruntime_1": "onnxruntime, the exported model on 1 window (per window)"}
    rows = "\n".join(
        f"| {labels[name]} | {medians[name] * 1e3:.3f} | {min(values) * 1e3:.3f} - {max(values) * 1e3:.3f} | "
        + ("1" if name == "batch" else f"{ratios[name]:.2f} ({spread[name][0]:.2f} - {spread[name][1]:.2f})")
        + " |" for name, values in seconds.items())
    (args.out / "streaming_speed.md").write_text(
        f"# Streaming scoring: cost per row against batch scoring's cost per window\n\n{report['workload']}; "
        f"{report['threads']} thread(s), {args.repeats} alternations in one process after one warm-up of each; "
        f"{report['machine']}, {os.cpu_count()} cores.\n\n"
        f"Load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} cores"
        + (" (**the machine was shared**: absolute times are inflated and noisy)" if max(load_before[0], load_after[0])
           > 0.5 * os.cpu_count() else "") + "; the ratios, measured side by side and alternated, are what to read."
        "\n\n"
        f"| case | median ms | range ms | ratio to batch per window (range) |\n|---|---|---|---|\n{rows}\n\n"
        f"Goal: `update` per row within 2x of batch per window. Measured: **{ratios['update']:.1f}x** "
        f"(`update_many` with {ENTITIES} entities per call: **{ratios['update_many']:.2f}x**). One window's "
        f"forward pass at batch size 1 costs {ratios['forward_1']:.1f}x a window's share of a 512-window batch: "
        f"a one-row update scores one window and cannot cost less than that; `update_many` batches the windows "
        f"of many entities into one forward pass. Of that, the network alone costs {ratios['network_1']:.1f}x, "
        f"{ratios['kernels_1']:.1f}x inside the fused kernels and the rest in the Python around them. At batch "
        f"size 1 each step of each layer reads all of that layer's recurrent weights "
        f"({recurrent_bytes / 1e6:.2f} MB in all, {WINDOW} steps: {recurrent_bytes * WINDOW / 1e6:.0f} MB per window), "
        f"{streamed_gb_s:.0f} GB/s at the kernels' measured time, where a batch reads them once for all its "
        f"windows. With its weights out of the L2 cache (2 MB of other memory read before "
        f"each call, as an update's other work does) one window costs {ratios['forward_1_evicted']:.1f}x "
        f"instead of {ratios['forward_1']:.1f}x."
        + (f" onnxruntime runs the same batch-1 forward at {ratios['onnxruntime_1']:.1f}x." if "onnxruntime_1" in ratios
           else "")
        + " Scoring n windows in one call costs, per window, "
        + ", ".join(f"{ratios[f'forward_{n}']:.1f}x (n = {n})" for n in SWEEP)
        + ": the windows that `update_many` scores together for that many entities."
        + "\n\n"
        f"Versions: {report['versions']}. Produced by `python benchmarks/streaming_speed.py`.\n")
    print(f"per window batch {medians['batch'] * 1e3:.3f} ms; update {ratios['update']:.2f}x, update_many "
          f"{ratios['update_many']:.2f}x, forward_1 {ratios['forward_1']:.2f}x; wrote "
          f"{args.out / 'streaming_speed.md'}")


def onnx_session(model, threads: int):
    """An onnxruntime session of `model` exported to a temporary file, or None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import tempfile

    from lstmae.export import export_onnx

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


if __name__ == "__main__":
    main()
