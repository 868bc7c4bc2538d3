"""Per-feature scaling learned on training data only (stored in the model artifact)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCALERS = ("standard", "minmax", "none")


@dataclass
class FeatureScaler:
    """x_scaled = (x - offset) / scale, per feature; (F,) each."""

    offset: np.ndarray
    scale: np.ndarray
    method: str = "standard"

    @classmethod
    def fit(cls, X: np.ndarray, method: str = "standard", chunk: int = 4096) -> "FeatureScaler":
        """Statistics over all samples and timesteps of X (N, L, F); constant features get scale 1.

        X may be a strided view of a long series: it is read in chunks of windows, never copied whole.
        """
        if method not in SCALERS:
            raise ValueError(f"scaler must be one of {SCALERS}, got {method!r}")
        n_features = X.shape[-1]
        total, total_sq = np.zeros(n_features), np.zeros(n_features)
        low, high = np.full(n_features, np.inf), np.full(n_features, -np.inf)
        for start in range(0, len(X), chunk):
            part = np.asarray(X[start : start + chunk], np.float64).reshape(-1, n_features)
            total += part.sum(axis=0)
            total_sq += np.square(part).sum(axis=0)
            low, high = np.minimum(low, part.min(axis=0)), np.maximum(high, part.max(axis=0))
        count = X.shape[0] * X.shape[1]
        if method == "standard":
            offset = total / count
            scale = np.sqrt(np.maximum(total_sq / count - offset**2, 0.0))
        elif method == "minmax":
            offset, scale = low, high - low
        else:
            offset, scale = np.zeros(n_features), np.ones(n_features)
        scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(offset)), scale, 1.0)
        return cls(offset, scale, method)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.offset) / self.scale).astype(np.float32)

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return (X * self.scale + self.offset).astype(np.float32)

    def to_dict(self) -> dict:
        return {"method": self.method, "offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureScaler":
        return cls(np.asarray(data["offset"], np.float64), np.asarray(data["scale"], np.float64), data["method"])

