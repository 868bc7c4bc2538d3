"""Scale-out scoring on Dask (lstmae.distributed): equal to single-process `series.score_frame`, row for row."""
import re
import warnings

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from lstmae import LSTMAutoencoder, load  # noqa: E402
from lstmae.distributed import score_entities, score_entities_pandas  # noqa: E402
from lstmae.exceptions import DataError, ModelFileError  # noqa: E402
from lstmae.series import SkippedGroupWarning, score_frame  # noqa: E402

WINDOW = 10
# Seven entities of different lengths; "short" (4 rows) is shorter than the window: valid=False rows.
LENGTHS = {"m1": 60, "m2": 95, "short": 4, "m4": 33, "m5": 120, "m6": 10, "m7": 47}
FEATURES = ["x", "y", "z"]


def make_frame(seed=0, lengths=LENGTHS):
    """Rows of all entities interleaved (each entity's rows in time order), index not a RangeIndex."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, (entity, n) in enumerate(lengths.items()):
        t = np.arange(n)
        parts.append(pd.DataFrame({"machine": entity, "t": t * 10.0 + k,
                                   "x": np.sin(0.3 * t + k) + 0.05 * rng.normal(size=n),
                                   "y": np.cos(0.2 * t) * (1 + k / 10), "z": rng.normal(size=n)}))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.sort_values("t", kind="stable")  # interleaves the entities, keeps each one's order
    frame.index = pd.RangeIndex(len(frame)) * 3 + 1000
    return frame[["t", "z", "machine", "x", "y"]]  # features not first, not in the trained order


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    rng = np.random.default_rng(1)
    t = np.arange(1300)  # ~130 held-out windows: enough calibration scores for an adaptive rule
    values = np.stack([np.sin(0.3 * t), np.cos(0.2 * t), rng.normal(size=len(t))], axis=1).astype(np.float32)
    X = np.lib.stride_tricks.sliding_window_view(values, (WINDOW, 3))[:, 0]
    # sigma:2 on row scores too (auto's stricter row rule may flag nothing here, and the tests compare flags)
    model = LSTMAutoencoder(encoder=(8, 4), epochs=1, batch_size=128, threshold="sigma:2", random_state=0,
                            progress=False)
    model.fit(np.ascontiguousarray(X), feature_names=FEATURES)
    path = tmp_path_factory.mktemp("scale_out") / "model"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def model(model_dir):
    from lstmae import load

    return load(model_dir)


@pytest.fixture
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def reference(model, frame, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedGroupWarning)
        return score_frame(model, frame, entity_column="machine", **options)


def assert_same(got, want):
    """Same rows (index, in order), scores within 1e-6, every flag and extra column equal."""
    assert list(got.index) == list(want.index)
    for column in want.columns:
        if column == "score" or column.startswith(("error_", "threshold")):
            np.testing.assert_allclose(got[column].to_numpy(float), want[column].to_numpy(float), atol=1e-6,
                                       rtol=1e-6, err_msg=column)
        else:
            np.testing.assert_array_equal(got[column].to_numpy(), want[column].to_numpy(), err_msg=column)


def test_equals_single_process_row_for_row(model_dir, model, synchronous):
    frame = make_frame()
    want = reference(model, frame)
    got = score_entities_pandas(model_dir, frame, entity_column="machine", npartitions=3)
    assert list(got.columns) == ["machine", "score", "is_anomaly", "alarm", "valid"]
    assert_same(got, want)
    assert_same(got[["machine"]], frame[["machine"]])
    short = frame["machine"] == "short"
    assert not got.loc[short, "valid"].any() and got.loc[short, "score"].isna().all()
    assert got.loc[~short, "valid"].any() and got["is_anomaly"].sum() > 0  # something is flagged: a real test


def test_an_index_named_as_the_model_time_column_is_not_read_as_times(model, tmp_path, synchronous):
    # score_frame reads a model's time column from an index of that name (split at gaps, put in order); the
    # partitions keep the input's index, so a fleet indexed by time was split at gaps here, unlike documented
    model.data_settings_ = {**model.data_settings_, "time_column": "when"}  # as if fitted on a table with it
    try:
        model.save(tmp_path / "timed")
    finally:
        model.data_settings_.pop("time_column")
    frame = make_frame()
    frame.index = pd.Index(frame["t"].to_numpy() + np.where(frame["t"] > 300, 10_000, 0), name="when")  # a gap
    got = score_entities_pandas(tmp_path / "timed", frame, entity_column="machine", npartitions=2)
    assert_same(got.reset_index(drop=True), reference(load(tmp_path / "timed"), frame.reset_index(drop=True)))


@pytest.mark.parametrize("npartitions", [1, 16])
def test_partitioning_changes_nothing(model_dir, model, synchronous, npartitions):
    """One partition holding every entity, or more partitions than entities: empty ones, and ones holding
    only the entity shorter than the window (which score_frame alone would refuse)."""
    frame = make_frame(seed=3)
    got = score_entities_pandas(model_dir, frame, entity_column="machine", npartitions=npartitions)
    assert_same(got, reference(model, frame))


def test_only_short_entities_are_refused_in_memory_and_invalid_when_lazy(model_dir, synchronous):
    frame = make_frame(lengths={"a": 3, "b": WINDOW - 1})
    # as score_frame and `lstmae score` refuse them
    with pytest.raises(DataError, match=f"no entity or segment has the {WINDOW} rows one window needs"):
        score_entities_pandas(model_dir, frame, entity_column="machine", npartitions=2)
    with pytest.raises(DataError, match="the frame has no rows"):
        score_entities_pandas(model_dir, frame.iloc[:0], entity_column="machine")
    # a lazy frame's entities are known only at compute time: their rows come out invalid, and no warning names
    # the padding entity a partition of short entities is scored with
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = score_entities(model_dir, dd.from_pandas(frame, npartitions=2), entity_column="machine").compute()
    assert len(got) == len(frame) and not got["valid"].any() and got["score"].isna().all()
    assert (got["is_anomaly"] == 0).all() and (got["alarm"] == 0).all()
    assert not [w for w in caught if "padding" in str(w.message)], [str(w.message) for w in caught]


def test_no_warning_comes_from_the_probe_of_the_result_columns(model_dir, synchronous):
    """The result's columns are found by scoring one window of zeros, whose own alarms are nobody's."""
    frame = make_frame()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score_entities_pandas(model_dir, frame, entity_column="machine", npartitions=2, threshold="value:-1000",
                              alarms=None)
    named = [str(w.message) for w in caught if "flags cover" in str(w.message)]
    # (normalized scores fall below 0) value:-1000 flags every row: a storm on each real entity, none on the probe
    assert named and all("of 0," not in message for message in named), named


def test_time_column_orders_each_entity(model_dir, model, synchronous):
    """Rows shuffled out of time order: each entity is scored in time order, as after a sort by time."""
    frame = make_frame(seed=5).sample(frac=1.0, random_state=7)
    ddf = dd.from_pandas(frame, npartitions=4, sort=False)
    got = score_entities(model_dir, ddf, entity_column="machine", time_column="t").compute()
    assert list(got.columns)[:2] == ["machine", "t"]
    want = reference(model, frame.sort_values("t", kind="stable"))
    assert_same(got.loc[want.index], want)
    # Without the time column the shuffled order is kept, which scores differently.
    unordered = score_entities_pandas(model_dir, frame, entity_column="machine", npartitions=4)
    assert_same(unordered, reference(model, frame))
    assert not np.allclose(unordered["score"].fillna(0), got.loc[frame.index, "score"].fillna(0))


def test_options_pass_through(model_dir, model, synchronous):
    """how, stride, an adaptive threshold rule (its per-row threshold column), no alarms, feature errors."""
    frame = make_frame(seed=2)
    options = dict(how="end", stride=2, threshold="telemanom:1,window=30,every=5", alarms=None, feature_errors=True)
    got = score_entities_pandas(model_dir, frame, entity_column="machine", npartitions=3, **options)
    want = reference(model, frame, **options)
    assert {"threshold", "error_x"} <= set(got.columns) and "alarm" not in got.columns
    assert_same(got, want)


def test_entity_ids_kept_as_given(model_dir, synchronous):
    frame = make_frame(lengths={7: 30, "m2": 25, 3.5: 12})
    got = score_entities_pandas(model_dir, frame, entity_column="machine", npartitions=2)
    assert list(got["machine"]) == list(frame["machine"])


def test_model_saved_again_is_reloaded(model_dir, model, tmp_path, synchronous):
    """Workers cache the model by path and weights hash: a new save under the same path is used."""
    path = tmp_path / "model"
    model.save(path)
    frame = make_frame(seed=4)
    first = score_entities_pandas(path, frame, entity_column="machine", npartitions=2)
    other = LSTMAutoencoder(encoder=(8, 4), epochs=0, random_state=3, progress=False)
    other.fit(np.random.default_rng(0).normal(size=(40, WINDOW, 3)).astype(np.float32), feature_names=FEATURES)
    other.save(path, overwrite=True)
    second = score_entities_pandas(path, frame, entity_column="machine", npartitions=2)
    assert_same(second, reference(other, frame))
    assert not np.allclose(first["score"].fillna(0), second["score"].fillna(0))


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns=["machine"]), "no entity column 'machine'"),
    (lambda f: f.drop(columns=["y"]), "missing 'y'"),
    (lambda f: f.assign(x="text"), "feature columns must hold numbers"),
])
def test_bad_columns_fail_at_once_in_one_line(model_dir, change, message):
    ddf = dd.from_pandas(change(make_frame()), npartitions=2)
    with pytest.raises(DataError, match=message) as info:
        score_entities(model_dir, ddf, entity_column="machine")
    assert "\n" not in str(info.value)


def test_other_bad_input(model_dir, tmp_path, synchronous):
    frame = make_frame()
    with pytest.raises(DataError, match="the entity column 'x' is one of the model's features"):
        score_entities_pandas(model_dir, frame, entity_column="x")  # it said "missing 'x'" of a column that was there
    with pytest.raises(DataError, match="the time column 'y' is one of the model's features"):
        score_entities_pandas(model_dir, frame, entity_column="machine", time_column="y")
    with pytest.raises(DataError, match="no time column 'when'"):
        score_entities(model_dir, dd.from_pandas(frame, npartitions=2), entity_column="machine", time_column="when")
    with pytest.raises(DataError, match="expected a Dask DataFrame"):
        score_entities(model_dir, frame, entity_column="machine")
    with pytest.raises(ModelFileError, match="not a model directory"):
        score_entities_pandas(tmp_path / "nothing", frame, entity_column="machine")
    with pytest.raises(DataError, match="entity column 'machine' has missing values"):
        score_entities_pandas(model_dir, frame.assign(machine=frame["machine"].where(frame["t"] != 0)),
                              entity_column="machine")


def _spoiled(frame, entity, column, position, value):
    """`frame` with the cell of `column` in the `position`-th row (from 0) of `entity`'s rows set to `value`."""
    frame = frame.copy()
    if value is not None and not isinstance(value, float):
        frame[column] = frame[column].astype(object)
    frame.loc[frame.index[frame["machine"] == entity][position], column] = value
    return frame


@pytest.mark.parametrize("column, value, message", [
    # each was scored with valid=True and no word, while lstmae score refuses it in a file
    ("t", None, "entity 'm2' (its rows in input order): time column 't' row 6 is empty"),
    ("t", "x", "entity 'm2' (its rows in input order): time column 't' row 6 holds 'x', not a date"),
    ("t", "2024-01-01 00:00:41", "time column 't' has 2024-01-01 00:00:41 twice (rows 5 and 6)"),
    # named row 11 of the whole partition, no entity, and suggested --nan-policy, which this API lacks
    ("x", float("nan"), "entity 'm2' (its rows in input order): column 'x' row 6 is missing"),
    # named "the series: column 'x' row 11", a row of the partition, and no entity
    ("x", float("inf"), "entity 'm2' (its rows in input order): column 'x' row 6 has value inf where a finite "
                        "float32 number is expected"),
    ("x", 1e39, "entity 'm2' (its rows in input order): column 'x' row 6 has value 1e+39 where a finite"),
])
def test_a_bad_cell_is_refused_naming_the_entity_and_its_row(model_dir, synchronous, column, value, message):
    frame = make_frame()  # times as a CSV gives them: text dates
    frame["t"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["t"], unit="s")).astype(str)
    frame = _spoiled(frame, "m2", column, 5, value)
    with pytest.raises(DataError, match=re.escape(message)):
        score_entities_pandas(model_dir, frame, entity_column="machine", time_column="t", npartitions=2)


def test_one_column_as_entity_and_time_is_refused(model_dir, synchronous):
    with pytest.raises(DataError, match="'machine' is given as both the entity and the time column"):
        score_entities_pandas(model_dir, make_frame(), entity_column="machine", time_column="machine")


def test_local_cluster_two_processes(model_dir, model):
    """The real engine: two worker processes with one thread each; same rows as single-process, each
    worker loaded the model once and scores with one torch thread."""
    import logging

    from distributed import Client, LocalCluster

    frame = make_frame(seed=6)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      worker_dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        got = score_entities_pandas(model_dir, frame, entity_column="machine", client=client)
        ddf = dd.from_pandas(frame, npartitions=4, sort=False)
        lazy = client.compute(score_entities(model_dir, ddf, entity_column="machine", time_column="t")).result()
        threads = client.run(lambda: __import__("torch").get_num_threads())
        cached = client.run(lambda: len(__import__("lstmae.distributed.scoring").distributed.scoring._models))
    want = reference(model, frame)
    assert_same(got, want)
    assert_same(lazy.loc[want.index, want.columns], want)
    assert set(threads.values()) == {1} and set(cached.values()) == {1}


def test_text_times_keep_the_input_order_and_mixed_entity_ids_are_refused(model_dir, model):
    frame = make_frame()
    frame = frame[frame["machine"] == "m2"].assign(t=[f"step-{i}" for i in range((frame["machine"] == "m2").sum())])
    # "step-10" sorts before "step-2" as text; lstmae score keeps such times in the file's order
    got = score_entities_pandas(model_dir, frame, entity_column="machine", time_column="t", npartitions=2)
    want = score_frame(model, frame.drop(columns="t"), entity_column="machine")
    np.testing.assert_allclose(got["score"].to_numpy(), want["score"].to_numpy(), rtol=1e-6, equal_nan=True)
    mixed = make_frame().assign(machine=lambda f: np.where(f["machine"] == "m2", 1, f["machine"]).astype(object))
    mixed.loc[mixed.index[::7], "machine"] = "1"  # 1 and "1": one entity to Dask, two to score_frame
    with pytest.raises(DataError, match=r"entity column 'machine' has the ids (1 and '1'|'1' and 1), which scale-out"):
        score_entities_pandas(model_dir, mixed, entity_column="machine")
    floats = make_frame().assign(machine=lambda f: f["machine"].astype(object))
    floats.loc[floats["machine"] == "m1", "machine"], floats.loc[floats["machine"] == "m4", "machine"] = 1, 1.0
    with pytest.raises(DataError, match=r"has the ids (1 and 1.0|1.0 and 1), which"):  # one entity, or two as text
        score_entities_pandas(model_dir, floats, entity_column="machine")
