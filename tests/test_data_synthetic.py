"""The built-in demo data sets."""

import time

import numpy as np
import pandas as pd
import pytest

from lstmae.data.synthetic import make_sensor_data, make_sequence_data
from lstmae.exceptions import DataError


def event_runs(labels):
    """(start, length) of each run of 1s."""
    edges = np.diff(np.concatenate([[0], labels, [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts, ends - starts))


def test_sensor_data_layout():
    frame = make_sensor_data()
    assert frame.shape == (6000, 10)
    assert frame.columns.tolist() == [
        "timestamp", "temperature", "pressure", "flow", "vibration",
        "current", "rpm", "humidity", "power", "label",
    ]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2026-01-01")
    assert (frame["timestamp"].diff().iloc[1:] == pd.Timedelta(minutes=1)).all()
    sensors = frame.columns[1:-1]
    assert all(pd.api.types.is_float_dtype(frame[name]) for name in sensors)
    assert np.isfinite(frame[sensors].to_numpy()).all()
    assert set(np.unique(frame["label"])) == {0, 1}


def test_sensor_data_is_deterministic_for_a_seed():
    pd.testing.assert_frame_equal(make_sensor_data(seed=3), make_sensor_data(seed=3))
    assert not make_sensor_data(seed=3).equals(make_sensor_data(seed=4))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sensor_events_are_rare_short_and_late(seed):
    frame = make_sensor_data(seed=seed)
    labels = frame["label"].to_numpy()
    runs = event_runs(labels)
    assert len(runs) == 6
    assert 0.02 <= labels.mean() <= 0.04
    assert all(20 <= length <= 80 for _, length in runs)
    assert all(start - 10 >= len(frame) // 2 for start, _ in runs)  # precursor included
    assert labels[: int(0.4 * len(frame))].sum() == 0


def test_sensor_features_share_latent_signals():
    sensors = make_sensor_data().iloc[:2400, 1:-1]
    correlations = np.corrcoef(sensors.to_numpy(), rowvar=False)
    off_diagonal = np.abs(correlations[~np.eye(len(correlations), dtype=bool)])
    assert off_diagonal.max() > 0.5  # related sensors move together


def test_sensor_events_change_the_signals():
    frame = make_sensor_data(seed=5)
    quiet = make_sensor_data(seed=5, n_events=0)
    labels = frame["label"].to_numpy().astype(bool)
    sensors = frame.columns[1:-1]
    spread = frame.loc[:2399, sensors].std()
    change = ((frame[sensors] - quiet[sensors]).abs() / spread).max(axis=1).to_numpy()
    touched = np.zeros(len(frame), dtype=bool)
    for start, length in event_runs(labels):
        during = change[start : start + length].mean()
        precursor = change[start - 10 : start].mean()
        assert during > 0.5
        assert 0 < precursor < during  # a subtle early warning
        touched[start - 10 : start + length] = True
    assert change[~touched].max() == 0


def test_sensor_data_more_and_fewer_features():
    wide = make_sensor_data(n_steps=3000, n_features=10, n_events=3)
    assert wide.columns[-3:].tolist() == ["sensor_9", "sensor_10", "label"]
    narrow = make_sensor_data(n_steps=3000, n_features=2, n_events=3)
    assert narrow.columns.tolist() == ["timestamp", "temperature", "pressure", "label"]
    assert len(event_runs(narrow["label"].to_numpy())) == 3


def test_sensor_data_bad_parameters():
    with pytest.raises(DataError, match="n_steps=1000 is too short for 6 events"):
        make_sensor_data(n_steps=1000)
    with pytest.raises(DataError, match="need n_steps >= 1, n_features >= 1"):
        make_sensor_data(n_features=0)


def test_sensor_data_is_fast():
    started = time.perf_counter()
    make_sensor_data()
    assert time.perf_counter() - started < 0.5


def test_sequence_data_shapes_labels_and_determinism():
    X, y = make_sequence_data()
    assert X.shape == (600, 60, 1) and X.dtype == np.float32
    assert y.shape == (600,) and np.issubdtype(y.dtype, np.integer)
    assert set(np.unique(y)) == {0, 1}
    assert y.sum() == 60
    X_again, y_again = make_sequence_data()
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
    assert not np.array_equal(make_sequence_data(seed=1)[0], X)
    assert make_sequence_data(n=50, length=140)[0].shape == (50, 140, 1)


def test_sequence_anomalies_differ_from_the_normal_shape():
    X, y = make_sequence_data()
    beats = X[:, :, 0]
    normal_mean = beats[y == 0].mean(axis=0)
    distance = np.linalg.norm(beats - normal_mean, axis=1)
    assert np.median(distance[y == 1]) > 2 * np.median(distance[y == 0])


def test_sequence_data_bad_parameters():
    with pytest.raises(DataError, match="need n >= 1 and length >= 8; got n=0"):
        make_sequence_data(n=0)
