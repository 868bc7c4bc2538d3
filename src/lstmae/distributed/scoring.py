"""Score many entities' series with one model on Dask workers; the result equals `series.score_frame`.

How it works: every input row is tagged with its place in the input (partition number, position),
the table is shuffled on the entity column so that all rows of an entity land in one partition,
each partition is put back in order (by the time column when one is given, else by the input
order) and scored by `lstmae.series.score_frame(model, part, entity_column=...)`. Entities are
scored independently there (windows, adaptive thresholds and alarm rules all restart per entity),
so which entities share a partition changes nothing.

The model travels as its directory path, never as a pickled object: each worker process loads it
once with `lstmae.load` and keeps it, keyed by the path and the SHA-256 of its weights, so a model
saved again under the same path is loaded afresh.
"""
from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

try:
    import dask.dataframe as dd
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("lstmae.distributed needs Dask: pip install 'lstmae[distributed]' "
                      "(dask[dataframe] and distributed)") from err

from ..config import DEFAULTS
from ..data.validation import beyond_float32
from ..estimator import load
from ..exceptions import DataError, ModelFileError
from ..persistence import read_config
from ..scoring import DEFAULT_ALARM
from ..series import SkippedGroupWarning, feature_values, score_frame, windowed_groups

# Columns that carry each row's place in the input through the shuffle; dropped from the result.
_PART, _POS = "__lstmae_partition", "__lstmae_position"
_ORDER = [_PART, _POS]
_TIME = "__lstmae_time"
_CACHE_SIZE = 4
_models: dict[tuple[str, str], object] = {}
_models_lock = threading.Lock()


def score_entities(model_dir, ddf, *, entity_column: str, time_column: str | None = None,
                   how: str = DEFAULTS["how"], stride: int = 1, threshold=None,
                   alarms: dict | None = DEFAULT_ALARM, feature_errors: bool = False,
                   npartitions: int | None = None, torch_threads: int | None = 1):
    """Score the series of every entity in the Dask DataFrame `ddf` with the model saved in `model_dir`.

    ddf: rows = time steps of many entities, in any interleaving, with the model's feature columns
    (picked by name; other columns are ignored) and `entity_column`. Each entity's rows are put
    in order by `time_column` when given (ties keep the input order), else kept in the input order.
    Windows of the model's length are cut every `stride` rows within an entity, never across two; an entity is
    not split at time gaps (as `lstmae score` splits a file's): give each stretch between gaps its own entity id.

    how, threshold, alarms, feature_errors: as in `lstmae.series.score_values`.
    npartitions: partitions after the shuffle (default: those of `ddf`); each holds whole entities.
    torch_threads: torch threads per task on a `distributed` worker (default 1, so that n single-threaded
    workers use n cores without oversubscribing them); None leaves torch's setting alone. Tasks run
    by the local schedulers (threads, synchronous) never change it.

    Returns a lazy Dask DataFrame, one row per input row, with the input's index, `entity_column`,
    `time_column` (when given) and ``score`` (NaN where invalid, inf where a window's error
    overflowed), ``is_anomaly``, ``alarm`` (unless `alarms` is None), ``valid`` (False for rows no full
    window covers, among them every row of an entity shorter than the window), ``threshold`` for
    adaptive threshold rules, ``error_<feature>`` with `feature_errors`. Rows come grouped by
    partition, not in the input order: join on the index or on (entity, time).

    Dask stores object columns as text (`dataframe.convert-string`): ids 1 and "1" in `ddf` are one entity,
    where `score_frame` on the pandas frame keeps them apart (`score_entities_pandas` refuses that frame).

    `model_dir` must be readable at the same path by every worker (on a cluster: a shared file
    system). The model is loaded here once to check the columns, and once per worker process.
    Raises DataError (a missing entity, time or feature column) and ModelFileError at once, not at
    compute time.
    """
    scored = _score(model_dir, ddf, entity_column, time_column, npartitions, torch_threads,
                    dict(how=how, stride=int(stride), threshold=threshold, alarms=alarms,
                         feature_errors=feature_errors))
    return scored.drop(columns=_ORDER)


def score_entities_pandas(model_dir, frame: pd.DataFrame, *, entity_column: str, time_column: str | None = None,
                          client=None, npartitions: int | None = None, how: str = DEFAULTS["how"],
                          stride: int = 1, threshold=None, alarms: dict | None = DEFAULT_ALARM,
                          feature_errors: bool = False, torch_threads: int | None = 1) -> pd.DataFrame:
    """`score_entities` for a pandas DataFrame in memory; returns a pandas DataFrame in `frame`'s row order.

    client: a `distributed.Client` (a LocalCluster's or a cluster's) to compute on; None uses Dask's
    current default (a client made earlier in this process, else the local threaded scheduler).
    npartitions: pieces the frame is cut into (default: 2 per worker thread of `client`, else 2 per CPU).
    The other options are those of `score_entities`. As `score_frame`, refuses a frame with no rows, or
    whose entities are all shorter than the model's window.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if not len(frame):
        raise DataError("the frame has no rows; give the rows of at least one entity")
    if entity_column in frame.columns:
        ids = frame[entity_column].dropna()
        if ids.dtype == object:
            _check_distinct_ids(ids, entity_column)
        model = _cached_model(*_model_key(model_dir))
        _check_not_features(model, entity_column, time_column)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedGroupWarning)  # each partition names its short entities
            windowed_groups(len(ids), model.n_timesteps_, ids.to_numpy())
    if npartitions is None:
        threads = sum(client.nthreads().values()) if client is not None else (os.cpu_count() or 1)
        npartitions = 2 * threads
    npartitions = max(1, min(int(npartitions), len(frame)))
    ddf = dd.from_pandas(frame, npartitions=npartitions, sort=False)
    scored = _score(model_dir, ddf, entity_column, time_column, npartitions, torch_threads,
                    dict(how=how, stride=int(stride), threshold=threshold, alarms=alarms,
                         feature_errors=feature_errors))
    result = scored.compute(scheduler=client) if client is not None else scored.compute()
    result = result.sort_values(_ORDER, kind="stable").drop(columns=_ORDER)
    # The entity and time values as the user gave them (Dask may have stored object columns as strings).
    for name in [entity_column] + ([time_column] if time_column is not None else []):
        result[name] = frame[name].to_numpy()
    return result


def _check_distinct_ids(ids: pd.Series, entity_column: str) -> None:
    """DataError for two ids that are one entity to `score_frame` but two to Dask, which may store them as text,
    or the reverse: 1 and 1.0 (equal values, other text), 1 and "1" (other values, the same text)."""
    typed = set(zip(ids.map(type), ids))
    for key in (str, lambda value: value):
        seen = {}
        for kind, value in typed:
            other = seen.setdefault(key(value), value)
            if other is not value and type(other) is not kind:
                raise DataError(f"entity column {entity_column!r} has the ids {other!r} and {value!r}, which scale-out "
                                f"scoring cannot tell apart as score_frame does; give the ids one type (e.g. "
                                f"frame[{entity_column!r}].astype(str))")


def _score(model_dir, ddf, entity_column, time_column, npartitions, torch_threads, options):
    """The lazy scored table, still carrying each row's place in the input (_ORDER columns)."""
    if not isinstance(ddf, dd.DataFrame):
        raise DataError(f"expected a Dask DataFrame, got {type(ddf).__name__} (score_entities_pandas takes "
                        "a pandas one)")
    path, sha = _model_key(model_dir)
    model = _cached_model(path, sha)
    columns = list(ddf.columns)
    for role, name in (("entity", entity_column), ("time", time_column)):
        if name is not None and name not in columns:
            raise DataError(f"no {role} column {name!r}; the columns are {columns[:12]}")
    if time_column == entity_column:
        raise DataError(f"{entity_column!r} is given as both the entity and the time column; name each its own column")
    reserved = [entity_column] + ([time_column] if time_column is not None else [])
    _check_not_features(model, entity_column, time_column)
    # Missing or non-numeric features fail here, before any work is sent out.
    feature_values(model, ddf._meta.drop(columns=reserved))
    features = _feature_columns(model, [c for c in columns if c not in reserved])
    text = [f"{name!r} ({ddf._meta[name].dtype})" for name in features
            if not pd.api.types.is_numeric_dtype(ddf._meta[name])]
    if text:
        raise DataError(f"feature columns must hold numbers; not numeric: {', '.join(text[:5])}; convert them "
                        "(e.g. ddf[col].astype('float32')) or drop them")
    meta = _result_meta(model, ddf._meta, entity_column, time_column, options)

    tagged = ddf.map_partitions(_tag_rows, meta=ddf._meta.assign(**{_PART: np.int64(0), _POS: np.int64(0)}))
    by_entity = tagged.shuffle(on=entity_column, npartitions=npartitions or ddf.npartitions)
    return by_entity.map_partitions(_score_partition, path, sha, entity_column, time_column, features, options,
                                    torch_threads, meta, meta=meta, align_dataframes=False)


def _check_not_features(model, entity_column: str, time_column: str | None) -> None:
    """DataError for an entity or time column that is one of the model's features (left out of the features as
    reserved, it was named missing)."""
    for role, name in (("entity", entity_column), ("time", time_column)):
        if name is not None and name in model._feature_names():
            raise DataError(f"the {role} column {name!r} is one of the model's features; name the column that holds "
                            f"each row's {'entity id' if role == 'entity' else 'time'}")


def _feature_columns(model, candidates: list) -> list:
    """The input columns `score_frame` reads as features: the model's by name when it knows them, else
    every column but the entity and time columns (as `score_frame` would take them)."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None and all(isinstance(c, str) for c in candidates):
        return list(names)
    return candidates


def _tag_rows(part: pd.DataFrame, partition_info=None) -> pd.DataFrame:
    """`part` with each row's place in the input: its partition number and position in the partition."""
    number = partition_info["number"] if partition_info else 0
    return part.assign(**{_PART: np.full(len(part), number, np.int64), _POS: np.arange(len(part), dtype=np.int64)})


def _score_partition(part, path, sha, entity_column, time_column, features, options, torch_threads, meta):
    """Score one partition holding whole entities: put in order, `score_frame`, keep the result columns."""
    if torch_threads is not None and _on_worker():
        import torch

        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(int(torch_threads))
    if not len(part):
        return meta
    if part[entity_column].isna().any():
        raise DataError(f"entity column {entity_column!r} has missing values; give every row an entity")
    part = part.sort_values(_ORDER, kind="stable")  # the input order
    times = _check_entities(part, entity_column, time_column, features)
    part = _in_time_order(part, time_column, times)
    model = _cached_model(path, sha)
    # numbered rows: an index named as the model's time column would be read as times by score_frame
    table = _padded(part[features + [entity_column]].reset_index(drop=True), entity_column, model.n_timesteps_)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scored = score_frame(model, table, entity_column=entity_column, **options).iloc[: len(part)]
    for warning in caught:  # the padding entity's own (e.g. an alarm storm on its zeros) are not the user's
        if repr(_PadEntity()) not in str(warning.message):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    scored.index = part.index
    keep = [entity_column] + ([time_column] if time_column is not None else [])
    result = pd.concat([part[keep + _ORDER], scored], axis=1)
    return result.reindex(columns=meta.columns)


def _in_time_order(part: pd.DataFrame, time_column: str | None, times: pd.Index | None) -> pd.DataFrame:
    """`part` (rows in input order) in the order `lstmae score` puts a file's: by its `times` (the time column
    as read, parsed here when None) where they are dates or numbers; ties, and text times, in the input order."""
    from ..data.io import _time_index

    if time_column is None:
        return part
    if times is None:
        times = _time_index(part[time_column].reset_index(drop=True), "the partition")
    if not (pd.api.types.is_datetime64_any_dtype(times) or pd.api.types.is_numeric_dtype(times)):
        return part
    return part.assign(**{_TIME: times.to_numpy()}).sort_values(_TIME, kind="stable").drop(columns=_TIME)


def _check_entities(part: pd.DataFrame, entity_column: str, time_column: str | None,
                    features: list) -> pd.Index | None:
    """DataError naming the entity and its row (counted in the input order of its rows) for what `lstmae score`
    refuses in a file: a missing feature value, and an empty, unreadable or repeated time. Returns the time
    column of `part` (rows in input order) as read, when the whole partition was checked at once (else None)."""
    from ..data.io import _time_index, _time_order

    def check_times(rows, entities, source):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rows out of time order are put in order below, as documented
            times = _time_index(rows[time_column].reset_index(drop=True), source)
            _time_order(times, entities, source)
        return times

    def numbers_of(rows, column):
        return pd.to_numeric(rows[column], errors="coerce").to_numpy(np.float64)

    def bad_cells(rows):  # (missing, beyond float32 or infinite), each (T, F); text is named by score_frame
        numbers = np.stack([numbers_of(rows, column) for column in features], axis=1)
        return rows[features].isna().to_numpy(), beyond_float32(numbers)

    # the whole partition at once; only a partition with a bad cell is searched entity by entity
    if not any(mask.any() for mask in bad_cells(part)):
        try:
            return None if time_column is None else check_times(part, part[entity_column].to_numpy(), "the partition")
        except DataError:
            pass
    for entity, rows in part.groupby(entity_column, sort=False):
        source = f"entity {entity!r} (its rows in input order)"
        missing, out_of_range = bad_cells(rows)
        if missing.any():
            row, column = np.argwhere(missing)[0]
            raise DataError(f"{source}: column {features[column]!r} row {row + 1} is missing; fill or drop it "
                            "before scoring (e.g. frame.groupby(entity).ffill())")
        if out_of_range.any():
            row, column = np.argwhere(out_of_range)[0]
            value = numbers_of(rows, features[column])[row]
            raise DataError(f"{source}: column {features[column]!r} row {row + 1} has value {value:g} where a finite "
                            "float32 number is expected; fix the cell before scoring")
        if time_column is not None:
            check_times(rows, None, source)
    return None


def _padded(part: pd.DataFrame, entity_column: str, window: int) -> pd.DataFrame:
    """`part`, plus one window of zeros for an entity of its own at the end when no entity in `part` has a
    full window: `score_frame` refuses a table with nothing to score, while such a partition's rows
    (entities shorter than the window) must come out as in single-process scoring, valid=False. The
    extra entity is scored on its own and its rows are cut off again."""
    if part.groupby(entity_column, sort=False).size().max() >= window:
        return part
    pad = pd.DataFrame(0.0, index=pd.RangeIndex(window), columns=part.columns)
    pad[entity_column] = pd.Series([_PadEntity()] * window, dtype=object)
    return pd.concat([part.astype({entity_column: object}), pad], ignore_index=True)


class _PadEntity:
    """An entity id equal to no user's."""

    def __repr__(self) -> str:
        return "<lstmae padding>"


def _result_meta(model, input_meta, entity_column, time_column, options) -> pd.DataFrame:
    """The empty result table (columns and dtypes), from scoring one window of zeros."""
    window = model.n_timesteps_
    names = model._feature_names()
    probe = pd.DataFrame(np.zeros((window, len(names)), np.float32), columns=names).assign(**{_PART: 0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the probe's own (e.g. an alarm storm on its zeros) are not the user's
        scored = score_frame(model, probe, entity_column=_PART, **options).drop(columns=["overflow"], errors="ignore")
    keep = [entity_column] + ([time_column] if time_column is not None else [])
    front = input_meta[keep].assign(**{_PART: np.int64(0), _POS: np.int64(0)})
    return pd.concat([front, scored.iloc[:0].set_axis(front.index[:0], axis=0)], axis=1)


def _on_worker() -> bool:
    """Whether this runs in a `distributed` worker (not in the client's process under a local scheduler)."""
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def _model_key(model_dir) -> tuple[str, str]:
    """(absolute path, weights SHA-256 from config.json): what a worker's cached model is keyed by."""
    path = Path(model_dir).expanduser().absolute()
    if not path.is_dir():
        raise ModelFileError(f"{path} is not a model directory (expected a directory written by "
                             "LSTMAutoencoder.save or `lstmae fit`)")
    sha = read_config(path).get("weights_sha256")
    if not sha:
        raise ModelFileError(f"{path / 'config.json'} records no weights_sha256; save the model again with "
                             "this version of lstmae")
    return str(path), sha


def _cached_model(path: str, sha: str):
    """The model in `path` whose weights have SHA-256 `sha`, loaded once per process."""
    with _models_lock:
        model = _models.get((path, sha))
        if model is not None:
            return model
        model = load(path)
        now = read_config(path).get("weights_sha256")
        if now != sha:
            raise ModelFileError(f"{path} was saved again while scoring (weights SHA-256 {sha[:12]}... became "
                                 f"{str(now)[:12]}...); score again")
        if len(_models) >= _CACHE_SIZE:
            _models.pop(next(iter(_models)))
        _models[(path, sha)] = model
        return model
