"""input_noise: a denoising autoencoder, trained on noisy windows to reconstruct the clean ones."""
import numpy as np
import pytest
import torch

from lstmae import load
from lstmae.series import fit_series
from lstmae.training import loop

from conftest import quick_model as small, same_weights, sine_windows


RECONSTRUCTION_LOSS = loop.reconstruction_loss


def fed(model, X, monkeypatch) -> tuple[list, list, list]:
    """What fitting `model` on X gave the network and the loss: (training inputs, training targets, held-out
    inputs), each a list of batches."""
    from lstmae.nn.model import LSTMAutoencoderModule

    inputs, targets, held_out = [], [], []

    def loss(x_hat, x, *args, **kwargs):
        if x_hat.requires_grad:  # a training step's loss, not early stopping's
            targets.append(x.detach().clone())
        return RECONSTRUCTION_LOSS(x_hat, x, *args, **kwargs)

    def record(module, args):
        if isinstance(module, LSTMAutoencoderModule):
            (inputs if module.training else held_out).append(args[0].detach().clone())

    monkeypatch.setattr(loop, "reconstruction_loss", loss)
    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        model.fit(X)
    finally:
        handle.remove()
    return inputs, targets, held_out


def test_training_inputs_carry_noise_of_the_given_scale_and_targets_and_held_out_batches_none(monkeypatch):
    X = sine_windows(n=64)
    clean_inputs, clean_targets, clean_held_out = fed(small(), X, monkeypatch)
    noisy_inputs, noisy_targets, noisy_held_out = fed(small(input_noise=2.0), X, monkeypatch)
    # the same seed draws the same batches, so the difference is the noise alone
    assert len(noisy_inputs) == len(clean_inputs) == len(noisy_targets) > 0
    differences = torch.cat([(noisy - clean).flatten() for noisy, clean in zip(noisy_inputs, clean_inputs)])
    assert abs(float(differences.std()) - 2.0) < 0.1 and abs(float(differences.mean())) < 0.1
    # the network is asked for the clean window, and early stopping's loss and scoring see clean ones
    assert all(torch.equal(noisy, clean) for noisy, clean in zip(noisy_targets, clean_inputs))
    assert all(torch.equal(noisy, clean) for noisy, clean in zip(noisy_held_out, clean_held_out))
    assert len(clean_targets) == len(clean_inputs)
    assert all(torch.equal(target, x) for target, x in zip(clean_targets, clean_inputs))


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
