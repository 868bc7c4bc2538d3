import numpy as np
import pytest

from lstmae.exceptions import DataError
from lstmae.scoring import reconstruction_errors


@pytest.fixture
def windows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 5, 3)).astype(np.float32)
    X_hat = rng.normal(size=(4, 5, 3)).astype(np.float32)
    return X, X_hat


def test_hand_example_mse_and_mae():
    X = np.zeros((1, 2, 2))
    X_hat = np.array([[[1.0, -3.0], [0.0, 2.0]]])
    assert reconstruction_errors(X, X_hat, "sample", "mse")[0] == pytest.approx((1 + 9 + 0 + 4) / 4)
    assert reconstruction_errors(X, X_hat, "sample", "mae")[0] == pytest.approx((1 + 3 + 0 + 2) / 4)
    np.testing.assert_allclose(reconstruction_errors(X, X_hat, "timestep"), [[5.0, 2.0]])
    np.testing.assert_allclose(reconstruction_errors(X, X_hat, "feature", "mae"), [[0.5, 2.5]])


@pytest.mark.parametrize("kind", ["mse", "mae"])
def test_shapes_and_loop_reference(windows, kind):
    X, X_hat = windows
    pointwise = np.zeros(X.shape)
    for i, j, k in np.ndindex(*X.shape):
        d = float(X[i, j, k]) - float(X_hat[i, j, k])
        pointwise[i, j, k] = d * d if kind == "mse" else abs(d)
    expected = {
        "sample": pointwise.mean(axis=(1, 2)),
        "timestep": pointwise.mean(axis=2),
        "feature": pointwise.mean(axis=1),
        "none": pointwise,
    }
    for per, want in expected.items():
        got = reconstruction_errors(X, X_hat, per=per, kind=kind)
        assert got.shape == want.shape
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_shape_mismatch_is_never_broadcast(windows):
    X, _ = windows
    with pytest.raises(DataError, match=r"got X \(4, 5, 3\) and X_hat \(4, 5, 1\)"):
        reconstruction_errors(X, X[:, :, :1])


def test_two_dimensional_input_rejected():
    with pytest.raises(DataError, match=r"same shape \(N, L, F\); got X \(4, 5\)"):
        reconstruction_errors(np.zeros((4, 5)), np.zeros((4, 5)))


def test_unknown_per_and_kind(windows):
    X, X_hat = windows
    with pytest.raises(DataError, match="unknown per='window'; use one of sample, timestep"):
        reconstruction_errors(X, X_hat, per="window")
    with pytest.raises(DataError, match="unknown error kind 'rmse'; use one of mse, mae"):
        reconstruction_errors(X, X_hat, kind="rmse")
