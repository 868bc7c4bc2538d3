"""Metrics, figures and the HTML report for anomaly scores (numpy, scikit-learn, matplotlib).

Nothing here reads or writes files: plots return ``matplotlib.figure.Figure`` objects,
:func:`figure_png` turns one into PNG bytes, :func:`render_report` returns the HTML text.
"""

from lstmae.evaluation.metrics import (
    default_vus_window,
    detection_metrics,
    sequence_metrics,
    vus_pr,
    vus_window_from_period,
)
from lstmae.evaluation.plots import (
    figure_png,
    plot_alarms,
    plot_error_heatmap,
    plot_error_histogram,
    plot_pr_roc,
    plot_reconstruction,
    plot_scores,
    plot_training_history,
)
from lstmae.evaluation.report import METRIC_HELP, PLOT_HELP, render_report

__all__ = [
    "METRIC_HELP",
    "PLOT_HELP",
    "default_vus_window",
    "detection_metrics",
    "figure_png",
    "plot_alarms",
    "plot_error_heatmap",
    "plot_error_histogram",
    "plot_pr_roc",
    "plot_reconstruction",
    "plot_scores",
    "plot_training_history",
    "render_report",
    "sequence_metrics",
    "vus_pr",
    "vus_window_from_period",
]
