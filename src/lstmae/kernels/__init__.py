"""lstmae's optional fused C++ LSTM layer for the CPU, as one replaceable part.

The model asks one question, `fused_layer_for(x)`: the fused layer for this input, or None
(then it runs the PyTorch loop of `lstmae.nn.fast_lstm`, which computes the same). Everything
else about the kernels lives here:

- fused_gates.cpp: one LSTM layer's time loop, forward and backward, in C++.
- layer.py: that loop as an autograd Function, with the call of `fast_lstm.lstm_layer`.
- build.py: compiling it (torch.utils.cpp_extension) once per build key, and loading it.
- cpu.py: the CPU's maker, architecture and instruction sets.
- policy.py: the environment variables (LSTMAE_FUSED_KERNELS, LSTMAE_MATMUL) and which library
  runs the kernels' matrix products (register tiles, oneDNN or torch's BLAS).
"""
from __future__ import annotations

import torch

from . import build
from .build import compiled
from .layer import fused_lstm_layer
from .policy import MATMUL_CHOICES, ONEDNN_MIN_FLOPS, matmul_policy

__all__ = ["MATMUL_CHOICES", "ONEDNN_MIN_FLOPS", "compiled", "fused_layer_for", "fused_lstm_layer", "matmul_policy"]


def fused_layer_for(x: torch.Tensor):
    """The fused layer (`fused_lstm_layer`, called as `lstmae.nn.fast_lstm.lstm_layer`) where it
    serves x: float32 on the CPU, with the kernels built (compiled on first use); else None."""
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return None
    return fused_lstm_layer if build.compiled() is not None else None
