"""`LSTMAutoencoder`: the scikit-learn style estimator that composes data, nn, training and scoring."""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from .config import (ARCHITECTURE_PARAMS, AUTO_ERROR_MODEL, BINARY_FEATURE_CHOICES, DEFAULTS, ENCODINGS,
                     HOW_CHOICES, PRESETS, Architecture, check_architecture, make_architecture, parameters_docstring)
from .data.batches import iterate_batches
from .data.scaling import SCALERS, FeatureScaler
from .data.validation import (SERIES_NAN_POLICIES, beyond_float32, check_unique_names, counted, is_flag, is_integer,
                              is_number)
from .exceptions import DataError, ModelFileError
from .nn.model import LSTMAutoencoderModule
from .scoring import (
    apply_threshold,
    default_threshold,
    make_error_model,
    parse_threshold,
    reconstruction_errors,
    resolve_threshold,
)
from .scoring.error_models import (MeanError, NormalizedError, error_model_from_state, scored_features,
                                   zero_one_features)
from .training.device import flush_denormals, full_float32, resolve_device, seed_run
from .training.checkpoint import Checkpoint, run_fingerprint
from .training.loop import LOSSES, evaluate_loss, token_cross_entropy, train

PER_CHOICES = ("sample", "timestep", "feature", "none")
PROGRESS_MIN_SAMPLES = 20_000  # below this, scoring takes seconds: no bar


@contextlib.contextmanager
def kept_on_failure(model):
    """Put back the model's fitted attributes (the names ending in "_") when the block raises: a fit or
    calibration that fails leaves the model as it was before, never half-updated (a new scaler beside the
    old threshold scores everything wrongly and says nothing)."""
    def fitted():
        return [name for name in vars(model) if name.endswith("_") and not name.startswith("_")]

    before = {name: (value.copy() if isinstance(value, dict) else value)  # fit_series adds to its dicts
              for name, value in ((name, getattr(model, name)) for name in fitted())}
    try:
        yield
    except BaseException:
        for name in fitted():
            delattr(model, name)
        for name, value in before.items():
            setattr(model, name, value)
        raise


def _unchanged_on_failure(method):
    """`method` run within `kept_on_failure(self)`."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with kept_on_failure(self):
            return method(self, *args, **kwargs)
    return wrapper


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
PARAMETERS_HERE

    Variable-length input: X may be a list of arrays (L_i, F) (or (L_i,)); each batch is padded to
    its longest sample, the padding packed (nn.LSTM) or masked (relu LSTMs) and left out of the loss,
    so encodings and scores do not depend on it. For a list, `reconstruct` and the per-timestep
    errors return lists too. Token models (`vocab_size` set) take integer ids (N, L), end with V
    logits per step, always train with the cross-entropy (`loss` and `scaler` are ignored);
    `reconstruct` returns the argmax ids and a token's reconstruction error is its cross-entropy.

    Scores follow the anomaly-detection convention of PyOD, not scikit-learn's outlier -1/+1:
    a higher `anomaly_score` means more anomalous and `predict` returns 1 for an anomaly and 0
    for normal, the same encoding as event labels.

    Attributes
    ----------
    module_ : LSTMAutoencoderModule
        The trained network.
    architecture_ : Architecture
        The resolved layer sizes.
    scaler_ : FeatureScaler
        Per-feature scaling fitted on the training part.
    error_model_ : ErrorModel
        Error vectors -> one score per sample, fitted on the held-out part.
    threshold_ : float
        Scores above it are anomalies (`predict` gives 1).
    threshold_rule_ : ThresholdRule
        The rule `threshold_` was fitted by.
    threshold_how_ : str
        The kind of score `threshold_` was fitted on and applies to: "window" (one score per
        sample, as `anomaly_score` gives) or "max", "mean", "end" (row scores of a series,
        aggregated that way; see `lstmae.series.fit_series`).
    calibration_scores_ : dict of str to ndarray of shape (n,)
        Held-out normal scores by kind ("window", and for a series model the row aggregation, e.g.
        "max"); `threshold_` was fitted on those of `threshold_how_`. Another rule, or the same rule
        for another kind of score, is fitted on them later (`lstmae.series.threshold_for`) without
        the training data.
    threshold_floors_ : dict of str to float
        With `threshold_floor` (series only): by kind of score, the `threshold_floor` quantile of the
        training rows' scores, the lowest threshold a static rule may give (empty: no floor).
    history_ : dict
        Training and validation loss per epoch, best epoch, epochs run.
    n_features_in_, n_timesteps_ : int
        F and L (the longest L for a list of sequences).
    feature_names_in_ : ndarray of str
        The F feature names, when given to `fit`.
    data_settings_ : dict
        How a table maps to this model's input (layout, window, stride, time/label/entity
        columns, ...), recorded by `lstmae.series` and the CLI; empty for a model fitted on arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from lstmae import LSTMAutoencoder, temporalize
    >>> series = np.sin(np.linspace(0, 60, 600))[:, None]          # (T, F) = (600, 1)
    >>> X, _ = temporalize(series, window=20)                      # (N, L, F) = (581, 20, 1)
    >>> ae = LSTMAutoencoder(encoder=(16, 8), epochs=2, random_state=0, progress=False).fit(X)
    >>> ae.transform(X[:3]).shape                                  # (N, Z)
    (3, 8)
    >>> ae.anomaly_score(X[:3]).shape, ae.predict(X[:3]).shape
    ((3,), (3,))
    """

    # The defaults are lstmae.config.PARAMETERS' (tests/test_config.py checks that they agree).
    def __init__(self, encoder=DEFAULTS["encoder"], decoder=DEFAULTS["decoder"], activation=DEFAULTS["activation"],
                 output_layer=DEFAULTS["output_layer"], bidirectional=DEFAULTS["bidirectional"],
                 dropout=DEFAULTS["dropout"], bottleneck=DEFAULTS["bottleneck"], decoder_type=DEFAULTS["decoder_type"],
                 vocab_size=DEFAULTS["vocab_size"], embedding_dim=DEFAULTS["embedding_dim"], epochs=DEFAULTS["epochs"],
                 batch_size=DEFAULTS["batch_size"], steps_per_epoch=DEFAULTS["steps_per_epoch"],
                 learning_rate=DEFAULTS["learning_rate"], input_noise=DEFAULTS["input_noise"], loss=DEFAULTS["loss"],
                 validation_fraction=DEFAULTS["validation_fraction"],
                 validation_blocks=DEFAULTS["validation_blocks"], threshold_floor=DEFAULTS["threshold_floor"],
                 smooth=DEFAULTS["smooth"], patience=DEFAULTS["patience"], n_init=DEFAULTS["n_init"],
                 max_grad_norm=DEFAULTS["max_grad_norm"], scaler=DEFAULTS["scaler"],
                 error_model=DEFAULTS["error_model"], binary_features=DEFAULTS["binary_features"],
                 threshold=DEFAULTS["threshold"], encoding=DEFAULTS["encoding"],
                 random_state=DEFAULTS["random_state"], device=DEFAULTS["device"], progress=DEFAULTS["progress"]):
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
        self.steps_per_epoch = steps_per_epoch
        self.learning_rate = learning_rate
        self.input_noise = input_noise
        self.loss = loss
        self.validation_fraction = validation_fraction
        self.validation_blocks = validation_blocks
        self.threshold_floor = threshold_floor
        self.smooth = smooth
        self.patience = patience
        self.n_init = n_init
        self.max_grad_norm = max_grad_norm
        self.scaler = scaler
        self.error_model = error_model
        self.binary_features = binary_features
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
    @_unchanged_on_failure
    def fit(self, X, y=None, *, feature_names=None, X_val=None, checkpoint_dir=None,
            on_epoch: Callable | None = None) -> "LSTMAutoencoder":
        """Train on X of normal behaviour: (N, L, F), or a list of (L_i, F) (token ids: (N, L) or
        a list of (L_i,)); `y` is ignored (pipelines pass it).

        feature_names: optional F names, checked again when a table is scored.
        X_val: held-out normal samples for early stopping, the error model and the threshold; by
        default the last `validation_fraction` of X.
        checkpoint_dir: a folder for one checkpoint per epoch; fitting again with the same settings
        and data resumes from it (after a kill, the same weights as an uninterrupted run on the CPU).
        Ctrl-C stops training and keeps the best epoch so far (`history_["interrupted"]`).
        """
        self._check_params()
        if not SERIES_FIT.get():  # they are read by fit_series only: here they were ignored without a word
            for name in ("threshold_floor", "validation_blocks", "smooth"):
                if getattr(self, name) != DEFAULTS[name]:
                    raise ValueError(f"{name}={getattr(self, name)!r} applies to a series' rows: fit it with "
                                     f"lstmae.series.fit_series (or lstmae fit), or leave {name} at its default "
                                     f"({DEFAULTS[name]!r}) to fit windows")
        if on_epoch is not None and not callable(on_epoch):  # it failed after the first epoch had trained
            raise ValueError(f"on_epoch must be a function (epoch, history), got {on_epoch!r:.60}")
        tokens = self.vocab_size is not None
        X = _as_samples(X, self.vocab_size)
        variable = isinstance(X, list)
        if not tokens:
            _check_real_values(X, "X")
        if variable and self.error_model == "mahalanobis":
            raise DataError("error_model='mahalanobis' needs sequences of one length (its error vector has L*F "
                            "values); use error_model='mse' for sequences of different lengths")
        if X_val is not None:
            X_val = _as_samples(X_val, self.vocab_size)
            if not tokens:
                _check_real_values(X_val, "X_val")
            if isinstance(X_val, list) != variable:
                raise DataError("X_val must be of the same kind as X (an array (N, L, F), or a list of sequences)")
            if not variable and X_val.shape[1:] != X.shape[1:]:
                raise DataError(f"X_val has samples of shape {X_val.shape[1:]}, X {X.shape[1:]}: give X_val windows of "
                                "the same length and features as X")
            if variable and any(np.shape(sample)[1:] != np.shape(X[0])[1:] for sample in X_val):
                raise DataError(f"X_val's sequences must have X's {np.shape(X[0])[1:]} features per step")
            n_train = len(X)
            X = X + X_val if variable else np.concatenate([X, X_val])
            n = len(X)
        else:
            n = len(X)
            n_train = n - int(round(n * self.validation_fraction))
        if n_train < 1:
            raise DataError(f"need at least one training sample after holding out validation_fraction="
                            f"{self.validation_fraction} of {n}")
        rule = parse_threshold(resolve_threshold(self.threshold, "window"))
        n_calibration = n - n_train if n > n_train else n_train
        if n_calibration < rule.min_scores:  # refused after all the training otherwise
            raise DataError(f"threshold '{rule}' is fitted on at least {rule.min_scores} held-out scores, and "
                            f"{n_calibration} samples would be held out (validation_fraction="
                            f"{self.validation_fraction} of {n}); give more data, a larger validation_fraction, or a "
                            "rule such as mad:8")
        train_idx, val_idx = np.arange(n_train), np.arange(n_train, n)
        device = resolve_device(self.device, activation=self.activation)

        n_features = 1 if tokens else (X[0].shape[1] if variable else X.shape[2])
        self.n_features_in_ = n_features
        self.n_timesteps_ = max(len(x) for x in X) if variable else X.shape[1]  # the longest, for a list
        if feature_names is not None:
            if isinstance(feature_names, str) or np.ndim(feature_names) != 1:
                raise DataError(f"feature_names must be a list of {n_features} names, got {feature_names!r:.60}")
            if len(feature_names) != n_features:
                raise DataError(f"got {len(feature_names)} feature names for {n_features} features")
            check_unique_names([str(name) for name in feature_names], "feature_names")
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.data_settings_ = {}
        self.binary_features_ = np.zeros(n_features, bool) if tokens else zero_one_features(X[:n_train], n_features)
        if tokens:
            self.scaler_ = FeatureScaler(np.zeros(1), np.ones(1), "none")
        else:
            self.scaler_ = FeatureScaler.fit(np.concatenate(X[:n_train])[None] if variable else X[:n_train],
                                             self.scaler)
        vocab_size = self.vocab_size
        if vocab_size == "auto":
            vocab_size = int(max(x.max() for x in X)) + 1
        self.architecture_ = make_architecture(
            n_features, vocab_size=vocab_size,
            **{name: getattr(self, name) for name in ARCHITECTURE_PARAMS if name != "vocab_size"})
        fingerprint = None if checkpoint_dir is None else run_fingerprint(_jsonable(self.get_params()), X, n_train)
        transform = None if tokens else self.scaler_.transform
        loss = "cross_entropy" if tokens else self.loss
        chosen, losses = None, []
        for run in range(self.n_init):
            seed = None if self.random_state is None else (int(self.random_state) + run) % 2**32
            rng = seed_run(seed)
            try:
                module = LSTMAutoencoderModule(self.architecture_).to(device)
            except (RuntimeError, MemoryError) as err:  # the allocator's own words name no parameter
                if "alloc" not in str(err).lower() and not isinstance(err, MemoryError):
                    raise
                sizes = {name: getattr(self, name) for name in ("encoder", "decoder", "vocab_size", "embedding_dim")
                         if getattr(self, name) is not None}
                raise ValueError(f"the network is too large to allocate ({str(err).splitlines()[0][:120]}); use "
                                 f"smaller layer sizes than {sizes}") from None
            checkpoint = None
            if checkpoint_dir is not None:
                folder = checkpoint_dir if self.n_init == 1 else Path(checkpoint_dir) / f"run-{run + 1}"
                checkpoint = Checkpoint(folder, fingerprint)
            history = train(
                module, X, train_idx, val_idx, transform=transform, tokens=tokens, epochs=self.epochs,
                batch_size=self.batch_size, steps_per_epoch=self.steps_per_epoch, learning_rate=self.learning_rate,
                input_noise=self.input_noise, loss=loss, patience=self.patience, max_grad_norm=self.max_grad_norm,
                rng=rng, device=device, progress=self.progress, checkpoint=checkpoint, on_epoch=on_epoch,
                desc="training" if self.n_init == 1 else f"training {run + 1}/{self.n_init}")
            # every run judged on the same, whole held-out part (early stopping's loss is taken on a sample of it);
            # with nothing held out, on the training windows, and only to choose among runs
            if len(val_idx) or self.n_init > 1:
                losses.append(evaluate_loss(module, X, val_idx if len(val_idx) else train_idx, self.batch_size, loss,
                                            device, transform=transform, tokens=tokens))
            if chosen is None or losses[-1] < losses[chosen]:
                chosen, self.module_, self.history_ = run, module, history
            if history.get("interrupted"):
                break  # Ctrl-C: no further runs; the best of those trained so far is kept
        if len(val_idx):
            self.history_["held_out_loss"] = losses[chosen]
        if self.n_init > 1:
            self.history_.update(run_losses=losses, chosen_run=chosen + 1)
        if history.get("interrupted"):  # the last run's; the kept one may be an earlier, finished run
            self.history_["interrupted"] = True
        self.history_.update(n_train=int(n_train), n_validation=int(n - n_train))

        return self.recalibrate(X[n_train:] if len(val_idx) else X[:n_train])

    @_unchanged_on_failure
    def recalibrate(self, X) -> "LSTMAutoencoder":
        """Refit the error model (`self.error_model`) and the threshold (`self.threshold`) on X of
        held-out normal behaviour, (N, L, F), without retraining the network; `fit` ends with it
        on the validation part. Change either with `set_params` first, e.g.
        `model.set_params(error_model="mahalanobis").recalibrate(X_normal)`.
        """
        check_is_fitted(self, "module_")
        error_model = make_error_model(self._resolved_error_model(X))
        if isinstance(error_model, NormalizedError) and self.binary_features == "context":
            error_model.scored = scored_features(self.binary_features_)
        vectors = self._error_vectors(X, error_model)
        self.error_model_ = error_model.fit_vectors(vectors)
        self.set_calibration(self._scores_of_vectors(vectors), how="window")  # the same windows: no second pass
        return self

    def _resolved_error_model(self, X) -> str:
        """`self.error_model`, with "auto" made normalized-max where it can fit and score X of held-out
        samples (real values, one length, at least 2 samples), else mae."""
        if self.error_model != "auto":
            return self.error_model
        fixed_length = not isinstance(X, (list, tuple))
        return AUTO_ERROR_MODEL if self.vocab_size is None and fixed_length and len(X) >= 2 else "mae"

    def set_calibration(self, scores, *, how: str = "window", labels=None) -> float:
        """Fit `threshold_` by the rule `self.threshold` ("auto": `default_threshold(how)`) on held-out
        scores (n,) of the kind it will be applied to (`how`: "window" for per-sample scores, or the
        aggregation of a series' row scores), and keep the normal ones as `calibration_scores_`.
        Label-based rules (best-f1) need `labels` (n,), 1 = anomaly; without them they fall back to the
        default rule, with a warning. Returns the threshold.
        """
        scores = np.asarray(scores, dtype=np.float64)
        normal = scores if labels is None else scores[np.asarray(labels) == 0]
        normal = normal[np.isfinite(normal)]
        if not len(normal):
            raise DataError("no finite held-out normal score to fit the threshold on; give more normal data")
        rule = parse_threshold(resolve_threshold(self.threshold, how))
        label_rule = rule.method.startswith("best-f")
        if label_rule and labels is None:
            rule = parse_threshold(default_threshold(how))
            warnings.warn(f"threshold={self.threshold!r} needs labels, and the held-out data had none: the threshold "
                          f"is {rule} for now; calibrate_threshold(X, y, threshold={self.threshold!r}) with labelled "
                          "data fits it", UserWarning, stacklevel=3)
        finite = np.isfinite(scores)
        self.threshold_ = float(rule.fit(scores[finite], np.asarray(labels)[finite]) if label_rule and labels is not None
                                else rule.fit(normal))
        self.threshold_rule_ = rule
        self.threshold_how_ = how
        if how == "window" or not hasattr(self, "calibration_scores_"):
            self.calibration_scores_ = {}
        else:  # row scores of other mappings were of the previous calibration: `fit_series` adds today's
            self.calibration_scores_ = {kind: values for kind, values in self.calibration_scores_.items()
                                        if kind == "window"}
        self.calibration_scores_[how] = normal
        self.threshold_floors_ = {}  # in the units of the calibration they were set beside
        return self.threshold_

    @_unchanged_on_failure
    def calibrate_threshold(self, X, y=None, threshold: str | None = None) -> float:
        """Set `threshold_` from the scores of X (N, L, F) by a rule (default: `self.threshold`; "auto": sigma:2).

        Rules such as "best-f1" need `y` (N,), 1 = anomaly. Returns the new threshold.
        """
        rule = parse_threshold(resolve_threshold(threshold or self.threshold))
        scores = self.anomaly_score(X)
        self.threshold_rule_ = rule
        self.threshold_ = float(rule.fit(scores, None if y is None else np.asarray(y)))
        self.threshold_how_ = "window"
        if y is None:
            self.calibration_scores_ = {"window": scores}
        self.threshold_floors_ = {}
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
        """Encodings (N, D), one vector per sample whatever the batch it is in, by `encoding`:
        "pooled" (default): each encoder layer's states averaged over the steps, then the code
        layer's maximised over them (N, sum(encoder) + Z); "bottleneck": the code z, the last
        state (N, Z); "mean" / "max": each encoder layer's states averaged / maximised over the
        steps (N, sum(encoder)). Sizes double for a bidirectional encoder; the padding of a list
        of sequences is left out of every statistic."""
        check_is_fitted(self, "module_")
        if not self.architecture_.bottleneck:
            raise ValueError("this model has no bottleneck (bottleneck=False), so it has no encodings")
        _check_encoding(self.encoding)
        encode = _ENCODERS[self.encoding]
        X = self._check_input(X)
        parts = []
        with self._inference():
            for batch, lengths in self._batches(X):
                # A copy: z is a view of the last encoder layer's (N, L, Z) outputs, which it would
                # keep alive until the end (L times the memory of the encodings).
                parts.append(encode(self.module_, batch, lengths).float().cpu().numpy().copy())
        codes = np.concatenate(parts)
        # float64 in, float64 out (scikit-learn's convention for transformers); else float32
        return codes.astype(np.float64) if getattr(X, "dtype", None) == np.float64 else codes

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of `transform`'s D columns, as `lstmae encode` writes them: z_j ("bottleneck") or
        pooled_j / mean_j / max_j; scikit-learn's `set_output(transform="pandas")` uses them."""
        check_is_fitted(self, "module_")
        _check_encoding(self.encoding)
        arch = self.architecture_
        code, layers = arch.encoder[-1], sum(arch.encoder)
        size = {"bottleneck": code, "mean": layers, "max": layers, "pooled": layers + code}[self.encoding]
        prefix = "z" if self.encoding == "bottleneck" else self.encoding
        return np.asarray([f"{prefix}_{j}" for j in range(size * (2 if arch.bidirectional else 1))], dtype=object)

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

    def score(self, X, y=None) -> float:
        """Minus the mean reconstruction error of X (N, L, F), in the training loss on the scaled values (for token
        models, minus the mean cross-entropy): higher is better, as scikit-learn's model selection expects, so
        GridSearchCV and cross_val_score without `scoring=` choose the network that reconstructs held-out data
        best (as PCA.score gives a mean log-likelihood). Scores of models with another `loss` or `scaler` are
        in other units and do not compare. y is ignored."""
        errors = self.reconstruction_error(X)
        with np.errstate(over="ignore", invalid="ignore"):
            return -float(np.mean(errors))

    def anomaly_score(self, X) -> np.ndarray:
        """(N,) scores from the error model; higher = more anomalous. A sample whose reconstruction
        error overflows (an extreme input value, e.g. 1e20) scores inf: it is as anomalous as can be."""
        check_is_fitted(self, "error_model_")
        with np.errstate(over="ignore", invalid="ignore"):
            vectors = self._error_vectors(X)
        return self._scores_of_vectors(vectors)

    def _scores_of_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Scores (N,) of error vectors (N, D) by the fitted error model; inf for a non-finite vector."""
        finite = np.isfinite(vectors).all(axis=1)
        if finite.all():
            return self.error_model_.score_vectors(vectors)
        scores = np.full(len(vectors), np.inf)
        if finite.any():
            scores[finite] = self.error_model_.score_vectors(vectors[finite])
        return scores

    def predict(self, X) -> np.ndarray:
        """(N,) 1 = anomaly (a sample's score above the threshold for one sample's score), 0 = normal: `threshold_`,
        or, for a model whose threshold was fitted on a series' row scores (`threshold_how_`, `fit_series`), its
        rule fitted on the held-out window scores (an adaptive rule: the value it starts from)."""
        check_is_fitted(self, "threshold_")
        threshold = self.threshold_
        if self.threshold_how_ != "window":  # a row score averages several windows': its threshold is another
            from .series import end_threshold

            value, adaptive = end_threshold(self)
            threshold = value if adaptive is None else adaptive.threshold
        return apply_threshold(self.anomaly_score(X), threshold)

    def score_series(self, data, *, stride: int = 1, how: str = DEFAULTS["how"], feature_errors: bool = False,
                     entity_column: str | None = None, threshold=None) -> pd.DataFrame:
        """Score a series table (T rows) with windows of the trained length; one row per input row.

        data: a DataFrame (the trained feature columns are picked by name when the model knows
        them; other columns are ignored) or an array (T, F).
        how: "mean" (default: the mean score of the windows covering a row; it won the detection
        study's alarm ranking), "max" (their largest), or "end" (a window's score belongs to its
        last row only: the causal choice for live monitoring, where a row's score must not wait
        for later rows).
        Returns a DataFrame with the input's index and columns `score`, `is_anomaly` (0/1) and
        `valid` (False for rows that no full window covers: with "end" the first window - 1
        warm-up rows, with "max"/"mean" only rows past the last window; their score is NaN, never
        zero-padded), plus `error_<feature>` per feature when feature_errors is True. With
        `entity_column`, windows never cross from one entity to the next. See
        `lstmae.series.score_frame`, which this calls.
        """
        from .series import score_frame

        check_is_fitted(self, "threshold_")
        return score_frame(self, data, stride=stride, how=how, entity_column=entity_column,
                           feature_errors=feature_errors, threshold=threshold)

    # -------------------------------------------------------------- save/load
    def save(self, path, *, overwrite: bool = False) -> None:
        """Write the model directory (config.json + model.safetensors) atomically; no pickle."""
        from .persistence import write_model

        check_is_fitted(self, "threshold_")
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a folder path (str or pathlib.Path), got {type(path).__name__}")
        write_model(path, *self.get_state(), overwrite=overwrite)

    def get_state(self) -> tuple[dict, dict]:
        """The fitted model as a plain state: a JSON-able config dict and a dict of named CPU tensors
        (the network's weights, the error model's arrays, the calibration scores)."""
        check_is_fitted(self, "threshold_")
        error_config, error_arrays = self.error_model_.get_state()
        config = {
            "params": _jsonable(self.get_params()),
            "architecture": self.architecture_.to_dict(),
            "n_timesteps": int(self.n_timesteps_),
            "feature_names": [str(f) for f in getattr(self, "feature_names_in_", [])] or None,
            "scaler": self.scaler_.to_dict(),
            "error_model": error_config,
            "threshold": {"rule": str(self.threshold_rule_), "value": float(self.threshold_),
                          "how": self.threshold_how_,
                          # only when set: a model without floors keeps the state (and fingerprint) it had
                          **({"floors": self.threshold_floors_} if self.threshold_floors_ else {})},
            "random_state": None if self.random_state is None else int(self.random_state),
            "training": _jsonable(self.history_),
            "data": _jsonable(self.data_settings_),
            # only when some are: a model without 0/1 features keeps the state (and fingerprint) it had
            **({"binary_features": np.flatnonzero(self.binary_features_).tolist()}
               if self.binary_features_.any() else {}),
        }
        tensors = {name: t.detach().cpu().contiguous() for name, t in self.module_.state_dict().items()}
        for name, array in error_arrays.items():
            tensors[_ERROR_MODEL_PREFIX + name] = torch.from_numpy(np.ascontiguousarray(array))
        for kind, scores in self.calibration_scores_.items():
            tensors[_CALIBRATION + kind] = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float64))
        return config, tensors

    @classmethod
    def from_state(cls, config: dict, tensors: dict, *, device: str = "cpu", source: str = "the model"):
        """The model `get_state` described; raises ModelFileError naming `source` for a state that is
        not one (missing keys, weights that do not fit the architecture, non-finite statistics)."""
        try:
            params = dict(config["params"])
            for key in ("encoder", "decoder"):
                if isinstance(params.get(key), list):
                    params[key] = tuple(params[key])
            model = cls(**params)
            model._check_params()  # e.g. an encoding that transform would refuse far from the file
            model.architecture_ = Architecture.from_dict(config["architecture"])
            weights = {k: v for k, v in tensors.items()
                       if not k.startswith(_ERROR_MODEL_PREFIX) and not k.startswith(_CALIBRATION)}
            _check_weights(model.architecture_, weights, source)  # before allocating the network
            module = LSTMAutoencoderModule(model.architecture_)
            module.load_state_dict(weights, strict=True)
            error_arrays = {k[len(_ERROR_MODEL_PREFIX):]: v.numpy() for k, v in tensors.items()
                            if k.startswith(_ERROR_MODEL_PREFIX)}
            model.error_model_ = error_model_from_state(config["error_model"], error_arrays)
            model.scaler_ = FeatureScaler.from_dict(config["scaler"])
            model.threshold_rule_ = parse_threshold(config["threshold"]["rule"])
            if not is_number(config["threshold"]["value"]):
                raise TypeError(f"its threshold value is {config['threshold']['value']!r}, not a number")
            model.threshold_ = float(config["threshold"]["value"])
            model.threshold_how_ = config["threshold"].get("how", "window")
            model.threshold_floors_ = {str(kind): float(value)
                                       for kind, value in config["threshold"].get("floors", {}).items()}
            model.n_timesteps_ = config["n_timesteps"]
            model.binary_features_ = np.zeros(model.architecture_.n_features, bool)
            flags = config.get("binary_features", [])
            if not isinstance(flags, list) or not all(is_integer(j, 0) and j < len(model.binary_features_)
                                                      for j in flags):
                raise ValueError(f"its binary_features are {flags!r}, not positions of its "
                                 f"{len(model.binary_features_)} features")
            model.binary_features_[np.asarray(flags, dtype=np.int64)] = True
        except ModelFileError as err:  # a part's own check: say which model it is
            raise (err if source in str(err) else ModelFileError(f"{source}: {err}")) from err
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            raise ModelFileError(f"{source} is corrupt or incomplete: {str(err).splitlines()[0]}") from err
        if not np.isfinite(model.threshold_) or (model.threshold_ < 0 and isinstance(model.error_model_, MeanError)):
            raise ModelFileError(f"{source} is corrupt: its threshold is {model.threshold_} (scores of the "
                                 f"{model.error_model_.name} error model are >= 0); refit the model or set a threshold "
                                 "with `lstmae score --threshold value:V`")
        if not all(np.isfinite(value) for value in model.threshold_floors_.values()):
            raise ModelFileError(f"{source} is corrupt: its threshold floors are {model.threshold_floors_}")
        bad = [name for name, array in error_arrays.items() if not np.isfinite(array).all()]
        if bad:
            raise ModelFileError(f"{source} is corrupt: the error model's {bad[0]!r} holds NaN or inf values")
        if not is_integer(model.n_timesteps_, 1):
            raise ModelFileError(f"{source} is corrupt: n_timesteps is {model.n_timesteps_!r}, not an integer >= 1")
        if model.threshold_how_ not in ("window", *HOW_CHOICES):
            raise ModelFileError(f"{source} is corrupt: its threshold was fitted on {model.threshold_how_!r} scores, "
                                 f"not window scores or one of the row mappings {', '.join(HOW_CHOICES)}")
        n_features = model.architecture_.n_features
        if len(model.scaler_.offset) != n_features:
            raise ModelFileError(f"{source} is corrupt: its scaler has {len(model.scaler_.offset)} features, its "
                                 f"architecture {n_features}")
        model.module_ = module.to(device).eval()
        model.n_features_in_ = n_features
        names = config.get("feature_names")
        if names:
            if not (isinstance(names, list) and len(names) == n_features and all(isinstance(n, str) for n in names)
                    and len(set(names)) == n_features):
                raise ModelFileError(f"{source} is corrupt: its feature_names are {names!r:.60}, not {n_features} "
                                     "different names")
            model.feature_names_in_ = np.asarray(names, dtype=object)
        model.history_ = config.get("training", {})
        if not isinstance(model.history_, dict):
            raise ModelFileError(f"{source} is corrupt: its training record is a {type(model.history_).__name__}, "
                                 "not a mapping")
        for key in ("loss", "val_loss"):  # the curves evaluate's report plots
            curve = model.history_.get(key, [])
            if not isinstance(curve, list) or not all(is_number(value) for value in curve):
                raise ModelFileError(f"{source} is corrupt: its training record's {key!r} is {curve!r:.60}, not a "
                                     "list of numbers")
        model.data_settings_ = _checked_data_settings(config.get("data") or {}, source)
        window = model.data_settings_.get("window")
        if window is not None and window != model.n_timesteps_:
            raise ModelFileError(f"{source} is corrupt: its data setting 'window' is {window} but its network was "
                                 f"trained on {model.n_timesteps_}-step windows (n_timesteps)")
        names = model.data_settings_.get("timestep_columns")
        if names is not None and (len(set(names)) != len(names) or model.n_timesteps_ not in (None, len(names))):
            raise ModelFileError(f"{source} is corrupt: its data setting 'timestep_columns' names {len(names)} columns"
                                 f" ({len(set(names))} different) for sequences of {model.n_timesteps_} steps")
        model.calibration_scores_ = {name[len(_CALIBRATION):]: _checked_calibration(name, tensor, source)
                                     for name, tensor in tensors.items() if name.startswith(_CALIBRATION)}
        if not model.calibration_scores_:  # a model saved before calibration scores were stored
            model.calibration_scores_ = {model.threshold_how_: np.array([model.threshold_])}
        return model

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
        if not is_number(self.validation_fraction) or not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be a number in [0, 1), got {self.validation_fraction!r}")
        if not is_integer(self.validation_blocks, 1):
            raise ValueError(f"validation_blocks must be an int >= 1, got {self.validation_blocks!r}")
        if self.threshold_floor is not None and (not is_number(self.threshold_floor)
                                                 or not 0.0 < self.threshold_floor <= 1.0):
            raise ValueError(f"threshold_floor must be a quantile in (0, 1] or None, got {self.threshold_floor!r}")
        if not is_integer(self.smooth, 1):
            raise ValueError(f"smooth must be an int >= 1 (rows; 1: no smoothing), got {self.smooth!r}")
        if not is_integer(self.n_init, 1):
            raise ValueError(f"n_init must be an integer >= 1 (networks trained from different seeds), "
                             f"got {self.n_init!r}")
        if not is_integer(self.epochs, 0):
            raise ValueError(f"epochs must be an integer >= 0 (0: no training), got {self.epochs!r}")
        if not is_integer(self.batch_size, 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if self.steps_per_epoch is not None and not is_integer(self.steps_per_epoch, 1):
            raise ValueError(f"steps_per_epoch must be an integer >= 1 or None (every sample), "
                             f"got {self.steps_per_epoch!r}")
        if self.random_state is not None and not (is_integer(self.random_state, 0) and self.random_state < 2**32):
            raise ValueError(f"random_state must be an integer in [0, 2**32 - 1] or None (unseeded), "
                             f"got {self.random_state!r}")
        for name in ("bidirectional", "progress"):
            if not is_flag(getattr(self, name)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not is_number(self.learning_rate) or not 0 < self.learning_rate < math.inf:
            raise ValueError(f"learning_rate must be a number > 0, got {self.learning_rate!r}")
        if not is_number(self.input_noise) or not 0 <= self.input_noise < math.inf:
            raise ValueError(f"input_noise must be a number >= 0 (scaled units; 0: none), got {self.input_noise!r}")
        if self.input_noise and self.vocab_size is not None:
            raise ValueError("input_noise applies to real values; a token model (vocab_size) takes none, "
                             "use input_noise=0")
        if self.patience is not None and not is_integer(self.patience, 1):
            raise ValueError(f"patience must be an integer >= 1 (epochs without a better validation loss) or None "
                             f"(no early stopping), got {self.patience!r}")
        if self.max_grad_norm is not None and (not is_number(self.max_grad_norm)
                                               or not 0 < self.max_grad_norm < math.inf):
            raise ValueError(f"max_grad_norm must be a number > 0 or None (no clipping), got {self.max_grad_norm!r}")
        if self.error_model != "auto":
            make_error_model(self.error_model)
        if self.binary_features not in BINARY_FEATURE_CHOICES:
            raise ValueError(f"binary_features must be one of {BINARY_FEATURE_CHOICES}, got {self.binary_features!r}")
        parse_threshold(resolve_threshold(self.threshold))
        _check_encoding(self.encoding)

    def _check_input(self, X):
        X = _as_samples(X, self.architecture_.vocab_size)
        if self._tokens:
            return X
        if isinstance(X, list):
            for i, sample in enumerate(X):
                if sample.shape[1] != self.n_features_in_:
                    raise DataError(f"sequence {i}: expected {counted(self.n_features_in_, 'feature')} per timestep, "
                                    f"got {sample.shape[1]}")
        elif X.shape[2] != self.n_features_in_:
            raise DataError(f"expected {counted(self.n_features_in_, 'feature')} per timestep, got {X.shape[2]}")
        return X

    @contextlib.contextmanager
    def _inference(self):
        """No gradients, the network in eval mode, and on a GPU its LSTMs in full float32
        (`training.device.full_float32`): the same scores as on the CPU."""
        with torch.inference_mode(), full_float32(next(self.module_.parameters()).device):
            if self.module_.training:
                self.module_.eval()
            yield

    def _batches(self, X, batch_size: int = 512):
        """Inference batches of X as tensors on the model's device: (batch, lengths or None). Long work
        (more than PROGRESS_MIN_SAMPLES samples) shows a progress bar on stderr when `progress` is on and
        stderr is a terminal."""
        device = next(self.module_.parameters()).device
        transform = None if self._tokens else self.scaler_.transform
        batches = iterate_batches(X, np.arange(len(X)), batch_size, transform=transform, tokens=self._tokens)
        def tensors(batch, lengths):
            return (torch.from_numpy(batch).to(device, non_blocking=True),
                    None if lengths is None else torch.from_numpy(lengths))

        if not (self.progress and len(X) > PROGRESS_MIN_SAMPLES):  # no bar to make (a streaming row: one window)
            yield from (tensors(*pair) for pair in batches)
            return
        with tqdm(total=len(X), desc="scoring", unit="window", file=sys.stderr, leave=False, disable=None) as bar:
            for batch, lengths in batches:
                yield tensors(batch, lengths)
                bar.update(len(batch))

    @flush_denormals()
    def _map_samples(self, X, fn) -> list:
        """fn applied to the model's results, batch by batch: fn(x, x_hat) with scaled arrays
        (B, L, F), or for token models fn(cross_entropy, predicted_ids) with (B, L) each. For a
        list X, fn sees one sample at a time, cut to its length: (1, L_i, F) or (1, L_i)."""
        X = self._check_input(X)
        results = []
        with self._inference():
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

    def step_errors(self, X, feature_errors: bool = False):
        """The error model's vector of every step of every window: (N, L, D), each step scored as a
        window of one step; with `feature_errors` also the per-feature errors (N, L, F) in scaled units
        (kind: the training loss). What `how="point"` series scores average over the windows covering a row.
        Real-valued models with windows of the trained length only."""
        check_is_fitted(self, "error_model_")
        if self._tokens:
            raise DataError("per-step scores (how='point') are for real-valued series; token models score "
                            "whole sequences")

        def per_step(x, x_hat):
            n, length, n_features = x.shape
            with np.errstate(over="ignore", invalid="ignore"):
                vectors = self.error_model_.window_vectors(x.reshape(-1, 1, n_features),
                                                           x_hat.reshape(-1, 1, n_features))
                vectors = vectors.reshape(n, length, -1)
                if not feature_errors:
                    return vectors, None
                return vectors, reconstruction_errors(x, x_hat, per="none", kind=self.loss)

        lengths = [len(sample) for sample in X] if isinstance(X, (list, tuple)) else np.shape(X)[1:2]
        short = next((i for i, length in enumerate(lengths) if length != self.n_timesteps_), None)
        if short is not None:  # numpy's concatenate named no sequence
            which = f"sequence {short} has" if isinstance(X, (list, tuple)) else "the windows have"
            raise DataError(f"{which} {lengths[short]} steps; per-step scores are for windows of the trained length "
                            f"{self.n_timesteps_}")
        results = self._map_samples(X, per_step)
        vectors = np.concatenate([r[0] for r in results])
        return (vectors, np.concatenate([r[1] for r in results])) if feature_errors else vectors

    def _error_vectors(self, X, error_model=None) -> np.ndarray:
        """Per-sample error vectors (N, D) of the error model, computed batch by batch.

        Token models: the mean token cross-entropy (N, 1) for "mse"/"mae"; for "mahalanobis"
        the vector of token cross-entropies (as |X - X_hat| with X_hat = 0).
        """
        error_model = error_model or self.error_model_
        if not isinstance(error_model, MeanError):
            lengths = [len(sample) for sample in X] if isinstance(X, (list, tuple)) else np.shape(X)[1:2]
            for i, length in enumerate(lengths):
                if length != self.n_timesteps_:
                    raise DataError(f"sequence {i} has {length} steps; the {error_model.name} error model "
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


LSTMAutoencoder.__doc__ = LSTMAutoencoder.__doc__.replace(
    "PARAMETERS_HERE", "\n".join("    " + line for line in parameters_docstring().splitlines()))
_ERROR_MODEL_PREFIX = "error_model."
_CALIBRATION = "calibration."


def load(path, *, device: str = "cpu") -> LSTMAutoencoder:
    """Load a model directory written by `LSTMAutoencoder.save` (or `lstmae fit`): the network is rebuilt
    from config.json and its weights loaded strictly; raises ModelFileError with the reason otherwise."""
    from .persistence import read_model

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a model folder's path (str or pathlib.Path), got {type(path).__name__}")
    resolve_device(device)  # a bad or missing device is one line, before the model is read
    config, tensors = read_model(path)
    return LSTMAutoencoder.from_state(config, tensors, device=device, source=str(path))


def _is_duration(value) -> bool:
    """Whether `value` is text that pandas reads as a duration, such as '5min'."""
    if not isinstance(value, str):
        return False
    try:
        pd.Timedelta(value)
    except ValueError:
        return False
    return True


def _checked_data_settings(settings, source: str) -> dict:
    """The stored data settings (how the training file was read and windowed), or ModelFileError naming the
    first that scoring could not use."""
    def bad(key, what):
        raise ModelFileError(f"{source} is corrupt: its data setting {key!r} is {settings.get(key)!r}, not {what}")

    if not isinstance(settings, dict):
        raise ModelFileError(f"{source} is corrupt: its data settings are a {type(settings).__name__}, not a mapping")
    if settings.get("layout", "series") not in ("series", "sequences"):
        bad("layout", "'series' or 'sequences'")
    for key in ("window", "stride"):
        if settings.get(key) is not None and not is_integer(settings[key], 1):
            bad(key, "an integer >= 1")
    for key in ("time_column", "label_column", "entity_column"):
        if settings.get(key) is not None and not isinstance(settings[key], str):
            bad(key, "a column name")
    for key in ("columns", "timestep_columns"):
        columns = settings.get(key)
        if columns is not None and (not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)):
            bad(key, "a list of column names")
    max_gap = settings.get("max_gap")
    if max_gap is not None and not (is_number(max_gap) or _is_duration(max_gap)):
        bad("max_gap", "a number or a duration such as '5min'")
    if settings.get("nan_policy") not in (None, "error", *SERIES_NAN_POLICIES.split("|")):
        bad("nan_policy", f"one of error, {SERIES_NAN_POLICIES.replace('|', ', ')}")
    return settings


def _checked_calibration(name: str, tensor: torch.Tensor, source: str) -> np.ndarray:
    """A stored held-out score array (n,) as float64, or ModelFileError naming the tensor: every threshold
    rule is refitted on it."""
    if tensor.ndim != 1 or not len(tensor) or not tensor.is_floating_point() or not torch.isfinite(tensor).all():
        raise ModelFileError(f"{source} is corrupt: its held-out scores {name!r} are not a non-empty 1-D array of "
                             f"finite floats (shape {tuple(tensor.shape)}, {tensor.dtype}); refit the model")
    return tensor.numpy().astype(np.float64)


def _check_weights(architecture: Architecture, weights: dict, source: str) -> None:
    """Refuse weights that do not fit the architecture (names, shapes, float dtypes) before building it: a
    config that claims 20,000 units must not allocate gigabytes for a 6 KB weights file."""
    with torch.device("meta"):
        expected = LSTMAutoencoderModule(architecture).state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ModelFileError(f"{source} is corrupt or incomplete: the weights do not fit config.json's architecture "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, tensor in weights.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ModelFileError(f"{source} is corrupt or incomplete: weight {name!r} has shape {tuple(tensor.shape)}, "
                                 f"config.json's architecture needs {tuple(expected[name].shape)}")
        if not tensor.is_floating_point():
            raise ModelFileError(f"{source} is corrupt: weight {name!r} holds {tensor.dtype} values, not floats")
        if not torch.isfinite(tensor).all():
            raise ModelFileError(f"{source} is corrupt: weight {name!r} holds NaN or inf values; refit the model "
                                 "or restore its file")


def _jsonable(value):
    """Tuples -> lists, numpy scalars -> Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# encoding -> (module, x, lengths) -> (N, D) encodings (see `LSTMAutoencoder.transform`).
# True while lstmae.series.fit_series trains the network: the series-only parameters are read there.
SERIES_FIT = contextvars.ContextVar("lstmae_series_fit", default=False)

_ENCODERS = {
    "bottleneck": lambda module, x, lengths: module.encode(x, lengths),
    "mean": lambda module, x, lengths: module.encode_mean(x, lengths),
    "max": lambda module, x, lengths: module.encode_max(x, lengths),
    "pooled": lambda module, x, lengths: module.encode_pooled(x, lengths),
}


def _check_encoding(encoding) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")


def _collect(X, results: list, ragged: bool):
    """Per-batch (or, for a list X, per-sample) results as one array, or as a list of per-sample
    arrays when X is a list and the results have a time axis (`ragged`)."""
    if isinstance(X, (list, tuple)) and ragged:
        return [result[0] for result in results]
    return np.concatenate(results)


def _check_real_values(X, name: str) -> None:
    """DataError naming the sample, step and feature of the first value of X (an array (N, L, F) or a list of
    (L_i, F)) that is NaN, inf or beyond float32 (the network's precision). Checked before the scaler is fitted
    on X: one such value made every scaled sample NaN, and the first validation sample was blamed."""
    for i, sample in enumerate([X] if isinstance(X, np.ndarray) else X):
        values = np.asarray(sample)
        if values.dtype.kind != "f":  # integers are finite and within float32's range
            continue
        bad = np.isnan(values) | beyond_float32(values)
        if bad.any():
            where = tuple(int(k) for k in np.argwhere(bad)[0])
            index = where if isinstance(X, np.ndarray) else (i, *where)
            value = float(values[where])
            shown = "NaN" if np.isnan(value) else f"{value:g}"
            what = "beyond float32 (+-3.4e38)" if np.isfinite(value) else "not finite (NaN or inf)"
            raise DataError(f"{name} sample {index[0]}, step {index[1]}, feature {index[2]} is {shown}, {what}; "
                            "clean the data first (the CLI offers --nan-policy ffill|interpolate|drop)")


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
            raise DataError(f"sequence {i} has {counted(widths[i], 'feature')} per timestep, sequence 0 has "
                            f"{widths[0]}; give every sequence the same features")
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
    if scipy.sparse.issparse(X):
        raise TypeError("sparse input is not supported: LSTMAutoencoder reads dense windows (N, L, F); "
                        "pass X.toarray()")
    X = np.asarray(X)
    if X.dtype == object:
        try:
            X = X.astype(np.float64)
        except ValueError as err:
            raise DataError(f"expected numbers, got dtype object with values that are not numbers ({err})") from None
        except TypeError as err:
            raise TypeError(f"expected numbers in X: {err}") from None
    if X.ndim == 2:
        if X.shape[1] == 0:
            raise DataError(f"0 feature(s) (shape={X.shape}) while a minimum of 1 is required: expected windows "
                            "(N, L) of one feature with L >= 1")
        X = X[:, :, None]
    if X.ndim != 3:
        raise DataError(f"expected windows of shape (N, L, F) (or (N, L) for one feature), got shape {X.shape}; "
                        "Reshape your data: X[None] for one window, X[:, None] for N windows of one step")
    if 0 in X.shape:
        raise DataError(f"expected non-empty windows (N, L, F), got shape {X.shape}")
    if np.iscomplexobj(X):
        raise DataError("Complex data not supported: pass real numbers (e.g. X.real and X.imag as two features)")
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
