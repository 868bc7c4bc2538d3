"""Checkpoints of a training run, one per epoch, so that a killed run resumes where it stopped.

A checkpoint holds everything the next epoch depends on: the weights, the best weights so far, Adam's
state, the NumPy generator that shuffles the batches, torch's random state and the history. On the
CPU a resumed run therefore ends with the same weights as one that was never interrupted. It is
stored through `lstmae.persistence` (safetensors + JSON, written atomically, no pickle).
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch

from ..data.validation import is_integer, is_number
from ..exceptions import DataError, ModelFileError


class Checkpoint:
    """The checkpoint of one run in `directory`; `fingerprint` says which run (settings and data) it is for.
    The folder is made here, so that a path that cannot be one is refused before training starts."""

    def __init__(self, directory, fingerprint: str):
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise DataError(f"checkpoint folder {self.directory} is a file, not a folder; give the path of a "
                            "folder (it is made if missing)") from None
        except OSError as err:
            raise DataError(f"checkpoint folder {self.directory} cannot be made ({err.strerror}); give another "
                            "folder") from None
        _check_only_checkpoint_files(self.directory)

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
        problem = _unresumable(config, tensors, module, optimizer, rng)
        if problem is not None:
            from ..persistence import CHECKPOINT_FILE

            field, expected, got = problem
            raise ModelFileError(f"{self.directory / CHECKPOINT_FILE}: {field} must be {expected}, got "
                                 f"{json.dumps(got)[:60]}; remove the checkpoint folder to start over")
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


def _check_only_checkpoint_files(directory: Path) -> None:
    """DataError when `directory` holds anything a checkpoint does not: lstmae removes the older checkpoint files
    there (and a user's file named like one was deleted), so it must be a folder of its own."""
    from ..data.io import some_names
    from ..persistence import CHECKPOINT_NAMES

    others = sorted(entry.name for entry in directory.iterdir()
                    if not any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in CHECKPOINT_NAMES))
    if others:
        raise DataError(f"checkpoint folder {directory} holds {some_names(others)}, files lstmae did not write there; "
                        "give the checkpoints a new or empty folder of their own (lstmae replaces its checkpoint files "
                        "in it)")


def _unresumable(config: dict, tensors: dict, module, optimizer, rng: np.random.Generator) -> tuple | None:
    """(field, what it must be, what it is) of the first field of a saved checkpoint that this run cannot
    resume from, or None."""
    history = config.get("history")
    if not isinstance(history, dict):
        return "history", "an object", history
    loss, val_loss, best_epoch = history.get("loss"), history.get("val_loss"), history.get("best_epoch")
    if not _finite_numbers(loss) or not loss:
        return "history.loss", "a non-empty list of finite numbers", loss
    if not _finite_numbers(val_loss) or len(val_loss) not in (0, len(loss)):
        return "history.val_loss", f"a list of finite numbers, empty or one per epoch ({len(loss)})", val_loss
    if not is_integer(best_epoch, 1) or best_epoch > len(loss):
        return "history.best_epoch", f"an epoch of history.loss, 1 to {len(loss)}", best_epoch
    initial_loss = history.get("initial_loss")
    if not _finite_numbers([initial_loss]) or initial_loss < 0:
        return "history.initial_loss", "a finite number >= 0", initial_loss
    waited = config.get("waited")
    if not is_integer(waited, 0) or waited > len(loss):
        return "waited", f"a whole number of epochs, 0 to {len(loss)}", waited
    if not isinstance(config.get("has_best"), bool):
        return "has_best", "true or false", config.get("has_best")
    try:
        type(rng.bit_generator)().state = config.get("rng")
    except (TypeError, ValueError, KeyError, ArithmeticError):
        return "rng", f"the state of a NumPy {type(rng.bit_generator).__name__} generator", config.get("rng")
    groups = optimizer.state_dict()["param_groups"]
    if config.get("optimizer_groups") != json.loads(json.dumps(groups)):
        return "optimizer_groups", "the parameter groups of this run's Adam optimizer", config.get("optimizer_groups")
    indices = {str(index) for group in groups for index in group["params"]}
    state_keys = config.get("optimizer_state_keys")
    if not isinstance(state_keys, dict) or not all(
            index in indices and isinstance(names, list)
            and all(isinstance(name, str) and f"optimizer.{index}.{name}" in tensors for name in names)
            for index, names in state_keys.items()):
        return "optimizer_state_keys", "parameter numbers, each with the names of its saved tensors", state_keys
    shapes = {name: value.shape for name, value in module.state_dict().items()}
    for prefix in ("module.", "best.") if config["has_best"] else ("module.",):
        if {k[len(prefix):]: v.shape for k, v in tensors.items() if k.startswith(prefix)} != shapes:
            return "tensors", f"a file with this network's weights under {prefix}", config.get("tensors")
    if "torch_rng" not in tensors:
        return "tensors", "a file with torch's random state under torch_rng", config.get("tensors")
    rng_state = torch.get_rng_state()
    if tensors["torch_rng"].dtype != rng_state.dtype or tensors["torch_rng"].shape != rng_state.shape:
        return "tensors", f"torch's random state under torch_rng ({rng_state.numel()} bytes)", config.get("tensors")
    # NaN weights or moments resumed into a run that then 'diverged', blaming the learning rate
    for name, value in tensors.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            return "tensors", f"finite values ({name} holds NaN or inf)", config.get("tensors")
    param_shapes = {str(i): p.shape
                    for i, p in enumerate(p for group in optimizer.param_groups for p in group["params"])}
    for index, names in state_keys.items():
        for name in names:
            value = tensors[f"optimizer.{index}.{name}"]
            if name == "step":
                bad = value.numel() != 1 or value.item() < 0
            else:
                bad = value.shape != param_shapes[index] or (name == "exp_avg_sq" and (value < 0).any())
            if bad:
                return "tensors", f"Adam's state of this network (optimizer.{index}.{name} is not)", config.get("tensors")
    return None


def _finite_numbers(values) -> bool:
    return isinstance(values, list) and all(is_number(value) and math.isfinite(value) for value in values)


def run_fingerprint(params: dict, X, n_train: int) -> str:
    """Which run a checkpoint belongs to: the estimator's parameters, a digest of every sample of X (an array
    (N, L, F) or a list of (L_i, F)) and the split. (A digest of the first and last samples alone resumed a run
    on data cleaned in between: the old data's network, saved as the new data's.)"""
    digest = hashlib.blake2b(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(f"{len(X)}:{n_train}".encode())
    if isinstance(X, np.ndarray):
        for start in range(0, len(X), _DIGEST_CHUNK):  # a window view is copied a chunk at a time
            digest.update(np.ascontiguousarray(X[start : start + _DIGEST_CHUNK]).data)
    else:
        for sample in X:
            digest.update(f"{np.shape(sample)}".encode())
            digest.update(np.ascontiguousarray(sample).data)
    return digest.hexdigest()


_DIGEST_CHUNK = 4096  # samples
