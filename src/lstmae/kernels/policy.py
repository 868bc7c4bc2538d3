"""The kernels' settings: whether they are used at all, and which library runs their matrix products.

Environment variables:

- LSTMAE_FUSED_KERNELS=0: never build or use the fused kernels (the PyTorch loop runs instead).
- LSTMAE_MATMUL=tiles|onednn|blas: where the kernels run their products (see `matmul_policy`);
  unset, lstmae chooses by the CPU.
"""
from __future__ import annotations

import functools
import math
import os

import torch

from . import cpu

FUSED_KERNELS_VARIABLE = "LSTMAE_FUSED_KERNELS"
MATMUL_VARIABLE = "LSTMAE_MATMUL"
MATMUL_CHOICES = ("tiles", "onednn", "blas")
# oneDNN pays from about this many FLOPs of products per step and thread (h U^T, and x_t W^T for
# more than one input feature): below it, its fixed cost per call outweighs its speed over the
# BLAS (small models, or small batches split over threads). The kernels apply it to a layer's
# steps (onednn_pays in fused_gates.cpp, where the rows are split) and to each product after the
# backward loop by its own size.
ONEDNN_MIN_FLOPS = 4e6


def kernels_enabled() -> bool:
    """False where LSTMAE_FUSED_KERNELS=0."""
    return os.environ.get(FUSED_KERNELS_VARIABLE, "1") != "0"


@functools.cache
def matmul_policy() -> str:
    """Where the fused kernels run their matrix products:

    - "tiles": each step's products (h U^T, or [x_t, h] [W, U]^T, and dLoss/dh's grad_gates U)
      in the kernels' own register-tiled loop (fused_gates.cpp's tiled_product; widths padded to
      a multiple of 32) where the kernels were built for AVX-512, else through oneDNN from
      ONEDNN_MIN_FLOPS per step and thread; the products after the backward loop through oneDNN
      from ONEDNN_MIN_FLOPS each; the rest through torch's BLAS (at::mm).
    - "onednn": all through oneDNN's matmul; "blas": all through torch's BLAS.

    LSTMAE_MATMUL decides; by default "tiles" on x86-64 CPUs not made by Intel, "blas" elsewhere:
    torch's BLAS on x86 is MKL, which runs its AVX-512 kernels on Intel CPUs only, and neither
    library is made for products as small as one step's (tens of rows per thread). Intel
    machines keep MKL. The answer is cached per process (matmul_policy.cache_clear() rereads it).
    """
    choice = os.environ.get(MATMUL_VARIABLE, "").strip().lower()
    if choice and choice not in MATMUL_CHOICES:
        raise ValueError(f"{MATMUL_VARIABLE} must be one of {MATMUL_CHOICES} or unset, got {choice!r}: unset it to "
                         "let lstmae choose")
    if choice in ("blas", "tiles"):
        return choice
    if choice == "onednn":
        return "onednn" if onednn_available() else "blas"
    return "tiles" if cpu.is_x86_64() and cpu.vendor() != "GenuineIntel" else "blas"


def onednn_min_flops() -> float:
    """The kernels' threshold for matmul_policy(): 0 sends every product to oneDNN, inf none."""
    if not onednn_available():
        return math.inf
    return {"onednn": 0.0, "tiles": ONEDNN_MIN_FLOPS, "blas": math.inf}[matmul_policy()]


def step_tiles() -> bool:
    """Whether the kernels run each step's products in their own tiles (matmul_policy)."""
    return matmul_policy() == "tiles"


@functools.cache
def onednn_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):  # torch built without oneDNN, or without the op
        return False
