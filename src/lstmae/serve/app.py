"""The HTTP service: one loaded model, batch scoring, per-entity streaming, health and metrics.

Endpoints (JSON in and out; every error is a 4xx JSON ``{"error", "field", "fix"}``):

- ``POST /v1/score``: a table of rows -> one result per row (`lstmae.series.score_frame`):
  ``{"rows": [{"a": 0.1, ...}, ...]}`` or ``{"columns": [...], "data": [[...], ...]}``, optional
  ``"how"`` ("max", "mean", "end") and ``"entity_column"`` (default: the model's, when the rows carry
  it). Results: ``score`` (null for rows no full window covers), ``is_anomaly``, ``alarm``, ``valid``.
- ``POST /v1/stream/{entity_id}``: rows of one entity as they arrive -> causal scores and alarms
  (`lstmae.streaming.StreamingScorer`, one in memory for all entities, at most `max_entities`).
  An optional ``"first_row"`` (the ``rows_seen`` of the entity's previous answer) makes a retried
  request safe: a batch that does not start where the entity stands is refused (409, with the
  entity's ``rows_seen``) instead of being scored twice. ``DELETE /v1/stream/{entity_id}`` forgets
  an entity.
- ``GET /healthz`` (the process answers), ``GET /readyz`` (the model is loaded and warmed up; 503
  otherwise), ``GET /metrics`` (Prometheus text), ``GET /v1/model`` (window, features, threshold).

Nothing a client sends names a file: the model is loaded once, from the path given to
`create_app` by the operator. Parsing and scoring run in the threadpool so the event loop keeps
answering health checks, except streaming bodies of a few rows, which are scored on the loop when
the scorer is free (a hand-off to a thread and back costs more than their one window per row).
One lock serialises the streaming scorer, another the batch scorer (which bounds the memory of
concurrent large batches).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import ALARM_DEFAULTS, HOW_CHOICES
from ..data.io import order_in_time, time_keys
from ..data.validation import is_integer, is_number
from ..exceptions import DataError, StreamPositionError
from .requests import RequestError, carries, check_keys, parse_json, parse_table

MODEL_DIR_ENV = "LSTMAE_SERVE_MODEL_DIR"
LIMITS_ENV = "LSTMAE_SERVE_LIMITS"  # JSON of create_app keyword arguments, set by lstmae serve
THREADS_ENV = "LSTMAE_SERVE_THREADS"  # torch threads per worker, set by lstmae serve
_FLOAT64_MAX = float(np.finfo(np.float64).max)
_ENDPOINTS = ("/v1/score", "/v1/model", "/healthz", "/readyz", "/metrics")
_STREAM_PREFIX = "/v1/stream/"
_MAX_ENTITY_ID = 200
# Streaming bodies up to this size (a few rows) are scored on the event loop when the scorer is free:
# their work (one window per row) is smaller than the cost of handing it to a thread and back.
_INLINE_BYTES = 4096


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (two apps in one process do not clash)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("lstmae_http_requests", "HTTP requests by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("lstmae_http_request_duration_seconds", "Time from request to response",
                                 ["endpoint"], registry=self.registry,
                                 buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.rows = Counter("lstmae_rows_scored", "Rows scored", ["endpoint"], registry=self.registry)
        self.anomalies = Counter("lstmae_anomalous_rows", "Rows scored above the threshold", ["endpoint"],
                                 registry=self.registry)
        self.alarms = Counter("lstmae_alarms_raised", "Alarms raised (the first row of each alarm)", ["endpoint"],
                              registry=self.registry)
        self.entities = Gauge("lstmae_stream_entities", "Entities the streaming scorer holds state for",
                              registry=self.registry)
        self.ready = Gauge("lstmae_ready", "1 when the model is loaded and warmed up", registry=self.registry)

    @staticmethod
    def endpoint_of(path: str) -> str:
        """The route a path belongs to (entity ids are not labels: their number is unbounded)."""
        if path.startswith(_STREAM_PREFIX):
            return _STREAM_PREFIX + "{entity_id}"
        return path if path in _ENDPOINTS else "other"


class _MetricsMiddleware:
    """Counts every HTTP request and times it, whatever it answered (404s and 500s included)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            endpoint = self.metrics.endpoint_of(scope.get("path", ""))
            self.metrics.requests.labels(endpoint, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


class ScoringService:
    """The model and what the endpoints share: the streaming scorer, its entities, locks and metrics.

    model: a fitted LSTMAutoencoder (series layout). max_rows: rows per request. max_entities:
    entities the streaming scorer holds at once. max_body_bytes: request body size (default from
    max_rows). streaming: False answers the /v1/stream endpoints with 409 (several worker processes
    would each hold part of an entity's rows).
    """

    def __init__(self, model, *, max_rows: int = 100_000, max_entities: int = 10_000,
                 max_body_bytes: int | None = None, streaming: bool = True):
        if getattr(model, "data_settings_", {}).get("layout") == "sequences":
            raise DataError("this model scores independent sequences, not a series; lstmae serve scores series "
                            "models (fit with --layout series)")
        self.model = model
        self.features = model._feature_names()
        self.window = int(model.n_timesteps_)
        self.max_rows, self.max_entities = int(max_rows), int(max_entities)
        self.max_body_bytes = int(max_body_bytes or max(1 << 20, self.max_rows * (len(self.features) + 1) * 32))
        # why /v1/stream answers 409 (error, fix), or None
        self.no_stream = None if streaming else (
            "streaming is off: this server runs several worker processes, each of which would hold part of an "
            "entity's rows", "run lstmae serve with --workers 1 for /v1/stream, or use POST /v1/score")
        self._scorer = None
        if streaming:
            from ..streaming import StreamingScorer

            try:  # made now, so that a model that cannot stream says so at start
                self._scorer = StreamingScorer(model)
            except DataError as err:  # e.g. a model saved without its held-out window scores
                self.no_stream = (f"streaming is off: {str(err).partition('; ')[0]}",
                                  "use POST /v1/score, or refit the model for /v1/stream")
        self.metrics = Metrics()
        self.ready = False
        self._stream_lock = threading.Lock()
        self._batch_lock = threading.Lock()

    # ---------------------------------------------------------------- lifecycle
    def warm_up(self) -> None:
        """Score one window of zeros (the first call builds kernels and allocates), then report ready."""
        self.model.anomaly_score(np.zeros((1, self.window, len(self.features)), np.float32))
        self.ready = True
        self.metrics.ready.set(1)

    def describe(self) -> dict:
        model = self.model
        from .. import __version__
        from ..series import scoring_how

        return {
            "lstmae_version": __version__,
            "window": self.window,
            "features": self.features,
            "threshold": {"rule": str(model.threshold_rule_), "value": float(model.threshold_),
                          "fitted_on": model.threshold_how_,
                          "floors": dict(model.threshold_floors_),  # threshold_floor's, by kind
                          "adaptive": bool(getattr(model.threshold_rule_, "adaptive", False))},
            "default_how": scoring_how(model),
            "how_choices": list(HOW_CHOICES),
            "smooth": int(model.smooth),  # rows each score is averaged over (how="end" and streaming: never)
            "alarms": dict(ALARM_DEFAULTS),
            "limits": {"max_rows": self.max_rows, "max_entities": self.max_entities,
                       "max_body_bytes": self.max_body_bytes},
            "streaming": self.no_stream is None,
            "entity_column": model.data_settings_.get("entity_column"),
            "time_column": model.data_settings_.get("time_column"),
        }

    # ---------------------------------------------------------------- batch
    def score(self, body: bytes) -> dict:
        """POST /v1/score for a request body: one result per row (runs in a worker thread)."""
        from ..series import AlarmStormWarning, _same_kind, calibration_for, fitted_how, score_values, scoring_how

        data = parse_json(body)
        check_keys(data, ("rows", "columns", "data", "how", "entity_column"))
        how = data.get("how", scoring_how(self.model))  # as lstmae score: the kind the threshold was fitted on
        if how not in HOW_CHOICES:
            raise RequestError(422, f"'how' is {json.dumps(how)[:40]}", "how",
                               f"use one of {', '.join(map(repr, HOW_CHOICES))} (default {scoring_how(self.model)!r})")
        try:  # the model's own threshold serves its own kind of score; another kind is refitted on held-out scores
            if not _same_kind(how, self.model.threshold_how_):
                calibration_for(self.model, how)
        except DataError as err:  # its fix offers a fixed threshold, which a request cannot give
            raise RequestError(422, str(err).partition("; ")[0], "how", f"send how={fitted_how(self.model)!r}, or "
                               f"refit the model with lstmae fit --how {how}") from None
        entity_column = data.get("entity_column")
        if entity_column is not None and not isinstance(entity_column, str):
            raise RequestError(422, "'entity_column' must be a column name (a string)", "entity_column",
                               "give the name of the column that holds each row's entity id, or leave it out")
        model_entity = self.model.data_settings_.get("entity_column")
        if entity_column is None and model_entity is not None and carries(data, model_entity):
            entity_column = model_entity  # as lstmae score reads a file with it
        time_column = self.model.data_settings_.get("time_column")
        table = parse_table(data, self.features, max_rows=self.max_rows, entity_column=entity_column,
                            time_column=time_column)
        if table.entities is None and len(table.values) < self.window:
            raise RequestError(422, f"{len(table.values)} rows, fewer than the model's window of {self.window}",
                               "rows", f"send at least {self.window} rows, or stream rows as they arrive to "
                                       "/v1/stream/{entity_id}, which keeps the earlier ones")
        with self._batch_lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:  # the model's max_gap may not fit the times sent (a duration for numbers): a DataError too
                order, groups = self._time_order(table, time_column)
                result = score_values(self.model, table.values[order], how=how, groups=groups)
            except DataError as err:
                raise _data_error(err, "rows", table, self.features) from None
        alarm = result["alarm"].to_numpy()
        previous = pd.Series(alarm).groupby(groups if groups is not None else np.zeros(len(alarm)),
                                            sort=False).shift(fill_value=0).to_numpy()
        n_alarms = int(((alarm == 1) & (previous == 0)).sum())
        result = result.iloc[np.argsort(order)].reset_index(drop=True)  # back in the order sent
        n_anomalies = int(result["is_anomaly"].sum())
        self.metrics.rows.labels("score").inc(len(result))
        self.metrics.anomalies.labels("score").inc(n_anomalies)
        self.metrics.alarms.labels("score").inc(n_alarms)
        columns = ["score", "is_anomaly", "alarm", "valid"] + [c for c in ("threshold", "overflow") if c in result]
        # a request cannot choose the threshold: the storm warning's remedy of another one is not for it
        notes = [w.message.refit_only if isinstance(w.message, AlarmStormWarning) else str(w.message) for w in caught]
        return {"how": how, "n_rows": len(result), "n_valid": int(result["valid"].sum()),
                "n_anomalies": n_anomalies, "n_alarms": n_alarms, "warnings": notes,
                "results": records(result, columns)}

    def _time_order(self, table, time_column: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(order (T,): the rows in time order within each entity, groups (T,) in that order: the entities, each
        split at time gaps as `lstmae score` splits a file, or None) for a table whose rows carry the model's time
        column; the rows as sent and their entities otherwise. A repeated time (within an entity) and a time that
        is not a date or number like the rest are refused naming the row."""
        from ..series import data_groups

        n = len(table.values)
        entities = None if table.entities is None else np.asarray(table.entities, dtype=object)
        if table.times is None:
            return np.arange(n), entities
        times = _parse_times(table, time_column)
        codes = np.zeros(n, np.intp) if entities is None else pd.factorize(entities)[0]
        by_entity, order, repeat = order_in_time(time_keys(times), codes)
        if repeat is not None:
            first, second = repeat
            raise RequestError(422, f"rows {first} and {second} have the same time {table.times[second]!r}"
                                    + ("" if entities is None else f" for entity {entities[second]!r}"),
                               f"{table.where(second)}.{time_column}", "send each time once (a request sent "
                                                                       "again repeats its rows)")
        if not np.array_equal(by_entity, order):
            warnings.warn(f"the rows were not in time order (by {time_column!r}): scored in time order, answered "
                          "in the order sent", UserWarning, stacklevel=2)
        sorted_times = times[order]
        groups, _ = data_groups(SimpleNamespace(index=sorted_times, entities=None if entities is None
                                                else entities[order]), self.model.data_settings_.get("max_gap"))
        return order, groups

    # ---------------------------------------------------------------- streaming
    def stream(self, entity_id: str, body: bytes, *, wait: bool = True) -> dict | None:
        """POST /v1/stream/{entity_id} for a request body: the rows through the entity's causal state.
        With wait=False, returns None instead of waiting when another update holds the scorer."""
        self._check_streaming(entity_id)
        data = parse_json(body)
        check_keys(data, ("rows", "columns", "data", "first_row"))
        first_row = data.get("first_row")
        if first_row is not None and not is_integer(first_row, 0):
            raise RequestError(422, f"first_row must be a whole number >= 0, got {json.dumps(first_row)[:40]}",
                               "first_row", "send the rows_seen of the entity's previous answer (0 for its first "
                                            "rows), or leave first_row out")
        table = parse_table(data, self.features, max_rows=self.max_rows)
        if not self._stream_lock.acquire(blocking=wait):
            return None
        try:
            if self._scorer.rows_seen(entity_id) == 0 and self._scorer.n_entities >= self.max_entities:
                raise RequestError(429, f"this server already tracks {self.max_entities} entities, its limit",
                                   "entity_id", "forget entities that are done with DELETE /v1/stream/{entity_id}, "
                                                "or restart the server with a larger --max-entities")
            try:
                result = self._scorer.update(table.values, entity=entity_id, first_row=first_row)
            except StreamPositionError as err:  # a retry scored twice, or rows lost on the way
                what, _, fix = str(err).rpartition("; ")  # the entity's id, in `what`, may hold "; " itself
                raise RequestError(409, what, "first_row", fix, rows_seen=err.rows_seen) from None
            except DataError as err:
                raise _data_error(err, "rows", table, self.features) from None
            self.metrics.entities.set(self._scorer.n_entities)
            rows_seen = self._scorer.rows_seen(entity_id)
        finally:
            self._stream_lock.release()
        n_anomalies = int(np.nansum(result["is_anomaly"].to_numpy()))
        n_alarms = int(np.nansum(result["alarm_started"].to_numpy())) if "alarm_started" in result else 0
        self.metrics.rows.labels("stream").inc(len(result))
        self.metrics.anomalies.labels("stream").inc(n_anomalies)
        self.metrics.alarms.labels("stream").inc(n_alarms)
        columns = [c for c in ("score", "is_anomaly", "alarm", "valid", "threshold", "alarm_started") if c in result]
        return {"entity": entity_id, "rows_seen": rows_seen, "results": records(result, columns)}

    def forget(self, entity_id: str) -> dict:
        """DELETE /v1/stream/{entity_id}: drop the entity's state (404 for an entity never seen)."""
        self._check_streaming(entity_id)
        with self._stream_lock:
            rows = self._scorer.forget(entity_id)
            if not rows:
                raise RequestError(404, f"no streaming state for entity {entity_id!r}", "entity_id",
                                   "check the id; entities appear with their first POST /v1/stream/{entity_id}")
            self.metrics.entities.set(self._scorer.n_entities)
        return {"entity": entity_id, "forgotten": True, "rows_seen": rows}

    def _check_streaming(self, entity_id: str) -> None:
        if self.no_stream is not None:
            raise RequestError(409, self.no_stream[0], "entity_id", self.no_stream[1])
        if len(entity_id) > _MAX_ENTITY_ID:
            raise RequestError(422, f"the entity id is {len(entity_id)} characters long", "entity_id",
                               f"use an id of at most {_MAX_ENTITY_ID} characters")
        if not entity_id.isprintable():
            raise RequestError(422, "the entity id holds control characters", "entity_id",
                               "use an id of printable characters")


def records(frame, columns: list[str]) -> list[dict]:
    """One JSON-able dict per row of `frame`: NaN -> None, inf -> the largest float64 (JSON has no inf;
    the row's ``overflow`` says so), 0/1 flags as ints, booleans as booleans."""
    lists = []
    for name in columns:
        array = frame[name].to_numpy()
        if array.dtype.kind == "f":
            lists.append([None if v != v else (math.copysign(_FLOAT64_MAX, v) if v in (math.inf, -math.inf) else v)
                          for v in array.tolist()])
        elif array.dtype.kind in "iub":
            lists.append(array.tolist())
        else:  # object columns (e.g. nullable flags): plain Python values, missing as None
            lists.append([None if v is None or (isinstance(v, float) and v != v) else
                          (v.item() if isinstance(v, np.generic) else v) for v in array.tolist()])
    return [dict(zip(columns, row)) for row in zip(*lists)]


def _data_error(err: DataError, field: str, table=None, features: list | None = None) -> RequestError:
    """lstmae's one-line DataError ("what; the fix") as a 422. One that blames a cell of `table` (columns
    `features`: a value the model's scaling turns into inf, since NaN and inf were refused when the request was
    read) names that cell, its row counted from 0 as every request error counts it."""
    if err.cell is not None and table is not None:
        row, column = err.cell
        name = features[column]
        return RequestError(422, f"row {row}, feature {name!r}: {float(table.values[row, column]):g} is too large "
                                 "for the model's scaling (inf after it)", f"{table.where(row)}.{name}",
                            "fix the value or leave the row out")
    message = str(err)
    what, _, fix = message.partition("; ")
    return RequestError(422, what, field, fix or "check the rows against GET /v1/model")


def _parse_times(table, time_column: str) -> pd.Index:
    """The table's times as numbers or dates (strings that parse as dates); RequestError naming the first row
    whose time is neither, or not like the rest."""
    raw = table.times
    fix = "give every row's time as a number, or as a date string such as \"2026-01-01T00:00:00\""
    numeric = [is_number(value) and not isinstance(value, bool) for value in raw]
    if all(numeric):
        values = np.asarray(raw, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise RequestError(422, f"row {bad[0]}: time column {time_column!r} holds {raw[bad[0]]}",
                               f"{table.where(int(bad[0]))}.{time_column}", fix)
        return pd.Index(values)
    texts = [isinstance(value, str) for value in raw]
    if all(texts):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(pd.Series(raw), errors="coerce", utc=True)
        if parsed.notna().all():
            return pd.DatetimeIndex(parsed)
        i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
    else:
        kind = numeric if sum(numeric) >= sum(texts) else texts
        i = kind.index(False)
    raise RequestError(422, f"row {i}: time column {time_column!r} holds {json.dumps(raw[i])[:40]}, not a "
                            f"{'date' if all(texts) or sum(texts) > sum(numeric) else 'number'} like the rest",
                       f"{table.where(i)}.{time_column}", fix)


def _json(payload, status: int = 200) -> Response:
    return Response(json.dumps(payload, allow_nan=False, separators=(",", ":")), status_code=status,
                    media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    too_big = RequestError(413, f"the request body is larger than this server's limit of {limit} bytes", "body",
                           "send fewer rows per request")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(model, *, max_rows: int = 100_000, max_entities: int = 10_000, max_body_bytes: int | None = None,
               streaming: bool = True) -> FastAPI:
    """The FastAPI app serving `model` (a fitted LSTMAutoencoder or a model directory, loaded here).

    Limits: `max_rows` rows per request (413 above), `max_entities` streamed entities (429 above),
    `max_body_bytes` per body (413; default from max_rows). `streaming=False` answers /v1/stream
    with 409. Run it with uvicorn (`lstmae serve` does).
    """
    if isinstance(model, (str, os.PathLike)):
        from ..estimator import load

        model = load(Path(model))
    service = ScoringService(model, max_rows=max_rows, max_entities=max_entities, max_body_bytes=max_body_bytes,
                             streaming=streaming)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(service.warm_up)
        yield
        service.ready = False
        service.metrics.ready.set(0)

    app = FastAPI(title="lstmae", version=service.describe()["lstmae_version"], lifespan=lifespan,
                  description="LSTM autoencoder anomaly scoring: batch, per-entity streaming, health, metrics.")
    app.state.service = service

    @app.exception_handler(RequestError)
    async def request_error(request, err: RequestError):
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, err: StarletteHTTPException):
        field = "method" if err.status_code == 405 else "path"
        fix = ("use POST /v1/score, POST or DELETE /v1/stream/{entity_id}, GET /v1/model, /healthz, /readyz, "
               "/metrics")
        return JSONResponse({"error": str(err.detail), "field": field, "fix": fix}, status_code=err.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, err: RequestValidationError):
        first = (err.errors() or [{}])[0]
        field = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "path")) or None
        return JSONResponse({"error": first.get("msg", "invalid request"), "field": field,
                             "fix": "see GET /v1/model and the API docs at /docs"}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request, err: Exception):  # a bug of ours: the client gets JSON, the server goes on
        return JSONResponse({"error": f"internal error ({type(err).__name__})", "field": None,
                             "fix": "this is a server bug; the server keeps running: report it with the request"},
                            status_code=500)

    @app.get("/healthz")
    async def healthz():
        """The process is up and answering."""
        return _json({"status": "ok"})

    @app.get("/readyz")
    async def readyz():
        """The model is loaded and warmed up (503 while starting or shutting down)."""
        if not service.ready:
            return _json({"status": "not ready", "field": None, "error": "the model is not warmed up yet",
                          "fix": "retry in a moment"}, status=503)
        return _json({"status": "ready", "window": service.window, "features": len(service.features)})

    @app.get("/metrics")
    async def metrics():
        """Prometheus text format: requests, latency, rows, anomalies, alarms, streamed entities."""
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model")
    async def model_info():
        """Window, features (in order), threshold rule, alarm rules and this server's limits."""
        return _json(service.describe())

    @app.post("/v1/score")
    async def score(request: Request):
        """Score a table of rows: one result per row (score, is_anomaly, alarm, valid)."""
        body = await _read_body(request, service.max_body_bytes)
        return _json(await run_in_threadpool(service.score, body))

    @app.post("/v1/stream/{entity_id}")
    async def stream(entity_id: str, request: Request):
        """Rows of one entity, in order, as they arrive: causal scores and alarms per row."""
        body = await _read_body(request, service.max_body_bytes)
        if len(body) <= _INLINE_BYTES:  # a few rows: less work than a hand-off to a thread and back
            result = service.stream(entity_id, body, wait=False)
            if result is not None:
                return _json(result)
        return _json(await run_in_threadpool(service.stream, entity_id, body))

    @app.delete("/v1/stream/{entity_id}")
    async def forget(entity_id: str):
        """Forget an entity's streaming state."""
        return _json(await run_in_threadpool(service.forget, entity_id))

    app.add_middleware(_MetricsMiddleware, metrics=service.metrics)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory for several worker processes: the model directory comes from the operator's
    environment (LSTMAE_SERVE_MODEL_DIR, _LIMITS and _THREADS, set by `lstmae serve`); streaming is off."""
    import torch

    torch.set_num_threads(int(os.environ.get(THREADS_ENV, "1")))
    limits = json.loads(os.environ.get(LIMITS_ENV, "{}"))
    return create_app(os.environ[MODEL_DIR_ENV], streaming=False, **limits)
