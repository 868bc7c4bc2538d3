"""Encodings as classifier features: what each `encoding` returns, and choosing one by labels."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lstmae import LSTMAutoencoder
from lstmae.config import DEFAULTS, ENCODINGS

from conftest import sine_windows, two_class_series

FAST = dict(epochs=2, batch_size=16, progress=False, random_state=0)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny LSTMs on 2 shared threads spend their time in OpenMP barriers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def encoder_states(model, X):
    """Each encoder layer's hidden states (N, L, H*dirs) for X, computed layer by layer here."""
    states, x = [], torch.as_tensor(model.scaler_.transform(X), dtype=torch.float32)
    with torch.no_grad():
        for layer in model.module_.encoder:
            x = layer(x)
            states.append(x.numpy())
    return states


@pytest.mark.parametrize("bidirectional", [False, True])
def test_each_encoding_is_the_documented_statistic_of_the_encoder_states(bidirectional):
    X = sine_windows(n=16)
    model = LSTMAutoencoder(encoder=(8, 4), bidirectional=bidirectional, **FAST).fit(X)
    first, second = encoder_states(model, X)
    got = {encoding: model.set_params(encoding=encoding).transform(X) for encoding in ENCODINGS}
    d = 2 if bidirectional else 1
    z = np.concatenate([second[:, -1, :4], second[:, 0, 4:]], axis=1) if bidirectional else second[:, -1]
    expected = {"bottleneck": z,
                "mean": np.concatenate([first.mean(axis=1), second.mean(axis=1)], axis=1),
                "max": np.concatenate([first.max(axis=1), second.max(axis=1)], axis=1),
                "pooled": np.concatenate([first.mean(axis=1), second.mean(axis=1), second.max(axis=1)], axis=1)}
    assert set(got) == set(expected)
    for encoding, values in expected.items():
        np.testing.assert_allclose(got[encoding], values, rtol=1e-5, atol=1e-6, err_msg=encoding)
    assert got["pooled"].shape == (16, (8 + 4 + 4) * d)


def test_pooled_statistics_leave_the_padding_of_shorter_sequences_out():
    X = sine_windows(n=6, length=12)
    model = LSTMAutoencoder(encoder=(6, 3), encoding="pooled", **FAST).fit(X)
    ragged = [X[0][:5], X[1], X[2][:9]]  # padded to 12 steps in one batch
    together = model.transform(ragged)
    alone = np.concatenate([model.transform(X[i : i + 1, :n]) for i, n in ((0, 5), (1, 12), (2, 9))])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_an_unknown_encoding_is_refused_naming_the_choices():
    X = sine_windows(n=8)
    model = LSTMAutoencoder(encoder=(4,), **FAST).fit(X)
    model.set_params(encoding="last")
    with pytest.raises(ValueError, match=r"encoding must be one of \(.*'pooled'.*\), got 'last'"):
        model.transform(X)
    with pytest.raises(ValueError, match="encoding must be one of"):
        LSTMAutoencoder(encoding="last", **FAST).fit(X)


def test_the_default_encoding_is_pooled_states():
    X = sine_windows(n=8)
    model = LSTMAutoencoder(encoder=(6, 3), **FAST).fit(X)
    assert DEFAULTS["encoding"] == model.encoding == "pooled"
    assert model.transform(X).shape == (8, 6 + 3 + 3)


def test_grid_search_chooses_encoding_and_size_by_labels_as_the_readme_says():
    """The README recipe: an unsupervised LSTMAutoencoder inside a scikit-learn pipeline, its
    `encoding` and `encoder` chosen by cross-validated accuracy; the autoencoder never sees y."""
    X, y = two_class_series()
    pipeline = make_pipeline(LSTMAutoencoder(**FAST), StandardScaler(), LogisticRegression(max_iter=1000))
    grid = {"lstmautoencoder__encoding": ["bottleneck", "pooled"], "lstmautoencoder__encoder": [(8,), (8, 4)]}
    search = GridSearchCV(pipeline, grid, cv=StratifiedKFold(2, shuffle=True, random_state=0)).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    best = search.best_params_
    assert search.best_estimator_[0].encoding == best["lstmautoencoder__encoding"]
    assert search.best_estimator_[0].encoder == best["lstmautoencoder__encoder"]
    assert search.best_score_ == max(search.cv_results_["mean_test_score"])
    assert search.score(X, y) >= 0.9  # rising vs falling is easy
    assert set(search.predict(X[:4])) <= {"up", "down"}
