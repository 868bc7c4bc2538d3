"""Built-in demo data: a multivariate sensor series with labelled events, and heartbeats.

Both are deterministic for a seed and take milliseconds to make.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmae.exceptions import DataError

# name, baseline, scale (spread of the normal signal), gains on the shared latent signals
# (daily cycle, process cycle, load), lag in rows behind the latents.
_SENSORS = [
    ("temperature", 65.0, 4.0, (0.6, 0.15, 0.5), 25),
    ("pressure", 4.2, 0.35, (0.1, 0.7, 0.4), 0),
    ("flow", 120.0, 12.0, (0.1, 0.7, 0.5), 2),
    ("vibration", 2.5, 0.4, (0.0, 0.5, 0.6), 0),
    ("current", 32.0, 3.0, (0.2, 0.4, 0.8), 1),
    ("rpm", 1480.0, 60.0, (0.0, 0.6, 0.7), 0),
    ("humidity", 45.0, 5.0, (-0.8, 0.0, -0.2), 60),
    ("power", 21.0, 2.5, (0.2, 0.4, 0.8), 3),
]
_TEMPERATURE, _PRESSURE, _FLOW, _VIBRATION, _CURRENT, _RPM, _HUMIDITY, _POWER = range(8)

_DAY = 1440  # rows: one row per minute
_PROCESS_PERIOD = 90
_PRECURSOR_ROWS = 10  # the effect creeps in this many rows before the labelled start
_SLOT_MARGIN = 5
_MIN_EVENT, _MAX_EVENT = 20, 80
_EVENT_FRACTION = 0.03
_EVENT_TYPES = ("decoupling", "oscillation", "pressure_drop", "stuck_sensor")


def _sensor_table(n_features: int, rng: np.random.Generator) -> list[tuple]:
    """The first `n_features` named sensors, then "sensor_9", ... with random gains."""
    sensors = list(_SENSORS[:n_features])
    for number in range(len(_SENSORS) + 1, n_features + 1):
        gains = tuple(rng.uniform(-0.8, 0.8, size=3))
        sensors.append((f"sensor_{number}", 10.0, 1.0, gains, int(rng.integers(0, 30))))
    return sensors


def _standardize(signal: np.ndarray) -> np.ndarray:
    return (signal - signal.mean(axis=0)) / signal.std(axis=0)


def _latent_signals(n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """(n_rows, 3) standardized daily cycle, process cycle (with phase jitter) and load."""
    t = np.arange(n_rows)
    daily = np.sin(2 * np.pi * t / _DAY + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * t / _PROCESS_PERIOD + np.cumsum(rng.normal(0, 0.01, n_rows))
    process = np.sin(phase) + 0.4 * np.sin(2 * phase + 0.7)
    kernel = np.exp(-0.5 * (np.arange(-240, 241) / 60.0) ** 2)
    load = np.convolve(rng.normal(size=n_rows + 480), kernel, mode="valid")
    return _standardize(np.column_stack([daily, process, load]))


def _event_windows(n_steps: int, n_events: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(start, end) rows of each event, one per equal slot of the series' second half."""
    if n_events == 0:
        return []
    first, slot = n_steps // 2, (n_steps - n_steps // 2) // n_events
    needed = _MAX_EVENT + _PRECURSOR_ROWS + 2 * _SLOT_MARGIN
    if slot < needed:
        raise DataError(
            f"n_steps={n_steps} is too short for {n_events} events in the second half; "
            f"use n_steps >= {2 * needed * n_events} or fewer events"
        )
    mean_length = np.clip(_EVENT_FRACTION * n_steps / n_events, _MIN_EVENT, _MAX_EVENT)
    low = max(_MIN_EVENT, round(0.7 * mean_length))
    high = min(_MAX_EVENT, round(1.3 * mean_length))
    windows = []
    for k in range(n_events):
        length = int(rng.integers(low, high + 1))
        earliest = first + k * slot + _PRECURSOR_ROWS + _SLOT_MARGIN
        latest = first + (k + 1) * slot - length - _SLOT_MARGIN
        start = int(rng.integers(earliest, latest + 1))
        windows.append((start, start + length))
    return windows


def _apply_event(
    kind: str,
    rows: slice,
    envelope: np.ndarray,
    latent_part: np.ndarray,
    noise: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Break the normal relationships between 2-3 sensors over `rows`, in place.

    Works in standardized units (1 = the sensor's normal spread); `envelope` (rows,) rises
    from 0 in the precursor to 1 over the labelled event.
    """
    n_features = latent_part.shape[1]

    def sensor(index: int) -> int:  # with fewer sensors, events fall on the ones there are
        return index % n_features

    step = np.arange(len(envelope))
    if kind == "decoupling":  # rpm turns against the shared cycles; the motor heats up
        j = sensor(_RPM)
        latent_part[rows, j] *= 1 - 2 * envelope
        latent_part[rows, sensor(_TEMPERATURE)] += envelope * 0.8
    elif kind == "oscillation":  # a fast oscillation in vibration, echoed by current and rpm
        period = rng.uniform(5, 8)
        for index, amplitude in ((_VIBRATION, 1.5), (_CURRENT, 0.5), (_RPM, 0.4)):
            wave = np.sin(2 * np.pi * step / period + index)
            latent_part[rows, sensor(index)] += envelope * amplitude * wave
    elif kind == "pressure_drop":  # pressure falls while flow stays as it was: cavitation
        for index, shift in ((_PRESSURE, -2.0), (_VIBRATION, 0.8), (_POWER, 0.7)):
            latent_part[rows, sensor(index)] += envelope * shift
    else:  # stuck_sensor: flow freezes at one reading while current creeps up
        j = sensor(_FLOW)
        frozen = latent_part[rows, j][0] + noise[rows, j][0]
        latent_part[rows, j] = (1 - envelope) * latent_part[rows, j] + envelope * frozen
        noise[rows, j] *= 1 - envelope
        latent_part[rows, sensor(_CURRENT)] += envelope * np.linspace(0, 1.5, len(envelope))


def make_sensor_data(
    n_steps: int = 6000, n_features: int = 8, n_events: int = 6, seed: int = 0
) -> pd.DataFrame:
    """A machine's sensors, one row a minute from 2026-01-01, with labelled events.

    Columns: "timestamp", the sensors ("temperature", "pressure", "flow", "vibration",
    "current", "rpm", "humidity", "power", then "sensor_9", ...) and "label" (1 during an
    event). The sensors mix three shared latent signals (a daily cycle, a 90-minute process
    cycle, a slowly wandering load) with their own gains and lags, plus correlated noise and
    a slow drift. The events (about 3% of the rows, 20-80 rows each) all lie in the second
    half, so the first half is clean training data; each breaks the relations between 2-3
    sensors (decoupling, oscillation, pressure drop with steady flow, stuck sensor) and
    creeps in over the 10 rows before its labelled start.
    """
    if n_steps < 1 or n_features < 1 or n_events < 0:
        raise DataError(
            f"need n_steps >= 1, n_features >= 1, n_events >= 0; "
            f"got n_steps={n_steps}, n_features={n_features}, n_events={n_events}"
        )
    rng = np.random.default_rng(seed)
    sensors = _sensor_table(n_features, rng)
    max_lag = max(lag for *_, lag in sensors)
    latents = _latent_signals(n_steps + max_lag, rng)
    lagged = [
        latents[max_lag - lag : max_lag - lag + n_steps] @ np.asarray(gains)
        for _, _, _, gains, lag in sensors
    ]
    latent_part = 0.9 * _standardize(np.column_stack(lagged))

    loadings = rng.uniform(-1, 1, n_features)
    common = rng.normal(size=(n_steps, 1))
    noise = 0.12 * common * loadings + 0.25 * rng.normal(size=(n_steps, n_features))
    drift = rng.uniform(-0.3, 0.3, n_features) * np.linspace(0, 1, n_steps)[:, np.newaxis]

    labels = np.zeros(n_steps, dtype=np.int8)
    kinds = rng.permutation(np.resize(_EVENT_TYPES, n_events))
    for kind, (start, end) in zip(kinds, _event_windows(n_steps, n_events, rng)):
        precursor = np.linspace(0, 0.3, _PRECURSOR_ROWS + 1)[1:]
        envelope = np.concatenate([precursor, np.ones(end - start)])
        _apply_event(kind, slice(start - _PRECURSOR_ROWS, end), envelope, latent_part, noise, rng)
        labels[start:end] = 1

    standardized = latent_part + noise + drift
    baselines = np.array([baseline for _, baseline, *_ in sensors])
    scales = np.array([scale for _, _, scale, *_ in sensors])
    frame = pd.DataFrame(
        np.round(baselines + scales * standardized, 3), columns=[name for name, *_ in sensors]
    )
    frame.insert(0, "timestamp", pd.date_range("2026-01-01", periods=n_steps, freq="min"))
    frame["label"] = labels
    return frame


def make_sequence_data(
    n: int = 600, length: int = 60, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Heartbeat-like sequences: X (N, L, 1) float32 and y (N,) int64, 1 = anomalous shape.

    A normal beat is a P wave, a QRS complex and a T wave (sums of Gaussian bumps) with
    random timing, rate, amplitude, baseline and noise. About 10% of the beats are
    anomalous: a premature ventricular beat (no P, wide QRS, inverted T), an inverted T
    wave, ST elevation, or an early beat.
    """
    if n < 1 or length < 8:
        raise DataError(f"need n >= 1 and length >= 8; got n={n}, length={length}")
    rng = np.random.default_rng(seed)
    #                   P      Q      R     S      T     ST segment
    centers = np.array([0.20, 0.36, 0.40, 0.44, 0.68, 0.55])
    widths = np.array([0.025, 0.012, 0.014, 0.014, 0.05, 0.07])
    amplitudes = np.array([0.15, -0.12, 1.0, -0.25, 0.3, 0.0])

    shift = rng.normal(0, 0.015, (n, 1))
    rate = rng.normal(1, 0.04, (n, 1))
    center = 0.4 + (centers - 0.4) * rate + shift
    width = np.tile(widths, (n, 1)) * rate
    amplitude = amplitudes * rng.normal(1, 0.08, (n, 6)) * rng.normal(1, 0.08, (n, 1))

    y = np.zeros(n, dtype=np.int64)
    anomalous = rng.choice(n, size=round(0.1 * n), replace=False)
    y[anomalous] = 1
    for i, kind in zip(anomalous, rng.integers(0, 4, len(anomalous))):
        if kind == 0:  # premature ventricular beat
            amplitude[i, 0] = 0.0
            width[i, 1:4] *= 3
            amplitude[i, 2] *= 1.3
            amplitude[i, 4] = -0.4
        elif kind == 1:  # inverted T wave
            amplitude[i, 4] = -abs(amplitude[i, 4])
        elif kind == 2:  # ST elevation
            amplitude[i, 5] = 0.3
        else:  # early beat
            center[i] -= 0.12

    t = np.linspace(0, 1, length)
    bumps = amplitude[:, None, :] * np.exp(
        -0.5 * ((t[None, :, None] - center[:, None, :]) / width[:, None, :]) ** 2
    )
    baseline = rng.normal(0, 0.03, (n, 1)) + rng.normal(0, 0.03, (n, 1)) * t
    beats = bumps.sum(axis=2) + baseline + rng.normal(0, 0.02, (n, length))
    return beats[:, :, np.newaxis].astype(np.float32), y
