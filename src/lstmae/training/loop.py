"""The training loop: Adam, early stopping that restores the best weights, gradient clipping."""
from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.batches import iterate_batches
from ..exceptions import TrainingDiverged
from .checkpoint import Checkpoint
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


def device_batches(X, indices: np.ndarray, batch_size: int, device: torch.device, *,
                   transform: Callable | None, tokens: bool):
    """`data.batches.iterate_batches` as torch tensors on `device`: (batch, lengths or None)."""
    for batch, lengths in iterate_batches(X, indices, batch_size, transform=transform, tokens=tokens):
        yield (torch.from_numpy(batch).to(device, non_blocking=True),
               None if lengths is None else torch.from_numpy(lengths))


# An epoch whose watched loss exceeds this multiple of the untrained network's has diverged.
DIVERGENCE_FACTOR = 10.0


@flush_denormals()
def train(module: nn.Module, X, train_idx: np.ndarray, val_idx: np.ndarray, *,
          transform: Callable | None, tokens: bool, epochs: int, batch_size: int, learning_rate: float, loss: str,
          steps_per_epoch: int | None = None, input_noise: float = 0.0,
          patience: int | None, max_grad_norm: float | None, rng: np.random.Generator,
          device: torch.device, progress: bool = True, checkpoint: Checkpoint | None = None,
          on_epoch: Callable[[int, dict], None] | None = None, desc: str = "training") -> dict:
    """Fit `module` to reconstruct X; return the history {"loss": [...], "val_loss": [...], ...}.

    X, transform, tokens: as `data.batches.iterate_batches` reads them. loss: "mse", "mae" or "cross_entropy" (tokens).

    Early stopping watches the validation loss (the training loss when there is no validation
    set) and the best weights seen are restored at the end. Training that diverges (a non-finite
    loss, or one DIVERGENCE_FACTOR times the untrained network's) raises TrainingDiverged. Ctrl-C
    (KeyboardInterrupt) stops after the current batch and keeps the best epoch so far
    (history["interrupted"] is True). With `checkpoint`, the state after every epoch is saved and a
    saved state is resumed from: the resumed run ends with the same weights as an uninterrupted one.

    With `steps_per_epoch`, an epoch trains on the first steps_per_epoch x batch_size samples of a
    fresh permutation (every sample is still seen, over the epochs) and early stopping watches the
    loss on a fixed random subset of at most as many validation samples.

    With `input_noise` > 0 the network is fed each training batch plus Gaussian noise of that standard deviation
    (torch's seeded generator) and trained to reconstruct the clean batch (a denoising autoencoder); the
    validation loss is taken on clean inputs.
    """
    per_epoch = len(train_idx) if steps_per_epoch is None else int(steps_per_epoch) * batch_size
    if len(val_idx) > per_epoch:
        val_idx = np.sort(rng.choice(val_idx, per_epoch, replace=False))
    parallel = from_environment(device)  # several processes under torchrun, else one
    trained = parallel.wrap(module)
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate)
    watched_idx = val_idx if len(val_idx) else train_idx
    if len(watched_idx) > per_epoch:  # the untrained loss needs no more samples than an epoch trains on
        watched_idx = watched_idx[np.linspace(0, len(watched_idx) - 1, per_epoch).round().astype(int)]
    history: dict = {"loss": [], "val_loss": [], "best_epoch": 0}
    # Ctrl-C before the first epoch ends keeps the seeded weights (as epochs=0), not those of a half-run epoch
    best_loss, best_state, waited = float("inf"), copy.deepcopy(module.state_dict()) if epochs else None, 0
    if epochs:
        history["initial_loss"] = evaluate_loss(module, X, watched_idx, batch_size, loss, device,
                                                transform=transform, tokens=tokens)
    if checkpoint is not None and epochs:
        resumed = checkpoint.resume(module, optimizer, rng)
        if resumed is not None:
            history, best_state, waited = resumed
            best_loss = min(history["val_loss"] if len(val_idx) else history["loss"], default=float("inf"))
    bar = tqdm(range(len(history["loss"]), epochs), desc=desc, unit="epoch", file=sys.stderr,
               disable=None if progress and parallel.is_main else True, leave=False)
    # where tqdm draws no bar (stderr is a log file or a pipe), one line per epoch, as Keras' verbose=2
    log_lines = progress and parallel.is_main and bar.disable
    try:
        for epoch in bar:
            started = time.perf_counter()
            if waited and patience is not None and waited >= patience:
                break  # a resumed run that had already stopped early
            module.train()
            total, count = 0.0, 0
            shard = parallel.shard(rng.permutation(train_idx)[:per_epoch])
            for batch, lengths in device_batches(X, shard, parallel.batch_size(batch_size), device,
                                                 transform=transform, tokens=tokens):
                optimizer.zero_grad(set_to_none=True)
                inputs = batch + input_noise * torch.randn_like(batch) if input_noise else batch
                batch_loss = reconstruction_loss(trained(inputs, lengths), batch, loss, lengths)
                batch_loss.backward()
                if max_grad_norm:
                    nn.utils.clip_grad_norm_(module.parameters(), max_grad_norm)
                optimizer.step()
                total += batch_loss.item() * len(batch)
                count += len(batch)
            total, count = parallel.sum(total, count)
            history["loss"].append(total / count)
            if len(val_idx):
                history["val_loss"].append(evaluate_loss(module, X, val_idx, batch_size, loss, device,
                                                         transform=transform, tokens=tokens))
            watched = history["val_loss"][-1] if len(val_idx) else history["loss"][-1]
            bar.set_postfix(loss=f"{history['loss'][-1]:.4g}",
                            **({"val_loss": f"{watched:.4g}"} if len(val_idx) else {}))
            if log_lines:
                print(f"{desc}: epoch {epoch + 1}/{epochs}, loss {history['loss'][-1]:.4g}"
                      + (f", val_loss {watched:.4g}" if len(val_idx) else "")
                      + f" ({time.perf_counter() - started:.1f}s)", file=sys.stderr, flush=True)
            if on_epoch is not None:
                on_epoch(epoch, history)
            _check_divergence(watched, history["initial_loss"], epoch, learning_rate)
            if watched < best_loss:
                best_loss, best_state, waited = watched, copy.deepcopy(module.state_dict()), 0
                history["best_epoch"] = epoch + 1
            else:
                waited += 1
            if checkpoint is not None and parallel.is_main:
                checkpoint.save(module, optimizer, rng, history, best_state, waited)
            if patience is not None and waited >= patience:
                break
    except KeyboardInterrupt:
        history["interrupted"] = True
    finally:
        bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    history["epochs_run"] = len(history["loss"])
    return history


def _check_divergence(watched: float, initial: float, epoch: int, learning_rate: float) -> None:
    if np.isfinite(watched) and watched <= DIVERGENCE_FACTOR * max(initial, 1e-12):
        return
    raise TrainingDiverged(f"training diverged at epoch {epoch + 1}: loss {watched:.4g} against {initial:.4g} "
                           f"before training; lower the learning rate (now {learning_rate:g}), e.g. "
                           f"--learning-rate {learning_rate / 10:g}")


@torch.inference_mode()
def evaluate_loss(module: nn.Module, X, indices, batch_size, loss, device, *, transform, tokens) -> float:
    module.eval()
    total = 0.0
    for batch, lengths in device_batches(X, indices, max(batch_size, 512), device, transform=transform,
                                         tokens=tokens):
        total += reconstruction_loss(module(batch, lengths), batch, loss, lengths).item() * len(batch)
    return total / len(indices)
