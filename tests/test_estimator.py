import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import lstmae.estimator
from lstmae import LSTMAutoencoder
from lstmae.config import PRESETS
from lstmae.exceptions import DataError

from conftest import sine_windows

FAST = dict(epochs=3, batch_size=16, progress=False, random_state=0)


def test_same_seed_same_model_and_different_seed_differs():
    X = sine_windows(n=32)
    first = LSTMAutoencoder(encoder=(8, 4), **FAST).fit(X)
    second = LSTMAutoencoder(encoder=(8, 4), **FAST).fit(X)
    other = LSTMAutoencoder(encoder=(8, 4), **{**FAST, "random_state": 1}).fit(X)
    np.testing.assert_array_equal(first.anomaly_score(X), second.anomaly_score(X))
    assert first.history_["loss"] == second.history_["loss"]
    assert not np.array_equal(first.anomaly_score(X), other.anomaly_score(X))


def test_numpy_integer_seed_trains_and_saves_like_the_same_python_int(tmp_path):
    X = sine_windows(n=32)
    python_seed = LSTMAutoencoder(encoder=(8, 4), **{**FAST, "random_state": 3}).fit(X)
    numpy_seed = LSTMAutoencoder(encoder=(8, 4), **{**FAST, "random_state": np.int64(3)}).fit(X)
    for name, weights in python_seed.module_.state_dict().items():
        torch.testing.assert_close(numpy_seed.module_.state_dict()[name], weights, rtol=0, atol=0)
    np.testing.assert_array_equal(numpy_seed.anomaly_score(X), python_seed.anomaly_score(X))
    numpy_seed.save(tmp_path / "model")
    assert lstmae.load(tmp_path / "model").random_state == 3


def test_training_reduces_the_loss_and_keeps_the_best_epoch():
    X = sine_windows(n=64)
    model = LSTMAutoencoder(encoder=(16, 8), epochs=12, batch_size=16, random_state=0, progress=False).fit(X)
    history = model.history_
    assert history["loss"][-1] < history["loss"][0]
    assert len(history["val_loss"]) == history["epochs_run"]
    best = int(np.argmin(history["val_loss"]))
    assert history["best_epoch"] == best + 1


def test_zero_epochs_keeps_the_seeded_initial_weights():
    X = sine_windows(n=32)
    untrained = LSTMAutoencoder(encoder=(8, 4), **{**FAST, "epochs": 0}).fit(X)
    trained = LSTMAutoencoder(encoder=(8, 4), **{**FAST, "epochs": 1}).fit(X)
    assert untrained.history_["epochs_run"] == 0 and untrained.history_["loss"] == []
    assert untrained.transform(X).shape == (32, 8 + 4 + 4)  # default "pooled": layer means, then the code's max
    assert np.isfinite(untrained.threshold_)
    # The same seed builds the same network; one epoch of training moves every weight tensor.
    first = untrained.module_.state_dict()
    for name, weights in trained.module_.state_dict().items():
        assert not np.array_equal(weights.numpy(), first[name].numpy()), name
    again = LSTMAutoencoder(encoder=(8, 4), **{**FAST, "epochs": 0}).fit(X)
    np.testing.assert_array_equal(again.transform(X), untrained.transform(X))


def test_early_stopping_stops_before_epochs():
    X = sine_windows(n=32)
    model = LSTMAutoencoder(encoder=(4,), epochs=200, patience=2, learning_rate=0.5, **{k: v for k, v in FAST.items() if k != "epochs"})
    model.fit(X)
    assert model.history_["epochs_run"] < 200


def test_steps_per_epoch_bounds_the_samples_each_epoch_trains_and_validates_on(monkeypatch):
    import lstmae.training.loop as loop

    seen = {True: [], False: []}  # samples per forward pass, in training and in evaluation mode
    real = loop.reconstruction_loss

    def counting(x_hat, x, *args):
        seen[torch.is_grad_enabled()].append(len(x))
        return real(x_hat, x, *args)

    monkeypatch.setattr(loop, "reconstruction_loss", counting)
    X = sine_windows(n=200)  # 180 training and 20 validation windows
    LSTMAutoencoder(encoder=(4,), **{**FAST, "epochs": 2, "patience": None, "batch_size": 8,
                                     "steps_per_epoch": 2}).fit(X)
    assert seen[True] == [8, 8, 8, 8]  # 2 epochs x 2 steps of 8, not 2 x 180 samples
    # the initial loss and one per epoch, each on 16 of the 20 validation windows; then the kept network's loss on all
    # 20 (history_["held_out_loss"], what n_init compares)
    assert seen[False] == [16, 16, 16, 20]
    seen[True].clear()
    LSTMAutoencoder(encoder=(4,), **{**FAST, "epochs": 1, "batch_size": 8, "steps_per_epoch": None}).fit(X)
    assert sum(seen[True]) == 180
    # without validation windows the untrained loss (the divergence check's reference) is taken on as many
    # training windows as an epoch trains on, not on all of them
    seen[False].clear()
    LSTMAutoencoder(encoder=(4,), **{**FAST, "epochs": 1, "patience": None, "batch_size": 8, "steps_per_epoch": 2,
                                     "validation_fraction": 0.0}).fit(X)
    assert seen[False] == [16]  # and no held-out loss to record, with nothing held out


def test_default_threshold_is_two_sigma_of_the_validation_scores(fitted_small):
    model, X = fitted_small
    n_val = int(round(len(X) * model.validation_fraction))
    val_scores = model.anomaly_score(X[len(X) - n_val :])
    assert model.threshold == "auto" and str(model.threshold_rule_) == "sigma:2"
    assert model.threshold_ == pytest.approx(val_scores.mean() + 2 * val_scores.std(), rel=1e-5)
    quantile = model.calibrate_threshold(X[len(X) - n_val :], threshold="quantile:0.99")
    assert quantile == pytest.approx(np.quantile(val_scores, 0.99), rel=1e-6)
    model.calibrate_threshold(X[len(X) - n_val :])  # back to the default rule for the tests that share the model
    flags = model.predict(X)
    np.testing.assert_array_equal(flags, (model.anomaly_score(X) > model.threshold_).astype(int))


def test_recalibrate_swaps_the_error_model_and_threshold_without_retraining(fitted_small):
    import copy

    model, X = fitted_small
    variant = copy.deepcopy(model).set_params(error_model="mahalanobis", threshold="sigma:3")
    batches = []
    hook = variant.module_.register_forward_hook(lambda module, inputs, output: batches.append(len(inputs[0])))
    variant.recalibrate(X[:40])
    hook.remove()
    assert sum(batches) == 40  # one pass over the windows fits the error model and scores them for the threshold
    np.testing.assert_array_equal(variant.reconstruct(X[:5]), model.reconstruct(X[:5]))  # same network
    assert variant.error_model_.name == "mahalanobis"
    assert model.error_model_.spec == "normalized-max"  # "auto" on (N, L, F)
    scores = variant.anomaly_score(X[:40])
    assert variant.threshold_ == pytest.approx(scores.mean() + 3 * scores.std(), rel=1e-5)
    assert not np.allclose(scores, model.anomaly_score(X[:40]))


def test_auto_error_model_is_mae_where_normalized_max_cannot_fit_or_score():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 6, 2)).astype(np.float32)
    one_held_out = LSTMAutoencoder(encoder=(4,), epochs=1, validation_fraction=0.25, random_state=0,
                                   progress=False).fit(X)
    assert one_held_out.error_model_.name == "mae"
    lengths = [rng.normal(size=(n, 2)).astype(np.float32) for n in (5, 6, 7, 6, 5, 7, 6, 6)]
    variable = LSTMAutoencoder(encoder=(4,), epochs=1, random_state=0, progress=False).fit(lengths)
    assert variable.error_model_.name == "mae"
    tokens = LSTMAutoencoder(encoder=(4,), epochs=1, vocab_size=5, random_state=0, progress=False).fit(
        rng.integers(0, 5, size=(20, 6)))
    assert tokens.error_model_.name == "mae"
    held_out = LSTMAutoencoder(encoder=(4,), epochs=1, validation_fraction=0.5, random_state=0, progress=False).fit(X)
    assert (held_out.error_model_.name, held_out.error_model_.reduce) == ("normalized", "max")


def test_anomalous_windows_score_higher(fitted_small):
    model, X = fitted_small
    broken = X[:8].copy()
    broken[:, 6:, 0] += 3.0  # a level shift in one feature
    assert model.anomaly_score(broken).min() > model.anomaly_score(X[:8]).max()
    assert model.predict(broken).all()
    per_feature = model.reconstruction_error(broken, per="feature")
    assert (per_feature.argmax(axis=1) == 0).all()


@pytest.mark.parametrize("length", [7, 30])
def test_normalized_error_model_refuses_an_array_of_another_length_as_it_does_a_list(fitted_small, length):
    model, X = fitted_small
    assert model.error_model_.spec == "normalized-max"
    windows = np.zeros((3, length, X.shape[2]), np.float32)
    message = (f"sequence 0 has {length} steps; the normalized error model scores sequences of the trained "
               f"length {X.shape[1]} only")
    for given in (windows, list(windows)):
        with pytest.raises(DataError, match=message):
            model.anomaly_score(given)


def test_reconstruction_error_per_axes_agree(fitted_small):
    model, X = fitted_small
    full = model.reconstruction_error(X, per="none")
    np.testing.assert_allclose(model.reconstruction_error(X, per="sample"), full.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(model.reconstruction_error(X, per="timestep"), full.mean(axis=2), rtol=1e-5)
    np.testing.assert_allclose(model.reconstruction_error(X, per="feature"), full.mean(axis=1), rtol=1e-5)
    with pytest.raises(ValueError, match="per must be one of"):
        model.reconstruction_error(X, per="window")


def test_reconstruct_is_in_original_units():
    X = sine_windows(n=48) * 100 + 1000
    model = LSTMAutoencoder(encoder=(16, 8), epochs=10, batch_size=16, random_state=0, progress=False).fit(X)
    assert abs(model.reconstruct(X).mean() - X.mean()) < 20


def test_sklearn_clone_and_pipeline_train():
    X = sine_windows(n=40)
    y = (np.arange(40) % 2).astype(int)
    X[y == 1] *= -1  # the two classes are mirror images
    model = LSTMAutoencoder(encoder=(8, 4), **FAST)
    cloned = clone(model)
    assert cloned.get_params() == model.get_params() and not hasattr(cloned, "module_")
    pipeline = make_pipeline(LSTMAutoencoder(encoder=(8, 4), **FAST), LogisticRegression())
    pipeline.fit(X, y)
    assert pipeline.predict(X).shape == (40,)
    assert pipeline.named_steps["lstmautoencoder"].transform(X).shape == (40, 8 + 4 + 4)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_fits(name):
    X = sine_windows(n=16, length=6)
    if PRESETS[name].params.get("vocab_size"):
        X = np.random.default_rng(0).integers(0, 5, size=(16, 6))  # token ids
    model = LSTMAutoencoder.from_preset(name, epochs=1, batch_size=8, progress=False, random_state=0)
    for key, value in PRESETS[name].params.items():
        assert getattr(model, key) == value
    model.fit(X)
    assert model.reconstruct(X).shape == X.shape


def test_single_layer_preset_has_no_dense_layer_and_decoder_emits_features():
    model = LSTMAutoencoder.from_preset("single_layer", epochs=1, progress=False).fit(sine_windows(n=8))
    assert model.module_.output is None
    assert model.architecture_.decoder == (3,)


@pytest.mark.parametrize("encoding", ["bottleneck", "mean"])
def test_transform_keeps_only_the_encodings_of_each_batch(monkeypatch, encoding):
    """Each batch's encodings own their memory: the bottleneck is a view of the last encoder
    layer's (N, L, Z) outputs, and holding it until all batches are done held L times as much."""
    X = sine_windows(n=40, length=12)
    model = LSTMAutoencoder(encoder=(8, 4), encoding=encoding, **FAST).fit(X)
    many = np.concatenate([X] * 14)  # 560 windows: batches of 512 and 48
    kept = []
    concatenate = np.concatenate
    monkeypatch.setattr(lstmae.estimator.np, "concatenate", lambda parts, *a, **k: kept.extend(parts) or
                        concatenate(parts, *a, **k))
    z = model.transform(many)
    assert [len(part) for part in kept] == [512, 48]
    assert all(part.base is None for part in kept)  # no view of anything larger
    assert z.shape == (560, 4 if encoding == "bottleneck" else 12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_mean_encoding_averages_each_encoder_layer_over_time(bidirectional):
    X = sine_windows(n=16)
    model = LSTMAutoencoder(encoder=(8, 4), bidirectional=bidirectional, **FAST).fit(X)
    z = model.set_params(encoding="bottleneck").transform(X)
    model.set_params(encoding="mean")  # read by transform only: no refit
    pooled = model.transform(X)
    directions = 2 if bidirectional else 1
    assert pooled.shape == (16, (8 + 4) * directions)
    with torch.no_grad():
        first = model.module_.encoder[0](torch.as_tensor(model.scaler_.transform(X), dtype=torch.float32))
        second = model.module_.encoder[1](first)
    np.testing.assert_allclose(pooled[:, : 8 * directions], first.mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pooled[:, 8 * directions:], second.mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)
    # The bottleneck is the last layer's final state: the last step, not the average.
    np.testing.assert_allclose(z[:, :4], second[:, -1, :4].numpy(), rtol=1e-5, atol=1e-6)
    model.set_params(encoding="last")
    with pytest.raises(ValueError, match=r"encoding must be one of \(.*\), got 'last'"):
        model.transform(X)


def test_no_bottleneck_network_has_no_encodings():
    model = LSTMAutoencoder.from_preset("no_bottleneck", encoder=(8, 4), **FAST).fit(sine_windows(n=16))
    with pytest.raises(ValueError, match="no bottleneck"):
        model.transform(sine_windows(n=2))


def test_relu_bidirectional_and_dropout_variants():
    X = sine_windows(n=16)
    model = LSTMAutoencoder(encoder=(8, 4), activation="relu", bidirectional=True, dropout=0.2, **FAST).fit(X)
    assert model.set_params(encoding="bottleneck").transform(X).shape == (16, 8)  # both directions' last states
    np.testing.assert_array_equal(model.transform(X), model.transform(X))  # no dropout at inference


@pytest.mark.parametrize("params, match", [
    (dict(encoder=()), "encoder must be a non-empty tuple"),
    (dict(encoder=(0,)), "sizes must be integers >= 1"),
    (dict(activation="sigmoid"), "activation must be one of"),
    (dict(dropout=1.5), r"dropout must be in \[0, 1\)"),
    (dict(loss="huber"), "loss must be one of"),
    (dict(validation_fraction=1.0), "validation_fraction"),
    (dict(threshold="median"), "threshold"),
    (dict(error_model="cosine"), "error model"),
    (dict(epochs=-1), "epochs must be an integer >= 0"),
    (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(steps_per_epoch=0), "steps_per_epoch must be an integer >= 1 or None"),
    # each of these failed deep in training with Python's own words, or trained without a word (truncated, truthy)
    (dict(epochs=2.5), "epochs must be an integer >= 0 .*, got 2.5"),
    (dict(batch_size=None), "batch_size must be an integer >= 1, got None"),
    (dict(batch_size="32"), "batch_size must be an integer >= 1, got '32'"),
    (dict(steps_per_epoch=1.5), "steps_per_epoch must be an integer >= 1 or None"),
    (dict(validation_fraction="0.1"), r"validation_fraction must be a number in \[0, 1\), got '0.1'"),
    (dict(random_state="abc"), "random_state must be an integer in"),
    (dict(random_state=-1), r"random_state must be an integer in \[0, 2\*\*32 - 1\] or None"),
    (dict(random_state=2**64), r"random_state must be an integer in \[0, 2\*\*32 - 1\] or None"),
    (dict(encoder="8,4"), "encoder must be a non-empty tuple of layer sizes"),
    (dict(encoder=None), "encoder must be a non-empty tuple of layer sizes"),
    (dict(encoder=(8.5, 4)), r"encoder layer sizes must be integers >= 1, got \(8.5, 4\)"),
    (dict(bottleneck="no"), "bottleneck must be True or False, got 'no'"),
    (dict(bidirectional="yes"), "bidirectional must be True or False, got 'yes'"),
    (dict(dropout="0.1"), r"dropout must be in \[0, 1\)"),
    (dict(encoding="last"), "encoding must be one of"),
    # each of these trained, wrongly, without a word: -1 reversed the gradients, 0 trained nothing / stopped at once
    (dict(learning_rate=0), "learning_rate must be a number > 0, got 0"),
    (dict(patience=0), r"patience must be an integer >= 1 .* or None \(no early stopping\), got 0"),
    (dict(patience=2.5), "patience must be an integer >= 1"),
    (dict(max_grad_norm=-1.0), r"max_grad_norm must be a number > 0 or None \(no clipping\), got -1.0"),
    (dict(max_grad_norm=0), "max_grad_norm must be a number > 0"),
])
def test_bad_parameters_fail_at_fit_with_the_fix(params, match):
    with pytest.raises(ValueError, match=match):
        LSTMAutoencoder(**{**FAST, **params}).fit(sine_windows(n=8))


def test_bad_inputs(fitted_small):
    model, _ = fitted_small
    with pytest.raises(DataError, match=r"expected windows of shape \(N, L, F\)"):
        LSTMAutoencoder(**FAST).fit(np.zeros(10))
    with pytest.raises(DataError, match="expected 3 features per timestep, got 2"):
        model.anomaly_score(np.zeros((4, 12, 2)))
    bad = sine_windows(n=8)
    bad[5, 2, 1] = np.nan
    with pytest.raises(DataError, match="sample 5 contains NaN"):
        model.anomaly_score(bad)
    with pytest.raises(ValueError, match="unknown preset"):
        LSTMAutoencoder.from_preset("transformer")


def test_score_series_picks_trained_columns_by_name(fitted_small):
    import pandas as pd

    model, X = fitted_small
    series = np.concatenate(list(X[:3]))
    frame = pd.DataFrame(series, columns=["a", "b", "c"]).assign(other=1.0)[["c", "other", "a", "b"]]
    np.testing.assert_allclose(model.score_series(frame)["score"], model.score_series(series)["score"], equal_nan=True)
    with pytest.raises(DataError, match="missing 'b'"):
        model.score_series(frame.drop(columns="b"))
    scored = model.score_series(frame, feature_errors=True, how="max")
    assert [c for c in scored.columns if c.startswith("error_")] == ["error_a", "error_b", "error_c"]


def test_long_scoring_shows_a_progress_bar_when_asked(fitted_small, monkeypatch):
    import lstmae.estimator as estimator

    model, X = fitted_small
    bars = []

    class Bar:
        def __init__(self, **kwargs):
            self.kwargs, self.done = kwargs, 0
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            self.done += n

    monkeypatch.setattr(estimator, "tqdm", Bar)
    monkeypatch.setattr(estimator, "PROGRESS_MIN_SAMPLES", 10)
    model.set_params(progress=True).anomaly_score(X)
    assert bars[-1].kwargs["disable"] is None and bars[-1].done == len(X)  # tqdm shows it on a terminal
    made = len(bars)
    model.set_params(progress=False).anomaly_score(X)
    assert len(bars) == made  # no bar at all (a streaming row scores one window per call)


def test_feature_names_given_as_one_string_are_refused_at_fit():
    X = np.random.default_rng(0).normal(size=(8, 5, 2)).astype(np.float32)
    model = LSTMAutoencoder(encoder=(4,), epochs=1, progress=False)
    with pytest.raises(DataError, match="feature_names must be a list of 2 names, got 'ab'"):
        model.fit(X, feature_names="ab")  # len("ab") == 2: accepted, and then the model could not be saved


def test_best_f1_without_labels_says_what_it_fitted_instead():
    """It fell back to the default rule silently (calibrate_threshold refuses the same rule without labels)."""
    from conftest import sine_windows

    with pytest.warns(UserWarning, match=r"threshold='best-f1' needs labels, .* the threshold is sigma:2 for now"):
        model = LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0,
                                threshold="best-f1").fit(sine_windows(60))
    assert str(model.threshold_rule_) == "sigma:2"


@pytest.mark.parametrize("value, words", [(np.nan, "is NaN, not finite"), (np.inf, "is inf, not finite"),
                                          (1e300, r"is 1e\+300, beyond float32")])
def test_a_bad_value_in_fit_is_named_by_sample_step_and_feature(value, words):
    """The scaler was fitted on it first, so every sample came out NaN and a clean validation sample was blamed."""
    from conftest import sine_windows

    X = sine_windows(60).astype(np.float64)
    X[3, 2, 1] = value
    with pytest.raises(DataError, match=f"X sample 3, step 2, feature 1 {words}"):
        LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False).fit(X)
    X_val = sine_windows(10)
    X_val[2, 0, 0] = np.nan
    with pytest.raises(DataError, match="X_val sample 2, step 0, feature 0 is NaN"):  # its own index, not X's + 60
        LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False).fit(sine_windows(60), X_val=X_val)


def test_fit_arguments_that_failed_late_or_in_numpy_are_one_line(tmp_path, monkeypatch):
    from conftest import sine_windows
    from lstmae import estimator, load

    X = sine_windows(60)
    small = dict(encoder=(8, 4), epochs=1, progress=False)
    with pytest.raises(DataError, match=r"X_val has samples of shape \(5, 3\), X \(12, 3\)"):  # numpy's concatenate
        LSTMAutoencoder(**small).fit(X, X_val=X[:10, :5])
    with pytest.raises(ValueError, match="on_epoch must be a function"):  # after the first epoch had trained
        LSTMAutoencoder(**small).fit(X, on_epoch=3)
    with pytest.raises(ValueError, match="got 'meta'"):  # Tensor.item() cannot be called on meta tensors
        LSTMAutoencoder(**small, device="meta").fit(X)
    model = LSTMAutoencoder(**small).fit(X)
    model.save(tmp_path / "model")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'"):
        load(tmp_path / "model", device="gpu")

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(estimator, "LSTMAutoencoderModule", no_memory)
    with pytest.raises(ValueError, match=r"too large to allocate .* smaller layer sizes than \{'encoder': \(8, 4\)"):
        LSTMAutoencoder(**small).fit(X)


def test_fit_leaves_the_callers_global_random_generators_alone():
    """fit(random_state=0) reseeded Python's and NumPy's global generators, resetting the caller's own streams."""
    import random

    from conftest import sine_windows

    X = sine_windows(40)
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.random())
    random.seed(123)
    np.random.seed(123)
    first = LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0).fit(X)
    assert (random.random(), np.random.random()) == expected
    second = LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0).fit(X)
    np.testing.assert_array_equal(first.anomaly_score(X), second.anomaly_score(X))  # still reproducible


def test_step_errors_of_another_length_and_paths_that_are_not_paths_are_named(tmp_path):
    from conftest import sine_windows
    from lstmae import load

    X = sine_windows(40)
    model = LSTMAutoencoder(encoder=(8, 4), epochs=1, progress=False, random_state=0).fit(X)
    with pytest.raises(DataError, match="sequence 1 has 5 steps; per-step scores are for windows of the trained "
                                        "length 12"):  # numpy's concatenate error
        model.step_errors([X[0], X[1][:5]])
    with pytest.raises(TypeError, match="path must be a folder path .*got NoneType"):
        model.save(None)
    with pytest.raises(TypeError, match="path must be a model folder's path .*got int"):
        load(3)


def test_training_writes_one_line_per_epoch_where_no_bar_is_drawn(capsys):
    # stderr a log file or a pipe: tqdm draws nothing, and a long fit said nothing until it ended
    X = np.random.default_rng(0).normal(size=(40, 5, 2)).astype(np.float32)
    LSTMAutoencoder(encoder=(4,), epochs=2, patience=None, progress=True).fit(X)
    lines = capsys.readouterr().err.splitlines()
    epochs = [line for line in lines if line.startswith("training: epoch")]
    assert [line.split(",")[0] for line in epochs] == ["training: epoch 1/2", "training: epoch 2/2"]
    assert all(", val_loss " in line and line.endswith("s)") for line in epochs)
    LSTMAutoencoder(encoder=(4,), epochs=2, progress=False).fit(X)
    assert "epoch" not in capsys.readouterr().err


@pytest.mark.parametrize("encoding", ["pooled", "bottleneck", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_feature_names_out_name_every_encoding_column(encoding, bidirectional):
    # without them scikit-learn's set_output(transform="pandas") refused the estimator, and a pipeline had no names
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.random.default_rng(0).normal(size=(20, 6, 2)).astype(np.float32)
    model = LSTMAutoencoder(encoder=(5, 3), epochs=1, encoding=encoding, bidirectional=bidirectional, progress=False)
    names = model.fit(X).get_feature_names_out()
    prefix = "z" if encoding == "bottleneck" else encoding
    assert list(names) == [f"{prefix}_{j}" for j in range(model.transform(X).shape[1])]
    pipeline = make_pipeline(model, StandardScaler()).set_output(transform="pandas")
    assert list(pipeline.fit_transform(X).columns) == list(names)


@pytest.mark.parametrize("params", [{"threshold_floor": 0.9}, {"validation_blocks": 3}, {"smooth": 5}])
def test_series_only_parameters_are_refused_when_fitting_windows(params):
    # fit on windows ignored them: the same threshold and scores as without
    from lstmae.series import fit_series

    X = np.random.default_rng(0).normal(size=(40, 5, 2)).astype(np.float32)
    name = next(iter(params))
    with pytest.raises(ValueError, match=rf"{name}=.* applies to a series' rows: fit it with lstmae.series.fit_series"):
        LSTMAutoencoder(encoder=(4,), epochs=1, progress=False, **params).fit(X)
    series = np.random.default_rng(1).normal(size=(300, 2)).astype(np.float32)
    model = fit_series(LSTMAutoencoder(encoder=(4,), epochs=1, progress=False, **params), series, window=10)
    assert hasattr(model, "module_")  # fit_series reads them


def test_score_is_minus_the_mean_error_so_model_selection_prefers_the_better_reconstruction():
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X = sine_windows(n=64)
    trained = LSTMAutoencoder(encoder=(8, 4), **{**FAST, "epochs": 15}).fit(X)
    assert trained.score(X) == pytest.approx(-trained.reconstruction_error(X).mean())
    untrained = LSTMAutoencoder(encoder=(8, 4), **{**FAST, "epochs": 0}).fit(X)
    assert trained.score(X) > untrained.score(X)
    # no scoring= needed: the held-out folds' reconstruction picks the trained network over the random one
    search = GridSearchCV(LSTMAutoencoder(encoder=(8, 4), **FAST), {"epochs": [0, 15]}, cv=2).fit(X)
    assert search.best_params_ == {"epochs": 15}
    assert np.all(cross_val_score(LSTMAutoencoder(encoder=(8, 4), **FAST), X, cv=2) < 0)
    with pytest.raises(Exception, match="not fitted"):
        LSTMAutoencoder().score(X)


def test_counts_of_one_are_singular_in_messages():
    model = LSTMAutoencoder(encoder=(4,), **{**FAST, "epochs": 1}).fit(sine_windows(n=16, n_features=1))
    with pytest.raises(DataError, match="expected 1 feature per timestep, got 2"):
        model.anomaly_score(np.zeros((2, 12, 2), np.float32))
