"""Denormal flushing around lstmae's CPU work (training/device.py)."""
import numpy as np
import pytest
import torch

from lstmae import LSTMAutoencoder
from lstmae.training.device import _denormals_flushed, flush_denormals, full_float32, resolve_device

flushes = pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU cannot flush denormals")


@flushes
def test_flushes_inside_and_restores_the_callers_setting():
    assert not _denormals_flushed()
    tiny_product = lambda: (torch.tensor(1e-30) * torch.tensor(1e-10)).item()  # 1e-40: a denormal result
    with flush_denormals():
        assert _denormals_flushed()
        assert tiny_product() == 0.0
    assert not _denormals_flushed()
    assert tiny_product() > 0.0


@flushes
def test_a_caller_who_flushes_already_keeps_flushing():
    torch.set_flush_denormal(True)
    try:
        with flush_denormals():
            pass
        assert _denormals_flushed()
    finally:
        torch.set_flush_denormal(False)


@flushes
def test_fit_trains_with_denormals_flushed_and_leaves_the_setting_as_it_was():
    seen = []
    X = np.random.default_rng(0).normal(size=(16, 5, 2)).astype(np.float32)
    LSTMAutoencoder(encoder=(4, 2), epochs=2, random_state=0, progress=False).fit(
        X, on_epoch=lambda epoch, history: seen.append(_denormals_flushed()))
    assert seen == [True, True]
    assert not _denormals_flushed()


def test_full_float32_turns_tf32_off_for_gpu_lstms_and_restores_it():
    rnn = torch.backends.cudnn.rnn
    before = rnn.fp32_precision
    with full_float32(torch.device("cuda")):  # the flag is set without a GPU; tests/test_cuda.py checks its effect
        assert rnn.fp32_precision == "ieee"
    assert rnn.fp32_precision == before
    with full_float32(torch.device("cpu")):
        assert rnn.fp32_precision == before


def test_full_float32_uses_allow_tf32_on_torch_before_2_9(monkeypatch):
    class Cudnn:  # torch < 2.9: no cudnn.rnn.fp32_precision, only the allow_tf32 flag
        allow_tf32 = True
    monkeypatch.setattr(torch.backends, "cudnn", Cudnn)
    with full_float32(torch.device("cuda")):
        assert Cudnn.allow_tf32 is False
    assert Cudnn.allow_tf32 is True
    with full_float32(torch.device("cpu")):
        assert Cudnn.allow_tf32 is True


def test_auto_keeps_relu_models_on_the_cpu_where_a_gpu_would_be_picked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("auto", activation="relu") == torch.device("cpu")  # its GPU path is slower
    assert resolve_device("cuda", activation="relu") == torch.device("cuda")  # asked for: given
