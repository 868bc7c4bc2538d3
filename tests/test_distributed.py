"""torchrun with 2 processes (DDP over gloo on the CPU) trains a model as good as one process."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lstmae import load


def _fit_command(data, out, *launcher):
    return [*launcher, "-m", "lstmae.cli.main", "fit", str(data), "-o", str(out), "--window", "12",
            "--encoder", "16,8", "--epochs", "15", "--batch-size", "32", "--patience", "100", "--seed", "0"]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    t = np.arange(1500)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": np.sin(t / 6) + 0.05 * rng.normal(size=len(t)),
                          "b": np.cos(t / 9) + 0.05 * rng.normal(size=len(t))})
    frame.to_csv(tmp_path / "train.csv", index=False)
    single = subprocess.run(_fit_command(tmp_path / "train.csv", tmp_path / "one", sys.executable),
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533"]
    double = subprocess.run(_fit_command(tmp_path / "train.csv", tmp_path / "two", *torchrun),
                            capture_output=True, text=True, timeout=600)
    assert double.returncode == 0, double.stderr
    one, two = (json.loads((tmp_path / d / "config.json").read_text())["training"] for d in ("one", "two"))
    assert len(one["loss"]) == len(two["loss"]) == 15
    # the same global batch and learning rate: the validation loss ends within 50% of one process's
    assert min(two["val_loss"]) < 1.5 * min(one["val_loss"])
    assert min(two["val_loss"]) < 0.5 * two["val_loss"][0]
    X = np.lib.stride_tricks.sliding_window_view(frame.to_numpy("float32"), 12, axis=0).transpose(0, 2, 1)
    assert np.isfinite(load(tmp_path / "two").anomaly_score(X)).all()
