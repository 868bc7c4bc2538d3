"""Read series and sequences from CSV, Parquet, .npy and .npz; write result tables.

Every problem with a file raises `DataError` with one line naming the file, column, row and
value and the fix. Rows are 1-based data rows: row 1 is the first row under the CSV header
(or the first line of a header-less .txt file, or ``array[0]``). Sequences are numbered the
same way.

File types, by extension:
- ``.csv`` / ``.csv.gz``: comma-separated with a header row.
- ``.txt`` / ``.txt.gz``: comma-separated if the first line has a comma, else separated by
  whitespace; a first line of only numbers is data, and the columns are then named f0, f1, ...
- ``.parquet`` / ``.pq``: needs pyarrow.
- ``.npy``; ``.npz`` with the values in array ``X`` and optional 0/1 labels in ``y``.
  Array features are named f0, f1, ...

Column names must be unique and are matched exactly (case and spaces count). Results are
written atomically (`atomic_output`, `write_table`, `write_text_atomic`, `write_bytes_atomic`,
`staged_directory`): a crash never leaves half a file.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import glob
import gzip
import json
import math
import os
import shutil
import sys
import tempfile
import tokenize
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from lstmae.data.validation import (
    NOT_A_FEATURE,
    SEQUENCE_NAN_POLICIES,
    check_finite,
    check_unique_names,
    quote_names,
)
from lstmae.exceptions import DataError

_CSV_SUFFIXES = (".csv", ".csv.gz")
_TEXT_SUFFIXES = (".txt", ".txt.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_ARRAY_SUFFIXES = (".npy", ".npz")
_KNOWN_TYPES = "use .csv, .parquet, .npy or .npz"
_GLOB_CHARACTERS = "*?["


@dataclass
class SeriesData:
    """One long multivariate series, rows = time steps (in time order, per entity).

    values: (T, F) float32, the kept rows. feature_names: F names. index: (T,) the time
    column of the kept rows (a DatetimeIndex when it parses as dates, else its values) or
    their 0-based row positions. labels: (T,) int8 0/1 or None. entities: (T,) entity ids
    or None. source: the file.

    The input rows: every data row of the file, T_in >= T, in the order the series is
    read (sorted by time when the file was not). nan_policy="drop" is the only thing that
    keeps fewer rows than that. dropped: (T_in,) bool, True for a row that was dropped.
    input_index: (T_in,) the index of every input row; input_labels and input_entities: (T_in,) the
    labels and entities of every input row (None: as `labels` and `entities`). Window over the kept rows
    (`values`) and report on the input rows with `to_input_rows`.
    """

    values: np.ndarray
    feature_names: list[str]
    index: pd.Index
    labels: np.ndarray | None
    entities: np.ndarray | None
    source: str
    dropped: np.ndarray | None = None
    input_index: pd.Index | None = None
    input_labels: np.ndarray | None = None
    input_entities: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.dropped is None:
            self.dropped = np.zeros(len(self.values), dtype=bool)
        if self.input_index is None:
            self.input_index = self.index
        if self.input_labels is None:
            self.input_labels = self.labels
        if self.input_entities is None:
            self.input_entities = self.entities

    def kept_rows(self) -> np.ndarray:
        """(T,) position of each kept row among the input rows."""
        return np.flatnonzero(~self.dropped)

    def to_input_rows(self, per_row: np.ndarray, fill=np.nan) -> np.ndarray:
        """(T, ...) values of the kept rows -> (T_in, ...), `fill` on the dropped rows.

        The dtype is that of ``per_row`` and ``fill`` together (int8 flags filled with 0 stay
        int8; filled with NaN they become float).
        """
        per_row = np.asarray(per_row)
        if per_row.shape[:1] != (len(self.values),):
            raise ValueError(
                f"expected one value per kept row ({len(self.values)}), got shape {per_row.shape}"
            )
        dtype = np.result_type(per_row.dtype, fill)
        out = np.full((len(self.dropped),) + per_row.shape[1:], fill, dtype=dtype)
        out[~self.dropped] = per_row
        return out


@dataclass
class SequenceData:
    """Independent fixed-length sequences.

    values: (N, L, F) float32. feature_names: F names. labels: (N,) int8 0/1 or None.
    ids: (N,) position of each sequence in the file (0-based), kept after dropped ones.
    source: the file. columns: the table's timestep columns, in the order read (None for an array file).
    """

    values: np.ndarray
    feature_names: list[str]
    labels: np.ndarray | None
    ids: pd.Index
    source: str
    columns: list[str] | None = None


def is_array_file(path) -> bool:
    """Whether `path` names an .npy or .npz file (columns without names)."""
    return _suffix(Path(path)) in _ARRAY_SUFFIXES


def _suffix(path: Path) -> str:
    name = path.name.lower()
    known = _CSV_SUFFIXES + _TEXT_SUFFIXES + _PARQUET_SUFFIXES + _ARRAY_SUFFIXES
    return next((suffix for suffix in known if name.endswith(suffix)), "")


def _check_input_file(path: Path, source: str) -> None:
    if not path.exists():
        raise DataError(f"{source}: file not found; check the path")
    if path.is_dir():
        raise DataError(f"{source}: is a directory; give the path of a data file")
    if not _suffix(path):
        got = f"'{path.suffix}'" if path.suffix else "no extension"
        raise DataError(f"{source}: unknown file type ({got}); {_KNOWN_TYPES}")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV/text or Parquet file into a DataFrame with string column names.

    A named index stored in a Parquet file comes back as an ordinary column.
    """
    path = Path(path)
    source = str(path)
    _check_input_file(path, source)
    suffix = _suffix(path)
    if suffix in _ARRAY_SUFFIXES:
        raise DataError(f"{source}: a NumPy file is not a table; use a .csv or .parquet file here")
    if suffix in _PARQUET_SUFFIXES:
        table = _read_parquet(path, source)
    else:
        table = _read_csv(path, source, text_rules=suffix in _TEXT_SUFFIXES)
    if len(table) == 0:
        raise DataError(f"{source}: has no data rows; the file needs a header and at least one row")
    table.columns = [str(name) for name in table.columns]
    check_unique_names(list(table.columns), source)
    if _header_of_numbers(table.columns):  # the first data row taken for the names: it was lost without a word
        raise DataError(f"{source}: its first line holds numbers ({quote_names(list(table.columns), limit=3)}), not "
                        "column names: the file has no header line; add one (e.g. t0,t1,... for sequences, the "
                        "feature names for a series), or save the values as .npy")
    if table.shape[1] == 1 and pd.to_numeric(table.iloc[:, 0], errors="coerce").isna().all():
        raise DataError(
            f"{source}: one column of text and no numbers, not a data table; "
            "write comma-separated values with a header row (one column per feature)"
        )
    return table


def _header_of_numbers(names) -> bool:
    """Whether every column name reads as a number and one at least is not a whole number (0.0063, 1e-3): the
    values of a first row, not names (names such as 1, 2, 3 can be a sensor's)."""
    try:
        numbers = [float(name) for name in names]
    except ValueError:
        return False
    return any(math.isfinite(number) and not name.strip().lstrip("+-").isdigit()
               for number, name in zip(numbers, names))


def table_columns(path: str | os.PathLike) -> list[str] | None:
    """The column names of a CSV/text or Parquet file (None for .npy/.npz), read cheaply."""
    path = Path(path)
    source = str(path)
    _check_input_file(path, source)
    suffix = _suffix(path)
    if suffix in _ARRAY_SUFFIXES:
        return None
    if suffix in _PARQUET_SUFFIXES:
        return list(read_table(path).columns)
    table = _read_csv(path, source, text_rules=suffix in _TEXT_SUFFIXES, nrows=1)
    return [str(name) for name in table.columns]


def _read_parquet(path: Path, source: str) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
        for position in range(table.shape[1]):  # Arrow-backed text is decoded lazily: now,
            if pd.api.types.is_string_dtype(table.dtypes.iloc[position]):  # here, not later
                table.iloc[:, position].to_numpy()
    except ImportError as error:
        raise DataError(
            f"{source}: reading Parquet needs pyarrow ({error}); pip install pyarrow, or use CSV"
        ) from error
    except Exception as error:  # noqa: BLE001 - pyarrow's errors on a damaged file are of many
        # kinds (ArrowException itself, ValueError, OSError, NotImplementedError, ...): all say
        # the same thing to the user
        _check_parquet_names(path, source)
        raise DataError(f"{source}: not a readable Parquet file ({_first_line(error)})") from error
    if table.index.name is not None or isinstance(table.index, pd.MultiIndex):
        table = table.reset_index()
    return table


def _check_parquet_names(path: Path, source: str) -> None:
    """Name a repeated column of a Parquet file that pandas could not read (pyarrow refuses it
    with "Multiple matches for FieldRef")."""
    try:
        import pyarrow.parquet as parquet

        names = parquet.read_schema(path).names
    except Exception:  # noqa: BLE001 - not even a schema: the caller reports the first error
        return
    check_unique_names([str(name) for name in names], source)


def _read_csv(
    path: Path, source: str, *, text_rules: bool, nrows: int | None = None
) -> pd.DataFrame:
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as file:
            head = file.read(65536)
    except (OSError, EOFError) as error:
        raise DataError(f"{source}: cannot be read ({_first_line(error)})") from error
    if not head.strip():
        raise DataError(f"{source}: is empty; it needs a header and at least one data row")
    if b"\x00" in head:
        raise DataError(
            f"{source}: is a binary file, not CSV text; export the data as CSV or Parquet"
        )

    separator, header = ",", 0
    if text_rules:
        lines = head.decode("utf-8", errors="replace").strip().splitlines()
        if not lines:  # only characters that text counts as white space (e.g. \x1c)
            raise DataError(f"{source}: is empty; it needs at least one data row")
        first_line = lines[0]
        if "," not in first_line:
            separator = r"\s+"
        first_fields = pd.Series(first_line.replace(",", " ").split())
        if pd.to_numeric(first_fields, errors="coerce").notna().all():
            header = None
    try:
        table = pd.read_csv(path, sep=separator, header=header, nrows=nrows)
    except UnicodeDecodeError as error:  # read with replacement characters, 'labél' became a feature 'lab\ufffdl'
        raise DataError(
            f"{source}: is not UTF-8 text (byte 0x{error.object[error.start]:02x} cannot be decoded); save it as "
            "UTF-8 (e.g. pd.read_csv(path, encoding='latin-1').to_csv(new_path, index=False))"
        ) from None
    except pd.errors.EmptyDataError as error:
        raise DataError(
            f"{source}: is empty; it needs a header and at least one data row"
        ) from error
    except (pd.errors.ParserError, ValueError, OSError, EOFError) as error:
        raise DataError(
            f"{source}: not a readable table ({_first_line(error)}); "
            "every line needs the same number of comma-separated fields"
        ) from error
    if not isinstance(table.index, pd.RangeIndex):  # pandas took the first column(s) for an index
        raise DataError(
            f"{source}: the first data row has more fields than the header ({table.shape[1]}); "
            "every line needs the same number of comma-separated fields"
        )
    if header is None:
        table.columns = [f"f{i}" for i in range(table.shape[1])]
    elif _maybe_renamed_duplicates(table.columns):
        # pandas renames a repeated name 'a' to 'a.1': read the header row as it is written.
        raw = pd.read_csv(
            path, sep=separator, header=None, nrows=1, dtype=str, keep_default_na=False,
        )
        check_unique_names([str(name) for name in raw.iloc[0]], source, skip_empty=True)
    return table


def _maybe_renamed_duplicates(columns: pd.Index) -> bool:
    """True when a column name looks like pandas' rename of a repeated one ('a' -> 'a.1')."""
    names = {str(name) for name in columns}
    for name in names:
        stem, dot, number = name.rpartition(".")
        if dot and number.isdigit() and stem in names:
            return True
    return False


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _load_arrays(path: Path, source: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The values of a .npy file, or arrays ``X`` and ``y`` (or None) of an .npz file."""
    try:
        with open(path, "rb") as file:
            head = file.read(6)
        if head != b"\x93NUMPY" and head[:2] != b"PK":  # numpy would take it for a pickle and suggest loading one
            raise DataError(f"{source}: not a NumPy file (no .npy or .npz header); save a numeric array with "
                            "numpy.save or numpy.savez")
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            values, labels = loaded, None
        else:
            with loaded:
                if "X" not in loaded.files:
                    raise DataError(
                        f"{source}: has no array 'X' (found {quote_names(loaded.files)}); "
                        "save the values as X (and 0/1 labels as y): np.savez(path, X=X, y=y)"
                    )
                values = loaded["X"]
                labels = loaded["y"] if "y" in loaded.files else None
    except DataError:
        raise
    except (
        OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError, MemoryError,
        zipfile.BadZipFile, zlib.error, NotImplementedError,
    ) as error:
        # a damaged .npy header fails numpy's parsing of it (SyntaxError, TokenError); a damaged
        # .npz is a damaged zip archive (BadZipFile, zlib.error, or an unsupported compression
        # method: NotImplementedError)
        raise DataError(
            f"{source}: not a readable NumPy file ({_first_line(error)}); "
            "save a numeric array with numpy.save or numpy.savez"
        ) from error
    if np.issubdtype(values.dtype, np.complexfloating):
        raise DataError(f"{source}: holds {values.dtype} values; save real numbers (X.real, or np.abs(X) for the "
                        "magnitudes)")
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise DataError(f"{source}: holds {values.dtype} values, not numbers; save a numeric array")
    if values.ndim == 0:
        raise DataError(f"{source}: holds a single number, not an array of values")
    if values.size == 0:
        raise DataError(f"{source}: the array (shape {values.shape}) has no values")
    if labels is not None and labels.shape != values.shape[:1]:
        raise DataError(
            f"{source}: 'y' has shape {labels.shape}, expected ({values.shape[0]},), "
            "one label per row of X"
        )
    return values, labels


def _column_cell(column: pd.Series, position: int) -> str:
    value = column.iloc[position]
    if pd.isna(value):
        return "an empty cell"
    return repr(value) if isinstance(value, str) else str(value)


def _select_columns(
    table: pd.DataFrame,
    requested: Sequence[str] | None,
    reserved: dict[str, str],
    source: str,
    *,
    guard: bool = True,
    classes: bool = False,
) -> list[str]:
    """Feature columns, in table order for globs and in the given order for names.

    `requested` holds names or glob patterns (``t*``), matched exactly (case and spaces
    count); None picks every numeric column, and every text column of mostly numbers (so
    that its bad cells are reported, not skipped). `reserved` maps role ("label", "time",
    "entity") to a column that is never a feature. With `guard`, a default pick that looks
    like labels or a time index raises (`undeclared_role`; with `classes`, class labels too).
    """
    available = list(table.columns)
    missing = [name for name in reserved.values() if name not in available]
    if requested is not None:
        plain = [name for name in requested if not any(c in name for c in _GLOB_CHARACTERS)]
        missing += [name for name in plain if name not in available]
    if missing:
        raise DataError(
            f"{source}: no column {quote_names(missing)}{_spacing_hint(missing, available)}; "
            f"the columns are {quote_names(available, limit=12)}"
        )
    if requested is None:
        selected = [
            name
            for name in available
            if name not in reserved.values() and _is_numeric_column(table[name])
        ]
        if guard:
            for name in selected:
                _refuse_labels_or_time(table[name], source, classes)
            for name in available:  # left out as text, it went missing without a word
                example = None if name in selected or name in reserved.values() else _decimal_comma(table[name])
                if example is not None:
                    raise DataError(
                        f"{source}: column '{name}' holds numbers written with a comma (e.g. {example!r}), which "
                        "are read as text; write them as plain numbers with a decimal point (pandas: read_csv(..., "
                        "decimal=',') or thousands=','), or name the features with --columns"
                    )
        return selected

    selected = []
    for name in requested:
        if any(c in name for c in _GLOB_CHARACTERS):
            matches = [
                m for m in available if fnmatch.fnmatchcase(m, name) and m not in reserved.values()
            ]
            if not matches:
                raise DataError(
                    f"{source}: no column matches '{name}'; "
                    f"the columns are {quote_names(available, limit=12)}"
                )
        else:
            role = next((role for role, column in reserved.items() if column == name), None)
            if role is not None:
                raise DataError(
                    f"{source}: column '{name}' is the {role} column; leave it out of --columns"
                )
            matches = [name]
        selected += [m for m in matches if m not in selected]
    return selected


def _spacing_hint(missing: Sequence[str], available: Sequence[str]) -> str:
    """`` (the file has ' temp', with spaces)`` when a missing name differs only in spaces."""
    for name in missing:
        close = [column for column in available if column.strip() == name.strip()]
        if close:
            return f" (the file has {quote_names(close)}: names must match exactly, spaces included)"
    return ""


_LABEL_NAMES = {"label", "labels", "y", "anomaly", "is_anomaly", "target", "class"}
_MIN_INDEX_ROWS = 10  # fewer rows rising by a constant step may be a toy feature
_TIME_NAMES = {"time", "timestamp", "date", "datetime", "index", "idx", "step", "t", ""}


def _refuse_labels_or_time(column: pd.Series, source: str, classes: bool = False) -> None:
    """Raise when an undeclared column picked by default looks like labels or a time index (`undeclared_role`)."""
    found = undeclared_role(column, classes)
    if found is not None:
        role, what = found
        name = str(column.name)
        declare = "" if role == "class" else f"declare it with --{role}-column {_quoted_option(name)}, or "
        raise DataError(f"{source}: column '{name}' looks like {what}, not a feature; {declare}name the features "
                        "with --columns")


def undeclared_role(column: pd.Series, classes: bool = False) -> tuple[str, str] | None:
    """("label", what), ("class", what) or ("time", what) when a column looks like labels, class labels or a
    time index, else None.

    Labels: named label, labels, y, anomaly, is_anomaly, target or class (any case) with
    only 0/1 values; with `classes` (sequences, whose UCR files lead with one), class labels too: so named,
    with 2 to 10 whole-number values (1/2, -1/1; in a series such a column can be a machine's mode, a feature). A time index: at least 10 rows of strictly increasing integers with a
    constant step (named anything), or strictly increasing integers under a name such as
    time, timestamp, index or pandas' "Unnamed: 0" (an index written by ``to_csv``). A column of
    dates is a time column (a file's are never numeric, so never picked as features; a DataFrame's are).
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        return "time", "a time column (dates)"
    numbers = _as_numbers(column)
    present = numbers[~np.isnan(numbers)]
    if len(present) == 0:
        return None
    key = str(column.name).strip().lower()
    if key in _LABEL_NAMES and np.isin(present, (0.0, 1.0)).all():
        return "label", "labels (only 0 and 1)"
    if (classes and key in _LABEL_NAMES and (present == np.round(present)).all()
            and 2 <= len(np.unique(present)) <= 10):
        shown = ", ".join(f"{value:g}" for value in np.unique(present)[:4])
        return "class", f"class labels (values {shown}{', ...' if len(np.unique(present)) > 4 else ''})"
    if len(present) < len(numbers) or len(numbers) < 2:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        integers = np.isfinite(numbers).all() and bool((numbers == np.round(numbers)).all())
        steps = np.diff(numbers)
    if not integers or not (steps > 0).all():
        return None
    regular = len(numbers) >= _MIN_INDEX_ROWS and bool((steps == steps[0]).all())
    if regular or key in _TIME_NAMES or key.startswith("unnamed:"):
        how = f"integers rising by {steps[0]:g} every row" if regular else "rising integers"
        return "time", f"a time index ({how})"
    return None


def _as_numbers(column: pd.Series) -> np.ndarray:
    """A column's values as float64, NaN where a cell is empty or not a number."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _found_labels(table: pd.DataFrame, taken: Sequence[str]) -> str | None:
    """The one column (not in `taken`) named like labels (label, y, anomaly, ...) whose every cell is 0 or 1."""
    found = [name for name in table.columns if name not in taken and str(name).strip().lower() in _LABEL_NAMES
             and np.isin(_as_numbers(table[name]), (0.0, 1.0)).all()]
    return found[0] if len(found) == 1 else None


def _quoted_option(name: str) -> str:
    """A column name as it would be typed after a command-line option."""
    plain = name and all(c.isalnum() or c in "_-.:" for c in name)
    return name if plain else "'" + name.replace("'", "'\\''") + "'"


def _is_numeric_column(column: pd.Series) -> bool:
    """Numbers, or text that is at least half numbers (a column with some bad cells)."""
    if pd.api.types.is_numeric_dtype(column):
        return True
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return False
    present = int(column.notna().sum())
    parsed = int(pd.to_numeric(column, errors="coerce").notna().sum())
    return present > 0 and parsed >= present / 2


def _decimal_comma(column: pd.Series) -> str | None:
    """A cell of a text column that is at least half numbers once a decimal comma is read as a point ('0,861'),
    else None."""
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return None
    text = column.dropna().astype(str).str.strip()
    commas = text[text.str.fullmatch(r"[-+]?\d*,\d+")]
    return commas.iloc[0] if len(text) and len(commas) >= len(text) / 2 else None


def _numeric_values(table: pd.DataFrame, names: list[str], source: str) -> np.ndarray:
    """(T, F) float64 values of the named columns; text cells raise, naming the first one."""
    values = np.empty((len(table), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        column = table[name]
        if pd.api.types.is_numeric_dtype(column):
            values[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            raise DataError(
                f"{source}: column '{name}' holds {column.dtype} values where numbers are "
                "expected; convert it, or leave it out of fit with --columns"
            )
        numbers = pd.to_numeric(column, errors="coerce")
        bad = numbers.isna() & column.notna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: column '{name}' row {row + 1} has text {column.iloc[row]!r} where a "
                f"number is expected; fix the cell ({NOT_A_FEATURE})"
            )
        values[:, j] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    return values


def _labels(column: pd.Series, source: str) -> np.ndarray:
    """(T,) int8 labels from a 0/1 or boolean column."""
    numbers = column.astype(np.int8) if pd.api.types.is_bool_dtype(column) else pd.to_numeric(
        column, errors="coerce"
    )
    bad = ~numbers.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: label column '{column.name}' row {row + 1} has "
            f"{_column_cell(column, row)}; labels must be 0 (normal) or 1 (anomaly)"
        )
    return numbers.to_numpy(dtype=np.int8)


def _complete_column(column: pd.Series, role: str, source: str) -> pd.Series:
    empty = column.isna()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise DataError(
            f"{source}: {role} column '{column.name}' row {row + 1} is empty; "
            f"every row needs its {role}"
        )
    return column


# A time that names its UTC offset: ...Z, ...+01:00 or ...+0100.
_AWARE_TIME = r".*\d(?:Z|[+-]\d\d:?\d\d)"


def _time_index(column: pd.Series, source: str) -> pd.Index:
    """Dates when the column parses as dates; numbers and other text are kept as they are."""
    column = _complete_column(column, "time", source)
    if pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return pd.Index(column, name=column.name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format" when falling back
            return pd.DatetimeIndex(pd.to_datetime(column), name=column.name)
    except (ValueError, TypeError, OverflowError):
        pass
    if column.astype(str).str.fullmatch(_AWARE_TIME).all():  # several UTC offsets, as across a daylight-saving change
        try:
            times = pd.DatetimeIndex(pd.to_datetime(column, utc=True), name=column.name)
        except (ValueError, TypeError, OverflowError):
            pass
        else:
            warnings.warn(f"{source}: time column '{column.name}' has several UTC offsets; its times are read in UTC",
                          UserWarning, stacklevel=2)
            return times
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(column, errors="coerce")
    if parsed.notna().mean() >= 0.5:  # dates with a few cells that are not: a typo, not a text column
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(f"{source}: time column '{column.name}' row {row + 1} holds {column.iloc[row]!r}, not a date "
                        "like the rest; fix the cell or drop the row")
    return pd.Index(column, name=column.name)


def _check_nan_policy(nan_policy: str, allowed: tuple[str, ...], source: str | None = None) -> None:
    if nan_policy == "ffill" and "ffill" not in allowed and source is not None:  # a CLI choice of every layout
        raise DataError(f"{source}: --nan-policy ffill fills from the row before, and sequences are independent rows; "
                        "use --nan-policy interpolate (along each sequence's time) or drop")
    if nan_policy not in allowed:
        raise DataError(f"nan_policy must be one of {', '.join(allowed)}; got {nan_policy!r}")


def read_series(
    path: str | os.PathLike,
    *,
    columns: Sequence[str] | None = None,
    time_column: str | None = None,
    label_column: str | None = None,
    entity_column: str | None = None,
    nan_policy: str = "error",
    find_labels: bool = False,
) -> SeriesData:
    """Read one long series: rows = time steps, features = (T, F) float32.

    columns: feature column names or glob patterns (``sensor_*``); default: every numeric
    column other than the time, label and entity columns. An .npy file holds (T, F) or
    (T,); an .npz file ``X`` (T, F) and optional labels ``y`` (used unless label_column).
    Column names match exactly (case and surrounding spaces count). Left to the default, a
    numeric column that looks like labels (named label, y, anomaly, ... with only 0/1) or a
    time index (rising integers with a constant step) raises unless declared: no column
    becomes a feature by accident (array files are exempt: their columns have no names).
    find_labels: with neither label_column nor columns, such a column of labels (every cell 0
    or 1, the only one) is read as the labels instead (scoring with a model fitted without
    labels: the labels go to the output beside the scores).

    time_column: rows are put in time order (within each entity) with a warning when they
    are not; a time that appears twice (within one entity) raises. Dates and numbers are
    ordered; other text is kept as it is.
    nan_policy: "error", "ffill" (forward then backward fill), "interpolate" (linear, edges
    filled from the nearest value), both within each entity, or "drop" (drop the row: the
    result keeps the kept rows and marks the dropped ones in `SeriesData.dropped`).
    Infinite values always raise.
    """
    _check_nan_policy(nan_policy, ("error", "ffill", "interpolate", "drop"))
    path = Path(path)
    source = str(path)
    _check_input_file(path, source)
    array_labels = None
    is_array = _suffix(path) in _ARRAY_SUFFIXES
    if is_array:
        array, array_labels = _load_arrays(path, source)
        if array.ndim > 2:
            raise DataError(
                f"{source}: shape {array.shape} is sequences (N, L, F), not a series (T, F); "
                "read it as sequences (--layout sequences)"
            )
        array = array.reshape(len(array), -1)
        table = pd.DataFrame(array, columns=[f"f{j}" for j in range(array.shape[1])])
    else:
        table = read_table(path)

    if find_labels and label_column is None and columns is None and not is_array:
        label_column = _found_labels(table, (time_column, entity_column))
    roles = {"time": time_column, "label": label_column, "entity": entity_column}
    reserved = {role: name for role, name in roles.items() if name is not None}
    shared = [role for role, name in reserved.items() if list(reserved.values()).count(name) > 1]
    if shared:  # read for one role, it was refused for the other ("time column 'label' has 0 twice")
        raise DataError(f"{source}: column '{reserved[shared[0]]}' is given as both the {shared[0]} and the "
                        f"{shared[1]} column; name each its own column")
    labels = None
    if label_column is not None and label_column in table.columns:  # the declared labels first: checked before
        labels = _labels(table[label_column], source)  # another column is blamed for looking like labels
    names = _select_columns(table, columns, reserved, source, guard=not is_array)
    if not names:
        raise DataError(
            f"{source}: no numeric feature column among "
            f"{quote_names(list(table.columns), limit=12)}; name the feature columns with --columns"
        )
    values = _numeric_values(table, names, source)
    if labels is None and array_labels is not None:
        labels = _labels(pd.Series(array_labels, name="y"), source)
    entities = (
        _complete_column(table[entity_column], "entity", source).to_numpy()
        if entity_column is not None
        else None
    )
    if time_column is not None:
        index = _time_index(table[time_column], source)
    else:
        index = pd.RangeIndex(len(table))

    _check_no_empty_columns(values, names, source)
    check_finite(values, names, source, allow_nan=nan_policy != "error")
    if time_column is not None:
        order = _time_order(index, entities, source)
        if order is not None:
            values, index = values[order], index[order]
            labels = labels[order] if labels is not None else None
            entities = entities[order] if entities is not None else None

    input_index, input_labels, input_entities = index, labels, entities
    dropped = np.zeros(len(values), dtype=bool)
    if nan_policy == "drop":
        dropped = np.isnan(values).any(axis=1)
        if dropped.all():
            raise DataError(
                f"{source}: every row has a missing value, so --nan-policy drop leaves nothing; "
                "use --nan-policy ffill or interpolate"
            )
        keep = ~dropped
        values, index = values[keep], index[keep]
        labels = labels[keep] if labels is not None else None
        entities = entities[keep] if entities is not None else None
    elif nan_policy in ("ffill", "interpolate") and np.isnan(values).any():
        values = _fill_missing(values, entities, names, nan_policy, source)
    return SeriesData(
        values.astype(np.float32), names, index, labels, entities, source, dropped, input_index, input_labels,
        input_entities,
    )


def _fill_missing(
    values: np.ndarray, entities: np.ndarray | None, names: list[str], how: str, source: str
) -> np.ndarray:
    """Fill NaNs of (T, F) values per entity: "ffill" (then backward fill at the start) or
    "interpolate" (linear, edges from the nearest value). Never from another entity."""
    frame = pd.DataFrame(values)
    if entities is None:
        groups = [frame]
    else:
        codes = pd.factorize(entities)[0]
        groups = [frame.iloc[rows] for rows in _group_positions(codes)]
    filled = []
    for part in groups:
        if how == "ffill":
            filled.append(part.ffill().bfill())
        else:
            filled.append(part.interpolate(method="linear", limit_direction="both"))
    result = pd.concat(filled).sort_index().to_numpy()
    empty = np.isnan(result)
    if empty.any():
        row, column = np.argwhere(empty)[0]
        raise DataError(
            f"{source}: entity '{entities[row]}' has no values at all in column '{names[column]}', "
            f"so there is nothing to fill from; fill it ({NOT_A_FEATURE})"
        )
    return result


def _group_positions(codes: np.ndarray) -> list[np.ndarray]:
    """Row positions of each group code 0, 1, ... (each in row order)."""
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, bounds)


def time_keys(index: pd.Index) -> np.ndarray | None:
    """Sortable keys (T,) of a time index: nanoseconds for dates, the numbers for numbers; None for text."""
    if isinstance(index, pd.DatetimeIndex):
        return index.asi8
    if pd.api.types.is_integer_dtype(index.dtype):
        return index.to_numpy()  # as integers: large ones (ns since 1970) are not exact as floats
    if pd.api.types.is_float_dtype(index.dtype):
        return index.to_numpy(dtype=np.float64)
    return None


def order_in_time(keys: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None]:
    """(by_entity, by_time, repeat) for time keys (T,) of rows whose entity codes (T,) are given.

    `by_entity`: the rows grouped by entity, in the order given; `by_time`: grouped by entity, in time order
    (stable: rows of one time keep their order). They are equal when every entity's rows are in time order.
    `repeat`: (first, second), the rows of the earliest-given second occurrence of a time within an entity, or None.
    """
    by_entity = np.argsort(codes, kind="stable")
    by_time = np.lexsort((keys, codes))
    same = (keys[by_time][1:] == keys[by_time][:-1]) & (codes[by_time][1:] == codes[by_time][:-1])
    if not same.any():
        return by_entity, by_time, None
    earlier, later = by_time[:-1][same], by_time[1:][same]
    i = int(np.argmin(later))
    return by_entity, by_time, (int(earlier[i]), int(later[i]))


def _time_order(index: pd.Index, entities: np.ndarray | None, source: str) -> np.ndarray | None:
    """The row order that sorts `index` by time within each entity, or None when it is sorted.

    Refuses a time that appears twice (within one entity); warns when rows had to be sorted.
    Each entity's rows keep the positions they had (interleaved entities stay interleaved).
    Only dates and numbers are ordered: a text time column is kept as it is.
    """
    keys = time_keys(index)
    if keys is None:
        return None
    codes = np.zeros(len(keys), np.intp) if entities is None else pd.factorize(entities)[0]
    by_entity, by_time, repeat = order_in_time(keys, codes)
    name = index.name
    entity = "" if entities is None else " for entity '{}'"
    if repeat is not None:
        first, second = repeat
        where = entity.format(entities[first]) if entities is not None else ""
        raise DataError(
            f"{source}: time column '{name}' has {index[first]} twice{where} (rows {first + 1} "
            f"and {second + 1}); every row needs its own time: remove or merge the duplicate rows"
        )
    if np.array_equal(by_entity, by_time):
        return None

    file_keys, file_codes = keys[by_entity], codes[by_entity]
    back = (file_keys[1:] < file_keys[:-1]) & (file_codes[1:] == file_codes[:-1])
    i = int(np.argmin(np.where(back, by_entity[1:], len(keys))))
    row, before = int(by_entity[1:][i]), int(by_entity[:-1][i])
    where = entity.format(entities[row]) if entities is not None else ""
    warnings.warn(
        f"{source}: time column '{name}' is not in time order{where} (row {row + 1} is earlier "
        f"than row {before + 1}); the rows were sorted by time",
        UserWarning,
        stacklevel=3,
    )
    order = np.empty(len(keys), np.intp)
    order[by_entity] = by_time
    return order


def _check_no_empty_columns(values: np.ndarray, names: list[str], source: str) -> None:
    """A column with no value at all cannot be filled: name it."""
    empty = np.isnan(values).all(axis=0)
    if empty.any():
        name = names[int(np.flatnonzero(empty)[0])]
        raise DataError(
            f"{source}: column '{name}' has no values at all; give it values, or leave it out of fit with --columns"
        )


def read_sequences(
    path: str | os.PathLike,
    *,
    columns: Sequence[str] | None = None,
    label_column: str | None = None,
    nan_policy: str = "error",
    find_labels: bool = False,
) -> SequenceData:
    """Read independent sequences: values (N, L, F) float32.

    CSV/Parquet ("UCR style"): one row per sequence, one column per timestep (F = 1, the
    feature is named "value"); columns names the timestep columns (names or glob patterns
    such as ``t*``), default every numeric column but the label column. An .npy file holds
    (N, L) or (N, L, F); an .npz file ``X`` of that shape and optional labels ``y``.
    nan_policy: "error", "interpolate" (linear along time, edges filled from the nearest
    value) or "drop" (drop the sequence).
    find_labels: as `read_series`' (a 0/1 column named like labels is read as the labels).
    """
    _check_nan_policy(nan_policy, ("error", "interpolate", "drop"), str(path))
    path = Path(path)
    source = str(path)
    _check_input_file(path, source)
    allow_nan = nan_policy != "error"
    if _suffix(path) in _ARRAY_SUFFIXES:
        if columns is not None or label_column is not None:
            raise DataError(
                f"{source}: an array file has no named columns; leave out --columns and "
                "--label-column (put labels in 'y' of an .npz file)"
            )
        values, raw_labels = _load_arrays(path, source)
        if values.ndim not in (2, 3):
            raise DataError(
                f"{source}: shape {values.shape} is not sequences (N, L) or (N, L, F); "
                "a single series (T,) or (T, F) is read as a series"
            )
        values = values.reshape(values.shape[0], values.shape[1], -1).astype(np.float64)
        feature_names = [f"f{j}" for j in range(values.shape[2])]
        check_finite(
            values, feature_names, source, allow_nan=allow_nan, nan_policies=SEQUENCE_NAN_POLICIES
        )
        labels = None if raw_labels is None else _labels(pd.Series(raw_labels, name="y"), source)
        columns = None  # an array's columns have no names
    else:
        table = read_table(path)
        if find_labels and label_column is None:  # not one of the timestep columns named
            label_column = _found_labels(table, list(columns or ()))
        reserved = {"label": label_column} if label_column is not None else {}
        names = _select_columns(table, columns, reserved, source, guard=True, classes=True)
        if not names:
            raise DataError(
                f"{source}: no numeric timestep column among "
                f"{quote_names(list(table.columns), limit=12)}; name them with --columns"
            )
        matrix = _numeric_values(table, names, source)
        check_finite(
            matrix, names, source, allow_nan=allow_nan, nan_policies=SEQUENCE_NAN_POLICIES
        )
        values = matrix[:, :, np.newaxis]
        feature_names = ["value"]
        labels = _labels(table[label_column], source) if label_column is not None else None
        columns = list(names)

    ids = pd.RangeIndex(len(values), name="sequence")
    if nan_policy == "drop":
        keep = ~np.isnan(values).any(axis=(1, 2))
        if not keep.any():
            raise DataError(
                f"{source}: every sequence has a missing value, so --nan-policy drop leaves "
                "nothing; use --nan-policy interpolate"
            )
        values, ids = values[keep], ids[keep]
        labels = labels[keep] if labels is not None else None
    elif nan_policy == "interpolate":
        values = _interpolate_along_time(values)
        empty = np.isnan(values).any(axis=1)  # (N, F): a sequence with no value for a feature
        if empty.any():
            n, f = np.argwhere(empty)[0]
            raise DataError(
                f"{source}: sequence {n + 1} has no values for feature '{feature_names[f]}'; "
                "remove it or pass --nan-policy drop"
            )
    return SequenceData(values.astype(np.float32), feature_names, labels, ids, source, columns)


def _interpolate_along_time(values: np.ndarray) -> np.ndarray:
    """(N, L, F) -> (N, L, F), NaNs filled linearly along L, edges from the nearest value."""
    n, length, n_features = values.shape
    rows = values.transpose(0, 2, 1).reshape(n * n_features, length)
    filled = pd.DataFrame(rows).interpolate(method="linear", axis=1, limit_direction="both")
    return filled.to_numpy().reshape(n, n_features, length).transpose(0, 2, 1)


def _table_format(path: Path) -> str | None:
    """"csv", "parquet", or None for an extension `write_table` cannot write."""
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    return None


def check_output_path(path: str | os.PathLike, overwrite: bool, *, table: bool = False) -> None:
    """Fail before any work if `path` cannot be written.

    It must not exist (unless `overwrite`) and its folder must exist. With `table`, it must
    also end in an extension `write_table` knows (.csv, .csv.gz, .parquet, .pq), and for
    Parquet pyarrow must be installed.
    """
    path = Path(path)
    if len(os.fsencode(path.name)) > _NAME_MAX:
        raise DataError(f"{path.name[:40]}...: the name is {len(os.fsencode(path.name))} bytes long, more than the "
                        f"{_NAME_MAX} a file name may have; choose a shorter name")
    if table and _table_format(path) is None:
        raise DataError(
            f"{path}: unknown output type; name the file .csv, .csv.gz, .parquet or .pq"
        )
    if table and _table_format(path) == "parquet" and not _pyarrow_available():
        raise DataError(f"{path}: writing Parquet needs pyarrow; pip install pyarrow, or name the file .csv")
    if path.is_symlink() or (path.exists() and not path.is_file() and not path.is_dir()):
        raise DataError(f"{path}: is a link or a special file (a device, a pipe), which lstmae does not replace; "
                        "give the path of a regular file")
    if path.exists() and not overwrite:
        raise DataError(f"{path}: exists; pass --overwrite (in Python: overwrite=True) to replace it")
    if table and path.is_dir():
        raise DataError(f"{path}: is a folder; give the path of the table file to write, e.g. {path / 'scores.csv'}")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise DataError(f"{path}: '{parent}' is a file, not a folder; choose a path in a folder")
    if not parent.is_dir():
        raise DataError(f"{path}: folder '{parent}' does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"{path}: folder '{parent}' is not writable; choose another folder or change its permissions")


def _unwritten(path: Path, error: OSError) -> DataError:
    """A write that failed (a full disk, a lost permission) as one line naming `path`."""
    return DataError(f"{path}: could not be written ({error.strerror or error}); free some space or choose "
                     "another folder")


_NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
# The temporary names beside an output keep this much of its name (plus ~40 characters of their own), so
# that a long but legal output name leaves room for them.
_TEMPORARY_STEM = 120


def _pyarrow_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write `df` as CSV or Parquet (by extension), atomically: a crash leaves no half file.

    A named index (e.g. "timestamp") is written as the first column; an unnamed one is not.
    """
    write_tables([(df, path)], overwrite=overwrite)


def write_tables(tables, *, overwrite: bool = False) -> None:
    """`write_table` for several (df, path) that are one result: each is written to its temporary file, and only
    when all are written are they renamed into place, so a failure (a full disk) leaves every path as it was."""
    tables = [(df, Path(path)) for df, path in tables]
    for _, path in tables:
        check_output_path(path, overwrite, table=True)
    with atomic_outputs([path for _, path in tables]) as temporaries:
        for (df, path), temporary in zip(tables, temporaries):
            write_index = df.index.name is not None or isinstance(df.index, pd.MultiIndex)
            try:
                if _table_format(path) == "csv":
                    compression = "gzip" if path.name.lower().endswith(".gz") else None
                    df.to_csv(temporary, index=write_index, compression=compression)
                else:
                    df.to_parquet(temporary, index=write_index)
            except OSError as error:
                raise _unwritten(path, error) from error


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` for the caller to write one file to.

    When the block succeeds the file is flushed to disk and renamed onto `path` (replacing
    it; one rename on one file system, so readers see the old file or the new one, never
    half of one). When it fails the temporary file is removed and `path` is untouched. The
    file gets the usual permissions of new files (the umask), not the owner-only ones of
    `tempfile`. Checks nothing else: call `check_output_path` first for user-given paths.
    """
    with atomic_outputs([path]) as (temporary,):
        yield temporary


@contextmanager
def atomic_outputs(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """`atomic_output` for files that are one result: every file is flushed to disk before the first is renamed
    into place, so a failure (a full disk reported at the flush) leaves every path as it was."""
    paths = [Path(path) for path in paths]
    temporaries = [path.with_name(f".{path.name[:_TEMPORARY_STEM]}.{uuid.uuid4().hex}.tmp") for path in paths]
    current = paths[0]
    try:
        yield temporaries
        for current, temporary in zip(paths, temporaries):
            _flush(temporary)
        for current, temporary in zip(paths, temporaries):
            os.replace(temporary, current)
    except OSError as error:
        raise _unwritten(current, error) from error
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


def _flush(path: Path) -> None:
    """Make the written file `path` durable (a crash after the rename that follows finds all of it)."""
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_output`), replacing any file there."""
    with atomic_output(path) as temporary, open(temporary, "xb") as file:
        file.write(data)


def write_text_atomic(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically (see `atomic_output`), replacing any file there."""
    write_bytes_atomic(path, text.encode(encoding))


class OutputKind(NamedTuple):
    """What an output folder is, for `check_replaceable`: `what` it is called, the `marker` file that every such
    folder holds, the names (glob patterns) of everything it may hold, and `marker_key`: a key the marker's JSON
    object holds (None: the marker is not JSON)."""

    what: str
    marker: str
    names: tuple[str, ...]
    marker_key: str | None = None


def check_replaceable(path: str | os.PathLike, replaces: OutputKind | None) -> None:
    """DataError unless the folder `path` is empty or an earlier output of the kind `replaces`: its marker file
    (a JSON one holding the kind's key) and nothing that kind does not write. Overwriting replaces the whole
    folder, so a folder that also holds other files is refused, whatever else it holds. None: any."""
    path = Path(path)
    if replaces is None or not path.is_dir():
        return
    names = sorted(entry.name for entry in path.iterdir())
    if not names:
        return
    refuse = "and overwriting would delete them; choose a new or empty folder"
    if replaces.marker not in names:
        raise DataError(f"{path}: holds {some_names(names)}, not {replaces.what} (no {replaces.marker}), {refuse}")
    others = [name for name in names if not any(fnmatch.fnmatchcase(name, pattern) for pattern in replaces.names)]
    if others:
        raise DataError(f"{path}: holds {some_names(others)} beside {replaces.what}, files lstmae did not write there, "
                        f"{refuse}")
    if replaces.marker_key is not None:
        try:
            content = json.loads((path / replaces.marker).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable, or not JSON
            content = None
        marked = isinstance(content, dict) and replaces.marker_key in content
        if not marked:
            raise DataError(f"{path}: its {replaces.marker} is not that of {replaces.what}, {refuse}")


def some_names(names: list[str]) -> str:
    """``a, b, c and 2 more``: the first names of a folder's files, unquoted, for a one-line message."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


@contextmanager
def staged_directory(target: str | os.PathLike, *, overwrite: bool = False,
                     replaces: OutputKind | None = None) -> Iterator[Path]:
    """Build the directory `target` in a temporary sibling, yielded, and swap it into place when the
    block succeeds: a failure leaves nothing behind and an existing target untouched.

    An existing target is exchanged with the new one in one step where the system can (Linux's
    renameat2 RENAME_EXCHANGE), so a reader finds the old directory or the new one, never none; the
    staging folders of saves that were killed earlier (their process is gone) are removed first.
    With `replaces` (see `check_replaceable`) an existing target must be an earlier output of that kind.
    """
    target = Path(target)
    check_output_path(target, overwrite)
    if target.exists() and not target.is_dir():
        raise DataError(f"{target}: is a file, not a folder; remove it or choose another path")
    here = Path.cwd()
    if target.resolve() in (here, *here.parents):
        raise DataError(f"{target}: is the current folder or one above it, which cannot be replaced; name a new "
                        "folder, e.g. ./state")
    check_replaceable(target, replaces)
    _remove_stale_staging(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(target)}{os.getpid()}-", dir=target.parent))
    except OSError as error:
        raise _unwritten(target, error) from error
    try:
        os.chmod(staging, 0o777 & ~umask())  # mkdtemp makes an owner-only directory
        try:
            yield staging
        except DataError as error:  # a write into the staging folder failed: name the folder the caller gave
            if str(staging) not in str(error):
                raise
            raise DataError(str(error).replace(str(staging), str(target)), cell=error.cell) from error.__cause__
        for written in sorted(staging.rglob("*")):  # durable before the swap: a crash then finds whole files
            if written.is_file() and not written.is_symlink():
                _flush(written)
        if target.exists():
            check_output_path(target, overwrite)  # it may have appeared meanwhile
            check_replaceable(target, replaces)
            if not _exchange(staging, target):  # no atomic exchange here: two renames
                backup = staging.with_name(staging.name + ".old")
                os.replace(target, backup)
                os.replace(staging, target)
                shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, target)
    except OSError as error:
        raise _unwritten(target, error) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after an exchange: the old directory


_STAGING = "lstmae-staging"


def _staging_prefix(target: Path) -> str:
    return f".{target.name[:_TEMPORARY_STEM]}.{_STAGING}-"


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 with RENAME_EXCHANGE); False where unsupported."""
    if sys.platform != "linux":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(second))


def _remove_stale_staging(target: Path) -> None:
    """Remove the staging folders a killed save of `target` left behind (their process no longer runs)."""
    prefix = _staging_prefix(target)
    for folder in target.parent.glob(glob.escape(prefix) + "*"):
        try:
            pid = int(folder.name[len(prefix):].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue  # not ours to judge: another user's process, or an unexpected name


def umask() -> int:
    """The process's file-creation mask (to give atomically written files normal permissions)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
