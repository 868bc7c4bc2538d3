"""Reconstruction errors of windows `X` (N, L, F) and their reconstructions `X_hat` (N, L, F)."""

from __future__ import annotations

import numpy as np

from lstmae.exceptions import DataError

# Axes averaged away for each `per`: X is (N, L, F).
_REDUCED_AXES = {"sample": (1, 2), "timestep": (2,), "feature": (1,), "none": ()}
_KINDS = ("mse", "mae")


def check_same_shape(X: np.ndarray, X_hat: np.ndarray) -> None:
    """Raise DataError unless X and X_hat are both (N, L, F) with the same shape (no broadcasting)."""
    if X.ndim != 3 or X.shape != X_hat.shape:
        raise DataError(
            f"X and X_hat must have the same shape (N, L, F); got X {X.shape} and "
            f"X_hat {X_hat.shape}; pass the model's reconstruction of exactly these windows"
        )


def reconstruction_errors(X, X_hat, per: str = "sample", kind: str = "mse") -> np.ndarray:
    """Squared ("mse") or absolute ("mae") reconstruction error, averaged over the axes `per` drops.

    X, X_hat: (N, L, F) arrays of the same shape. Returns float64:
    per="sample" (N,), "timestep" (N, L), "feature" (N, F), "none" (N, L, F).
    """
    if per not in _REDUCED_AXES:
        raise DataError(f"unknown per={per!r}; use one of {', '.join(_REDUCED_AXES)}")
    if kind not in _KINDS:
        raise DataError(f"unknown error kind {kind!r}; use one of {', '.join(_KINDS)}")
    X, X_hat = np.asarray(X), np.asarray(X_hat)
    check_same_shape(X, X_hat)
    difference = X - X_hat
    pointwise = np.square(difference) if kind == "mse" else np.abs(difference)
    axes = _REDUCED_AXES[per]
    if not axes:
        return pointwise.astype(np.float64, copy=False)
    return np.mean(pointwise, axis=axes, dtype=np.float64)
