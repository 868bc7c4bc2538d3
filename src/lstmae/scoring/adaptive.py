"""Adaptive, causal thresholds: the threshold for each score is computed from the scores before it.

A static threshold (``sigma:3``) is fitted once on validation scores; on a long series whose
normal scores drift, it flags a large share of the rows. The thresholds here start from the
same calibration scores (validation scores of normal data) and then move with the stream, and
only the past moves them: a score is compared with a threshold computed from earlier scores.

| spec | method | options (``spec,key=value``) |
|------|--------|------------------------------|
| ``dspot:RISK`` | DSPOT (Siffer et al., KDD 2017): peaks over threshold with drift | ``depth`` (100) |
| ``telemanom:Z`` | Telemanom's non-parametric dynamic threshold (Hundman et al., KDD 2018), causal | ``window`` (2100), ``span`` (1), ``every`` (70), ``mad`` (0: no floor) |

Both classes share one API (:class:`AdaptiveThreshold`):

>>> detector = DSPOT(risk=1e-3).fit(validation_scores)      # doctest: +SKIP
>>> flags, thresholds = detector.update(test_scores)        # doctest: +SKIP
>>> config, arrays = detector.get_state()                   # JSON-able dict, {name: ndarray}
>>> detector = adaptive_from_state(config, arrays)           # doctest: +SKIP

``update`` consumes scores (n,) in order and returns flags (n,) int8 (1 = score > its
threshold) and the threshold each score was compared with (n,) float64. Feeding a series in
one call, row by row, or in chunks with a save/restore in between gives identical results.
NaN scores (warm-up rows without a score) are never flagged and leave the state unchanged;
their threshold is the current one.

**DSPOT** (``dspot:RISK``, RISK in (0, 0.02)): the drift is a moving average ``M`` of the last
``depth`` scores that were not flagged; the model sees residuals ``x - M``. At ``fit`` the
first ``depth`` calibration scores fill the average, a generalised Pareto distribution (GPD)
is fitted to the residuals' excesses over their 0.98 quantile ``t``, and ``z`` is the residual
exceeded with probability RISK. With fewer than 550 residuals (a series of a few thousand rows
holds a few hundred held-out scores), ``t`` is the quantile that leaves 11 residuals above it,
down to the 0.9 quantile: at least ``depth`` + 110 calibration scores are needed. A new score
``x`` is flagged when ``x > z + M`` (the threshold reported is ``z + M``); flagged scores
change nothing. Otherwise, if ``x - M > t`` it is a new peak: the GPD is refitted and ``z``
updated; and ``x`` enters the moving average. ``depth=0`` is plain SPOT (no drift term). The
GPD is fitted by the method of moments (shape ``0.5 (1 - m^2/v)``, scale ``0.5 m (m^2/v + 1)``
from the excesses' mean ``m`` and variance ``v``), kept as running sums so that each refit is O(1) however many peaks there are; the
static ``pot:Q`` rule fits by maximum likelihood instead, so its threshold differs a little.
The threshold ``z`` never falls below ``t`` (the GPD only describes the tail above ``t``).

**Telemanom** (``telemanom:Z``, Z in (0, 12)): scores are smoothed by an exponentially
weighted mean of span ``span`` (1 = no smoothing, the default: lstmae's row scores already
aggregate the windows covering a row; with ``span > 1`` the flags compare the *smoothed*
score with the threshold). Over the trailing ``window`` smoothed scores (mean ``mu``, standard
deviation ``sd``), each ``z`` in ``Z, Z + 0.5, ... < 12`` gives ``eps = mu + z sd`` and the
score ``(dmu/mu + dsd/sd) / (n_above + n_runs^2)``, where ``dmu`` and ``dsd`` are the drops in
mean and standard deviation when the values ``>= eps`` are removed, ``n_above`` counts those
values and ``n_runs`` their runs of consecutive rows. The threshold is the ``eps`` with the
highest score among those with 1 to 5 runs and fewer than half the window above
(Telemanom's published limits; ties go to the larger z), else ``mu + 12 sd``. The threshold
is recomputed after every ``every`` scores (Telemanom's batch size, 70), from the scores
before the one it is next compared with; all scores, flagged or not, enter the window (as in
Telemanom, whose criterion prunes the large ones). ``Z = 2.5`` is the published range;
a larger Z flags less. Telemanom's error buffer (widening each run before counting) is left
out. The calibration tail (up to ``window`` scores) fills the first window.

``mad=K`` (K > 0) adds a static floor, fitted once on the calibration scores as the ``mad:K``
rule fits it (median + K x 1.4826 x MAD): the threshold is the larger of the two, so a row is
flagged only when it stands out both from the held-out data and from the stream's own recent
past (Telemanom has a fixed floor of its own, ``min_error_value``). With a floor, fewer than
the 100 calibration scores Telemanom needs alone will do: the floor holds while the window fills
with the stream's scores. ``telemanom:2,mad=8`` keeps the ``mad:8`` alarms except where the whole
stream has moved above the held-out scores: the alarm storms a static threshold raises on a
shifted series.
"""

from __future__ import annotations

import math

import numpy as np

from lstmae.exceptions import DataError, ModelFileError
from lstmae.data.validation import is_number

DSPOT_INITIAL_QUANTILE = 0.98
DSPOT_LOWEST_INITIAL_QUANTILE = 0.9  # where there are too few residuals for DSPOT_MIN_PEAKS above the 0.98 quantile
DSPOT_MIN_PEAKS = 10
DSPOT_DEFAULTS = {"depth": 100}
_DSPOT_MIN_RESIDUALS = int(round((DSPOT_MIN_PEAKS + 1) / (1 - DSPOT_LOWEST_INITIAL_QUANTILE)))
TELEMANOM_Z_MAX = 12.0
TELEMANOM_Z_STEP = 0.5
TELEMANOM_MAX_RUNS = 5
TELEMANOM_MIN_CALIBRATION = 100
TELEMANOM_DEFAULTS = {"window": 2100, "span": 1.0, "every": 70, "mad": 0.0}
STATE_VERSION = 1


class AdaptiveThreshold:
    """Common API of the adaptive thresholds: fit, update, threshold, get_state, from_state."""

    kind = ""

    def fit(self, calibration_scores) -> "AdaptiveThreshold":
        """Start from calibration scores (N,) (finite; validation scores of normal data). Returns self."""
        raise NotImplementedError

    def update(self, scores) -> tuple[np.ndarray, np.ndarray]:
        """(flags (n,) int8, thresholds (n,) float64) for the next scores (n,), in order (NaN allowed)."""
        raise NotImplementedError

    @property
    def threshold(self) -> float:
        """The threshold the next score will be compared with."""
        raise NotImplementedError

    @property
    def spec(self) -> str:
        """The threshold spec, e.g. 'dspot:0.001' ('depth=...' only when not the default)."""
        raise NotImplementedError

    @property
    def min_calibration(self) -> int:
        """The fewest calibration scores `fit` accepts."""
        return 1

    def get_state(self) -> tuple[dict, dict]:
        """(config, arrays): a JSON-able dict (floats exact through json) and {name: float64 array}."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, config: dict, arrays: dict) -> "AdaptiveThreshold":
        """The detector that `get_state` described, ready to continue where it stopped."""
        raise NotImplementedError

    def _check_fitted(self):
        if not self._fitted:
            raise DataError(f"adaptive threshold '{self.spec}' is not fitted; call fit(calibration_scores) first")

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.spec}'{', fitted' if self._fitted else ''})"


class DSPOT(AdaptiveThreshold):
    """Streaming peaks-over-threshold with drift (Siffer et al., KDD 2017); see the module docstring.

    risk: the false-alarm probability per score, in (0, 0.02). depth: rows in the moving
    average (0 = SPOT, no drift term).
    """

    kind = "dspot"

    def __init__(self, risk: float, depth: int = DSPOT_DEFAULTS["depth"]):
        self.risk = _check_number(risk, "dspot risk", 0.0, 1 - DSPOT_INITIAL_QUANTILE, "dspot:1e-3")
        self.depth = _check_integer(depth, "dspot depth", 0, "dspot:1e-3,depth=100")
        self._fitted = False

    @property
    def spec(self) -> str:
        return _spec(self.kind, self.risk, {"depth": self.depth}, DSPOT_DEFAULTS)

    @property
    def min_calibration(self) -> int:
        return self.depth + _DSPOT_MIN_RESIDUALS

    def fit(self, calibration_scores) -> "DSPOT":
        scores = _check_calibration(calibration_scores, self.spec)
        depth = self.depth
        n_residuals = scores.size - depth
        if scores.size < self.min_calibration:
            raise DataError(
                f"threshold '{self.spec}' needs at least {self.min_calibration} calibration scores (depth {depth} + "
                f"{_DSPOT_MIN_RESIDUALS}); got {scores.size}; give more validation data or a smaller depth"
            )
        if depth:
            sums = np.concatenate([[0.0], np.cumsum(scores)])
            means = (sums[depth:-1] - sums[:-depth - 1]) / depth  # mean of the depth scores before each
        else:
            means = np.zeros(n_residuals)
        residuals = scores[depth:] - means
        # 1 - 11/n leaves 11 residuals above the (interpolated) quantile, one more than the minimum
        level = min(DSPOT_INITIAL_QUANTILE, 1 - (DSPOT_MIN_PEAKS + 1) / n_residuals)
        initial = float(np.quantile(residuals, level))
        excesses = residuals[residuals > initial] - initial
        if excesses.size < DSPOT_MIN_PEAKS:
            raise DataError(
                f"threshold '{self.spec}' needs at least {DSPOT_MIN_PEAKS} calibration residuals above "
                f"their {level:.3g} quantile; got {excesses.size} of {n_residuals} (many equal scores); give "
                f"more distinct validation scores or use quantile:Q"
            )
        self._initial = initial
        self._n = int(n_residuals)
        self._n_peaks = int(excesses.size)
        self._peak_mean = float(excesses.mean())
        self._peak_m2 = float(np.sum((excesses - excesses.mean()) ** 2))
        self._window = [float(v) for v in scores[scores.size - depth :]] if depth else []
        self._position = 0
        self._window_sum = math.fsum(self._window)
        self._z = self._tail_quantile()
        self._fitted = True
        return self

    @property
    def threshold(self) -> float:
        self._check_fitted()
        return self._z + (self._window_sum / self.depth if self.depth else 0.0)

    def update(self, scores) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        values = _check_stream(scores)
        flags = np.zeros(values.size, np.int8)
        thresholds = np.empty(values.size)
        depth, initial, window = self.depth, self._initial, self._window
        z, window_sum, position = self._z, self._window_sum, self._position
        for row, score in enumerate(values.tolist()):
            drift = window_sum / depth if depth else 0.0
            thresholds[row] = z + drift
            if score != score:  # NaN: no score, no update
                continue
            if score > z + drift:
                flags[row] = 1
                continue
            self._n += 1
            excess = score - drift - initial
            if excess > 0:  # a peak: refit the tail by the method of moments (Welford's running sums)
                self._n_peaks += 1
                delta = excess - self._peak_mean
                self._peak_mean += delta / self._n_peaks
                self._peak_m2 += delta * (excess - self._peak_mean)
                z = self._z = self._tail_quantile()
            if depth:
                window_sum += score - window[position]
                window[position] = score
                position += 1
                if position == depth:  # once per lap, drop the running sum's rounding drift
                    position = 0
                    window_sum = math.fsum(window)
        self._window_sum, self._position = window_sum, position
        return flags, thresholds

    def _tail_quantile(self) -> float:
        """z: the residual exceeded with probability risk, from the GPD of the peaks (>= t)."""
        mean = self._peak_mean
        variance = self._peak_m2 / (self._n_peaks - 1) if self._n_peaks > 1 else 0.0
        if not variance > 0 or mean <= 0:  # all excesses equal: the tail ends there
            return self._initial + max(mean, 0.0)
        ratio = mean * mean / variance
        shape = 0.5 * (1 - ratio)
        scale = 0.5 * mean * (ratio + 1)
        tail_risk = self.risk * self._n / self._n_peaks
        if abs(shape) < 1e-9:
            excess = -scale * math.log(tail_risk)
        else:
            excess = scale / shape * (tail_risk ** (-shape) - 1)
        return self._initial + max(excess, 0.0)

    def get_state(self) -> tuple[dict, dict]:
        self._check_fitted()
        config = {
            "kind": self.kind,
            "version": STATE_VERSION,
            "spec": self.spec,
            "risk": self.risk,
            "depth": self.depth,
            "initial": self._initial,
            "n": self._n,
            "n_peaks": self._n_peaks,
            "peak_mean": self._peak_mean,
            "peak_m2": self._peak_m2,
            "z": self._z,
            "window_sum": self._window_sum,
            "position": self._position,
        }
        return config, {"window": np.asarray(self._window, dtype=np.float64)}

    @classmethod
    def from_state(cls, config: dict, arrays: dict) -> "DSPOT":
        _check_state(config, cls.kind, ("risk", "depth", "initial", "n", "n_peaks", "peak_mean", "peak_m2", "z",
                                        "window_sum", "position"))
        with _state_errors(cls.kind):
            detector = cls(config["risk"], config["depth"])
            window = _state_array(arrays, "window", detector.depth)
            detector._initial = _state_float(config, "initial")
            detector._n = _check_integer(config["n"], "n", 1, "")
            detector._n_peaks = _check_integer(config["n_peaks"], "n_peaks", 1, "")
            detector._peak_mean = _state_float(config, "peak_mean")
            detector._peak_m2 = _state_float(config, "peak_m2")
            detector._z = _state_float(config, "z")
            detector._window_sum = _state_float(config, "window_sum")
            detector._position = _check_integer(config["position"], "position", 0, "")
            if detector._position >= max(detector.depth, 1):
                raise DataError(f"position {detector._position} is outside the window of {detector.depth}")
            detector._window = window.tolist()
        detector._fitted = True
        return detector


class Telemanom(AdaptiveThreshold):
    """Telemanom's non-parametric dynamic threshold (Hundman et al., KDD 2018), made causal.

    z_min: the smallest z searched (2.5 = the published range 2.5 .. 11.5). window: trailing
    scores the threshold is computed from. span: exponential smoothing span (1 = none).
    every: recompute the threshold after this many scores. See the module docstring.
    """

    kind = "telemanom"

    def __init__(self, z_min: float, window: int = TELEMANOM_DEFAULTS["window"],
                 span: float = TELEMANOM_DEFAULTS["span"], every: int = TELEMANOM_DEFAULTS["every"],
                 mad: float = TELEMANOM_DEFAULTS["mad"]):
        self.z_min = _check_number(z_min, "telemanom Z", 0.0, TELEMANOM_Z_MAX, "telemanom:2.5")
        self.window = _check_integer(window, "telemanom window", 10, "telemanom:2.5,window=2100")
        self.span = _check_number(span, "telemanom span", 1.0, math.inf, "telemanom:2.5,span=5", closed_low=True)
        self.every = _check_integer(every, "telemanom every", 1, "telemanom:2.5,every=70")
        self.mad = _check_number(mad, "telemanom mad", 0.0, math.inf, "telemanom:2,mad=8", closed_low=True)
        self._z_grid = np.arange(self.z_min, TELEMANOM_Z_MAX, TELEMANOM_Z_STEP)
        self._fitted = False

    @property
    def spec(self) -> str:
        options = {"window": self.window, "span": self.span, "every": self.every, "mad": self.mad}
        return _spec(self.kind, self.z_min, options, TELEMANOM_DEFAULTS)

    @property
    def _alpha(self) -> float:
        return 2.0 / (self.span + 1.0)

    @property
    def min_calibration(self) -> int:
        return 1 if self.mad else TELEMANOM_MIN_CALIBRATION  # with a floor, the floor carries the start

    def fit(self, calibration_scores) -> "Telemanom":
        scores = _check_calibration(calibration_scores, self.spec)
        if scores.size < self.min_calibration:
            raise DataError(
                f"threshold '{self.spec}' needs at least {TELEMANOM_MIN_CALIBRATION} calibration scores; "
                f"got {scores.size}; give more validation data"
            )
        smoothed = _ewma(scores, self._alpha)
        tail = smoothed[-self.window :]
        self._buffer = np.zeros(self.window)
        self._buffer[: tail.size] = tail
        self._filled = int(tail.size)
        self._position = self._filled % self.window
        self._last = float(smoothed[-1])
        self._since = 0
        self._floor = mad_threshold(scores, self.mad) if self.mad else -math.inf
        self._epsilon = self._compute_epsilon()
        self._fitted = True
        return self

    @property
    def threshold(self) -> float:
        self._check_fitted()
        return max(self._epsilon, self._floor)

    def update(self, scores) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        values = _check_stream(scores)
        flags = np.zeros(values.size, np.int8)
        thresholds = np.empty(values.size)
        alpha, window, every, buffer, floor = self._alpha, self.window, self.every, self._buffer, self._floor
        threshold, last = max(self._epsilon, floor), self._last
        for row, score in enumerate(values.tolist()):
            thresholds[row] = threshold
            if score != score:  # NaN: no score, no update
                continue
            last = alpha * score + (1.0 - alpha) * last
            if last > threshold:
                flags[row] = 1
            buffer[self._position] = last
            self._position = (self._position + 1) % window
            self._filled = min(self._filled + 1, window)
            self._since += 1
            if self._since == every:
                self._since = 0
                self._epsilon = self._compute_epsilon()
                threshold = max(self._epsilon, floor)
        self._last = last
        return flags, thresholds

    def _recent(self) -> np.ndarray:
        """The trailing smoothed scores, oldest first."""
        if self._filled < self.window:
            return self._buffer[: self._filled]
        return np.concatenate([self._buffer[self._position :], self._buffer[: self._position]])

    def _compute_epsilon(self) -> float:
        """The module docstring's search, vectorised over the z grid (sorted values, prefix sums)."""
        values = self._recent()
        size = values.size
        mean, sd = float(values.mean()), float(values.std())
        if not sd > 0:
            return mean
        epsilons = mean + self._z_grid * sd
        centred = np.sort(values) - mean
        n_kept = np.searchsorted(centred, epsilons - mean, side="left")  # values < eps
        n_above = size - n_kept
        # Runs of values >= eps: the first value, plus each rise x[i-1] < eps <= x[i].
        rising = values[1:] > values[:-1]
        highs, lows = np.sort(values[1:][rising]), np.sort(values[:-1][rising])
        n_runs = ((values[0] >= epsilons).astype(np.int64)
                  + (highs.size - np.searchsorted(highs, epsilons, side="left"))
                  - (lows.size - np.searchsorted(lows, epsilons, side="left")))
        allowed = (n_above > 0) & (n_runs <= TELEMANOM_MAX_RUNS) & (n_above < 0.5 * size)
        if not allowed.any():
            return mean + TELEMANOM_Z_MAX * sd
        sums = np.concatenate([[0.0], np.cumsum(centred)])[n_kept]
        squares = np.concatenate([[0.0], np.cumsum(centred * centred)])[n_kept]
        kept_mean = sums / np.maximum(n_kept, 1)  # relative to mean
        kept_sd = np.sqrt(np.maximum(squares / np.maximum(n_kept, 1) - kept_mean**2, 0.0))
        drop = (sd - kept_sd) / sd - (kept_mean / abs(mean) if mean else 0.0)
        scores = np.full(epsilons.size, -np.inf)
        np.divide(drop, n_above + n_runs**2, out=scores, where=allowed)
        best = len(scores) - 1 - int(np.argmax(scores[::-1]))  # ties: the larger z, as Telemanom
        return float(epsilons[best])

    def get_state(self) -> tuple[dict, dict]:
        self._check_fitted()
        config = {
            "kind": self.kind,
            "version": STATE_VERSION,
            "spec": self.spec,
            "z_min": self.z_min,
            "window": self.window,
            "span": self.span,
            "every": self.every,
            "mad": self.mad,
            "floor": self._floor if self.mad else None,  # JSON has no -inf
            "filled": self._filled,
            "position": self._position,
            "last": self._last,
            "since": self._since,
            "epsilon": self._epsilon,
        }
        return config, {"window": self._buffer.copy()}

    @classmethod
    def from_state(cls, config: dict, arrays: dict) -> "Telemanom":
        _check_state(config, cls.kind, ("z_min", "window", "span", "every", "filled", "position", "last", "since",
                                        "epsilon"))
        with _state_errors(cls.kind):
            detector = cls(config["z_min"], config["window"], config["span"], config["every"],
                           config.get("mad", TELEMANOM_DEFAULTS["mad"]))  # states saved before the floor have none
            detector._buffer = _state_array(arrays, "window", detector.window).copy()
            detector._filled = _check_integer(config["filled"], "filled", 1, "")
            detector._position = _check_integer(config["position"], "position", 0, "")
            detector._since = _check_integer(config["since"], "since", 0, "")
            if detector._filled > detector.window or detector._position >= detector.window:
                raise DataError(f"filled/position {detector._filled}/{detector._position} do not fit the window")
            if detector._since >= detector.every:
                raise DataError(f"since {detector._since} must be below every {detector.every}")
            detector._last = _state_float(config, "last")
            detector._epsilon = _state_float(config, "epsilon")
            detector._floor = _state_float(config, "floor") if detector.mad else -math.inf
        detector._fitted = True
        return detector


ADAPTIVE_CLASSES = {DSPOT.kind: DSPOT, Telemanom.kind: Telemanom}


def mad_threshold(scores: np.ndarray, k: float) -> float:
    """The `mad:K` rule: median + k * 1.4826 * MAD; where more than half the scores are equal (MAD 0), the
    mean absolute deviation from the median (x 1.2533, the standard deviation for normal data) stands
    in, so that the threshold does not fall on the median itself."""
    median = float(np.median(scores))
    deviations = np.abs(scores - median)
    scale = 1.4826 * float(np.median(deviations)) or 1.2533 * float(deviations.mean())
    return median + k * scale


def adaptive_from_state(config: dict, arrays: dict) -> AdaptiveThreshold:
    """The adaptive threshold saved by `get_state()`, whatever its kind."""
    kind = config.get("kind") if isinstance(config, dict) else None
    if kind not in ADAPTIVE_CLASSES:
        raise ModelFileError(
            f"saved adaptive threshold state has kind {kind!r}; expected one of {', '.join(ADAPTIVE_CLASSES)}"
        )
    return ADAPTIVE_CLASSES[kind].from_state(config, arrays)


# ------------------------------------------------------------------------------------------ helpers
def _ewma(values: np.ndarray, alpha: float) -> np.ndarray:
    """Exponentially weighted mean, s_0 = x_0, s_i = alpha x_i + (1 - alpha) s_{i-1} (pandas adjust=False)."""
    if alpha == 1.0:
        return values.copy()
    smoothed = np.empty_like(values)
    last = float(values[0])
    for i, value in enumerate(values.tolist()):
        last = alpha * value + (1.0 - alpha) * last
        smoothed[i] = last
    return smoothed


def _spec(kind: str, param: float, options: dict, defaults: dict) -> str:
    text = f"{kind}:{_format_number(param)}"
    for key, value in sorted(options.items()):  # sorted, as ThresholdRule writes them
        if value != defaults[key]:
            text += f",{key}={_format_number(value)}"
    return text


def _format_number(value: float) -> str:
    return repr(float(value)).removesuffix(".0")


def _check_number(value, name: str, low: float, high: float, example: str, closed_low: bool = False) -> float:
    if not is_number(value):
        raise DataError(f"{name} must be a number; got {value!r}, e.g. {example}")
    value = float(value)
    above_low = value >= low if closed_low else value > low
    if not (math.isfinite(value) and above_low and value < high):
        low_text = f"[{low:g}" if closed_low else f"({low:g}"
        raise DataError(f"{name} must be in {low_text}, {high:g}); got {value!r}, e.g. {example}")
    return value


def _check_integer(value, name: str, minimum: int, example: str) -> int:
    if not is_number(value) or not float(value).is_integer() or value < minimum:
        hint = f", e.g. {example}" if example else ""
        raise DataError(f"{name} must be an integer >= {minimum}; got {value!r}{hint}")
    return int(value)


def _check_calibration(scores, spec: str) -> np.ndarray:
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"threshold '{spec}': calibration scores must be numbers") from None
    if scores.ndim != 1 or scores.size == 0:
        raise DataError(f"threshold '{spec}': calibration scores must be a non-empty 1-D array; got shape "
                        f"{scores.shape}")
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise DataError(
            f"threshold '{spec}': calibration scores contain {bad.size} NaN/inf values (first at position "
            f"{bad[0]}); drop invalid time points (valid == False) before fitting"
        )
    return scores


def _check_stream(scores) -> np.ndarray:
    try:
        values = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("scores must be numbers (NaN for rows without a score)") from None
    if values.ndim == 0:
        values = values.reshape(1)
    if values.ndim != 1:
        raise DataError(f"scores must be a 1-D array (n,); got shape {values.shape}")
    infinite = np.flatnonzero(np.isinf(values))
    if infinite.size:
        raise DataError(f"scores has an infinite value at position {infinite[0]}; use NaN for rows without a score")
    return values


def _check_state(config, kind: str, keys: tuple) -> None:
    if not isinstance(config, dict) or config.get("kind") != kind:
        found = config.get("kind") if isinstance(config, dict) else type(config).__name__
        raise ModelFileError(f"saved threshold state is of kind {found!r}, not {kind!r}; save it again")
    if config.get("version") != STATE_VERSION:
        raise ModelFileError(
            f"saved {kind} threshold state has version {config.get('version')!r}; this lstmae reads version "
            f"{STATE_VERSION}"
        )
    missing = [key for key in keys if key not in config]
    if missing:
        raise ModelFileError(f"saved {kind} threshold state lacks {', '.join(missing)}; save it again")


class _state_errors:
    """Turn a DataError raised while reading a saved state into a ModelFileError naming the kind."""

    def __init__(self, kind: str):
        self.kind = kind

    def __enter__(self):
        return self

    def __exit__(self, error_type, error, traceback):
        if error_type is not None and issubclass(error_type, DataError):
            raise ModelFileError(f"saved {self.kind} threshold state is invalid: {error}") from None
        return False


def _state_float(config: dict, key: str) -> float:
    value = config.get(key)
    if not is_number(value) or not math.isfinite(value):
        raise DataError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def _state_array(arrays, key: str, length: int) -> np.ndarray:
    if not isinstance(arrays, dict) or key not in arrays:
        raise DataError(f"the array {key!r} is missing")
    array = np.asarray(arrays[key], dtype=np.float64)
    if array.shape != (length,):
        raise DataError(f"the array {key!r} has shape {array.shape}, expected ({length},)")
    if not np.isfinite(array).all():
        raise DataError(f"the array {key!r} has NaN/inf values")
    return array
