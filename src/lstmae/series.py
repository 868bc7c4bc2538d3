"""Series work in one home: a table of T rows in -> windows per group -> one result row per input row out.

A *series* is a table whose rows are time steps (T, F). Rows may belong to several *groups*
(entities such as machines, and the segments between time gaps); windows of `window` rows are cut
every `stride` rows inside each group and never cross from one group to the next. A group shorter
than the window gets no window: it is named in a `SkippedGroupWarning` and its rows come out with
``valid == False``, the same way in fitting and in scoring. Alarms (or flags) that cover more than a
third of a group's scored rows are too many to act on: an `AlarmStormWarning` names the group and
what to do.

Everything here is pure (no files, no printing) and never changes the model it is given: the CLI,
`LSTMAutoencoder.score_series`, the streaming scorer and scale-out scoring all call it.

- `fit_series`: train on the windows of a series, then fit the threshold on *row* scores of the
  held-out tail of each group (the kind of score it will be applied to).
- `score_values` / `score_frame`: one row per input row: ``score``, ``is_anomaly``, ``valid``
  (and ``error_<feature>``, ``threshold`` for adaptive rules, ``overflow`` when a window's error
  overflowed to inf).
- `encode_values`, `reconstruct_values`: encodings per window, reconstructions per row.
- `score_sequences`: the same table for independent sequences (N, L, F), one row per sequence.
"""
from __future__ import annotations

import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from .config import DEFAULTS, HOW_CHOICES
from .data.validation import (abbreviate_names, check_features, check_finite, check_integer, check_unique_names,
                              check_window, counted, is_number)
from .data.windowing import temporalize, window_ends
from .exceptions import DataError
from .scoring import (
    DEFAULT_ALARM,
    alarm_rules,
    alarms_from_flags,
    apply_threshold,
    check_alarm_options,
    default_threshold,
    focus_alarms,
    parse_threshold,
    window_to_points,
)
from .scoring.points import add_steps, covering_quantile, smooth_points
from .scoring.thresholds import ThresholdRule, check_labels, resolve_threshold


class SkippedGroupWarning(UserWarning):
    """A group (entity or segment) shorter than the window: no window covers it, so it is not scored."""


class AlarmStormWarning(UserWarning):
    """Alarms (or, without alarm rules, flags) cover more than `STORM_SHARE` of a group's scored rows.

    Its text ends with a remedy of another threshold; `refit_only` is the text without it, for a caller that
    cannot choose the threshold (a /v1/score request)."""

    def __init__(self, message: str, threshold_remedy: str = ""):
        super().__init__(message + threshold_remedy)
        self.refit_only = message


# A person paged on a third of all rows switches the tool off; past that, say what to do instead.
STORM_SHARE = 1 / 3


@dataclass(frozen=True)
class Group:
    """Rows of one group, in order: `rows` (T_g,) positions into the table; `name` for messages."""

    name: object
    rows: np.ndarray


def groups_of(n_rows: int, groups=None) -> list[Group]:
    """The groups of a table of n_rows rows: one group of all rows when `groups` is None, else one per
    distinct value of `groups` (T,), in order of first appearance (a group's rows need not be adjacent)."""
    if groups is None:
        return [Group(None, np.arange(n_rows))]
    if not hasattr(groups, "dtype"):  # a list: numpy would turn [7, "7"] into one id "7"; objects keep both
        groups = pd.Series(list(groups), dtype=object).to_numpy()
    groups = np.asarray(groups)
    if groups.shape != (n_rows,):
        raise DataError(f"expected one group id per row ({n_rows},), got shape {groups.shape}")
    missing = pd.isna(groups)
    if missing.any():
        raise DataError(f"the entity / group id is missing at row {int(np.flatnonzero(missing)[0]) + 1} "
                        f"({int(missing.sum())} of {n_rows} rows have none); fill it or drop those rows")
    try:
        codes, names = pd.factorize(groups, sort=False)
    except TypeError:
        bad = next(i for i, value in enumerate(groups) if not isinstance(value, Hashable))
        raise DataError(f"the entity / group id at row {bad + 1} is a {type(groups[bad]).__name__}, not a string "
                        "or a number") from None
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return [Group(names[codes[part[0]]], part) for part in np.split(order, bounds) if len(part)]


def windowed_groups(n_rows: int, window: int, groups=None) -> list[Group]:
    """`groups_of`, without the groups shorter than `window`; each of those is named in a warning."""
    kept, skipped = [], []
    for group in groups_of(n_rows, groups):
        (kept if len(group.rows) >= window else skipped).append(group)
    if not kept and len(skipped) == 1:
        raise DataError(f"the series has {n_rows} rows, shorter than the window {window}; give at least {window} "
                        "rows, or a model of a smaller window")
    if not kept:
        raise DataError(f"no entity or segment has the {window} rows one window needs (the longest has "
                        f"{max(len(g.rows) for g in skipped)}); give one at least {window} rows, or a model of a "
                        "smaller window")
    if skipped:
        names = ", ".join(f"{_name(g.name)} ({len(g.rows)} rows)" for g in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        warnings.warn(f"skipped {len(skipped)} group(s) shorter than the window of {window} rows: {names}{more}; "
                      "their rows are not scored (valid=False)", SkippedGroupWarning, stacklevel=3)
    return kept


def first_unscalable(model, values: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first value of `values` (T, F) that is not finite after the model's scaling (NaN,
    inf, or a finite value the scaling turns into inf); None when there is none."""
    if not len(values):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        # the scaling is increasing and per feature: each column's extremes decide, without a (T, F) copy
        if np.isfinite(model.scaler_.transform(np.stack([values.min(axis=0), values.max(axis=0)]))).all():
            return None
        bad = ~np.isfinite(model.scaler_.transform(values))
    return tuple(int(i) for i in np.argwhere(bad)[0])


# A column whose spread falls this many times when its most extreme value is left out is scaled by that value.
LONE_EXTREME_RATIO = 100


def _warn_lone_extremes(values: np.ndarray, names) -> None:
    """A UserWarning naming the row and value of each column (T, F) whose spread one value sets: the scaler
    divides by it, so the column's other changes hardly move a score (a typo such as 1e20 blinds it)."""
    if len(values) < 3:
        return
    data = values.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        rows = np.argmax(np.abs(data - np.median(data, axis=0)), axis=0)
        spread = data.std(axis=0)
        rest = np.array([np.delete(data[:, j], rows[j]).std() for j in range(data.shape[1])])
    for j in np.flatnonzero((rest > 0) & (spread > LONE_EXTREME_RATIO * rest)):  # a constant rest: nothing to blind
        warnings.warn(f"the series: column '{names[j]}' row {rows[j] + 1} holds {data[rows[j], j]:g}, which alone sets "
                      f"the column's scale ({spread[j]:.3g}; {rest[j]:.3g} without it): the column's other changes "
                      "will hardly move a score; fix the cell or leave the row out", UserWarning, stacklevel=3)


def _check_scalable(model, values: np.ndarray, names) -> None:
    """DataError naming the row and column of the first value of the series (T, F) that the model's scaling turns
    into inf (finite before it)."""
    too_large = first_unscalable(model, values)
    if too_large is not None:
        row, column = too_large
        raise DataError(f"the series: column '{names[column]}' row {row + 1} has value {values[row, column]:g}, too "
                        "large for the model's scaling (inf after it); fix the cell or leave the row out",
                        cell=(row, column))


def check_how(how) -> None:
    """DataError unless `how` is one of the window -> row mappings (HOW_CHOICES)."""
    if how not in HOW_CHOICES:
        raise DataError(f"unknown how={how!r}; use one of {', '.join(HOW_CHOICES)}")


def series_array(values) -> np.ndarray:
    """`values` as a (T, F) array of real numbers ((T,) is one feature; bools are 0/1); DataError naming what is
    not."""
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DataError(f"a series is (T, F): rows x features (or (T,) for one feature); got shape {values.shape} "
                        "(windows (N, L, F) go to the estimator's fit / anomaly_score)")
    if values.dtype.kind in "iuf":
        return values
    if values.dtype.kind == "b":  # on/off flags: 0/1, as a table's bool column is read for scoring
        return values.astype(np.float64)
    if values.dtype.kind == "O":
        for (row, column), value in np.ndenumerate(values):
            if value is not None and not is_number(value) and not isinstance(value, (bool, np.bool_)):
                raise DataError(f"the series: column {column + 1} row {row + 1} holds {value!r}, not a number; fix "
                                "the cell or leave the column out")
        return values.astype(np.float64)
    raise DataError(f"the series holds {values.dtype} values, not real numbers; give numbers (a timestamp column: "
                    "pass it as the time column)")


def _name(value) -> str:
    """A group id as a user wrote it: 'm1', 7, ('m1', 2) (numpy scalars as plain Python values)."""
    value = value.item() if isinstance(value, np.generic) else value
    return repr(value)


# -------------------------------------------------------------------------------------- fit
def fit_series(model, values, *, window: int, stride: int = 1, groups=None, labels=None, feature_names=None,
               how: str = DEFAULTS["how"], checkpoint_dir=None):
    """Train `model` (an unfitted LSTMAutoencoder) on the series `values` (T, F); returns it fitted.

    Windows (N, window, F) are cut per group. Of each group the last `validation_fraction` of its
    windows are held out: for early stopping, the error model and the threshold; with
    `model.validation_blocks` = K > 1, the last `validation_fraction` of each of K equal, consecutive
    blocks of its windows (`held_out_runs`). With `labels` (T,) 0/1, windows holding a labelled
    anomaly are left out of training and validation.

    The threshold is then fitted on the *row* scores of each group's held-out rows, aggregated
    with `how` as scoring will aggregate them (a row flagged by any of the L windows covering it
    is flagged far more often than a single window), from every window (stride 1, as scoring's
    default: a `stride` that thins the training windows would otherwise average fewer windows
    into each calibration row than scoring does). Those row scores are kept as
    `calibration_scores_`, so another threshold rule can later be fitted on them (`threshold_for`).
    Label-based rules (best-f1) use the held-out rows' labels.

    With `model.threshold_floor` = Q, the rows that only training windows cover (`training_rows`, each
    stretch scored as a series of its own, labelled rows left out) are scored too, with `how` and as
    windows, and each kind's Q quantile is kept as `threshold_floors_`: no static threshold of that
    kind goes below it (`threshold_for`).

    With `model.smooth` = W > 1 every row score, the held-out ones' included, is smoothed over W rows
    (`score_values`), so the threshold is fitted on scores of the kind it is compared with.
    """
    check_integer(window, "window")
    check_how(how)
    if feature_names is None and _named_columns(values):  # as scikit-learn records a DataFrame's columns
        _refuse_undeclared(values)
        feature_names = list(values.columns)
    values = series_array(values)
    names = list(feature_names) if feature_names is not None else [f"f{j}" for j in range(values.shape[1])]
    check_finite(values, names, "the series", nan_policies=None)
    _warn_lone_extremes(values, names)
    if labels is not None:
        labels = check_labels(labels, len(values), like="the series' rows")
    model._check_params()
    if how == "end" and model.smooth != 1:
        raise DataError(f"smooth={model.smooth!r} averages the rows after each row too, which the causal how='end' "
                        "never reads: fit with how='mean' (the default), 'max' or 'point', or drop smooth")
    rule = parse_threshold(resolve_threshold(model.threshold, how))
    if model.threshold_floor is not None and getattr(rule, "adaptive", False):
        raise DataError(f"threshold_floor applies to a static threshold rule; {model.threshold} adapts on its "
                        "own: drop threshold_floor or choose a rule such as mad:8")
    fraction = float(model.validation_fraction)
    train_parts, val_parts, val_runs, train_runs = [], [], [], []
    for group in windowed_groups(len(values), window, groups):
        X, _ = temporalize(values[group.rows], window, stride)
        runs = held_out_runs(len(X), fraction, model.validation_blocks)
        held_out = runs_mask(runs, len(X))
        keep = np.ones(len(X), bool)
        if labels is not None:
            contains = np.lib.stride_tricks.sliding_window_view(labels[group.rows], window).max(axis=1)[::stride]
            keep = contains == 0
        train_parts.append(X[~held_out & keep])
        if runs:
            val_parts.append(X[held_out & keep])
        ranges = held_out_rows(runs, len(group.rows), window, stride)
        for first_row, stop_row in ranges:
            val_runs.append(group.rows[first_row:stop_row])
        train_runs += [group.rows[first_row:stop_row] for first_row, stop_row in training_rows(ranges, len(group.rows))
                       if stop_row - first_row >= window]
    train_X = _join(train_parts)
    if not len(train_X):
        raise DataError("every training window contains a labelled anomaly; nothing normal to train on")
    if model.threshold_floor is not None and not train_runs:
        raise DataError(f"threshold_floor needs a stretch of at least {window} training rows between the held-out "
                        "parts; use fewer validation_blocks or drop threshold_floor")
    val_X = _join(val_parts) if val_parts else None
    if val_X is not None and not len(val_X):
        val_X = None
    if needs_labels(rule) and labels is not None:  # refused after all the training otherwise
        held = labels[np.concatenate(val_runs)] if val_runs else labels
        if np.unique(held).size < 2:
            raise DataError(f"threshold '{rule}' is fitted on the labels of the held-out rows ({len(held)} rows), and "
                            f"they are all {held[0]}; use a validation_fraction whose rows hold labelled anomalies "
                            "and normal rows, or a rule such as mad:8")
    from .estimator import SERIES_FIT, kept_on_failure

    with kept_on_failure(model):  # a failed calibration must not leave a new network beside old thresholds
        with warnings.catch_warnings():  # the window calibration is replaced below, on labelled rows if any
            warnings.filterwarnings("ignore", message=r"threshold=.* needs labels", category=UserWarning)
            series_fit = SERIES_FIT.set(True)
            try:
                model.fit(train_X, feature_names=feature_names, X_val=val_X, checkpoint_dir=checkpoint_dir)
            finally:
                SERIES_FIT.reset(series_fit)

        # The threshold on row scores of the held-out rows (or of all rows without a validation part).
        scores, valid_rows = _calibration_rows(model, values, groups, val_runs or None, how)
        row_labels = None if labels is None else labels[valid_rows]
        model.set_calibration(scores, how=how, labels=row_labels)
        for other in {"max", "mean"} - {how}:  # so that scoring with another mapping refits the rule on its own kind
            other_scores, other_rows = _calibration_rows(model, values, groups, val_runs or None, other)
            normal = other_scores if labels is None else other_scores[labels[other_rows] == 0]
            model.calibration_scores_[other] = normal[np.isfinite(normal)]
        if model.threshold_floor is not None:
            floors = {"window": model.anomaly_score(train_X)}
            if how != "end":  # how="end" row scores are the window scores (`_threshold_floor`)
                train_scores, train_rows = _calibration_rows(model, values, groups, train_runs, how)
                floors[how] = train_scores if labels is None else train_scores[labels[train_rows] == 0]
            model.threshold_floors_ = {
                kind: float(np.quantile(kind_scores[np.isfinite(kind_scores)], model.threshold_floor))
                for kind, kind_scores in floors.items() if np.isfinite(kind_scores).any()}
            if not needs_labels(model.threshold_rule_):  # the model's own rule, refitted as every other is: floored
                model.threshold_ = threshold_for(model, model.threshold_rule_)
    return model


def _join(parts: list) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def held_out_runs(n_windows: int, fraction: float, blocks: int = 1) -> list[tuple[int, int]]:
    """The held-out windows of one group of `n_windows` windows, as runs [first, stop) in time order.

    The windows are cut into `blocks` equal, consecutive blocks (fewer when there are fewer held-out
    windows than blocks) and the last windows of each are held out, round(n_windows * fraction) in
    all; one block is the tail. No run when that leaves no training window (a short group trains).
    """
    n_val = int(round(n_windows * fraction))
    if n_val < 1 or n_val >= n_windows:
        return []
    bounds = np.linspace(0, n_windows, min(blocks, n_val) + 1).round().astype(int)
    # block [a, b) holds out round(f b) - round(f a) windows: they add up to n_val and never exceed b - a
    held = np.round(bounds * fraction).astype(int)
    held[-1] = n_val
    return [(int(stop - size), int(stop)) for stop, size in zip(bounds[1:], np.diff(held)) if size > 0]


def runs_mask(runs: list[tuple[int, int]], n_windows: int) -> np.ndarray:
    """(n_windows,) bool: True for the windows of the runs [first, stop) (`held_out_runs`)."""
    mask = np.zeros(n_windows, bool)
    for first, stop in runs:
        mask[first:stop] = True
    return mask


def held_out_rows(runs: list[tuple[int, int]], n_rows: int, window: int, stride: int = 1) -> list[tuple[int, int]]:
    """The rows [first, stop) that each held-out run of windows (`held_out_runs`) covers in a group of
    n_rows rows cut into windows of `window` rows every `stride`; the last run's rows extend to the end."""
    ends = window_ends(n_rows, window, stride)
    return [(int(ends[first]) - window + 1, n_rows if stop == len(ends) else int(ends[stop - 1]) + 1)
            for first, stop in runs]


def training_rows(ranges: list[tuple[int, int]], n_rows: int) -> list[tuple[int, int]]:
    """The rows [first, stop) of a group of n_rows rows that only training windows cover: before each
    held-out range of `held_out_rows` (which ends at the group's end), from the end of the one before;
    all of them when nothing is held out."""
    if not ranges:
        return [(0, n_rows)]
    after_previous = [0] + [stop for _, stop in ranges[:-1]]
    return [(after, first) for after, (first, _) in zip(after_previous, ranges) if first > after]


def _calibration_rows(model, values, groups, runs, how):
    """Row scores (n,) of the valid held-out rows and their positions: `runs` is a list of (T_r,) row
    positions, one per held-out run (None: score all rows)."""
    if runs is None:
        table = score_values(model, values, how=how, groups=groups, threshold=np.inf, alarms=None)
        valid = table["valid"].to_numpy()
        return table["score"].to_numpy()[valid], np.flatnonzero(valid)
    # Each held-out run is scored as a series of its own, so no training window leaks in.
    rows = np.concatenate(runs)
    run_ids = np.repeat(np.arange(len(runs)), [len(run) for run in runs])
    table = score_values(model, values[rows], how=how, groups=run_ids, threshold=np.inf, alarms=None)
    valid = table["valid"].to_numpy()
    return table["score"].to_numpy()[valid], rows[valid]


# ----------------------------------------------------------------------------------- scoring
def score_values(model, values, *, stride: int = 1, how: str = DEFAULTS["how"], groups=None,
                 feature_errors: bool = False, feature_names=None, threshold=None,
                 alarms: dict | None = DEFAULT_ALARM) -> pd.DataFrame:
    """Score a series `values` (T, F) (the model's features, in its order): one row per input row.

    Columns: ``score`` (NaN where invalid), ``is_anomaly`` (0/1: score above the threshold),
    ``alarm`` (0/1: the flags after the alarm rules of `lstmae.scoring.alarms` with the options
    `alarms` (min_length, merge_gap, cooldown in rows), per group, each alarm trimmed to its flagged
    rows, and with `alarms["focus"]` = q narrowed to its rows with window evidence at q (dropped without
    any; not with how="point", whose rows are scored by their own steps); left out when `alarms` is None),
    ``valid`` (False for rows no full window covers: with how="end" the first window - 1 rows of each group,
    with "max"/"mean"/"point" only rows past a group's last window, and every row of a group shorter than the
    window), plus
    ``error_<feature>`` per feature with `feature_errors` (never smoothed), ``threshold`` (per row) for adaptive
    threshold rules, and ``overflow`` (True where a window's error overflowed; such rows score inf)
    when any did. RangeIndex over the T rows.

    threshold: None for the model's own (`threshold_` or its adaptive rule), a number, or a rule
    spec such as "quantile:0.995" fitted by `threshold_for` on the model's calibration scores.
    With `model.smooth` = W > 1 and how other than "end", each group's scores are smoothed over W rows
    (`lstmae.scoring.points.smooth_points`) before they are flagged.
    feature_names: the names of `values`' columns, for an array: put in the model's order when the model knows
    its features' (refused unless they are the same names), else the names of the ``error_<feature>`` columns.
    The model is never changed. A DataFrame's features are taken by name when the model knows its features'.
    """
    if feature_names is None and _named_columns(values) and hasattr(model, "feature_names_in_"):
        values = feature_values(model, values, dtype=np.float64)  # in the model's order, not the frame's
    names = [str(name) for name in feature_names] if feature_names is not None else None
    if names is not None and hasattr(model, "feature_names_in_"):
        # they labelled the error columns only: an array in another order was scored as if in the model's
        order = check_features(model._feature_names(), names, "feature_names")
        values = series_array(values)
        if values.ndim == 2 and values.shape[1] == len(names):  # else _checked_series names the count
            values, names = values[:, order], model._feature_names()
    values = _checked_series(model, values, names)
    names = names or model._feature_names()
    check_how(how)
    if alarms is not None:
        alarms = check_alarm_options(alarms)
    n_rows, window = len(values), model.n_timesteps_
    points = np.full(n_rows, np.nan)
    valid = np.zeros(n_rows, bool)
    overflow = np.zeros(n_rows, bool)
    errors = np.full((n_rows, len(names)), np.nan) if feature_errors else None
    smooth = 1 if how == "end" else model.smooth
    # how="point" scores a row by its own steps: there is no spread over the covering windows to narrow
    focus = None if alarms is None or how == "point" else alarms.get("focus")
    covering = np.full(n_rows, np.nan) if focus is not None else None  # each row's covering windows' focus-quantile
    for group in windowed_groups(n_rows, window, groups):
        X, _ = temporalize(values[group.rows], window, stride)
        if how == "point":
            group_points, group_valid, group_overflow, group_errors = _point_rows(model, X, len(group.rows), stride,
                                                                                  feature_errors)
            points[group.rows], valid[group.rows], overflow[group.rows] = (smooth_points(group_points, smooth),
                                                                          group_valid, group_overflow)
            if feature_errors:
                errors[group.rows] = group_errors
            continue
        window_scores = model.anomaly_score(X)
        if focus is not None:
            covering[group.rows] = covering_quantile(window_scores, len(group.rows), window, stride, focus)
        overflow[group.rows] = _overflowed_rows(window_scores, len(group.rows), window, stride, how)
        # an overflowed window counts 0 in the mapping; the rows it covers are then set to inf (the point path's are)
        group_points, group_valid = window_to_points(np.where(np.isfinite(window_scores), window_scores, 0.0),
                                                     len(group.rows), window, stride, how=how)
        group_points[overflow[group.rows] & group_valid] = np.inf  # skipped by the smoothing, as on the point path
        points[group.rows], valid[group.rows] = smooth_points(group_points, smooth), group_valid
        if feature_errors:
            with np.errstate(over="ignore", invalid="ignore"):
                per_feature = model.reconstruction_error(X, per="feature")
            finite = np.isfinite(per_feature)
            group_errors, _ = window_to_points(np.where(finite, per_feature, 0.0), len(group.rows), window, stride,
                                               how=how)
            group_errors[_overflowed_rows(per_feature, len(group.rows), window, stride, how)] = np.inf
            errors[group.rows] = group_errors
    result = pd.DataFrame({"score": points, "valid": valid})
    flags, thresholds = flag_rows(model, result["score"].to_numpy(), valid, groups, threshold, how)
    result.insert(1, "is_anomaly", flags)
    every_group = groups_of(n_rows, groups)
    if alarms is not None:
        if focus is not None:
            with np.errstate(invalid="ignore"):  # NaN: a row no window covers, or no adaptive threshold yet
                evidence = covering > thresholds
        alarm = np.zeros(n_rows, np.int8)
        for group in every_group:
            alarm[group.rows] = alarms_from_flags(flags[group.rows], causal=False, **alarm_rules(alarms))
            if focus is not None:
                alarm[group.rows] = focus_alarms(alarm[group.rows], evidence[group.rows])
        result.insert(2, "alarm", alarm)
    _warn_storms(result["alarm" if alarms is not None else "is_anomaly"].to_numpy(), valid, every_group,
                 "alarms" if alarms is not None else "flags")
    if isinstance(thresholds, np.ndarray):
        result["threshold"] = thresholds
    if feature_errors:
        for j, name in enumerate(names):
            result[f"error_{name}"] = errors[:, j]
    if overflow.any():
        result["overflow"] = overflow
    return result


def _warn_storms(alarm: np.ndarray, valid: np.ndarray, groups: list[Group], what: str) -> None:
    """An AlarmStormWarning naming each of `groups` whose `what` ("alarms" or "flags": alarm (T,) 0/1) cover
    more than STORM_SHARE of its valid rows."""
    shares = [(group.name, alarm[group.rows][valid[group.rows]].mean()) for group in groups
              if valid[group.rows].any()]
    storms = [(name, share) for name, share in shares if share > STORM_SHARE]
    if not storms:
        return
    where = ", ".join(f"{share:.0%} of the scored rows" + ("" if name is None else f" of {_name(name)}")
                      for name, share in storms[:5]) + (f" and more in {len(storms) - 5} other groups"
                                                         if len(storms) > 5 else "")
    warnings.warn(AlarmStormWarning(
        f"{what} cover {where}, too many to act on; if those rows are normal, the model has not learnt them (the "
        "series changed after training, or its training part lacked this behaviour): refit on more or more recent "
        "normal rows",
        threshold_remedy=", or score with a threshold that follows the stream's own level (--threshold "
                         "telemanom:2,mad=8; threshold=\"telemanom:2,mad=8\"), without refitting"), stacklevel=3)


# Windows per pass of how="point" scoring: bounds the (chunk, L, D) step-error temporaries.
POINT_CHUNK = 2048


def _overflowed_rows(window_values, n_rows: int, window: int, stride: int, how: str) -> np.ndarray:
    """(T,) or (T, K) bool: the rows that take a non-finite window value (N,) or (N, K) (an overflowed
    error: an extreme input value), every row the window covers, or with how="end" its end row onwards."""
    bad = ~np.isfinite(window_values)
    if not bad.any():
        return np.zeros((n_rows,) + bad.shape[1:], bool)
    hit, _ = window_to_points(bad.astype(np.float64), n_rows, window, stride, how="end" if how == "end" else "max")
    return np.nan_to_num(hit) > 0


def _point_rows(model, X, n_rows: int, stride: int, feature_errors: bool):
    """how="point" for one group's windows X (N, L, F): row scores (T,) (NaN where invalid), valid (T,),
    overflow (T,), and per-feature errors (T, F) or None. A row's error vector is the mean over the
    windows covering it of the error model's vector at its step, then scored by the error model."""
    sums = counts = feature_sums = None
    for first in range(0, len(X), POINT_CHUNK):
        chunk = model.step_errors(X[first : first + POINT_CHUNK], feature_errors=feature_errors)
        vectors, per_feature = chunk if feature_errors else (chunk, None)
        if sums is None:
            sums, counts = np.zeros((n_rows, vectors.shape[2])), np.zeros(n_rows)
            feature_sums = None if per_feature is None else np.zeros((n_rows, per_feature.shape[2]))
        if per_feature is not None:
            add_steps(feature_sums, None, per_feature, first, stride)  # same windows, same counts
        add_steps(sums, counts, vectors, first, stride)
    valid = counts > 0
    with np.errstate(invalid="ignore", over="ignore"):
        vectors = sums[valid] / counts[valid, None]
    finite = np.isfinite(vectors).all(axis=1)
    scores = np.full(valid.sum(), np.inf)  # an overflowed error: as anomalous as can be
    if finite.any():
        scores[finite] = model.error_model_.score_vectors(vectors[finite])
    points = np.full(n_rows, np.nan)
    points[valid] = scores
    overflow = np.zeros(n_rows, bool)
    overflow[np.flatnonzero(valid)[~finite]] = True
    errors = None
    if feature_sums is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            errors = feature_sums / np.where(valid, counts, np.nan)[:, None]
        errors[np.isposinf(errors)] = np.finfo(np.float64).max
    return points, valid, overflow, errors


def scoring_how(model) -> str:
    """The row mapping a series is scored with when none is given: the one the model's threshold was fitted on
    (`lstmae score` and the service alike), the default for a model fitted on windows."""
    return DEFAULTS["how"] if model.threshold_how_ == "window" else model.threshold_how_


def fitted_how(model) -> str:
    """The `how` the model's threshold was fitted on ("end" for one fitted on window scores)."""
    return {"window": "end"}.get(model.threshold_how_, model.threshold_how_)


def calibration_for(model, how: str) -> np.ndarray:
    """The model's held-out normal scores of the kind `how` ("window", "end", "max", "mean", "point"). Row
    scores with how="end" are the window scores (each row takes the window ending there). `fit_series`
    stores "max" and "mean" beside the kind it was fitted on. A model fitted on windows (`fit`) has
    window scores only, which stand in for every kind but "point"; a row-fitted model without the kind
    asked for (saved before both were stored) is refused: a rule fitted on another kind of row score
    would flag far more or fewer rows than it says."""
    scores = model.calibration_scores_
    kind = "window" if how == "end" else how
    if kind in scores:
        return scores[kind]
    if model.threshold_how_ == "window" and kind != "point":
        return scores["window"]
    fitted = fitted_how(model)
    raise DataError(f"the model has no held-out how={how!r} scores to fit a threshold on (its threshold was "
                    f"fitted on how={fitted!r}); score with how={fitted!r}, refit it with how={how!r} (lstmae fit "
                    "--how), or give a fixed threshold such as value:0.5")


def threshold_for(model, spec, labels_scores=None, *, how: str | None = None) -> float:
    """A static threshold for the rule `spec` ("quantile:0.995", "value:0.4", ...), fitted on the model's
    calibration scores of the kind `how` (default: the model's `threshold_how_`), its held-out normal
    data scored as it will be scored, never on the data being scored.

    labels_scores: (labels, scores) of labelled data, needed by label-based rules (best-f1) only.
    """
    if not isinstance(spec, (str, ThresholdRule)):
        raise DataError(f"threshold_for needs a rule such as 'mad:8' or 'quantile:0.995'; got {spec!r}")
    rule = parse_threshold(spec) if isinstance(spec, str) else spec
    if rule.method == "value":
        return float(rule.param)
    if needs_labels(rule):
        if labels_scores is None:
            raise DataError(f"threshold '{rule}' needs labels: fit it on labelled data (lstmae evaluate "
                            "--label-column; Python: threshold_for(model, rule, (labels, scores))) or use a rule "
                            "without labels, e.g. quantile:0.995")
        labels, scores = labels_scores
        return float(rule.fit(scores, labels))
    how = how or model.threshold_how_
    if how != "window":
        check_how(how)  # an unknown one was told to refit the model with it
    threshold, floor = float(rule.fit(calibration_for(model, how))), _threshold_floor(model, how)
    return threshold if floor is None else max(threshold, floor)


def _threshold_floor(model, how: str) -> float | None:
    """The lowest static threshold of the kind `how` (`threshold_floor`), None without one. Row scores with
    how="end" are window scores, as in `calibration_for`."""
    return model.threshold_floors_.get("window" if how == "end" else how)


def threshold_source(model) -> str:
    """What the model's threshold was fitted on, in words, with its floor when one is set (`fit_series`)."""
    kind = "window" if model.threshold_how_ == "window" else "row"
    held_out = model.history_.get("n_validation", 1) != 0  # validation_fraction=0: fitted on the training data
    text = (f"{'held-out' if held_out else 'training'} {kind} scores"
            + ("" if kind == "window" else f" (how={model.threshold_how_}"
               + (f", each the mean of {model.smooth} rows)" if model.smooth != 1 else ")"))
            + ("" if held_out else ": nothing was held out (validation_fraction=0)"))
    floor = _threshold_floor(model, model.threshold_how_)
    if floor is not None:
        text += (f", never below {floor:.4g}, the {model.threshold_floor:g} quantile of the training rows' scores"
                 + (" (it is)" if model.threshold_ == floor else ""))
    return text


def needs_labels(rule) -> bool:
    """Whether a threshold rule is fitted on labelled scores (best-f1, best-f:BETA)."""
    return rule.method in ("best-f1", "best-f")


def flag_rows(model, scores, valid, groups, threshold, how):
    """(flags (T,) int8, thresholds: per row (T,) for an adaptive rule, else the one value (float)) for row
    scores (T,) of the kind `how`, NaN where invalid, with the threshold of `row_threshold`."""
    value, rule = row_threshold(model, threshold, how)
    if rule is not None:
        return _adaptive_flags(model, rule, scores, valid, groups, how)
    return apply_threshold(scores, value), value


def row_threshold(model, threshold, how: str):
    """(value, None) for a static threshold of row scores of the kind `how`, (None, rule) for an adaptive rule.
    `threshold`: None (the model's own), a rule spec or a number. The model's own rule is refitted on calibration
    scores of that kind when its threshold was fitted on another kind (a threshold must be fitted on the kind of
    score it is applied to)."""
    if threshold is None or isinstance(threshold, str):
        rule = rule_for(model, threshold, how)
        if getattr(rule, "adaptive", False):
            return None, rule
        if threshold is None and _same_kind(how, model.threshold_how_):
            return float(model.threshold_), None
        return threshold_for(model, rule, how=how), None
    return fixed_threshold(threshold), None


def end_threshold(model, threshold=None):
    """(static value or None, fitted adaptive template or None) for scores of one window each: the how="end" row
    scores of a stream, and the scores of an exported graph (`row_threshold` of that kind)."""
    value, rule = row_threshold(model, threshold, "end")
    return value, None if rule is None else rule.make_adaptive().fit(calibration_for(model, "end"))


def fixed_threshold(threshold) -> float:
    """A threshold given as a number (neither None nor a rule), as a float; DataError for anything else."""
    if not is_number(threshold) or np.isnan(threshold):
        raise DataError(f"threshold must be None (the model's own), a rule such as 'mad:8', 'quantile:0.995' or "
                        f"'dspot:1e-3', or a number (not NaN); got {threshold!r}")
    return float(threshold)


def rule_for(model, threshold, how: str):
    """The threshold rule that scoring rows of the kind `how` applies: `threshold` (a spec) when given,
    else the model's own; a model fitted with threshold="auto" on another kind of score takes the
    default rule of this kind (`default_threshold(how)`)."""
    if threshold is not None:
        return parse_threshold(threshold)
    # a rule given to calibrate_threshold while `threshold` stayed "auto" is the model's rule too
    chosen = model.threshold_rule_ != parse_threshold(default_threshold(model.threshold_how_))
    if _same_kind(how, model.threshold_how_) or getattr(model, "threshold", "auto") != "auto" or chosen:
        return model.threshold_rule_
    return parse_threshold(default_threshold(how))


def _same_kind(how: str, fitted_how: str) -> bool:
    return how == fitted_how or {how, fitted_how} == {"end", "window"}


def _adaptive_flags(model, rule, scores, valid, groups, how):
    """Each group's rows, in order, through its own copy of the adaptive threshold, which starts from the
    model's calibration scores of that kind and moves with the past rows only."""
    flags = np.zeros(len(scores), np.int8)
    thresholds = np.full(len(scores), np.nan)
    for group in groups_of(len(scores), groups):
        detector = rule.make_adaptive().fit(calibration_for(model, how))
        group_scores = np.where(valid[group.rows], scores[group.rows], np.nan)
        overflowed = np.isinf(group_scores)  # flagged, and kept out of the detector's statistics
        group_flags, group_thresholds = detector.update(np.where(overflowed, np.nan, group_scores))
        flags[group.rows] = np.where(overflowed, 1, group_flags)
        thresholds[group.rows] = group_thresholds
    return flags, thresholds


def score_frame(model, frame, *, stride: int = 1, how: str = DEFAULTS["how"], entity_column: str | None = None,
                feature_errors: bool = False, threshold=None, alarms: dict | None = DEFAULT_ALARM) -> pd.DataFrame:
    """`score_values` for a DataFrame (or an array (T, F)): the trained feature columns are picked by
    name when the model knows them (other columns are ignored); the result keeps the input's index and order.
    With `entity_column`, windows never cross from one entity to the next. A model fitted on a table with an
    entity and a time column (`lstmae fit`, `fit_data`) reads them from a frame that has them (the time column
    may be its index), as `lstmae score` reads a file: each entity is its own series (a frame without the entity
    column is scored as one, with a warning), split where the time jumps by more than the model's max_gap, and
    rows out of time order are scored in time order (with a warning)."""
    frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(series_array(frame))
    settings = getattr(model, "data_settings_", None) or {}
    own_entity, own_time = settings.get("entity_column"), settings.get("time_column")
    if entity_column is None and own_entity is not None:
        if own_entity in frame.columns:
            entity_column = own_entity
        else:
            warnings.warn(f"the data has no column {own_entity!r}, the model's entity column: "
                          f"{_WITHOUT_COLUMN['entity_column']}", UserWarning, stacklevel=3)
    entities = None
    if entity_column is not None:
        if entity_column not in frame.columns:
            raise DataError(f"no entity column {entity_column!r}; the columns are {list(frame.columns)[:12]}")
        entities = frame[entity_column].to_numpy()
        frame_features = frame.drop(columns=[entity_column])
    else:
        frame_features = frame
    values = feature_values(model, frame_features)
    groups, order = entities, None
    times = (frame[own_time] if own_time in frame.columns else frame.index.to_series() if own_time is not None
             and frame.index.name == own_time else None)
    if times is not None:
        from .data.io import _time_index, _time_order

        times = _time_index(times.reset_index(drop=True), "the data")
        order = _time_order(times, entities, "the data")  # warns when the rows had to be put in order
        if order is not None:
            values, times = values[order], times[order]
            entities = entities[order] if entities is not None else None
        groups, _ = data_groups(SimpleNamespace(index=times, entities=entities), settings.get("max_gap"))
    result = score_values(model, values, stride=stride, how=how, groups=groups, feature_errors=feature_errors,
                          threshold=threshold, alarms=alarms)
    if order is not None:
        result = result.iloc[np.argsort(order)]
    result.index = frame.index
    return result


def _refuse_undeclared(frame: pd.DataFrame) -> None:
    """DataError for a column of `frame` that looks like labels or a time index, as `lstmae fit` refuses one: no
    column becomes a feature by accident (feature_names given: the caller named them all)."""
    from .data.io import undeclared_role

    for name in frame.columns:
        found = undeclared_role(frame[name])
        if found is not None:
            role, what = found
            fix = {"label": f"pass it as labels=frame[{name!r}] and leave it out of the features",
                   "class": "leave it out of the features",
                   "time": f"make it the index (frame.set_index({name!r})) and leave it out of the features"}[role]
            raise DataError(f"column {name!r} looks like {what}, not a feature; {fix} (or give feature_names to "
                            "keep it as one)")


def _named_columns(values) -> bool:
    """Whether `values` is a DataFrame whose columns are all names (strings)."""
    return isinstance(values, pd.DataFrame) and all(isinstance(c, str) for c in values.columns)


def feature_values(model, frame: pd.DataFrame, dtype=np.float32) -> np.ndarray:
    """(T, F) values (`dtype`) of the model's features from `frame`, by name when the model knows them."""
    check_unique_names([str(name) for name in frame.columns], "the data")
    if hasattr(model, "feature_names_in_") and all(isinstance(c, str) for c in frame.columns):
        missing = [name for name in model.feature_names_in_ if name not in frame.columns]
        if missing:
            raise DataError(f"expected {counted(model.n_features_in_, 'feature')} (trained on "
                            f"{', '.join(model.feature_names_in_)}), missing {', '.join(map(repr, missing))}")
        frame = frame[list(model.feature_names_in_)]
    for name, kind in frame.dtypes.items():
        if kind.kind in "mMc" or isinstance(kind, pd.DatetimeTZDtype):
            hint = "pass it as the time column or drop it" if kind.kind != "c" else "drop it or convert it"
            raise DataError(f"feature column {name!r} holds {kind} values, not real numbers; {hint}")
    try:
        values = frame.to_numpy(dtype=dtype)
    except (TypeError, ValueError) as err:
        for name in frame.columns:
            cells = frame[name]
            bad = (pd.to_numeric(cells, errors="coerce").isna() & cells.notna()).to_numpy()
            if bad.any():
                raise DataError(f"feature column {name!r} must hold numbers: row {cells.index[bad][0]!r} holds "
                                f"{cells[bad].iloc[0]!r}; fix the cell or drop the row") from None
        raise DataError(f"feature columns must hold numbers ({str(err).splitlines()[0]})") from None
    if values.shape[1] != model.n_features_in_:
        raise DataError(f"expected {model.n_features_in_} feature columns, got {values.shape[1]}")
    return values


def score_sequences(model, X, *, threshold=None, index=None) -> pd.DataFrame:
    """One row per sequence of X (N, L, F): ``score`` and ``is_anomaly``; `threshold` as in `score_values`."""
    scores = model.anomaly_score(X)  # finite, or inf where an error overflowed: never NaN
    flags, _ = flag_rows(model, scores, np.ones(len(scores), bool), None, threshold, "window")
    return pd.DataFrame({"score": scores, "is_anomaly": flags}, index=index)


# ------------------------------------------------------------------------- encode, reconstruct
def encode_values(model, values, *, stride: int = 1, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Encodings of every window of the series (T, F), per group: (codes (N, Z), end_rows (N,)), where
    end_rows are the positions of each window's last row."""
    values = _checked_series(model, values)
    window = model.n_timesteps_
    codes, ends = [], []
    for group in windowed_groups(len(values), window, groups):
        X, _ = temporalize(values[group.rows], window, stride)
        codes.append(model.transform(X))
        ends.append(group.rows[window_ends(len(group.rows), window, stride)])
    return np.concatenate(codes), np.concatenate(ends)


def _checked_series(model, values, names=None) -> np.ndarray:
    """The series (T, F) as an array for the fitted `model`, its first missing, infinite or unscalable cell named
    by row and column (`names`, default the model's features), not by the number of a window that holds it."""
    check_is_fitted(model, "module_")
    values = series_array(values)
    expected = model._feature_names()
    if values.ndim == 2 and values.shape[1] != len(expected):  # "1 features in the data but 2 names"
        raise DataError(f"the series has {counted(values.shape[1], 'column')}; the model "
                        f"was trained on {counted(len(expected), 'feature')} ({abbreviate_names(expected)})")
    names = names or expected
    check_finite(values, names, "the series", nan_policies=None)
    _check_scalable(model, values, names)
    return values


def reconstruct_values(model, values, *, groups=None) -> np.ndarray:
    """Reconstruction (T, F) of a series from back-to-back windows per group; NaN for the rows after a
    group's last full window."""
    values = _checked_series(model, values)
    window = model.n_timesteps_
    stitched = np.full(values.shape, np.nan, np.float32)
    for group in windowed_groups(len(values), window, groups):
        X, _ = temporalize(values[group.rows], window, stride=window)
        covered = group.rows[: len(X) * window]
        stitched[covered] = model.reconstruct(X).reshape(-1, values.shape[1])
    return stitched


# ------------------------------------------------------------------ tables read in a model's layout
# What scoring does when the data lacks the model's time or entity column (a warning says so).
_WITHOUT_COLUMN = {
    "time_column": "rows are taken in file order, numbered instead of timed, and no time gap splits them",
    "entity_column": "its rows are scored as one machine's series",
}


def read_for_model(model, path, *, label_column=None, nan_policy: str = "error", labels: bool = True):
    """Read DATA (a file) in the layout the model was trained on (`model.data_settings_`), with its
    features checked against the model's and put in its order: SeriesData or SequenceData.
    labels=False: for a command that uses none (encode, reconstruct), the model's label column is left
    unread (its cells unchecked: partly labelled data is read as well as labelled). labels=True: a series
    model fitted without a label column reads a 0/1 column named label, y, anomaly, ... as the labels
    (`read_series`'s find_labels), not as a feature it never had."""
    from .data.io import is_array_file, read_sequences, read_series, table_columns

    settings = model.data_settings_
    layout = settings.get("layout", "series")
    if label_column is not None and label_column in model._feature_names():  # read as a label, it went missing
        raise DataError(f"{path}: --label-column {label_column!r} is one of the model's features; name the column "
                        "that holds the 0/1 labels")
    for key in ("time_column", "entity_column"):
        if label_column is not None and label_column == model.data_settings_.get(key):
            raise DataError(f"{path}: --label-column {label_column!r} is the model's {key.replace('_', ' ')}; name "
                            "the column that holds the 0/1 labels")
    array = is_array_file(path)  # its columns have no names: the model's selection does not apply
    if layout == "sequences":
        # the timestep columns by the names the model was trained on, in its order (a model saved before they were
        # kept: its --columns); the model's label column is read where the file has it, and where nothing else
        # keeps it from being taken for a timestep
        columns = None if array else settings.get("timestep_columns") or settings.get("columns")
        own_label = settings.get("label_column")
        if (label_column is None and not array and own_label in set(table_columns(path) or ())
                and (labels or columns is None)):
            label_column = own_label
        data = read_sequences(path, columns=columns, label_column=label_column, nan_policy=nan_policy,
                              find_labels=labels and own_label is None)
    else:
        in_file = table_columns(path)
        present = set(in_file or ())
        reserved = {key: settings.get(key) for key in ("time_column", "entity_column")}
        for key, name in reserved.items():
            if name is not None and name not in present:
                warnings.warn(f"{path}: no column {name!r}, the model's --{key.replace('_', '-')}: "
                              f"{_WITHOUT_COLUMN[key]}", UserWarning, stacklevel=2)
        reserved = {key: name for key, name in reserved.items() if name in present}
        if label_column is not None and in_file is not None and label_column not in present:
            raise DataError(f"{path}: no column {label_column!r} (--label-column); the columns are "
                            f"{', '.join(map(repr, in_file[:12]))}")
        label = label_column or settings.get("label_column")
        columns = None if array else settings.get("columns")
        names = getattr(model, "feature_names_in_", None)
        if not labels and (columns or names is not None):
            # the model's features by name: a label column (the model's, or one it never had) is then neither read
            # nor taken for a feature; reconstruct, which has no --columns, could not read a file with one
            label, columns = None, columns or list(names)
        data = read_series(path, columns=columns, label_column=label if label in present else None,
                           nan_policy=nan_policy, find_labels=labels, **reserved)
    expected = model._feature_names()
    if layout == "sequences" and not array and len(expected) == 1:
        data.feature_names = list(expected)  # a table's one feature is "value" by convention: the model's, whatever
        # it was named when fitted (f0 on an .npy file)
    if array and list(data.feature_names) != list(expected):  # its columns have no names
        if len(data.feature_names) != len(expected):
            raise DataError(f"{data.source}: an array file's columns have no names, and it has {len(data.feature_names)}"
                            f" where the model has {counted(len(expected), 'feature')} ({abbreviate_names(expected)}); "
                            "give those columns, in that order")
        warnings.warn(f"{path}: an array file has no column names; the model's features ({abbreviate_names(expected)}) "
                      f"are taken from its {counted(len(expected), 'column')}, in that order",
                      UserWarning, stacklevel=2)
        data.feature_names = list(expected)
    order = check_features(expected, data.feature_names, data.source)
    data.values = data.values[..., order]
    data.feature_names = expected
    if layout == "sequences" and data.values.shape[1] != model.n_timesteps_:
        raise DataError(f"{data.source}: sequences have {data.values.shape[1]} timesteps, the model was "
                        f"trained on {model.n_timesteps_}; resample them to that length")
    if layout == "series":
        check_window(model.n_timesteps_, len(data.values), data.source,
                     fix=f"the model reads windows of {model.n_timesteps_} rows: give at least that many")
    return data


def fit_data(model, data, *, window: int | None = None, stride: int = 1, how: str = DEFAULTS["how"],
             settings: dict | None = None, checkpoint_dir=None):
    """Train `model` on data read by `lstmae.data.io` (SeriesData: windows of `window` rows per entity;
    SequenceData: the sequences). Samples holding a labelled anomaly are left out of training. The
    data settings (layout, columns, ...) are recorded in `model.data_settings_`. how: the kind of row
    score a series model's threshold is fitted on (see `fit_series`)."""
    from .data.io import SequenceData

    settings = dict(settings or {})
    if isinstance(data, SequenceData):
        X, labels = data.values, data.labels
        keep = np.ones(len(X), bool) if labels is None else labels == 0
        if not keep.any():
            raise DataError(f"{data.source}: every sequence contains a labelled anomaly; nothing normal to train on")
        for name in ("threshold_floor", "smooth"):
            if getattr(model, name) != DEFAULTS[name]:
                raise DataError(f"{name} applies to a series (rows in time); these are independent sequences: drop "
                                f"--{name.replace('_', '-')}, or fit the data as a series (--layout series)")
        model.fit(X if keep.all() else X[keep], feature_names=data.feature_names, checkpoint_dir=checkpoint_dir)
        settings.update(layout="sequences", n_train=int(model.history_.get("n_train", 0)), unit="sequences",
                        timestep_columns=data.columns)
    else:
        check_window(window, len(data.values), data.source)
        groups, n_gaps = data_groups(data, settings.get("max_gap"))
        fit_series(model, data.values, window=window, stride=stride, groups=groups, labels=data.labels,
                   feature_names=data.feature_names, how=how, checkpoint_dir=checkpoint_dir)
        settings.update(layout="series", window=int(window), stride=int(stride), unit="windows",
                        n_train=int(model.history_.get("n_train", 0)), n_gaps=int(n_gaps))
    model.data_settings_ = settings
    return model


def score_data(model, data, *, how: str = DEFAULTS["how"], stride: int = 1, threshold=None,
               feature_errors: bool = False, events: bool = False, alarms: dict | None = DEFAULT_ALARM):
    """(table, events) for data read by `read_for_model`: one row per input row (series, indexed by its
    time column or row number) or per sequence, with a `label` column when the data has labels; the
    events table (one row per alarm, with its peak and top features) when `events` is True (series
    only). `alarms`: the alarm rules' options, as in `score_values`; None makes every flagged run an
    event."""
    from .data.io import SequenceData

    if isinstance(data, SequenceData):
        table = score_sequences(model, data.values, threshold=threshold, index=data.ids)
        if data.labels is not None:
            table["label"] = data.labels
        return table, None
    groups, _ = data_groups(data, model.data_settings_.get("max_gap"))
    table = score_values(model, data.values, stride=stride, how=how, groups=groups,
                         feature_errors=feature_errors or events, threshold=threshold, alarms=alarms)
    table.index = data.index
    entity_column = model.data_settings_.get("entity_column") if data.entities is not None else None
    table = _on_input_rows(table, data)
    # the labels and entities of the rows --nan-policy drop left out are the input's, not a fill value
    table = _with_entities(table, model, SimpleNamespace(entities=data.input_entities))
    if data.labels is not None:
        table["label"] = data.input_labels
    found = None
    if events:
        error_columns = [f"error_{name}" for name in data.feature_names]
        # an event's top features are among those its score is made of (not the 0/1 features kept as context)
        scored = model.error_model_.scored
        ranked = [i for i in range(len(error_columns)) if scored is None or scored[i]]
        found = _events_per_entity(table, entity_column, "alarm" if alarms is not None else "is_anomaly",
                                   [error_columns[i] for i in ranked], [data.feature_names[i] for i in ranked])
        if not feature_errors:
            table = table.drop(columns=error_columns)
    return table, found


def _events_per_entity(table: pd.DataFrame, entity_column, flag_column: str, error_columns: list, feature_names):
    """The events table of a scored table, found per entity (an alarm never runs from one machine into the
    next), with the entity's column; start_row / end_row are positions in `table`."""
    from .scoring import find_events

    flags, scores = table[flag_column].to_numpy(), table["score"].to_numpy()
    errors = np.nan_to_num(table[error_columns].to_numpy(), posinf=np.finfo(np.float32).max)
    # rows that --nan-policy drop left out have no entity in the table: each takes its neighbours' (never flagged)
    ids = None if entity_column is None else table[entity_column].ffill().bfill().to_numpy()
    parts = []
    for group in groups_of(len(table), ids):
        part = find_events(flags[group.rows], scores[group.rows], feature_errors=errors[group.rows],
                           feature_names=feature_names, index=table.index[group.rows])
        part["start_row"] = group.rows[part["start_row"].to_numpy(np.int64)]
        part["end_row"] = group.rows[part["end_row"].to_numpy(np.int64)]
        if entity_column is not None:
            part.insert(1, entity_column, group.name)
        parts.append(part)
    found = pd.concat(parts, ignore_index=True).sort_values("start_row", kind="stable", ignore_index=True)
    found["event"] = np.arange(len(found))
    return found


def data_groups(data, max_gap=None, *, announce: bool = True) -> tuple[np.ndarray | None, int]:
    """Group ids (T,) for SeriesData: its entities, each split where the time column jumps by more than
    `max_gap` (None: 10 times the median step; see `data.windowing.segment_ids`), and the number of
    gaps split at (announced in a warning unless `announce` is False: the data's scoring already did)."""
    from .data.windowing import segment_ids

    if isinstance(data.index, pd.RangeIndex) and max_gap is None:
        return data.entities, 0
    ids, n_gaps = segment_ids(data.index, max_gap, entities=data.entities)
    if not n_gaps:
        return data.entities, 0
    if announce:
        warnings.warn(f"split the series at {n_gaps} time gap(s) (a step longer than "
                      f"{max_gap or '10 sampling periods'}); no window spans a gap", UserWarning, stacklevel=3)
    _, first_rows = np.unique(ids, return_index=True)  # ids count segments in the order of their first rows
    names = np.array([Segment(("" if data.entities is None else f"{_name(data.entities[row])}, ")
                              + f"segment {number} from {data.index[row]}")
                      for number, row in enumerate(first_rows, 1)], dtype=object)
    return names[ids], n_gaps


class Segment(str):
    """A group id naming a stretch between time gaps, shown in messages as it reads (not quoted as an id)."""

    def __repr__(self) -> str:
        return str(self)


def _on_input_rows(table: pd.DataFrame, data) -> pd.DataFrame:
    """The table of the kept rows spread back over every input row (rows that --nan-policy drop left out
    come out with valid False, no score and no flag)."""
    if data.dropped is None or not data.dropped.any():
        return table
    spread = {}
    for column in table.columns:
        values = table[column].to_numpy()
        if values.dtype == bool:
            spread[column] = data.to_input_rows(values, fill=False)
        elif np.issubdtype(values.dtype, np.integer):
            spread[column] = data.to_input_rows(values, fill=0)
        else:
            spread[column] = data.to_input_rows(values.astype(np.float64), fill=np.nan)
    return pd.DataFrame(spread, index=data.input_index)


def encode_data(model, data, *, stride: int = 1) -> pd.DataFrame:
    """Encodings of data read by `read_for_model`, one row per window (keyed by its last row, `end`) or
    per sequence: columns z_j (bottleneck) or mean_j (encoding="mean")."""
    from .data.io import SequenceData

    ends = None
    if isinstance(data, SequenceData):
        codes, index = model.transform(data.values), data.ids
    else:
        groups, _ = data_groups(data, model.data_settings_.get("max_gap"))  # as scoring: no window spans a gap
        codes, ends = encode_values(model, data.values, stride=stride, groups=groups)
        index = pd.Index(data.index[ends], name="end")
    table = pd.DataFrame(codes, columns=list(model.get_feature_names_out()), index=index)
    table.index.name = table.index.name or "sequence"
    return _with_entities(table, model, data, ends)


def _with_entities(table: pd.DataFrame, model, data, rows=None) -> pd.DataFrame:
    """`table` with the model's entity column first, the entity of each of its rows (`rows`: positions in
    `data`, default all): rows of several machines may share their times."""
    entity_column = model.data_settings_.get("entity_column")
    if entity_column is None or getattr(data, "entities", None) is None:
        return table
    entities = np.asarray(data.entities, dtype=object)
    table.insert(0, entity_column, entities if rows is None else entities[rows])
    return table


def reconstruct_data(model, data) -> pd.DataFrame:
    """Reconstructions of data read by `read_for_model`: per input row (series) or per sequence (one
    column per step and feature)."""
    from .data.io import SequenceData

    if isinstance(data, SequenceData):
        X_hat = model.reconstruct(data.values)  # token models: (N, L) ids
        columns = [f"t{t:03d}_{name}" for t in range(X_hat.shape[1]) for name in data.feature_names] \
            if X_hat.ndim == 3 and X_hat.shape[2] > 1 else [f"t{t:03d}" for t in range(X_hat.shape[1])]
        return pd.DataFrame(X_hat.reshape(len(X_hat), -1), columns=columns, index=data.ids)
    groups, _ = data_groups(data, model.data_settings_.get("max_gap"))
    stitched = reconstruct_values(model, data.values, groups=groups)
    return _with_entities(pd.DataFrame(stitched, columns=data.feature_names, index=data.index), model, data)
