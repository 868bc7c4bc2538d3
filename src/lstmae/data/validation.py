"""Checks shared by reading, training and scoring; each failure is one `DataError` line.

Rows are reported 1-based: row 1 is the first data row (the first row under a CSV header,
or ``values[0]`` of an array). Sequences are numbered the same way, and so are their steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

from lstmae.exceptions import DataError

SERIES_NAN_POLICIES = "ffill|interpolate|drop"
SEQUENCE_NAN_POLICIES = "interpolate|drop"

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def quote_names(names: Sequence[str], limit: int = 5) -> str:
    """``'a', 'b'`` for short lists; ``'a', 'b', ... and 7 more`` past `limit`."""
    shown = ", ".join(f"'{name}'" for name in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def abbreviate_names(names: Sequence[str]) -> str:
    """``a, b, ..., h``: enough of a feature list to recognise it in one line."""
    if len(names) <= 4:
        return ", ".join(names)
    return f"{names[0]}, {names[1]}, ..., {names[-1]}"


def check_features(expected: Sequence[str], got: Sequence[str], source: str) -> np.ndarray:
    """Check that the data has exactly the features a model was trained on.

    Returns the index array ``order`` such that ``values[..., order]`` puts the columns of
    data with features `got` into the trained order `expected` (the same names in another
    order are fine).
    """
    expected, got = list(expected), list(got)
    missing = [name for name in expected if name not in got]
    unexpected = [name for name in got if name not in expected]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing {quote_names(missing)}")
        if unexpected:
            problems.append(f"unexpected {quote_names(unexpected)}")
        fix = (
            "pass --columns to choose the trained columns"
            if not missing
            else "the data needs every column the model was trained on"
        )
        raise DataError(
            f"{source}: expected {counted(len(expected), 'feature')} (trained on {abbreviate_names(expected)}), "
            f"got {len(got)}: {'; '.join(problems)} ({fix})"
        )
    return np.array([got.index(name) for name in expected], dtype=np.intp)


def check_unique_names(names: Sequence[str], source: str, *, skip_empty: bool = False) -> None:
    """Refuse a name that appears twice (empty names skipped if asked: pandas numbers them)."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if skip_empty and name == "":
            continue
        if name in seen:
            raise DataError(
                f"{source}: column name '{name}' appears twice (columns {seen[name] + 1} and "
                f"{position + 1}); rename one of them"
            )
        seen[name] = position


def counted(n: int, noun: str) -> str:
    """"1 feature", "3 features": a count with its noun (plural: noun + "s")."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def is_integer(value: object, minimum: int | None = None) -> bool:
    """True for an int or numpy integer (a bool is not one), and >= `minimum` where given."""
    return isinstance(value, Integral) and not isinstance(value, bool) and (minimum is None or value >= minimum)


def is_flag(value: object) -> bool:
    """True for True or False, numpy's too (not 1, 0 or a string such as 'no')."""
    return isinstance(value, (bool, np.bool_))


def is_number(value: object) -> bool:
    """True for an int or float, numpy ones too (a bool is not one); NaN and inf are numbers here."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_integer(value: object, name: str, minimum: int = 1) -> int:
    """`value` as an int when it is an integer >= `minimum` (numpy integers too, not bools or floats).

    Raises `DataError`: ``{name} must be an integer >= {minimum}, got {value!r}``.
    """
    if not is_integer(value, minimum):
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_window(window: int, n_rows: int, source: str, fix: str = "use a smaller --window or more data") -> None:
    """`window` must be an integer in ``[1, n_rows]``; `fix` ends the error."""
    check_integer(window, "window")
    if window > n_rows:
        raise DataError(f"{source}: series has {n_rows} rows, shorter than the window {window}; {fix}")


def check_stride(stride: int) -> None:
    """`stride` must be an integer >= 1."""
    check_integer(stride, "stride")


# what a bad cell's message offers beside fixing it (in score the model's features are fixed: it reads as a refit)
NOT_A_FEATURE = "a column that is not a feature can be left out of fit with --columns"


def check_finite(
    values: np.ndarray,
    feature_names: Sequence[str],
    source: str,
    *,
    allow_nan: bool = False,
    nan_policies: str | None = SERIES_NAN_POLICIES,
) -> None:
    """Raise `DataError` on the first infinite value, value outside float32, or NaN.

    `values` is a series ``(T, F)`` (reported as column / row) or sequences ``(N, L, F)``
    (reported as sequence / step / feature). With ``allow_nan`` NaNs pass (a NaN policy
    deals with them later); infinities never do. `nan_policies` is the ``--nan-policy``
    choice the NaN message suggests (None: data given in Python, which has no such option).
    """
    values = np.asarray(values)
    if values.ndim not in (2, 3):
        raise DataError(
            f"{source}: expected a 2-D (T, F) or 3-D (N, L, F) array, got shape {values.shape}"
        )
    if values.shape[-1] != len(feature_names):
        raise DataError(
            f"{source}: {values.shape[-1]} features in the data but {len(feature_names)} names"
        )
    out_of_range = beyond_float32(values)
    if out_of_range.any():
        position = np.argwhere(out_of_range)[0]
        value = values[tuple(position)]
        fix = (
            f"fix the cell ({NOT_A_FEATURE})"
            if values.ndim == 2
            else "fix the value or remove the sequence"
        )
        raise DataError(
            f"{source}: {_where(position, feature_names)} has value {value:g} where a finite "
            f"float32 number is expected; {fix}"
        )
    if allow_nan:
        return
    missing = np.isnan(values)
    if not missing.any():
        return
    feature = int(np.flatnonzero(missing.reshape(-1, values.shape[-1]).any(axis=0))[0])
    count = int(missing[..., feature].sum())
    first = np.argwhere(missing[..., feature])[0]
    name = feature_names[feature]
    if values.ndim == 2:
        where = f"column '{name}' has {counted(count, 'missing value')} (first at row {first[0] + 1})"
    else:
        where = (
            f"feature '{name}' has {counted(count, 'missing value')} "
            f"(first in sequence {first[0] + 1}, step {first[1] + 1})"
        )
    fix = (f"fill them or pass --nan-policy {nan_policies}" if nan_policies is not None
           else "fill them first (pandas: frame.ffill() or frame.interpolate()) or drop those rows")
    raise DataError(f"{source}: {where}; {fix}")


def beyond_float32(values: np.ndarray) -> np.ndarray:
    """Mask of the values (any shape) that are infinite or beyond float32's range (+-3.4e38), the network's
    precision; NaN is not among them."""
    values = np.asarray(values)
    if values.dtype.kind not in "fc":
        return np.zeros(values.shape, bool)  # integers and flags fit (a huge integer is caught when cast)
    with np.errstate(invalid="ignore"):
        out_of_range = np.isinf(values)
        if values.dtype.itemsize > 4:  # a float16 or float32 value is within range by its type
            out_of_range |= np.abs(values) > _FLOAT32_MAX
    return out_of_range


def _where(position: np.ndarray, feature_names: Sequence[str]) -> str:
    """Name a cell: ``column 'x' row 3`` in a series, ``sequence 2 step 5 feature 'x'`` else."""
    name = feature_names[position[-1]]
    if len(position) == 2:
        return f"column '{name}' row {position[0] + 1}"
    return f"sequence {position[0] + 1} step {position[1] + 1} feature '{name}'"
