"""input_noise: a denoising autoencoder, trained on noisy windows to reconstruct the clean ones."""
import numpy as np
import pytest
import torch

from lstmae import LSTMAutoencoder, load
from lstmae.series import fit_series

from conftest import sine_windows


def small(**overrides):
    return LSTMAutoencoder(**{"encoder": (8, 4), "epochs": 3, "batch_size": 16, "patience": None,
                              "progress": False, "random_state": 3, **overrides})


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.module_.state_dict().values(), b.module_.state_dict().values()))


def fed_inputs(model, X) -> tuple[list, list]:
    """The batches the network was fed while fitting `model` on X: (in training mode, in eval mode)."""
    from lstmae.nn.model import LSTMAutoencoderModule

    seen = {True: [], False: []}

    def record(module, args):
        seen[module.training].append(args[0].detach().clone())

    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: record(module, args) if isinstance(module, LSTMAutoencoderModule) else None)
    try:
        model.fit(X)
    finally:
        handle.remove()
    return seen[True], seen[False]


def test_training_batches_carry_noise_of_the_given_scale_and_held_out_batches_none():
    X = sine_windows(n=64)
    clean_train, clean_eval = fed_inputs(small(), X)
    noisy_train, noisy_eval = fed_inputs(small(input_noise=2.0), X)
    # the same seed draws the same batches, so the difference is the noise alone
    differences = torch.cat([(noisy - clean).flatten() for noisy, clean in zip(noisy_train, clean_train)])
    assert len(noisy_train) == len(clean_train)
    assert abs(float(differences.std()) - 2.0) < 0.1 and abs(float(differences.mean())) < 0.1
    for noisy, clean in zip(noisy_eval, clean_eval):  # losses and scores: clean windows
        assert torch.equal(noisy, clean)


def test_the_target_is_the_clean_window_so_noise_lowers_nothing_it_should_not():
    X = sine_windows(n=64)
    denoising = small(input_noise=0.3, epochs=5).fit(X)
    plain = small(epochs=5).fit(X)
    assert not same_weights(denoising, plain)
    # the training loss is taken against the clean windows: noisy inputs make it higher, not lower
    assert denoising.history_["loss"][-1] > plain.history_["loss"][-1]


def test_the_same_seed_gives_the_same_network_and_a_checkpoint_resumes_to_it(tmp_path):
    X = sine_windows(n=64)
    first = small(input_noise=0.3).fit(X)
    assert same_weights(first, small(input_noise=0.3).fit(X))

    def interrupt(epoch, history):
        if epoch == 1:
            raise KeyboardInterrupt

    small(input_noise=0.3).fit(X, checkpoint_dir=tmp_path / "ckpt", on_epoch=interrupt)
    resumed = small(input_noise=0.3).fit(X, checkpoint_dir=tmp_path / "ckpt")
    assert same_weights(first, resumed) and resumed.history_["loss"] == first.history_["loss"]


def test_it_is_saved_with_the_model(tmp_path):
    values = np.sin(np.arange(300) / 4)[:, None].astype("float32")
    model = fit_series(small(input_noise=0.1), values, window=12)
    model.save(tmp_path / "m")
    assert load(tmp_path / "m").input_noise == 0.1


@pytest.mark.parametrize("bad, match", [
    (-0.1, r"input_noise must be a number >= 0 \(scaled units; 0: none\), got -0.1"),
    (float("inf"), "input_noise must be a number >= 0"),
    ("0.1", "input_noise must be a number >= 0"),
])
def test_bad_values_are_refused_with_the_fix(bad, match):
    with pytest.raises(ValueError, match=match):
        small(input_noise=bad).fit(sine_windows(n=16))


def test_a_token_model_takes_no_input_noise():
    ids = np.random.default_rng(0).integers(0, 5, size=(16, 8))
    with pytest.raises(ValueError, match="a token model .* takes none, use input_noise=0"):
        small(vocab_size=5, input_noise=0.1).fit(ids)
