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
"""

from __future__ import annotations

import fnmatch
import gzip
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lstmae.data.validation import (
    SEQUENCE_NAN_POLICIES,
    check_finite,
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
    """One long multivariate series, rows = time steps.

    values: (T, F) float32. feature_names: F names. index: the time column (a
    DatetimeIndex when it parses as dates, else its values) or a RangeIndex.
    labels: (T,) int8 0/1 or None. entities: (T,) entity ids or None. source: the file.
    """

    values: np.ndarray
    feature_names: list[str]
    index: pd.Index
    labels: np.ndarray | None
    entities: np.ndarray | None
    source: str


@dataclass
class SequenceData:
    """Independent fixed-length sequences.

    values: (N, L, F) float32. feature_names: F names. labels: (N,) int8 0/1 or None.
    ids: (N,) position of each sequence in the file (0-based), kept after dropped ones.
    source: the file.
    """

    values: np.ndarray
    feature_names: list[str]
    labels: np.ndarray | None
    ids: pd.Index
    source: str


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
    if table.shape[1] == 1 and pd.to_numeric(table.iloc[:, 0], errors="coerce").isna().all():
        raise DataError(
            f"{source}: one column of text and no numbers, not a data table; "
            "write comma-separated values with a header row (one column per feature)"
        )
    return table


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
    except ImportError as error:
        raise DataError(
            f"{source}: reading Parquet needs pyarrow ({error}); pip install pyarrow, or use CSV"
        ) from error
    except (OSError, ValueError) as error:
        raise DataError(f"{source}: not a readable Parquet file ({_first_line(error)})") from error
    if table.index.name is not None or isinstance(table.index, pd.MultiIndex):
        table = table.reset_index()
    return table


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
        first_line = head.decode("utf-8", errors="replace").strip().splitlines()[0]
        if "," not in first_line:
            separator = r"\s+"
        first_fields = pd.Series(first_line.replace(",", " ").split())
        if pd.to_numeric(first_fields, errors="coerce").notna().all():
            header = None
    try:
        table = pd.read_csv(
            path, sep=separator, header=header, nrows=nrows, encoding_errors="replace"
        )
    except pd.errors.EmptyDataError as error:
        raise DataError(
            f"{source}: is empty; it needs a header and at least one data row"
        ) from error
    except (pd.errors.ParserError, ValueError, OSError, EOFError) as error:
        raise DataError(
            f"{source}: not a readable table ({_first_line(error)}); "
            "every line needs the same number of comma-separated fields"
        ) from error
    if header is None:
        table.columns = [f"f{i}" for i in range(table.shape[1])]
    return table


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _load_arrays(path: Path, source: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The values of a .npy file, or arrays ``X`` and ``y`` (or None) of an .npz file."""
    try:
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
    except (OSError, ValueError, EOFError) as error:
        raise DataError(
            f"{source}: not a readable NumPy file ({_first_line(error)}); "
            "save a numeric array with numpy.save or numpy.savez"
        ) from error
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
    table: pd.DataFrame, requested: Sequence[str] | None, reserved: dict[str, str], source: str
) -> list[str]:
    """Feature columns, in table order for globs and in the given order for names.

    `requested` holds names or glob patterns (``t*``); None picks every numeric column, and
    every text column of mostly numbers (so that its bad cells are reported, not skipped).
    `reserved` maps role ("label", "time", "entity") to a column that is never a feature.
    """
    available = list(table.columns)
    missing = [name for name in reserved.values() if name not in available]
    if requested is not None:
        plain = [name for name in requested if not any(c in name for c in _GLOB_CHARACTERS)]
        missing += [name for name in plain if name not in available]
    if missing:
        raise DataError(
            f"{source}: no column {quote_names(missing)}; "
            f"the columns are {quote_names(available, limit=12)}"
        )
    if requested is None:
        return [
            name
            for name in available
            if name not in reserved.values() and _is_numeric_column(table[name])
        ]

    selected: list[str] = []
    for name in requested:
        if any(c in name for c in _GLOB_CHARACTERS):
            matches = [m for m in fnmatch.filter(available, name) if m not in reserved.values()]
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


def _is_numeric_column(column: pd.Series) -> bool:
    """Numbers, or text that is at least half numbers (a column with some bad cells)."""
    if pd.api.types.is_numeric_dtype(column):
        return True
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return False
    present = int(column.notna().sum())
    parsed = int(pd.to_numeric(column, errors="coerce").notna().sum())
    return present > 0 and parsed >= present / 2


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
                "expected; leave the column out with --columns"
            )
        numbers = pd.to_numeric(column, errors="coerce")
        bad = numbers.isna() & column.notna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: column '{name}' row {row + 1} has text {column.iloc[row]!r} where a "
                "number is expected; fix the cell or leave the column out with --columns"
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
            f"every row needs a {role}"
        )
    return column


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
        return pd.Index(column, name=column.name)


def _check_nan_policy(nan_policy: str, allowed: tuple[str, ...]) -> None:
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
) -> SeriesData:
    """Read one long series: rows = time steps, features = (T, F) float32.

    columns: feature column names or glob patterns (``sensor_*``); default: every numeric
    column other than the time, label and entity columns. An .npy file holds (T, F) or
    (T,); an .npz file ``X`` (T, F) and optional labels ``y`` (used unless label_column).
    nan_policy: "error", "ffill" (forward then backward fill), "interpolate" (linear, edges
    filled from the nearest value) or "drop" (drop the row). Infinite values always raise.
    """
    _check_nan_policy(nan_policy, ("error", "ffill", "interpolate", "drop"))
    path = Path(path)
    source = str(path)
    _check_input_file(path, source)
    array_labels = None
    if _suffix(path) in _ARRAY_SUFFIXES:
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

    roles = {"time": time_column, "label": label_column, "entity": entity_column}
    reserved = {role: name for role, name in roles.items() if name is not None}
    names = _select_columns(table, columns, reserved, source)
    if not names:
        raise DataError(
            f"{source}: no numeric feature column among "
            f"{quote_names(list(table.columns), limit=12)}; name the feature columns with --columns"
        )
    values = _numeric_values(table, names, source)
    if label_column is not None:
        labels = _labels(table[label_column], source)
    elif array_labels is not None:
        labels = _labels(pd.Series(array_labels, name="y"), source)
    else:
        labels = None
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
    if nan_policy == "drop":
        keep = ~np.isnan(values).any(axis=1)
        if not keep.any():
            raise DataError(
                f"{source}: every row has a missing value, so --nan-policy drop leaves nothing; "
                "use --nan-policy ffill or interpolate"
            )
        values, index = values[keep], index[keep]
        labels = labels[keep] if labels is not None else None
        entities = entities[keep] if entities is not None else None
    elif nan_policy == "ffill":
        values = pd.DataFrame(values).ffill().bfill().to_numpy()
    elif nan_policy == "interpolate":
        frame = pd.DataFrame(values)
        values = frame.interpolate(method="linear", limit_direction="both").to_numpy()
    return SeriesData(values.astype(np.float32), names, index, labels, entities, source)


def _check_no_empty_columns(values: np.ndarray, names: list[str], source: str) -> None:
    """A column with no value at all cannot be filled: name it."""
    empty = np.isnan(values).all(axis=0)
    if empty.any():
        name = names[int(np.flatnonzero(empty)[0])]
        raise DataError(
            f"{source}: column '{name}' has no values at all; leave it out with --columns"
        )


def read_sequences(
    path: str | os.PathLike,
    *,
    columns: Sequence[str] | None = None,
    label_column: str | None = None,
    nan_policy: str = "error",
) -> SequenceData:
    """Read independent sequences: values (N, L, F) float32.

    CSV/Parquet ("UCR style"): one row per sequence, one column per timestep (F = 1, the
    feature is named "value"); columns names the timestep columns (names or glob patterns
    such as ``t*``), default every numeric column but the label column. An .npy file holds
    (N, L) or (N, L, F); an .npz file ``X`` of that shape and optional labels ``y``.
    nan_policy: "error", "interpolate" (linear along time, edges filled from the nearest
    value) or "drop" (drop the sequence).
    """
    _check_nan_policy(nan_policy, ("error", "interpolate", "drop"))
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
    else:
        table = read_table(path)
        reserved = {"label": label_column} if label_column is not None else {}
        names = _select_columns(table, columns, reserved, source)
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
    return SequenceData(values.astype(np.float32), feature_names, labels, ids, source)


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
    also end in an extension `write_table` knows (.csv, .csv.gz, .parquet, .pq).
    """
    path = Path(path)
    if table and _table_format(path) is None:
        raise DataError(
            f"{path}: unknown output type; name the file .csv, .csv.gz, .parquet or .pq"
        )
    if path.exists() and not overwrite:
        raise DataError(f"{path}: exists; pass --overwrite (in Python: overwrite=True) to replace it")
    parent = path.parent
    if not parent.is_dir():
        raise DataError(f"{path}: folder '{parent}' does not exist; create it first")


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write `df` as CSV or Parquet (by extension), atomically: a crash leaves no half file.

    A named index (e.g. "timestamp") is written as the first column; an unnamed one is not.
    """
    path = Path(path)
    check_output_path(path, overwrite, table=True)
    write_index = df.index.name is not None or isinstance(df.index, pd.MultiIndex)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    os.close(descriptor)
    try:
        if _table_format(path) == "csv":
            compression = "gzip" if path.name.lower().endswith(".gz") else None
            df.to_csv(temporary, index=write_index, compression=compression)
        else:
            df.to_parquet(temporary, index=write_index)
        os.chmod(temporary, 0o666 & ~umask())  # mkstemp makes owner-only files
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@contextmanager
def staged_directory(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Build the directory `target` in a temporary sibling, yielded, and rename it into place when
    the block succeeds: a failure leaves nothing behind and an existing target untouched."""
    target = Path(target)
    check_output_path(target, overwrite)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        os.chmod(staging, 0o777 & ~umask())  # mkdtemp makes an owner-only directory
        yield staging
        if target.exists():
            check_output_path(target, overwrite)  # it may have appeared meanwhile
            backup = staging.with_name(staging.name + ".old")
            os.replace(target, backup)
            os.replace(staging, target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def umask() -> int:
    """The process's file-creation mask (to give atomically written files normal permissions)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
