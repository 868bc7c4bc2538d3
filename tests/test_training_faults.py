"""Faults during training: divergence, Ctrl-C, and a kill followed by a resume from the checkpoint."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from lstmae import LSTMAutoencoder
from lstmae.exceptions import DataError, TrainingDiverged

from conftest import sine_windows


def small(**overrides):
    return LSTMAutoencoder(**{"encoder": (8, 4), "epochs": 6, "batch_size": 16, "patience": None,
                              "progress": False, "random_state": 0, **overrides})


def test_an_exploding_learning_rate_is_refused_naming_it():
    with pytest.raises(TrainingDiverged, match=r"lower the learning rate \(now 1000\)"):
        small(learning_rate=1e3, max_grad_norm=None, activation="relu").fit(sine_windows(n=64))


def _fitted_state(model):
    return {name: value for name, value in vars(model).items() if name.endswith("_") and not name.startswith("_")}


def test_a_refit_that_fails_leaves_the_model_as_it_was():
    # it left a new scaler and half-trained weights beside the old threshold: the model then flagged every
    # window of its own training data and saved without a word
    X = sine_windows(n=64)
    model = small(max_grad_norm=None, activation="relu").fit(X)
    before, scores = dict(_fitted_state(model)), model.anomaly_score(X)
    model.set_params(learning_rate=1e3)
    with pytest.raises(TrainingDiverged):
        model.fit(X * 100 + 5)
    assert _fitted_state(model).keys() == before.keys()
    assert all(getattr(model, name) is value for name, value in before.items() if not isinstance(value, dict))
    np.testing.assert_array_equal(model.anomaly_score(X), scores)


def test_a_series_fit_whose_calibration_fails_keeps_the_previous_model(monkeypatch):
    import lstmae.series as series

    values = np.sin(np.arange(400) / 5.0)[:, None] + np.zeros((1, 2))
    model = series.fit_series(small(), values, window=10)
    threshold, calibration, module = model.threshold_, dict(model.calibration_scores_), model.module_

    def broken(*args, **kwargs):
        raise MemoryError("no room for the held-out scores")

    monkeypatch.setattr(series, "_calibration_rows", broken)
    with pytest.raises(MemoryError):
        series.fit_series(model.set_params(random_state=1), values * 2, window=10)
    assert model.module_ is module and model.threshold_ == threshold
    assert model.calibration_scores_.keys() == calibration.keys()
    assert all(model.calibration_scores_[kind] is calibration[kind] for kind in calibration)


def test_ctrl_c_in_the_first_epoch_keeps_the_seeded_weights(monkeypatch):
    # it kept the weights of the half-run epoch, saved as "0 epochs, best 0"
    import lstmae.training.loop as loop

    real_loss, calls = loop.reconstruction_loss, []

    def interrupted_at_the_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # two optimizer steps taken
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(loop, "reconstruction_loss", interrupted_at_the_third_batch)
    model = small().fit(sine_windows(n=64))
    monkeypatch.undo()
    assert model.history_["interrupted"] and model.history_["epochs_run"] == 0
    seeded = small(epochs=0).fit(sine_windows(n=64))
    for (name, a), (_, b) in zip(model.module_.state_dict().items(), seeded.module_.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_first_fit_that_fails_leaves_no_fitted_attribute():
    model = small(learning_rate=1e3, max_grad_norm=None, activation="relu")
    with pytest.raises(TrainingDiverged):
        model.fit(sine_windows(n=64))
    assert not _fitted_state(model)


def test_ctrl_c_keeps_the_best_epoch_so_far():
    def interrupt(epoch, history):
        if epoch == 2:
            raise KeyboardInterrupt

    model = small().fit(sine_windows(n=64), on_epoch=interrupt)
    assert model.history_["interrupted"] and model.history_["epochs_run"] == 3
    assert np.isfinite(model.threshold_)


RUN = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from conftest import sine_windows
    from lstmae import LSTMAutoencoder

    def kill(epoch, history):
        if epoch == 3:  # epochs 1-3 are checkpointed; this one dies before its own checkpoint
            os.kill(os.getpid(), signal.SIGKILL)

    LSTMAutoencoder(encoder=(8, 4), epochs=6, batch_size=16, patience=None, progress=False,
                    random_state=0).fit(sine_windows(n=64), checkpoint_dir={directory!r}, on_epoch=kill)
""")


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    import os

    directory = str(tmp_path / "ckpt")
    tests = os.path.dirname(__file__)
    killed = subprocess.run([sys.executable, "-c", RUN.format(tests=tests, directory=directory)],
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert (tmp_path / "ckpt" / "checkpoint.json").exists()
    resumed = small().fit(sine_windows(n=64), checkpoint_dir=directory)
    uninterrupted = small().fit(sine_windows(n=64))
    assert resumed.history_["loss"] == uninterrupted.history_["loss"]
    for (name, a), (_, b) in zip(resumed.module_.state_dict().items(), uninterrupted.module_.state_dict().items()):
        assert torch.equal(a, b), name
    # another run's settings are refused, naming the fix
    with pytest.raises(DataError, match="checkpoint of another run"):
        small(learning_rate=1e-2).fit(sine_windows(n=64), checkpoint_dir=directory)
    # and other data of the same length, first and last samples (values cleaned in between): it was resumed, the
    # old data's network saved as the new data's
    cleaned = sine_windows(n=64).copy()
    cleaned[20:40] *= 0.5
    with pytest.raises(DataError, match="checkpoint of another run"):
        small().fit(cleaned, checkpoint_dir=directory)
    ragged = [window[: 8 + i % 4] for i, window in enumerate(sine_windows(n=64))]  # of different lengths
    small(epochs=2).fit(ragged, checkpoint_dir=tmp_path / "ragged")
    ragged[30] = ragged[30] * 0.5
    with pytest.raises(DataError, match="checkpoint of another run"):
        small(epochs=2).fit(ragged, checkpoint_dir=tmp_path / "ragged")


def test_a_checkpoint_whose_tensors_file_is_a_pipe_is_refused_without_waiting(tmp_path):
    import json
    import os

    from lstmae.exceptions import ModelFileError

    small(epochs=2).fit(sine_windows(n=64), checkpoint_dir=tmp_path / "ckpt")
    tensors = tmp_path / "ckpt" / json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())["tensors"]
    tensors.unlink()
    os.mkfifo(tensors)  # resuming read it and waited forever
    with pytest.raises(ModelFileError, match="is not a regular file; remove the checkpoint folder to start over"):
        small(epochs=2).fit(sine_windows(n=64), checkpoint_dir=tmp_path / "ckpt")


def test_a_checkpoint_dir_that_is_a_file_is_refused_before_training(tmp_path):
    # it trained an epoch, then failed with an unexpected FileExistsError (exit 1)
    (tmp_path / "afile").write_text("")
    epochs = []
    with pytest.raises(DataError, match="afile is a file, not a folder; give the path of a folder"):
        small(epochs=2).fit(sine_windows(n=64), checkpoint_dir=tmp_path / "afile",
                            on_epoch=lambda epoch, history: epochs.append(epoch))
    assert epochs == []


@pytest.fixture(scope="module")
def two_epoch_checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("saved") / "ckpt"
    small(epochs=2).fit(sine_windows(n=64), checkpoint_dir=directory)
    return directory


@pytest.mark.parametrize("edit, field", [
    ({"waited": "x"}, "waited"),
    ({"rng": {"bit_generator": "MT19937", "state": {"key": [0], "pos": 0}}}, "rng"),
    ({"optimizer_groups": 5}, "optimizer_groups"),
    ({"history": {"loss": [], "val_loss": [], "best_epoch": 99, "initial_loss": 1.0}}, "history.loss"),
    ({"history": {"loss": [1.0, 0.9], "val_loss": [1.0], "best_epoch": 2, "initial_loss": 1.0}}, "history.val_loss"),
    ({"history": {"loss": [1.0, 0.9], "val_loss": [], "best_epoch": 99, "initial_loss": 1.0}}, "history.best_epoch"),
    ({"has_best": "yes"}, "has_best"),
    ({"optimizer_state_keys": {"0": ["no_such_tensor"]}}, "optimizer_state_keys"),
])
def test_a_hand_edited_checkpoint_is_refused_naming_the_file_and_field(two_epoch_checkpoint, tmp_path, edit, field):
    # each failed with an error naming no file (int() of "x", numpy's PCG64 check, a TypeError), or was accepted
    import json
    import re
    import shutil

    from lstmae.exceptions import ModelFileError

    directory = tmp_path / "ckpt"
    shutil.copytree(two_epoch_checkpoint, directory)
    saved = json.loads((directory / "checkpoint.json").read_text())
    (directory / "checkpoint.json").write_text(json.dumps({**saved, **edit}))
    message = re.escape(f"{directory / 'checkpoint.json'}: {field} must be ") + r".*; remove the checkpoint folder"
    with pytest.raises(ModelFileError, match=message):
        small(epochs=2).fit(sine_windows(n=64), checkpoint_dir=directory)


@pytest.mark.parametrize("key, change, what", [
    ("module.", lambda t: t * float("nan"), "finite values"),  # resumed, then 'diverged: lower the learning rate'
    ("optimizer.0.exp_avg_sq", lambda t: -t - 1, "Adam's state"),
    ("optimizer.0.exp_avg", lambda t: t.reshape(-1)[:9].reshape(3, 3), "Adam's state"),  # a RuntimeError
    ("optimizer.0.step", lambda t: t * 0 - 5, "Adam's state"),  # 'ComplexFloat can't be cast'
    ("torch_rng", lambda t: t[:5], "torch's random state"),  # 'Expected a CPUGeneratorImplState of size'
    ("torch_rng", lambda t: t.float(), "torch's random state"),  # 'RNG state must be a torch.ByteTensor'
])
def test_a_tampered_checkpoint_tensor_is_refused_naming_the_file(two_epoch_checkpoint, tmp_path, key, change, what):
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    from lstmae.exceptions import ModelFileError

    directory = tmp_path / "ckpt"
    shutil.copytree(two_epoch_checkpoint, directory)
    tensors_file = directory / json.loads((directory / "checkpoint.json").read_text())["tensors"]
    tensors = load_file(tensors_file)
    name = next(name for name in tensors if name.startswith(key))
    tensors[name] = change(tensors[name]).contiguous()
    save_file(tensors, tensors_file)
    with pytest.raises(ModelFileError, match=f"checkpoint.json: tensors must be {what}.*remove the checkpoint"):
        small(epochs=2).fit(sine_windows(n=64), checkpoint_dir=directory)


def test_a_checkpoint_folder_holding_other_files_is_refused_and_left_as_it_was(tmp_path):
    # lstmae removed every checkpoint-*.safetensors there that was not its newest: a user's file so named went too
    folder = tmp_path / "mywork"
    folder.mkdir()
    (folder / "checkpoint-best-run7.safetensors").write_bytes(b"the user's")
    (folder / "train.csv").write_text("a\n1\n")
    with pytest.raises(DataError, match=r"checkpoint folder .*mywork holds checkpoint-best-run7.safetensors, "
                                        r"train.csv, files lstmae did not write there; give the checkpoints a new"):
        small(epochs=1).fit(sine_windows(n=64), checkpoint_dir=folder)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-best-run7.safetensors", "train.csv"]
    small(epochs=2).fit(sine_windows(n=64), checkpoint_dir=tmp_path / "own")  # its own files, and a resume there
    (tmp_path / "own" / ".checkpoint.json.0123.tmp").write_text("a killed write's")
    small(epochs=2).fit(sine_windows(n=64), checkpoint_dir=tmp_path / "own")
