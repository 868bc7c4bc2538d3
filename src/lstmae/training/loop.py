"""The training loop: Adam, early stopping that restores the best weights, gradient clipping."""
from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.scaling import FeatureScaler
from ..exceptions import DataError

LOSSES = ("mse", "mae")


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean squared ("mse") or absolute ("mae") error of two tensors of the SAME shape.

    Shapes are checked first: (5, 1, 1) against (5, 1) would broadcast to (5, 5, 1) and train
    the model to output the mean (a classic tutorial bug).
    """
    if x_hat.shape != x.shape:
        raise ValueError(f"reconstruction {tuple(x_hat.shape)} and target {tuple(x.shape)} differ in shape; "
                         "a loss between them would broadcast")
    if kind == "mse":
        return nn.functional.mse_loss(x_hat, x)
    return nn.functional.l1_loss(x_hat, x)


def iterate_batches(X: np.ndarray, indices: np.ndarray, batch_size: int, scaler: FeatureScaler,
                    device: torch.device) -> Iterable[torch.Tensor]:
    """Scaled float32 batches (B, L, F) of X[indices]; only one batch is ever materialised."""
    for start in range(0, len(indices), batch_size):
        part = indices[start : start + batch_size]
        if len(part) and part[-1] - part[0] == len(part) - 1:  # a contiguous run: a cheap slice
            batch = X[part[0] : part[-1] + 1]
        else:
            batch = X[part]
        scaled = scaler.transform(batch)
        if not np.isfinite(scaled).all():
            bad = int(part[np.flatnonzero(~np.isfinite(scaled).reshape(len(part), -1).all(axis=1))[0]])
            raise DataError(f"sample {bad} contains NaN or inf; clean the data first "
                            "(the CLI offers --nan-policy ffill|interpolate|drop)")
        yield torch.from_numpy(scaled).to(device, non_blocking=True)


def train(module: nn.Module, X: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, *,
          scaler: FeatureScaler, epochs: int, batch_size: int, learning_rate: float, loss: str,
          patience: int | None, max_grad_norm: float | None, rng: np.random.Generator,
          device: torch.device, progress: bool = True,
          on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Fit `module` to reconstruct X (N, L, F); return the history {"loss": [...], "val_loss": [...]}.

    Early stopping watches the validation loss (the training loss when there is no validation
    set) and the best weights seen are restored at the end.
    """
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate)
    history: dict = {"loss": [], "val_loss": [], "best_epoch": 0}
    best_loss, best_state, waited = float("inf"), None, 0
    bar = tqdm(range(epochs), desc="training", unit="epoch", file=sys.stderr,
               disable=None if progress else True, leave=False)
    for epoch in bar:
        module.train()
        total, count = 0.0, 0
        for batch in iterate_batches(X, rng.permutation(train_idx), batch_size, scaler, device):
            optimizer.zero_grad(set_to_none=True)
            batch_loss = reconstruction_loss(module(batch), batch, loss)
            batch_loss.backward()
            if max_grad_norm:
                nn.utils.clip_grad_norm_(module.parameters(), max_grad_norm)
            optimizer.step()
            total += batch_loss.item() * len(batch)
            count += len(batch)
        history["loss"].append(total / count)
        if len(val_idx):
            history["val_loss"].append(evaluate_loss(module, X, val_idx, scaler, batch_size, loss, device))
        watched = history["val_loss"][-1] if len(val_idx) else history["loss"][-1]
        bar.set_postfix(loss=f"{history['loss'][-1]:.4g}",
                        **({"val_loss": f"{watched:.4g}"} if len(val_idx) else {}))
        if on_epoch is not None:
            on_epoch(epoch, history)
        if not np.isfinite(watched):
            raise FloatingPointError(f"training diverged at epoch {epoch + 1} (loss {watched}); "
                                     "lower learning_rate or use activation='tanh'")
        if watched < best_loss:
            best_loss, best_state, waited = watched, copy.deepcopy(module.state_dict()), 0
            history["best_epoch"] = epoch + 1
        else:
            waited += 1
            if patience is not None and waited >= patience:
                break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    history["epochs_run"] = len(history["loss"])
    return history


@torch.inference_mode()
def evaluate_loss(module: nn.Module, X, indices, scaler, batch_size, loss, device) -> float:
    module.eval()
    total = 0.0
    for batch in iterate_batches(X, indices, max(batch_size, 512), scaler, device):
        total += reconstruction_loss(module(batch), batch, loss).item() * len(batch)
    return total / len(indices)
