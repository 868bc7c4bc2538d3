"""Reconstruction errors -> anomaly scores, thresholds, per-time-point scores and events.

numpy / scipy / scikit-learn only (no torch). Higher score = more anomalous; flag 1 = anomaly.
"""

from lstmae.scoring.error_models import (
    ERROR_MODEL_NAMES,
    ErrorModel,
    MahalanobisError,
    MeanError,
    error_model_from_state,
    make_error_model,
)
from lstmae.scoring.errors import reconstruction_errors
from lstmae.scoring.events import EVENT_COLUMNS, find_events
from lstmae.scoring.points import AGGREGATIONS, window_to_points
from lstmae.scoring.thresholds import (
    DEFAULT_THRESHOLD,
    ThresholdRule,
    apply_threshold,
    parse_threshold,
)

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_THRESHOLD",
    "ERROR_MODEL_NAMES",
    "EVENT_COLUMNS",
    "ErrorModel",
    "MahalanobisError",
    "MeanError",
    "ThresholdRule",
    "apply_threshold",
    "error_model_from_state",
    "find_events",
    "make_error_model",
    "parse_threshold",
    "reconstruction_errors",
    "window_to_points",
]
