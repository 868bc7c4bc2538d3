"""Request bodies -> checked arrays, or a `RequestError` naming the field and the fix.

Pure functions (no FastAPI, no torch): the service's one place that trusts nothing a client sends.
A table arrives in one of two shapes, the features picked by name (other keys are ignored):

- ``{"rows": [{"a": 1.0, "b": 2.0}, ...]}``: one object per row;
- ``{"columns": ["a", "b"], "data": [[1.0, 2.0], ...]}``: column names and one list per row.

Every value of a feature must be a JSON number that is finite and within float32's range (the
model computes in float32); the error names the row and the feature. Nothing here reads a file.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data.validation import is_number

FLOAT32_MAX = float(np.finfo(np.float32).max)
ROWS_EXAMPLE = '{"rows": [{"a": 0.1, "b": 2.0}, ...]} or {"columns": ["a", "b"], "data": [[0.1, 2.0], ...]}'


class RequestError(Exception):
    """A bad request: HTTP `status`, what is wrong (`error`), the `field` at fault and the `fix`."""

    def __init__(self, status: int, error: str, field: str | None, fix: str, **extra):
        super().__init__(error)
        self.status, self.error, self.field, self.fix, self.extra = status, error, field, fix, extra

    def body(self) -> dict:
        """{"error", "field", "fix"}, and what else the client needs to recover (e.g. "rows_seen")."""
        return {"error": self.error, "field": self.field, "fix": self.fix, **self.extra}


@dataclass
class Table:
    """A checked table: `values` (T, F) float32 in the model's feature order; `entities` (T,) or None."""

    values: np.ndarray
    entities: list | None = None
    where: Callable[[int], str] = lambda i: f"rows[{i}]"  # the request field of row i, as errors name it
    times: list | None = None  # (T,) raw JSON values of the time column, when the request has one


def parse_json(body: bytes) -> dict:
    """The JSON object in `body`; RequestError 400 for text that is not JSON, 422 for JSON that is not an
    object. NaN and Infinity literals parse here and are refused by `parse_table` with their row."""
    if not body.strip():
        raise RequestError(400, "the request body is empty", "body", f"send a JSON object such as {ROWS_EXAMPLE}")
    try:
        data = json.loads(body, parse_float=_parse_float, parse_int=_parse_int)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, bad UTF-8, digits limit; deep nesting
        reason = str(err).splitlines()[0][:200] if not isinstance(err, RecursionError) else "nested too deeply"
        raise RequestError(400, f"the request body is not valid JSON ({reason})", "body",
                           f"send a JSON object such as {ROWS_EXAMPLE} with Content-Type: application/json")
    if not isinstance(data, dict):
        raise RequestError(422, f"the request body is a JSON {_json_type(data)}, not an object", "body",
                           f"send a JSON object such as {ROWS_EXAMPLE}")
    return data


def check_keys(data: dict, allowed: tuple[str, ...]) -> None:
    """Refuse keys the endpoint does not know (a typo such as "row" would otherwise be ignored)."""
    unknown = [key for key in data if key not in allowed]
    if unknown:
        raise RequestError(422, f"unknown field {unknown[0]!r}", unknown[0],
                           f"use only the fields {', '.join(allowed)}")


def parse_table(data: dict, features: list[str], *, max_rows: int, entity_column: str | None = None,
                time_column: str | None = None) -> Table:
    """The rows of a request body `data` as a `Table` with the model's `features`, in their order.

    Exactly one of "rows" or "columns" + "data" must be given, with 1 to `max_rows` rows (413 above).
    With `entity_column`, each row's value in that column (a string or an integer) is returned too; with
    `time_column`, each row's raw value there when the rows carry it (every row, or none).
    """
    if entity_column is not None and entity_column in features:
        raise RequestError(422, f"entity_column {entity_column!r} is one of the model's features", "entity_column",
                           "name the column that holds entity ids, not a feature")
    if "rows" in data and ("columns" in data or "data" in data):
        raise RequestError(422, "both 'rows' and 'columns'/'data' given", "rows",
                           "send the rows one way: 'rows' (a list of objects) or 'columns' + 'data'")
    if "rows" in data:
        names, matrix, where = _records(data["rows"], features, max_rows, entity_column)
    elif "columns" in data or "data" in data:
        names, matrix, where = _columns(data, features, max_rows, entity_column)
    else:
        raise RequestError(422, "no rows in the request", "rows", f"send {ROWS_EXAMPLE}")
    values = _numbers(matrix, names, len(features), where)
    entities = None
    if entity_column is not None:
        entities = [row[-1] for row in matrix]
        for i, entity in enumerate(entities):
            field = f"{where(i)}.{entity_column}"
            if isinstance(entity, float):
                raise RequestError(422, f"row {i}: entity column {entity_column!r} holds {entity!r}, not a whole "
                                        "number", field, "give each row's entity id as a string or an integer")
            if isinstance(entity, bool) or not isinstance(entity, (str, int)):
                raise RequestError(422, f"row {i}: entity column {entity_column!r} holds a JSON {_json_type(entity)}",
                                   field, "give each row's entity id as a string or an integer")
            if isinstance(entity, str) and not _is_utf8(entity):
                raise RequestError(422, f"row {i}: entity column {entity_column!r} holds a string that is not "
                                        "valid Unicode (an unpaired surrogate escape such as \\ud800)", field,
                                   "give each row's entity id as text of whole characters")
    return Table(values, entities, where, _times(data, time_column))


def carries(data: dict, column: str) -> bool:
    """Whether a request body's rows hold `column` (any row of "rows", or among "columns")."""
    rows, columns = data.get("rows"), data.get("columns")
    if isinstance(rows, list):
        return any(isinstance(row, dict) and column in row for row in rows)
    return isinstance(columns, list) and column in columns


def _times(data: dict, time_column: str | None) -> list | None:
    """The raw values of `time_column` in a parsed table body (None: no such column, or no time column)."""
    if time_column is None:
        return None
    if "rows" not in data:
        columns = data["columns"]
        return [row[columns.index(time_column)] for row in data["data"]] if time_column in columns else None
    has = [time_column in row for row in data["rows"]]
    if not any(has):
        return None
    if not all(has):
        i = has.index(False)
        raise RequestError(422, f"row {i} has no time column {time_column!r}, which other rows have",
                           f"rows[{i}].{time_column}", "give every row its time, or leave the time out of every row")
    return [row[time_column] for row in data["rows"]]


def _records(rows, features, max_rows, entity_column):
    """(names, matrix (T, len(names)) of raw JSON values, row -> field path) from {"rows": [{...}, ...]}."""
    if not isinstance(rows, list):
        raise RequestError(422, f"'rows' is a JSON {_json_type(rows)}, not a list of objects", "rows",
                           f"send {ROWS_EXAMPLE}")
    _check_count(len(rows), max_rows, "rows")
    names = list(features) + ([entity_column] if entity_column is not None else [])
    matrix = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RequestError(422, f"row {i} is a JSON {_json_type(row)}, not an object", f"rows[{i}]",
                               'give each row as an object of feature values, e.g. {"a": 0.1, "b": 2.0}')
        try:
            matrix.append([row[name] for name in names])
        except KeyError:
            missing = [name for name in names if name not in row]
            what = "entity column" if missing[0] == entity_column else "feature"
            raise RequestError(422, f"row {i} has no {what} {missing[0]!r}", f"rows[{i}].{missing[0]}",
                               f"give every row the model's features {', '.join(map(repr, features))}"
                               + (f" and the entity column {entity_column!r}" if entity_column is not None else ""))
    return names, matrix, lambda i: f"rows[{i}]"


def _columns(data, features, max_rows, entity_column):
    """The same from {"columns": [...], "data": [[...], ...]}: the features picked by column name."""
    columns, rows = data.get("columns"), data.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise RequestError(422, "'columns' must be a list of column names (strings)", "columns",
                           f"send {ROWS_EXAMPLE}")
    repeated = sorted({c for c in columns if columns.count(c) > 1}) if len(set(columns)) < len(columns) else []
    if repeated:
        raise RequestError(422, f"column {repeated[0]!r} is named twice", "columns", "name each column once")
    names = list(features) + ([entity_column] if entity_column is not None else [])
    missing = [name for name in names if name not in columns]
    if missing:
        what = "entity column" if missing[0] == entity_column else "feature"
        raise RequestError(422, f"no {what} {missing[0]!r} among the columns", "columns",
                           f"include the model's features {', '.join(map(repr, features))}"
                           + (f" and the entity column {entity_column!r}" if entity_column is not None else ""))
    if not isinstance(rows, list):
        raise RequestError(422, f"'data' is a JSON {_json_type(rows)}, not a list of rows", "data",
                           f"send {ROWS_EXAMPLE}")
    _check_count(len(rows), max_rows, "data")
    positions = [columns.index(name) for name in names]
    matrix = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            got = f"a list of {len(row)} values" if isinstance(row, list) else f"a JSON {_json_type(row)}"
            raise RequestError(422, f"data row {i} is {got}, expected {len(columns)} (one per column)", f"data[{i}]",
                               "give each row as a list with one value per entry of 'columns'")
        matrix.append([row[j] for j in positions])
    return names, matrix, lambda i: f"data[{i}]"


def _check_count(n: int, max_rows: int, field: str) -> None:
    if n == 0:
        raise RequestError(422, f"'{field}' is empty", field, "send at least one row")
    if n > max_rows:
        raise RequestError(413, f"{n} rows in one request, more than this server's limit of {max_rows}", field,
                           f"send at most {max_rows} rows per request (split the table into several requests)")


def _numbers(matrix: list, names: list[str], n_features: int, where) -> np.ndarray:
    """(T, n_features) float32 of the first `n_features` columns of `matrix` (raw JSON values); a
    value that is not a number, or not finite in float32, is refused naming its row and feature."""
    cells = matrix if n_features == len(names) else [row[:n_features] for row in matrix]
    kinds = {type(value) for row in cells for value in row}
    if kinds <= {int, float}:  # the usual request: one pass in numpy
        try:
            values = np.asarray(cells, dtype=np.float64)
        except OverflowError:  # an integer beyond float64
            values = None
        if values is not None and np.isfinite(values).all() and (np.abs(values) <= FLOAT32_MAX).all():
            return values.astype(np.float32)
    for i, row in enumerate(cells):
        for name, value in zip(names, row):
            problem = _bad_number(value)
            if problem:
                raise RequestError(422, f"row {i}, feature {name!r}: {problem}", f"{where(i)}.{name}",
                                   "send a finite JSON number within +-3.4e38 for every feature (fill or drop "
                                   "missing values before sending)")
    raise AssertionError("unreachable: a bad value was not found")  # pragma: no cover


def _bad_number(value) -> str | None:
    """Why a JSON value is not a usable feature value, or None when it is."""
    if not is_number(value):
        shown = json.dumps(value)[:40] if isinstance(value, (str, bool)) or value is None else _json_type(value)
        return f"{shown} is not a number"
    try:
        number = float(value)
    except OverflowError:
        digits, sign = str(abs(value)), "-" if value < 0 else ""  # an integer too large for a float
        return f"{sign}{digits[0]}.{digits[1:4]}e+{len(digits) - 1} is out of range (float32 holds +-3.4e38)"
    if math.isnan(number):
        return "NaN is not a value the model can score"
    if isinstance(value, _WrittenOut):  # a number written out that no float holds (1e400, 5,000 digits)
        return f"{value.text[:12]}{'...' if len(value.text) > 12 else ''} is out of range (float32 holds +-3.4e38)"
    if math.isinf(number):
        return f"{number} is not finite"
    if abs(number) > FLOAT32_MAX:
        return f"{value:.3g} is out of range (float32 holds +-3.4e38)"
    return None


class _WrittenOut(float):
    """A JSON number too large for a float (read as +-inf), which keeps its text for the error message."""

    text: str


def _parse_float(text: str) -> float:
    number = float(text)
    if not math.isinf(number):
        return number
    marked = _WrittenOut(number)
    marked.text = text
    return marked


def _parse_int(text: str):
    """int(text); a literal past Python's limit on digits (a ValueError that failed the whole body as "not valid
    JSON") is kept as an out-of-range number instead, refused with its row and feature."""
    try:
        return int(text)
    except ValueError:
        marked = _WrittenOut(-math.inf if text.startswith("-") else math.inf)
        marked.text = text
        return marked


def _json_type(value) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
