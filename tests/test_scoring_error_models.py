import json

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis
from sklearn.covariance import LedoitWolf
from sklearn.exceptions import NotFittedError

from lstmae.exceptions import DataError, ModelFileError
from lstmae.scoring import (
    MahalanobisError,
    MeanError,
    error_model_from_state,
    make_error_model,
    reconstruction_errors,
)


def _windows(n, length, n_features, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, length, n_features))
    return X, X + rng.normal(scale=0.1, size=X.shape)


@pytest.mark.parametrize("kind", ["mse", "mae"])
def test_mean_error_is_the_per_sample_error(kind):
    X, X_hat = _windows(6, 4, 2)
    model = make_error_model(kind).fit(X, X_hat)
    np.testing.assert_allclose(model.score(X, X_hat), reconstruction_errors(X, X_hat, "sample", kind))


def test_window_vectors_flatten_when_small():
    X, X_hat = _windows(3, 4, 2)
    E = MahalanobisError(max_dim=8).window_vectors(X, X_hat)
    np.testing.assert_allclose(E, np.abs(X - X_hat).reshape(3, 8))


def test_window_vectors_per_timestep_when_too_many_dims():
    X, X_hat = _windows(3, 4, 2)
    E = MahalanobisError(max_dim=7).window_vectors(X, X_hat)
    np.testing.assert_allclose(E, np.abs(X - X_hat).mean(axis=2))


def test_window_vectors_average_adjacent_timesteps_down_to_max_dim():
    X = np.zeros((1, 5, 2))
    X_hat = np.arange(10, dtype=float).reshape(1, 5, 2)  # per-timestep means 0.5, 2.5, ..., 8.5
    E = MahalanobisError(max_dim=2).window_vectors(X, X_hat)
    np.testing.assert_allclose(E, [[(0.5 + 2.5 + 4.5) / 3, (6.5 + 8.5) / 2]])


def test_score_is_squared_scipy_mahalanobis_with_ledoit_wolf_covariance():
    X, X_hat = _windows(200, 3, 2)
    model = MahalanobisError().fit(X[:150], X_hat[:150])
    E_fit = np.abs(X[:150] - X_hat[:150]).reshape(150, -1)
    reference = LedoitWolf().fit(E_fit)
    inverse = np.linalg.inv(reference.covariance_)
    E_test = np.abs(X[150:] - X_hat[150:]).reshape(50, -1)
    expected = [mahalanobis(e, reference.location_, inverse) ** 2 for e in E_test]
    np.testing.assert_allclose(model.score(X[150:], X_hat[150:]), expected, rtol=1e-8)


def test_scores_in_chunks_match_one_block(monkeypatch):
    from lstmae.scoring import error_models

    X, X_hat = _windows(50, 3, 2)
    model = MahalanobisError().fit(X, X_hat)
    whole = model.score(X, X_hat)
    monkeypatch.setattr(error_models, "_SCORE_CHUNK_ELEMENTS", 6 * 7)  # 7 rows of D=6 at a time
    np.testing.assert_allclose(model.score(X, X_hat), whole)


def test_singular_covariance_more_dims_than_windows_and_constant_columns():
    rng = np.random.default_rng(1)
    E = rng.random((5, 40))
    E[:, 3] = 0.25  # a constant error column
    model = MahalanobisError().fit_vectors(E)
    scores = model.score_vectors(np.vstack([E, E.mean(axis=0) + 1.0]))
    assert np.all(np.isfinite(scores))
    assert scores[-1] > scores[:5].max()  # a window far from all normal ones scores highest


def test_state_round_trip_gives_identical_scores():
    X, X_hat = _windows(40, 6, 3)
    model = MahalanobisError(max_dim=10).fit(X, X_hat)
    config, arrays = model.get_state()
    config = json.loads(json.dumps(config))
    assert all(a.dtype in (np.float32, np.float64) for a in arrays.values())
    restored = error_model_from_state(config, {k: v.copy() for k, v in arrays.items()})
    assert isinstance(restored, MahalanobisError) and restored.max_dim == 10
    np.testing.assert_array_equal(restored.score(X, X_hat), model.score(X, X_hat))

    mean_model = error_model_from_state(*MeanError("mae").get_state())
    assert isinstance(mean_model, MeanError) and mean_model.name == "mae"


def test_unknown_model_name():
    with pytest.raises(DataError, match="unknown error model 'l2'; use one of mse, mae, mahalanobis, normalized"):
        make_error_model("l2")


def test_bad_max_dim():
    with pytest.raises(DataError, match="max_dim must be an integer >= 1, got 0"):
        MahalanobisError(max_dim=0)


def test_unfitted_mahalanobis():
    X, X_hat = _windows(3, 2, 2)
    with pytest.raises(NotFittedError, match="not fitted"):
        MahalanobisError().score(X, X_hat)
    with pytest.raises(NotFittedError, match="nothing to save"):
        MahalanobisError().get_state()


def test_too_few_windows_to_fit():
    X, X_hat = _windows(1, 2, 2)
    with pytest.raises(DataError, match="needs at least 2 normal windows to fit; got 1"):
        MahalanobisError().fit(X, X_hat)


def test_dimension_mismatch_at_score_time():
    X, X_hat = _windows(10, 3, 2)
    model = MahalanobisError().fit(X, X_hat)
    X2, X2_hat = _windows(4, 4, 2)
    with pytest.raises(DataError, match="have 8 dimensions but the error model was fitted on 6"):
        model.score(X2, X2_hat)


def test_non_finite_errors():
    E = np.ones((4, 2))
    E[2, 1] = np.nan
    with pytest.raises(DataError, match=r"NaN/inf in 1 windows \(first: window 2\)"):
        MahalanobisError().fit_vectors(E)


def test_non_2d_vectors():
    with pytest.raises(DataError, match=r"must be 2-D \(N, D\); got shape \(4,\)"):
        MeanError().score_vectors(np.ones(4))


def test_bad_states():
    with pytest.raises(ModelFileError, match=r"needs arrays 'mean' and 'precision'; got \['mean'\]"):
        MahalanobisError.from_state({"name": "mahalanobis", "max_dim": 4, "shrinkage": 0.1},
                                    {"mean": np.zeros(3)})
    with pytest.raises(ModelFileError, match=r"mean \(3,\) and precision \(2, 2\)"):
        MahalanobisError.from_state({"name": "mahalanobis", "max_dim": 4, "shrinkage": 0.1},
                                    {"mean": np.zeros(3), "precision": np.eye(2)})
    with pytest.raises(ModelFileError, match="unknown error model 'foo' in the saved state"):
        error_model_from_state({"name": "foo"}, {})


# ------------------------------------------------------------------ normalized
from lstmae.scoring.error_models import NormalizedError  # noqa: E402


def test_normalized_vectors_are_per_feature_mean_absolute_errors():
    X, X_hat = _windows(5, 4, 3)
    np.testing.assert_allclose(NormalizedError().window_vectors(X, X_hat), np.abs(X - X_hat).mean(axis=1))


def test_normalized_score_is_the_mean_robust_z_by_hand():
    E = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])  # medians 2, 20; MADs 1, 10
    model = NormalizedError().fit_vectors(E)
    np.testing.assert_allclose(model.median_, [2.0, 20.0])
    np.testing.assert_allclose(model.scale_, [1.4826, 14.826])
    z = np.array([(5.0 - 2.0) / 1.4826, (20.0 - 20.0) / 14.826])
    np.testing.assert_allclose(model.score_vectors([[5.0, 20.0]]), [z.mean()])
    np.testing.assert_allclose(NormalizedError(reduce="max").fit_vectors(E).score_vectors([[5.0, 20.0]]), [z.max()])


def test_normalized_a_high_variance_feature_does_not_swamp_the_others():
    # Feature 1's errors are 100x larger and noisier; a jump of 10 of its own MADs in feature 0
    # must outrank the largest normal excursion of feature 1, which the mean absolute error misses.
    rng = np.random.default_rng(0)
    E = np.abs(rng.normal(size=(500, 2)) * [0.2, 20.0])
    test = np.array([[0.2 + 2.0, 14.0], [0.2, E[:, 1].max()]])
    scores = NormalizedError().fit_vectors(E).score_vectors(test)
    assert scores[0] > scores[1]
    mae = MeanError("mae").score_vectors(test.mean(axis=1, keepdims=True))
    assert mae[0] < mae[1]


def test_normalized_scales_are_at_least_min_scale():
    rng = np.random.default_rng(1)
    # feature 2 never errs, feature 3 errs a little (a flag that rarely switches), feature 0 is ordinary
    E = np.column_stack([rng.random(200), rng.random(200) * 2, np.zeros(200), rng.random(200) * 1e-3])
    model = NormalizedError().fit_vectors(E)
    assert model.scale_[0] > 0.1 and model.scale_[1] > 0.1
    np.testing.assert_array_equal(model.scale_[2:], [0.1, 0.1])  # in scaled units: a tenth of a standard deviation
    # a small error of the quiet features (0.05 scaled units) no longer outranks a large one of feature 0
    quiet, loud = np.array([[0.5, 1.0, 0.05, 0.05]]), np.array([[3.0, 1.0, 0.0, 0.0]])
    for reduce in ("mean", "max"):
        fitted = NormalizedError(reduce=reduce).fit_vectors(E)
        assert fitted.score_vectors(loud)[0] > fitted.score_vectors(quiet)[0]
    assert np.isfinite(model.score_vectors(E + 1.0)).all()
    np.testing.assert_allclose(NormalizedError(min_scale=0.5).fit_vectors(np.zeros((5, 2))).scale_, [0.5, 0.5])


def test_normalized_with_one_feature_ranks_as_mae():
    X, X_hat = _windows(60, 5, 1)
    normalized = NormalizedError().fit(X[:40], X_hat[:40]).score(X[40:], X_hat[40:])
    mae = MeanError("mae").score(X[40:], X_hat[40:])
    np.testing.assert_array_equal(np.argsort(normalized), np.argsort(mae))


def test_normalized_state_round_trip_and_factory():
    X, X_hat = _windows(30, 4, 3)
    model = make_error_model("normalized").fit(X, X_hat)
    assert isinstance(model, NormalizedError) and model.reduce == "mean"
    config, arrays = model.get_state()
    restored = error_model_from_state(json.loads(json.dumps(config)), {k: v.copy() for k, v in arrays.items()})
    assert isinstance(restored, NormalizedError)
    np.testing.assert_array_equal(restored.score(X, X_hat), model.score(X, X_hat))
    maximum = error_model_from_state(*NormalizedError(reduce="max").fit(X, X_hat).get_state())
    assert maximum.reduce == "max"


def test_normalized_is_a_config_choice():
    from lstmae.config import ERROR_MODEL_CHOICES

    assert {"normalized", "normalized-max"} <= set(ERROR_MODEL_CHOICES)


def test_normalized_max_scores_the_largest_robust_z():
    X, X_hat = _windows(30, 4, 3)
    by_name = make_error_model("normalized-max").fit(X, X_hat)
    mean = make_error_model("normalized").fit(X, X_hat)
    assert by_name.reduce == "max"
    z = (by_name.window_vectors(X, X_hat) - by_name.median_) / by_name.scale_
    np.testing.assert_allclose(by_name.score(X, X_hat), z.max(axis=1))
    np.testing.assert_allclose(mean.score(X, X_hat), z.mean(axis=1))


def test_normalized_errors():
    with pytest.raises(DataError, match="unknown reduce 'median'"):
        NormalizedError(reduce="median")
    for bad in (0, -1.0, np.inf, np.nan, "0.1", True):
        with pytest.raises(DataError, match="min_scale must be a finite number > 0"):
            NormalizedError(min_scale=bad)
    with pytest.raises(DataError, match="needs at least 2 normal windows to fit; got 1"):
        NormalizedError().fit_vectors(np.ones((1, 3)))
    X, X_hat = _windows(3, 2, 2)
    with pytest.raises(NotFittedError, match="not fitted"):
        NormalizedError().score(X, X_hat)
    with pytest.raises(NotFittedError, match="nothing to save"):
        NormalizedError().get_state()
    model = NormalizedError().fit_vectors(np.random.default_rng(0).random((10, 2)))
    with pytest.raises(DataError, match="have 3 dimensions but the error model was fitted on 2"):
        model.score_vectors(np.ones((2, 3)))


def test_normalized_bad_states():
    config = {"name": "normalized", "reduce": "mean", "min_scale": 0.1}
    with pytest.raises(ModelFileError, match=r"needs arrays 'median' and 'scale'; got \['median'\]"):
        NormalizedError.from_state(config, {"median": np.zeros(2)})
    with pytest.raises(ModelFileError, match="scales > 0: the model files are corrupt"):
        NormalizedError.from_state(config, {"median": np.zeros(2), "scale": np.array([1.0, 0.0])})
    with pytest.raises(ModelFileError, match=r"median \(2,\) and scale \(3,\)"):
        NormalizedError.from_state(config, {"median": np.zeros(2), "scale": np.ones(3)})
    with pytest.raises(ModelFileError, match="unknown reduce 'sum'"):
        NormalizedError.from_state({**config, "reduce": "sum"}, {"median": np.zeros(2), "scale": np.ones(2)})
    with pytest.raises(ModelFileError, match="min_scale must be a finite number > 0; got -1"):
        NormalizedError.from_state({**config, "min_scale": -1}, {"median": np.zeros(2), "scale": np.ones(2)})
    # a model saved before min_scale ("floor", relative) loads with its stored scales and refits with min_scale
    old = NormalizedError.from_state({"name": "normalized", "reduce": "max", "floor": 0.01},
                                     {"median": np.zeros(2), "scale": np.array([0.01, 1.0])})
    np.testing.assert_array_equal(old.scale_, [0.01, 1.0])
    assert old.min_scale == 0.1 and old.fit_vectors(np.zeros((3, 2))).scale_.tolist() == [0.1, 0.1]


def test_normalized_leaves_the_features_it_does_not_score_out_of_the_score_and_keeps_the_mask():
    rng = np.random.default_rng(0)
    E = rng.random((40, 3))
    masked = NormalizedError(reduce="max", scored=[True, False, True]).fit_vectors(E)
    whole = NormalizedError(reduce="max").fit_vectors(E)
    burst = E[:5].copy()
    burst[:, 1] += 100.0  # only the unscored feature's error bursts
    np.testing.assert_array_equal(masked.score_vectors(burst), masked.score_vectors(E[:5]))
    assert (whole.score_vectors(burst) > 100).all()
    config, arrays = masked.get_state()
    assert arrays["scored"].tolist() == [1, 0, 1] and "scored" not in whole.get_state()[1]
    restored = error_model_from_state(json.loads(json.dumps(config)), {k: v.copy() for k, v in arrays.items()})
    np.testing.assert_array_equal(restored.score_vectors(burst), masked.score_vectors(burst))
    assert restored.scored.tolist() == [True, False, True]


def test_normalized_refuses_a_mask_that_scores_nothing_or_does_not_fit():
    with pytest.raises(DataError, match="at least one True"):
        NormalizedError(scored=[False, False])
    with pytest.raises(DataError, match="scored names 2 features but the error vectors have 3"):
        NormalizedError(scored=[True, False]).fit_vectors(np.ones((4, 3)))
    state = {"median": np.zeros(2), "scale": np.ones(2)}
    for bad in (np.array([1, 0, 1], np.uint8), np.array([2, 1], np.uint8)):
        with pytest.raises(ModelFileError, match="'scored' mask .* the model files are corrupt"):
            NormalizedError.from_state({"name": "normalized"}, {**state, "scored": bad})
    with pytest.raises(ModelFileError, match="at least one True"):
        NormalizedError.from_state({"name": "normalized"}, {**state, "scored": np.zeros(2, np.uint8)})


@pytest.mark.parametrize("name", ["mse", "mae", "mahalanobis", "normalized", "normalized-max"])
def test_spec_names_what_make_error_model_builds(name):
    assert make_error_model(name).spec == name
