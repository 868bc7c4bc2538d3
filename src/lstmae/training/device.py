"""Device choice, seeding and the CPU's denormal mode."""
from __future__ import annotations

import contextlib
import os

import numpy as np
import torch


def resolve_device(device: str = "auto", *, activation: str = "tanh") -> torch.device:
    """"auto" picks cuda, then mps, then cpu, but keeps relu models (`activation`) on the CPU: on a
    GPU their layers run lstmae's PyTorch loop, a few small kernels per step, which trained at under
    half the speed of two CPU cores (README, Speed and memory, On a GPU). Anything else is passed to
    torch.device."""
    if device == "auto":
        if activation == "relu":
            return torch.device("cpu")
        if torch.cuda.is_available():  # under torchrun, each process takes its own GPU
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available; use device='cpu' or 'auto'")
    mps = getattr(torch.backends, "mps", None)
    if resolved.type == "mps" and not (mps is not None and mps.is_available()):
        raise ValueError(f"device {device!r} was asked for but MPS (Apple GPUs) is not available here; use "
                         "device='cpu' or 'auto'")
    if resolved.type not in ("cpu", "cuda", "mps"):  # meta, xpu, ...: lstmae trains and scores on these three
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    return resolved


def seed_run(seed: int | None) -> np.random.Generator:
    """Seed torch (the weights' initialisation, dropout, input noise) from one integer; return the NumPy
    generator for shuffling. Python's and NumPy's global generators, which lstmae does not draw from, are
    the caller's and are left as they were (as scikit-learn estimators leave them)."""
    if seed is not None:
        seed = int(seed)  # a NumPy integer too
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


@contextlib.contextmanager
def full_float32(device: torch.device):
    """On a GPU, run cuDNN's LSTMs in full float32 while the block runs, not in TF32 (PyTorch's
    default for them, with about 3 significant digits in each product), so that a model scores
    the same on the GPU as on the CPU to float32 rounding. lstmae scores inside it; training keeps
    PyTorch's setting. The setting is process-wide, as PyTorch keeps it: a thread that trains
    on the GPU while another scores sees full float32 for that time. A no-op on other devices."""
    if device.type != "cuda":
        yield
        return
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):  # torch >= 2.9
        owner, name, full = rnn, "fp32_precision", "ieee"
    else:
        owner, name, full = torch.backends.cudnn, "allow_tf32", False
    saved = getattr(owner, name)
    setattr(owner, name, full)
    try:
        yield
    finally:
        setattr(owner, name, saved)


@contextlib.contextmanager
def flush_denormals():
    """Flush denormal floats (|x| < 1.2e-38) to zero on the CPU while the block (or the function
    it decorates) runs; the calling thread's own setting is restored afterwards.

    LSTM gradients fade towards zero over long windows, and every operation on a denormal
    costs some CPUs about a hundred cycles (README, Speed and memory, has what flushing them bought
    on long windows). Results change only below 1.2e-38. The flag belongs to each
    thread, and torch's worker threads take it from the thread that starts them, so the workers
    that a `fit` starts keep it (TensorFlow flushes denormals in its own threads by default).
    """
    changed = not _denormals_flushed() and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def _denormals_flushed() -> bool:
    """Whether this thread flushes denormals: then a denormal input reads as zero."""
    # NumPy's float32 arithmetic runs on this thread's same FPU flags as torch's, without a tensor to make
    return np.float32(1e-39) * np.float32(1.0) == 0.0
