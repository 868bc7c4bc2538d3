"""FeatureScaler: stable spreads, constant features, and refusing corrupt stored statistics."""

import numpy as np
import pytest

from lstmae.data.scaling import FeatureScaler
from lstmae.exceptions import ModelFileError


def constant_and_noise(n=400, length=25, seed=0):
    """(N, L, 2) float32: feature 0 constant at -0.032 (as an MSL channel), feature 1 noise."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, length, 2), np.float32)
    X[..., 0] = -0.032
    X[..., 1] = rng.normal(size=(n, length))
    return X


def test_a_constant_column_gets_scale_one_and_is_marked_constant():
    X = constant_and_noise()
    scaler = FeatureScaler.fit(X, chunk=64)
    assert scaler.constant.tolist() == [True, False]
    assert scaler.scale[0] == 1.0
    np.testing.assert_allclose(scaler.offset[0], np.float32(-0.032), rtol=1e-12)
    moved = X[:1].copy()
    moved[..., 0] += np.float32(0.032)  # the channel moves by its own magnitude
    scaled = scaler.transform(moved)[..., 0]
    np.testing.assert_allclose(scaled, 0.032, rtol=1e-5)  # not ~1e8 as with E[x^2] - E[x]^2


@pytest.mark.parametrize("method", ["standard", "minmax"])
def test_a_spread_of_rounding_noise_counts_as_constant(method):
    base = np.float32(1234.5678)
    X = np.full((100, 10, 1), base, np.float32)
    X[::2, :, 0] = np.nextafter(base, np.float32(np.inf))  # one float32 ulp apart
    scaler = FeatureScaler.fit(X, method)
    assert scaler.constant.tolist() == [True] and scaler.scale.tolist() == [1.0]


@pytest.mark.parametrize("method", ["standard", "minmax"])
def test_tiny_units_are_not_constant_scaling_does_not_depend_on_the_unit(method):
    # a feature in units that make it ~1e-7 was once taken for constant (scale 1): its changes vanished
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 10, 2))
    ones, tiny = FeatureScaler.fit(X, method), FeatureScaler.fit(X * 1e-7, method)
    assert not tiny.constant.any()
    np.testing.assert_allclose(tiny.transform(X[:3] * 1e-7), ones.transform(X[:3]), rtol=1e-4, atol=1e-5)
    zeros = FeatureScaler.fit(np.zeros((5, 4, 1)), method)
    assert zeros.constant.tolist() == [True] and zeros.scale.tolist() == [1.0]


def test_large_mean_with_a_real_small_spread_keeps_that_spread():
    rng = np.random.default_rng(1)
    X = (1e6 + rng.normal(scale=10.0, size=(300, 20, 1))).astype(np.float64)
    scaler = FeatureScaler.fit(X, chunk=7)
    flat = X.reshape(-1, 1)
    np.testing.assert_allclose(scaler.scale, flat.std(axis=0), rtol=1e-9)
    np.testing.assert_allclose(scaler.offset, flat.mean(axis=0), rtol=1e-12)
    assert not scaler.constant.any()


def test_chunked_statistics_do_not_depend_on_the_chunk_size():
    X = constant_and_noise(n=101, length=3, seed=2)
    whole = FeatureScaler.fit(X, chunk=1000)
    for chunk in (1, 3, 50):
        parts = FeatureScaler.fit(X, chunk=chunk)
        np.testing.assert_allclose(parts.offset, whole.offset, rtol=1e-12)
        np.testing.assert_allclose(parts.scale, whole.scale, rtol=1e-10)


def test_minmax_range_and_the_none_method():
    X = np.stack([np.linspace(-2, 6, 40), np.full(40, 3.0)], axis=-1)[None]  # (1, 40, 2)
    scaler = FeatureScaler.fit(X, "minmax")
    np.testing.assert_allclose(scaler.offset, [-2.0, 3.0])
    np.testing.assert_allclose(scaler.scale, [8.0, 1.0])
    assert scaler.constant.tolist() == [False, True]
    none = FeatureScaler.fit(X, "none")
    np.testing.assert_array_equal(none.scale, [1.0, 1.0])
    np.testing.assert_array_equal(none.offset, [0.0, 0.0])


def test_fit_refuses_unknown_methods_and_empty_data():
    with pytest.raises(ValueError, match="scaler must be one of"):
        FeatureScaler.fit(np.zeros((2, 2, 1)), "robust")
    with pytest.raises(ValueError, match="no timesteps"):
        FeatureScaler.fit(np.zeros((0, 3, 1)))


def test_dict_round_trip_keeps_the_constant_mask():
    scaler = FeatureScaler.fit(constant_and_noise())
    again = FeatureScaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.offset, scaler.offset)
    np.testing.assert_array_equal(again.scale, scaler.scale)
    assert again.constant.tolist() == [True, False] and again.method == "standard"


def test_from_dict_without_constant_loads_as_before():
    scaler = FeatureScaler.from_dict({"method": "standard", "offset": [0.5, 1.0], "scale": [2.0, 3.0]})
    assert scaler.constant.tolist() == [False, False]
    assert FeatureScaler(np.zeros(2), np.ones(2), "none").constant.tolist() == [False, False]


GOOD = {"method": "standard", "offset": [0.0, 1.0], "scale": [1.0, 2.0], "constant": [False, False]}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"scale": [1.0, float("nan")]}, "scale of feature 2 is nan"),
        ({"scale": [float("inf"), 1.0]}, "scale of feature 1 is inf"),
        ({"scale": [0.0, 1.0]}, "scale of feature 1 is 0.0; scales must be finite and positive"),
        ({"scale": [1.0, -2.0]}, "scale of feature 2 is -2.0"),
        ({"offset": [float("nan"), 1.0]}, "offset of feature 1 is nan; offsets must be finite"),
        ({"offset": [0.0, float("-inf")]}, "offset of feature 2 is -inf"),
        # finite as JSON, not in the float32 the model computes in: every value scored became inf, blamed on the data
        ({"offset": [1e39, 0.0]}, r"offset of feature 1 is 1e\+39; offsets must be finite, within float32"),
        ({"scale": [1.0, 1e-45]}, r"scale of feature 2 is 1e-45; scales must be finite and positive, within float32"),
        ({"scale": [1e39, 1.0]}, "scale of feature 1 is 1e"),
        ({"scale": [1.0]}, r"offset has shape \(2,\) and scale \(1,\)"),
        ({"scale": ["a", "b"]}, "not lists of numbers"),
        ({"method": "robust"}, "scaler method 'robust' is not one of"),
        ({"constant": [1, 0]}, "'constant' must be 2 true/false values"),
        ({"constant": [True]}, "'constant' must be 2 true/false values"),
    ],
)
def test_from_dict_refuses_corrupt_statistics(change, match):
    with pytest.raises(ModelFileError, match=f"corrupt model: .*{match}"):
        FeatureScaler.from_dict({**GOOD, **change})


def test_from_dict_refuses_missing_keys_and_non_mappings():
    with pytest.raises(ModelFileError, match="corrupt model: the scaler has no 'scale'"):
        FeatureScaler.from_dict({"method": "standard", "offset": [0.0]})
    with pytest.raises(ModelFileError, match="corrupt model: the scaler is list, not a mapping"):
        FeatureScaler.from_dict([1, 2])


@pytest.mark.parametrize("error_model", ["mae", "auto"])
def test_a_model_scores_a_moved_constant_channel_finitely_and_modestly(error_model):
    """The MSL case end to end: a channel constant at -0.032 in training moves by 0.032. The raw error
    stays modest; the default (normalized-max) measures each feature on its own normal scale, so a
    channel that never moved in training scores far above the threshold, but finitely."""
    from lstmae import LSTMAutoencoder

    X = constant_and_noise(n=64, length=8)
    X[..., 1] = np.sin(np.arange(8) * 0.7)[None, :] + 0.05 * X[..., 1]
    model = LSTMAutoencoder(encoder=(8, 4), epochs=3, batch_size=32, error_model=error_model, random_state=0,
                            progress=False)
    model.fit(X)
    moved = X[:4].copy()
    moved[..., 0] += np.float32(0.032)
    scores = model.anomaly_score(moved)
    assert np.isfinite(scores).all()
    assert np.isfinite(model.threshold_) and abs(model.threshold_) < 1e6
    if error_model == "mae":
        assert np.abs(scores).max() < 1e3 * max(1.0, np.abs(model.anomaly_score(X[:4])).max())
    else:
        assert (scores > model.threshold_).all()
