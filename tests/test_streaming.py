"""StreamingScorer: row by row, in chunks, across a save/restore and over many entities it gives the
scores, flags and (causal) alarms of batch scoring with how="end"; warm-up rows are never scored; every
error path is one clear DataError / ModelFileError."""
import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from lstmae import LSTMAutoencoder, load
from lstmae.exceptions import DataError, ModelFileError, StreamPositionError
from lstmae.scoring import alarms_from_flags
from lstmae.series import fit_series, score_values, threshold_for
from lstmae.streaming import COLUMNS, STATE_JSON, STATE_TENSORS, StreamingScorer

WINDOW = 8
FEATURES = ["a", "b", "c"]
DSPOT = "dspot:1e-2,depth=10"  # DSPOT needs depth + 110 calibration scores: the fixture holds out ~570
FLOORED = "telemanom:1,mad=4,window=100,every=5"  # above Telemanom's own threshold on 102 of the 400 rows below
ALARMS = {"min_length": 2, "merge_gap": 3, "cooldown": 5}
RTOL = 1e-5  # a window's score may differ in the last bits with the batch it is computed in


def make_series(n=500, seed=1, anomalies=None):
    """(n, 3) float32: phase-shifted sines with noise, plus three bursts of anomalous rows."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    values = np.sin(np.array([0.3, 0.5, 0.7]) * t + rng.uniform(0, 6, 3)) + 0.05 * rng.normal(size=(n, 3))
    if anomalies if anomalies is not None else n >= 60:
        for start in (n // 5, n // 2, 4 * n // 5):
            values[start : start + 6] += rng.normal(0, 2.0, size=(6, 3))
    return values.astype(np.float32)


@pytest.fixture(scope="module")
def model():
    """A small series model (threshold fitted on how="max" row scores, so how="end" refits it; mse, whose
    squares overflow, and sigma:3, which flags the test bursts)."""
    ae = LSTMAutoencoder(encoder=(8, 4), epochs=2, batch_size=64, validation_fraction=0.5, error_model="mse",
                         threshold="sigma:3", random_state=0, progress=False)
    return fit_series(ae, make_series(1150, seed=0, anomalies=False), window=WINDOW, feature_names=FEATURES,
                      how="max")


@pytest.fixture(scope="module")
def other_model(model):
    """The same model with one weight changed a little."""
    config, tensors = model.get_state()
    name = next(name for name in tensors if "weight" in name)
    tensors[name] = tensors[name] + 0.01
    return LSTMAutoencoder.from_state(config, tensors)


def feed(scorer, values, sizes, entity=None):
    """Feed `values` in chunks of the given sizes (cycled); one table of the results."""
    parts, start, i = [], 0, 0
    while start < len(values):
        size = sizes[i % len(sizes)]
        parts.append(scorer.update(values[start : start + size], entity=entity))
        start, i = start + size, i + 1
    return pd.concat(parts)


def check_same_as_batch(result, batch, *, threshold_column=None):
    """The streamed table equals batch scoring (how='end') with alarms taken causally."""
    np.testing.assert_allclose(result["score"].to_numpy(), batch["score"].to_numpy(), rtol=RTOL, equal_nan=True)
    np.testing.assert_array_equal(result["valid"].to_numpy(), batch["valid"].to_numpy())
    np.testing.assert_array_equal(result["is_anomaly"].to_numpy(), batch["is_anomaly"].to_numpy())
    expected_alarm = alarms_from_flags(batch["is_anomaly"].to_numpy(), causal=True, **ALARMS)
    np.testing.assert_array_equal(result["alarm"].to_numpy(), expected_alarm)
    started = (expected_alarm == 1) & (np.concatenate([[0], expected_alarm[:-1]]) == 0)
    np.testing.assert_array_equal(result["alarm_started"].to_numpy(), started)
    if threshold_column is not None:
        np.testing.assert_allclose(result["threshold"].to_numpy(), threshold_column, rtol=RTOL)


@pytest.mark.parametrize("threshold", [None, "quantile:0.95"])
def test_row_by_row_equals_batch_static(model, threshold):
    values = make_series(300)
    batch = score_values(model, values, how="end", threshold=threshold, alarms=ALARMS)
    assert batch["is_anomaly"].sum() > 3 and batch["alarm"].sum() > 0  # the comparison means something
    result = feed(StreamingScorer(model, threshold=threshold, alarms=ALARMS), values, [1])
    expected = threshold_for(model, threshold or model.threshold_rule_, how="end")
    assert model.threshold_how_ == "max" and not np.isclose(expected, model.threshold_)  # refitted for "end"
    check_same_as_batch(result, batch, threshold_column=np.full(len(values), expected))
    assert list(result.columns) == ["score", "is_anomaly", "alarm", "valid", "threshold", "alarm_started"]
    assert result["alarm_started"].sum() >= 1


def test_model_threshold_used_as_is_when_fitted_on_window_scores(model):
    """A model fitted on windows (threshold_how_ 'window') keeps its own threshold_ for end-row scores."""
    windowed = LSTMAutoencoder.from_state(*model.get_state())
    windowed.recalibrate(np.lib.stride_tricks.sliding_window_view(make_series(200), WINDOW, axis=0).transpose(0, 2, 1))
    assert windowed.threshold_how_ == "window"
    result = StreamingScorer(windowed).update(make_series(20))
    assert (result["threshold"] == windowed.threshold_).all()


@pytest.mark.parametrize("seed, rule", [(0, DSPOT), (1, DSPOT), (0, FLOORED)])
def test_random_chunks_equal_batch_adaptive(model, seed, rule):
    values = make_series(400, seed=seed + 5)
    batch = score_values(model, values, how="end", threshold=rule, alarms=ALARMS)
    assert batch["is_anomaly"].sum() > 3
    sizes = list(np.random.default_rng(seed).integers(1, 40, size=50))
    result = feed(StreamingScorer(model, threshold=rule, alarms=ALARMS), values, sizes)
    check_same_as_batch(result, batch, threshold_column=batch["threshold"].to_numpy())
    assert result["threshold"].nunique() > 10  # it moved with the stream


def test_warmup_rows_are_reported_not_scored(model):
    scorer = StreamingScorer(model)
    first = feed(scorer, make_series(WINDOW + 3), [2, 1, 4, 6])
    warm = first.iloc[: WINDOW - 1]
    assert not warm["valid"].any() and warm["score"].isna().all() and (warm["is_anomaly"] == 0).all()
    assert first.iloc[WINDOW - 1 :]["valid"].all() and (first.iloc[WINDOW - 1 :]["score"] > 0).all()
    assert scorer.warmup_rows == WINDOW - 1 and scorer.rows_seen() == WINDOW + 3


def test_index_is_kept(model):
    values = make_series(12)
    frame = pd.DataFrame(values, columns=FEATURES, index=pd.date_range("2024-01-01", periods=12, freq="min"))
    frame["extra"] = "ignored"
    scorer = StreamingScorer(model)
    assert scorer.update(frame[["c", "b", "a", "extra"]].iloc[:5]).index.equals(frame.index[:5])  # by name
    assert scorer.update(frame.iloc[5]).index.equals(frame.index[5:6])  # a Series: one row
    assert list(scorer.update(values[6:9]).index) == [6, 7, 8]  # an array: the entity's row numbers
    assert scorer.update(values[9]).index[0] == 9


def test_save_restore_midway_gives_identical_results(model, tmp_path):
    values = make_series(170, seed=2)
    sizes = [3, 1, 17, 5]
    for threshold in (None, DSPOT):  # the floor's own save/restore: test_scoring_adaptive
        straight = feed(StreamingScorer(model, threshold=threshold, alarms=ALARMS), values, sizes)
        scorer = StreamingScorer(model, threshold=threshold, alarms=ALARMS)
        first = feed(scorer, values[:104], sizes)  # 104 = 4 laps of the sizes: the same chunks follow
        for cut in (1, 2):  # restored twice, the second time over the first save
            scorer.save(tmp_path / str(threshold), overwrite=cut == 2)
            scorer = StreamingScorer.load(tmp_path / str(threshold), model)
        rest = feed(scorer, values[104:], sizes)
        assert list(rest.index[:2]) == [104, 105]  # an array's index counts the entity's rows
        pd.testing.assert_frame_equal(pd.concat([first, rest]), straight)
    state = json.loads((tmp_path / DSPOT / STATE_JSON).read_text())
    assert state["entities"][0]["rows_seen"] == 104 and "threshold" in state["entities"][0]


def test_update_many_equals_each_entity_alone(model):
    rng = np.random.default_rng(4)
    series = {name: make_series(80, seed=10 + i) for i, name in enumerate(["m1", "m2", 7])}
    # Interleave the rows of three entities at random, each entity's rows in order.
    order = rng.permutation(np.repeat(np.arange(3), 80))
    names = np.array(list(series), dtype=object)[order]
    taken = {name: 0 for name in series}
    rows = []
    for name in names:
        rows.append(series[name][taken[name]])
        taken[name] += 1
    frame = pd.DataFrame(np.array(rows), columns=FEATURES)
    frame.insert(0, "machine", names)
    frame.index = frame.index + 1000

    scorer = StreamingScorer(model, threshold=DSPOT, alarms=ALARMS)
    parts = [scorer.update_many(frame.iloc[start : start + 40], "machine") for start in range(0, 240, 40)]
    together = pd.concat(parts)
    assert together.index.equals(frame.index) and (together["machine"].to_numpy() == names).all()
    assert set(scorer.entities) == {"m1", "m2", 7}
    batch = score_values(model, frame[FEATURES].to_numpy(), how="end", groups=names, threshold=DSPOT,
                         alarms=ALARMS)
    assert batch["is_anomaly"].sum() > 0
    np.testing.assert_allclose(together["score"], batch["score"], rtol=RTOL, equal_nan=True)
    np.testing.assert_array_equal(together["is_anomaly"], batch["is_anomaly"])
    for name, values in series.items():
        alone = feed(StreamingScorer(model, threshold=DSPOT, alarms=ALARMS), values, [1, 15], entity=name)
        mine = together[together["machine"] == name].drop(columns="machine").reset_index(drop=True)
        np.testing.assert_allclose(mine["score"], alone["score"].to_numpy(), rtol=RTOL, equal_nan=True)
        for column in ("is_anomaly", "alarm", "valid", "alarm_started"):
            np.testing.assert_array_equal(mine[column], alone[column].to_numpy())
        np.testing.assert_allclose(mine["threshold"], alone["threshold"].to_numpy(), rtol=RTOL)
        assert scorer.rows_seen(name) == 80


def test_update_many_one_forward_pass_per_call(model, monkeypatch):
    scorer = StreamingScorer(model)
    warm = pd.DataFrame(np.tile(make_series(WINDOW), (5, 1)), columns=FEATURES)
    warm.insert(0, "id", np.repeat(np.arange(5), WINDOW))
    scorer.update_many(warm, "id")
    calls = []
    original = model.anomaly_score
    monkeypatch.setattr(model, "anomaly_score", lambda X: calls.append(len(X)) or original(X))
    tick = pd.DataFrame(make_series(5), columns=FEATURES).assign(id=np.arange(5))
    result = scorer.update_many(tick, "id")
    assert calls == [5] and result["valid"].all()


def test_overflowing_row_scores_inf_and_the_stream_goes_on(model):
    values = make_series(40)
    values[20, 1] = 3e19  # finite, but its squared error overflows
    for threshold in (None, DSPOT):
        scorer = StreamingScorer(model, threshold=threshold)
        result = feed(scorer, values, [1])
        hit = np.isinf(result["score"].to_numpy())
        assert hit[20] and hit[20 : 20 + WINDOW].all() and not hit[:20].any() and not hit[20 + WINDOW :].any()
        assert (result["is_anomaly"].to_numpy()[hit] == 1).all()
        assert np.isfinite(result["threshold"]).all() and result["score"].iloc[-1] < 1e6


def test_no_rows_take_nothing(model):
    scorer = StreamingScorer(model)
    empty = scorer.update(pd.DataFrame(columns=FEATURES, dtype=np.float32), entity="a")
    assert len(empty) == 0 and list(empty.columns)[0] == "score" and scorer.entities == []
    scorer.get_state()


def test_forget_starts_the_entity_over(model):
    scorer = StreamingScorer(model)
    values = make_series(12)
    first = scorer.update(values, entity="a")
    scorer.update(values[:3], entity="b")
    assert scorer.forget("a") == 12 and scorer.forget("a") == 0 and scorer.entities == ["b"]
    again = scorer.update(values, entity="a")  # a new warm-up, the same scores
    pd.testing.assert_frame_equal(again, first)


def test_first_row_refuses_a_batch_sent_again_or_a_gap_and_takes_nothing(model):
    scorer = StreamingScorer(model)
    values = make_series(30)
    first = scorer.update(values[:12], entity="m", first_row=0)
    with pytest.raises(StreamPositionError, match=r"entity 'm' has seen 12 rows and this batch starts at row 0: its "
                                                  r"rows 0-11 were scored already .*with first_row 12$") as again:
        scorer.update(values[:12], entity="m", first_row=0)
    assert again.value.rows_seen == 12
    with pytest.raises(StreamPositionError, match="rows 12-19 never came") as gap:
        scorer.update(values[20:], entity="m", first_row=20)
    assert gap.value.rows_seen == 12 and scorer.n_entities == 1
    for bad in (-1, 1.5, True, "12"):
        with pytest.raises(DataError, match="first_row must be a whole number >= 0"):
            scorer.update(values[12:], entity="m", first_row=bad)
    with pytest.raises(StreamPositionError, match="entity 'new' has seen 0 rows"):  # a new entity starts at row 0
        scorer.update(values[:1], entity="new", first_row=3)
    with pytest.raises(StreamPositionError, match="row 2 was scored already"):  # an empty batch: no range "2-1"
        scorer.update(values[:0], entity="m", first_row=2)
    assert scorer.n_entities == 1 and scorer.rows_seen("m") == 12  # the refused batches took nothing
    rest = scorer.update(values[12:], entity="m", first_row=np.int64(12))
    whole = StreamingScorer(model).update(values)
    pd.testing.assert_frame_equal(pd.concat([first, rest]), whole)


def test_alarms_none_leaves_out_alarm_columns(model):
    result = StreamingScorer(model, alarms=None).update(make_series(10))
    assert list(result.columns) == ["score", "is_anomaly", "valid", "threshold"]


def test_each_result_has_its_own_columns(model):
    """Renaming one result's columns (or their Index's name) leaves the next result's as they are."""
    scorer = StreamingScorer(model)
    values = make_series(WINDOW + 2)
    first = scorer.update(values[:WINDOW])
    assert list(first.columns) == list(COLUMNS) and first.dtypes["is_anomaly"] == np.int8
    first.columns.name = "renamed"
    first.columns = [name.upper() for name in first.columns]
    second = scorer.update(values[WINDOW:])
    assert list(second.columns) == list(COLUMNS) and second.columns.name is None


def test_state_round_trip_in_memory(model):
    scorer = StreamingScorer(model, threshold=DSPOT)
    scorer.update(make_series(30), entity="a")
    scorer.update(make_series(3), entity=np.int64(4))
    config, tensors = scorer.get_state()
    json.dumps(config)  # JSON-able
    assert tensors["entity0.buffer"].shape == (WINDOW - 1, 3) and tensors["entity1.buffer"].shape == (3, 3)
    restored = StreamingScorer.from_state(config, tensors, model)
    assert restored.entities == ["a", 4] and restored.rows_seen(4) == 3
    more = make_series(12, seed=9)
    pd.testing.assert_frame_equal(restored.update(more, entity="a"), scorer.update(more, entity="a"))


# ------------------------------------------------------------------------------------- errors
def test_wrong_features_are_refused(model):
    scorer = StreamingScorer(model)
    with pytest.raises(DataError, match="missing 'c'"):
        scorer.update(pd.DataFrame(make_series(3)[:, :2], columns=["a", "b"]))
    with pytest.raises(DataError, match=r"expected rows \(n, 3\)"):
        scorer.update(np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"feature column 'b' must hold numbers: row 1 holds 'x'; fix the cell"):
        scorer.update(pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, "x"], "c": [1.0, 2.0]}))
    with pytest.raises(DataError, match="rows hold complex numbers; pass real numbers"):
        scorer.update(np.ones((2, 3), complex))
    with pytest.raises(DataError, match="row 1 holds 2 values; every row needs the model's 3 features"):
        scorer.update([[1.0, 2.0, 3.0], [1.0, 2.0]])  # ragged lists: numpy's own error named no row
    with pytest.raises(DataError, match="row 0 holds a single value; every row needs"):
        scorer.update([1.0, [2.0, 3.0, 4.0]])
    assert scorer.rows_seen(None) == 0
    with pytest.raises(DataError, match="no entity column 'id'"):
        scorer.update_many(pd.DataFrame(make_series(3), columns=FEATURES), "id")
    with pytest.raises(DataError, match="entity ids must be strings or numbers"):
        scorer.update(make_series(2), entity=("a", 1))
    with pytest.raises(DataError, match="entity id True is a bool"):  # True == 1 as a key; a saved state refuses it
        scorer.update(make_series(2), entity=True)
    with pytest.raises(DataError, match="entity id False is a bool"):
        scorer.update_many(pd.DataFrame(make_series(2), columns=FEATURES).assign(id=[False, False]), "id")
    assert scorer.entities == []


def test_nan_row_names_entity_and_row_and_changes_nothing(model):
    scorer = StreamingScorer(model, threshold=DSPOT)
    scorer.update(make_series(10), entity="pump")
    before = scorer.get_state()
    bad = make_series(5)
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match=r"entity 'pump', row 13 \(its row 13\): c=nan"):
        scorer.update(bad, entity="pump")
    frame = pd.DataFrame(make_series(4), columns=FEATURES).assign(id=["pump", "fan", "fan", "fan"])
    frame.loc[2, "b"] = np.inf
    with pytest.raises(DataError, match=r"entity 'fan', row 2 \(its row 1\): b=inf"):
        scorer.update_many(frame, "id")
    huge = make_series(2)
    huge[1, 0] = 3.3e38  # finite in float32, inf once scaled
    with pytest.raises(DataError, match=r"entity 'pump', row 11 \(its row 11\): a=3.3e\+38 is too large"):
        scorer.update(huge, entity="pump")
    beyond = frame.assign(a=[0.0, 0.0, 0.0, 1e39])  # inf once cast to float32: named as given, not as inf
    with pytest.raises(DataError, match=r"entity 'fan', row 3 \(its row 2\): a=1e\+39 is beyond float32"):
        scorer.update_many(beyond.assign(b=0.0), "id")
    huge = huge.astype(np.float64)  # a float64 array, as a user's rows often are
    huge[1, 0] = -1e39
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in cast" came first
        with pytest.raises(DataError, match=r"entity 'pump', row 11 \(its row 11\): a=-1e\+39 is beyond float32"):
            scorer.update(huge, entity="pump")
    after = scorer.get_state()
    assert before[0] == after[0] and scorer.rows_seen("pump") == 10 and "fan" not in scorer.entities
    with pytest.raises(DataError, match="is empty at row 1"):
        scorer.update_many(frame.assign(id=["pump", None, "fan", "fan"]), "id")


def test_bad_threshold_and_alarm_options(model):
    with pytest.raises(DataError, match="threshold must be None"):
        StreamingScorer(model, threshold=[1.0])
    with pytest.raises(DataError, match=r"or a number \(not NaN\); got nan"):  # it flagged nothing, ever
        StreamingScorer(model, threshold=float("nan"))
    with pytest.raises(DataError, match="unknown alarm option 'gap'"):
        StreamingScorer(model, alarms={"gap": 3})
    with pytest.raises(DataError, match="alarms must be a dict"):
        StreamingScorer(model, alarms=[1])
    with pytest.raises(DataError, match="needs labels"):
        StreamingScorer(model, threshold="best-f1")
    with pytest.raises(DataError, match="min_length"):
        StreamingScorer(model, alarms={"min_length": 0})


def test_state_of_another_model_is_refused(model, other_model, tmp_path):
    scorer = StreamingScorer(model)
    scorer.update(make_series(20))
    scorer.save(tmp_path / "state")
    with pytest.raises(ModelFileError, match="saved for another model"):
        StreamingScorer.load(tmp_path / "state", other_model)
    recalibrated = LSTMAutoencoder.from_state(*model.get_state())
    recalibrated.threshold_ = model.threshold_ * 2  # same weights, another threshold: another model
    with pytest.raises(ModelFileError, match="saved for another model"):
        StreamingScorer.load(tmp_path / "state", recalibrated)
    assert StreamingScorer.load(tmp_path / "state", LSTMAutoencoder.from_state(*model.get_state())).rows_seen() == 20


def test_corrupt_state_is_refused(model, tmp_path):
    scorer = StreamingScorer(model, threshold=DSPOT)
    scorer.update(make_series(20), entity="a")
    path = scorer.save(tmp_path / "state")
    good_json = (path / STATE_JSON).read_text()
    good_tensors = (path / STATE_TENSORS).read_bytes()

    with pytest.raises(ModelFileError, match="not a streaming state directory"):
        StreamingScorer.load(tmp_path / "nothing", model)
    (path / STATE_JSON).write_text(good_json[:50])
    with pytest.raises(ModelFileError, match="not valid JSON"):
        StreamingScorer.load(path, model)
    (path / STATE_JSON).unlink()
    os.mkfifo(path / STATE_JSON)  # reading a named pipe waited for a writer forever
    with pytest.raises(ModelFileError, match="state.json is not a regular file; the state is corrupt"):
        StreamingScorer.load(path, model)
    (path / STATE_JSON).unlink()
    (path / STATE_JSON).symlink_to(STATE_JSON)  # a raw OSError
    with pytest.raises(ModelFileError, match="cannot be read as a streaming state .*Too many levels of symbolic"):
        StreamingScorer.load(path, model)
    (path / STATE_JSON).unlink()
    (path / STATE_JSON).write_text(good_json)
    (path / STATE_TENSORS).write_bytes(good_tensors[:-7])
    with pytest.raises(ModelFileError, match="SHA-256 differs"):
        StreamingScorer.load(path, model)
    (path / STATE_TENSORS).write_bytes(good_tensors)
    state = json.loads(good_json)

    def load_with(change):
        edited = json.loads(good_json)
        change(edited)
        (path / STATE_JSON).write_text(json.dumps(edited))
        return StreamingScorer.load(path, model)

    with pytest.raises(ModelFileError, match="not a streaming scorer's state"):
        load_with(lambda s: s.update(kind="model"))
    with pytest.raises(ModelFileError, match="corrupt"):
        load_with(lambda s: s["entities"][0].update(rows_seen=3))  # the buffer holds 7 rows
    with pytest.raises(ModelFileError, match="corrupt"):
        load_with(lambda s: s["entities"][0].pop("alarms"))
    with pytest.raises(ModelFileError, match="corrupt"):
        load_with(lambda s: s["entities"][0]["threshold"].update(z=float("nan")))
    with pytest.raises(ModelFileError, match="corrupt"):
        load_with(lambda s: s["entities"][0].update(buffer="entity9.buffer"))
    with pytest.raises(ModelFileError, match="entity 'a' appears twice"):
        load_with(lambda s: s["entities"].append(dict(s["entities"][0])))
    with pytest.raises(ModelFileError, match="corrupt or incomplete: OverflowError"):
        load_with(lambda s: s["entities"][0]["threshold"].update(n_peaks=10**400))
    # the state's window and feature count were written and never read
    with pytest.raises(ModelFileError, match=f"corrupt or incomplete: ValueError its window is 7, the model's {WINDOW}"):
        load_with(lambda s: s.update(window=7))
    with pytest.raises(ModelFileError, match="corrupt or incomplete: KeyError 'n_features'"):
        load_with(lambda s: s.pop("n_features"))
    # tensors_sha256 matching a different, valid tensor file is still checked tensor by tensor
    assert state["entities"][0]["rows_seen"] == 20
    (path / STATE_JSON).write_text(good_json)
    assert StreamingScorer.load(path, model).rows_seen("a") == 20


def test_save_refuses_to_overwrite_unless_asked(model, tmp_path):
    scorer = StreamingScorer(model)
    scorer.save(tmp_path / "state")
    with pytest.raises(DataError, match="exists"):
        scorer.save(tmp_path / "state")
    scorer.update(make_series(3))
    scorer.save(tmp_path / "state", overwrite=True)
    assert StreamingScorer.load(tmp_path / "state", model).rows_seen() == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]  # no staging left behind


def test_save_replaces_only_an_earlier_state(model, tmp_path):
    scorer = StreamingScorer(model)
    model.save(tmp_path / "model")
    with pytest.raises(DataError, match=r"holds config.json, model.safetensors, not a streaming state \(no "
                                        r"state.json\)"):
        scorer.save(tmp_path / "model", overwrite=True)
    assert load(tmp_path / "model").threshold_ == model.threshold_  # the model is still there


def test_save_refuses_a_file_or_the_current_folder(model, tmp_path, monkeypatch):
    scorer = StreamingScorer(model)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match="afile: is a file, not a folder"):
        scorer.save(tmp_path / "afile", overwrite=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="is the current folder or one above it"):
        scorer.save(".", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing staged, the file kept
    assert (tmp_path / "afile").read_text() == "x"


def test_sequence_models_are_refused(model):
    sequences = LSTMAutoencoder.from_state(*model.get_state())
    sequences.data_settings_ = {"layout": "sequences"}
    with pytest.raises(DataError, match="independent sequences"):
        StreamingScorer(sequences)
