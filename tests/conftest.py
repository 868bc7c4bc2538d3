import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Two cores: keep torch from oversubscribing them, and make runs comparable.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# The suite checks the CPU's results (bit-identical round trips, the fused CPU layer, tensors made on
# the host), so device="auto" must mean the CPU here, also on a machine with a GPU. tests/test_cuda.py
# checks the GPU: LSTMAE_TEST_CUDA=1 python -m pytest tests/test_cuda.py
if os.environ.get("LSTMAE_TEST_CUDA") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data():
    """../shared/data beside the repo; tests that need it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def sine_windows(n=64, length=12, n_features=3, seed=0):
    """Smooth multivariate windows (N, L, F): phase-shifted sines with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    freq = np.array([0.3, 0.5, 0.7][:n_features])[None, None, :]
    return (np.sin(freq * t + phase) + 0.05 * rng.normal(size=(n, length, n_features))).astype(np.float32)


def quick_model(**overrides):
    """A small network, 3 epochs, no early stopping, seed 3: for tests that train several and compare them."""
    from lstmae import LSTMAutoencoder

    return LSTMAutoencoder(**{"encoder": (8, 4), "epochs": 3, "batch_size": 16, "patience": None,
                              "progress": False, "random_state": 3, **overrides})


def same_weights(a, b) -> bool:
    """Whether two fitted models' networks hold equal tensors."""
    return all(torch.equal(x, y) for x, y in zip(a.module_.state_dict().values(), b.module_.state_dict().values()))


@pytest.fixture(scope="session")
def fitted_small():
    """A small fitted model shared by the tests that only read from it."""
    from lstmae import LSTMAutoencoder

    X = sine_windows()
    model = LSTMAutoencoder(encoder=(16, 8), epochs=15, batch_size=16, random_state=0, progress=False)
    model.fit(X, feature_names=["a", "b", "c"])
    return model, X


def two_class_series(n=24, length=16, seed=0):
    """(N, L) series: class 'up' rises, class 'down' falls, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.array(["up", "down"] * (n // 2))
    slope = np.where(labels == "up", 1.0, -1.0)[:, None]
    series = slope * np.linspace(-1, 1, length)[None, :] + 0.1 * rng.normal(size=(n, length))
    return series.astype(np.float32), labels


def toy_cache(labels, test, held, window: int) -> dict:
    """What error_scales caches for one series, made up: the test rows' labels (T,), the test windows' errors
    (T - window + 1, F) and the held-out windows' (n, F), one held-out part of n + window - 1 rows."""
    return {"labels": labels, "window": np.array(window), "vus_window": np.array(20), "held": held, "test": test,
            "part0": held, "part0_rows": np.array(len(held) + window - 1)}


def cached_networks_of(monkeypatch, error_scales, tmp_path, make, seeds=(0, 1)):
    """Make `error_scales.cached_networks` return made-up caches: `make(seed)` -> (task, arrays) for each seed,
    each saved to an .npz in `tmp_path`, as the benchmark scripts on the cached networks read them."""
    jobs = []
    for seed in seeds:
        task, cached = make(seed)
        np.savez(tmp_path / f"{task.name}-{seed}.npz", **cached)
        jobs.append((task, seed, tmp_path / f"{task.name}-{seed}.npz"))
    monkeypatch.setattr(error_scales, "cached_networks", lambda *args, **kwargs: (jobs, 0))
