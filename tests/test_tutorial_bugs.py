"""Regression tests for the bugs of the LSTM-autoencoder tutorials people copy."""
import numpy as np
import pytest
import torch

from lstmae import LSTMAutoencoder, temporalize
from lstmae.training.loop import reconstruction_loss

from conftest import sine_windows


def test_loss_refuses_shapes_that_would_broadcast():
    # (5, 1, 1) against (5, 1) broadcasts to (5, 5, 1): the model then learns the mean.
    with pytest.raises(ValueError, match=r"\(5, 1, 1\).*\(5, 1\).*broadcast"):
        reconstruction_loss(torch.zeros(5, 1, 1), torch.zeros(5, 1))


def test_ramp_is_reconstructed_not_its_mean():
    ramp = np.linspace(0.0, 0.4, 5, dtype=np.float32).reshape(1, 5, 1)
    model = LSTMAutoencoder(encoder=(16,), epochs=200, learning_rate=1e-2, validation_fraction=0,
                            patience=None, random_state=0, progress=False)
    reconstruction = model.fit(ramp).reconstruct(ramp).ravel()
    assert np.abs(reconstruction - ramp.ravel()).max() < 0.02
    assert np.ptp(reconstruction) > 0.35  # outputting the mean (0.2) would be flat


def test_keras_tutorial_toy_series_is_reconstructed():
    # The step-by-step tutorial: 0.1..0.9 and its cubes, windows of 3, the relu model.
    base = np.linspace(0.1, 0.9, 9)
    series = np.stack([base, base**3], axis=1)
    X, _ = temporalize(series, window=3)
    assert X.shape == (7, 3, 2)
    model = LSTMAutoencoder.from_preset("keras_tutorial", epochs=300, batch_size=5, validation_fraction=0,
                                        patience=None, random_state=0, progress=False)
    assert model.activation == "relu" and model.encoder == (128, 64)
    reconstruction = model.fit(X).reconstruct(X)
    assert np.abs(reconstruction - X).max() < 0.05
    assert np.abs(reconstruction - X).max() < 0.2 * np.abs(X - X.mean(axis=0)).max()


def test_encodings_do_not_depend_on_the_batch(fitted_small):
    # The bug: h_n of the whole batch reshaped into one code, mixing samples together.
    model, X = fitted_small
    together = model.transform(X)
    alone = np.concatenate([model.transform(X[i : i + 1]) for i in range(len(X))])
    shuffled = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.transform(X[shuffled]), together[shuffled], rtol=1e-5, atol=1e-6)
    assert not np.allclose(together[0], together[1])


def test_batches_and_multivariate_work_everywhere(fitted_small):
    # The bug: reshape((1, seq_len, n_features)) works only for one univariate sample.
    model, X = fitted_small
    batch = X[:10]
    assert batch.shape[2] == 3
    assert model.reconstruct(batch).shape == batch.shape
    assert model.transform(batch).shape == (10, 16 + 8 + 8)  # default pooled: layer means, then the code's max
    assert model.anomaly_score(batch).shape == (10,)
    assert model.predict(batch).shape == (10,)
    assert model.reconstruction_error(batch, per="timestep").shape == (10, 12)
    assert model.reconstruction_error(batch, per="feature").shape == (10, 3)
    one_by_one = np.concatenate([model.reconstruct(batch[i : i + 1]) for i in range(10)])
    np.testing.assert_allclose(model.reconstruct(batch), one_by_one, rtol=1e-5, atol=1e-6)


def test_series_scores_keep_every_row_and_mark_warm_up_invalid(fitted_small):
    # The bug: scores for the first window-1 points silently dropped or zero-padded.
    model, X = fitted_small
    series = np.concatenate([X[0], X[1], X[2]])  # 36 rows, 3 features
    scored = model.score_series(series, how="end")
    window = model.n_timesteps_
    assert len(scored) == len(series)
    assert not scored["valid"][: window - 1].any() and scored["valid"][window - 1 :].all()
    assert scored["score"][: window - 1].isna().all()
    assert (scored["is_anomaly"][: window - 1] == 0).all()
    windows, _ = temporalize(series, window)
    window_scores = model.anomaly_score(windows)
    np.testing.assert_allclose(scored["score"][window - 1 :], window_scores, rtol=1e-6)
    # The default, how="mean": the first rows take the real score of the one window covering them.
    scored = model.score_series(series)
    assert len(scored) == len(series) and scored["valid"].all()
    np.testing.assert_allclose(scored["score"][0], window_scores[0], rtol=1e-6)
    np.testing.assert_allclose(scored["score"][window - 1], window_scores[:window].mean(), rtol=1e-6)
    scored = model.score_series(series, how="max")
    np.testing.assert_allclose(scored["score"][window - 1], window_scores[:window].max(), rtol=1e-6)
