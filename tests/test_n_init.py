"""n_init: several networks trained from consecutive seeds, the one of the lowest held-out loss kept."""
import json

import numpy as np
import pytest

from lstmae import load
from lstmae.series import fit_series

from conftest import quick_model as small, same_weights, sine_windows


def held_out_loss(model, X) -> float:
    """The mean L1 reconstruction loss of the held-out tail (the last validation_fraction of X)."""
    n_train = len(X) - int(round(len(X) * model.validation_fraction))
    return float(model.reconstruction_error(X[n_train:], per="sample", kind="mae").mean())


def test_the_kept_network_is_the_run_of_the_lowest_held_out_loss_and_equals_that_seed_alone():
    X = sine_windows(n=80)
    model = small(n_init=3).fit(X)
    runs = [small(random_state=3 + run).fit(X) for run in range(3)]
    losses = [held_out_loss(run, X) for run in runs]
    np.testing.assert_allclose(model.history_["run_losses"], losses, rtol=1e-5)
    chosen = int(np.argmin(losses))
    assert model.history_["chosen_run"] == chosen + 1
    assert same_weights(model, runs[chosen])
    assert model.history_["loss"] == runs[chosen].history_["loss"]
    assert model.history_["held_out_loss"] == model.history_["run_losses"][chosen]
    np.testing.assert_array_equal(model.anomaly_score(X), runs[chosen].anomaly_score(X))


def test_one_run_records_its_held_out_loss_and_no_runs():
    X = sine_windows(n=64)
    model = small().fit(X)
    assert model.history_["held_out_loss"] == pytest.approx(held_out_loss(model, X), rel=1e-5)
    assert "run_losses" not in model.history_ and "chosen_run" not in model.history_


def test_n_init_is_kept_by_save_and_load_and_by_fit_series(tmp_path):
    values = np.sin(np.arange(300) / 4.0)[:, None]
    model = fit_series(small(n_init=2), values, window=12)
    assert len(model.history_["run_losses"]) == 2
    model.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["params"]["n_init"] == 2
    loaded = load(tmp_path / "model")
    assert loaded.n_init == 2 and loaded.history_["chosen_run"] == model.history_["chosen_run"]


def test_ctrl_c_in_a_later_run_stops_there_and_keeps_the_best_run_so_far():
    calls = []

    def interrupt(epoch, history):
        calls.append(epoch)
        if len(calls) == 5:  # run 1's three epochs, then epoch 2 of run 2
            raise KeyboardInterrupt

    model = small(n_init=3).fit(sine_windows(n=64), on_epoch=interrupt)
    assert model.history_["interrupted"] and len(model.history_["run_losses"]) == 2
    assert np.isfinite(model.threshold_)


def test_each_run_has_its_own_checkpoint_and_a_rerun_resumes_to_the_same_network(tmp_path):
    X = sine_windows(n=64)
    first = small(n_init=2).fit(X, checkpoint_dir=tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["run-1", "run-2"]
    resumed = small(n_init=2).fit(X, checkpoint_dir=tmp_path / "ckpt")
    assert same_weights(first, resumed) and resumed.history_["run_losses"] == first.history_["run_losses"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_n_init_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="n_init must be an integer >= 1"):
        small(n_init=bad).fit(sine_windows(n=32))


def test_with_nothing_held_out_the_runs_are_compared_on_the_training_windows():
    X = sine_windows(n=64)
    model = small(n_init=2, validation_fraction=0.0).fit(X)
    losses = [float(small(random_state=3 + run, validation_fraction=0.0).fit(X)
                    .reconstruction_error(X, per="sample", kind="mae").mean()) for run in range(2)]
    np.testing.assert_allclose(model.history_["run_losses"], losses, rtol=1e-5)
    assert "held_out_loss" not in model.history_
