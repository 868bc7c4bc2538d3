"""Reconstruction errors -> anomaly scores, thresholds (static and adaptive), per-time-point
scores, alarms and events.

numpy / scipy / pandas / scikit-learn only (no torch). Higher score = more anomalous; flag 1 = anomaly.
"""

from lstmae.scoring.adaptive import DSPOT, AdaptiveThreshold, Telemanom, adaptive_from_state
from lstmae.scoring.alarms import (DEFAULT_ALARM, AlarmFilter, alarm_rules, alarms_from_flags, check_alarm_options,
                                   focus_alarms)
from lstmae.scoring.error_models import (
    ERROR_MODEL_NAMES,
    ErrorModel,
    MahalanobisError,
    MeanError,
    error_model_from_state,
    make_error_model,
)
from lstmae.scoring.errors import reconstruction_errors
from lstmae.scoring.events import EVENT_COLUMNS, find_events, flag_runs
from lstmae.scoring.points import AGGREGATIONS, covering_quantile, smooth_points, window_to_points
from lstmae.scoring.thresholds import (
    ThresholdRule,
    apply_threshold,
    default_threshold,
    parse_threshold,
    resolve_threshold,
)

__all__ = [
    "AGGREGATIONS",
    "AdaptiveThreshold",
    "AlarmFilter",
    "DEFAULT_ALARM",
    "DSPOT",
    "ERROR_MODEL_NAMES",
    "EVENT_COLUMNS",
    "ErrorModel",
    "MahalanobisError",
    "MeanError",
    "Telemanom",
    "ThresholdRule",
    "adaptive_from_state",
    "alarm_rules",
    "alarms_from_flags",
    "check_alarm_options",
    "covering_quantile",
    "apply_threshold",
    "default_threshold",
    "error_model_from_state",
    "find_events",
    "flag_runs",
    "focus_alarms",
    "make_error_model",
    "parse_threshold",
    "reconstruction_errors",
    "resolve_threshold",
    "smooth_points",
    "window_to_points",
]
