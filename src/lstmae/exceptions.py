"""Exceptions that the CLI turns into one clear line and exit code 2."""


class LstmaeError(Exception):
    """Base class for errors lstmae raises on purpose."""


class DataError(LstmaeError, ValueError):
    """Bad input data: the message names the file/column/row/value and the fix. `cell`: (row, column), counted
    from 0 in the array that was checked, where one value is to blame (a caller that numbers rows its own way,
    such as the HTTP service, names it from there)."""

    def __init__(self, *args, cell: tuple[int, int] | None = None):
        super().__init__(*args)
        self.cell = cell


class StreamPositionError(DataError):
    """Rows given to a stream from a row other than the one it stands at (a retried batch, or rows lost on the
    way); `rows_seen`: the entity's rows taken so far, where the next batch must start."""

    def __init__(self, *args, rows_seen: int):
        super().__init__(*args)
        self.rows_seen = rows_seen


class ModelFileError(LstmaeError, ValueError):
    """A model directory that is missing, incomplete, corrupt or not what it claims to be."""


class TrainingDiverged(LstmaeError):
    """Training went wrong in a way the user can fix (the message names the setting, e.g. the learning rate)."""
