"""`LSTMAutoencoder`: the scikit-learn style estimator that composes data, nn, training and scoring."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .config import DEFAULTS, ENCODINGS, PRESETS, check_architecture, make_architecture
from .data.scaling import SCALERS, FeatureScaler
from .data.windowing import temporalize
from .exceptions import DataError
from .nn.model import LSTMAutoencoderModule
from .scoring import (DEFAULT_THRESHOLD, apply_threshold, make_error_model, parse_threshold, reconstruction_errors,
                      window_to_points)
from .scoring.error_models import MeanError
from .training.device import flush_denormals, resolve_device, seed_everything
from .training.loop import LOSSES, iterate_batches, token_cross_entropy, train

PER_CHOICES = ("sample", "timestep", "feature", "none")


class LSTMAutoencoder(TransformerMixin, BaseEstimator):
    """An LSTM autoencoder for windows or sequences X (N, L, F).

    Stacked encoder LSTMs -> each sample's last hidden state as the bottleneck z (N, Z) ->
    repeated over the L steps -> mirrored decoder LSTMs -> a per-timestep Linear -> (N, L, F).

    X is an array (N, L, F) ((N, L) for one feature), or a list of arrays (L_i, F) (or (L_i,))
    of different lengths: each batch is padded to its longest sample, the padding is packed
    (nn.LSTM) or masked (relu LSTMs) and left out of the loss, so encodings and scores do not
    depend on it. For a list, `reconstruct` and the per-timestep errors return lists too.

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
    decoder_type : "repeat" (above) or "encdec_ad" (Malhotra et al. 2016): the encoder's final
        (h, c) starts one decoder LSTM of Z units that reconstructs the sequence in reverse
        order, fed the true previous value in training (teacher forcing) and its own previous
        output at inference; `decoder` must stay None.
    vocab_size : None for real values; V (or "auto": the largest training id + 1) for token
        sequences: X holds integer ids in [0, V), (N, L) or a list of (L_i,), embedded in
        `embedding_dim` values. The network ends with V logits per step and always trains with
        the cross-entropy (`loss` and `scaler` are ignored); `reconstruct` returns the argmax
        ids, the reconstruction error of a token is its cross-entropy, and the "mse" and "mae"
        error models both score a sequence by its mean token cross-entropy.
    embedding_dim : size of the token embedding (token models only).
    epochs, batch_size, learning_rate : Adam training settings. epochs=0 keeps the seeded
        random initial weights (the scaler, error model and threshold are still fitted): a
        baseline that shows what training adds, e.g. to the encodings.
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
    encoding : what `transform` returns: "bottleneck", the vector z (N, Z) the decoder is given,
        or "mean", each encoder layer's hidden states averaged over the sample's steps and
        concatenated, (N, sum(encoder)) (x2 when bidirectional). Only `transform` reads it, so
        it can be changed with `set_params` after fitting. On GunPoint the mean beat the
        bottleneck as classifier features (benchmarks/results/classification_study.md).
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
                 bidirectional=False, dropout=0.0, bottleneck=True, decoder_type="repeat", vocab_size=None,
                 embedding_dim=32, epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"],
                 learning_rate=DEFAULTS["learning_rate"], loss=DEFAULTS["loss"],
                 validation_fraction=DEFAULTS["validation_fraction"], patience=DEFAULTS["patience"],
                 max_grad_norm=1.0, scaler=DEFAULTS["scaler"], error_model=DEFAULTS["error_model"],
                 threshold=DEFAULTS["threshold"], encoding="bottleneck",
                 random_state=None, device="auto", progress=True):
        self.encoder = encoder
        self.decoder = decoder
        self.activation = activation
        self.output_layer = output_layer
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.bottleneck = bottleneck
        self.decoder_type = decoder_type
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
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
        self.encoding = encoding
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
    @flush_denormals()
    def fit(self, X, y=None, *, feature_names=None, on_epoch: Callable | None = None) -> "LSTMAutoencoder":
        """Train on X of normal behaviour: (N, L, F), or a list of (L_i, F) (token ids: (N, L) or
        a list of (L_i,)); `y` is ignored (pipelines pass it).

        feature_names: optional F names, checked again by `score_series`.
        """
        self._check_params()
        tokens = self.vocab_size is not None
        X = _as_samples(X, self.vocab_size)
        variable = isinstance(X, list)
        if variable and self.error_model == "mahalanobis":
            raise DataError("error_model='mahalanobis' needs sequences of one length (its error vector has L*F "
                            "values); use error_model='mse' for sequences of different lengths")
        n = len(X)
        n_val = int(round(n * self.validation_fraction))
        if n - n_val < 1:
            raise DataError(f"need at least one training sample after holding out validation_fraction="
                            f"{self.validation_fraction} of {n}")
        train_idx, val_idx = np.arange(n - n_val), np.arange(n - n_val, n)
        rng = seed_everything(self.random_state)
        device = resolve_device(self.device)

        n_features = 1 if tokens else (X[0].shape[1] if variable else X.shape[2])
        self.n_features_in_ = n_features
        self.n_timesteps_ = max(len(x) for x in X) if variable else X.shape[1]  # the longest, for a list
        if feature_names is not None:
            if len(feature_names) != n_features:
                raise DataError(f"got {len(feature_names)} feature names for {n_features} features")
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        if tokens:
            self.scaler_ = FeatureScaler(np.zeros(1), np.ones(1), "none")
        else:
            self.scaler_ = FeatureScaler.fit(np.concatenate(X[: n - n_val])[None] if variable else X[: n - n_val],
                                             self.scaler)
        vocab_size = self.vocab_size
        if vocab_size == "auto":
            vocab_size = int(max(x.max() for x in X)) + 1
        self.architecture_ = make_architecture(
            n_features, encoder=self.encoder, decoder=self.decoder, activation=self.activation,
            output_layer=self.output_layer, bidirectional=self.bidirectional, dropout=self.dropout,
            bottleneck=self.bottleneck, decoder_type=self.decoder_type, vocab_size=vocab_size,
            embedding_dim=self.embedding_dim)
        self.module_ = LSTMAutoencoderModule(self.architecture_).to(device)
        self.history_ = train(
            self.module_, X, train_idx, val_idx, scaler=None if tokens else self.scaler_, epochs=self.epochs,
            batch_size=self.batch_size, learning_rate=self.learning_rate,
            loss="cross_entropy" if tokens else self.loss, patience=self.patience,
            max_grad_norm=self.max_grad_norm, rng=rng, device=device, progress=self.progress, on_epoch=on_epoch)

        return self.recalibrate(X[val_idx[0]:] if n_val else X[: n - n_val])

    def recalibrate(self, X) -> "LSTMAutoencoder":
        """Refit the error model (`self.error_model`) and the threshold (`self.threshold`) on X of
        held-out normal behaviour, (N, L, F), without retraining the network; `fit` ends with it
        on the validation part. Change either with `set_params` first, e.g.
        `model.set_params(error_model="mahalanobis").recalibrate(X_normal)`.
        """
        check_is_fitted(self, "module_")
        error_model = make_error_model(self.error_model)
        self.error_model_ = error_model.fit_vectors(self._error_vectors(X, error_model))
        rule = parse_threshold(self.threshold)
        # Label-based rules (best-f1) need labelled data: calibrate_threshold(X, y) sets them later.
        self.calibrate_threshold(X, threshold=DEFAULT_THRESHOLD if rule.method.startswith("best-f") else None)
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
    def reconstruct(self, X):
        """Reconstructions (N, L, F) in the original units of X (token models: the argmax ids
        (N, L)); for a list X, a list of (L_i, F) (ids: (L_i,))."""
        check_is_fitted(self, "module_")
        if self._tokens:
            results = self._map_samples(X, lambda cross_entropy, ids: ids)
        else:
            results = self._map_samples(X, lambda x, x_hat: self.scaler_.inverse_transform(x_hat))
        return _collect(X, results, ragged=True)

    @flush_denormals()
    def transform(self, X) -> np.ndarray:
        """Encodings, one vector per sample whatever the batch it is in: the bottleneck z (N, Z),
        or with encoding="mean" the encoder layers' time-averaged states (N, sum(encoder))."""
        check_is_fitted(self, "module_")
        if not self.architecture_.bottleneck:
            raise ValueError("this model has no bottleneck (bottleneck=False), so it has no encodings")
        _check_encoding(self.encoding)
        encode = self.module_.encode if self.encoding == "bottleneck" else self.module_.encode_mean
        X = self._check_input(X)
        parts = []
        with torch.inference_mode():
            self.module_.eval()
            for batch, lengths in self._batches(X):
                # A copy: z is a view of the last encoder layer's (N, L, Z) outputs, which it would
                # keep alive until the end (L times the memory of the encodings).
                parts.append(encode(batch, lengths).float().cpu().numpy().copy())
        return np.concatenate(parts)

    def reconstruction_error(self, X, per: str = "sample", kind: str | None = None):
        """Errors in scaled units (features comparable): per="sample" (N,), "timestep" (N, L),
        "feature" (N, F) or "none" (N, L, F); kind "mse" or "mae" (default: the training loss).

        For a list X, "timestep" and "none" give lists of (L_i,) and (L_i, F). Token models: the
        cross-entropy of each token, per="sample" (N,) or "timestep" (N, L); `kind` is ignored.
        """
        if per not in PER_CHOICES:
            raise ValueError(f"per must be one of {PER_CHOICES}, got {per!r}")
        check_is_fitted(self, "module_")
        if self._tokens:
            if per not in ("sample", "timestep"):
                raise ValueError(f"token models have one error per token: use per='sample' or 'timestep', got {per!r}")
            results = self._map_samples(X, lambda cross_entropy, ids: cross_entropy.mean(axis=1) if per == "sample"
                                        else cross_entropy)
        else:
            kind = kind or self.loss
            results = self._map_samples(X, lambda x, x_hat: reconstruction_errors(x, x_hat, per=per, kind=kind))
        return _collect(X, results, ragged=per in ("timestep", "none"))

    def anomaly_score(self, X) -> np.ndarray:
        """(N,) scores from the error model; higher = more anomalous."""
        check_is_fitted(self, "error_model_")
        return self.error_model_.score_vectors(self._error_vectors(X))

    def predict(self, X) -> np.ndarray:
        """(N,) 1 = anomaly (score above `threshold_`), 0 = normal."""
        check_is_fitted(self, "threshold_")
        return apply_threshold(self.anomaly_score(X), self.threshold_)

    def score_series(self, data, *, stride: int = 1, how: str = DEFAULTS["how"], feature_errors: bool = False,
                     entity_column: str | None = None) -> pd.DataFrame:
        """Score a series table (T rows) with windows of the trained length; one row per input row.

        data: a DataFrame (the trained feature columns are picked by name when the model knows
        them; other columns are ignored) or an array (T, F).
        how: "max" (default: the largest score of the windows covering a row; it won the
        detection study), "mean", or "end" (a window's score belongs to its last row only: the
        causal choice for live monitoring, where a row's score must not wait for later rows).
        Returns a DataFrame with the input's index and columns `score`, `is_anomaly` (0/1) and
        `valid` (False for rows that no full window covers: with "end" the first window - 1
        warm-up rows, with "max"/"mean" only rows past the last window; their score is NaN, never
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
    @property
    def _tokens(self) -> bool:
        return self.architecture_.vocab_size is not None

    def _check_params(self) -> None:
        check_architecture(self.encoder, self.decoder, self.activation, self.dropout, output_layer=self.output_layer,
                           bottleneck=self.bottleneck, decoder_type=self.decoder_type, vocab_size=self.vocab_size,
                           embedding_dim=self.embedding_dim)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.scaler not in SCALERS:
            raise ValueError(f"scaler must be one of {SCALERS}, got {self.scaler!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if int(self.epochs) < 0:
            raise ValueError(f"epochs must be >= 0 (0: no training), got {self.epochs!r}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size!r}")
        make_error_model(self.error_model)
        parse_threshold(self.threshold)
        _check_encoding(self.encoding)

    def _check_input(self, X):
        X = _as_samples(X, self.architecture_.vocab_size)
        if self._tokens:
            return X
        if isinstance(X, list):
            for i, sample in enumerate(X):
                if sample.shape[1] != self.n_features_in_:
                    raise DataError(f"sequence {i}: expected {self.n_features_in_} features per timestep, "
                                    f"got {sample.shape[1]}")
        elif X.shape[2] != self.n_features_in_:
            raise DataError(f"expected {self.n_features_in_} features per timestep, got {X.shape[2]}")
        return X

    def _batches(self, X, batch_size: int = 512):
        device = next(self.module_.parameters()).device
        scaler = None if self._tokens else self.scaler_
        return iterate_batches(X, np.arange(len(X)), batch_size, scaler, device)

    @flush_denormals()
    def _map_samples(self, X, fn) -> list:
        """fn applied to the model's results, batch by batch: fn(x, x_hat) with scaled arrays
        (B, L, F), or for token models fn(cross_entropy, predicted_ids) with (B, L) each. For a
        list X, fn sees one sample at a time, cut to its length: (1, L_i, F) or (1, L_i)."""
        X = self._check_input(X)
        results = []
        with torch.inference_mode():
            self.module_.eval()
            for batch, lengths in self._batches(X):
                output = self.module_(batch, lengths)
                if self._tokens:
                    pair = (token_cross_entropy(output, batch).cpu().numpy(), output.argmax(dim=-1).cpu().numpy())
                else:
                    pair = (batch.cpu().numpy(), output.float().cpu().numpy())
                if lengths is None:
                    results.append(fn(*pair))
                else:
                    results.extend(fn(*(array[i : i + 1, :length] for array in pair))
                                   for i, length in enumerate(lengths.tolist()))
        return results

    def _error_vectors(self, X, error_model=None) -> np.ndarray:
        """Per-sample error vectors (N, D) of the error model, computed batch by batch.

        Token models: the mean token cross-entropy (N, 1) for "mse"/"mae"; for "mahalanobis"
        the vector of token cross-entropies (as |X - X_hat| with X_hat = 0).
        """
        error_model = error_model or self.error_model_
        if isinstance(X, (list, tuple)) and not isinstance(error_model, MeanError):
            for i, sample in enumerate(X):
                if len(sample) != self.n_timesteps_:
                    raise DataError(f"sequence {i} has {len(sample)} steps; the {error_model.name} error model "
                                    f"scores sequences of the trained length {self.n_timesteps_} only")
        if not self._tokens:
            return np.concatenate(self._map_samples(X, error_model.window_vectors))
        if isinstance(error_model, MeanError):  # "mse" and "mae" alike
            return np.concatenate(self._map_samples(X, lambda cross_entropy, ids: cross_entropy.mean(axis=1)[:, None]))
        cross_entropy = np.concatenate(self._map_samples(X, lambda cross_entropy, ids: cross_entropy))[:, :, None]
        return error_model.window_vectors(cross_entropy, np.zeros_like(cross_entropy))

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


def _check_encoding(encoding) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")


def _collect(X, results: list, ragged: bool):
    """Per-batch (or, for a list X, per-sample) results as one array, or as a list of per-sample
    arrays when X is a list and the results have a time axis (`ragged`)."""
    if isinstance(X, (list, tuple)) and ragged:
        return [result[0] for result in results]
    return np.concatenate(results)


def _as_samples(X, vocab_size=None):
    """X as the model reads it: an array (N, L, F), or a list of arrays (L_i, F) for a list or
    tuple X (its sequences may differ in length); (N, L) and (L_i,) are read as one feature.
    Token models (vocab_size an int or "auto"): ids (N, L) (or (N, L, 1)) or a list of (L_i,), as int64."""
    if isinstance(X, (list, tuple)):
        if not len(X):
            raise DataError("expected a list of sequences, got an empty list")
        if vocab_size is not None:
            return [_as_token_ids(sample, vocab_size, sample=i) for i, sample in enumerate(X)]
        samples = [_as_sequence(sample, i) for i, sample in enumerate(X)]
        widths = [sample.shape[1] for sample in samples]
        if len(set(widths)) > 1:
            i = next(i for i, width in enumerate(widths) if width != widths[0])
            raise DataError(f"sequence {i} has {widths[i]} features per timestep, sequence 0 has {widths[0]}; "
                            "give every sequence the same features")
        return samples
    if vocab_size is not None:
        X = np.asarray(X)
        if X.ndim == 3 and X.shape[2] == 1:  # one feature, as the CLI reads sequences
            X = X[:, :, 0]
        if X.ndim != 2 or 0 in X.shape:
            raise DataError(f"expected token ids of shape (N, L) (or a list of (L_i,) sequences), got shape {X.shape}")
        return _as_token_ids(X, vocab_size)
    return _as_windows(X)


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


def _as_sequence(sample, index: int) -> np.ndarray:
    """One sequence of a list as a numeric array (L_i, F); (L_i,) is read as one feature."""
    sample = np.asarray(sample)
    if sample.ndim == 1:
        sample = sample[:, None]
    if sample.ndim != 2 or 0 in sample.shape:
        raise DataError(f"sequence {index}: expected a non-empty array (L_i, F) or (L_i,), got shape {sample.shape}")
    if not np.issubdtype(sample.dtype, np.number):
        raise DataError(f"sequence {index}: expected numbers, got dtype {sample.dtype}")
    return sample


def _as_token_ids(ids, vocab_size, sample: int | None = None) -> np.ndarray:
    """Token ids as int64, each checked to be an integer in [0, vocab_size) (>= 0 for "auto").

    ids is (N, L), or with `sample` the one sequence (L_i,) of that list item. The error names
    the first bad id's sample, position and value.
    """
    ids = np.asarray(ids)
    if sample is not None and (ids.ndim != 1 or not len(ids)):
        raise DataError(f"sequence {sample}: expected a non-empty sequence of token ids (L_i,), "
                        f"got shape {ids.shape}")
    if ids.dtype == bool or not (np.issubdtype(ids.dtype, np.integer) or np.issubdtype(ids.dtype, np.floating)):
        raise DataError(f"expected integer token ids, got dtype {ids.dtype}; map tokens to ids 0..V-1 first")
    bad = ids < 0
    if vocab_size != "auto":
        bad |= ids >= vocab_size
    if np.issubdtype(ids.dtype, np.floating):
        bad |= ~np.isfinite(ids) | (ids != np.round(ids))
    if bad.any():
        position = tuple(int(p) for p in np.argwhere(bad)[0])
        if sample is None:
            place = f"sample {position[0]}, position {position[1]}"
        else:
            place = f"sequence {sample}, position {position[0]}"
        if vocab_size == "auto":
            expected, fix = "a non-negative integer id", "map tokens to ids 0..V-1"
        else:
            expected = f"an integer id in [0, {vocab_size})"
            fix = f"map tokens to ids 0..{vocab_size - 1} or train with a larger vocab_size"
        raise DataError(f"{place}: token id {ids[position]} is not {expected}; {fix}")
    return ids.astype(np.int64)
