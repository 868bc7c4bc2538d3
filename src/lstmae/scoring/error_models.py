"""Error models: one anomaly score per window from its reconstruction error (higher = more anomalous).

Each model works in two steps so that callers can batch a long series:
`window_vectors(X, X_hat)` turns windows (N, L, F) into small error vectors E (N, D);
`fit_vectors(E)` / `score_vectors(E)` do the statistics. `fit(X, X_hat)` and
`score(X, X_hat)` chain the two for arrays that fit in memory.

- "mse", "mae" (`MeanError`): the mean squared / absolute error of the window. Needs no fit.
- "mahalanobis" (`MahalanobisError`): EncDec-AD (Malhotra et al. 2016): the squared
  Mahalanobis distance of the window's absolute-error vector from the errors of normal windows.
- "normalized" (`NormalizedError`): each feature's mean absolute error as a robust z-score
  (median and MAD of that feature's errors on normal windows), averaged over the features, so
  one noisy or high-variance feature does not swamp the others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.exceptions import NotFittedError

from lstmae.exceptions import DataError, ModelFileError
from lstmae.data.validation import check_integer, is_number
from lstmae.scoring.errors import check_same_shape, reconstruction_errors

ERROR_MODEL_NAMES = ("mse", "mae", "mahalanobis", "normalized")

# Rows of E scored at once by MahalanobisError: bounds the (rows, D) temporaries.
_SCORE_CHUNK_ELEMENTS = 1 << 20


def _check_vectors(E, n_dims: int | None = None) -> np.ndarray:
    """E as a finite float64 (N, D) array; D must equal n_dims when given."""
    E = np.asarray(E, dtype=np.float64)
    if E.ndim != 2:
        raise DataError(f"error vectors must be 2-D (N, D); got shape {E.shape}")
    if n_dims is not None and E.shape[1] != n_dims:
        raise DataError(
            f"error vectors have {E.shape[1]} dimensions but the error model was fitted on "
            f"{n_dims}; score windows of the same length and features as in training"
        )
    bad_rows = np.flatnonzero(~np.isfinite(E).all(axis=1))
    if bad_rows.size:
        raise DataError(
            f"reconstruction errors contain NaN/inf in {bad_rows.size} windows (first: window "
            f"{bad_rows[0]}); check the input for NaN/inf or retrain (the model may have diverged)"
        )
    return E


class ErrorModel(ABC):
    """Turns reconstruction errors into one anomaly score per window."""

    name: str
    # (F,) bool: the features the score is made of (None: all); only NormalizedError leaves some out
    scored: np.ndarray | None = None

    @property
    def spec(self) -> str:
        """The `error_model` name that `make_error_model` builds this model from."""
        return self.name

    @abstractmethod
    def window_vectors(self, X, X_hat) -> np.ndarray:
        """Error vectors E (N, D) of windows X and reconstructions X_hat (N, L, F)."""

    @abstractmethod
    def fit_vectors(self, E) -> ErrorModel:
        """Learn the model's statistics from error vectors E (N, D) of normal windows."""

    @abstractmethod
    def score_vectors(self, E) -> np.ndarray:
        """Scores (N,) float64 of error vectors E (N, D)."""

    @abstractmethod
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able config, named float arrays) from which `from_state` rebuilds the model."""

    @classmethod
    @abstractmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> ErrorModel:
        """Rebuild a model saved with `get_state`."""

    def fit(self, X, X_hat) -> ErrorModel:
        """Fit on normal windows X and their reconstructions X_hat (N, L, F)."""
        return self.fit_vectors(self.window_vectors(X, X_hat))

    def score(self, X, X_hat) -> np.ndarray:
        """Anomaly scores (N,) of windows X given reconstructions X_hat (N, L, F)."""
        return self.score_vectors(self.window_vectors(X, X_hat))


class MeanError(ErrorModel):
    """Score = mean squared (kind="mse") or absolute (kind="mae") error of the window."""

    def __init__(self, kind: str = "mse"):
        if kind not in ("mse", "mae"):
            raise DataError(f"unknown error kind {kind!r}; use mse or mae")
        self.name = kind

    def window_vectors(self, X, X_hat) -> np.ndarray:
        """The window's mean error as a (N, 1) array."""
        return reconstruction_errors(X, X_hat, per="sample", kind=self.name)[:, None]

    def fit_vectors(self, E) -> MeanError:
        """Nothing to learn; checks E."""
        _check_vectors(E, n_dims=1)
        return self

    def score_vectors(self, E) -> np.ndarray:
        return _check_vectors(E, n_dims=1)[:, 0]

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {"name": self.name}, {}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> MeanError:
        return cls(kind=config["name"])


class MahalanobisError(ErrorModel):
    """EncDec-AD score: (e - mu)^T Sigma^-1 (e - mu) of the window's absolute-error vector e.

    e is |X - X_hat| flattened over (L, F) when L*F <= max_dim; otherwise the per-timestep mean
    over features (an L vector), averaged over adjacent timesteps down to max_dim values when
    L > max_dim. mu and Sigma come from normal windows; Sigma is the Ledoit-Wolf shrunk
    covariance, so more dimensions than windows or constant errors never make it singular.
    """

    name = "mahalanobis"

    def __init__(self, max_dim: int = 512):
        self.max_dim = check_integer(max_dim, "max_dim")

    def window_vectors(self, X, X_hat) -> np.ndarray:
        """Absolute-error vectors (N, D), D = min(L*F, max_dim) as described in the class doc."""
        X, X_hat = np.asarray(X), np.asarray(X_hat)
        check_same_shape(X, X_hat)
        n_windows, length, n_features = X.shape
        absolute_errors = np.abs(X - X_hat)
        if length * n_features <= self.max_dim:
            return absolute_errors.reshape(n_windows, -1).astype(np.float64)
        per_timestep = absolute_errors.mean(axis=2, dtype=np.float64)
        if length <= self.max_dim:
            return per_timestep
        groups = np.array_split(per_timestep, self.max_dim, axis=1)
        return np.stack([group.mean(axis=1) for group in groups], axis=1)

    def fit_vectors(self, E) -> MahalanobisError:
        E = _check_vectors(E)
        if E.shape[0] < 2:
            raise DataError(
                f"the mahalanobis error model needs at least 2 normal windows to fit; got "
                f"{E.shape[0]}; give more validation data or use the mse error model"
            )
        estimator = LedoitWolf().fit(E)
        self.mean_ = estimator.location_
        self.precision_ = estimator.precision_
        self.shrinkage_ = float(estimator.shrinkage_)
        return self

    def score_vectors(self, E) -> np.ndarray:
        if not hasattr(self, "precision_"):
            raise NotFittedError("MahalanobisError is not fitted; call fit or fit_vectors first")
        E = _check_vectors(E, n_dims=self.mean_.shape[0])
        scores = np.empty(E.shape[0])
        chunk_rows = max(1, _SCORE_CHUNK_ELEMENTS // E.shape[1])
        for start in range(0, E.shape[0], chunk_rows):
            centred = E[start : start + chunk_rows] - self.mean_
            scores[start : start + chunk_rows] = np.sum((centred @ self.precision_) * centred, axis=1)
        return scores

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        if not hasattr(self, "precision_"):
            raise NotFittedError("MahalanobisError is not fitted; nothing to save")
        config = {"name": self.name, "max_dim": self.max_dim, "shrinkage": self.shrinkage_}
        return config, {"mean": self.mean_, "precision": self.precision_}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> MahalanobisError:
        mean, precision = arrays.get("mean"), arrays.get("precision")
        if mean is None or precision is None:
            raise ModelFileError(
                f"mahalanobis error model state needs arrays 'mean' and 'precision'; got "
                f"{sorted(arrays)}; the model files are incomplete: re-save the model"
            )
        if mean.ndim != 1 or precision.shape != (mean.shape[0], mean.shape[0]):
            raise ModelFileError(
                f"mahalanobis error model state has mean {mean.shape} and precision "
                f"{precision.shape}; expected (D,) and (D, D): the model files are corrupt"
            )
        model = cls(max_dim=config["max_dim"])
        model.mean_ = np.asarray(mean, dtype=np.float64)
        model.precision_ = np.asarray(precision, dtype=np.float64)
        model.shrinkage_ = float(config["shrinkage"])
        return model


class NormalizedError(ErrorModel):
    """Per-feature errors made comparable: the robust z-score of each feature's error, then one number.

    e_f is the mean absolute error of feature f over the window's L steps; on normal windows each
    feature's errors have a median m_f and a scale s_f = 1.4826 * MAD_f (the standard deviation
    for normal data). The score is the mean over features (``reduce="mean"``) or the largest
    (``reduce="max"``) of (e_f - m_f) / s_f. With one feature it ranks windows exactly as "mae".

    A feature the network reconstructs almost perfectly on normal data (a constant input, a one-hot
    flag that rarely switches, such as MSL's command columns) would have s_f ~ 0 and turn its first
    small error into an enormous z that swamps the feature where the anomaly is. No scale is
    therefore below `min_scale`, in the scaled units the errors are in (default 0.1: with the
    default standard scaler, a tenth of the feature's standard deviation on the training data).

    `scored`: (F,) bool, the features whose z-scores make the score (None: all). The estimator leaves
    out features that are 0/1 flags in training (`binary_features="context"`): they stay inputs of the
    network, as Telemanom predicts a channel from its command flags without scoring the flags.
    """

    name = "normalized"
    REDUCTIONS = ("mean", "max")

    def __init__(self, reduce: str = "mean", min_scale: float = 0.1, scored=None):
        if reduce not in self.REDUCTIONS:
            raise DataError(f"unknown reduce {reduce!r} for the normalized error model; use mean or max")
        if not is_number(min_scale) or not 0.0 < float(min_scale) < np.inf:
            raise DataError(f"min_scale must be a finite number > 0; got {min_scale!r}")
        if scored is not None:
            scored = np.asarray(scored, bool)
            if scored.ndim != 1 or not scored.any():
                raise DataError(f"scored must be a (F,) mask of the features to score, at least one True; got "
                                f"{scored.tolist()!r:.60}")
        self.reduce = reduce
        self.min_scale = float(min_scale)
        self.scored = scored

    @property
    def spec(self) -> str:
        return "normalized" if self.reduce == "mean" else "normalized-max"

    def window_vectors(self, X, X_hat) -> np.ndarray:
        """Per-feature mean absolute errors (N, F) of windows X and reconstructions X_hat (N, L, F)."""
        return reconstruction_errors(X, X_hat, per="feature", kind="mae")

    def fit_vectors(self, E) -> NormalizedError:
        """Learn each feature's median error and MAD scale (at least min_scale) from E (N, F) of normal windows."""
        E = _check_vectors(E)
        if E.shape[0] < 2:
            raise DataError(
                f"the normalized error model needs at least 2 normal windows to fit; got {E.shape[0]}; "
                "give more validation data or use the mae error model"
            )
        if self.scored is not None and self.scored.shape[0] != E.shape[1]:
            raise DataError(f"scored names {self.scored.shape[0]} features but the error vectors have {E.shape[1]}")
        self.median_ = np.median(E, axis=0)
        self.scale_ = np.maximum(1.4826 * np.median(np.abs(E - self.median_), axis=0), self.min_scale)
        return self

    def score_vectors(self, E) -> np.ndarray:
        if not hasattr(self, "scale_"):
            raise NotFittedError("NormalizedError is not fitted; call fit or fit_vectors first")
        E = _check_vectors(E, n_dims=self.median_.shape[0])
        z = (E - self.median_) / self.scale_
        if self.scored is not None:
            z = z[:, self.scored]
        return z.mean(axis=1) if self.reduce == "mean" else z.max(axis=1)

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        if not hasattr(self, "scale_"):
            raise NotFittedError("NormalizedError is not fitted; nothing to save")
        # the mask only when set: a model scoring every feature keeps the state (and fingerprint) it had
        return {"name": self.name, "reduce": self.reduce, "min_scale": self.min_scale}, {
            "median": self.median_, "scale": self.scale_,
            **({} if self.scored is None else {"scored": self.scored.astype(np.uint8)})}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> NormalizedError:
        median, scale = arrays.get("median"), arrays.get("scale")
        if median is None or scale is None:
            raise ModelFileError(
                f"normalized error model state needs arrays 'median' and 'scale'; got {sorted(arrays)}; "
                "the model files are incomplete: re-save the model"
            )
        median, scale = np.asarray(median, np.float64), np.asarray(scale, np.float64)
        if median.ndim != 1 or scale.shape != median.shape or not np.isfinite(median).all() \
                or not (np.isfinite(scale) & (scale > 0)).all():
            raise ModelFileError(
                f"normalized error model state has median {median.shape} and scale {scale.shape}; expected "
                "two (F,) arrays, finite, scales > 0: the model files are corrupt"
            )
        scored = arrays.get("scored")
        if scored is not None and (np.shape(scored) != median.shape or not np.isin(scored, (0, 1)).all()):
            raise ModelFileError(f"normalized error model state has a 'scored' mask of shape {np.shape(scored)} for "
                                 f"{median.shape[0]} features, or values other than 0/1: the model files are corrupt")
        try:
            # a model saved before min_scale (its "floor" was relative) refits, if recalibrated, with the default;
            # one saved before `scored` scores every feature
            model = cls(reduce=config.get("reduce", "mean"), min_scale=config.get("min_scale", 0.1),
                        scored=None if scored is None else np.asarray(scored).astype(bool))
        except DataError as err:
            raise ModelFileError(f"normalized error model state is corrupt: {err}") from None
        model.median_, model.scale_ = median, scale
        return model


def zero_one_features(samples, n_features: int) -> np.ndarray:
    """(F,) bool: the features whose values are all 0 or 1 in `samples`, an array (..., F) or a list of
    arrays (L_i, F) (read a chunk at a time: no copy of a long training set)."""
    binary = np.ones(n_features, bool)
    chunks = samples if isinstance(samples, list) else (samples[i:i + 1024] for i in range(0, len(samples), 1024))
    for chunk in chunks:
        values = np.asarray(chunk).reshape(-1, n_features)
        binary &= ((values == 0) | (values == 1)).all(axis=0)
    return binary


def scored_features(binary: np.ndarray) -> np.ndarray | None:
    """The `scored` mask of a normalized error model that keeps the 0/1 features `binary` (F,) as context:
    every other feature, or None (all) when none or all of them are 0/1."""
    return None if binary.all() or not binary.any() else ~binary


def make_error_model(name: str) -> ErrorModel:
    """A new, unfitted error model: "mse", "mae", "mahalanobis", "normalized" or "normalized-max" (the
    normalized model with reduce="max")."""
    if name in ("mse", "mae"):
        return MeanError(kind=name)
    if name == "mahalanobis":
        return MahalanobisError()
    if name == "normalized":
        return NormalizedError()
    if name == "normalized-max":
        return NormalizedError(reduce="max")
    raise DataError(f"unknown error model {name!r}; use one of {', '.join(ERROR_MODEL_NAMES)}, normalized-max")


def error_model_from_state(config: dict, arrays: dict[str, np.ndarray]) -> ErrorModel:
    """Rebuild any error model from `get_state` output, dispatching on config["name"]."""
    name = config.get("name")
    if name not in ERROR_MODEL_NAMES:
        raise ModelFileError(
            f"unknown error model {name!r} in the saved state; expected one of "
            f"{', '.join(ERROR_MODEL_NAMES)}: the model was saved by another lstmae version or is corrupt"
        )
    model_class = {"mahalanobis": MahalanobisError, "normalized": NormalizedError}.get(name, MeanError)
    return model_class.from_state(config, arrays)
