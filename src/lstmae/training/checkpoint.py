"""Checkpoints of a training run, one per epoch, so that a killed run resumes where it stopped.

A checkpoint holds everything the next epoch depends on: the weights, the best weights so far, Adam's
state, the NumPy generator that shuffles the batches, torch's random state and the history. On the
CPU a resumed run therefore ends with the same weights as one that was never interrupted. It is
stored through `lstmae.persistence` (safetensors + JSON, written atomically, no pickle).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from ..exceptions import DataError


class Checkpoint:
    """The checkpoint of one run in `directory`; `fingerprint` says which run (settings and data) it is for."""

    def __init__(self, directory, fingerprint: str):
        self.directory = directory
        self.fingerprint = fingerprint

    def save(self, module, optimizer, rng: np.random.Generator, history: dict, best_state, waited: int) -> None:
        from ..persistence import write_checkpoint

        tensors = {f"module.{k}": v for k, v in module.state_dict().items()}
        if best_state is not None:
            tensors.update({f"best.{k}": v for k, v in best_state.items()})
        optimizer_state = optimizer.state_dict()
        for index, state in optimizer_state["state"].items():
            for key, value in state.items():
                tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value)
        tensors["torch_rng"] = torch.get_rng_state()
        config = {"fingerprint": self.fingerprint, "history": history, "waited": int(waited),
                  "has_best": best_state is not None, "rng": rng.bit_generator.state,
                  "optimizer_groups": optimizer_state["param_groups"],
                  "optimizer_state_keys": {str(i): sorted(s) for i, s in optimizer_state["state"].items()}}
        write_checkpoint(self.directory, json.loads(json.dumps(config)), tensors)

    def resume(self, module, optimizer, rng: np.random.Generator):
        """Restore the saved state into module, optimizer and rng; (history, best_state, waited), or None
        when there is no checkpoint yet."""
        from ..persistence import read_checkpoint

        saved = read_checkpoint(self.directory)
        if saved is None:
            return None
        config, tensors = saved
        if config.get("fingerprint") != self.fingerprint:
            raise DataError(f"{self.directory}: holds the checkpoint of another run (other settings or data); "
                            "remove it or give another --checkpoint-dir")
        module.load_state_dict({k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")})
        best_state = ({k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
                      if config["has_best"] else None)
        groups = [{**group, "betas": tuple(group["betas"])} if "betas" in group else group
                  for group in config["optimizer_groups"]]
        state = {int(i): {key: tensors[f"optimizer.{i}.{key}"] for key in keys}
                 for i, keys in config["optimizer_state_keys"].items()}
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        rng.bit_generator.state = config["rng"]
        torch.set_rng_state(tensors["torch_rng"])
        return config["history"], best_state, int(config["waited"])


def run_fingerprint(params: dict, X, n_train: int) -> str:
    """Which run a checkpoint belongs to: the estimator's parameters, the data's shape and a digest of its
    first and last samples, and the split."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(f"{len(X)}:{n_train}".encode())
    for sample in (X[0], X[len(X) - 1]):
        digest.update(np.ascontiguousarray(sample).tobytes())
    return digest.hexdigest()
