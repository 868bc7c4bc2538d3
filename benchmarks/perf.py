"""Speed and memory of lstmae against reference implementations, measured side by side.

    python benchmarks/perf.py [--quick] [--out benchmarks/results] [--threads 2] [--device cuda]

Measures this machine's fp32 matmul peak, then, on three workloads (ECG-like 4500 x 140 x 1,
sensor windows 18000 x 5 x 59, long windows 2000 x 256 x 8; encoder 128 -> 64, decoder
64 -> 128), the training throughput (sequences/s, batch 128, after warm-up) and scoring
throughput (sequences/s, batch 512) of:

    lstmae tanh / relu     the package as it is (its real training loop and `anomaly_score`)
    lstmae relu, oneDNN /  the same with LSTMAE_MATMUL=onednn or =blas (ECG-like only): what
      BLAS                 the default's register tiles bring where it uses them
    relu autograd loop     lstmae's relu layer before fast_lstm, and the same loop reading
                           gates_x.unbind(1) instead of gates_x[:, t] (training only)
    plain nn.LSTM          the batched nn.LSTM autoencoder most people write first
    hand-written relu      an autograd loop of relu LSTM cells
    batch-1 tutorial       one sequence per forward pass and per optimizer step
    Keras 3 relu           only when `import keras` works

and scores a generated 10-million-row, 8-feature series chunk by chunk with a tiny model.
A matrix-product ablation shows where an LSTM layer's input projection is best computed.
Each case runs in its own subprocess so its peak RSS (ru_maxrss) is its own. The ECG-like cases,
which the goals are checked on, run in two passes over all implementations (the full run; the
quick one: one), and each keeps its better pass: on a shared machine a burst of other load
can take a whole case, and the second pass gives every implementation the same second chance.
"% peak" counts the LSTM matrix-product FLOPs: 2 * 4H * (I + H) per step and layer forward, x3
for training.
With --device cuda, lstmae (tanh and relu) and plain nn.LSTM train and score on the GPU (models
fitted on the CPU, loaded there), the long series is scored there, and the peak is the GPU's fp32
GEMM; the CPU-only cases (the matmul libraries, the ablation, the autograd loops, Keras) are left out.
Writes perf_full.{json,md} (perf_quick.* with --quick; _threadsN added for a non-default
--threads, _cuda for --device cuda) to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from machine import cpu_name  # benchmarks/ is on sys.path when a script there runs

ENCODER = (128, 64)
ECG_PASSES = 2  # passes over the ECG-like cases in a full run; each case keeps its best
TRAIN_BATCH = 128
SCORE_BATCH = 512
# Every implementation trains with Adam at this rate. Speed does not depend on it, but at 1e-3
# the ECG-like relu model diverged within the timed rounds (relu LSTMs' cells are unbounded).
LEARNING_RATE = 1e-4


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    n: int
    length: int
    features: int
    from_series: bool  # windows of one long series (a temporalize view) or independent sequences


WORKLOADS = (
    Workload("ecg", "ECG-like", 4500, 140, 1, from_series=False),
    Workload("sensor", "sensor windows", 18000, 5, 59, from_series=True),
    Workload("long", "long windows", 2000, 256, 8, from_series=True),
)

# key: (label, tasks). Keras runs only when it can be imported (TensorFlow is not a dependency).
IMPLEMENTATIONS = {
    "lstmae-tanh": ("lstmae tanh (the package as it is)", ("train", "score")),
    "lstmae-relu": ("lstmae relu (the package as it is)", ("train", "score")),
    "lstmae-relu-onednn": ("lstmae relu, LSTMAE_MATMUL=onednn (every product through oneDNN)", ("train", "score")),
    "lstmae-relu-blas": ("lstmae relu, LSTMAE_MATMUL=blas (every product through torch's BLAS)", ("train", "score")),
    "loop-relu": ("lstmae relu before fast_lstm: autograd loop, gates_x[:, t]", ("train", "score")),
    "unbind-relu": ("the same loop fixed to gates_x.unbind(1)", ("train",)),
    "plain": ("reference: plain nn.LSTM autoencoder", ("train", "score")),
    "handrelu": ("reference: hand-written relu LSTM loop", ("train", "score")),
    "tutorial": ("reference: batch-1 tutorial", ("train", "score")),
    "keras-relu": ("reference: Keras 3 relu LSTMs", ("train", "score")),
}
GPU_IMPLEMENTATIONS = ("lstmae-tanh", "lstmae-relu", "plain")  # what --device cuda measures
LSTMAE_VARIANTS = ("lstmae", "loop", "unbind")  # impl prefixes that run lstmae's own loop and scoring
MATMUL_CASES = {"lstmae-relu-onednn": "onednn", "lstmae-relu-blas": "blas"}  # LSTMAE_MATMUL; ECG-like only

SERIES_CASE = {"full": {"rows": 10_000_000}, "quick": {"rows": 1_000_000}}
SERIES_SETTINGS = {"features": 8, "window": 100, "stride": 5, "encoder": (16,), "chunk_rows": 500_000}


# --------------------------------------------------------------------------- FLOPs and data
def lstm_layers(n_features: int, encoder=ENCODER) -> list[tuple[int, int]]:
    """(input size, hidden size) of every LSTM layer: encoder, then the mirrored decoder."""
    sizes = (n_features, *encoder)
    decoder_sizes = (encoder[-1], *reversed(encoder))
    return list(zip(sizes, sizes[1:])) + list(zip(decoder_sizes, decoder_sizes[1:]))


def flops_per_sequence(n_features: int, length: int, training: bool, encoder=ENCODER) -> float:
    """LSTM matrix-product FLOPs of one sequence: 2 * 4H * (I + H) per step and layer, x3 to train."""
    forward = sum(2 * 4 * h * (i + h) for i, h in lstm_layers(n_features, encoder)) * length
    return forward * (3 if training else 1)


def make_windows(workload: Workload, seed: int = 0) -> np.ndarray:
    """(N, L, F) float32: noisy sines, as independent sequences or as a view of one series."""
    rng = np.random.default_rng(seed)
    if workload.from_series:
        from lstmae import temporalize

        rows = workload.n + workload.length - 1
        return temporalize(smooth_series(np.arange(rows), workload.features, rng), workload.length)[0]
    t = np.arange(workload.length)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, size=(workload.n, 1, workload.features))
    noise = rng.normal(scale=0.05, size=(workload.n, workload.length, workload.features))
    return (np.sin(2 * np.pi * t / workload.length + phase) + noise).astype(np.float32)


def smooth_series(rows: np.ndarray, n_features: int, rng: np.random.Generator) -> np.ndarray:
    """(len(rows), F) float32 sines of periods 50..200 rows, plus noise; rows are global indices."""
    periods = np.linspace(50, 200, n_features)
    values = np.sin(2 * np.pi * rows[:, None] / periods) + rng.normal(scale=0.1, size=(len(rows), n_features))
    return values.astype(np.float32)


# --------------------------------------------------------------------------- child: one case
def run_case(spec: dict) -> dict:
    """Run one measurement in this (child) process and return its figures."""
    import torch

    torch.set_num_threads(spec["threads"])
    load_before = os.getloadavg()[0]
    device = spec.get("device", "cpu")
    if spec["task"] == "matmul":
        result = measure_matmul_peak(spec["seconds"]) if device == "cpu" else gpu_matmul_peak(spec["seconds"], device)
    elif spec["task"] == "ablation":
        result = projection_ablation(spec["seconds"])
    elif spec["task"] == "prepare":
        result = fit_scoring_models(spec)
    elif spec["task"] == "series":
        result = score_long_series(spec)
    elif spec["task"] == "imports":
        import lstmae.estimator  # noqa: F401  (what every lstmae case loads before it starts)

        result = {}
    else:
        workload = next(w for w in WORKLOADS if w.key == spec["workload"])
        if spec["task"] == "train":
            result = train_case(spec["impl"], workload, spec["seconds"], device)
        else:
            result = score_case(spec["impl"], workload, spec["seconds"], Path(spec["models"]), device)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device != "cpu":
        result["max_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    result["load_avg"] = [load_before, os.getloadavg()[0]]
    return result


def fit_scoring_models(spec: dict) -> dict:
    """Fit and save the models the scoring cases load (so that fitting is no part of their RSS):
    per workload a tanh and a relu model, and the series' tiny model (1 epoch on a few windows:
    speed does not depend on how well a model is trained)."""
    from lstmae import LSTMAutoencoder, temporalize

    folder = Path(spec["models"])
    folder.mkdir(parents=True, exist_ok=True)
    for key in spec["workloads"]:
        X = make_windows(next(w for w in WORKLOADS if w.key == key))
        for activation in ("tanh", "relu"):
            model = LSTMAutoencoder(encoder=ENCODER, activation=activation, epochs=1, batch_size=32,
                                    random_state=0, device="cpu", progress=False)
            model.fit(X[:64]).save(folder / f"{key}-{activation}", overwrite=True)
    series = spec["series"]
    rows = smooth_series(np.arange(20_000), series["features"], np.random.default_rng(1))
    model = LSTMAutoencoder(encoder=tuple(series["encoder"]), epochs=1, batch_size=TRAIN_BATCH, random_state=0,
                            device="cpu", progress=False)
    model.fit(temporalize(rows, series["window"], series["stride"])[0]).save(folder / "series", overwrite=True)
    return {}


def projection_ablation(seconds: float, length: int = 140, inputs: int = 64, hidden: int = 128) -> dict:
    """Matrix products only (no gate math) of one LSTM layer (the ECG decoder's 64 -> 128), in
    GFLOP/s, for two ways to place them:

    all_steps: the input projection as one (N*L, I) x (I, 4H) product before the loop (and,
        backward, dW, dU and dx as products over all N*L rows after it); per step only h U^T
        (backward: dh U).
    per_step: x_t W^T and h U^T at every step (backward: dx_t, dh, dW += , dU += per step),
        as `lstmae.nn.fast_lstm` does.
    """
    import torch

    four_h = 4 * hidden
    w_ih, w_hh, bias = torch.randn(four_h, inputs), torch.randn(four_h, hidden), torch.randn(four_h)

    def forward_all_steps(x, h):
        gates_x, gates = torch.nn.functional.linear(x, w_ih, bias), torch.empty(len(x), four_h)
        for t in range(length):
            torch.addmm(gates_x[:, t], h, w_hh.t(), out=gates)

    def forward_per_step(x, h):
        gates = torch.empty(len(x), four_h)
        for t in range(length):
            torch.addmm(bias, x[:, t], w_ih.t(), out=gates).addmm_(h, w_hh.t())

    def backward_all_steps(x, h):
        grad_gates_all, grad_h = torch.empty(len(x), length, four_h), torch.empty(len(x), hidden)
        for t in range(length - 1, -1, -1):
            grad_gates_all[:, t].fill_(1e-3)  # stands for the gate derivatives written at step t
            torch.mm(grad_gates_all[:, t], w_hh, out=grad_h)
        rows = grad_gates_all.reshape(-1, four_h)
        h_all = h[:, None].expand(-1, length, -1).reshape(-1, hidden)
        rows.t() @ h_all, rows.t() @ x.reshape(-1, inputs), rows @ w_ih

    def backward_per_step(x, h):
        grad_gates, grad_h, grad_x = torch.empty(len(x), four_h), torch.empty(len(x), hidden), torch.empty_like(x)
        grad_w_ih, grad_w_hh = torch.zeros_like(w_ih), torch.zeros_like(w_hh)
        for t in range(length - 1, -1, -1):
            grad_gates.fill_(1e-3)
            torch.mm(grad_gates, w_hh, out=grad_h)
            torch.mm(grad_gates, w_ih, out=grad_x[:, t])
            grad_w_ih.addmm_(grad_gates.t(), x[:, t])
            grad_w_hh.addmm_(grad_gates.t(), h)

    result = {}
    for n in (SCORE_BATCH, TRAIN_BATCH):
        x, h = torch.randn(n, length, inputs), torch.randn(n, hidden)
        flops = 2 * n * length * four_h * (inputs + hidden)
        for name, run, factor in (("forward_all_steps", forward_all_steps, 1), ("forward_per_step", forward_per_step, 1),
                                  ("backward_all_steps", backward_all_steps, 2),
                                  ("backward_per_step", backward_per_step, 2)):
            times = []
            deadline = time.perf_counter() + seconds / 8
            while time.perf_counter() < deadline or len(times) < 2:
                start = time.perf_counter()
                run(x, h)
                times.append(time.perf_counter() - start)
            result[f"{name}_n{n}_gflops"] = factor * flops / min(times) / 1e9
    return result


def measure_matmul_peak(seconds: float) -> dict:
    """Best fp32 GEMM GFLOP/s over square sizes, each timed in short bursts, through torch's BLAS
    (a @ b) and, where torch has it, oneDNN's matmul: MKL runs its AVX-512 kernels on Intel CPUs
    only, so on other CPUs the BLAS alone would understate what the machine can do."""
    import torch

    products = {"blas": lambda a, b: a @ b}
    if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        products["onednn"] = lambda a, b: torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    result = {}
    for name, product in products.items():
        best = {}
        for size in (512, 1024, 2048, 3072):
            a, b = torch.randn(size, size), torch.randn(size, size)
            product(a, b)
            rates = []
            deadline = time.perf_counter() + seconds / 3 / len(products)
            while time.perf_counter() < deadline or len(rates) < 3:
                start = time.perf_counter()
                product(a, b)
                rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
            best[size] = max(rates)
        result[f"gflops_{name}"] = max(best.values())
        result[f"gflops_by_size_{name}"] = best
    return {"gflops": max(result[f"gflops_{name}"] for name in products), **result}


def gpu_matmul_peak(seconds: float, device: str) -> dict:
    """Best fp32 GEMM GFLOP/s of the GPU over square sizes (TF32 off, as torch's default leaves it:
    lstmae's layers run in fp32)."""
    import torch

    best = {}
    for size in (2048, 4096, 8192):
        a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
        a @ b
        rates = []
        deadline = time.perf_counter() + seconds / 3
        while time.perf_counter() < deadline or len(rates) < 3:
            torch.cuda.synchronize(device)
            start = time.perf_counter()
            a @ b
            torch.cuda.synchronize(device)
            rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
        best[size] = max(rates)
    return {"gflops": max(best.values()), "gflops_by_size_gpu": best}  # the GPU's name: machine_info


def synchronized(run, device: str):
    """run, then wait for the GPU's queued work, so that a round's time includes it."""
    if device == "cpu":
        return run
    import torch

    def run_and_wait(k):
        result = run(k)
        torch.cuda.synchronize(device)
        return result

    return run_and_wait


def measure(run, first: int, most: int, step: int, seconds: float, rounds: int = 3) -> dict:
    """Throughput of run(k), which processes k sequences. After two warm-up calls run(first)
    (the first pays one-time costs such as lazy imports), time `rounds` rounds of run(k), k a
    multiple of `step` (at most `most`) such that all rounds fit in `seconds`. The best round
    counts: on a shared machine the others also measure the neighbours. When the second
    warm-up alone took longer than `seconds`, it is the one measurement."""
    run(first)
    times = [timed(run, first)]
    count = first
    if times[0][0] <= seconds:
        count = max(step, min(most // step * step, int(seconds / rounds * first / times[0][0]) // step * step))
        times = [timed(run, count) for _ in range(rounds)]
    # cpu_rate: sequences per CPU-second of this process (all its threads); with one thread it
    # depends less than `rate` on what else the machine runs.
    return {"rate": count / min(w for w, _ in times), "cpu_rate": count / min(c for _, c in times),
            "sequences_per_round": count, "rounds": times}


def timed(run, count: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of run(count)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    run(count)
    return time.perf_counter() - start, time.process_time() - cpu_start


def lstmae_module(impl: str, n_features: int):
    import torch
    from perf_references import AutogradLoopLSTM, UnbindKerasLSTM, swap_layers

    from lstmae.config import Architecture
    from lstmae.nn.model import LSTMAutoencoderModule

    torch.manual_seed(0)
    activation = impl.split("-")[1]
    arch = Architecture(n_features=n_features, encoder=ENCODER, decoder=tuple(reversed(ENCODER)),
                        activation=activation)
    if impl.startswith("unbind"):
        return swap_layers(arch, UnbindKerasLSTM)
    if impl.startswith("loop"):
        return swap_layers(arch, AutogradLoopLSTM)
    return LSTMAutoencoderModule(arch)


def reference_module(impl: str, n_features: int):
    import torch
    from perf_references import HandWrittenReluAutoencoder, PlainAutoencoder, TutorialAutoencoder

    torch.manual_seed(0)
    kind = {"plain": PlainAutoencoder, "handrelu": HandWrittenReluAutoencoder, "tutorial": TutorialAutoencoder}
    return kind[impl](n_features, ENCODER)


def scaled_tensor(X: np.ndarray):
    """The references' data preparation: all of X standardised into one tensor (N, L, F)."""
    import torch

    mean, std = X.mean(axis=(0, 1)), X.std(axis=(0, 1))
    return torch.from_numpy(((X - mean) / std).astype(np.float32))


def train_case(impl: str, workload: Workload, seconds: float, device: str = "cpu") -> dict:
    import torch

    X = make_windows(workload)
    n = len(X)
    if impl.startswith(LSTMAE_VARIANTS):
        from lstmae.data.scaling import FeatureScaler
        from lstmae.training.loop import train

        module = lstmae_module(impl, workload.features).to(device)
        scaler = FeatureScaler.fit(X)
        rng = np.random.default_rng(0)

        def run(k):
            # One validation window: the loop's once-per-fit passes (the untrained loss its divergence check
            # compares with, on the validation windows or else on an epoch's worth of training windows) then
            # cost one window, as they cost a fit of many epochs next to nothing; each round here is one epoch.
            train(module, X, np.arange(k), np.arange(n - 1, n), transform=scaler.transform, tokens=False, epochs=1,
                  batch_size=TRAIN_BATCH, learning_rate=LEARNING_RATE, loss="mse", patience=None,
                  max_grad_norm=1.0, rng=rng, device=torch.device(device), progress=False)

        return measure(synchronized(run, device), TRAIN_BATCH, n, TRAIN_BATCH, seconds)
    if impl == "keras-relu":
        return keras_case(workload, X, seconds, training=True)
    data = scaled_tensor(X).to(device)
    module = reference_module(impl, workload.features).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    if impl == "tutorial":
        from perf_references import train_one_at_a_time

        return measure(lambda k: train_one_at_a_time(module, data[:k].numpy(), optimizer), 4, n, 1, seconds)

    def run(k):
        for index in torch.randperm(k).split(TRAIN_BATCH):
            batch = data[index.to(device)]
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(module(batch), batch)
            loss.backward()
            optimizer.step()

    return measure(synchronized(run, device), TRAIN_BATCH, n, TRAIN_BATCH, seconds)


def score_case(impl: str, workload: Workload, seconds: float, models: Path, device: str = "cpu") -> dict:
    import torch

    X = make_windows(workload)
    n = len(X)
    if impl.startswith(LSTMAE_VARIANTS):
        from lstmae import load

        model = load(models / f"{workload.key}-{impl.split('-')[1]}", device=device)
        check = {}
        if not impl.startswith("lstmae"):  # the same fitted weights in the variant's layers
            expected = model.anomaly_score(X[:64])  # few windows: the as-is layers must not set the RSS
            variant = lstmae_module(impl, workload.features)
            variant.load_state_dict(model.module_.state_dict())
            model.module_ = variant.eval()
            difference = np.abs(model.anomaly_score(X[:64]) - expected) / np.abs(expected).max()
            check = {"max_relative_score_difference": float(difference.max())}
        return {**measure(lambda k: model.anomaly_score(X[:k]), SCORE_BATCH, n, SCORE_BATCH, seconds), **check}
    if impl == "keras-relu":
        return keras_case(workload, X, seconds, training=False)
    data = scaled_tensor(X).to(device)
    module = reference_module(impl, workload.features).to(device).eval()
    if impl == "tutorial":
        def run(k):
            with torch.no_grad():
                return [torch.nn.functional.l1_loss(module(sequence), sequence).item() for sequence in data[:k]]

        return measure(run, 4, n, 1, seconds)

    def run(k):  # the scores come back to the host, as lstmae's do
        with torch.inference_mode():
            return torch.cat([((module(batch) - batch) ** 2).mean(dim=(1, 2))
                              for batch in data[:k].split(SCORE_BATCH)]).cpu().numpy()

    return measure(run, SCORE_BATCH, n, SCORE_BATCH, seconds)


def keras_case(workload: Workload, X: np.ndarray, seconds: float, training: bool) -> dict:
    from perf_references import keras_autoencoder

    data = scaled_tensor(X).numpy()
    model = keras_autoencoder(workload.features, workload.length, ENCODER, LEARNING_RATE)
    if training:
        def run(k):
            for start in range(0, k, TRAIN_BATCH):
                batch = data[start : start + TRAIN_BATCH]
                model.train_on_batch(batch, batch)

        return measure(run, TRAIN_BATCH, len(X), TRAIN_BATCH, seconds)
    return measure(lambda k: model.predict(data[:k], batch_size=SCORE_BATCH, verbose=0), SCORE_BATCH, len(X),
                   SCORE_BATCH, seconds)


def score_long_series(spec: dict) -> dict:
    """Score a generated (T, F) series window by window in chunks: only one chunk is ever in memory.

    The series is generated chunk by chunk (as if read from a stream or a memory map); the rows
    that later windows still need are carried over to the next chunk.
    """
    from lstmae import load, temporalize

    rows, features = spec["rows"], spec["features"]
    window, stride, chunk_rows = spec["window"], spec["stride"], spec["chunk_rows"]
    rng = np.random.default_rng(0)
    model = load(Path(spec["models"]) / "series", device=spec.get("device", "cpu"))

    start, cpu_start = time.perf_counter(), time.process_time()
    carried = np.empty((0, features), np.float32)
    n_scored, n_flagged = 0, 0
    for chunk_start in range(0, rows, chunk_rows):
        new_rows = np.arange(chunk_start, min(rows, chunk_start + chunk_rows))
        buffer = np.concatenate([carried, smooth_series(new_rows, features, rng)])
        if len(buffer) >= window:
            X, _ = temporalize(buffer, window, stride)
            scores = model.anomaly_score(X)
            n_scored += len(scores)
            n_flagged += int((scores > model.threshold_).sum())
            next_start = len(X) * stride  # first window start (in buffer rows) not yet scored
            carried = buffer[next_start:]
        else:
            carried = buffer
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    expected = (rows - window) // stride + 1
    if n_scored != expected:
        raise RuntimeError(f"scored {n_scored} windows, expected {expected}")
    return {"rows": rows, "windows": n_scored, "seconds": elapsed, "cpu_seconds": cpu, "rows_per_s": rows / elapsed,
            "flagged": n_flagged, **{k: spec[k] for k in SERIES_SETTINGS}}


# --------------------------------------------------------------------------- parent: all cases
def run_in_child(spec: dict, timeout: float) -> dict:
    """Run one case in a fresh interpreter; its peak RSS is its own."""
    command = [sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(spec)]
    env = {**os.environ, "LSTMAE_MATMUL": MATMUL_CASES[spec["impl"]]} if spec.get("impl") in MATMUL_CASES else None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def keras_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("keras") is not None


def run_all(quick: bool, threads: int, models: Path, log, device: str = "cpu") -> dict:
    """Every case, each in its own subprocess; quick: the ECG-like workload only, short timings;
    device "cuda": the GPU cases only (GPU_IMPLEMENTATIONS), one pass."""
    gpu = device != "cpu"
    seconds = 1.0 if quick else 4.0 if gpu else 6.0
    workloads = WORKLOADS[:1] if quick else WORKLOADS
    implementations = (list(GPU_IMPLEMENTATIONS) if gpu else
                       [k for k in IMPLEMENTATIONS if k != "keras-relu" or keras_available()])
    ecg_passes = 1 if quick or gpu else ECG_PASSES
    series = {**SERIES_SETTINGS, **SERIES_CASE["quick" if quick else "full"]}
    started = time.perf_counter()
    results = {"machine": machine_info(threads, device), "quick": quick, "device": device, "cases": [],
               "settings": {"encoder": ENCODER, "train_batch": TRAIN_BATCH, "score_batch": SCORE_BATCH,
                            "seconds_per_measurement": seconds, "ecg_passes": ecg_passes}}
    common = {"threads": threads, "models": str(models), "device": device}
    results["matmul"] = run_in_child({"task": "matmul", "seconds": 3.0, **common}, timeout=120)
    log(f"matmul peak: {results['matmul'].get('gflops', float('nan')):.1f} GFLOP/s")
    if not gpu:
        results["ablation"] = run_in_child({"task": "ablation", "seconds": 3 * seconds, **common}, timeout=300)
    prepared = run_in_child({"task": "prepare", "workloads": [w.key for w in workloads], "series": series,
                             **common, "threads": 1, "device": "cpu"}, timeout=900)  # set-up only: one thread is the safe choice
    if "error" in prepared:
        raise RuntimeError(f"fitting the scoring models failed: {prepared['error']}")
    for workload in workloads:
        passes = ecg_passes if workload.key == "ecg" else 1
        runs = {}  # (impl, task): that case's run in each pass
        for _ in range(passes):
            for impl in implementations:
                if impl in MATMUL_CASES and workload.key != "ecg":
                    continue
                for task in IMPLEMENTATIONS[impl][1]:
                    spec = {"task": task, "workload": workload.key, "impl": impl, "seconds": seconds, **common}
                    case = {**spec, **run_in_child(spec, timeout=600)}
                    log(f"{workload.key:7s} {impl:18s} {task:6s} " + (
                        case["error"] if "error" in case else f"{case['rate']:9.1f} seq/s  {case['max_rss_mb']:6.0f} MB"))
                    runs.setdefault((impl, task), []).append(case)
        for cases in runs.values():
            best = max(cases, key=lambda case: case.get("rate", 0))
            results["cases"].append({**best, "pass_rates": [case.get("rate") for case in cases]})
    results["series"] = {**series, **run_in_child({"task": "series", **series, **common}, timeout=1200)}
    log(f"series  {results['series'].get('rows_per_s', float('nan')):.0f} rows/s  "
        f"{results['series'].get('max_rss_mb', float('nan')):.0f} MB")
    results["baseline_rss_mb"] = run_in_child({"task": "imports", **common}, timeout=120).get("max_rss_mb")
    # Measured again at the end: on a shared machine the higher of the two is the better estimate.
    results["matmul_end"] = run_in_child({"task": "matmul", "seconds": 3.0, **common}, timeout=120)
    results["matmul"]["gflops_start"] = results["matmul"].get("gflops")
    results["matmul"]["gflops"] = max(filter(None, [results["matmul"].get("gflops"), results["matmul_end"].get("gflops")]))
    results["machine"]["load_avg_end"] = os.getloadavg()
    results["total_seconds"] = time.perf_counter() - started
    return results


def machine_info(threads: int, device: str = "cpu") -> dict:
    import torch

    cpu = cpu_name()
    from lstmae.kernels import ONEDNN_MIN_FLOPS, compiled, matmul_policy

    tiles_built = getattr(compiled(), "tiles_pay", False)
    libraries = {"onednn": "oneDNN", "blas": "torch's BLAS",
                 "tiles": ("lstmae's register tiles (each step's products)" if tiles_built else
                           "not lstmae's register tiles (built without AVX-512)")
                 + f", oneDNN (the other products of at least {ONEDNN_MIN_FLOPS / 1e6:g} MFLOP) and torch's BLAS"}

    return {"cpu": cpu, "cpu_count": os.cpu_count(), "threads": threads, "python": platform.python_version(),
            "torch": torch.__version__, "load_avg_start": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "lstmae_matmul": libraries[matmul_policy()],
            **({} if device == "cpu" else {"gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda})}


# --------------------------------------------------------------------------- report
def matmul_libraries(matmul: dict) -> str:
    """' (torch's BLAS x, oneDNN y at the start)' where both were measured, else ''."""
    if "gflops_blas" not in matmul or "gflops_onednn" not in matmul:
        return ""
    return f" (torch's BLAS {matmul['gflops_blas']:.1f}, oneDNN {matmul['gflops_onednn']:.1f} at the start)"


def by_cpu_time(results: dict) -> bool:
    """With one thread, rates are taken per CPU-second (robust to other load); else per wall second."""
    return results["machine"]["threads"] == 1


def add_ratios(results: dict) -> None:
    """Per case: the throughput reported, FLOP-based % of the matmul peak, ratio to plain nn.LSTM."""
    peak = results["matmul"].get("gflops")
    key = "cpu_rate" if by_cpu_time(results) else "rate"
    for case in results["cases"]:
        if key in case:
            case["throughput"] = case[key]
    rates = {(c["workload"], c["impl"], c["task"]): c.get("throughput") for c in results["cases"]}
    for case in results["cases"]:
        if "throughput" not in case:
            continue
        workload = next(w for w in WORKLOADS if w.key == case["workload"])
        flops = flops_per_sequence(workload.features, workload.length, case["task"] == "train")
        case["gflops"] = case["throughput"] * flops / 1e9
        case["percent_of_peak"] = 100 * case["gflops"] / peak if peak else None
        plain = rates.get((case["workload"], "plain", case["task"]))
        case["vs_plain"] = case["throughput"] / plain if plain else None
    series = results["series"]
    if "seconds" in series:
        series["throughput_rows_per_s"] = series["rows"] / series["cpu_seconds" if by_cpu_time(results) else "seconds"]


def goals(results: dict) -> list[tuple[str, str, bool | None]]:
    """Issue 5 goals on the ECG-like workload."""
    def rate(impl, task):
        return next((c.get("throughput") for c in results["cases"]
                     if c["workload"] == "ecg" and c["impl"] == impl and c["task"] == task), None)

    def percent(impl):
        return next((c.get("percent_of_peak") for c in results["cases"]
                     if c["workload"] == "ecg" and c["impl"] == impl and c["task"] == "score"), None)

    def ratio(a, b):
        return a / b if a and b else None

    rows = []
    best_train = max(filter(None, [rate("lstmae-tanh", "train"), rate("lstmae-relu", "train")]), default=None)
    checks = [
        ("training >= 1.5x plain nn.LSTM", ratio(best_train, rate("plain", "train")), 1.5),
        ("relu training >= 3x Keras relu", ratio(rate("lstmae-relu", "train"), rate("keras-relu", "train")), 3.0),
        ("scoring >= 60% of matmul peak", max(filter(None, [percent("lstmae-tanh"), percent("lstmae-relu")]),
                                              default=None), 60.0),
        ("relu training >= 0.9x tanh", ratio(rate("lstmae-relu", "train"), rate("lstmae-tanh", "train")), 0.9),
        ("relu scoring >= 0.9x tanh", ratio(rate("lstmae-relu", "score"), rate("lstmae-tanh", "score")), 0.9),
    ]
    for name, value, target in checks:
        unit = "%" if name.startswith("scoring") else "x"
        shown = "n/a" if value is None else f"{value:.1f}{unit}" if unit == "%" else f"{value:.2f}x"
        rows.append((f"lstmae: {name}", shown, None if value is None else value >= target))
    return rows


def markdown(results: dict) -> str:
    machine = results["machine"]
    peak = results["matmul"].get("gflops", float("nan"))
    gpu = results.get("device", "cpu") != "cpu"
    memory = "GPU MB" if gpu else "RSS MB"
    lines = [
        f"# lstmae performance ({'quick' if results['quick'] else 'full'} run"
        f"{', on the GPU' if gpu else ''}, {machine['date']})",
        "",
        (f"{machine['gpu']} (CUDA {machine['cuda']}), beside " if gpu else "")
        + f"{machine['cpu']} ({machine['cpu_count']} cores), torch threads: {machine['threads']}, torch {machine['torch']}, Python {machine['python']}. "
        f"Load average (1 min) {machine['load_avg_start'][0]:.1f} at the start, "
        f"{machine['load_avg_end'][0]:.1f} at the end. Whole run: {results['total_seconds'] / 60:.1f} min.",
        "",
        (f"Matmul peak (the GPU's fp32 GEMM, TF32 off, best of 2048..8192 squares, at the start and at the end "
         f"of the run): **{peak:.1f} GFLOP/s**. On the GPU lstmae's tanh layers run cuDNN's nn.LSTM and its relu "
         f"layers lstmae's PyTorch loop (one set of kernel launches per step); the scoring models were fitted on "
         f"the CPU and loaded onto the GPU. " if gpu else
         f"Matmul peak (fp32 GEMM, best of 512..3072 squares, at the start and at the end of the run): "
         f"**{peak:.1f} GFLOP/s**{matmul_libraries(results['matmul'])}. "
         + (f"lstmae's fused layers ran their products through {machine['lstmae_matmul']} here. "
            if "lstmae_matmul" in machine else ""))
        + f"Layers {ENCODER[0]}/{ENCODER[1]}/{ENCODER[1]}/{ENCODER[0]}; training batch {TRAIN_BATCH}, "
        f"scoring batch {SCORE_BATCH}. % peak = LSTM GEMM FLOPs per sequence x sequences/s / peak. "
        + ("Throughput is per CPU-second of the case's process (one thread: robust to the other load "
           "on the machine, unlike wall time, which the JSON also holds)." if by_cpu_time(results) else
           "Throughput is per wall-clock second.")
        + (f" Each ECG-like case is the better of {passes} passes over all implementations (the JSON's "
           f"pass_rates has each)." if (passes := results["settings"].get("ecg_passes", 1)) > 1 else ""),
        ("GPU MB is the case's peak of memory allocated on the GPU (torch.cuda.max_memory_allocated)." if gpu else
         f"RSS is the case's own peak (its subprocess; scoring cases load a saved model); importing lstmae "
         f"(torch, pandas, scikit-learn) alone takes "
         f"{results.get('baseline_rss_mb') or float('nan'):.0f} MB."),
        "",
    ]
    for workload in WORKLOADS:
        if not any(c["workload"] == workload.key for c in results["cases"]):
            continue
        lines += [f"## {workload.title} ({workload.n} x {workload.length} x {workload.features})", "",
                  f"| implementation | train seq/s | x plain | % peak | {memory} | score seq/s | x plain | % peak | {memory} |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for impl, (label, _) in IMPLEMENTATIONS.items():
            cells = []
            for task in ("train", "score"):
                case = next((c for c in results["cases"]
                             if c["workload"] == workload.key and c["impl"] == impl and c["task"] == task), None)
                if case is None:
                    cells += ["", "", "", ""]
                elif "throughput" not in case:
                    cells += [f"error: {case['error'][:60]}", "", "", ""]
                else:
                    cells += [f"{case['throughput']:.1f}", f"{case['vs_plain']:.2f}" if case.get("vs_plain") else "",
                              f"{case['percent_of_peak']:.1f}" if case.get("percent_of_peak") else "",
                              f"{case['max_gpu_mb' if gpu else 'max_rss_mb']:.0f}"]
            if any(cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    ablation = results.get("ablation", {})
    if "error" not in ablation and ablation:
        lines += ["## Where the input projection goes (matrix products only, one 64 -> 128 layer, L = 140)", "",
                  "GFLOP/s. all steps: one (N*L, I) x (I, 4H) product before the loop (backward: weight and input "
                  "gradients over all N*L rows after it); per step: x_t W^T beside h U^T in the loop, as fast_lstm does.",
                  "", "| batch | forward, all steps | forward, per step | backward, all steps | backward, per step |",
                  "|---:|---:|---:|---:|---:|"]
        for n in (SCORE_BATCH, TRAIN_BATCH):
            lines.append(f"| {n} | " + " | ".join(
                f"{ablation[f'{name}_n{n}_gflops']:.1f}" for name in
                ("forward_all_steps", "forward_per_step", "backward_all_steps", "backward_per_step")) + " |")
        lines.append("")
    series = results["series"]
    lines += ["## Scoring a long series in chunks", ""]
    if "error" in series:
        lines.append(f"error: {series['error']}")
    else:
        lines += [f"{series['rows']:,} rows x {series['features']} features, window {series['window']}, stride "
                  f"{series['stride']}, tiny model encoder {tuple(series['encoder'])}, chunks of "
                  f"{series['chunk_rows']:,} rows: {series['windows']:,} windows in {series['seconds']:.0f} s "
                  f"({series['cpu_seconds']:.0f} CPU-seconds) = **{series['throughput_rows_per_s']:,.0f} rows/s** "
                  f"({'per CPU-second' if by_cpu_time(results) else 'wall clock'}), "
                  f"peak RSS **{series['max_rss_mb']:.0f} MB**"
                  + (f", peak GPU memory **{series['max_gpu_mb']:.0f} MB**." if gpu else ".")]
    if gpu:
        return "\n".join(lines) + "\n"
    lines += ["", "## Goals (issue 5) on the ECG-like workload", "", "| goal | measured | met |", "|---|---:|:---:|"]
    for name, shown, met in goals(results):
        lines.append(f"| {name} | {shown} | {'n/a' if met is None else 'yes' if met else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="the ECG-like workload only, short measurements, a 1M-row series (< 3 min)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="output folder")
    default_threads = min(2, os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=default_threads, help="torch threads (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda[:N]: the GPU cases only (default: %(default)s)")
    parser.add_argument("--report", metavar="JSON", help="only rewrite the Markdown of a results JSON")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    if args.report:
        results = json.loads(Path(args.report).read_text())
        add_ratios(results)
        Path(args.report).with_suffix(".md").write_text(markdown(results))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = run_all(args.quick, args.threads, out / "tmp" / "models",
                      log=lambda line: print(line, file=sys.stderr, flush=True), device=args.device)
    add_ratios(results)
    stem = ("perf_quick" if args.quick else "perf_full") + ("" if args.threads == default_threads else
                                                            f"_threads{args.threads}") + (
        "" if args.device == "cpu" else "_cuda")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str))
    (out / f"{stem}.md").write_text(markdown(results))
    print(f"wrote {out / stem}.json and .md", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # perf_references
    main()
