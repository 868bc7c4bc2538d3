"""device="cuda": training and scoring on a GPU give what the same weights give on the CPU.

On the GPU, tanh layers run cuDNN's nn.LSTM and relu layers lstmae's PyTorch loop
(`lstmae.nn.fast_lstm`); on the CPU, scoring runs the fused C++ layer. The same weights must score
alike either way, so a model trained on one device serves on the other.

Run them where there is a GPU with LSTMAE_TEST_CUDA=1 python -m pytest tests/test_cuda.py (without it,
tests/conftest.py hides the GPU from the suite, which checks the CPU's results); skipped where torch
sees no CUDA device, as in CI. The README (Speed and memory, On a GPU) has the GPU figures.
"""
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import sine_windows
from lstmae import LSTMAutoencoder, load
from lstmae.series import fit_series, score_values
from lstmae.streaming import StreamingScorer
from lstmae.training.device import resolve_device

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device (where there is one: LSTMAE_TEST_CUDA=1)")

# cuDNN, the PyTorch loop and the fused CPU layer sum in different orders (the GPU's results also
# depend on the batch); scores (robust z-scores by default) cross zero, so they are compared to a
# tolerance of RTOL of their largest magnitude. In TF32, scores differed by up to 1e-3 of it.
RTOL = 1e-4


def assert_scores_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * np.nanmax(np.abs(expected)))


VARIANTS = {  # preset: overrides that keep each fit to a second or two
    "default": {"encoder": (32, 16)},
    "keras_tutorial": {"encoder": (32, 16)},
    "single_layer": {"encoder": (16,)},
    "no_bottleneck": {"encoder": (32, 16)},
    "encdec_ad": {"encoder": (16,)},
}


def fitted(preset="default", device="cuda", seed=0, X=None, **overrides):
    settings = {**VARIANTS[preset], "epochs": 3, "batch_size": 32, "random_state": seed, "device": device,
                "progress": False, **overrides}
    return LSTMAutoencoder.from_preset(preset, **settings).fit(sine_windows(n=256, length=40) if X is None else X)


def test_auto_picks_the_gpu_and_fit_trains_there():
    assert resolve_device("auto").type == "cuda"
    model = fitted(device="auto")
    assert next(model.module_.parameters()).device.type == "cuda"
    history = model.history_
    assert history["loss"][-1] < history["loss"][0]
    relu = fitted("keras_tutorial", device="auto")  # its GPU path is slower: "auto" keeps it on the CPU
    assert next(relu.module_.parameters()).device.type == "cpu"


@pytest.mark.parametrize("preset", list(VARIANTS))
def test_trained_on_the_gpu_scores_alike_on_the_cpu(preset, tmp_path):
    X = sine_windows(n=256, length=40)
    model = fitted(preset, X=X)
    on_gpu = model.anomaly_score(X)
    model.save(tmp_path / "m")
    on_cpu = load(tmp_path / "m")  # load's default device is the CPU
    assert next(on_cpu.module_.parameters()).device.type == "cpu"
    assert_scores_close(on_cpu.anomaly_score(X), on_gpu)
    np.testing.assert_allclose(on_cpu.reconstruct(X), model.reconstruct(X), rtol=RTOL, atol=1e-5)
    if model.architecture_.bottleneck:
        np.testing.assert_allclose(on_cpu.transform(X), model.transform(X), rtol=RTOL, atol=1e-5)
    assert on_cpu.threshold_ == pytest.approx(model.threshold_, rel=RTOL)


def test_trained_on_the_cpu_scores_alike_on_the_gpu(tmp_path):
    values = sine_windows(n=1, length=3000)[0]
    model = fit_series(LSTMAutoencoder(encoder=(32, 16), epochs=3, random_state=0, device="cpu", progress=False),
                       values[:2000], window=30)
    model.save(tmp_path / "m")
    on_gpu = load(tmp_path / "m", device="cuda")
    assert next(on_gpu.module_.parameters()).device.type == "cuda"
    cpu_table, gpu_table = score_values(model, values[2000:]), score_values(on_gpu, values[2000:])
    assert_scores_close(gpu_table["score"].to_numpy(), cpu_table["score"].to_numpy())
    assert (gpu_table["is_anomaly"] == cpu_table["is_anomaly"]).mean() > 0.99  # a score at the threshold may flip


def test_a_seed_gives_the_same_model_on_the_gpu():
    first, second = fitted(seed=3), fitted(seed=3)
    X = sine_windows(n=64, length=40, seed=1)
    np.testing.assert_allclose(second.anomaly_score(X), first.anomaly_score(X), rtol=1e-6)
    assert second.history_["loss"] == pytest.approx(first.history_["loss"], rel=1e-6)


def test_sequences_of_different_lengths_train_and_score_on_the_gpu(tmp_path):
    rng = np.random.default_rng(0)
    X = [np.sin(np.arange(n)[:, None] * 0.3 + rng.uniform(0, 6)).astype(np.float32) for n in rng.integers(20, 50, 96)]
    model = LSTMAutoencoder(encoder=(16, 8), epochs=2, batch_size=16, random_state=0, device="cuda",
                            progress=False).fit(X)
    model.save(tmp_path / "m")
    assert_scores_close(load(tmp_path / "m").anomaly_score(X), model.anomaly_score(X))


def test_streaming_on_a_gpu_model_equals_batch_scoring():
    values = sine_windows(n=1, length=1200)[0]
    model = fit_series(LSTMAutoencoder(encoder=(16, 8), epochs=2, random_state=0, device="cuda", progress=False),
                       values[:800], window=20)
    scorer = StreamingScorer(model)
    rows = pd.DataFrame(values[800:], columns=model._feature_names())
    streamed = pd.concat([scorer.update(rows.iloc[i : i + 37]) for i in range(0, len(rows), 37)])
    batch = score_values(model, values[800:], how="end")
    assert_scores_close(streamed["score"].to_numpy(), batch["score"].to_numpy())
