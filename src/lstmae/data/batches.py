"""Batches of samples for training and inference, as numpy arrays (the caller moves them to torch)."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..exceptions import DataError


def iterate_batches(X, indices: np.ndarray, batch_size: int, *, transform: Callable | None = None,
                    tokens: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(batch, lengths) for X[indices], batch by batch; only one batch is ever materialised.

    X is an array (N, L, F) or a list of N arrays (L_i, F) of any lengths. `transform` (e.g. a
    fitted scaler's) maps each batch (B, L, F) to float32; batches must come out finite, else a
    DataError names the first bad sample. With `tokens`, X holds integer ids, (N, L) or (L_i,),
    passed on as int64 without a transform. For a list the batch is zero-padded to its longest
    sample and lengths (B,) int64 gives each sample's length; for an array lengths is None.
    """
    for start in range(0, len(indices), batch_size):
        part = indices[start : start + batch_size]
        if isinstance(X, list):
            yield _padded([X[i] for i in part], part, transform, tokens)
            continue
        if len(part) and part[-1] - part[0] == len(part) - 1:  # a contiguous run: a cheap slice
            batch = X[part[0] : part[-1] + 1]
        else:
            batch = X[part]
        if tokens:
            yield np.ascontiguousarray(batch, dtype=np.int64), None
            continue
        # C order: the fused kernels need each step's features contiguous (an F-ordered X is not)
        scaled = np.ascontiguousarray(transform(batch) if transform is not None else batch, dtype=np.float32)
        finite = np.isfinite(scaled).reshape(len(part), -1).all(axis=1)
        if not finite.all():
            _raise_not_finite(int(part[np.flatnonzero(~finite)[0]]))
        yield scaled, None


def _padded(samples: list[np.ndarray], sample_ids: np.ndarray, transform, tokens: bool):
    """Samples (L_i, F) transformed (token ids (L_i,) as they are) and zero-padded into one array."""
    lengths = np.array([len(sample) for sample in samples], dtype=np.int64)
    if tokens:
        batch = np.zeros((len(samples), lengths.max()), dtype=np.int64)
    else:
        batch = np.zeros((len(samples), lengths.max(), samples[0].shape[1]), dtype=np.float32)
    for row, (sample, sample_id) in enumerate(zip(samples, sample_ids)):
        if not tokens:
            sample = transform(sample) if transform is not None else sample
            if not np.isfinite(sample).all():
                _raise_not_finite(int(sample_id))
        batch[row, : len(sample)] = sample
    return batch, lengths


def _raise_not_finite(sample: int):
    raise DataError(f"sample {sample} contains NaN or inf; clean the data first "
                    "(the CLI offers --nan-policy ffill|interpolate|drop)")
