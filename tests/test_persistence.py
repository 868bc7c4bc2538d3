import json
import pickle

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
    assert config["threshold"]["rule"] == "sigma:3"  # the default rule


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
