"""lstmae serve: the real server (uvicorn on 127.0.0.1, a free port) spoken to over HTTP with httpx."""
import contextlib
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from click.testing import CliRunner  # noqa: E402

from lstmae import LSTMAutoencoder  # noqa: E402
from lstmae.cli.main import cli  # noqa: E402
from lstmae.cli.serve import register  # noqa: E402
from lstmae.config import DEFAULT_THRESHOLDS, DEFAULTS  # noqa: E402
from lstmae.serve import create_app  # noqa: E402
from lstmae.series import fit_series, score_frame, score_values  # noqa: E402

WINDOW = 10
FEATURES = ["a", "b"]


def series(n=300, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return (np.sin(t / (4 + np.arange(2))) + 0.05 * rng.normal(size=(n, 2))).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0), series(),
                      window=WINDOW, feature_names=FEATURES)


@contextlib.contextmanager
def running(app):
    """`app` served by a real uvicorn on 127.0.0.1, on a port the OS picked, in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def client(model):
    with running(create_app(model, max_rows=5000, max_entities=1000)) as client:
        yield client


def rows_of(values):
    return [dict(zip(FEATURES, map(float, row))) for row in values]


def test_health_ready_and_model_description(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    info = client.get("/v1/model").json()
    assert info["window"] == WINDOW and info["features"] == FEATURES
    assert info["threshold"]["rule"] == DEFAULT_THRESHOLDS["rows"]  # the model's own rule: the defaults
    assert info["threshold"]["fitted_on"] == DEFAULTS["how"] and info["threshold"]["floors"] == {}
    assert info["smooth"] == 1
    assert info["limits"]["max_rows"] == 5000 and info["limits"]["max_entities"] == 1000


@pytest.mark.parametrize("how", ["mean", "end"])
def test_batch_scoring_equals_score_frame_of_the_same_rows(client, model, how):
    values = series(60, seed=3)
    values[38:42] += 6  # some anomalous rows, so flags and alarms are not all zero
    response = client.post("/v1/score", json={"rows": rows_of(values), "how": how})
    assert response.status_code == 200
    body = response.json()
    expected = score_frame(model, pd.DataFrame(values, columns=FEATURES), how=how)
    got = pd.DataFrame(body["results"])
    assert list(got.columns) == ["score", "is_anomaly", "alarm", "valid"] and len(got) == 60
    np.testing.assert_allclose(got["score"].astype(float), expected["score"], rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(got["is_anomaly"], expected["is_anomaly"])
    np.testing.assert_array_equal(got["alarm"], expected["alarm"])
    np.testing.assert_array_equal(got["valid"], expected["valid"])
    assert body["n_anomalies"] == int(expected["is_anomaly"].sum()) > 0
    if how == "end":  # warm-up rows: null, never zero
        assert got["score"][: WINDOW - 1].isna().all() and not got["valid"][: WINDOW - 1].any()


def test_columns_format_and_entity_column_score_each_entity_apart(client, model):
    values = np.concatenate([series(30, seed=4), series(25, seed=5), series(4, seed=6)])
    machines = ["m1"] * 30 + ["7"] * 25 + [7] * 4  # ids may be strings or integers, and 7 is not "7"
    frame = pd.DataFrame(values, columns=FEATURES)
    frame.insert(0, "machine", machines)
    frame["note"] = "ignored"  # other columns are ignored
    body = {"columns": list(frame.columns), "data": frame.astype(object).values.tolist(), "entity_column": "machine"}
    response = client.post("/v1/score", json=body)
    assert response.status_code == 200
    with pytest.warns(UserWarning, match="7"):
        expected = score_frame(model, frame.drop(columns="note"), entity_column="machine")
    got = pd.DataFrame(response.json()["results"])
    np.testing.assert_allclose(got["score"].astype(float), expected["score"], equal_nan=True)
    assert got["valid"][30:55].any() and not got["valid"][55:].any()  # 7 is shorter than the window, not part of "7"
    assert any("7 (4 rows)" in w and "'7'" not in w for w in response.json()["warnings"])


def test_scoring_rows_that_alarm_throughout_warns_in_the_response(client):
    response = client.post("/v1/score", json={"rows": rows_of(3 * series(60, seed=8) + 2)})
    assert response.status_code == 200
    assert any(w.startswith("alarms cover") and "refit" in w for w in response.json()["warnings"])
    assert not any("--threshold" in w for w in response.json()["warnings"])  # a request cannot choose one
    calm = client.post("/v1/score", json={"rows": rows_of(series(60, seed=8))}).json()
    assert not any("alarms cover" in w for w in calm["warnings"])


def test_rows_that_carry_the_models_time_column_are_read_as_lstmae_score_reads_a_file(model):
    """Sorted by time (answered in the order sent), split at time gaps, a repeated time refused: it scored the
    rows in the order sent, across gaps, and took a repeated row as a new one."""
    import copy

    timed = copy.copy(model)
    timed.data_settings_ = {**model.data_settings_, "time_column": "t"}
    values = series(40, seed=3)
    rows = rows_of(values)
    times = list(range(40))

    def post(client, order, times, **extra):
        return client.post("/v1/score", json={"rows": [{**rows[i], "t": times[i]} for i in order], **extra})

    with running(create_app(timed)) as client:
        in_order = post(client, range(40), times).json()
        want = score_values(timed, values)
        np.testing.assert_allclose([r["score"] for r in in_order["results"]], want["score"], rtol=1e-6)
        assert not in_order["warnings"]
        # sent backwards: scored in time order, each answer at its row's place in the request
        backwards = post(client, range(39, -1, -1), times).json()
        assert [r["score"] for r in backwards["results"]] == [r["score"] for r in in_order["results"]][::-1]
        assert any("not in time order" in w for w in backwards["warnings"])
        # two machines' rows interleaved, each in time order: no warning (it said "not in time order")
        both = client.post("/v1/score", json={"entity_column": "m", "rows": [
            {**rows[i], "t": times[i], "m": m} for i in range(40) for m in ("a", "b")]}).json()
        assert [r["score"] for r in both["results"][::2]] == [r["score"] for r in in_order["results"]]
        assert not any("time order" in w for w in both["warnings"])
        # the same with dates, in the columns format
        dates = [f"2026-01-01T00:{minute:02d}:00" for minute in range(40)]
        columns = client.post("/v1/score", json={"columns": ["t", *FEATURES],
                                                 "data": [[dates[i], *values[i].tolist()] for i in range(40)]}).json()
        assert [r["score"] for r in columns["results"]] == [r["score"] for r in in_order["results"]]
        # a gap: two series, as `lstmae score` splits a file
        gapped = post(client, range(40), times[:20] + [t + 1000 for t in times[20:]]).json()
        want = score_values(timed, values, groups=np.repeat([0, 1], 20))
        np.testing.assert_allclose([r["score"] for r in gapped["results"]], want["score"], rtol=1e-6)
        assert any("time gap" in w for w in gapped["warnings"])
        # a repeated time (a request sent again), a time unlike the rest, a row without one
        repeated = post(client, [*range(20), *range(15, 35)], times)
        assert repeated.status_code == 422 and repeated.json()["field"] == "rows[20].t"
        assert "rows 15 and 20 have the same time 15" in repeated.json()["error"]
        odd = post(client, range(40), times[:7] + ["noon"] + times[8:])
        assert odd.status_code == 422 and odd.json()["field"] == "rows[7].t" and "not a number" in odd.json()["error"]
        missing = client.post("/v1/score", json={"rows": [{**rows[0], "t": 0}] + rows[1:]})
        assert missing.status_code == 422 and missing.json()["field"] == "rows[1].t"
        # rows without the time column: taken in the order sent, as before
        assert client.post("/v1/score", json={"rows": rows}).json()["results"] == in_order["results"]
    # a model fitted with an entity column reads it from rows that carry it, as lstmae score reads a file: two
    # machines' rows at the same times were refused as repeated times (or, without times, scored as one series)
    timed.data_settings_ = {**timed.data_settings_, "entity_column": "m"}
    with running(create_app(timed)) as client:
        for timed_rows in (True, False):
            body = [{**rows[i], "m": m, **({"t": times[i]} if timed_rows else {})} for m in ("a", "b") for i in range(40)]
            machines = client.post("/v1/score", json={"rows": body})
            assert machines.status_code == 200, machines.json()
            scores = [r["score"] for r in machines.json()["results"]]
            assert scores[:40] == scores[40:] == [r["score"] for r in in_order["results"]]
        partly = client.post("/v1/score", json={"rows": [{**rows[0], "m": "a"}] + rows[1:]})
        assert partly.status_code == 422 and partly.json()["field"] == "rows[1].m"
    timed.data_settings_ = {key: value for key, value in timed.data_settings_.items() if key != "entity_column"}
    timed.data_settings_ = {**timed.data_settings_, "max_gap": "5min"}  # fitted on dates, sent numbers: not a 500
    with running(create_app(timed)) as client:
        refused = post(client, range(40), times)
        assert refused.status_code == 422 and "max_gap for a numeric time column" in refused.json()["error"]


def test_streaming_row_by_row_equals_batch_end_scores(client, model):
    values = series(40, seed=7)
    values[30] += 4
    streamed = []
    for row in rows_of(values):
        response = client.post("/v1/stream/pump-1", json={"rows": [row]})
        assert response.status_code == 200
        streamed += response.json()["results"]
    assert response.json()["rows_seen"] == 40
    got = pd.DataFrame(streamed)
    expected = score_frame(model, pd.DataFrame(values, columns=FEATURES), how="end")
    # a window scored alone differs in the last float32 bits, which the normalized error divides by each
    # feature's scale; scores near 0 (normalized errors are centred) need an absolute tolerance too
    np.testing.assert_allclose(got["score"].astype(float), expected["score"], rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(got["valid"], expected["valid"])
    np.testing.assert_array_equal(got["is_anomaly"], expected["is_anomaly"])
    assert got["is_anomaly"].sum() > 0 and set(got.columns) >= {"alarm", "threshold", "alarm_started"}
    # another entity's rows do not disturb this one: its next rows continue the same series. (A body
    # this large is scored in the threadpool, the one-row bodies above on the event loop.)
    other = client.post("/v1/stream/pump-2", json={"rows": rows_of(series(200, seed=8))}).json()["results"]
    other_expected = score_frame(model, pd.DataFrame(series(200, seed=8), columns=FEATURES), how="end")
    np.testing.assert_allclose(pd.DataFrame(other)["score"].astype(float), other_expected["score"], rtol=1e-5,
                               atol=1e-6, equal_nan=True)
    more = series(45, seed=7)[40:]
    chunk = client.post("/v1/stream/pump-1", json={"columns": FEATURES, "data": more.tolist()}).json()
    full = score_frame(model, pd.DataFrame(np.concatenate([values, more]), columns=FEATURES), how="end")
    np.testing.assert_allclose([r["score"] for r in chunk["results"]], full["score"][40:], rtol=1e-6)
    # forgetting an entity starts it over with a warm-up
    assert client.delete("/v1/stream/pump-1").json()["forgotten"] is True
    again = client.post("/v1/stream/pump-1", json={"rows": rows_of(values[:1])}).json()
    assert again["rows_seen"] == 1 and again["results"][0]["score"] is None and not again["results"][0]["valid"]
    assert client.delete("/v1/stream/never-seen").status_code == 404


def test_metrics_count_requests_rows_and_entities(client):
    client.post("/v1/stream/metered", json={"rows": rows_of(series(3))})
    client.post("/v1/score", json={"rows": [{"a": 1}]})  # a 422
    text = client.get("/metrics").text
    assert 'lstmae_http_requests_total{endpoint="/v1/stream/{entity_id}",method="POST",status="200"}' in text
    assert 'lstmae_http_requests_total{endpoint="/v1/score",method="POST",status="422"}' in text
    assert 'lstmae_http_request_duration_seconds_bucket{endpoint="/v1/score",le="0.01"}' in text
    assert 'lstmae_rows_scored_total{endpoint="stream"}' in text and "lstmae_alarms_raised_total" in text
    entities = [line for line in text.splitlines() if line.startswith("lstmae_stream_entities ")]
    assert entities and float(entities[0].split()[1]) >= 1
    assert "lstmae_ready 1.0" in text


GOOD_ROW = {"a": 0.1, "b": 0.2}
BAD_REQUESTS = [
    # (endpoint, body bytes or JSON, status, field, words in the error)
    ("/v1/score", b"{not json", 400, "body", "not valid JSON"),
    ("/v1/score", b"", 400, "body", "empty"),
    ("/v1/score", b"[" * 100_000, 400, "body", "not valid JSON"),
    ("/v1/score", b"[1, 2]", 422, "body", "array"),
    ("/v1/score", {"rowz": [GOOD_ROW]}, 422, "rowz", "unknown field"),
    ("/v1/score", {"how": "max"}, 422, "rows", "no rows"),
    ("/v1/score", {"rows": []}, 422, "rows", "empty"),
    ("/v1/score", {"rows": {"a": 1}}, 422, "rows", "not a list"),
    ("/v1/score", {"rows": [GOOD_ROW] * 10 + [{"a": 1.0}]}, 422, "rows[10].b", "no feature 'b'"),
    ("/v1/score", {"rows": [GOOD_ROW] * 10 + [{"a": "1.5", "b": 0}]}, 422, "rows[10].a", "not a number"),
    ("/v1/score", {"rows": [GOOD_ROW] * 10 + [{"a": True, "b": 0}]}, 422, "rows[10].a", "not a number"),
    ("/v1/score", {"rows": [GOOD_ROW] * 10 + [{"a": None, "b": 0}]}, 422, "rows[10].a", "null is not a number"),
    ("/v1/score", b'{"rows": [{"a": NaN, "b": 0}]}', 422, "rows[0].a", "NaN"),
    ("/v1/score", b'{"rows": [{"a": 0, "b": -Infinity}]}', 422, "rows[0].b", "not finite"),
    ("/v1/score", {"rows": [{"a": 0, "b": 1e300}]}, 422, "rows[0].b", "out of range"),
    ("/v1/score", {"rows": [{"a": 10 ** 400, "b": 0}]}, 422, "rows[0].a", "1.000e+400 is out of range"),
    # read as inf, it was named "inf is not finite"; past Python's 4,300 digits, the body was "not valid JSON"
    ("/v1/score", b'{"rows": [{"a": 0, "b": 1e400}]}', 422, "rows[0].b", "1e400 is out of range"),
    ("/v1/score", b'{"rows": [{"a": -' + b"7" * 5000 + b', "b": 0}]}', 422, "rows[0].a",
     "-77777777777... is out of range"),
    ("/v1/score", {"rows": [GOOD_ROW] * (WINDOW - 1)}, 422, "rows", "fewer than the model's window of 10"),
    ("/v1/score", {"rows": [GOOD_ROW] * 20, "how": "median"}, 422, "how", "median"),
    # its fix offered a fixed threshold, which a request cannot give
    ("/v1/score", {"rows": [GOOD_ROW] * 20, "how": "point"}, 422, "how", "the model has no held-out how='point'"),
    ("/v1/score", {"rows": [GOOD_ROW] * 20, "entity_column": 3}, 422, "entity_column", "string"),
    ("/v1/score", {"rows": [GOOD_ROW] * 20, "entity_column": "a"}, 422, "entity_column", "feature"),
    ("/v1/score", {"rows": [GOOD_ROW] * 20, "entity_column": "m"}, 422, "rows[0].m", "no entity column 'm'"),
    ("/v1/score", {"rows": [{**GOOD_ROW, "m": [1]}] * 20, "entity_column": "m"}, 422, "rows[0].m", "array"),
    ("/v1/score", {"rows": [{**GOOD_ROW, "m": "x"}] * 5, "entity_column": "m"}, 422, "rows", "window"),
    ("/v1/score", {"rows": [{**GOOD_ROW, "m": 1.5}] * 20, "entity_column": "m"}, 422, "rows[0].m",
     "holds 1.5, not a whole number"),
    # an unpaired surrogate (valid JSON, not encodable text) reached pandas' string grouping: a 500
    ("/v1/score", b'{"rows": [' + b",".join([b'{"a": 0, "b": 0, "m": "\\ud800"}'] * 20) + b'], "entity_column": "m"}',
     422, "rows[0].m", "not valid Unicode"),
    ("/v1/score", {"columns": ["a"], "data": [[1]]}, 422, "columns", "no feature 'b'"),
    ("/v1/score", {"columns": ["a", "b", "a"], "data": [[1, 2, 3]]}, 422, "columns", "named twice"),
    ("/v1/score", {"columns": ["a", "b"], "data": [[1, 2], [3]]}, 422, "data[1]", "expected 2"),
    ("/v1/score", {"columns": ["a", "b"], "data": [[1, 2]], "rows": [GOOD_ROW]}, 422, "rows", "both"),
    ("/v1/score", {"rows": [GOOD_ROW] * 5001}, 413, "rows", "limit of 5000"),
    ("/v1/stream/e1", {"rows": [{"a": 1.0}]}, 422, "rows[0].b", "no feature 'b'"),
    ("/v1/stream/e1", {"rows": [GOOD_ROW], "how": "max"}, 422, "how", "unknown field"),
    ("/v1/stream/e1", {"rows": [{"a": 3e38, "b": 0}]}, 422, "rows[0].a", "too large for the model's scaling"),
    # batch scoring named this cell "row 6" (counted from 1) in the field "rows", unlike every other error
    ("/v1/score", {"rows": [GOOD_ROW] * 10 + [{"a": 0, "b": 3.3e38}]}, 422, "rows[10].b",
     "row 10, feature 'b': 3.3e+38 is too large for the model's scaling"),
    ("/v1/score", {"columns": ["a", "b"], "data": [[0, 0]] * 3 + [[-3.3e38, 0]] * 9}, 422, "data[3].a",
     "row 3, feature 'a'"),
    ("/v1/stream/" + "x" * 201, {"rows": [GOOD_ROW]}, 422, "entity_id", "201 characters"),
    ("/v1/stream/a%01b", {"rows": [GOOD_ROW]}, 422, "entity_id", "holds control characters"),
    ("/v1/stream/", {"rows": [GOOD_ROW]}, 404, "path", "Not Found"),
    ("/v1/nothing", {"rows": [GOOD_ROW]}, 404, "path", "Not Found"),
]


@pytest.mark.parametrize("endpoint, body, status, field, words", BAD_REQUESTS,
                         ids=[f"{i}-{case[3]}" for i, case in enumerate(BAD_REQUESTS)])
def test_a_bad_request_gets_a_4xx_json_naming_the_field_and_the_server_goes_on(client, endpoint, body, status,
                                                                               field, words):
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = client.post(endpoint, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"error", "field", "fix"} and error["field"] == field and error["fix"]
    assert words in error["error"], error
    assert "value:" not in error["fix"] and "to fit" not in error["fix"], error
    assert client.get("/healthz").status_code == 200
    assert client.post("/v1/score", json={"rows": [GOOD_ROW] * WINDOW}).status_code == 200


def test_a_failed_stream_update_takes_nothing(client, model):
    values = series(12, seed=9)
    client.post("/v1/stream/atomic", json={"rows": rows_of(values[:5])})
    bad = rows_of(values[5:8]) + [{"a": float("nan"), "b": 0}]
    assert client.post("/v1/stream/atomic", content=_json_with_nan({"rows": bad})).status_code == 422
    done = client.post("/v1/stream/atomic", json={"rows": rows_of(values[5:])}).json()
    assert done["rows_seen"] == 12
    expected = score_frame(model, pd.DataFrame(values, columns=FEATURES), how="end")
    np.testing.assert_allclose([r["score"] for r in done["results"]][-3:], expected["score"][-3:], rtol=1e-6)


def test_first_row_makes_a_retried_stream_request_safe(client, model):
    # a client that retried a request whose answer was lost had its rows scored twice, shifting every later window
    values = series(30, seed=11)
    first = client.post("/v1/stream/retry", json={"rows": rows_of(values[:12]), "first_row": 0}).json()
    assert first["rows_seen"] == 12
    again = client.post("/v1/stream/retry", json={"rows": rows_of(values[:12]), "first_row": 0})
    assert again.status_code == 409 and again.json()["rows_seen"] == 12 and again.json()["field"] == "first_row"
    assert again.json()["error"] == ("entity 'retry' has seen 12 rows and this batch starts at row 0: its rows 0-11 "
                                     "were scored already (a batch sent again?)")
    assert again.json()["fix"] == "send the entity's rows from row 12 on, with first_row 12"
    gap = client.post("/v1/stream/retry", json={"rows": rows_of(values[20:]), "first_row": 20})
    assert gap.status_code == 409 and "rows 12-19 never came" in gap.json()["error"]
    for bad in (-1, 1.5, True, "12"):
        refused = client.post("/v1/stream/retry", json={"rows": rows_of(values[12:]), "first_row": bad})
        assert refused.status_code == 422 and refused.json()["field"] == "first_row", bad
    rest = client.post("/v1/stream/retry", json={"rows": rows_of(values[12:]), "first_row": 12}).json()
    assert rest["rows_seen"] == 30  # the refused requests took nothing: the scores are the series' own
    expected = score_frame(model, pd.DataFrame(values, columns=FEATURES), how="end")
    np.testing.assert_allclose([r["score"] for r in rest["results"]], expected["score"][12:], rtol=1e-5, atol=1e-6)
    # an id holding "; " stays whole in the error, and the fix is the fix
    odd = client.post("/v1/stream/x%3B%20y", json={"rows": rows_of(values[:3]), "first_row": 2}).json()
    assert odd["error"].startswith("entity 'x; y' has seen 0 rows") and odd["fix"].startswith("send the entity's rows")
    # a new entity starts at row 0
    assert client.post("/v1/stream/fresh", json={"rows": rows_of(values[:1]), "first_row": 3}).status_code == 409
    assert client.post("/v1/stream/fresh", json={"rows": rows_of(values[:1]), "first_row": 0}).status_code == 200


def _json_with_nan(payload) -> bytes:
    import json

    return json.dumps(payload).encode()  # Python writes NaN, which strict JSON has not


def test_wrong_method_and_oversized_body(model):
    with running(create_app(model, max_rows=50, max_entities=2, max_body_bytes=2000)) as client:
        assert client.get("/v1/score").status_code == 405 and client.get("/v1/score").json()["field"] == "method"
        big = client.post("/v1/score", content=b'{"rows": [' + b" " * 3000 + b"]}")
        assert big.status_code == 413 and big.json()["field"] == "body"
        # entities past the limit: 429 naming the fix; a known entity still streams
        for entity in ("e1", "e2"):
            assert client.post(f"/v1/stream/{entity}", json={"rows": [GOOD_ROW]}).status_code == 200
        refused = client.post("/v1/stream/e3", json={"rows": [GOOD_ROW]})
        assert refused.status_code == 429 and refused.json()["field"] == "entity_id"
        assert "DELETE" in refused.json()["fix"]
        assert client.post("/v1/stream/e1", json={"rows": [GOOD_ROW]}).status_code == 200
        client.delete("/v1/stream/e2")
        assert client.post("/v1/stream/e3", json={"rows": [GOOD_ROW]}).status_code == 200


def test_streaming_off_answers_409(model):
    with running(create_app(model, streaming=False)) as client:
        response = client.post("/v1/stream/e1", json={"rows": [GOOD_ROW]})
        assert response.status_code == 409 and "--workers 1" in response.json()["fix"]
        assert client.get("/v1/model").json()["streaming"] is False


def test_a_request_without_how_is_scored_with_the_models_own_mapping_as_lstmae_score_does():
    """A how="max" model was scored with how="mean" (its threshold refitted), unlike `lstmae score`'s table."""
    max_model = fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0), series(),
                           window=WINDOW, feature_names=FEATURES, how="max")
    values = series(40, seed=3)
    with running(create_app(max_model)) as client:
        assert client.get("/v1/model").json()["default_how"] == "max"
        answer = client.post("/v1/score", json={"rows": rows_of(values)}).json()
    assert answer["how"] == "max"
    np.testing.assert_allclose([r["score"] for r in answer["results"]],
                               score_values(max_model, values, how="max")["score"], rtol=1e-6)


def test_a_model_without_held_out_window_scores_serves_scores_and_says_why_it_cannot_stream(model):
    """Such a model (saved before they were kept) loads and scores; the server failed to start with a traceback."""
    import copy

    old = copy.copy(model)
    old.calibration_scores_ = {}
    with running(create_app(old)) as client:
        assert client.post("/v1/score", json={"rows": rows_of(series(40, seed=3))}).status_code == 200
        response = client.post("/v1/stream/e1", json={"rows": [GOOD_ROW]})
        assert response.status_code == 409 and "no held-out how='end' scores" in response.json()["error"]
        assert "/v1/score" in response.json()["fix"] and client.get("/v1/model").json()["streaming"] is False


def test_concurrent_clients_get_their_own_answers(client, model):
    values = series(30, seed=11)
    expected = score_frame(model, pd.DataFrame(values, columns=FEATURES))["score"].to_numpy()
    results = {}

    def call(i):
        with httpx.Client(base_url=client.base_url, timeout=30) as own:
            results[i] = own.post("/v1/score", json={"rows": rows_of(values)}).json()["results"]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(6):
        np.testing.assert_allclose([r["score"] for r in results[i]], expected, rtol=1e-12)


def test_cli_refuses_a_bad_model_dir_with_one_line_before_serving(tmp_path):
    register(cli)
    register(cli)  # idempotent
    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("Error:")
    help_text = CliRunner().invoke(cli, ["serve", "--help"]).output
    assert "curl" in help_text and "127.0.0.1" in help_text


def test_cli_refuses_a_taken_port_with_one_line(model, tmp_path):
    model.save(tmp_path / "model")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", str(tmp_path / "model"), "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "choose another --port" in result.output


def test_cli_refuses_an_address_not_of_this_machine_naming_host_not_port(model, tmp_path):
    model.save(tmp_path / "model")
    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "model"), "--host", "999.1.1.1"])
    assert result.exit_code == 2, result.output
    assert "cannot listen on 999.1.1.1" in result.output and "check --host" in result.output
    assert "--port" not in result.output


def test_cli_serves_a_saved_model(model, tmp_path):
    model.save(tmp_path / "model")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = ("import sys; from lstmae.cli.main import cli; from lstmae.cli.serve import register; register(cli); "
            "cli(sys.argv[1:], prog_name='lstmae')")
    process = subprocess.Popen([sys.executable, "-c", code, "serve", str(tmp_path / "model"), "--port", str(port),
                                "--no-access-log"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, ready = time.monotonic() + 60, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, process.stderr.read() if process.poll() else ""
        response = httpx.post(f"http://127.0.0.1:{port}/v1/score", json={"rows": rows_of(series(12))})
        assert response.status_code == 200 and len(response.json()["results"]) == 12
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert f"serving {tmp_path / 'model'} on http://127.0.0.1:{port}" in stderr


def _start_cli_server(model_dir, port, *options):
    code = ("import sys; from lstmae.cli.main import cli; from lstmae.cli.serve import register; register(cli); "
            "cli(sys.argv[1:], prog_name='lstmae')")
    process = subprocess.Popen([sys.executable, "-c", code, "serve", str(model_dir), "--port", str(port),
                                "--no-access-log", *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    _wait_ready(process, port)
    return process


def _wait_ready(process, port, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(process.stderr.read() if process.poll() is not None else "the server did not start")


def _workers(pid):
    """The worker processes uvicorn spawned under `pid` (not multiprocessing's resource tracker)."""
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        children = [int(child) for child in listing.read().split()]
    workers = []
    for child in children:
        with contextlib.suppress(OSError), open(f"/proc/{child}/cmdline", "rb") as cmdline:
            if b"spawn_main" in cmdline.read():
                workers.append(child)
    return workers


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
def test_workers_serve_the_model_checked_at_start_after_its_folder_is_replaced(model, tmp_path):
    """uvicorn restarts a worker that dies; the new one must not load whatever MODEL_DIR holds by then."""
    import os
    import shutil
    import signal

    model.save(tmp_path / "model")
    other = fit_series(LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=1), series(seed=1),
                       window=WINDOW, feature_names=FEATURES)
    assert other.threshold_ != model.threshold_
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = _start_cli_server(tmp_path / "model", port, "--workers", "2")
    try:
        threshold = httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["threshold"]["value"]
        shutil.rmtree(tmp_path / "model")
        other.save(tmp_path / "model")
        workers = _workers(process.pid)
        assert len(workers) == 2
        for worker in workers:  # both: whichever answers below is a restarted one
            os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while set(workers) & set(_workers(process.pid)) or len(_workers(process.pid)) < 2:
            assert time.monotonic() < deadline, "the killed workers were not replaced"
            time.sleep(0.5)
        _wait_ready(process, port)
        answers = {httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["threshold"]["value"] for _ in range(5)}
        assert answers == {threshold}  # not the other model's
        assert process.poll() is None
    finally:
        process.terminate()
        process.communicate(timeout=60)


def test_port_0_serves_on_the_free_port_the_banner_names(model, tmp_path):
    import re
    import select

    model.save(tmp_path / "model")
    code = ("import sys; from lstmae.cli.main import cli; from lstmae.cli.serve import register; register(cli); "
            "cli(sys.argv[1:], prog_name='lstmae')")
    process = subprocess.Popen([sys.executable, "-c", code, "serve", str(tmp_path / "model"), "--port", "0",
                                "--no-access-log"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, banner = time.monotonic() + 120, ""
        while "serving" not in banner and time.monotonic() < deadline and process.poll() is None:
            if select.select([process.stderr], [], [], 1)[0]:
                banner = process.stderr.readline()
        port = int(re.search(r"on http://127\.0\.0\.1:(\d+) ", banner).group(1))  # it said ":0"
        assert port > 0
        _wait_ready(process, port)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["window"] == WINDOW
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_a_row_key_named_like_no_entity_column_is_ignored(client):
    # a model without an entity column looked up the column "" when a row carried that key
    rows = [{**row, "": 1} for row in rows_of(series(20, seed=2))]
    response = client.post("/v1/score", json={"rows": rows})
    assert response.status_code == 200 and response.json()["n_rows"] == 20
