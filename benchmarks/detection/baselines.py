"""Simple baselines for the detection study, scored exactly like lstmae.

Each baseline learns from windows (N, L, F) of normal data, already standardised with the
training statistics, and gives one score per window (higher = more anomalous); the study
maps window scores to rows with the same rule as lstmae. The rolling z-score needs no
training and scores rows directly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest

# Flat stretches have a rolling std near 0; this floor (in training standard deviations)
# keeps a tiny wiggle there from scoring as an enormous z.
ZSCORE_STD_FLOOR = 0.1


class IsolationForestBaseline:
    """IsolationForest (100 trees) on flattened windows; score = minus sklearn's score_samples."""

    name = "isolation_forest"

    def __init__(self, random_state: int = 0):
        self.forest = IsolationForest(n_estimators=100, random_state=random_state)

    def fit(self, windows: np.ndarray) -> "IsolationForestBaseline":
        self.forest.fit(_flatten(windows))
        return self

    def score(self, windows: np.ndarray) -> np.ndarray:
        return -self.forest.score_samples(_flatten(windows))


class PCABaseline:
    """PCA keeping 90% of the variance of flattened windows; score = mean squared residual."""

    name = "pca"

    def __init__(self, variance: float = 0.9):
        self.pca = PCA(n_components=variance, svd_solver="full")

    def fit(self, windows: np.ndarray) -> "PCABaseline":
        with np.errstate(invalid="ignore", divide="ignore"):  # constant windows: 0/0 variance ratios
            self.pca.fit(_flatten(windows))
        return self

    def score(self, windows: np.ndarray) -> np.ndarray:
        flat = _flatten(windows)
        residual = flat - self.pca.inverse_transform(self.pca.transform(flat))
        return np.mean(residual**2, axis=1)


def make_window_baselines(seed: int) -> list:
    """Fresh, unfitted window baselines."""
    return [IsolationForestBaseline(random_state=seed), PCABaseline()]


def rolling_zscore(series: np.ndarray, window: int) -> np.ndarray:
    """Per-row score (T,) of a standardised series (T, F): the mean over features of z^2, where
    z = (x_t - mean) / max(std, floor) over the `window` rows before t. NaN for the first rows."""
    frame = pd.DataFrame(series)
    past = frame.shift(1).rolling(window, min_periods=window)
    z = (frame - past.mean()) / np.maximum(past.std(ddof=0), ZSCORE_STD_FLOOR)
    return (z**2).mean(axis=1, skipna=False).to_numpy()


def _flatten(windows: np.ndarray) -> np.ndarray:
    return np.asarray(windows, dtype=np.float64).reshape(len(windows), -1)
