"""Metrics, plots and the HTML report for anomaly scores (numpy, scikit-learn, matplotlib)."""

from lstmae.evaluation.metrics import (
    default_vus_max_buffer,
    detection_metrics,
    sequence_metrics,
    vus_pr,
)
from lstmae.evaluation.plots import (
    plot_error_heatmap,
    plot_error_histogram,
    plot_pr_roc,
    plot_reconstruction,
    plot_scores,
    plot_training_history,
)
from lstmae.evaluation.report import write_report

__all__ = [
    "default_vus_max_buffer",
    "detection_metrics",
    "plot_error_heatmap",
    "plot_error_histogram",
    "plot_pr_roc",
    "plot_reconstruction",
    "plot_scores",
    "plot_training_history",
    "sequence_metrics",
    "vus_pr",
    "write_report",
]
