"""The LSTM autoencoder variants: EncDec-AD decoder, token sequences, variable lengths, summary, save/load."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from lstmae import LSTMAutoencoder, load
from lstmae.cli.main import cli
from lstmae.config import make_architecture
from lstmae.exceptions import DataError
from lstmae.nn.model import LSTMAutoencoderModule, reverse_steps
from lstmae.training.loop import device_batches, reconstruction_loss

from conftest import sine_windows

FAST = dict(epochs=1, batch_size=8, progress=False, random_state=0)


def keras_lstm_params(inputs, units):
    return 4 * units * (inputs + units + 1)  # Keras: one bias per gate


def torch_lstm_params(inputs, units):
    return 4 * units * (inputs + units + 2)  # nn.LSTM: two bias vectors


def varied_sequences(n=12, n_features=2, seed=0, low=3, high=15):
    """n smooth sequences (L_i, F) of different lengths in [low, high)."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(n):
        t = np.arange(rng.integers(low, high))[:, None]
        phase = rng.uniform(0, 2 * np.pi)
        sequences.append(np.sin(0.4 * t * np.arange(1, n_features + 1) + phase).astype(np.float32))
    return sequences


def pattern_tokens(n=90, length=8, seed=0):
    """A toy language: cycles of 0 1 2 3, 4 5 6 or 7 8, each starting at a random phase."""
    rng = np.random.default_rng(seed)
    patterns = [(0, 1, 2, 3), (4, 5, 6), (7, 8)]
    rows = []
    for _ in range(n):
        pattern = patterns[rng.integers(len(patterns))]
        phase = rng.integers(len(pattern))
        rows.append([pattern[(phase + t) % len(pattern)] for t in range(length)])
    return np.array(rows)


# ------------------------------------------------------------------------------ EncDec-AD
@pytest.fixture
def encdec_module():
    torch.manual_seed(0)
    return LSTMAutoencoderModule(make_architecture(2, encoder=(8,), decoder_type="encdec_ad"))


def test_encdec_ad_training_and_inference_differ_only_by_teacher_forcing(encdec_module):
    x = torch.randn(4, 6, 2)
    encdec_module.train()
    forced = encdec_module(x)
    free_in_training_mode = encdec_module(x, teacher_forcing=False)
    encdec_module.eval()
    free = encdec_module(x)
    torch.testing.assert_close(free_in_training_mode, free, rtol=0, atol=0)
    assert not torch.allclose(forced[:, :-1], free[:, :-1])
    # x'(L) comes from the encoder state alone, before any input is fed.
    torch.testing.assert_close(forced[:, -1], free[:, -1])
    # Inference is teacher forcing with its own outputs as the "true" values.
    state = encdec_module._encoder_final_state(x, None)
    fed_own_outputs = encdec_module._encdec_ad_decode(state, free, None, teacher_forcing=True)
    torch.testing.assert_close(fed_own_outputs, free, rtol=1e-5, atol=1e-6)
    # Without teacher forcing the decoder never sees the true values.
    other = encdec_module._encdec_ad_decode(state, torch.randn(4, 6, 2), None, teacher_forcing=False)
    torch.testing.assert_close(other, free)


def test_encdec_ad_decodes_the_same_through_the_fast_scoring_layers(encdec_module):
    """Without gradients the tanh layers run fast_lstm, the step-by-step decoder included."""
    x = torch.randn(4, 6, 2)
    encdec_module.eval()
    expected = encdec_module(x)  # gradients enabled: nn.LSTM
    with torch.inference_mode():
        got = encdec_module(x)
    torch.testing.assert_close(got, expected.detach(), rtol=1e-5, atol=1e-6)


def test_encdec_ad_reconstructs_in_reverse_and_returns_time_order(encdec_module):
    # x'(t) is decoded from x(t+1) .. x(L): changing x(k) may change x'(t) only for t < k.
    x = torch.randn(3, 7, 2)
    state = encdec_module._encoder_final_state(x, None)
    before = encdec_module._encdec_ad_decode(state, x, None, teacher_forcing=True)
    k = 4
    changed = x.clone()
    changed[:, k] += 1.0
    after = encdec_module._encdec_ad_decode(state, changed, None, teacher_forcing=True)
    torch.testing.assert_close(after[:, k:], before[:, k:], rtol=0, atol=0)
    assert (after[:, :k] - before[:, :k]).abs().amax(dim=(0, 2)).min() > 0
    torch.testing.assert_close(before[:, -1], encdec_module.output(state[0]))


def test_reverse_steps_reverses_each_sample_within_its_length():
    x = torch.arange(10.0).reshape(2, 5, 1)
    lengths = torch.tensor([5, 3])
    expected = torch.tensor([[4.0, 3, 2, 1, 0], [7, 6, 5, 8, 9]]).unsqueeze(2)
    torch.testing.assert_close(reverse_steps(x, lengths), expected)
    torch.testing.assert_close(reverse_steps(reverse_steps(x, lengths), lengths), x)


def test_encdec_ad_preset_learns_sine_windows_in_time_order():
    X = sine_windows(n=48, length=8, n_features=1)
    model = LSTMAutoencoder.from_preset("encdec_ad", encoder=(16,), epochs=15, learning_rate=1e-2, batch_size=16,
                                        progress=False, random_state=0).fit(X)
    assert model.module_.decoder[0].hidden_size == 16 and model.architecture_.decoder == (16,)
    reconstruction = model.reconstruct(X)
    error = np.mean((reconstruction - X) ** 2)
    assert error < 0.2 * X.var()
    assert error < 0.2 * np.mean((reconstruction - X[:, ::-1]) ** 2)  # not returned reversed
    assert model.transform(X).shape == (48, 16 + 16)  # default pooled: the layer's mean, then its max


# ------------------------------------------------------------------------------ tokens
@pytest.fixture(scope="module")
def token_model():
    tokens = pattern_tokens(n=64)
    model = LSTMAutoencoder.from_preset("token_autoencoder", encoder=(32,), embedding_dim=16, epochs=35, patience=None,
                                        learning_rate=1e-2, batch_size=8, validation_fraction=0.2,
                                        progress=False, random_state=0)
    return model.fit(tokens), tokens


def test_token_model_learns_a_toy_language(token_model):
    model, tokens = token_model
    assert model.architecture_.vocab_size == 9  # "auto": largest id + 1
    fresh = pattern_tokens(n=30, seed=1)
    reconstruction = model.reconstruct(fresh)
    assert reconstruction.shape == fresh.shape and reconstruction.dtype == np.int64
    assert (reconstruction == fresh).mean() > 0.9
    off_pattern = np.random.default_rng(2).integers(0, 9, size=(10, 8))
    assert model.anomaly_score(off_pattern).min() > model.anomaly_score(fresh).max()
    assert model.predict(off_pattern).mean() > model.predict(fresh).mean()
    assert model.transform(fresh).shape == (30, 32 + 32)


def test_token_score_is_the_mean_token_cross_entropy(token_model):
    model, tokens = token_model
    sample = tokens[:5]
    with torch.no_grad():
        logits = model.module_.eval()(torch.from_numpy(sample))
    log_probabilities = torch.log_softmax(logits, dim=-1).numpy()
    by_hand = -np.take_along_axis(log_probabilities, sample[:, :, None], axis=2)[:, :, 0]
    np.testing.assert_allclose(model.reconstruction_error(sample, per="timestep"), by_hand, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.anomaly_score(sample), by_hand.mean(axis=1), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one error per token"):
        model.reconstruction_error(sample, per="feature")


def test_token_models_accept_lists_of_different_lengths(token_model):
    model, tokens = token_model
    sequences = [tokens[0, :5], tokens[1], tokens[2, :3]]
    reconstruction = model.reconstruct(sequences)
    assert [r.shape for r in reconstruction] == [(5,), (8,), (3,)]
    np.testing.assert_allclose(model.anomaly_score(sequences)[1], model.anomaly_score(tokens[1:2])[0], rtol=1e-5)


@pytest.mark.parametrize("ids, match", [
    (np.array([[0, 1, 2], [3, -1, 0]]), r"sample 1, position 1: token id -1 is not an integer id in \[0, 9\)"),
    (np.array([[0, 1, 9]]), r"sample 0, position 2: token id 9 is not an integer id in \[0, 9\)"),
    (np.array([[0, 1.5, 2]]), r"sample 0, position 1: token id 1.5 is not an integer id"),
    ([np.array([0, 1]), np.array([2, 3, 12])], r"sequence 1, position 2: token id 12 is not an integer id"),
    (np.array([["a", "b"]]), "expected integer token ids, got dtype <U1"),
    (np.zeros((2, 3, 2), dtype=int), r"expected token ids of shape \(N, L\)"),
])
def test_bad_token_ids_name_the_sample_position_and_value(token_model, ids, match):
    model, _ = token_model
    with pytest.raises(DataError, match=match):
        model.anomaly_score(ids)


def test_integral_floats_are_token_ids_and_auto_vocab_needs_non_negative_ids():
    model = LSTMAutoencoder(vocab_size=4, encoder=(4,), embedding_dim=2, **FAST).fit(np.array([[0.0, 1, 2, 3]] * 4))
    assert model.reconstruct(np.array([[3.0, 2, 1, 0]])).dtype == np.int64
    np.testing.assert_array_equal(model.anomaly_score(np.array([[[3], [2], [1], [0]]])),
                                  model.anomaly_score(np.array([[3, 2, 1, 0]])))  # (N, L, 1) as the CLI reads it
    with pytest.raises(DataError, match=r"sample 0, position 0: token id -2 is not a non-negative integer id"):
        LSTMAutoencoder(vocab_size="auto", **FAST).fit(np.array([[-2, 1]] * 4))


@pytest.mark.parametrize("params, match", [
    (dict(vocab_size=1), "vocab_size must be None, 'auto' or an integer >= 2"),
    (dict(vocab_size=5, embedding_dim=0), "embedding_dim must be an integer >= 1"),
    (dict(vocab_size=5, output_layer=False), "need output_layer=True"),
    (dict(decoder_type="attention"), "decoder_type must be one of"),
    (dict(decoder_type="encdec_ad", decoder=(8,)), "leave decoder=None"),
    (dict(decoder_type="encdec_ad", bottleneck=False), "bottleneck=True"),
])
def test_bad_variant_parameters_fail_at_fit_with_the_fix(params, match):
    with pytest.raises(ValueError, match=match):
        LSTMAutoencoder(**{**FAST, **params}).fit(np.zeros((4, 3), dtype=int))


# ------------------------------------------------------------------------------ variable lengths
@pytest.mark.parametrize("params", [
    dict(activation="tanh"),
    dict(activation="relu"),
    dict(activation="relu", bidirectional=True),
    dict(activation="tanh", bidirectional=True),
    dict(activation="relu", decoder_type="encdec_ad", encoder=(6,)),
])
def test_variable_length_results_do_not_depend_on_the_padding(params):
    sequences = varied_sequences()
    model = LSTMAutoencoder(**{"encoder": (8, 4), **FAST, **params}).fit(sequences)
    short = sequences[0][:4]
    longer = varied_sequences(n=3, seed=1, low=30, high=40)
    batch = [longer[0], short, longer[1], longer[2]]
    np.testing.assert_allclose(model.transform(batch)[1], model.transform([short])[0], rtol=1e-5, atol=1e-5)
    model.set_params(encoding="mean")
    np.testing.assert_allclose(model.transform(batch)[1], model.transform([short])[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.anomaly_score(batch)[1], model.anomaly_score([short])[0], rtol=1e-5, atol=1e-6)
    reconstructions = model.reconstruct(batch)
    assert [r.shape for r in reconstructions] == [(len(s), 2) for s in batch]
    np.testing.assert_allclose(reconstructions[1], model.reconstruct([short])[0], rtol=1e-5, atol=1e-5)
    errors = model.reconstruction_error(batch, per="timestep")
    assert [len(e) for e in errors] == [len(s) for s in batch]
    np.testing.assert_allclose(model.reconstruction_error(batch), [e.mean() for e in errors], rtol=1e-5)
    assert model.predict(batch).shape == (4,)


@pytest.mark.parametrize("kind", ["mse", "mae", "cross_entropy"])
def test_padded_positions_do_not_change_the_loss(kind):
    torch.manual_seed(0)
    tokens = kind == "cross_entropy"
    arch = make_architecture(2, encoder=(6,), vocab_size=7 if tokens else None, embedding_dim=3)
    module = LSTMAutoencoderModule(arch).eval()
    if tokens:
        samples = [np.random.default_rng(i).integers(0, 7, size=n) for i, n in enumerate((3, 9, 5))]
        scaler = None
    else:
        samples = varied_sequences(n=3)
        from lstmae.data.scaling import FeatureScaler

        scaler = FeatureScaler(np.zeros(2), np.ones(2), "none")
    transform = None if scaler is None else scaler.transform
    (batch, lengths), = device_batches(samples, np.arange(3), 8, torch.device("cpu"), transform=transform, tokens=tokens)
    assert lengths.tolist() == [len(s) for s in samples]
    with torch.no_grad():
        padded_loss = reconstruction_loss(module(batch, lengths), batch, kind, lengths).item()
        alone = []
        for i in range(3):
            (single, _), = device_batches(samples, np.array([i]), 8, torch.device("cpu"), transform=transform,
                                          tokens=tokens)
            alone.append(reconstruction_loss(module(single), single, kind).item())
    # The loss is the mean over the batch's valid steps: per-sample means weighted by length.
    expected = np.average(alone, weights=lengths.numpy())
    assert padded_loss == pytest.approx(expected, rel=1e-5)


def test_a_list_of_equal_lengths_scores_as_the_array():
    X = sine_windows(n=16, length=8)
    model = LSTMAutoencoder(encoder=(8, 4), **FAST).fit(X)
    np.testing.assert_allclose(model.anomaly_score(list(X)), model.anomaly_score(X), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.stack(model.reconstruct(list(X))), model.reconstruct(X), rtol=1e-5, atol=1e-6)
    assert model.reconstruction_error(list(X), per="feature").shape == (16, 3)


def test_variable_length_training_scales_on_all_steps_and_learns():
    sequences = varied_sequences(n=40, n_features=1)
    model = LSTMAutoencoder(encoder=(16,), epochs=12, learning_rate=1e-2, batch_size=8, loss="mse", progress=False,
                            random_state=0).fit(sequences)
    all_steps = np.concatenate(sequences[:36])  # the training part (validation_fraction 0.1)
    np.testing.assert_allclose(model.scaler_.offset, all_steps.mean(axis=0), rtol=1e-6, atol=1e-7)
    assert model.n_timesteps_ == max(len(s) for s in sequences)
    assert model.history_["loss"][-1] < 0.8 * model.history_["loss"][0]


def test_bad_variable_length_inputs():
    sequences = varied_sequences(n=6)
    with pytest.raises(DataError, match="mahalanobis' needs sequences of one length"):
        LSTMAutoencoder(error_model="mahalanobis", **FAST).fit(sequences)
    with pytest.raises(DataError, match="expected a list of sequences, got an empty list"):
        LSTMAutoencoder(**FAST).fit([])
    with pytest.raises(DataError, match="sequence 2 has 1 feature per timestep, sequence 0 has 2"):
        LSTMAutoencoder(**FAST).fit(sequences[:2] + [sequences[2][:, 0]])
    with pytest.raises(DataError, match=r"sequence 1: expected a non-empty array \(L_i, F\)"):
        LSTMAutoencoder(**FAST).fit([sequences[0], np.zeros((0, 2))])
    model = LSTMAutoencoder(encoder=(4,), **FAST).fit(sequences)
    broken = [s.copy() for s in sequences]
    broken[4][1, 0] = np.nan
    with pytest.raises(DataError, match="sample 4 contains NaN"):
        model.anomaly_score(broken)
    with pytest.raises(DataError, match="sequence 0: expected 2 features per timestep, got 3"):
        model.anomaly_score([np.zeros((5, 3))])
    fixed = LSTMAutoencoder(encoder=(4,), error_model="mahalanobis", **FAST).fit(sine_windows(n=20, length=6))
    with pytest.raises(DataError, match="sequence 1 has 4 steps; the mahalanobis error model scores sequences of the "
                                        "trained length 6 only"):
        fixed.anomaly_score([np.zeros((6, 3)), np.zeros((4, 3))])


# ------------------------------------------------------------------------------ summary
def test_summary_of_the_no_bottleneck_network_matches_a_hand_count():
    result = CliRunner().invoke(cli, ["summary", "--preset", "no_bottleneck", "--activation", "relu",
                                      "--features", "2", "--timesteps", "3"])
    assert result.exit_code == 0, result.output
    expected = (keras_lstm_params(2, 128) + keras_lstm_params(128, 64) + keras_lstm_params(64, 64)
                + keras_lstm_params(64, 128) + 128 * 2 + 2)
    assert f"{expected:,}" in result.output
    assert "RepeatVector" not in result.output and "last step" not in result.output
    table = [line.split() for line in result.output.splitlines() if line.startswith(("encoder", "decoder"))]
    assert [row[-3] for row in table] == ["128)", "64)", "64)", "128)"] and all(row[-2] == "sequence" for row in table)


def test_layer_table_counts_the_embedding_and_the_encdec_ad_decoder():
    arch = make_architecture(1, encoder=(16,), vocab_size=50, embedding_dim=8, decoder_type="encdec_ad")
    rows = LSTMAutoencoderModule(arch).layer_table(10)
    shapes = [row["output_shape"] for row in rows]
    assert shapes == [(10,), (10, 8), (16,), (10, 16), (10, 50)]
    # the decoder is fed the embedded previous token (8 values), its hidden size is Z = 16
    expected = 50 * 8 + torch_lstm_params(8, 16) + torch_lstm_params(8, 16) + 16 * 50 + 50
    assert [row["params"] for row in rows] == [0, 50 * 8, torch_lstm_params(8, 16), torch_lstm_params(8, 16),
                                               16 * 50 + 50]
    assert sum(row["params"] for row in rows) == expected
    assert sum(p.numel() for p in LSTMAutoencoderModule(arch).parameters()) == expected
    assert "EncDec-AD" in rows[3]["layer"] and "embedding" in rows[1]["layer"]


# ------------------------------------------------------------------------------ save / load
@pytest.mark.parametrize("make", [
    lambda: (LSTMAutoencoder.from_preset("token_autoencoder", encoder=(6,), embedding_dim=4, **FAST),
             pattern_tokens(n=20)),
    lambda: (LSTMAutoencoder.from_preset("encdec_ad", encoder=(6,), activation="relu", **FAST),
             sine_windows(n=20, length=6)),
    lambda: (LSTMAutoencoder(encoder=(6,), vocab_size=9, decoder_type="encdec_ad", embedding_dim=3, **FAST),
             [row[: 3 + i % 5] for i, row in enumerate(pattern_tokens(n=20))]),
])
def test_variants_round_trip_bit_identically(make, tmp_path):
    model, X = make()
    model.fit(X)
    model.save(tmp_path / "model")
    loaded = load(tmp_path / "model")
    assert loaded.get_params() == model.get_params()
    assert loaded.architecture_ == model.architecture_
    np.testing.assert_array_equal(loaded.anomaly_score(X), model.anomaly_score(X))
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    for got, expected in zip(loaded.reconstruct(X), model.reconstruct(X)):
        np.testing.assert_array_equal(got, expected)
    assert loaded.threshold_ == model.threshold_

