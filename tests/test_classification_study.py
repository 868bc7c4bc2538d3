"""Smoke tests of benchmarks/classification_study.py and benchmarks/variants_study.py."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from lstmae.exceptions import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import classification_study as study  # noqa: E402
import variants_study as variants  # noqa: E402
from conftest import two_class_series  # noqa: E402

TINY = {"epochs": 2, "batch_size": 8}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny LSTMs on 2 threads spend their time in OpenMP barriers, 100x slower when the cores
    are shared; the studies run on one thread too (--threads 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_ts(path, rows):
    path.write_text("# a comment\n@problemName toy\n@univariate true\n@data\n" + "\n".join(rows) + "\n")
    return path


def test_read_ts_parses_values_and_labels(tmp_path):
    path = write_ts(tmp_path / "toy.ts", ["1,2,3:a", "4.5,-5,6e-1:b"])
    X, y = variants.read_ts(path)
    np.testing.assert_array_equal(X, np.array([[1, 2, 3], [4.5, -5, 0.6]], dtype=np.float32))
    assert list(y) == ["a", "b"]


def test_read_ts_rejects_unequal_lengths(tmp_path):
    path = write_ts(tmp_path / "toy.ts", ["1,2,3:a", "4,5:b"])
    with pytest.raises(DataError, match=r"line 6: expected 3 values, got 2"):
        variants.read_ts(path)


def test_read_ts_rejects_a_line_without_label(tmp_path):
    path = write_ts(tmp_path / "toy.ts", ["1,2,3"])
    with pytest.raises(DataError, match=r"line 5: expected 'v1,...,vL:label'"):
        variants.read_ts(path)


def test_missing_data_dir_exits_with_a_clear_message(tmp_path):
    with pytest.raises(SystemExit, match="data folder .* not found; pass --data-dir"):
        variants.check_data_dir(tmp_path / "absent")


def test_encoding_pipeline_fits_and_predicts_through_the_autoencoder():
    X, y = two_class_series()
    pipe = study.encoding_pipeline(TINY, seed=0, encoder=(6, 3)).fit(X, y)
    # The classifier sees the default encoding (pooled): both layers' means, then the code layer's max.
    assert pipe[:-1].transform(X).shape == (len(X), 6 + 3 + 3)
    assert set(pipe.predict(X)) <= {"up", "down"}


def test_encoder_selection_picks_the_best_validated_architecture_and_encoding():
    X, y = two_class_series()
    candidates = {"small": {"encoder": (4,)}, "bidirectional": {"encoder": (4,), "bidirectional": True}}
    selection = study.EncoderSelection(TINY, candidates, folds=2, seed=0).fit(X, y)
    summary = selection.summary()
    assert set(summary["validation_accuracy"]) == {f"{c} / {e}" for c in candidates for e in study.ENCODINGS}
    best = max(summary["validation_accuracy"].values())
    assert summary["validation_accuracy"][" / ".join(summary["selected"])] == best
    name, encoding = summary["selected"]
    assert selection.autoencoder_.bidirectional == (name == "bidirectional")
    assert selection.score(X, y) == selection.score(X, y, encoding=encoding)
    assert set(selection.predict(X)) <= {"up", "down"}


def test_encoder_selection_validates_on_held_out_series_only(monkeypatch):
    X, y = two_class_series()
    seen = []
    original = study.validation_accuracies

    def spy(model, X_all, y_all, train, validation):
        seen.append((set(train), set(validation)))
        return original(model, X_all, y_all, train, validation)

    monkeypatch.setattr(study, "validation_accuracies", spy)
    study.EncoderSelection(TINY, {"only": {"encoder": (3,)}}, folds=3, seed=0).fit(X, y)
    assert len(seen) == 3 and all(not train & validation for train, validation in seen)
    assert set().union(*(validation for _, validation in seen)) == set(range(len(X)))  # k-fold: each series once
    seen.clear()
    study.EncoderSelection(TINY, {"only": {"encoder": (3,)}}, folds=1, seed=0).fit(X, y)
    assert len(seen) == 1 and len(seen[0][1]) == len(X) // 3  # one validation third


def test_classification_markdown_flags_the_goal_per_data_set():
    accuracy = {study.NEAREST: 0.9, "logistic regression (raw)": 0.8, study.UNTRAINED["bottleneck"]: 0.7,
                study.BOTTLENECK: 0.95, study.MEAN: 0.85, study.CHOSEN: 0.95}
    selection = {"selected": ["a", "bottleneck"], "validation_accuracy": {"a / bottleneck": 1.0, "a / mean": 0.5}}
    report = {"settings": {"seed": 0, "training": {"X": TINY}, "selection_folds": {"won": 5, "lost": 1},
                           "autoencoder_defaults": {"loss": "mae"}},
              "results": [{"dataset": "won", "protocol": "p", "accuracy": accuracy, "selection": selection,
                           "reconstruction_mse": 0.0123},
                          {"dataset": "lost", "protocol": "p", "selection": [selection, selection],
                           "accuracy": {**accuracy, study.BOTTLENECK: 0.85, study.MEAN: 0.91, study.CHOSEN: 0.85}}]}
    tied = {**accuracy, study.NEAREST: sum([0.92, 0.97, 0.91, 0.94, 0.95]) / 5, study.BOTTLENECK: 0.9,
            study.CHOSEN: sum([0.93, 0.97, 0.92, 0.95, 0.92]) / 5}
    report["results"].append({"dataset": "tied", "protocol": "p", "accuracy": tied, "selection": selection})
    markdown = study.classification_markdown(report)
    rows = markdown.splitlines()
    # The goal compares the chosen encoding with 1-NN by name, wherever their columns are.
    assert rows[2] == "| won | p | 0.900 | 0.800 | 0.700 | **0.950** | 0.850 | **0.950** | yes | 0.012 |"
    assert rows[3] == "| lost | p | 0.900 | 0.800 | 0.700 | 0.850 | **0.910** | 0.850 | no | - |"
    # 469/500 both, summed in another order
    assert rows[4] == "| tied | p | **0.938** | 0.800 | 0.700 | 0.900 | 0.850 | **0.938** | yes | - |"
    assert "won 5-fold CV; lost one stratified validation third" in markdown
    assert "| lost | a / bottleneck 1.000; a / mean 0.500 | a / bottleneck (2/2 folds) |" in markdown


def test_defaults_split_fits_one_default_autoencoder_and_scores_every_encoding(monkeypatch):
    X, y = two_class_series()
    fitted = []

    def tiny_default(seed, quick=False, changes=None):
        model = study.LSTMAutoencoder(encoder=(6, 3), random_state=seed, progress=False, **TINY)
        fitted.append(model)
        return model

    monkeypatch.setattr(study, "default_autoencoder", tiny_default)
    result = study.run_defaults("toy", [(X[:16], y[:16], X[16:], y[16:])] * 2, "p", seed=0, jobs=1)
    assert len(fitted) == 2  # one autoencoder per split, shared by the encodings
    assert list(result["accuracy"]) == [study.NEAREST, study.RAW_LR, *study.ENCODINGS]
    assert all(len(folds) == 2 and all(0 <= a <= 1 for a in folds) for folds in result["fold_accuracy"].values())
    assert result["accuracy"][study.NEAREST] == result["fold_accuracy"][study.NEAREST][0]
    assert len(result["seconds"]["autoencoder"]) == 2 and min(result["seconds"]["autoencoder"]) >= 0
    assert result["epochs_run"] == [2, 2] and result["default_encoding"] == study.DEFAULTS["encoding"]


def test_set_changes_one_parameter_of_the_default_autoencoder_and_refuses_unknown_names():
    changes = study.parse_changes(["patience=10", "loss=mse"])
    assert changes == {"patience": 10, "loss": "mse"}
    model = study.default_autoencoder(3, changes=changes)
    assert (model.patience, model.loss, model.random_state) == (10, "mse", 3)
    assert model.encoder == study.DEFAULTS["encoder"]
    with pytest.raises(SystemExit, match="'patiense' is not an LSTMAutoencoder parameter"):
        study.parse_changes(["patiense=10"])


def test_defaults_markdown_flags_both_goals_for_the_default_encoding():
    def result(name, nearest, raw, default):
        accuracy = {study.NEAREST: nearest, study.RAW_LR: raw, "bottleneck": 0.5, "pooled": default}
        return {"dataset": name, "protocol": "p", "accuracy": accuracy, "seconds": {"autoencoder": [12.3, 4.0]},
                "epochs_run": [100, 37], "reconstruction_mse": 0.25}
    report = {"settings": {"seed": 0, "autoencoder": {**study.DEFAULTS, "encoding": "pooled"}},
              "results": [result("won", 0.9, 0.95, 0.93), result("lost", 0.9, 0.8, 0.85),
                          result("edge", 0.9, 0.92, 0.9)]}
    rows = study.defaults_markdown(report).splitlines()
    assert rows[0].count("encoding=pooled (default)") == 1 and "encoding=bottleneck |" in rows[0]
    assert rows[2] == "| won | p | 0.900 | **0.950** | 0.500 | 0.930 | yes | yes | 12, 4 | 100, 37 | 0.250 |"
    assert rows[3] == "| lost | p | **0.900** | 0.800 | 0.500 | 0.850 | no | yes | 12, 4 | 100, 37 | 0.250 |"
    assert rows[4].endswith("| **0.920** | 0.500 | 0.900 | yes | yes | 12, 4 | 100, 37 | 0.250 |")  # 0.02 below: allowed


def test_untrained_controls_keep_the_initial_weights_of_the_first_candidate():
    X, y = two_class_series()
    candidates = {"first": {"encoder": (5, 3)}, "second": {"encoder": (7,)}}
    controls = study.baselines(TINY, candidates, seed=0)
    bottleneck = controls[study.UNTRAINED["bottleneck"]].fit(X, y)
    mean = controls[study.UNTRAINED["mean"]].fit(X, y)
    assert bottleneck[0].history_["epochs_run"] == 0 and mean[0].history_["epochs_run"] == 0
    assert bottleneck[:-1].transform(X).shape == (len(X), 3) and mean[:-1].transform(X).shape == (len(X), 5 + 3)


def test_fixed_encoding_rows_reuse_the_chosen_autoencoder_without_changing_it():
    X, y = two_class_series()
    selection = study.EncoderSelection(TINY, {"only": {"encoder": (4, 2)}}, seed=0).fit(X, y)
    encoding = selection.autoencoder_.encoding
    before = selection.autoencoder_.transform(X)
    for other in ("bottleneck", "mean"):
        assert 0.0 <= selection.score(X, y, encoding=other) <= 1.0
    assert selection.autoencoder_.encoding == encoding
    np.testing.assert_array_equal(selection.autoencoder_.transform(X), before)
    assert study.encode(selection.autoencoder_, "mean", X).shape == (len(X), 4 + 2)


def test_single_layer_variant_has_the_closed_form_parameter_count():
    # LSTM(1 -> 64) and LSTM(64 -> 1), no dense: 4H(I + H) weights + 2 x 4H biases each.
    expected = (4 * 64 * (1 + 64) + 8 * 64) + (4 * 1 * (64 + 1) + 8 * 1)
    X, _ = two_class_series()
    data = {"train": X, "heldout": X[:4], "anomalous": -X[:4]}
    result = variants.run_variant("single_layer", data, TINY, seed=0)
    assert result["params"] == expected
    assert result["code_size"] == 64
    assert 0.0 <= result["roc_auc"] <= 1.0


def test_unknown_variant_parameter_is_reported_as_skipped(monkeypatch):
    monkeypatch.setitem(variants.VARIANTS, "future", ("default", {"no_such_parameter": 1}))
    X, _ = two_class_series()
    result = variants.run_variant("future", {"train": X, "heldout": X, "anomalous": None},
                                  TINY, seed=0)
    assert "no_such_parameter" in result["skipped"]
    block = {"n_train": 1, "n_heldout": 1, "length": 1, **TINY, "results": [result]}
    table = variants.variants_markdown({"settings": {"seed": 0}, "datasets": {"toy": block}})
    assert "| future | skipped: not in this lstmae |" in table


def test_a_diverging_variant_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(variants.VARIANTS, "blows up", ("keras_minimal", {"encoder": (8,), "learning_rate": 100.0,
                                                                       "max_grad_norm": None}))
    X, _ = two_class_series()
    result = variants.run_variant("blows up", {"train": X, "heldout": X, "anomalous": -X}, TINY, seed=0)
    assert result["diverged"].startswith("training diverged at epoch 1")
    assert "heldout_mse" not in result
    block = {"n_train": 1, "n_heldout": 1, "n_anomalous": 1, "length": 1, **TINY, "results": [result]}
    table = variants.variants_markdown({"settings": {"seed": 0}, "datasets": {"toy": block}})
    assert f"| {result['diverged']} | - | - |" in table


@pytest.mark.realdata
@pytest.mark.parametrize("name, shape_train, shape_test, published_1nn", [
    ("GunPoint", (50, 150), (150, 150), 0.913),         # UCR archive: 1-NN Euclidean error 0.087
    ("ItalyPowerDemand", (67, 24), (1029, 24), 0.955),  # UCR archive: 1-NN Euclidean error 0.045
])
def test_ucr_loader_reproduces_the_published_1nn_accuracy(shared_data, name, shape_train, shape_test, published_1nn):
    data = variants.load_ucr(shared_data, name)
    assert data["X_train"].shape == shape_train and data["X_test"].shape == shape_test
    accuracy = KNeighborsClassifier(1).fit(data["X_train"], data["y_train"]).score(data["X_test"], data["y_test"])
    assert accuracy == pytest.approx(published_1nn, abs=1e-3)


@pytest.mark.realdata
def test_ecg5000_training_beats_have_five_classes(shared_data):
    frame = variants.load_ecg5000(shared_data)
    train = frame[frame["ucr_split"] == "train"]
    assert variants.ecg_beats(train).shape == (500, 140)
    assert sorted(train["ucr_class"].astype(int).unique()) == [1, 2, 3, 4, 5]
