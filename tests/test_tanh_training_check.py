"""Unit tests of benchmarks/tanh_training_check.py (nn.LSTM vs fused tanh training, paired seeds)."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import tanh_training_check as check  # noqa: E402
from lstmae import kernels  # noqa: E402
from lstmae.nn import model  # noqa: E402


def test_each_path_trains_tanh_layers_its_own_way_whatever_the_batch_and_is_undone_after(monkeypatch):
    if kernels.compiled() is None:
        pytest.skip("the fused LSTM kernels could not be compiled here")
    calls = []
    original = model.lstm_layer
    monkeypatch.setattr(model, "lstm_layer", lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    layer = model.TanhLSTM(3, 4)
    small, large = torch.randn(2, 5, 3), torch.randn(model.FUSED_TRAINING_BATCH, 5, 3)
    with check.training_path("fused"):
        fused = layer(small)
    assert calls and fused.requires_grad
    calls.clear()
    plain = layer(small)  # gradients on, a small batch, outside the block: nn.LSTM
    assert not calls
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-5)
    with check.training_path("nn.LSTM"):
        layer(large)
    assert not calls
    assert model.FUSED_TRAINING_BATCH < 10**6 and model.FUSED_TRAINING_STEPS < 10**6  # restored


def test_paired_differences_count_the_seeds_where_fused_is_higher():
    results = [{"seed": s, "path": p, "auc": value} for s, p, value in
               [(0, "nn.LSTM", 0.9), (0, "fused", 0.8), (1, "nn.LSTM", 0.9), (1, "fused", 1.0),
                (2, "nn.LSTM", 0.5), (2, "fused", 0.8)]]
    summary = check.paired(results, "auc")
    assert summary["mean_difference"] == pytest.approx((-0.1 + 0.1 + 0.3) / 3)
    assert summary["fused_higher"] == 2 and summary["seeds"] == 3
    assert summary["standard_error"] == pytest.approx(torch.tensor([-0.1, 0.1, 0.3]).std().item() / 3 ** 0.5)


def test_missing_data_folder_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert check.main(["--data-dir", str(tmp_path)]) == 2
    assert "not found; pass --data-dir" in capsys.readouterr().err


def test_speed_table_gives_the_fused_speed_up_per_case():
    report = {"command": "c", "fused_training_batch": 128, "results": [
        {"threads": 2, "encoder": [32, 16], "batch": 32, "seconds": {"nn.LSTM": 1.0, "fused": 0.8},
         "fused_speedup": 1.25}]}
    table = check.speed_markdown(report)
    assert "| 2 | (32, 16) | 32 | 1.00 | 0.80 | 1.25x |" in table
    assert "fused from batch 128 on" in table


def test_speed_and_no_early_stopping_exclude_each_other(tmp_path):
    with pytest.raises(SystemExit):
        check.main(["--speed", "--no-early-stopping", "--data-dir", str(tmp_path)])


def test_without_compiled_kernels_there_is_nothing_to_compare(tmp_path, monkeypatch, capsys):
    (tmp_path / "ecg5000").mkdir()
    monkeypatch.setattr(kernels, "compiled", lambda: None)
    assert check.main(["--data-dir", str(tmp_path)]) == 2
    assert "fused LSTM kernels could not be compiled" in capsys.readouterr().err
