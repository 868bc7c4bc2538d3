"""`LSTMAutoencoder`: the scikit-learn style estimator that composes data, nn, training and scoring."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .config import PRESETS, Architecture, check_architecture, resolve_decoder
from .data.scaling import SCALERS, FeatureScaler
from .data.windowing import temporalize
from .exceptions import DataError
from .nn.model import LSTMAutoencoderModule
from .scoring import (DEFAULT_THRESHOLD, apply_threshold, make_error_model, parse_threshold, reconstruction_errors,
                      window_to_points)
from .training.device import resolve_device, seed_everything
from .training.loop import LOSSES, iterate_batches, train

PER_CHOICES = ("sample", "timestep", "feature", "none")


class LSTMAutoencoder(TransformerMixin, BaseEstimator):
    """An LSTM autoencoder for windows or fixed-length sequences X (N, L, F).

    Stacked encoder LSTMs -> each sample's last hidden state as the bottleneck z (N, Z) ->
    repeated over the L steps -> mirrored decoder LSTMs -> a per-timestep Linear -> (N, L, F).

    Parameters
    ----------
    encoder : units of the encoder LSTMs; Z = encoder[-1] (x2 when bidirectional).
    decoder : units of the decoder LSTMs; None mirrors the encoder. Without `output_layer` the
        last decoder LSTM gets F units.
    activation : "tanh" (nn.LSTM) or "relu" (an LSTM with Keras' equations, as in
        `LSTM(..., activation='relu')`).
    output_layer : end with a per-timestep Linear (Keras' TimeDistributed(Dense(F))).
    bidirectional : bidirectional encoder LSTMs.
    dropout : dropout between LSTM layers.
    bottleneck : False builds the "regular LSTM" of the same layers, with no bottleneck.
    epochs, batch_size, learning_rate : Adam training settings.
    loss : "mse" or "mae", the training loss and the raw reconstruction error.
    validation_fraction : the LAST fraction of X (as Keras' validation_split) is held out for
        early stopping, the error model and the threshold.
    patience : epochs without improvement of the validation loss before stopping (None: never).
    max_grad_norm : gradient clipping norm (None: no clipping).
    scaler : "standard", "minmax" or "none"; per feature, fitted on the training part only.
    error_model : how reconstruction errors become one score per sample: "mse", "mae" or
        "mahalanobis" (EncDec-AD, Malhotra et al. 2016).
    threshold : rule for `threshold_` from validation scores, e.g. "quantile:0.99", "sigma:3",
        "pot:1e-3", "fpr:0.01", "value:0.3" (see `lstmae.scoring.thresholds`).
    random_state : one seed for Python, NumPy and torch; same seed, same model on CPU.
    device : "auto" (cuda, then mps, then cpu), "cpu", "cuda", ...; models always score on
        the device they are given, and load on CPU.
    progress : show a tqdm progress bar on stderr (only when it is a terminal).

    Scores follow the anomaly-detection convention of PyOD, not scikit-learn's outlier -1/+1:
    a higher `anomaly_score` means more anomalous and `predict` returns 1 for an anomaly and 0
    for normal, the same encoding as event labels.

    Attributes (after fit): module_, architecture_, scaler_, error_model_, threshold_,
    threshold_rule_, history_, n_features_in_, n_timesteps_, feature_names_in_ (when given).
    """

    def __init__(self, encoder=(128, 64), decoder=None, activation="tanh", output_layer=True,
                 bidirectional=False, dropout=0.0, bottleneck=True, epochs=100, batch_size=64,
                 learning_rate=1e-3, loss="mse", validation_fraction=0.1, patience=10,
                 max_grad_norm=1.0, scaler="standard", error_model="mse", threshold="quantile:0.99",
                 random_state=None, device="auto", progress=True):
        self.encoder = encoder
        self.decoder = decoder
        self.activation = activation
        self.output_layer = output_layer
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.bottleneck = bottleneck
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.loss = loss
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.max_grad_norm = max_grad_norm
        self.scaler = scaler
        self.error_model = error_model
        self.threshold = threshold
        self.random_state = random_state
        self.device = device
        self.progress = progress

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "LSTMAutoencoder":
        """A model from a named preset (see `lstmae.config.PRESETS`), any parameter overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name].params, **overrides})

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, feature_names=None, on_epoch: Callable | None = None) -> "LSTMAutoencoder":
        """Train on X (N, L, F) of normal behaviour; `y` is ignored (pipelines pass it).

        feature_names: optional F names, checked again by `score_series`.
        """
        self._check_params()
        X = _as_windows(X)
        n, length, n_features = X.shape
        n_val = int(round(n * self.validation_fraction))
        if n - n_val < 1:
            raise DataError(f"need at least one training sample after holding out validation_fraction="
                            f"{self.validation_fraction} of {n}")
        train_idx, val_idx = np.arange(n - n_val), np.arange(n - n_val, n)
        rng = seed_everything(self.random_state)
        device = resolve_device(self.device)

        self.n_features_in_, self.n_timesteps_ = n_features, length
        if feature_names is not None:
            if len(feature_names) != n_features:
                raise DataError(f"got {len(feature_names)} feature names for {n_features} features")
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        self.scaler_ = FeatureScaler.fit(X[: n - n_val], self.scaler)
        self.architecture_ = Architecture(
            n_features=n_features, encoder=tuple(int(u) for u in self.encoder),
            decoder=resolve_decoder(self.encoder, self.decoder, n_features, self.output_layer),
            activation=self.activation, output_layer=bool(self.output_layer),
            bidirectional=bool(self.bidirectional), dropout=float(self.dropout),
            bottleneck=bool(self.bottleneck))
        self.module_ = LSTMAutoencoderModule(self.architecture_).to(device)
        self.history_ = train(
            self.module_, X, train_idx, val_idx, scaler=self.scaler_, epochs=self.epochs,
            batch_size=self.batch_size, learning_rate=self.learning_rate, loss=self.loss,
            patience=self.patience, max_grad_norm=self.max_grad_norm, rng=rng, device=device,
            progress=self.progress, on_epoch=on_epoch)

        reference = X[val_idx[0]:] if n_val else X[: n - n_val]
        error_model = make_error_model(self.error_model)
        self.error_model_ = error_model.fit_vectors(self._error_vectors(reference, error_model))
        rule = parse_threshold(self.threshold)
        # Label-based rules (best-f1) need labelled data: calibrate_threshold(X, y) sets them later.
        self.calibrate_threshold(reference, threshold=DEFAULT_THRESHOLD if rule.method.startswith("best-f") else None)
        return self

    def calibrate_threshold(self, X, y=None, threshold: str | None = None) -> float:
        """Set `threshold_` from the scores of X (N, L, F) by a rule (default: `self.threshold`).

        Rules such as "best-f1" need `y` (N,), 1 = anomaly. Returns the new threshold.
        """
        rule = parse_threshold(threshold or self.threshold)
        scores = self.anomaly_score(X)
        self.threshold_rule_ = rule
        self.threshold_ = float(rule.fit(scores, None if y is None else np.asarray(y)))
        return self.threshold_

    # -------------------------------------------------------------- inference
    def reconstruct(self, X) -> np.ndarray:
        """Reconstructions (N, L, F) in the original units of X."""
        check_is_fitted(self, "module_")
        return np.concatenate([self.scaler_.inverse_transform(x_hat) for _, x_hat in self._reconstructions(X)])

    def transform(self, X) -> np.ndarray:
        """Bottleneck encodings z (N, Z), one vector per sample, whatever the batch it is in."""
        check_is_fitted(self, "module_")
        if not self.architecture_.bottleneck:
            raise ValueError("this model has no bottleneck (bottleneck=False), so it has no encodings")
        X = self._check_input(X)
        parts = []
        with torch.inference_mode():
            self.module_.eval()
            for batch in self._batches(X):
                parts.append(self.module_.encode(batch).float().cpu().numpy())
        return np.concatenate(parts)

    def reconstruction_error(self, X, per: str = "sample", kind: str | None = None) -> np.ndarray:
        """Errors in scaled units (features comparable): per="sample" (N,), "timestep" (N, L),
        "feature" (N, F) or "none" (N, L, F); kind "mse" or "mae" (default: the training loss)."""
        if per not in PER_CHOICES:
            raise ValueError(f"per must be one of {PER_CHOICES}, got {per!r}")
        kind = kind or self.loss
        parts = [reconstruction_errors(x, x_hat, per=per, kind=kind) for x, x_hat in self._reconstructions(X)]
        return np.concatenate(parts)

    def anomaly_score(self, X) -> np.ndarray:
        """(N,) scores from the error model; higher = more anomalous."""
        check_is_fitted(self, "error_model_")
        return self.error_model_.score_vectors(self._error_vectors(X))

    def predict(self, X) -> np.ndarray:
        """(N,) 1 = anomaly (score above `threshold_`), 0 = normal."""
        check_is_fitted(self, "threshold_")
        return apply_threshold(self.anomaly_score(X), self.threshold_)

    def score_series(self, data, *, stride: int = 1, how: str = "end", feature_errors: bool = False,
                     entity_column: str | None = None) -> pd.DataFrame:
        """Score a series table (T rows) with windows of the trained length; one row per input row.

        data: a DataFrame (the trained feature columns are picked by name when the model knows
        them; other columns are ignored) or an array (T, F).
        how: "end" (a window's score belongs to its last row), "max" or "mean" over the windows
        covering a row.
        Returns a DataFrame with the input's index and columns `score`, `is_anomaly` (0/1) and
        `valid` (False for warm-up rows that no full window covers: their score is NaN, never
        zero-padded), plus `error_<feature>` per feature when feature_errors is True. With
        `entity_column`, windows never cross from one entity to the next.
        """
        check_is_fitted(self, "threshold_")
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(np.asarray(data))
        if entity_column is not None:
            parts = [self.score_series(group, stride=stride, how=how, feature_errors=feature_errors)
                     for _, group in frame.groupby(entity_column, sort=False)]
            return pd.concat(parts).loc[frame.index]
        values = self._series_values(frame)
        X, _ = temporalize(values, self.n_timesteps_, stride)
        scores = self.anomaly_score(X)
        point_scores, valid = window_to_points(scores, len(values), self.n_timesteps_, stride, how=how)
        result = pd.DataFrame({"score": point_scores,
                               "is_anomaly": apply_threshold(point_scores, self.threshold_),
                               "valid": valid}, index=frame.index)
        if feature_errors:
            per_feature = self.reconstruction_error(X, per="feature")
            point_errors, _ = window_to_points(per_feature, len(values), self.n_timesteps_, stride, how=how)
            for j, name in enumerate(self._feature_names()):
                result[f"error_{name}"] = point_errors[:, j]
        return result

    # -------------------------------------------------------------- save/load
    def save(self, path, *, overwrite: bool = False) -> None:
        """Write the model directory (config.json + model.safetensors) atomically; no pickle."""
        from .persistence import save_model

        save_model(self, path, overwrite=overwrite)

    # ---------------------------------------------------------------- helpers
    def _check_params(self) -> None:
        check_architecture(self.encoder, self.decoder, self.activation, self.dropout)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.scaler not in SCALERS:
            raise ValueError(f"scaler must be one of {SCALERS}, got {self.scaler!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        make_error_model(self.error_model)
        parse_threshold(self.threshold)

    def _check_input(self, X) -> np.ndarray:
        X = _as_windows(X)
        if X.shape[2] != self.n_features_in_:
            raise DataError(f"expected {self.n_features_in_} features per timestep, got {X.shape[2]}")
        return X

    def _batches(self, X, batch_size: int = 512):
        device = next(self.module_.parameters()).device
        return iterate_batches(X, np.arange(len(X)), batch_size, self.scaler_, device)

    def _reconstructions(self, X):
        """Yield (x, x_hat) numpy pairs (B, L, F) in scaled units, batch by batch."""
        X = self._check_input(X)
        with torch.inference_mode():
            self.module_.eval()
            for batch in self._batches(X):
                yield batch.cpu().numpy(), self.module_(batch).float().cpu().numpy()

    def _error_vectors(self, X, error_model=None) -> np.ndarray:
        """Per-sample error vectors (N, D) of the error model, computed batch by batch."""
        error_model = error_model or self.error_model_
        return np.concatenate([error_model.window_vectors(x, x_hat) for x, x_hat in self._reconstructions(X)])

    def _feature_names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(name) for name in self.feature_names_in_]
        return [f"f{j}" for j in range(self.n_features_in_)]

    def _series_values(self, frame: pd.DataFrame) -> np.ndarray:
        if hasattr(self, "feature_names_in_") and all(isinstance(c, str) for c in frame.columns):
            missing = [name for name in self.feature_names_in_ if name not in frame.columns]
            if missing:
                raise DataError(f"expected {self.n_features_in_} features (trained on "
                                f"{', '.join(self.feature_names_in_)}), missing {', '.join(map(repr, missing))}")
            frame = frame[list(self.feature_names_in_)]
        values = frame.to_numpy(dtype=np.float32)
        if values.shape[1] != self.n_features_in_:
            raise DataError(f"expected {self.n_features_in_} feature columns, got {values.shape[1]}")
        return values


def _as_windows(X) -> np.ndarray:
    """X as a float array (N, L, F); (N, L) is read as univariate (N, L, 1)."""
    X = np.asarray(X)
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3:
        raise DataError(f"expected windows of shape (N, L, F) (or (N, L) for one feature), got shape {X.shape}")
    if 0 in X.shape:
        raise DataError(f"expected non-empty windows (N, L, F), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"expected numbers, got dtype {X.dtype}")
    return X

