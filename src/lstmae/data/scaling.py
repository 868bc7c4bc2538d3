"""Per-feature scaling learned on training data only (stored in the model artifact)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstmae.exceptions import ModelFileError

SCALERS = ("standard", "minmax", "none")

#: A feature whose spread (std for "standard", max - min for "minmax") is at most this
#: fraction of its magnitude, max(|min|, |max|), counts as constant (all zeros too).
#: float32 data carries ~7 significant digits, so a smaller spread is rounding noise. Relative
#: only: a feature measured in units that make its values tiny (1e-7) is not constant.
CONSTANT_TOLERANCE = 1e-6


@dataclass
class FeatureScaler:
    """x_scaled = (x - offset) / scale, per feature; (F,) each.

    constant: (F,) bool, True for features that were constant in the training data. They
    get scale 1, so a change of such a feature at scoring time shows in original units
    instead of being multiplied by the inverse of a spread that is only rounding noise.
    """

    offset: np.ndarray
    scale: np.ndarray
    method: str = "standard"
    constant: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        if self.constant is None:
            self.constant = np.zeros(np.shape(self.scale), dtype=bool)
        self.constant = np.asarray(self.constant, dtype=bool)

    @classmethod
    def fit(cls, X: np.ndarray, method: str = "standard", chunk: int = 4096) -> "FeatureScaler":
        """Statistics over all samples and timesteps of X (N, L, F); constant features get scale 1.

        X may be a strided view of a long series: it is read in chunks of windows, never copied
        whole. The variance is computed in two passes per chunk (mean, then squared deviations)
        and the chunks merged with Chan et al.'s pairwise update, so a feature with a large mean
        and a tiny spread keeps its spread exactly (E[x^2] - E[x]^2 cancels to noise there).
        """
        if method not in SCALERS:
            raise ValueError(f"scaler must be one of {SCALERS}, got {method!r}")
        n_features = X.shape[-1]
        count = 0
        mean, m2 = np.zeros(n_features), np.zeros(n_features)
        low, high = np.full(n_features, np.inf), np.full(n_features, -np.inf)
        for start in range(0, len(X), chunk):
            part = np.asarray(X[start : start + chunk], np.float64).reshape(-1, n_features)
            if len(part) == 0:
                continue
            part_mean = part.mean(axis=0)
            part_m2 = np.square(part - part_mean).sum(axis=0)
            total = count + len(part)
            delta = part_mean - mean
            mean = mean + delta * (len(part) / total)
            m2 = m2 + part_m2 + np.square(delta) * (count * len(part) / total)
            count = total
            low, high = np.minimum(low, part.min(axis=0)), np.maximum(high, part.max(axis=0))
        if count == 0:
            raise ValueError("cannot fit a scaler on no data: X has no timesteps")

        std = np.sqrt(np.maximum(m2 / count, 0.0))
        spread = high - low
        magnitude = np.maximum(np.abs(low), np.abs(high))
        constant = (spread if method == "minmax" else std) <= CONSTANT_TOLERANCE * magnitude
        if method == "standard":
            offset, scale = mean, std
        elif method == "minmax":
            offset, scale = low, spread
        else:
            offset, scale = np.zeros(n_features), np.ones(n_features)
        scale = np.where(constant, 1.0, scale)
        return cls(offset, scale, method, constant)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.offset) / self.scale).astype(np.float32)

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return (X * self.scale + self.offset).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "offset": self.offset.tolist(),
            "scale": self.scale.tolist(),
            "constant": self.constant.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureScaler":
        """The scaler of `to_dict`; raises ModelFileError for anything it could not have written.

        A dict without "constant" (written before it existed) loads with no feature marked
        constant.
        """
        if not isinstance(data, dict):
            raise ModelFileError(f"corrupt model: the scaler is {type(data).__name__}, not a mapping")
        method = data.get("method")
        if method not in SCALERS:
            raise ModelFileError(f"corrupt model: scaler method {method!r} is not one of {', '.join(SCALERS)}")
        try:
            offset = np.asarray(data["offset"], dtype=np.float64)
            scale = np.asarray(data["scale"], dtype=np.float64)
            constant = data.get("constant")
            constant = None if constant is None else np.asarray(constant)
        except KeyError as error:
            raise ModelFileError(f"corrupt model: the scaler has no {error.args[0]!r}") from error
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"corrupt model: scaler statistics are not lists of numbers ({error})") from error
        if offset.ndim != 1 or scale.shape != offset.shape:
            raise ModelFileError(
                f"corrupt model: scaler offset has shape {offset.shape} and scale {scale.shape}; "
                "expected one number per feature in each"
            )
        if constant is not None and (constant.shape != offset.shape or constant.dtype != bool):
            raise ModelFileError(
                f"corrupt model: scaler 'constant' must be {offset.shape[0]} true/false values, "
                f"got {constant.tolist()!r}"
            )
        # Within float32, which the model computes in: an offset past its range or a scale under its smallest
        # normal number turned every value scored into inf, blamed on the data.
        float32 = np.finfo(np.float32)
        bad_scale = ~np.isfinite(scale) | (scale < float32.tiny) | (scale > float32.max)
        if bad_scale.any():
            j = int(np.flatnonzero(bad_scale)[0])
            raise ModelFileError(
                f"corrupt model: scaler scale of feature {j + 1} is {float(scale[j])!r}; "
                f"scales must be finite and positive, within float32 ({float32.tiny:.3g} to {float32.max:.3g}) "
                "(refit the model)"
            )
        bad_offset = ~np.isfinite(offset) | (np.abs(offset) > float32.max)
        if bad_offset.any():
            j = int(np.flatnonzero(bad_offset)[0])
            raise ModelFileError(
                f"corrupt model: scaler offset of feature {j + 1} is {float(offset[j])!r}; "
                f"offsets must be finite, within float32 (+-{float32.max:.3g}) (refit the model)"
            )
        return cls(offset, scale, method, constant)
