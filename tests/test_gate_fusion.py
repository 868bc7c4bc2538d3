"""Smoke and unit tests of benchmarks/gate_fusion.py (gate math: eager, torch.compile, fused kernels)."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gate_fusion  # noqa: E402
from lstmae import kernels  # noqa: E402


def test_gate_math_is_one_lstm_step_with_gates_in_the_order_i_f_o_g():
    gen = torch.Generator().manual_seed(0)
    pre, c = torch.randn(3, 4 * 5, generator=gen), torch.randn(3, 5, generator=gen)
    i, f, o, g = pre.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h, c_out = gate_fusion.gate_math(pre, c)
    torch.testing.assert_close(c_out, c_new)
    torch.testing.assert_close(h, torch.sigmoid(o) * torch.tanh(c_new))


def test_layer_costs_time_both_paths(monkeypatch):
    if kernels.compiled() is None:
        pytest.skip("the fused LSTM kernels could not be compiled here")
    for name, value in {"N": 4, "L": 3, "INPUTS": 2, "HIDDEN": 3, "ROUNDS": 1}.items():
        monkeypatch.setattr(gate_fusion, name, value)
    layer = gate_fusion.layer_costs()
    assert set(layer) == {"fused_kernels", "pytorch_operations"}
    assert all(t["forward_ms"] > 0 and t["forward_backward_ms"] > 0 for t in layer.values())


def test_markdown_reports_the_speed_up_of_the_kernels():
    report = {"threads": 2, "torch": "x", "step": {"eager_us": 100.0, "torch_compile_us": 150.0,
                                                 "torch_compile_seconds": 5.0},
              "layer": {"fused_kernels": {"forward_ms": 10.0, "forward_backward_ms": 40.0},
                        "pytorch_operations": {"forward_ms": 15.0, "forward_backward_ms": 44.0}}}
    table = gate_fusion.markdown(report)
    assert "| torch.compile of the same function | 150.0 | 5.0 s |" in table
    assert table.splitlines()[-1] == "| speed-up | 1.50x | 1.10x |"
