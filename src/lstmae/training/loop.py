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
from ..nn.model import valid_steps
from .device import flush_denormals
from .distributed import from_environment

LOSSES = ("mse", "mae")  # the user's choice for real values; token models train with "cross_entropy"


def token_cross_entropy(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each token: logits (N, L, V) and ids (N, L) -> (N, L)."""
    if logits.dim() != 3 or logits.shape[:2] != ids.shape:
        raise ValueError(f"logits {tuple(logits.shape)} must be (N, L, V) for token ids {tuple(ids.shape)}")
    return nn.functional.cross_entropy(logits.transpose(1, 2), ids, reduction="none")


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "mse",
                        lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared ("mse") or absolute ("mae") error of two tensors of the SAME shape, or the mean
    token cross-entropy ("cross_entropy") of logits x_hat (N, L, V) for ids x (N, L).

    Shapes are checked first: (5, 1, 1) against (5, 1) would broadcast to (5, 5, 1) and train
    the model to output the mean (a classic tutorial bug). With lengths (N,), only each sample's
    first lengths[i] steps count: the mean is over the valid steps of the batch.
    """
    if kind == "cross_entropy":
        pointwise = token_cross_entropy(x_hat, x)
    else:
        if x_hat.shape != x.shape:
            raise ValueError(f"reconstruction {tuple(x_hat.shape)} and target {tuple(x.shape)} differ in shape; "
                             "a loss between them would broadcast")
        if lengths is None:
            return nn.functional.mse_loss(x_hat, x) if kind == "mse" else nn.functional.l1_loss(x_hat, x)
        difference = x_hat - x
        pointwise = (difference.square() if kind == "mse" else difference.abs()).mean(dim=2)
    if lengths is None:
        return pointwise.mean()
    valid = valid_steps(lengths, pointwise.shape[1], pointwise.device)
    return pointwise[valid].mean()


def iterate_batches(X, indices: np.ndarray, batch_size: int, scaler: FeatureScaler | None,
                    device: torch.device) -> Iterable[tuple[torch.Tensor, torch.Tensor | None]]:
    """(batch, lengths) for X[indices], batch by batch; only one batch is ever materialised.

    X is an array (N, L, F) or a list of N arrays (L_i, F) of any lengths; with scaler None it
    holds token ids instead: (N, L) or (L_i,), passed on as int64. batch is scaled float32
    (B, L, F) (ids: (B, L)); for a list it is zero-padded to its longest sample and lengths
    (B,) int64 (on the CPU) gives each sample's length; for an array lengths is None.
    """
    for start in range(0, len(indices), batch_size):
        part = indices[start : start + batch_size]
        if isinstance(X, list):
            batch, lengths = _padded([X[i] for i in part], part, scaler)
            yield torch.from_numpy(batch).to(device, non_blocking=True), torch.from_numpy(lengths)
            continue
        if len(part) and part[-1] - part[0] == len(part) - 1:  # a contiguous run: a cheap slice
            batch = X[part[0] : part[-1] + 1]
        else:
            batch = X[part]
        if scaler is None:
            yield torch.from_numpy(np.ascontiguousarray(batch, dtype=np.int64)).to(device, non_blocking=True), None
            continue
        scaled = scaler.transform(batch)
        if not np.isfinite(scaled).all():
            _raise_not_finite(int(part[np.flatnonzero(~np.isfinite(scaled).reshape(len(part), -1).all(axis=1))[0]]))
        yield torch.from_numpy(scaled).to(device, non_blocking=True), None


def _padded(samples: list[np.ndarray], sample_ids: np.ndarray, scaler: FeatureScaler | None):
    """Samples (L_i, F) scaled (token ids (L_i,) as they are) and zero-padded into one array."""
    lengths = np.array([len(sample) for sample in samples], dtype=np.int64)
    if scaler is None:
        batch = np.zeros((len(samples), lengths.max()), dtype=np.int64)
    else:
        batch = np.zeros((len(samples), lengths.max(), samples[0].shape[1]), dtype=np.float32)
    for row, (sample, sample_id) in enumerate(zip(samples, sample_ids)):
        if scaler is not None:
            sample = scaler.transform(sample)
            if not np.isfinite(sample).all():
                _raise_not_finite(int(sample_id))
        batch[row, : len(sample)] = sample
    return batch, lengths


def _raise_not_finite(sample: int):
    raise DataError(f"sample {sample} contains NaN or inf; clean the data first "
                    "(the CLI offers --nan-policy ffill|interpolate|drop)")


@flush_denormals()
def train(module: nn.Module, X, train_idx: np.ndarray, val_idx: np.ndarray, *,
          scaler: FeatureScaler, epochs: int, batch_size: int, learning_rate: float, loss: str,
          patience: int | None, max_grad_norm: float | None, rng: np.random.Generator,
          device: torch.device, progress: bool = True,
          on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Fit `module` to reconstruct X; return the history {"loss": [...], "val_loss": [...]}.

    X, scaler: as `iterate_batches` reads them. loss: "mse", "mae" or "cross_entropy" (tokens).

    Early stopping watches the validation loss (the training loss when there is no validation
    set) and the best weights seen are restored at the end.
    """
    parallel = from_environment(device)  # several processes under torchrun, else one
    trained = parallel.wrap(module)
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate)
    history: dict = {"loss": [], "val_loss": [], "best_epoch": 0}
    best_loss, best_state, waited = float("inf"), None, 0
    bar = tqdm(range(epochs), desc="training", unit="epoch", file=sys.stderr,
               disable=None if progress and parallel.is_main else True, leave=False)
    for epoch in bar:
        module.train()
        total, count = 0.0, 0
        shard = parallel.shard(rng.permutation(train_idx))
        for batch, lengths in iterate_batches(X, shard, parallel.batch_size(batch_size), scaler, device):
            optimizer.zero_grad(set_to_none=True)
            batch_loss = reconstruction_loss(trained(batch, lengths), batch, loss, lengths)
            batch_loss.backward()
            if max_grad_norm:
                nn.utils.clip_grad_norm_(module.parameters(), max_grad_norm)
            optimizer.step()
            total += batch_loss.item() * len(batch)
            count += len(batch)
        total, count = parallel.sum(total, count)
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
    for batch, lengths in iterate_batches(X, indices, max(batch_size, 512), scaler, device):
        total += reconstruction_loss(module(batch, lengths), batch, loss, lengths).item() * len(batch)
    return total / len(indices)
