from concurrent.futures import ThreadPoolExecutor

import matplotlib.pyplot as plt  # only to check that no pyplot figure is left open
import numpy as np
import pandas as pd
import pytest
from matplotlib.dates import ConciseDateFormatter, num2date
from matplotlib.figure import Figure

from lstmae.evaluation import (
    figure_png,
    plot_alarms,
    plot_error_heatmap,
    plot_error_histogram,
    plot_pr_roc,
    plot_reconstruction,
    plot_scores,
    plot_training_history,
)
from lstmae.evaluation.plots import features_by_error
from lstmae.exceptions import DataError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_width(data: bytes) -> int:
    assert data.startswith(PNG_SIGNATURE)
    return int.from_bytes(data[16:20], "big")  # IHDR width


@pytest.fixture(autouse=True)
def no_pyplot_figures_and_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before
    assert list(tmp_path.iterdir()) == []  # nothing here writes a file


def series_case(n_rows=500, warm_up=20):
    rng = np.random.default_rng(0)
    labels = np.zeros(n_rows, int)
    labels[n_rows // 3 : n_rows // 3 + 30] = 1
    labels[-1] = 1  # a one-row event at the very end
    scores = rng.random(n_rows) + 2 * labels
    scores[:warm_up] = np.nan
    return scores, labels


def legend_texts(ax_or_fig) -> list[str]:
    if isinstance(ax_or_fig, Figure):
        (legend,) = ax_or_fig.legends
    else:
        legend = ax_or_fig.get_legend()
    return [] if legend is None else [text.get_text() for text in legend.get_texts()]


def filled_x_ranges(collection) -> list[tuple[float, float]]:
    """(min x, max x) of each polygon a fill_between drew, sorted."""
    return sorted(
        (path.vertices[:, 0].min(), path.vertices[:, 0].max()) for path in collection.get_paths()
    )


def test_figure_png_renders_1200_px_wide_png_bytes():
    fig = plot_training_history({"loss": [1.0, 0.5]})
    data = figure_png(fig)
    assert isinstance(data, bytes) and len(data) > 1000
    assert png_width(data) == 1200
    with pytest.raises(TypeError, match="takes a matplotlib Figure, got str"):
        figure_png("plot.png")


def test_figures_render_the_same_from_several_threads():
    scores, labels = series_case()
    figures = [plot_scores(scores, 1.0 + 0.1 * i, labels=labels) for i in range(4)]
    serial = [figure_png(fig) for fig in figures]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(figure_png, figures))
    assert parallel == serial


def test_training_history_with_and_without_validation():
    fig = plot_training_history({"loss": [1.0, 0.5, 0.3], "val_loss": [1.2, 0.6, 0.4]})
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert legend_texts(ax) == ["training loss", "validation loss"]
    assert ax.get_yscale() == "linear"
    for no_val in ({"loss": [1.0, 0.5]}, {"loss": [1.0, 0.5], "val_loss": []}):
        assert len(plot_training_history(no_val).axes[0].get_lines()) == 1
    wide_range = {"loss": list(np.geomspace(100, 0.001, 20))}
    assert plot_training_history(wide_range).axes[0].get_yscale() == "log"


def test_scores_with_one_threshold_flags_rows_above_it():
    scores, labels = series_case()
    fig = plot_scores(scores, 1.5, labels=labels, title="T")
    (ax,) = fig.axes
    assert ax.get_title() == "T"
    score_line, threshold_line = ax.get_lines()
    assert list(threshold_line.get_ydata()) == [1.5, 1.5]  # axhline
    (flagged,) = [c for c in ax.collections if c.get_label().startswith("above the threshold")]
    assert len(flagged.get_offsets()) == int(np.sum(scores > 1.5))
    assert f"above the threshold ({int(np.sum(scores > 1.5))} rows)" in legend_texts(fig)
    assert "labelled anomaly" in legend_texts(fig)


def test_scores_with_a_threshold_per_row_draw_it_and_flag_against_it():
    scores = np.array([0.5, 0.5, 0.5, 0.5, 2.0, 2.0])
    thresholds = np.array([np.nan, 0.4, 0.6, 0.6, 1.0, 3.0])  # adaptive, undefined at first
    fig = plot_scores(scores, thresholds)
    (ax,) = fig.axes
    threshold_line = ax.get_lines()[1]
    np.testing.assert_array_equal(threshold_line.get_ydata(), thresholds)
    assert "threshold per row (0.4 to 3)" in legend_texts(fig)
    (flagged,) = [c for c in ax.collections if c.get_label().startswith("above the threshold")]
    np.testing.assert_array_equal(flagged.get_offsets()[:, 0], [1, 4])  # rows above their own


def test_scores_index_valid_and_dates():
    scores, labels = series_case()
    index = pd.date_range("2024-01-01", periods=len(scores), freq="h")
    valid = np.ones(len(scores), bool)
    valid[:50] = False
    fig = plot_scores(scores, 1.5, index=index, labels=labels, valid=valid)
    ax = fig.axes[0]
    assert np.isnan(ax.get_lines()[0].get_ydata()[:50]).all()
    assert isinstance(ax.xaxis.get_major_formatter(), ConciseDateFormatter)
    assert ax.get_xlabel() == "time"


def test_scores_downsample_long_series_and_keep_a_spike():
    scores, labels = series_case(n_rows=25_000)
    scores[12_345] = 50.0
    thresholds = np.full(len(scores), 1.5)
    fig = plot_scores(scores, thresholds, labels=labels)
    ax = fig.axes[0]
    assert "max of every 3 rows" in ax.get_title()
    score_line = ax.get_lines()[0]
    assert len(score_line.get_ydata()) <= 10_000
    assert np.nanmax(score_line.get_ydata()) == 50.0


def test_alarms_draw_one_panel_per_feature_and_a_lane_strip():
    n_rows = 300
    index = pd.date_range("2024-05-01", periods=n_rows, freq="min")
    values = np.random.default_rng(0).normal(size=(n_rows, 3))
    alarms = np.zeros(n_rows, int)
    alarms[100:110] = 1
    alarms[200] = 1
    labels = np.zeros(n_rows, int)
    labels[95:120] = 1
    fig = plot_alarms(values, index, alarms, labels, ["temp", "flow", "rpm"])
    assert isinstance(fig, Figure)
    *panels, strip = fig.axes
    assert [ax.get_ylabel() for ax in panels] == ["temp", "flow", "rpm"]
    assert [t.get_text() for t in strip.get_yticklabels()] == ["labelled", "alarms"]
    assert legend_texts(fig) == ["alarms (2 runs)", "labelled (1 range)"]
    assert isinstance(strip.xaxis.get_major_formatter(), ConciseDateFormatter)
    # The alarm lane fills rows 100..109 up to the next row's time, and the one-row alarm.
    label_lane, alarm_lane = strip.collections
    starts_and_ends = [(num2date(a).replace(tzinfo=None), num2date(b).replace(tzinfo=None))
                       for a, b in filled_x_ranges(alarm_lane)]
    assert starts_and_ends[0] == (index[100], index[110])
    assert starts_and_ends[1] == (index[200], index[201])
    assert [(num2date(a).replace(tzinfo=None), num2date(b).replace(tzinfo=None))
            for a, b in filled_x_ranges(label_lane)] == [(index[95], index[120])]
    for ax in panels:  # the alarm bands are shaded on every panel too
        assert len(ax.collections) == 1


def test_alarms_one_feature_no_labels_no_alarms():
    fig = plot_alarms(np.arange(50.0), None, np.zeros(50), None)
    panel, strip = fig.axes
    assert panel.get_ylabel() == "value"
    assert [t.get_text() for t in strip.get_yticklabels()] == ["alarms"]
    assert legend_texts(fig) == ["alarms (0 runs)"]
    assert len(strip.collections) == 0 and len(panel.collections) == 0
    assert strip.get_xlabel() == "row"


def test_alarms_show_at_most_max_features_ranked_by_error():
    values = np.zeros((40, 9))
    names = [f"s{i}" for i in range(9)]
    alarms = np.zeros(40)
    fig = plot_alarms(values, None, alarms, None, names, max_features=3)
    assert [ax.get_ylabel() for ax in fig.axes[:-1]] == ["s0", "s1", "s2"]
    assert "3 of 9 features, the first ones" in fig._suptitle.get_text()
    errors = np.arange(9.0)
    fig = plot_alarms(values, None, alarms, None, names, max_features=2, feature_errors=errors)
    assert [ax.get_ylabel() for ax in fig.axes[:-1]] == ["s8", "s7"]
    assert "largest error first" in fig._suptitle.get_text()


def test_alarms_downsample_long_series_and_keep_single_rows():
    n_rows = 50_000
    values = np.zeros(n_rows)
    values[33_333] = 9.0
    alarms = np.zeros(n_rows, int)
    alarms[40_001] = 1  # one row: its bin is shaded
    fig = plot_alarms(values, None, alarms, None)
    panel, strip = fig.axes
    line = panel.get_lines()[0]
    assert len(line.get_ydata()) == 2 * 10_000  # min and max of each bin
    assert line.get_ydata().max() == 9.0
    ((start, end),) = filled_x_ranges(strip.collections[0])
    assert start <= 40_001 <= end and end - start <= 10
    assert f"{n_rows} rows in 10000 bins" in fig._suptitle.get_text()


def test_error_heatmap_plain_binned_and_named():
    rng = np.random.default_rng(1)
    errors = rng.random((300, 4))
    errors[:10] = np.nan
    fig = plot_error_heatmap(errors)
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    assert fig.axes[0].get_images()[0].get_array().shape == (4, 300)
    index = pd.date_range("2024-01-01", periods=5_000, freq="min")
    fig = plot_error_heatmap(rng.random((5_000, 3)), feature_names=["temp", "flow", "rpm"],
                             index=index)
    ax = fig.axes[0]
    assert ax.get_images()[0].get_array().shape == (3, 1_667)  # bins of 3 rows
    assert [t.get_text() for t in ax.get_yticklabels()] == ["temp", "flow", "rpm"]
    assert ax.get_xticklabels()[0].get_text() == "2024-01-01 00:00"


def test_error_histogram_groups_and_threshold_kinds():
    scores, labels = series_case()
    (ax,) = plot_error_histogram(scores, 1.5).axes
    assert legend_texts(ax) == ["all (n=480)", "threshold = 1.5"]
    (ax,) = plot_error_histogram(scores, 1.5, labels=labels).axes
    assert legend_texts(ax)[:2] == ["normal (n=449)", "anomalous (n=31)"]
    per_row = np.linspace(1.0, 2.0, len(scores))
    (ax,) = plot_error_histogram(scores, per_row).axes
    assert "threshold range (1 to 2)" in legend_texts(ax)
    (ax,) = plot_error_histogram(scores, None).axes
    assert not any("threshold" in text for text in legend_texts(ax))
    skewed = np.geomspace(1e-4, 10, 200)  # positive and over two decades: log bins
    assert plot_error_histogram(skewed, 1.0).axes[0].get_xscale() == "log"


def test_pr_roc_two_classes_and_one_class():
    scores, labels = series_case()
    fig = plot_pr_roc(labels, scores)
    assert [ax.get_title() for ax in fig.axes] == ["Precision-recall", "ROC"]
    only_normal = plot_pr_roc(np.zeros(50), np.arange(50.0))
    assert only_normal.axes == []
    assert "only class 0" in only_normal.texts[0].get_text()


def test_reconstruction_on_the_window_own_time_axis():
    rng = np.random.default_rng(2)
    window = rng.normal(size=(40, 2))
    index = pd.date_range("2024-02-03 10:00", periods=40, freq="15s")
    fig = plot_reconstruction(window, window * 0.9, index=index, title="event 3 at 10:05")
    assert fig._suptitle.get_text() == "event 3 at 10:05"
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time"
    assert pd.Timestamp(num2date(ax.get_lines()[0].get_xdata(orig=False)[0])).tz_localize(None) == index[0]
    assert isinstance(ax.xaxis.get_major_formatter(), ConciseDateFormatter)
    fig = plot_reconstruction(window, window * 0.9)
    assert fig.axes[0].get_xlabel() == "timestep"
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == list(range(40))


def test_reconstruction_many_features_shows_the_worst():
    rng = np.random.default_rng(2)
    window = rng.normal(size=(40, 9))
    x_hat = window.copy()
    x_hat[:, 7] += 3.0
    x_hat[:, 2] += 1.0
    fig = plot_reconstruction(window, x_hat, feature_names=[f"s{i}" for i in range(9)],
                              title="Worst window", max_features=4)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4
    assert visible[0].get_title().startswith("s7") and visible[1].get_title().startswith("s2")
    assert fig._suptitle.get_text() == "Worst window (4 of 9 features, largest error first)"


def test_reconstruction_ranks_features_by_the_given_errors():
    x = np.zeros((20, 3))
    x[:, 0] = 1000.0  # a large-valued sensor: 1 % off is a large raw error
    x_hat = x.copy()
    x_hat[:, 0] *= 0.99
    x_hat[:, 2] += 0.5
    raw = np.mean((x - x_hat) ** 2, axis=0)
    assert list(features_by_error(raw, 2)) == [0, 2]
    scaled = np.array([1e-4, 0.0, 0.25])  # the same errors in standardised units
    assert list(features_by_error(scaled, 2)) == [2, 0]
    fig = plot_reconstruction(x, x_hat, feature_errors=scaled, max_features=1)
    assert fig.axes[0].get_title() == "feature 2 (error 0.25)"


ONES = np.ones(5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plot_training_history({"loss": []}), r"history\['loss'\] is empty"),
        (lambda: plot_scores(ONES, 1, labels=np.ones(4)), r"labels must have shape \(5,\)"),
        (lambda: plot_scores(ONES, 1, labels=[0, 1, 2, 0, 0]), r"labels must be 0/1, got 2 at row 2"),
        (lambda: plot_scores(ONES, 1, index=range(3)), r"index must have 5"),
        (lambda: plot_scores(np.ones((5, 2)), 1), r"scores must be 1-D"),
        (lambda: plot_scores(ONES, np.ones(4)), r"threshold must be a number or have shape \(5,\)"),
        (lambda: plot_scores(ONES, np.full(5, np.nan)), r"threshold is NaN on every row"),
        (lambda: plot_scores(ONES, float("nan")), r"threshold must be a finite number"),
        (lambda: plot_scores(ONES, "high"), r"threshold must be a finite number"),
        (lambda: plot_alarms(np.ones((0, 2)), None, [], None), r"non-empty \(T, F\) or \(T,\)"),
        (lambda: plot_alarms(np.ones((5, 2, 1)), None, ONES, None), r"got shape \(5, 2, 1\)"),
        (lambda: plot_alarms(ONES, None, [0, 1, 0.5, 0, 0]), r"alarms must be 0/1, got 0.5 at row 2"),
        (lambda: plot_alarms(ONES, None, np.zeros(4)), r"alarms must have shape \(5,\)"),
        (lambda: plot_alarms(ONES, None, np.zeros(5), [0, 0, 0, 0, np.nan]),
         r"labels must be 0/1, got nan at row 4"),
        (lambda: plot_alarms(ONES, range(4), np.zeros(5)), r"index must have 5"),
        (lambda: plot_alarms(np.ones((5, 2)), None, np.zeros(5), None, ["a"]),
         r"1 names for 2 features"),
        (lambda: plot_alarms(ONES, None, np.zeros(5), max_features=0), r"max_features must be"),
        (lambda: plot_alarms(np.ones((5, 2)), None, np.zeros(5), feature_errors=[1.0]),
         r"feature_errors must have shape \(2,\)"),
        (lambda: plot_error_heatmap(ONES), r"\(T, F\) array, got shape \(5,\)"),
        (lambda: plot_error_heatmap(np.ones((5, 2)), feature_names=["a"]),
         r"1 names for 2 features"),
        (lambda: plot_error_histogram(np.full(4, np.nan), 1), r"all NaN"),
        (lambda: plot_error_histogram(ONES, np.ones(3)), r"threshold must be a number or have"),
        (lambda: plot_pr_roc([0, 1], [0.1, 0.2, 0.3]), r"y_true must have shape \(3,\)"),
        (lambda: plot_reconstruction(np.ones((5, 2)), np.ones((5, 3))),
         r"same shape, got \(5, 2\) and \(5, 3\)"),
        (lambda: plot_reconstruction(np.ones((5, 2)), np.ones((5, 2)), max_features=0),
         r"max_features must be an integer >= 1"),
        (lambda: plot_reconstruction(np.ones((5, 2)), np.ones((5, 2)), index=range(4)),
         r"index must have 5"),
        (lambda: plot_reconstruction(np.ones((5, 3)), np.ones((5, 3)), feature_errors=[1.0, 2.0]),
         r"feature_errors must have shape \(3,\)"),
    ],
)
def test_bad_input_raises_data_error(call, message):
    with pytest.raises(DataError, match=message):
        call()
