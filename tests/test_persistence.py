import json
import pickle
import re

import numpy as np
import pytest

from lstmae import LSTMAutoencoder, load
from lstmae.exceptions import DataError, ModelFileError

from conftest import sine_windows


def test_reload_gives_bit_identical_scores(fitted_small, tmp_path):
    model, X = fitted_small
    model.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.anomaly_score(X), model.anomaly_score(X))
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert loaded.threshold_ == model.threshold_
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    assert loaded.get_params() == model.get_params()
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["format_version"] == 1 and config["random_state"] == 0
    assert config["threshold"]["rule"] == "sigma:2"  # "auto" on sequence scores


def test_mahalanobis_and_relu_model_round_trip(tmp_path):
    X = sine_windows(n=40)
    model = LSTMAutoencoder(encoder=(8, 4), activation="relu", error_model="mahalanobis", epochs=2,
                            progress=False, random_state=0).fit(X)
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m").anomaly_score(X), model.anomaly_score(X))


def test_existing_directory_needs_overwrite_and_replaces_atomically(fitted_small, tmp_path):
    model, _ = fitted_small
    model.save(tmp_path / "model")
    with pytest.raises(DataError, match=r"exists; pass --overwrite \(in Python: overwrite=True\)"):
        model.save(tmp_path / "model")
    model.save(tmp_path / "model", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp dirs left


def test_overwrite_replaces_an_earlier_model_or_an_empty_folder_never_other_files(fitted_small, tmp_path):
    model, _ = fitted_small
    (tmp_path / "empty").mkdir()
    model.save(tmp_path / "empty", overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(DataError, match=r"mine: holds notes.txt, not a saved model \(no config.json\), and "
                                        "overwriting would delete them; choose a new or empty folder"):
        model.save(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mine"]  # nothing staged
    # a folder was replaced, whatever else it held, once it held a file named config.json
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "config.json").write_text('{"name": "my-app"}')
    with pytest.raises(DataError, match=r"app: its config.json is not that of a saved model, and overwriting would "
                                        "delete them"):
        model.save(tmp_path / "app", overwrite=True)
    (tmp_path / "app" / "index.js").write_text("code")
    with pytest.raises(DataError, match=r"app: holds index.js beside a saved model, files lstmae did not write there"):
        model.save(tmp_path / "app", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "app").iterdir()) == ["config.json", "index.js"]
    model.save(tmp_path / "empty", overwrite=True)  # an earlier model is replaced


class _Boom:
    def __reduce__(self):
        return (open, ("/tmp/lstmae_pickle_ran", "w"))


def test_a_pickle_named_safetensors_is_refused_and_runs_no_code(fitted_small, tmp_path):
    import os

    model, _ = fitted_small
    model.save(tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").write_bytes(pickle.dumps(_Boom()))
    if os.path.exists("/tmp/lstmae_pickle_ran"):
        os.remove("/tmp/lstmae_pickle_ran")
    with pytest.raises(ModelFileError, match="not a valid safetensors file"):
        load(tmp_path / "model")
    assert not os.path.exists("/tmp/lstmae_pickle_ran")


def test_corrupt_and_missing_models(fitted_small, tmp_path):
    model, _ = fitted_small
    with pytest.raises(ModelFileError, match="is not a model directory"):
        load(tmp_path / "nowhere")
    model.save(tmp_path / "model")
    (tmp_path / "model" / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load(tmp_path / "model")
    model.save(tmp_path / "model2")
    config = json.loads((tmp_path / "model2" / "config.json").read_text())
    config["architecture"]["encoder"] = [32, 8]  # weights no longer fit
    (tmp_path / "model2" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="corrupt or incomplete"):
        load(tmp_path / "model2")
    model.save(tmp_path / "model3")
    (tmp_path / "model3" / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="model.safetensors is missing"):
        load(tmp_path / "model3")
    for floors, message in (({"mean": "NaN"}, "its threshold floors are"), (["mean"], "corrupt or incomplete")):
        model.save(tmp_path / "model4", overwrite=True)
        config = json.loads((tmp_path / "model4" / "config.json").read_text())
        config["threshold"]["floors"] = floors
        (tmp_path / "model4" / "config.json").write_text(json.dumps(config))
        with pytest.raises(ModelFileError, match=message):
            load(tmp_path / "model4")



@pytest.mark.parametrize("data, message", [
    ({"layout": "zzz"}, "data setting 'layout' is 'zzz', not 'series' or 'sequences'"),
    ({"window": "x"}, "data setting 'window' is 'x', not an integer >= 1"),
    ({"stride": 0}, "data setting 'stride' is 0, not an integer >= 1"),
    ({"entity_column": 3}, "data setting 'entity_column' is 3, not a column name"),
    ({"columns": "a,b"}, "data setting 'columns' is 'a,b', not a list of column names"),
    ({"timestep_columns": "t*"}, "data setting 'timestep_columns' is 't\\*', not a list of column names"),
    ({"layout": "sequences", "timestep_columns": ["t0", "t1"]}, "'timestep_columns' names 2 columns \\(2 different\\) "
                                                                 "for sequences of 12 steps"),
    ({"layout": "sequences", "timestep_columns": ["t"] * 12}, "names 12 columns \\(1 different\\)"),
    ({"max_gap": [1]}, "data setting 'max_gap' is \\[1\\], not a number"),
    ({"max_gap": "abc"}, "data setting 'max_gap' is 'abc', not a number or a duration"),
    ({"nan_policy": "bogus"}, "data setting 'nan_policy' is 'bogus', not one of error, ffill"),
    ([1, 2], "its data settings are a list, not a mapping"),
])
def test_corrupt_data_settings_are_refused_at_load(fitted_small, tmp_path, data, message):
    # they were loaded as they were and failed later, at scoring, far from the cause
    model, _ = fitted_small
    model.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["data"] = data
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=message):
        load(tmp_path / "model")


WRITER = """
import sys
sys.path.insert(0, {tests!r})
import numpy as np
from conftest import sine_windows
from lstmae import LSTMAutoencoder
models = [LSTMAutoencoder(encoder=(4,), epochs=0, progress=False, random_state=seed).fit(sine_windows(n=40))
          for seed in (0, 1)]
print("ready", flush=True)
for i in range({saves}):
    models[i % 2].save({path!r}, overwrite=True)
"""


def test_a_reader_never_sees_a_mix_of_two_saves_or_no_model(tmp_path):
    """One process overwrites a model in a loop while this one loads it in a loop: every load is one of
    the two models, whole (config.json and weights belong together: their digest is checked)."""
    import os
    import subprocess
    import sys

    X = sine_windows(n=40)
    path = tmp_path / "model"
    expected = []
    for seed in (0, 1):
        model = LSTMAutoencoder(encoder=(4,), epochs=0, progress=False, random_state=seed).fit(X)
        expected.append(model.anomaly_score(X[:4]))
    LSTMAutoencoder(encoder=(4,), epochs=0, progress=False, random_state=0).fit(X).save(path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER.format(tests=os.path.dirname(__file__), saves=40,
                                                                    path=str(path))],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    loads = 0
    while writer.poll() is None and loads < 200:
        scores = load(path).anomaly_score(X[:4])
        assert any(np.array_equal(scores, e) for e in expected)
        loads += 1
    writer.wait(timeout=120)
    assert writer.returncode == 0 and loads > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folders left


def test_staging_left_by_a_killed_save_is_removed_by_the_next_save(fitted_small, tmp_path):
    model, _ = fitted_small
    dead = tmp_path / ".model.lstmae-staging-999999999-abc"  # a pid that cannot be running
    dead.mkdir()
    (dead / "config.json").write_text("{}")
    alive = tmp_path / f".model.lstmae-staging-{__import__('os').getpid()}-abc"  # a save still running
    alive.mkdir()
    model.save(tmp_path / "model")
    assert not dead.exists() and alive.exists()


def test_config_and_weights_of_two_saves_are_refused(fitted_small, tmp_path):
    model, X = fitted_small
    model.save(tmp_path / "a")
    LSTMAutoencoder(encoder=(8, 4), epochs=0, progress=False, random_state=1).fit(X).save(tmp_path / "b")
    (tmp_path / "a" / "model.safetensors").write_bytes((tmp_path / "b" / "model.safetensors").read_bytes())
    with pytest.raises(ModelFileError, match="does not match config.json"):
        load(tmp_path / "a")


def test_a_model_file_is_checked_before_it_is_trusted(fitted_small, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    model, _ = fitted_small
    model.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    original = json.loads(config_path.read_text())

    def corrupt(change):
        config = json.loads(json.dumps(original))
        change(config)
        config.pop("weights_sha256")
        config_path.write_text(json.dumps(config))
        return pytest.raises(ModelFileError)

    with corrupt(lambda c: c["architecture"].update(encoder=[20000, 4], decoder=[4, 20000])) as refused:
        load(tmp_path / "m")  # refused from the header's shapes, before any allocation
    assert "has shape" in str(refused.value) and "architecture needs" in str(refused.value)
    for bad in (float("nan"), float("inf")):
        with corrupt(lambda c: c["threshold"].update(value=bad)):
            load(tmp_path / "m")
    with corrupt(lambda c: c.update(format_version="1")) as refused:
        load(tmp_path / "m")
    assert "format_version" in str(refused.value)
    with corrupt(lambda c: c["scaler"].update(scale=[float("nan")] * 3)):
        load(tmp_path / "m")
    config_path.write_text(json.dumps({k: v for k, v in original.items() if k != "weights_sha256"}))
    tensors = load_file(str(tmp_path / "m" / "model.safetensors"))
    name = next(k for k in tensors if k.startswith("encoder"))
    tensors[name] = tensors[name].to(torch.int32)
    save_file(tensors, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(ModelFileError, match="int32"):
        load(tmp_path / "m")


def _tamper(model, path, config_change=None, tensor_change=None):
    """Save `model` to `path`, change its config (a function of the dict) and/or its tensors (of the dict of
    tensors), and drop the checksum so that only the change itself can be refused."""
    from safetensors.torch import load_file, save_file

    model.save(path, overwrite=True)
    config = json.loads((path / "config.json").read_text())
    config.pop("weights_sha256")
    if config_change:
        config_change(config)
    (path / "config.json").write_text(json.dumps(config))
    if tensor_change:
        tensors = load_file(str(path / "model.safetensors"))
        tensor_change(tensors)
        save_file(tensors, str(path / "model.safetensors"))


def _set_first(prefix, make):
    def change(tensors):
        name = next(k for k in sorted(tensors) if k.startswith(prefix))
        tensors[name] = make(tensors[name])
    return change


@pytest.mark.parametrize("config_change, tensor_change, message", [
    # each loaded and then scored wrongly (every row flagged, or the wrong windows), or failed far from the cause
    (None, _set_first("output", lambda t: t * float("nan")), "weight 'output.* holds NaN or inf values"),
    (None, _set_first("encoder", lambda t: t + float("inf")), "weight 'encoder.* holds NaN or inf values"),
    (None, _set_first("calibration.", lambda t: t * float("nan")), "held-out scores 'calibration.* are not"),
    (None, _set_first("calibration.", lambda t: t[:0]), r"shape \(0,\)"),
    (None, _set_first("calibration.", lambda t: t.reshape(1, -1)), r"shape \(1, "),
    (None, _set_first("calibration.", lambda t: t > 0), "torch.bool"),
    (lambda c: c["scaler"].update({k: c["scaler"][k][:2] for k in ("offset", "scale", "constant")}), None,
     "its scaler has 2 features, its architecture 3"),
    (lambda c: c.update(n_timesteps=10.7), None, "n_timesteps is 10.7, not an integer >= 1"),
    (lambda c: c["threshold"].update(how="bogus"), None, "threshold was fitted on 'bogus' scores"),
    (lambda c: c.update(training="abc"), None, "its training record is a str, not a mapping"),
    (lambda c: c["training"].update(loss=["abc"]), None, "its training record's 'loss' is \\['abc'\\], not a list of"),
    (lambda c: c["params"].update(encoding="nonsense"), None, "corrupt or incomplete: encoding must be one of"),
    (lambda c: c["params"].update(epochs=2.5), None, "corrupt or incomplete: epochs must be an integer"),
    (lambda c: c["scaler"]["offset"].__setitem__(1, float("inf")), None, "model.* scaler offset of feature 2 is inf"),
    # loaded, then failed as 'unexpected TypeError' in score, or blamed the data for the model's names
    (lambda c: c["architecture"].update(decoder_type="foo"), None, "decoder_type must be one of repeat, encdec_ad"),
    (lambda c: c["threshold"].update(value="3.2"), None, "corrupt or incomplete: its threshold value is '3.2', not a"),
    (lambda c: c["threshold"].update(value=True), None, "its threshold value is True, not a number"),
    (lambda c: c.update(feature_names="abc"), None, "its feature_names are 'abc', not 3 different names"),
    (lambda c: c.update(feature_names=["a", "a", "b"]), None, r"feature_names are \['a', 'a', 'b'\], not 3 different"),
    # an IndexError in every command, or (-1, 0.7) another feature marked silently
    *[(lambda c, flags=flags: c.update(binary_features=flags), None,
       rf"its binary_features are {re.escape(repr(flags))}, not positions of its 3 features")
      for flags in ([99], [-1], [0.7], [True], "0")],
])
def test_a_corrupt_model_file_is_refused_at_load_naming_it(fitted_small, tmp_path, config_change, tensor_change,
                                                            message):
    model, _ = fitted_small
    _tamper(model, tmp_path / "model", config_change, tensor_change)
    with pytest.raises(ModelFileError, match=message) as refused:
        load(tmp_path / "model")
    assert str(tmp_path / "model") in str(refused.value)


def test_a_window_setting_that_contradicts_the_network_is_refused(tmp_path):
    import pandas as pd

    from lstmae.data.io import read_series
    from lstmae.series import fit_data

    csv = tmp_path / "train.csv"
    pd.DataFrame({"a": np.sin(np.arange(200) / 4.0), "b": np.cos(np.arange(200) / 4.0)}).to_csv(csv, index=False)
    model = fit_data(LSTMAutoencoder(encoder=(4,), epochs=0, progress=False, random_state=0), read_series(csv),
                     window=10)
    model.save(tmp_path / "ok")
    assert load(tmp_path / "ok").data_settings_["window"] == 10
    _tamper(model, tmp_path / "model", lambda c: c.update(n_timesteps=5))
    with pytest.raises(ModelFileError, match="its data setting 'window' is 10 but its network was trained on 5-step"):
        load(tmp_path / "model")


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_a_model_file_that_is_a_folder_or_a_pipe_is_refused_without_waiting(fitted_small, tmp_path, name):
    import os

    model, _ = fitted_small
    model.save(tmp_path / "folder")
    (tmp_path / "folder" / name).unlink()
    (tmp_path / "folder" / name).mkdir()
    with pytest.raises(ModelFileError, match=f"{name} is not a regular file"):
        load(tmp_path / "folder")
    model.save(tmp_path / "pipe")
    (tmp_path / "pipe" / name).unlink()
    os.mkfifo(tmp_path / "pipe" / name)  # reading it waited forever
    with pytest.raises(ModelFileError, match=f"{name} is not a regular file"):
        load(tmp_path / "pipe")
