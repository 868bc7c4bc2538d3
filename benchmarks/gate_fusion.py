"""Fusing an LSTM step's gate math on the CPU: eager PyTorch, torch.compile and lstmae's C++ kernels.

    python benchmarks/gate_fusion.py [--threads 2] [--out benchmarks/results]

Two measurements, on the ECG-like workload's decoder layer (64 -> 128 units, batch 128,
140 steps), float32, best of several rounds:

1. One step's gate math alone (activations, cell, output: what follows the matrix products),
   as eager PyTorch operations and as the same function under torch.compile (its compile time
   reported beside it).
2. The whole layer, forward and forward + backward, through lstmae's fused C++ layer
   (`lstmae.kernels.fused_lstm_layer`) and through its PyTorch loop (`lstmae.nn.fast_lstm.lstm_layer`,
   what runs with LSTMAE_FUSED_KERNELS=0).

Writes gate_fusion.{json,md} to --out.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from lstmae import kernels
from lstmae.nn import fast_lstm

N, L, INPUTS, HIDDEN = 128, 140, 64, 128
ROUNDS = 15


def gate_math(pre: torch.Tensor, c: torch.Tensor):
    """One step after the products: pre (N, 4H) in the order i, f, o, g; c (N, H)."""
    h = pre.shape[1] // 4
    s = torch.sigmoid(pre[:, : 3 * h])
    g = torch.tanh(pre[:, 3 * h :])
    c_new = s[:, h : 2 * h] * c + s[:, :h] * g
    return s[:, 2 * h :] * torch.tanh(c_new), c_new


def best_seconds(run, rounds: int = ROUNDS) -> float:
    run()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def step_costs() -> dict:
    pre, c = torch.randn(N, 4 * HIDDEN), torch.randn(N, HIDDEN)
    eager = best_seconds(lambda: [gate_math(pre, c) for _ in range(L)]) / L
    started = time.perf_counter()
    compiled_math = torch.compile(gate_math, fullgraph=True, dynamic=False)
    compiled_math(pre, c)
    compile_seconds = time.perf_counter() - started
    compiled = best_seconds(lambda: [compiled_math(pre, c) for _ in range(L)]) / L
    return {"eager_us": eager * 1e6, "torch_compile_us": compiled * 1e6, "torch_compile_seconds": compile_seconds}


def layer_costs() -> dict:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, L, INPUTS, generator=gen).requires_grad_()
    w_ih = (torch.randn(4 * HIDDEN, INPUTS, generator=gen) / HIDDEN**0.5).requires_grad_()
    w_hh = (torch.randn(4 * HIDDEN, HIDDEN, generator=gen) / HIDDEN**0.5).requires_grad_()
    bias = torch.zeros(4 * HIDDEN, requires_grad=True)
    grad = torch.randn(N, L, HIDDEN, generator=gen)

    if kernels.compiled() is None:
        sys.exit("the fused kernels could not be compiled here; nothing to compare")
    result = {}
    for name, layer in (("fused_kernels", kernels.fused_lstm_layer), ("pytorch_operations", fast_lstm.lstm_layer)):
        def forward():
            with torch.no_grad():
                layer(x, w_ih, bias, w_hh, "tanh")

        def training():
            layer(x, w_ih, bias, w_hh, "tanh")[0].backward(grad)

        result[name] = {"forward_ms": best_seconds(forward) * 1e3, "forward_backward_ms": best_seconds(training) * 1e3}
    return result


def markdown(report: dict) -> str:
    step, layer = report["step"], report["layer"]
    fused, eager = layer["fused_kernels"], layer["pytorch_operations"]
    return "\n".join([
        f"Gate math of one step (N={N}, H={HIDDEN}), {report['threads']} threads, torch {report['torch']}:",
        "",
        "| implementation | us per step | compile time |",
        "|---|---|---|",
        f"| eager PyTorch operations | {step['eager_us']:.1f} | - |",
        f"| torch.compile of the same function | {step['torch_compile_us']:.1f} | {step['torch_compile_seconds']:.1f} s |",
        "",
        f"One LSTM layer {INPUTS} -> {HIDDEN}, batch {N}, {L} steps (lstm_layer):",
        "",
        "| implementation | forward (no grad) ms | forward + backward ms |",
        "|---|---|---|",
        f"| fused C++ kernels | {fused['forward_ms']:.1f} | {fused['forward_backward_ms']:.1f} |",
        f"| PyTorch operations | {eager['forward_ms']:.1f} | {eager['forward_backward_ms']:.1f} |",
        f"| speed-up | {eager['forward_ms'] / fused['forward_ms']:.2f}x | "
        f"{eager['forward_backward_ms'] / fused['forward_backward_ms']:.2f}x |",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    report = {"threads": args.threads, "torch": torch.__version__, "layer": layer_costs(), "step": step_costs()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gate_fusion.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "gate_fusion.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
