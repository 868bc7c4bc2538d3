"""Data-parallel training under torchrun (DDP): gloo on the CPU, nccl on CUDA.

    torchrun --nproc-per-node 2 -m lstmae.cli.main fit train.csv -o model --window 30

Every process shuffles with the same seed and trains on its own shard of each epoch's
samples with batch_size // world_size samples per step, so the global batch is unchanged and
DDP averages the gradients: the same training as one process, with the work split. All
processes see the same validation loss, so early stopping stops them together; only rank 0
writes files and shows progress.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module DDP-wrapped (gradients averaged across processes), or as it is."""
        return DistributedDataParallel(module) if self.active else module

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This process's share of an epoch; equal lengths on every rank (DDP steps in lockstep)."""
        if not self.active:
            return indices
        usable = len(indices) // self.world_size * self.world_size
        return indices[self.rank : usable : self.world_size]

    def batch_size(self, batch_size: int) -> int:
        return max(1, batch_size // self.world_size)

    def sum(self, *values: float) -> list[float]:
        """Sums over all processes (for logging the training loss of the whole epoch)."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()


def from_environment(device: torch.device) -> Distributed:
    """Join the process group that torchrun describes in WORLD_SIZE/RANK; one process otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def is_main_process() -> bool:
    """True unless this is a torchrun worker other than rank 0 (which must not write files)."""
    return not dist.is_initialized() or dist.get_rank() == 0
