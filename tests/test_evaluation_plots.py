import matplotlib.pyplot as plt  # only to check that no pyplot figure is left open
import numpy as np
import pandas as pd
import pytest

from lstmae.evaluation import (
    plot_error_heatmap,
    plot_error_histogram,
    plot_pr_roc,
    plot_reconstruction,
    plot_scores,
    plot_training_history,
)
from lstmae.exceptions import DataError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, written):
    assert written == path
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 1000
    # IHDR width: the plots are meant to be 1200 px wide.
    assert int.from_bytes(data[16:20], "big") == 1200


@pytest.fixture(autouse=True)
def no_open_figures():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def series_case(n_rows=500, warm_up=20):
    rng = np.random.default_rng(0)
    labels = np.zeros(n_rows, int)
    labels[n_rows // 3 : n_rows // 3 + 30] = 1
    labels[-1] = 1  # a one-row event at the very end
    scores = rng.random(n_rows) + 2 * labels
    scores[:warm_up] = np.nan
    return scores, labels


def test_training_history_with_and_without_validation(tmp_path):
    history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.2, 0.6, 0.4]}
    assert_png(tmp_path / "a.png", plot_training_history(history, tmp_path / "a.png"))
    for no_val in ({"loss": [1.0, 0.5]}, {"loss": [1.0, 0.5], "val_loss": []}):
        assert_png(tmp_path / "b.png", plot_training_history(no_val, tmp_path / "b.png"))
    wide_range = {"loss": list(np.geomspace(100, 0.001, 20))}
    assert_png(tmp_path / "c.png", plot_training_history(wide_range, tmp_path / "c.png"))


def test_scores_plain_and_with_every_option(tmp_path):
    scores, labels = series_case()
    assert_png(tmp_path / "a.png", plot_scores(scores, 1.5, tmp_path / "a.png"))
    index = pd.date_range("2024-01-01", periods=len(scores), freq="h")
    valid = ~np.isnan(scores)
    written = plot_scores(
        scores, 1.5, tmp_path / "b.png", index=index, labels=labels, valid=valid, title="T"
    )
    assert_png(tmp_path / "b.png", written)


def test_scores_downsamples_long_series(tmp_path):
    scores, labels = series_case(n_rows=25_000)
    index = pd.date_range("2024-01-01", periods=len(scores), freq="min")
    written = plot_scores(scores, 1.5, tmp_path / "long.png", index=index, labels=labels)
    assert_png(tmp_path / "long.png", written)


def test_error_heatmap_plain_binned_and_named(tmp_path):
    rng = np.random.default_rng(1)
    errors = rng.random((300, 4))
    errors[:10] = np.nan
    assert_png(tmp_path / "a.png", plot_error_heatmap(errors, tmp_path / "a.png"))
    long_errors = rng.random((5_000, 3))
    index = pd.date_range("2024-01-01", periods=5_000, freq="min")
    written = plot_error_heatmap(
        long_errors, tmp_path / "b.png", feature_names=["temp", "flow", "rpm"], index=index
    )
    assert_png(tmp_path / "b.png", written)


def test_error_histogram_with_and_without_labels(tmp_path):
    scores, labels = series_case()
    assert_png(tmp_path / "a.png", plot_error_histogram(scores, 1.5, tmp_path / "a.png"))
    written = plot_error_histogram(scores, 1.5, tmp_path / "b.png", labels=labels)
    assert_png(tmp_path / "b.png", written)
    skewed = np.geomspace(1e-4, 10, 200)  # positive and over two decades: log bins
    assert_png(tmp_path / "c.png", plot_error_histogram(skewed, 1.0, tmp_path / "c.png"))


def test_pr_roc_two_classes_and_one_class(tmp_path):
    scores, labels = series_case()
    assert_png(tmp_path / "a.png", plot_pr_roc(labels, scores, tmp_path / "a.png"))
    only_normal = plot_pr_roc(np.zeros(50), np.arange(50.0), tmp_path / "b.png")
    assert_png(tmp_path / "b.png", only_normal)


def test_reconstruction_few_and_many_features(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 2))
    assert_png(tmp_path / "a.png", plot_reconstruction(x, x * 0.9, tmp_path / "a.png"))
    x = rng.normal(size=(40, 9))
    written = plot_reconstruction(
        x, x + rng.normal(size=x.shape), tmp_path / "b.png",
        feature_names=[f"s{i}" for i in range(9)], title="Worst window", max_features=4,
    )
    assert_png(tmp_path / "b.png", written)


def test_reconstruction_ranks_features_by_the_given_errors(tmp_path):
    from lstmae.evaluation.plots import features_by_error

    x = np.zeros((20, 3))
    x[:, 0] = 1000.0  # a large-valued sensor: 1 % off is a large raw error
    x_hat = x.copy()
    x_hat[:, 0] *= 0.99
    x_hat[:, 2] += 0.5
    raw = np.mean((x - x_hat) ** 2, axis=0)
    assert list(features_by_error(raw, 2)) == [0, 2]
    scaled = np.array([1e-4, 0.0, 0.25])  # the same errors in standardised units
    assert list(features_by_error(scaled, 2)) == [2, 0]
    assert_png(tmp_path / "r.png", plot_reconstruction(x, x_hat, tmp_path / "r.png", feature_errors=scaled))
    with pytest.raises(DataError, match=r"feature_errors must have shape \(3,\)"):
        plot_reconstruction(x, x_hat, tmp_path / "s.png", feature_errors=[1.0, 2.0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: plot_training_history({"loss": []}, p), r"history\['loss'\] is empty"),
        (lambda p: plot_scores(np.ones(5), 1, p, labels=np.ones(4)), r"labels must have shape"),
        (lambda p: plot_scores(np.ones(5), 1, p, index=range(3)), r"index must have 5"),
        (lambda p: plot_scores(np.ones((5, 2)), 1, p), r"scores must be 1-D"),
        (lambda p: plot_error_heatmap(np.ones(5), p), r"\(T, F\) array, got shape \(5,\)"),
        (lambda p: plot_error_heatmap(np.ones((5, 2)), p, feature_names=["a"]),
         r"1 names for 2 features"),
        (lambda p: plot_error_histogram(np.full(4, np.nan), 1, p), r"all NaN"),
        (lambda p: plot_pr_roc([0, 1], [0.1, 0.2, 0.3], p), r"y_true must have shape \(3,\)"),
        (lambda p: plot_reconstruction(np.ones((5, 2)), np.ones((5, 3)), p),
         r"same shape, got \(5, 2\) and \(5, 3\)"),
        (lambda p: plot_reconstruction(np.ones((5, 2)), np.ones((5, 2)), p, max_features=0),
         r"max_features must be >= 1"),
    ],
)
def test_bad_input_raises_data_error_and_writes_nothing(tmp_path, call, message):
    with pytest.raises(DataError, match=message):
        call(tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
