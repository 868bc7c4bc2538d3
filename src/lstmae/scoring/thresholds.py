"""Thresholds on anomaly scores, written as short specs (the CLI's `--threshold`).

A window or time point is an anomaly when its score is strictly above the threshold
(`apply_threshold`). Thresholds are fitted on validation scores, ideally of normal data.

| spec           | threshold                                    | when to use                                               |
|----------------|----------------------------------------------|-----------------------------------------------------------|
| `quantile:Q`   | the Q quantile of the scores                 | no labels; validation data is (mostly) normal             |
| `contamination:C` | same as `quantile:(1-C)`                  | you know roughly the fraction C of anomalies              |
| `sigma:K`      | mean + K standard deviations (ddof 0)        | the default on sequences (sigma:2): stable on small validation sets |
| `mad:K`        | median + K x 1.4826 x MAD (the standard deviation for normal data); `mad:K,quantile=Q`: and at least the Q quantile of the same scores (1: the highest) | the default on a series' rows (mad:8,quantile=1): held-out scores with a heavy tail, which inflates sigma:K |
| `pot:Q`        | peaks over threshold (SPOT, Siffer 2017)     | no labels, very rare anomalies: a false-alarm risk Q below 0.02, beyond the largest validation scores |
| `best-f1`      | maximises F1 on labelled validation scores   | labelled validation data                                   |
| `best-f:BETA`  | maximises F-beta                             | labels; BETA > 1 favours recall, BETA < 1 precision        |
| `fpr:R`        | the (1-R) quantile of normal scores          | a target false-positive rate R (normal = label 0, or all scores without labels) |
| `value:V`      | V                                            | a threshold you already know                               |
| `dspot:RISK`   | adaptive: DSPOT, peaks over threshold with drift (Siffer 2017) | long series whose normal scores drift; RISK below 0.02 |
| `telemanom:Z`  | adaptive: Telemanom's dynamic threshold (Hundman 2018), causal | long series; Z = 2.5 is the published range, larger flags less |

The last two are *adaptive* (`rule.adaptive`): `rule.make_adaptive()` returns a stateful
detector (lstmae.scoring.adaptive) that starts from calibration scores and moves with the
stream, each score compared with a threshold computed from the scores before it. They take
options after the parameter, e.g. `dspot:1e-3,depth=200` or `telemanom:3,window=1000,every=10`
(see lstmae.scoring.adaptive for their meaning and defaults). One static rule takes an option:
`mad:8,quantile=1` never goes below the highest calibration score, so scores as high as the
held-out part's own (a periodic series' normal peaks, a few large normal errors that the MAD
ignores) are never flagged; `quantile=0`, the default, changes nothing. `telemanom:2,mad=8` never goes below
the `mad:8` threshold of the calibration scores: the static rule's alarms, less those where the
whole stream has moved above the held-out scores (alarm storms). `rule.fit(scores)` of an
adaptive rule returns the threshold the detector starts with (one number, for code that
needs a static value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import genpareto
from sklearn.metrics import precision_recall_curve

from lstmae.config import DEFAULT_THRESHOLDS
from lstmae.data.validation import is_flag, is_number
from lstmae.exceptions import DataError
from lstmae.scoring.adaptive import (
    ADAPTIVE_CLASSES,
    DSPOT_DEFAULTS,
    DSPOT_INITIAL_QUANTILE,
    TELEMANOM_DEFAULTS,
    TELEMANOM_Z_MAX,
    AdaptiveThreshold,
    mad_threshold,
)


def default_threshold(how: str = "window") -> str:
    """The rule `threshold="auto"` stands for, on held-out scores of the kind `how`: "window" (one score
    per sequence) or a series' row mapping ("max", "mean", "end", "point")."""
    return DEFAULT_THRESHOLDS["window" if how == "window" else "rows"]


def resolve_threshold(spec: str, how: str = "window") -> str:
    """`spec`, or the default rule for scores of the kind `how` when it is "auto"."""
    return default_threshold(how) if spec == "auto" else spec


USAGE = (
    "quantile:Q, contamination:C, sigma:K, mad:K, pot:Q, best-f1, best-f:BETA, fpr:R, value:V, "
    "dspot:RISK, telemanom:Z"
)
ADAPTIVE_METHODS = tuple(ADAPTIVE_CLASSES)
# method -> {option: default}; an adaptive method's integer options must be whole numbers
MAD_DEFAULTS = {"quantile": 0.0}  # mad:K,quantile=Q: at least the Q quantile of the calibration scores
_OPTION_DEFAULTS = {"dspot": DSPOT_DEFAULTS, "telemanom": TELEMANOM_DEFAULTS, "mad": MAD_DEFAULTS}

# SPOT initialisation: the GPD is fitted to the excesses over this quantile of the scores.
POT_INITIAL_QUANTILE = 0.98
POT_MIN_EXCESSES = 10

# method -> (is the parameter in range?, what the range is, an example spec)
_PARAMETER_RULES = {
    "quantile": (lambda p: 0 < p < 1, "Q must be in (0, 1)", "quantile:0.99"),
    "contamination": (lambda p: 0 < p < 1, "C must be in (0, 1)", "contamination:0.01"),
    "sigma": (lambda p: 0 < p < math.inf, "K must be a finite number > 0", "sigma:3"),
    "mad": (lambda p: 0 < p < math.inf, "K must be a finite number > 0", "mad:5"),
    "pot": (
        lambda p: 0 < p < 1 - POT_INITIAL_QUANTILE,
        f"the risk Q must be in (0, {1 - POT_INITIAL_QUANTILE:g}) (larger: use quantile:1-Q)",
        "pot:1e-3",
    ),
    "best-f": (lambda p: 0 < p < math.inf, "BETA must be a finite number > 0", "best-f:2"),
    "fpr": (lambda p: 0 < p < 1, "R must be in (0, 1)", "fpr:0.01"),
    "value": (lambda p: True, "", "value:0.3"),
    "dspot": (
        lambda p: 0 < p < 1 - DSPOT_INITIAL_QUANTILE,
        f"the risk RISK must be in (0, {1 - DSPOT_INITIAL_QUANTILE:g})",
        "dspot:1e-3",
    ),
    "telemanom": (lambda p: 0 < p < TELEMANOM_Z_MAX, f"Z must be in (0, {TELEMANOM_Z_MAX:g})", "telemanom:2.5"),
}
_NEEDS_LABELS = ("best-f1", "best-f")


def _format_number(value: float) -> str:
    """Shortest text that reads back as the same float: 3.0 -> '3', 0.001 -> '0.001'."""
    return repr(float(value)).removesuffix(".0")


@dataclass(frozen=True)
class ThresholdRule:
    """How to pick a threshold: `method` as in the module table and its parameter (None for best-f1).

    options: for adaptive methods and mad, ((name, value), ...) or a dict, e.g. {"depth": 200};
    stored sorted, without the ones equal to their default (so equal rules compare equal).
    """

    method: str
    param: float | None = None
    options: tuple = ()

    def __post_init__(self):
        if self.method != "best-f1" and self.method not in _PARAMETER_RULES:
            raise DataError(f"unknown threshold '{self.method}'; use one of {USAGE}")
        object.__setattr__(self, "options", self._check_options())
        if self.method == "best-f1":
            if self.param is not None:
                raise DataError(f"threshold '{self}' takes no parameter; use best-f1 or best-f:BETA")
            return
        in_range, range_text, example = _PARAMETER_RULES[self.method]
        if self.param is None:
            raise DataError(f"threshold '{self.method}' needs a parameter, e.g. {example}")
        if not math.isfinite(self.param) or not in_range(self.param):
            reason = range_text or "the value must be finite"
            raise DataError(f"threshold '{self}': {reason}, e.g. {example}")
        if self.adaptive:
            try:
                self.make_adaptive()  # checks the options' values
            except DataError as error:
                raise DataError(f"threshold '{self}': {error}") from None

    def __str__(self) -> str:
        text = self.method if self.param is None else f"{self.method}:{_format_number(self.param)}"
        return text + "".join(f",{key}={_format_number(value)}" for key, value in self.options)

    @property
    def meaning(self) -> str:
        """The rule in words, for a report: what it does with the held-out normal scores it is fitted on."""
        p = None if self.param is None else _format_number(self.param)
        options = dict(self.options)
        words = {
            "quantile": f"the {p} quantile of the held-out scores",
            "contamination": f"flags the highest {p} of the held-out scores",
            "sigma": f"the held-out scores' mean + {p} standard deviations",
            "mad": f"the held-out scores' median + {p} robust standard deviations (1.4826 x their median absolute "
                   "deviation)",
            "pot": f"peaks over threshold: the score a generalized Pareto tail fitted to the held-out scores exceeds "
                   f"with probability {p}",
            "best-f1": "the value of the best F1 on the evaluated labels (optimistic: it needs the answers)",
            "best-f": f"the value of the best F-beta (beta {p}) on the evaluated labels (optimistic)",
            "fpr": f"flags {p} of the held-out (normal) scores",
            "value": f"the fixed value {p}",
            "dspot": f"DSPOT: a peaks-over-threshold tail of the scores, less their drift, refitted as the rows "
                     f"come, at risk {p}; each row compared with a threshold from the rows before it",
            "telemanom": "Telemanom's dynamic threshold, made causal: the mean + z standard deviations of the "
                         f"scores of the last {options.get('window', TELEMANOM_DEFAULTS['window'])} rows before each "
                         f"row (z from {p} up, the one that best sets the highest scores apart)",
        }[self.method]
        if self.method == "telemanom" and options.get("mad", 0.0) > 0:
            words += (f", never below the held-out scores' median + {_format_number(options['mad'])} robust "
                      "standard deviations")
        if self.method == "mad" and options.get("quantile", 0.0) > 0:
            q = options["quantile"]
            words += ", never below " + ("their highest" if q == 1 else f"their {_format_number(q)} quantile")
        return words

    @property
    def adaptive(self) -> bool:
        """True for rules whose threshold moves with the stream (dspot, telemanom)."""
        return self.method in ADAPTIVE_METHODS

    @property
    def min_scores(self) -> int:
        """The fewest calibration scores the rule can be fitted on (pot: 500, for 10 above their 0.98 quantile)."""
        if self.adaptive:
            return self.make_adaptive().min_calibration
        if self.method == "pot":
            return int(round(POT_MIN_EXCESSES / (1 - POT_INITIAL_QUANTILE)))
        return 1

    def make_adaptive(self) -> AdaptiveThreshold:
        """A new, unfitted adaptive detector for this rule; call `.fit(calibration_scores)` next."""
        if not self.adaptive:
            raise DataError(
                f"threshold '{self}' is static (one value from fit); adaptive ones are {', '.join(ADAPTIVE_METHODS)}"
            )
        return ADAPTIVE_CLASSES[self.method](self.param, **dict(self.options))

    def _check_options(self) -> tuple:
        options = self.options
        if isinstance(options, dict):
            options = tuple(options.items())
        try:
            options = {str(key): value for key, value in options}
        except (TypeError, ValueError):
            raise DataError(f"threshold options must be (name, value) pairs; got {self.options!r}") from None
        if not options:
            return ()
        defaults = _OPTION_DEFAULTS.get(self.method)
        if defaults is None:
            raise DataError(
                f"threshold '{self.method}' takes no options (got {', '.join(options)}); only "
                f"{', '.join((*ADAPTIVE_METHODS, 'mad'))} do, e.g. dspot:1e-3,depth=200"
            )
        kept = []
        for key, value in sorted(options.items()):
            if key not in defaults:
                raise DataError(
                    f"threshold '{self.method}' has no option {key!r}; its options are "
                    f"{', '.join(f'{name} (default {default:g})' for name, default in defaults.items())}"
                )
            if not is_number(value):
                raise DataError(f"threshold option {key}={value!r} is not a number")
            value = float(value)
            if self.method == "mad" and not 0 <= value <= 1:
                raise DataError(f"threshold option quantile={value!r} must be in [0, 1], e.g. mad:8,quantile=1")
            if value != defaults[key]:
                kept.append((key, value))
        return tuple(kept)

    def fit(self, scores, labels=None) -> float:
        """The threshold for validation `scores` (N,); `labels` (N,) 0/1 for best-f and fpr.

        Scores must be finite: drop invalid time points (valid == False) first.
        """
        scores = _check_scores(scores)
        if labels is not None:
            labels = check_labels(labels, len(scores))
        if self.method in _NEEDS_LABELS:
            if labels is None:
                raise DataError(
                    f"threshold '{self}' needs labels (0 = normal, 1 = anomaly) for the validation "
                    "scores; pass labels or use a threshold without them, e.g. quantile:0.99"
                )
            return _best_f_threshold(scores, labels, 1.0 if self.param is None else self.param, self)
        if self.method == "quantile":
            return float(np.quantile(scores, self.param))
        if self.method == "contamination":
            return float(np.quantile(scores, 1 - self.param))
        if self.method == "sigma":
            return float(scores.mean() + self.param * scores.std())
        if self.method == "mad":
            return max(mad_threshold(scores, self.param), float(np.quantile(scores, dict(self.options).get(
                "quantile", MAD_DEFAULTS["quantile"]))))
        if self.method == "pot":
            return _pot_threshold(scores, self.param, self)
        if self.adaptive:
            return float(self.make_adaptive().fit(scores).threshold)
        if self.method == "fpr":
            normal_scores = scores if labels is None else scores[labels == 0]
            if normal_scores.size == 0:
                raise DataError(f"threshold '{self}' needs normal (label 0) scores; all labels are 1")
            return float(np.quantile(normal_scores, 1 - self.param))
        return float(self.param)  # "value"


def parse_threshold(spec: str) -> ThresholdRule:
    """Parse a spec such as "quantile:0.99", "best-f1", "pot:1e-3" or "dspot:1e-3,depth=200".

    See the module table; `str(rule)` gives the spec back in a canonical form.
    """
    if not isinstance(spec, str):
        raise DataError(f"a threshold spec must be text such as quantile:0.99; got {spec!r}")
    method, separator, rest = spec.strip().lower().partition(":")
    method = method.strip()
    if method != "best-f1" and method not in _PARAMETER_RULES:
        raise DataError(f"unknown threshold {spec!r}; use one of {USAGE}")
    if not separator:
        return ThresholdRule(method)
    param_text, *option_texts = (part.strip() for part in rest.split(","))
    try:
        param = float(param_text)
    except ValueError:
        raise DataError(f"threshold {spec!r}: {param_text!r} is not a number; e.g. {_PARAMETER_RULES[method][2]}") \
            from None
    options = {}
    for text in option_texts:
        key, equals, value_text = (part.strip() for part in text.partition("="))
        if not equals or not key:
            raise DataError(f"threshold {spec!r}: option {text!r} must be name=value, e.g. dspot:1e-3,depth=200")
        if key in options:
            raise DataError(f"threshold {spec!r}: option {key!r} is given twice")
        try:
            options[key] = float(value_text)
        except ValueError:
            raise DataError(f"threshold {spec!r}: option {key}={value_text!r} is not a number") from None
    return ThresholdRule(method, param, tuple(options.items()))


def apply_threshold(scores, threshold: float) -> np.ndarray:
    """Flags (N,) int8: 1 (anomaly) where score > threshold, else 0 (also for NaN scores)."""
    return (np.asarray(scores, dtype=np.float64) > threshold).astype(np.int8)


def _check_scores(scores) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise DataError(f"threshold scores must be a non-empty 1-D array; got shape {scores.shape}")
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise DataError(
            f"threshold scores contain {bad.size} NaN/inf values (first at position {bad[0]}); "
            "drop invalid time points (valid == False) before fitting a threshold"
        )
    return scores


def check_labels(labels, n_scores: int, like: str = "the scores") -> np.ndarray:
    """labels (n_scores,) of 0 (normal) and 1 (anomaly) as int8; DataError naming the first that is not."""
    labels = np.asarray(labels)
    if labels.shape != (n_scores,):
        raise DataError(f"labels must have shape ({n_scores},) like {like}; got {labels.shape}")
    if labels.dtype.kind in "biuf":
        not_binary = np.flatnonzero((labels != 0) & (labels != 1))
    else:  # objects or strings: compare each value as it is ("1" is not a label)
        not_binary = np.flatnonzero([not (is_flag(value) or is_number(value)) or value not in (0, 1)
                                     for value in labels])
    if not_binary.size:
        position = not_binary[0]
        raise DataError(
            f"labels must be 0 (normal) or 1 (anomaly); got {labels[position].item()!r} at position {position}"
        )
    return labels.astype(np.int8)


def _best_f_threshold(scores: np.ndarray, labels: np.ndarray, beta: float, rule: ThresholdRule) -> float:
    classes = np.unique(labels)
    if classes.size < 2:
        raise DataError(
            f"threshold '{rule}' needs both normal (0) and anomalous (1) labels; got only "
            f"{classes[0]}; use validation data with labelled anomalies or e.g. quantile:0.99"
        )
    precision, recall, candidates = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denominator = beta**2 * precision + recall
    f_beta = np.divide(
        (1 + beta**2) * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    best = candidates[np.argmax(f_beta)]
    # The curve flags score >= best; we flag score > threshold, so step just below it.
    return float(np.nextafter(best, -np.inf))


def _pot_threshold(scores: np.ndarray, risk: float, rule: ThresholdRule) -> float:
    initial = np.quantile(scores, POT_INITIAL_QUANTILE)
    excesses = scores[scores > initial] - initial
    if excesses.size < POT_MIN_EXCESSES:
        raise DataError(
            f"threshold '{rule}' needs at least {POT_MIN_EXCESSES} scores above their "
            f"{POT_INITIAL_QUANTILE:g} quantile; got {excesses.size} of {scores.size} scores; "
            f"give at least {rule.min_scores} distinct validation scores or use quantile:Q"
        )
    tail_risk = risk * scores.size / excesses.size
    if tail_risk >= 1:  # ties at the initial quantile: fewer than risk*N scores lie above it
        return float(np.quantile(scores, 1 - risk))
    shape, _, scale = genpareto.fit(excesses, floc=0)
    # isf(r) = scale/shape * (r^-shape - 1), and -scale*log(r) as shape -> 0 (Siffer et al. 2017).
    return float(initial + genpareto.isf(tail_risk, shape, loc=0, scale=scale))
