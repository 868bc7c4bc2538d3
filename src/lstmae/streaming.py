"""Streaming scoring: rows in as they arrive, each row's score, flag and alarm out as soon as its window is full.

`StreamingScorer` keeps, per entity (a machine, a sensor), the last window - 1 rows (F,), its own
adaptive threshold (when the rule is one) and its own alarm filter. A row's score is the score of
the window of `model.n_timesteps_` rows ending at it (lstmae.series' how="end", the causal row
score), so feeding a series row by row, in chunks of any size, or through a save and restore
gives the scores, flags and alarms of batch scoring `lstmae.series.score_values(model, values,
how="end")` (alarms as `alarms_from_flags(flags, causal=True)`: what was known at each row).
The first window - 1 rows of each entity are warm-up: ``valid`` False, ``score`` NaN, never
scored as zero. A model's `smooth` does not apply: a row's mean over the rows centred on it would
wait for the rows after it, and how="end" scores are never smoothed.

>>> scorer = StreamingScorer(model, threshold="dspot:1e-3")        # doctest: +SKIP
>>> scorer.update(frame_of_new_rows, entity="pump-7")              # doctest: +SKIP
>>> scorer.update_many(rows_of_all_machines, entity_column="machine")  # one forward pass  # doctest: +SKIP
>>> scorer.save("stream_state", overwrite=True)                    # doctest: +SKIP
>>> scorer = StreamingScorer.load("stream_state", model)           # doctest: +SKIP

The state is a directory of ``state.json`` (settings, per-entity counters, adaptive threshold and
alarm filter states) and ``state.safetensors`` (the buffered rows (k, F) float32 and the threshold
arrays), written atomically, never a pickle. It records a fingerprint of the model (weights,
scaler, error model, threshold, calibration scores), and `load` refuses a state made for another
model.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from .data.io import OutputKind, staged_directory, write_bytes_atomic, write_text_atomic
from .data.validation import counted, is_integer
from .exceptions import DataError, ModelFileError, StreamPositionError
from .persistence import _read_regular
from .scoring import (DEFAULT_ALARM, AlarmFilter, adaptive_from_state, alarm_rules, apply_threshold,
                      check_alarm_options, parse_threshold)
from .series import _name, end_threshold, feature_values, first_unscalable, groups_of

STATE_KIND = "lstmae-streaming"
STATE_VERSION = 1
STATE_JSON = "state.json"
STATE_TENSORS = "state.safetensors"
# What `save` may replace with overwrite=True (data.io.check_replaceable): an earlier state, or an empty folder.
STATE_OUTPUT = OutputKind("a streaming state", STATE_JSON, (STATE_JSON, STATE_TENSORS), "kind")
COLUMNS = ("score", "is_anomaly", "alarm", "valid", "threshold", "alarm_started")
# Windows scored per forward pass in `update_many` (bounds the memory of (N, L, F) copies).
_SCORE_CHUNK = 8192


@dataclass
class _Entity:
    """One entity's stream: its last (at most window - 1) rows, rows seen, threshold and alarm state."""

    buffer: np.ndarray  # (k, F) float32, k = min(rows_seen, window - 1)
    rows_seen: int
    detector: object | None  # an AdaptiveThreshold, or None for a static threshold
    alarms: AlarmFilter | None


class StreamingScorer:
    """Scores rows of one or many entities as they arrive, causally, with a state that saves and restores.

    model: a fitted LSTMAutoencoder on windows of a series (rows (T, F)); each row is scored by the
    window of `model.n_timesteps_` rows ending at it.
    threshold: None for the model's own rule (refitted on its held-out window scores when it was
    fitted on another kind of row score, as `lstmae.series` does for how="end"), a rule spec
    ("quantile:0.995", "dspot:1e-3", "telemanom:2.5") fitted on the model's calibration scores, or
    a number. Adaptive rules (dspot, telemanom) run one detector per entity, started from the
    model's calibration scores and moved by that entity's past scores only.
    alarms: the alarm rules' options (min_length, merge_gap, cooldown in rows; see
    `lstmae.scoring.alarms`), one causal AlarmFilter per entity; None for no alarm columns. Their focus, a
    narrowing in hindsight, does not apply to rows scored as they arrive.
    """

    def __init__(self, model, *, threshold=None, alarms: dict | None = DEFAULT_ALARM):
        _check_model(model)
        self.model = model
        self.window = int(model.n_timesteps_)
        self.n_features = int(model.n_features_in_)
        if hasattr(threshold, "method"):  # a ThresholdRule
            threshold = str(threshold)
        self.threshold = threshold
        # now, not at the first row; focus narrows alarms in hindsight, which a stream cannot: its rules only
        self.alarms = None if alarms is None else alarm_rules(check_alarm_options(alarms))
        self._static, self._template = end_threshold(model, threshold)
        self._column_names = pd.Index([name for name in COLUMNS if self.alarms is not None or not name.startswith("alarm")])
        self._entities: dict = {}
        self._fingerprint = model_fingerprint(model)

    # ------------------------------------------------------------------------------- scoring
    @property
    def entities(self) -> list:
        """The ids of the entities seen so far, in order of first appearance."""
        return list(self._entities)

    @property
    def warmup_rows(self) -> int:
        """Rows an entity needs before its first score: window - 1."""
        return self.window - 1

    @property
    def n_entities(self) -> int:
        """How many entities the scorer holds state for."""
        return len(self._entities)

    def rows_seen(self, entity=None) -> int:
        """How many rows of `entity` have been taken (0 for an entity not seen yet)."""
        state = self._entities.get(_entity_key(entity))
        return 0 if state is None else state.rows_seen

    def forget(self, entity=None) -> int:
        """Drop `entity`'s state (rows, threshold, alarms): its next row starts a new warm-up. Returns the
        rows it had seen (0 for an entity not seen)."""
        state = self._entities.pop(_entity_key(entity), None)
        return 0 if state is None else state.rows_seen

    def update(self, rows, entity=None, *, first_row: int | None = None) -> pd.DataFrame:
        """Take the next rows of one entity, in order, and score every row whose window is now full.

        rows: a DataFrame (the model's feature columns, picked by name when the model knows them;
        other columns are ignored), a Series (one row), or an array (n, F) or (F,).
        entity: the entity's id (a string or a number; None for a single stream).
        Returns one row per input row, with the input's index (for an array: the entity's row
        numbers): ``score`` (NaN for warm-up rows), ``is_anomaly`` (0/1), ``alarm`` (0/1, causal),
        ``valid`` (False for the first window - 1 rows of the entity), ``threshold`` (the value the
        row's score was compared with) and ``alarm_started`` (True on the row an alarm opens).
        first_row: where these rows start in the entity's stream (the `rows_seen` after the previous update, 0
        for its first rows), or None; when given and not where the entity stands, StreamPositionError (with the
        entity's `rows_seen`) is raised and nothing is taken: a batch sent again is not scored twice, and rows
        lost on the way are not skipped over.
        A row with NaN/inf raises DataError naming the entity and the row, and nothing is taken.
        """
        key = _entity_key(entity)
        values, index = self._rows(rows, key)
        if first_row is not None:
            self._check_position(key, first_row, len(values))
        return self._advance([(key, values, np.arange(len(values)), index)], len(values), index)

    def _check_position(self, key, first_row, n_rows: int) -> None:
        """StreamPositionError unless the entity `key` has taken exactly `first_row` rows (a whole number >= 0)."""
        if not is_integer(first_row, 0):
            raise DataError(f"first_row must be a whole number >= 0, got {first_row!r}; give the rows_seen after the "
                            "entity's previous update (0 for its first rows), or leave first_row out")
        seen = self.rows_seen(key)
        if first_row == seen:
            return
        last = min(seen, first_row + n_rows) - 1
        what = (f"rows {seen}-{first_row - 1} never came" if first_row > seen
                else f"its rows {first_row}-{last} were scored already (a batch sent again?)" if last >= first_row
                else f"row {first_row} was scored already")
        raise StreamPositionError(f"entity {_name(key)} has seen {counted(seen, 'row')} and this batch starts at row "
                                  f"{first_row}: {what}; send the entity's rows from row {seen} on, with first_row {seen}",
                                  rows_seen=seen)

    def update_many(self, frame: pd.DataFrame, entity_column: str) -> pd.DataFrame:
        """`update` for rows of many entities at once: each entity's rows are taken in their order, and
        every newly full window of all entities is scored in one batched forward pass (a server with many
        machines sends one call per tick). Returns one row per input row, in the input's order and with
        its index, with the entity column first."""
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"update_many takes a DataFrame with an entity column, got {type(frame).__name__}")
        if entity_column not in frame.columns:
            raise DataError(f"no entity column {entity_column!r}; the columns are {list(frame.columns)[:12]}")
        ids = frame[entity_column]
        missing = np.flatnonzero(ids.isna().to_numpy())
        if missing.size:
            raise DataError(f"entity column {entity_column!r} is empty at row {frame.index[missing[0]]!r}; "
                            "give every row its entity")
        values = feature_values(self.model, frame.drop(columns=[entity_column]), dtype=np.float64)
        parts = []
        for group in groups_of(len(frame), ids.to_numpy()):
            key = _entity_key(group.name)
            parts.append((key, values[group.rows], group.rows, frame.index[group.rows]))
        parts = [(key, self._checked(part_values, key, index), rows, index) for key, part_values, rows, index in parts]
        result = self._advance(parts, len(frame), frame.index)
        result.insert(0, entity_column, ids.to_numpy())
        return result

    def _rows(self, rows, key) -> tuple[np.ndarray, pd.Index]:
        """(values (n, F) float32, index) of rows given to `update`, checked finite (read as float64 first, so
        that a value beyond float32 is named as given, not as the inf its cast would make)."""
        if isinstance(rows, pd.Series):
            rows = rows.to_frame().T
        if isinstance(rows, pd.DataFrame):
            values, index = feature_values(self.model, rows, dtype=np.float64), rows.index
        else:
            sequence = (list, tuple, np.ndarray)
            if isinstance(rows, (list, tuple)) and any(isinstance(row, sequence) for row in rows):
                for i, row in enumerate(rows):  # ragged rows: numpy's own error names none of them
                    if not isinstance(row, sequence) or len(row) != self.n_features:
                        held = f"{len(row)} values" if isinstance(row, sequence) else "a single value"
                        raise DataError(f"row {i} holds {held}; every row needs the model's {self.n_features} "
                                        "features")
            try:
                if np.iscomplexobj(rows):
                    raise DataError("rows hold complex numbers; pass real numbers (their .real, or np.abs for "
                                    "magnitudes)")
                values = np.asarray(rows, dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise DataError(f"rows must hold numbers ({str(err).splitlines()[0]})") from None
            if values.ndim == 1:
                values = values[None, :]
            if values.ndim != 2 or values.shape[1] != self.n_features:
                raise DataError(f"expected rows (n, {self.n_features}) of the model's "
                                f"{counted(self.n_features, 'feature')}, got shape {np.shape(rows)}")
            seen = self.rows_seen(key)
            index = pd.RangeIndex(seen, seen + len(values))
        return self._checked(values, key, index), index

    def _checked(self, values: np.ndarray, key, index) -> np.ndarray:
        """`values` (n, F) as float32, or DataError naming the entity, the row and the feature of the first value
        that is NaN/inf, beyond float32, or that the model's scaling turns into inf; checked before any state
        changes."""
        with np.errstate(invalid="ignore"):
            beyond = np.argwhere(np.abs(values) > np.finfo(np.float32).max)
        with np.errstate(over="ignore"):  # a value beyond float32 is named below, not warned about by numpy
            single = values.astype(np.float32)
        position = tuple(beyond[0]) if len(beyond) else first_unscalable(self.model, single)
        if position is None:  # NaN and inf stay non-finite after scaling
            return single
        row, column = (int(i) for i in position)
        name = self.model._feature_names()[column]
        value = float(values[row, column])
        what = (f"{name}={value}" if not math.isfinite(value)
                else f"{name}={value:g} is beyond float32, in which the model computes" if len(beyond)
                else f"{name}={value:g} is too large for the model's scaling (inf after it)")
        raise DataError(f"entity {_name(key)}, row {index[row]!r} (its row {self.rows_seen(key) + row}): {what}; "
                        "streaming needs finite values: fill or drop the row before update", cell=(row, column))

    def _advance(self, parts: list, n_rows: int, index) -> pd.DataFrame:
        """Score parts [(entity key, values (n, F), output positions (n,), index (n,))], then take them.

        Every newly full window of all parts goes through one forward pass; nothing is changed before
        the scores exist, so an error leaves the scorer as it was."""
        window, states = self.window, []
        windows, counts = [], []
        parts = [part for part in parts if len(part[1])]  # no rows: nothing to take, no entity to start
        for key, values, _, _ in parts:
            state = self._entities.get(key)
            buffer = state.buffer if state is not None else np.empty((0, self.n_features), np.float32)
            combined = np.concatenate([buffer, values]) if len(buffer) else values
            n_windows = max(0, len(combined) - window + 1)
            if n_windows == 1:  # the usual one-row update: a slice, no strided view to build
                windows.append(combined[None, len(combined) - window:])
            elif n_windows:
                view = np.lib.stride_tricks.sliding_window_view(combined, window, axis=0)  # (n_windows, F, L)
                windows.append(view.transpose(0, 2, 1))
            counts.append(n_windows)
            states.append((state, combined))
        window_scores = self._score_windows(windows)

        score = np.full(n_rows, np.nan)
        flags = np.zeros(n_rows, np.int8)
        valid = np.zeros(n_rows, bool)
        thresholds = np.full(n_rows, np.nan)
        alarm = np.zeros(n_rows, np.int8)
        started = np.zeros(n_rows, bool)
        offset = 0
        for (key, values, positions, _), n_windows, (state, combined) in zip(parts, counts, states):
            n = len(values)
            row_scores = np.full(n, np.nan)
            row_scores[n - n_windows:] = window_scores[offset : offset + n_windows]
            offset += n_windows
            if state is None:
                state = _Entity(buffer=combined[:0], rows_seen=0, alarms=None,
                                detector=None if self._template is None else _copy_detector(self._template))
                if self.alarms is not None:
                    state.alarms = AlarmFilter(**self.alarms)
            row_flags, row_thresholds = self._flags(state, row_scores)
            score[positions], flags[positions], thresholds[positions] = row_scores, row_flags, row_thresholds
            valid[positions] = ~np.isnan(row_scores)
            if state.alarms is not None:
                was_open = state.alarms.is_open
                row_alarm = state.alarms.update(row_flags)
                before = np.concatenate([[int(was_open)], row_alarm[:-1]])
                alarm[positions], started[positions] = row_alarm, (row_alarm == 1) & (before == 0)
            keep = window - 1
            state.buffer = np.array(combined[max(0, len(combined) - keep):] if keep else combined[:0], np.float32)
            state.rows_seen += n
            self._entities[key] = state
        columns = dict(zip(COLUMNS, (score, flags, alarm, valid, thresholds, started)))
        # Numbered columns, then a copy of the names' Index made once (a copy: a caller may rename
        # it): from a dict of string keys pandas builds that Index anew, most of a one-row update's
        # DataFrame.
        frame = pd.DataFrame(dict(enumerate(columns[name] for name in self._column_names)), index=index, copy=False)
        frame.columns = self._column_names.copy()
        return frame

    def _score_windows(self, windows: list) -> np.ndarray:
        """Scores (N,) of the windows (n_i, L, F) of all parts, in one forward pass per `_SCORE_CHUNK` windows;
        an overflowing window scores inf (`LSTMAutoencoder.anomaly_score`)."""
        if not windows:
            return np.empty(0)
        if len(windows) == 1:
            return self.model.anomaly_score(windows[0])
        total = sum(len(w) for w in windows)
        if total <= _SCORE_CHUNK:
            return self.model.anomaly_score(np.concatenate(windows))
        scores, batch, size = [], [], 0
        for part in windows:
            for start in range(0, len(part), _SCORE_CHUNK):
                piece = part[start : start + _SCORE_CHUNK]
                if size + len(piece) > _SCORE_CHUNK and batch:
                    scores.append(self.model.anomaly_score(np.concatenate(batch)))
                    batch, size = [], 0
                batch.append(piece)
                size += len(piece)
        scores.append(self.model.anomaly_score(np.concatenate(batch)))
        return np.concatenate(scores)

    def _flags(self, state: _Entity, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flags (n,) int8, thresholds (n,)) for row scores (n,) (NaN for warm-up, inf for an overflow)."""
        if state.detector is None:
            return apply_threshold(scores, self._static), np.full(len(scores), self._static)
        infinite = np.isinf(scores)
        # An overflowing window is flagged and, like any flagged score, leaves the detector unchanged.
        flags, thresholds = state.detector.update(np.where(infinite, np.nan, scores))
        flags[infinite] = 1
        return flags, thresholds

    # --------------------------------------------------------------------------------- state
    def get_state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """The scorer as a plain state: a JSON-able config dict (settings, model fingerprint, per entity
        its rows seen, adaptive threshold and alarm filter state) and named CPU tensors (per entity
        its buffered rows (k, F) float32 and its threshold's arrays)."""
        entities, tensors = [], {}
        for i, (key, state) in enumerate(self._entities.items()):
            entry = {"id": key, "rows_seen": state.rows_seen, "buffer": f"entity{i}.buffer"}
            tensors[entry["buffer"]] = torch.from_numpy(np.ascontiguousarray(state.buffer, np.float32))
            if state.detector is not None:
                config, arrays = state.detector.get_state()
                entry["threshold"] = config
                entry["threshold_arrays"] = {}
                for name, array in arrays.items():
                    entry["threshold_arrays"][name] = f"entity{i}.threshold.{name}"
                    tensors[f"entity{i}.threshold.{name}"] = torch.from_numpy(np.array(array, np.float64))
            if state.alarms is not None:
                entry["alarms"] = state.alarms.get_state()[0]
            entities.append(entry)
        config = {
            "kind": STATE_KIND,
            "version": STATE_VERSION,
            "model_fingerprint": self._fingerprint,
            "window": self.window,
            "n_features": self.n_features,
            "threshold": self.threshold if not isinstance(self.threshold, np.generic) else self.threshold.item(),
            "static_threshold": self._static,
            "alarms": self.alarms,
            "entities": entities,
        }
        return config, tensors

    @classmethod
    def from_state(cls, config: dict, tensors: dict, model, *, source: str = "the streaming state"):
        """The scorer `get_state` described, for `model` (the one it was made with), ready to go on."""
        if not isinstance(config, dict) or config.get("kind") != STATE_KIND:
            raise ModelFileError(f"{source} is not a streaming scorer's state (kind != {STATE_KIND!r})")
        if config.get("version") != STATE_VERSION:
            raise ModelFileError(f"{source} has version {config.get('version')!r}; this lstmae reads version "
                                 f"{STATE_VERSION}")
        _check_model(model)
        if config.get("model_fingerprint") != model_fingerprint(model):
            raise ModelFileError(f"{source} was saved for another model (its fingerprint differs from this "
                                 "model's); load it with the model it was made with, or start a new StreamingScorer")
        try:
            scorer = cls(model, threshold=config["threshold"], alarms=config["alarms"])
            for key in ("window", "n_features"):  # the fingerprint's model has them: the state must agree
                if config[key] != getattr(scorer, key):
                    raise ValueError(f"its {key} is {config[key]!r}, the model's {getattr(scorer, key)}")
            for entry in config["entities"]:
                key = _state_key(entry["id"])
                if key in scorer._entities:
                    raise ValueError(f"entity {_name(key)} appears twice")
                scorer._entities[key] = scorer._entity_from_state(entry, tensors)
        except ModelFileError as err:
            raise ModelFileError(f"{source} is corrupt: {err}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as err:
            raise ModelFileError(f"{source} is corrupt or incomplete: {type(err).__name__} "
                                 f"{str(err).splitlines()[0] if str(err) else ''}".rstrip()) from None
        return scorer

    def _entity_from_state(self, entry: dict, tensors: dict) -> _Entity:
        rows_seen = entry["rows_seen"]
        if not is_integer(rows_seen, 1):
            raise ValueError(f"rows_seen must be a whole number >= 1, got {rows_seen!r}")
        buffer = tensors[entry["buffer"]]
        expected = (min(rows_seen, self.window - 1), self.n_features)
        if tuple(buffer.shape) != expected or buffer.dtype != torch.float32:
            raise ValueError(f"buffer {entry['buffer']} is {buffer.dtype} {tuple(buffer.shape)}, expected float32 "
                             f"{expected}")
        buffer = buffer.numpy().copy()
        if not np.isfinite(buffer).all():
            raise ValueError(f"buffer {entry['buffer']} holds NaN/inf")
        detector = None
        if self._template is not None:
            arrays = {name: tensors[key].numpy() for name, key in entry["threshold_arrays"].items()}
            detector = adaptive_from_state(entry["threshold"], arrays)
            if detector.spec != self._template.spec:
                raise ValueError(f"entity threshold {detector.spec!r} is not the scorer's {self._template.spec!r}")
        alarms = None
        if self.alarms is not None:
            alarms = AlarmFilter.from_state(entry["alarms"])
            rules = {key: getattr(alarms, key) for key in self.alarms}
            if rules != self.alarms:
                raise ValueError(f"entity alarm rules {rules} are not the scorer's {self.alarms}")
        return _Entity(buffer=buffer, rows_seen=rows_seen, detector=detector, alarms=alarms)

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write the state directory `path` (state.json + state.safetensors), atomically: a crash leaves the
        previous state (or nothing), never half of one. Returns the path."""
        config, tensors = self.get_state()
        payload = save_tensors(tensors)
        config["tensors_sha256"] = hashlib.sha256(payload).hexdigest()
        text = json.dumps(config, indent=1)
        with staged_directory(path, overwrite=overwrite, replaces=STATE_OUTPUT) as staging:
            write_bytes_atomic(staging / STATE_TENSORS, payload)
            write_text_atomic(staging / STATE_JSON, text)
        return Path(path)

    @classmethod
    def load(cls, path, model) -> "StreamingScorer":
        """The scorer saved in `path` by `save`, for `model` (the one it was made with; another model's state
        is refused). ModelFileError for a missing, corrupt or foreign state."""
        path = Path(path)
        fix = "the state is corrupt: save it again"
        try:  # a named pipe would be waited on forever
            text = _read_regular(path / STATE_JSON, fix).read_text(encoding="utf-8")
            payload = _read_regular(path / STATE_TENSORS, fix).read_bytes()
        except FileNotFoundError:
            raise ModelFileError(f"{path} is not a streaming state directory (expected {STATE_JSON} and "
                                 f"{STATE_TENSORS}, as written by StreamingScorer.save)") from None
        except (OSError, UnicodeDecodeError) as err:  # a folder, no permission, a symbolic link loop
            raise ModelFileError(f"{path} cannot be read as a streaming state ({err})") from None
        try:
            config = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            raise ModelFileError(f"{path / STATE_JSON} is not valid JSON ({str(err)[:80]}); the state is corrupt") \
                from None
        if isinstance(config, dict) and hashlib.sha256(payload).hexdigest() != config.get("tensors_sha256"):
            raise ModelFileError(f"{path / STATE_TENSORS} does not match {STATE_JSON} (SHA-256 differs): the state "
                                 "is corrupt or mixes two saves; save it again")
        try:
            tensors = load_tensors(payload)
        except (SafetensorError, ValueError, RuntimeError) as err:
            raise ModelFileError(f"{path / STATE_TENSORS} is not a valid safetensors file ({str(err)[:120]})") \
                from None
        return cls.from_state(config, tensors, model, source=str(path))


# -------------------------------------------------------------------------------------- helpers
def model_fingerprint(model) -> str:
    """SHA-256 of what decides a model's scores and thresholds: its weights, error model and calibration
    tensors, architecture, window, features, scaler, error model and threshold."""
    config, tensors = model.get_state()
    digest = hashlib.sha256()
    settings = {key: config.get(key) for key in ("architecture", "n_timesteps", "feature_names", "scaler",
                                                 "error_model", "threshold")}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _check_model(model) -> None:
    if not hasattr(model, "threshold_") or not hasattr(model, "module_"):
        raise DataError("StreamingScorer needs a fitted LSTMAutoencoder; fit or load one first")
    if model.architecture_.vocab_size is not None:
        raise DataError("StreamingScorer scores rows of numeric features; this is a token model (vocab_size set)")
    if (getattr(model, "data_settings_", None) or {}).get("layout") == "sequences":
        raise DataError("this model was trained on independent sequences, not on windows of a series; score "
                        "whole sequences with lstmae.series.score_sequences instead of streaming rows")


def _copy_detector(detector):
    """A fresh copy of a fitted adaptive threshold (cheaper than refitting it on the calibration scores)."""
    config, arrays = detector.get_state()
    return adaptive_from_state(config, {name: np.array(a) for name, a in arrays.items()})


def _entity_key(entity):
    """An entity id as the state stores it: None, a str, an int or a float (numpy scalars as Python ones)."""
    if isinstance(entity, np.generic):
        entity = entity.item()
    if isinstance(entity, bool):  # True == 1 as a dict key, and a saved state refuses it
        raise DataError(f"entity id {entity!r} is a bool; use a string or a number")
    if entity is None or isinstance(entity, (str, int, float)):
        if isinstance(entity, float) and not math.isfinite(entity):
            raise DataError(f"entity id {entity!r} is not a usable id; use a string or a number")
        return entity
    raise DataError(f"entity ids must be strings or numbers (or None for one stream), got {type(entity).__name__} "
                    f"{entity!r}")


def _state_key(value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
        raise ValueError(f"entity id {value!r} is not a string or a number")
    return value
